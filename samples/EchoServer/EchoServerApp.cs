using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using System.Net;
using Transport.Streaming.Io;
using Transport.Streaming.Sessions;

namespace Transport.Samples.EchoServer;

/// <summary>The echo server's settings, from the command line.</summary>
public sealed record EchoServerSettings
{
    public string Urls { get; init; } = "http://127.0.0.1:8080";
    public int UdpPort { get; init; } = 50000;
    public StreamServerOptions Server { get; init; } = new() { MaxConcurrentSessions = 100 };
    public EndpointOptions Endpoints { get; init; } = new();
    public SignalingOptions Signaling { get; init; } = new();
    public WebRtcTransportOptions WebRtc { get; init; } = new();
    public WhipOptions Whip { get; init; } = new();

    /// <summary>
    /// The least level logged (<c>--log-level Trace|Debug|Information|Warning|Error|Critical|None</c>). Default
    /// Information: each connection's milestones and state changes, each session's end. Categories can be set apart in
    /// the configuration (<c>Logging__LogLevel__Transport=Debug</c>, docs/sessions.md).
    /// </summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>Runs the in-process self-test instead of serving (<c>--self-test</c>).</summary>
    public bool SelfTest { get; init; }

    /// <summary>How long the self-test streams (<c>--self-test-seconds</c>). Default 3 s.</summary>
    public double SelfTestSeconds { get; init; } = 3;

    /// <summary>
    /// Reads <c>--urls URL</c>, <c>--udp-port N</c>, <c>--max-sessions N</c>, <c>--whip-token TOKEN</c>,
    /// <c>--ice-server URL[|username|credential]</c> (repeatable; given to WHIP clients as Link headers),
    /// <c>--allow-origin ORIGIN</c> (repeatable; pages of that origin may use WHIP across origins, <c>*</c> any),
    /// <c>--log-level LEVEL</c>, <c>--self-test</c>, <c>--self-test-seconds S</c>. Unknown options are an error.
    /// </summary>
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
                case "--whip-token": s = s with { Whip = s.Whip with { BearerToken = Value() } }; break;
                case "--allow-origin": s = s with { Whip = s.Whip with { AllowedOrigins = [.. s.Whip.AllowedOrigins, Value()] } }; break;
                case "--ice-server": s = s with { Whip = s.Whip with { IceServers = [.. s.Whip.IceServers, WhipIceServer.Parse(Value())] } }; break;
                case "--log-level":
                    var level = Value();
                    s = s with
                    {
                        LogLevel = Enum.TryParse<LogLevel>(level, ignoreCase: true, out var parsed) && Enum.IsDefined(parsed) && level.All(char.IsLetter)
                            ? parsed : throw new ArgumentException($"--log-level '{level}' is not one of Trace, Debug, Information, Warning, Error, Critical, None"),
                    };
                    break;
                case "--self-test": s = s with { SelfTest = true }; break;
                case "--self-test-seconds": s = s with { SelfTestSeconds = double.Parse(Value(), CultureInfo.InvariantCulture) }; break;
                default: throw new ArgumentException($"unknown option '{args[i]}' (known: --urls, --udp-port, --max-sessions, --whip-token, --ice-server, --allow-origin, --log-level, --self-test, --self-test-seconds)");
            }
        }
        return s;
    }
}

/// <summary>A built echo server: the web application, the session server, the UDP driver of its WebRTC sessions.</summary>
public sealed record EchoServerInstance(WebApplication App, StreamServer Server, UdpDriver Driver, WebRtcSessions WebRtc)
{
    public void Deconstruct(out WebApplication app, out StreamServer server) { app = App; server = Server; }

    /// <summary>The UDP endpoint every WebRTC session uses.</summary>
    public IPEndPoint UdpEndPoint => Driver.LocalEndPoints[0];
}

/// <summary>
/// Builds the echo server: Kestrel on 127.0.0.1, one UDP port for every WebRTC session, the page at <c>/</c>,
/// WHIP at <c>/whip</c>, WebSocket signaling at <c>/signal</c>, the WebSocket stream transport at <c>/ws</c>,
/// <c>GET /sessions</c>, and one <see cref="StreamServer"/>.
/// </summary>
public static class EchoServerApp
{
    public static EchoServerInstance Build(EchoServerSettings settings, Action<ILoggingBuilder>? logging = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(settings.Urls);
        builder.Logging.ClearProviders();
        // The least level; the configuration's Logging:LogLevel entries (environment Logging__LogLevel__CATEGORY) still
        // set categories apart, e.g. Logging__LogLevel__Transport=Debug.
        builder.Logging.SetMinimumLevel(settings.LogLevel);
        if (logging is not null) logging(builder.Logging);
        else builder.Logging.AddSimpleConsole(o => o.SingleLine = true).AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        var app = builder.Build();
        var loggers = app.Services.GetRequiredService<ILoggerFactory>();
        var server = new StreamServer(() => new EchoHandler(), settings.Server, TimeProvider.System, loggers);
        var driver = new UdpDriver(TimeProvider.System, null, loggers.CreateLogger<UdpDriver>());
        try { driver.Bind(new IPEndPoint(IPAddress.Loopback, settings.UdpPort)); }
        catch { driver.DisposeAsync().AsTask().GetAwaiter().GetResult(); throw; }
        var webRtc = new WebRtcSessions(server, driver, settings.WebRtc);
        app.UseWebSockets();
        app.MapEchoPage();
        app.MapStreamEndpoints(server, settings.Endpoints);
        app.MapWhip(server, webRtc, options: settings.Whip);
        app.MapSignaling(server, webRtc, settings.Signaling);
        app.Lifetime.ApplicationStopping.Register(() =>
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            driver.DisposeAsync().AsTask().GetAwaiter().GetResult();
            webRtc.Dispose();
        });
        return new EchoServerInstance(app, server, driver, webRtc);
    }
}
