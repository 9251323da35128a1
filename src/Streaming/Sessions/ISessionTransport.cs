using System.Threading.Channels;

namespace Transport.Streaming.Sessions;

/// <summary>
/// What a <see cref="StreamSession"/> needs from the connection to its client: WebRTC (a peer connection) or a
/// plain WebSocket. Implementations never throw from <see cref="SendAsync"/> for a connection that ended: they
/// throw <see cref="TransportNotConnectedException"/>, which the session treats as the end.
/// </summary>
public interface ISessionTransport : IAsyncDisposable
{
    /// <summary>"webrtc" or "websocket", for health and logs.</summary>
    string Kind { get; }

    /// <summary>Inputs from the client. Completes when the client can send no more.</summary>
    ChannelReader<StreamInput> Inputs { get; }

    /// <summary>Completes once the transport is connected (media can flow). Never faults.</summary>
    Task Connected { get; }

    /// <summary>Completes when the transport ended on its own (client closed, failure), with the reason. Never faults.</summary>
    Task<SessionEndReason> Ended { get; }

    /// <summary>Sends a data message or a media frame.</summary>
    ValueTask SendAsync(StreamOutput output, CancellationToken cancellationToken);

    /// <summary>Sends a JSON control message (<c>end_stream</c>, <c>error</c>, <c>output</c>).</summary>
    ValueTask SendControlAsync(ReadOnlyMemory<byte> json, CancellationToken cancellationToken);

    /// <summary>Waits until everything queued so far has been handed to the network, or the transport ended.</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken);

    /// <summary>Closes: tells the client where the protocol can (close frame, close_notify, ABORT, BYE) and frees everything.</summary>
    ValueTask CloseAsync(SessionEndReason reason);

    /// <summary>The transport's part of the health snapshot.</summary>
    TransportHealth GetHealth();
}

/// <summary>A transport that carries media (WebRTC): its outgoing track names, and key frame requests to the client.</summary>
public interface IMediaSessionTransport
{
    /// <summary>The names of the tracks we can send on ("audio", "video").</summary>
    IReadOnlySet<string> OutgoingTracks { get; }

    /// <summary>Asks the client for a key frame of its <paramref name="track"/> (RTCP PLI); false when it sends no such track.</summary>
    ValueTask<bool> RequestKeyFrameAsync(string track, CancellationToken cancellationToken);
}

/// <summary>
/// The transport's liveness as the health check sees it. Durations are null where unknown. <see cref="LossFraction"/>
/// is in [0, 1] (for WebRTC: retransmitted SCTP DATA chunks over DATA chunks sent in the last 10 s, null when fewer
/// than 10 were sent in them).
/// </summary>
public sealed record TransportHealth(
    string State,
    string? SelectedCandidatePair = null,
    TimeSpan? RoundTripTime = null,
    TimeSpan? ConsentAge = null,
    TimeSpan? SinceLastReceived = null,
    TimeSpan? SinceLastSent = null,
    double? LossFraction = null,
    long BitrateIn = 0,
    long BitrateOut = 0,
    TimeSpan? DisconnectedFor = null)
{
    /// <summary>
    /// True when <see cref="SelectedCandidatePair"/> is nominated; false for the valid pair data goes on before nomination (RFC 8445 section 12.1).
    /// </summary>
    public bool PairNominated { get; init; }

    /// <summary>Why the transport is in <see cref="State"/> (for example the ICE timer that made it disconnected), or null.</summary>
    public string? StateReason { get; init; }

    /// <summary>Interarrival jitter of the client's media, the worst of its tracks (RFC 3550 A.8), or null without media.</summary>
    public TimeSpan? Jitter { get; init; }

    /// <summary>Loss of our media from the client's transport-cc feedback (0-1), or null without it.</summary>
    public double? MediaLossFraction { get; init; }

    /// <summary>Bits per second of our media the client received (transport-cc feedback), or null without it.</summary>
    public double? MediaDeliveryRate { get; init; }

    /// <summary>Bits per second of media payload we sent (the frames, without RTP headers; 0 without media).</summary>
    public long MediaBitrateOut { get; init; }

    /// <summary>Bytes queued to the client and not yet acknowledged (SCTP's outbound buffer; a WebSocket's send queue).</summary>
    public long SendBacklogBytes { get; init; }
}
