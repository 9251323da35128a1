using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Transport.Samples.EchoServer;
using Transport.Streaming.Sessions;

namespace Transport.Streaming.Tests.Hosting;

/// <summary>The echo server in-process on 127.0.0.1 (HTTP and UDP on free ports), with its log lines captured.</summary>
internal sealed class EchoTestHost : IAsyncDisposable
{
    public required EchoServerInstance Instance { get; init; }
    public required Uri Http { get; init; }
    public ConcurrentQueue<(LogLevel Level, string Message)> Logs { get; } = new();
    public StreamServer Server => Instance.Server;
    public Uri Whip => new(Http, "/whip");
    public Uri Signal => new($"ws://{Http.Authority}/signal");
    public Uri Ws => new($"ws://{Http.Authority}/ws");
    public Microsoft.AspNetCore.Builder.WebApplication App => Instance.App;

    /// <summary>
    /// Starts the echo server with <paramref name="settings"/> on free ports. Every test client comes from 127.0.0.1, one
    /// client key, so the offer rate limit is off unless <paramref name="keepOfferRate"/> (the rate limit's own tests).
    /// </summary>
    public static async Task<EchoTestHost> StartAsync(EchoServerSettings? settings = null, bool keepOfferRate = false)
    {
        var logs = new ConcurrentQueue<(LogLevel, string)>();
        settings ??= new EchoServerSettings();
        var sessions = settings.Sessions with
        {
            UdpPort = 0,
            Limits = keepOfferRate ? settings.Sessions.Limits : settings.Sessions.Limits with { OffersPerSecond = 0 },
        };
        var instance = EchoServerApp.Build(settings with { Urls = "http://127.0.0.1:0", Sessions = sessions },
            logging => logging.AddProvider(new CapturingLoggerProvider(logs)));
        await instance.App.StartAsync();
        var host = new EchoTestHost { Instance = instance, Http = new Uri(instance.App.Urls.First()) };
        CapturingLoggerProvider.Redirect(logs, host.Logs);
        return host;
    }

    public async ValueTask DisposeAsync() => await Instance.App.DisposeAsync();
}
