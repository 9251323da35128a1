using Microsoft.Extensions.DependencyInjection;
using Transport.Streaming.Io;
using Transport.Streaming.Sessions;

namespace Transport.Streaming.Hosting;

/// <summary>
/// Options of
/// <see cref="WebRtcHostingExtensions.AddWebRtcSessions(IServiceCollection, Func{IServiceProvider, IStreamHandler}, Action{WebRtcSessionsOptions}?)"/>,
/// bound from the configuration section <c>WebRtc</c> (appsettings.json, environment <c>WebRtc__Limits__MaxSessions=50</c>,
/// command line <c>--WebRtc:Limits:MaxSessions=50</c>). Times are <c>00:00:10</c> or seconds (<c>10</c>).
/// </summary>
public sealed record WebRtcSessionsOptions
{
    /// <summary>The configuration section the options bind from by default.</summary>
    public const string SectionName = "WebRtc";

    /// <summary>Every limit on what a remote party can make the server hold (README "Limits and defaults").</summary>
    public WebRtcServerLimits Limits { get; set; } = new();

    /// <summary>
    /// The addresses the UDP port of every WebRTC session is bound to, comma-separated (<c>10.0.0.5,192.168.1.5</c>),
    /// one socket each, or <c>*</c>: every address of the host's interfaces that are up (no link-local; loopback only
    /// when nothing else; <see cref="UdpDriver.BindAll"/>). Each bound address is a host candidate. Default
    /// <c>127.0.0.1</c>: reachable from this machine only (a browser elsewhere needs <c>*</c> or the host's address).
    /// </summary>
    public string UdpAddress { get; set; } = "127.0.0.1";

    /// <summary>The addresses <see cref="UdpAddress"/> names; empty for <c>*</c> (every address).</summary>
    public IReadOnlyList<System.Net.IPAddress> ParseUdpAddresses() =>
        UdpAddress.Trim() == "*" ? [] :
        [.. UdpAddress.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(a =>
            System.Net.IPAddress.TryParse(a, out var ip) ? ip
                : throw new ArgumentException($"WebRtc:UdpAddress '{a}' is not an IP address (or * for every address)", nameof(UdpAddress)))];

    /// <summary>The UDP port every WebRTC session shares (0: any free port). Default 50000.</summary>
    public int UdpPort { get; set; } = 50000;

    /// <summary>
    /// Origins (<c>https://app.example:8443</c>) whose pages may use WHIP across origins (CORS) and open the WebSockets
    /// (<c>/signal</c>, <c>/ws</c>) besides our own; <c>*</c> allows any. A WebSocket upgrade with another Origin is
    /// answered 403; a client that sends no Origin (not a browser) is served. Default none: our own origin only.
    /// </summary>
    public IReadOnlyList<string> AllowedOrigins { get; set; } = [];

    /// <summary>
    /// The bearer token <c>GET /sessions</c> needs (<c>Authorization: Bearer TOKEN</c>); without it or with another,
    /// 401 and nothing about any session. Null (the default): <c>/sessions</c> answers 404, since it names every
    /// session and its clients' addresses.
    /// </summary>
    public string? AdminToken { get; set; }

    /// <summary>How often the session server's health policy looks at every session. Default 1 s.</summary>
    public TimeSpan HealthCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>WHIP: the bearer token, the ICE servers given to clients, the CORS preflight cache time.</summary>
    public WhipOptions Whip { get; set; } = new();

    /// <summary>WebSocket signaling (<c>/signal</c>): keepalive, whether a lost socket ends the session.</summary>
    public SignalingOptions Signaling { get; set; } = new();

    /// <summary>
    /// The signaling relay: clients of WebRTC sessions signal each other through the server over their control
    /// channels (docs/sessions.md, "Signaling relay"). Off by default (<see cref="SignalingRelayOptions.Enabled"/>).
    /// </summary>
    public SignalingRelayOptions Relay { get; set; } = new();

    /// <summary>WebSocket stream sessions (<c>/ws</c>): keepalive and queues.</summary>
    public StreamSessionOptions Streams { get; set; } = new();

    /// <summary>
    /// The WebRTC transport and its peer connections (channels, RTT probe, media, ICE servers, certificate). Its
    /// protocol limits (ICE candidates and pairs, private addresses, DTLS handshake buffer, unread bytes, data
    /// channels, label and protocol length, message size) are replaced by <see cref="Limits"/>.
    /// </summary>
    public WebRtcTransportOptions Transport { get; set; } = new();

    /// <summary>
    /// The graded health's thresholds and the action on entering each level (defaults in <see cref="HealthThresholds"/>;
    /// configuration <c>WebRtc:Health:RoundTripDegraded=00:00:00.250</c>, <c>WebRtc:Health:OnUnhealthy=Notify,End</c>).
    /// </summary>
    public HealthThresholds Health { get; set; } = new();

    /// <summary>Whether handlers get their health level changes as inputs (<see cref="StreamServerOptions.HealthInputs"/>). Default false.</summary>
    public bool HealthInputs { get; set; }

    /// <summary>
    /// The session server's options: <see cref="Limits"/>, <see cref="HealthCheckInterval"/>, <see cref="Health"/> and <see cref="HealthInputs"/>.
    /// </summary>
    public StreamServerOptions ToServerOptions() =>
        Limits.ApplyTo(new StreamServerOptions { HealthCheckInterval = HealthCheckInterval, Health = Health, HealthInputs = HealthInputs });

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> or <see cref="ArgumentException"/> for an option out of range.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Limits);
        Limits.Validate();
        if (UdpPort is < 0 or > 65535) throw new ArgumentOutOfRangeException(nameof(UdpPort), "WebRtc:UdpPort is not a port");
        ArgumentNullException.ThrowIfNull(UdpAddress);
        if (UdpAddress.Trim() != "*" && ParseUdpAddresses().Count == 0)
            throw new ArgumentException("WebRtc:UdpAddress names no address (give an IP address, or * for every address)", nameof(UdpAddress));
        if (HealthCheckInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(HealthCheckInterval));
        ArgumentNullException.ThrowIfNull(Relay);
        Relay.Validate();
    }
}

/// <summary>Options of the WebSocket stream sessions at <c>/ws</c>.</summary>
public sealed record StreamSessionOptions
{
    /// <summary>The server pings a WebSocket client this often. Default 15 s.</summary>
    public TimeSpan WebSocketKeepAliveInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>A WebSocket client that has not answered a ping within this is closed (reason TransportFailed). Default 10 s.</summary>
    public TimeSpan WebSocketKeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The WebSocket stream transport's queues; its message size is <see cref="WebRtcServerLimits.MaxStreamMessageSize"/>.</summary>
    public WebSocketTransportOptions WebSocket { get; set; } = new();
}
