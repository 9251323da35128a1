using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Transport.Streaming.Hosting;
using Transport.Streaming.Io;
using Transport.Streaming.Sessions;
using Transport.Streaming.WebRtc;

namespace Transport.Samples.EchoServer;

/// <summary>The echo server's settings: the command line over the configuration (section <c>WebRtc</c>).</summary>
public sealed record EchoServerSettings
{
    public string Urls { get; init; } = "http://127.0.0.1:8080";

    /// <summary>
    /// The addresses the UDP port is bound on (<c>--udp-address</c>, repeatable); empty: the one <see cref="Urls"/>
    /// names, or every address of the host when it names a wildcard or a host name (one socket each).
    /// </summary>
    public IReadOnlyList<IPAddress> UdpAddresses { get; init; } = [];

    /// <summary>
    /// Everything of the sessions: UDP port, limits (<see cref="WebRtcSessionsOptions.Limits"/>, the library's defaults:
    /// 100 sessions, 10 per client, 20 not yet connected, 5 offers at once and 1 a second per client, ...), origins,
    /// tokens, WHIP, signaling, transport. The same object <c>AddWebRtcSessions</c> takes.
    /// </summary>
    public WebRtcSessionsOptions Sessions { get; init; } = new();

    /// <summary>
    /// The least level logged (<c>--log-level Trace|Debug|Information|Warning|Error|Critical|None</c>). Default
    /// Information: each connection's milestones and state changes, each session's end. Categories can be set apart in
    /// the configuration (<c>Logging__LogLevel__Transport=Debug</c>, docs/sessions.md).
    /// </summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Information;

    /// <summary>
    /// Whether clients may signal each other through the server over their control channels (the signaling relay,
    /// docs/sessions.md). Default true; <c>--no-relay</c> turns it off.
    /// </summary>
    public bool Relay { get; init; } = true;

    /// <summary>
    /// Whether WHEP viewers get a test pattern (VP8 colour bars and a moving square, Opus silence) while no WHIP
    /// publisher sends media. Default true; <c>--no-test-pattern</c> turns it off.
    /// </summary>
    public bool TestPattern { get; init; } = true;

    /// <summary>Runs the in-process self-test instead of serving (<c>--self-test</c>).</summary>
    public bool SelfTest { get; init; }

    /// <summary>How long the self-test streams (<c>--self-test-seconds</c>). Default 3 s.</summary>
    public double SelfTestSeconds { get; init; } = 3;

