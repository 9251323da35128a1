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

    public static async Task<EchoTestHost> StartAsync(EchoServerSettings? settings = null)
    {
        var logs = new ConcurrentQueue<(LogLevel, string)>();
        var instance = EchoServerApp.Build((settings ?? new EchoServerSettings()) with { Urls = "http://127.0.0.1:0", UdpPort = 0 },
            logging => logging.AddProvider(new CapturingLoggerProvider(logs)));
        await instance.App.StartAsync();
        var host = new EchoTestHost { Instance = instance, Http = new Uri(instance.App.Urls.First()) };
        CapturingLoggerProvider.Redirect(logs, host.Logs);
        return host;
    }

    public async ValueTask DisposeAsync() => await Instance.App.DisposeAsync();
}
