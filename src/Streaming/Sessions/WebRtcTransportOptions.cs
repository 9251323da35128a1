using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Sessions;

/// <summary>Options of the WebRTC session transport, with their defaults.</summary>
public sealed record WebRtcTransportOptions
{
    /// <summary>
    /// The label of the control data channel: JSON control messages (<c>end_stream</c>, <c>error</c>, <c>output</c>,
    /// <c>ping</c>/<c>pong</c>, <c>bye</c>) travel on it. Every other channel carries data. Default "control".
    /// </summary>
    public string ControlChannelLabel { get; init; } = "control";

    /// <summary>The label of the data channel the server opens when it must send data and the client opened none. Default "data".</summary>
    public string DefaultDataChannelLabel { get; init; } = "data";

    /// <summary>
    /// After the connection is up, how long the server waits for the client to open the control channel before it
    /// opens one itself (a browser's channels are announced by DCEP right after SCTP is up). Default 300 ms.
    /// </summary>
    public TimeSpan ControlChannelWait { get; init; } = TimeSpan.FromMilliseconds(300);

    /// <summary>Inputs queued for the handler; a full queue holds further messages in the connection's event queue. Default 256.</summary>
    public int InputQueueCapacity { get; init; } = 256;

    /// <summary>
    /// Bytes of data messages queued for the handler at most. When the next message would pass it, the transport
    /// stops reading the connection's events: the messages stay unread there and count against
    /// <see cref="PeerConnectionOptions.MaxUnreadBytes"/>, so the SCTP window closes and the client waits; nothing is
    /// dropped. A single message larger than the bound is still queued alone. Default 1 MiB.
    /// </summary>
    public int InputQueueMaxBytes { get; init; } = 1 << 20;

    /// <summary>Bytes buffered on a data channel above which sending waits (back-pressure on the handler). Default 1 MiB.</summary>
    public long SendHighWaterMark { get; init; } = 1 << 20;

    /// <summary>How often the health snapshot is refreshed from the peer connection. Default 250 ms.</summary>
    public TimeSpan HealthRefreshInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// How often a <c>{"type":"ping","id":N}</c> goes out on the control channel; the client's <c>pong</c> with the
    /// same id gives the round-trip time of the health snapshot. null: never. Default 1 s.
    /// </summary>
    public TimeSpan? RoundTripProbeInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest a flush (before end_stream and before the close) waits for the client to acknowledge. Default 5 s.</summary>
    public TimeSpan FlushTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// When the client asks for a key frame of our video (PLI/FIR), ask the client's own video track for one: right
    /// for echoes and forwarding, where our video is the client's. Default true.
    /// </summary>
    public bool ForwardKeyFrameRequests { get; init; } = true;

    /// <summary>
    /// For every audio and video section of the client's offer, the server adds a track of that kind before it
    /// answers, so it can send media back (the answer is then sendrecv). Default true.
    /// </summary>
    public bool AnswerMediaWithTracks { get; init; } = true;

    /// <summary>
    /// When the peer connections' ICE options name STUN or TURN servers (<c>PeerConnection.Ice.StunServers</c>,
    /// <c>TurnServers</c>), our answer waits until gathering ends, at most this long, and carries the
    /// server-reflexive and relayed candidates gathered by then (WHIP clients take no candidates trickled from the
    /// server). Zero: the answer goes at once with what is known (host candidates and
    /// <see cref="WebRtc.PeerConnectionOptions.PublicAddresses"/>). Default 3 s (a STUN server that does not answer
    /// costs this much per offer; one that answers costs a round trip).
    /// </summary>
    public TimeSpan GatheringTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Options of the server's peer connections (ICE role is forced to controlled: the client offers).</summary>
    public PeerConnectionOptions PeerConnection { get; init; } = new();
}
