using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Transport.Streaming.Sessions;

namespace Transport.Samples.EchoServer;

/// <summary>The echo server's settings, from the command line.</summary>
public sealed record EchoServerSettings
{
    public string Urls { get; init; } = "http://127.0.0.1:8080";
    public int UdpPort { get; init; } = 50000;
    public StreamServerOptions Server { get; init; } = new() { MaxConcurrentSessions = 100 };
    public EndpointOptions Endpoints { get; init; } = new();

    /// <summary>Reads <c>--urls URL</c>, <c>--udp-port N</c>, <c>--max-sessions N</c>. Unknown options are an error.</summary>
    public static EchoServerSettings Parse(IReadOnlyList<string> args)
    {
        var s = new EchoServerSettings();
        for (var i = 0; i < args.Count; i++)
        {
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--urls": s = s with { Urls = Value() }; break;
                case "--udp-port": s = s with { UdpPort = int.Parse(Value(), CultureInfo.InvariantCulture) }; break;
                case "--max-sessions": s = s with { Server = s.Server with { MaxConcurrentSessions = int.Parse(Value(), CultureInfo.InvariantCulture) } }; break;
                default: throw new ArgumentException($"unknown option '{args[i]}' (known: --urls, --udp-port, --max-sessions)");
            }
        }
        return s;
    }
}

/// <summary>Builds the echo server: Kestrel on 127.0.0.1, the stream endpoints, one <see cref="StreamServer"/>.</summary>
public static class EchoServerApp
{
    public static (WebApplication App, StreamServer Server) Build(EchoServerSettings settings, Action<ILoggingBuilder>? logging = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(settings.Urls);
        builder.Logging.ClearProviders();
        if (logging is not null) logging(builder.Logging);
        else builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        var app = builder.Build();
        var server = new StreamServer(() => new EchoHandler(), settings.Server, TimeProvider.System, app.Services.GetRequiredService<ILoggerFactory>());
        app.UseWebSockets();
        app.MapStreamEndpoints(server, settings.Endpoints);
        app.Lifetime.ApplicationStopping.Register(() => server.DisposeAsync().AsTask().GetAwaiter().GetResult());
        return (app, server);
    }
}
