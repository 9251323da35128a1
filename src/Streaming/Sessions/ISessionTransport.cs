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

/// <summary>The transport's liveness as the health check sees it. Durations are null where unknown.</summary>
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
    TimeSpan? DisconnectedFor = null);