    /// <summary>
    /// Reads <paramref name="configuration"/>'s <c>WebRtc</c> section (appsettings.json, environment
    /// <c>WebRtc__Limits__MaxSessions=50</c>), then the command line: configuration keys <c>--WebRtc:KEY=VALUE</c> or
    /// <c>--WebRtc:KEY VALUE</c> (<c>--WebRtc:Limits:OfferBurst=10</c>), then the flags, which win:
    /// <c>--urls URL</c>, <c>--udp-port N</c>, <c>--max-sessions N</c>, <c>--whip-token TOKEN</c>,
    /// <c>--udp-address ADDR</c> (repeatable; default the address <c>--urls</c> names, else every address),
    /// <c>--public-address IP[/LOCAL]</c> (repeatable; 1:1 NAT),
    /// <c>--stun-server stun:HOST[:PORT]</c>, <c>--turn-server turn:HOST[:PORT][?transport=udp|tcp][|user|pass]</c> (or <c>turns:HOST[:PORT]</c>, TLS)
    /// (repeatable; the server's own candidates),
    /// <c>--ice-server URL[|username|credential]</c> (repeatable; given to WHIP clients as Link headers),
    /// <c>--allow-origin ORIGIN</c> (repeatable; pages of that origin may use WHIP and open the WebSockets, <c>*</c> any),
    /// <c>--admin-token TOKEN</c>, <c>--max-sessions-per-client N</c>, <c>--max-pending-sessions N</c>,
    /// <c>--connect-timeout S</c>, <c>--idle-limit S</c> (0: none), <c>--session-time-limit S</c> (0: none),
    /// <c>--offer-burst N</c>, <c>--offers-per-second R</c> (0: no rate limit), <c>--max-body-size BYTES</c>,
    /// <c>--max-message-size BYTES</c> (signaling), <c>--log-level LEVEL</c>, <c>--self-test</c>, <c>--self-test-seconds S</c>.
    /// Unknown options are an error (<see cref="ArgumentException"/>), and so is a configuration key that names no option.
    /// </summary>
    public static EchoServerSettings Parse(IReadOnlyList<string> args, IConfiguration? configuration = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        var flags = new List<string>();
        var keys = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < args.Count; i++)
        {
            if (!args[i].StartsWith("--" + WebRtcSessionsOptions.SectionName + ":", StringComparison.OrdinalIgnoreCase))
            {
                flags.Add(args[i]);
                continue;
            }
            var key = args[i][2..];
            var eq = key.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0) keys[key[..eq]] = key[(eq + 1)..];
            else keys[key] = i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
        }
        var s = new EchoServerSettings();
        if (configuration is not null || keys.Count > 0)
        {
            var builder = new ConfigurationBuilder();
            if (configuration is not null) builder.AddConfiguration(configuration);
            var merged = builder.AddInMemoryCollection(keys).Build();
            try { WebRtcConfiguration.Bind(merged.GetSection(WebRtcSessionsOptions.SectionName), s.Sessions); }
            catch (InvalidOperationException e) { throw new ArgumentException("configuration: " + e.Message, e); }
        }
        var o = s.Sessions;
        var limits = o.Limits;
        for (var i = 0; i < flags.Count; i++)
        {
            string Value() => i + 1 < flags.Count ? flags[++i] : throw new ArgumentException($"{flags[i]} needs a value");
            switch (flags[i])
            {
                case "--urls": s = s with { Urls = Value() }; break;
                case "--udp-port": o.UdpPort = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--max-sessions": limits.MaxSessions = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--whip-token": o.Whip = o.Whip with { BearerToken = Value() }; break;
                case "--allow-origin": o.AllowedOrigins = [.. o.AllowedOrigins, Value()]; break;
                case "--admin-token": o.AdminToken = Value(); break;
                case "--max-sessions-per-client": limits.MaxSessionsPerClient = Int(Value()); break;
                case "--max-pending-sessions": limits.MaxPendingSessions = Int(Value()); break;
                case "--connect-timeout": limits.ConnectTimeout = Seconds(Value()); break;
                case "--idle-limit": limits.IdleLimit = Seconds(Value(), zero: true) is var idle && idle == TimeSpan.Zero ? null : idle; break;
                case "--session-time-limit": limits.SessionTimeLimit = Seconds(Value(), zero: true) is var cap && cap == TimeSpan.Zero ? null : cap; break;
                case "--offer-burst": limits.OfferBurst = Int(Value()); break;
                case "--offers-per-second":
                    var rate = Value();
                    limits.OffersPerSecond = double.TryParse(rate, NumberStyles.Float, CultureInfo.InvariantCulture, out var r) && r >= 0 && double.IsFinite(r)
                        ? r : throw new ArgumentException($"--offers-per-second '{rate}' is not a rate (0 or more)");
                    break;
                case "--max-body-size": limits.MaxRequestBodySize = Int(Value()); break;
                case "--max-message-size": limits.MaxSignalingMessageSize = Int(Value()); break;
                case "--ice-server": o.Whip = o.Whip with { IceServers = [.. o.Whip.IceServers, WhipIceServer.Parse(Value())] }; break;
                case "--udp-address": s = s with { UdpAddresses = [.. s.UdpAddresses, IPAddress.Parse(Value())] }; break;
                case "--public-address": WithPeer(o, p => p with { PublicAddresses = [.. p.PublicAddresses, PublicAddress.Parse(Value())] }); break;
                case "--stun-server":
                    WithPeer(o, p => p with { Ice = p.Ice with { StunServers = [.. p.Ice.StunServers, IceServerUris.ParseStun(Value())] } });
                    break;
                case "--turn-server":
                    WithPeer(o, p => p with { Ice = p.Ice with { TurnServers = [.. p.Ice.TurnServers, IceServerUris.ParseTurn(Value())] } });
                    break;
                case "--log-level":
                    var level = Value();
                    s = s with
                    {
                        LogLevel = Enum.TryParse<LogLevel>(level, ignoreCase: true, out var parsed) && Enum.IsDefined(parsed) && level.All(char.IsLetter)
                            ? parsed : throw new ArgumentException($"--log-level '{level}' is not one of Trace, Debug, Information, " +
                                $"Warning, Error, Critical, None"),
                    };
                    break;
                case "--self-test": s = s with { SelfTest = true }; break;
                case "--no-relay": s = s with { Relay = false }; break;
                case "--no-test-pattern": s = s with { TestPattern = false }; break;
                case "--self-test-seconds": s = s with { SelfTestSeconds = double.Parse(Value(), CultureInfo.InvariantCulture) }; break;
                default:
                    throw new ArgumentException($"unknown option '{flags[i]}' (known: --urls, --udp-port, --udp-address, --public-address, " +
                    $"--stun-server, --turn-server, --max-sessions, --max-sessions-per-client, --max-pending-sessions, --connect-timeout, --idle-limit, " +
                    $"--session-time-limit, --offer-burst, --offers-per-second, --max-body-size, --max-message-size, --whip-token, --admin-token, " +
                    $"--ice-server, --allow-origin, --log-level, --no-relay, --no-test-pattern, --self-test, --self-test-seconds, --WebRtc:KEY=VALUE)");
            }
        }
        // --udp-address, else the address --urls names, else every address of the host (WebRtc:UdpAddress "*"); a
        // configured WebRtc:UdpAddress stays when neither flag says otherwise.
        var urlAddresses = HostAddresses.NamedByUrls(s.Urls);
        if (s.UdpAddresses.Count > 0) o.UdpAddress = string.Join(",", s.UdpAddresses);
        else if (!keys.ContainsKey(WebRtcSessionsOptions.SectionName + ":UdpAddress")
            && configuration?[WebRtcSessionsOptions.SectionName + ":UdpAddress"] is null)
            o.UdpAddress = urlAddresses.Count > 0 ? string.Join(",", urlAddresses) : "*";
        o.Validate();
        return s;
    }

    private static void WithPeer(WebRtcSessionsOptions o, Func<PeerConnectionOptions, PeerConnectionOptions> change) =>
        o.Transport = o.Transport with { PeerConnection = change(o.Transport.PeerConnection) };

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

    /// <summary>What WHEP viewers at <c>/whep</c> get: the first WHIP publisher's media.</summary>
    public MediaBroadcast? Broadcast { get; init; }

    /// <summary>The signaling relay between clients, or null (<c>--no-relay</c>).</summary>
    public SignalingRelay? Relay => WebRtc.Relay;

    /// <summary>The test pattern WHEP viewers get while nobody publishes, or null (<c>--no-test-pattern</c>).</summary>
    public TestPatternSource? TestPattern { get; init; }
}

