using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using System.Net;
using Transport.Streaming.Io;
using Transport.Streaming.Sessions;
using Transport.Streaming.WebRtc;

namespace Transport.Samples.EchoServer;

/// <summary>The echo server's settings, from the command line.</summary>
public sealed record EchoServerSettings
{
    public string Urls { get; init; } = "http://127.0.0.1:8080";
    public int UdpPort { get; init; } = 50000;
    /// <summary>The addresses the UDP port is bound on (<c>--udp-address</c>); empty: the one <see cref="Urls"/> names, or every address of the host.</summary>
    public IReadOnlyList<IPAddress> UdpAddresses { get; init; } = [];
    /// <summary>
    /// The session server's options, with the echo server's limits: 100 sessions, 10 per client address, 20 not yet
    /// connected (and the library's connect timeout 10 s and idle limit 5 min).
    /// </summary>
    public StreamServerOptions Server { get; init; } = new() { MaxConcurrentSessions = 100, MaxSessionsPerClient = 10, MaxPendingSessions = 20 };

    /// <summary>Body and message sizes, the body read time, Retry-After: given to every endpoint.</summary>
    public HostingLimits Limits { get; init; } = new();

    /// <summary>The bearer token of <c>GET /sessions</c> (<c>--admin-token</c>); null (default): <c>/sessions</c> is off.</summary>
    public string? AdminToken { get; init; }
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
    /// <c>--udp-address ADDR</c> (repeatable), <c>--public-address IP[/LOCAL]</c> (repeatable; 1:1 NAT),
    /// <c>--stun-server stun:HOST[:PORT]</c>, <c>--turn-server turn:HOST[:PORT][?transport=udp|tcp][|user|pass]</c>
    /// (repeatable; the server's own candidates),
    /// <c>--ice-server URL[|username|credential]</c> (repeatable; given to WHIP clients as Link headers),
    /// <c>--allow-origin ORIGIN</c> (repeatable; pages of that origin may use WHIP and open the WebSockets, <c>*</c> any),
    /// <c>--admin-token TOKEN</c>, <c>--max-sessions-per-client N</c>, <c>--max-pending-sessions N</c>,
    /// <c>--connect-timeout S</c>, <c>--idle-limit S</c> (0: none), <c>--max-body-size BYTES</c>,
    /// <c>--max-message-size BYTES</c> (signaling), <c>--log-level LEVEL</c>, <c>--self-test</c>, <c>--self-test-seconds S</c>. Unknown options are an error.
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
                case "--admin-token": s = s with { AdminToken = Value() }; break;
                case "--max-sessions-per-client": s = s with { Server = s.Server with { MaxSessionsPerClient = Int(Value()) } }; break;
                case "--max-pending-sessions": s = s with { Server = s.Server with { MaxPendingSessions = Int(Value()) } }; break;
                case "--connect-timeout": s = s with { Server = s.Server with { ConnectTimeout = Seconds(Value()) } }; break;
                case "--idle-limit":
                    var idle = Seconds(Value(), zero: true);
                    s = s with { Server = s.Server with { IdleLimit = idle == TimeSpan.Zero ? null : idle } };
                    break;
                case "--max-body-size": s = s with { Limits = s.Limits with { MaxRequestBodySize = Int(Value()) } }; break;
                case "--max-message-size": s = s with { Limits = s.Limits with { MaxSignalingMessageSize = Int(Value()) } }; break;
                case "--udp-address": s = s with { UdpAddresses = [.. s.UdpAddresses, IPAddress.Parse(Value())] }; break;
                case "--public-address": s = s.WithPeer(p => p with { PublicAddresses = [.. p.PublicAddresses, PublicAddress.Parse(Value())] }); break;
                case "--stun-server": s = s.WithPeer(p => p with { Ice = p.Ice with { StunServers = [.. p.Ice.StunServers, IceServerUris.ParseStun(Value())] } }); break;
                case "--turn-server": s = s.WithPeer(p => p with { Ice = p.Ice with { TurnServers = [.. p.Ice.TurnServers, IceServerUris.ParseTurn(Value())] } }); break;
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
                default: throw new ArgumentException($"unknown option '{args[i]}' (known: --urls, --udp-port, --udp-address, --public-address, --stun-server, --turn-server, --max-sessions, --max-sessions-per-client, --max-pending-sessions, --connect-timeout, --idle-limit, --max-body-size, --max-message-size, --whip-token, --admin-token, --ice-server, --allow-origin, --log-level, --self-test, --self-test-seconds)");
            }
        }
        return s;
    }

    private EchoServerSettings WithPeer(Func<PeerConnectionOptions, PeerConnectionOptions> change) =>
        this with { WebRtc = WebRtc with { PeerConnection = change(WebRtc.PeerConnection) } };

    private static int Int(string text) =>
        int.Parse(text, CultureInfo.InvariantCulture) is var n and >= 0 ? n : throw new ArgumentException($"'{text}' is negative");

    private static TimeSpan Seconds(string text, bool zero = false) =>
        double.Parse(text, CultureInfo.InvariantCulture) is var n && (n > 0 || (zero && n == 0)) && n < 1e6
            ? TimeSpan.FromSeconds(n) : throw new ArgumentException($"'{text}' is not a time in seconds");
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
        // --udp-address, else the address --urls names, else every address of the host: one socket each (UdpDriver.BindAll).
        var udpAddresses = settings.UdpAddresses.Count > 0 ? settings.UdpAddresses : HostAddresses.NamedByUrls(settings.Urls);
        try { driver.BindAll(settings.UdpPort, new HostAddressOptions { Addresses = udpAddresses }); }
        catch { driver.DisposeAsync().AsTask().GetAwaiter().GetResult(); throw; }
        var webRtc = new WebRtcSessions(server, driver, settings.WebRtc);
        app.UseWebSockets();
        app.MapEchoPage();
        // One limits object and one list of allowed origins for every endpoint.
        var origins = settings.Whip.AllowedOrigins;
        app.MapStreamEndpoints(server, settings.Endpoints with { Limits = settings.Limits, AllowedOrigins = origins, AdminToken = settings.AdminToken ?? settings.Endpoints.AdminToken });
        app.MapWhip(server, webRtc, options: settings.Whip with { Limits = settings.Limits });
        app.MapSignaling(server, webRtc, settings.Signaling with { Limits = settings.Limits, AllowedOrigins = origins });
        app.Lifetime.ApplicationStopping.Register(() =>
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            driver.DisposeAsync().AsTask().GetAwaiter().GetResult();
            webRtc.Dispose();
        });
        return new EchoServerInstance(app, server, driver, webRtc);
    }
}