/// <summary>
/// Builds the echo server on the hosting library: <c>AddWebRtcSessions</c> with the settings' options, the page at
/// <c>/</c>, WHIP at <c>/whip</c>, WHEP playback of the first WHIP publisher's media (or of a test pattern while
/// nobody publishes) at <c>/whep</c>, WebSocket
/// signaling at <c>/signal</c>, the WebSocket stream transport at <c>/ws</c>, <c>GET /sessions</c>.
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
        // The settings already hold the configuration and the command line (EchoServerSettings.Parse).
        var broadcast = new MediaBroadcast();
        if (settings.Relay) settings.Sessions.Relay.Enabled = true;
        builder.Services.AddWebRtcSessions(settings.Sessions, _ => new EchoHandler(broadcast));
        var app = builder.Build();
        var host = app.Services.GetRequiredService<WebRtcSessionsHost>();
        app.MapEchoPage();
        app.MapWhip("/whip");
        app.MapWhep(broadcast, "/whep");
        app.MapSignaling("/signal");
        app.MapStreamSessions("/ws");
        app.MapSessionAdmin("/sessions");
        // WHEP viewers with no WHIP publisher get the test pattern; it pauses while a publisher sends.
        var pattern = settings.TestPattern ? new TestPatternSource(broadcast, paused: () => EchoHandler.HasPublisher) : null;
        if (pattern is not null)
        {
            // It runs while the application does (an instance built and never started runs nothing).
            app.Lifetime.ApplicationStarted.Register(pattern.Start);
            app.Lifetime.ApplicationStopping.Register(() => pattern.DisposeAsync().AsTask().GetAwaiter().GetResult());
        }
        return new EchoServerInstance(app, host.Server, host.Driver, host.Sessions) { Broadcast = broadcast, TestPattern = pattern };
    }
}
