namespace Transport.Sctp;

/// <summary>The states of an association, RFC 9260 section 4, folded for the application.</summary>
public enum SctpState
{
    /// <summary>Nothing sent or received yet.</summary>
    Closed,
    /// <summary>INIT sent, waiting for INIT ACK.</summary>
    CookieWait,
    /// <summary>COOKIE ECHO sent, waiting for COOKIE ACK.</summary>
    CookieEchoed,
    /// <summary>Data flows.</summary>
    Established,
    /// <summary>The application asked for shutdown; outstanding data is being delivered.</summary>
    ShutdownPending,
    /// <summary>SHUTDOWN sent.</summary>
    ShutdownSent,
    /// <summary>SHUTDOWN received; outstanding data is being delivered.</summary>
    ShutdownReceived,
    /// <summary>SHUTDOWN ACK sent.</summary>
    ShutdownAckSent,
    /// <summary>Closed cleanly (SHUTDOWN) or by an ABORT.</summary>
    Terminated,
    /// <summary>Failed: too many retransmissions, or a protocol error.</summary>
    Failed,
}

/// <summary>The timers of an association (RFC 9260 sections 5.1, 6.2, 6.3, 8.3, 9.2; RFC 6525 section 5.1.1).</summary>
public enum SctpTimer
{
    /// <summary>No timer runs.</summary>
    None,
    /// <summary>T1-init / T1-cookie: INIT or COOKIE ECHO retransmission.</summary>
    T1Init,
    /// <summary>T2-shutdown: SHUTDOWN or SHUTDOWN ACK retransmission.</summary>
    T2Shutdown,
    /// <summary>T3-rtx: DATA retransmission.</summary>
    T3Rtx,
    /// <summary>Delayed SACK.</summary>
    DelayedAck,
    /// <summary>RE-CONFIG request retransmission.</summary>
    Reconfig,
    /// <summary>HEARTBEAT.</summary>
    Heartbeat,
}

/// <summary>Kinds of <see cref="SctpEvent"/>.</summary>
public enum SctpEventKind
{
    /// <summary>
    /// The state changed (Previous, State, Reason, Detail; Cause for an ABORT): every state of RFC 9260 section 4 is
    /// reported when entered, the handshake's (CookieWait, CookieEchoed), <see cref="SctpState.Established"/>, the
    /// shutdown's (ShutdownPending, ShutdownSent, ShutdownReceived, ShutdownAckSent), and the end:
    /// <see cref="SctpState.Terminated"/> (SHUTDOWN completed, or ABORT sent or received) or <see cref="SctpState.Failed"/>
    /// (a retransmission limit, or our ABORT after a protocol violation). The side that answers an INIT holds no state
    /// until the COOKIE ECHO (section 5.1), so it goes from Closed to Established; so does SNAP.
    /// </summary>
    StateChanged,
    /// <summary>A data channel opened (Channel).</summary>
    ChannelOpen,
    /// <summary>A data channel message arrived (Channel, Data, IsBinary).</summary>
    ChannelMessage,
    /// <summary>A data channel closed (Channel).</summary>
    ChannelClosed,
    /// <summary>A data channel's BufferedAmount fell to or below its low threshold.</summary>
    BufferedAmountLow,
    /// <summary>A message on a stream that carries no data channel (StreamId, Ppid, Data).</summary>
    StreamMessage,
    /// <summary>The peer reset an incoming stream that carries no data channel (StreamId).</summary>
    StreamReset,
}

/// <summary>Why the state changed (<see cref="SctpEvent.Reason"/> of a <see cref="SctpEventKind.StateChanged"/>).</summary>
public enum SctpStateReason
{
    /// <summary>Not a state change.</summary>
    None,
    /// <summary>Established: the four-way handshake completed (or the association started from the peer's INIT, SNAP).</summary>
    HandshakeComplete,
    /// <summary>Terminated: the graceful shutdown completed (RFC 9260 section 9.2).</summary>
    ShutdownComplete,
    /// <summary>Terminated: <see cref="SctpAssociation.Shutdown"/> before the association was established.</summary>
    ShutdownBeforeEstablished,
    /// <summary>Terminated (<see cref="SctpAssociation.Abort"/>) or Failed (the peer broke the protocol): we sent ABORT.</summary>
    AbortSent,
    /// <summary>Terminated: the peer sent ABORT (<see cref="SctpEvent.Cause"/>).</summary>
    AbortReceived,
    /// <summary>Failed: a timer ran past its retransmission limit (T1-init, T2-shutdown, T3-rtx, heartbeat, stream reset; Detail names it).</summary>
    RetransmissionLimit,
    /// <summary>CookieWait: <see cref="SctpAssociation.Connect"/> sent INIT (RFC 9260 section 5.1 A).</summary>
    InitSent,
    /// <summary>CookieEchoed: the INIT ACK came and COOKIE ECHO was sent (section 5.1 C).</summary>
    InitAckReceived,
    /// <summary>ShutdownPending: the application called <see cref="SctpAssociation.Shutdown"/> (section 9.2).</summary>
    ShutdownRequested,
    /// <summary>ShutdownSent: all outstanding data was acknowledged and SHUTDOWN was sent (section 9.2).</summary>
    ShutdownSent,
    /// <summary>ShutdownReceived: the peer sent SHUTDOWN (section 9.2).</summary>
    ShutdownReceived,
    /// <summary>
    /// ShutdownAckSent: SHUTDOWN ACK was sent, after the peer's SHUTDOWN once all our outstanding data was acknowledged,
    /// or at once when the peer's SHUTDOWN crossed ours (section 9.2).
    /// </summary>
    ShutdownAckSent,
}

/// <summary>
/// An output of the association: a union over <see cref="Kind"/>, a value type so that delivering a message
/// allocates nothing. The bytes in <see cref="Data"/> are valid until the next call to
/// <see cref="SctpAssociation.TryPollEvent"/>: copy them to keep them (or take them, <see cref="SctpAssociation.TakeEventBuffer"/>).
/// </summary>
/// <param name="Kind">Which event; it says which of the other members are set.</param>
/// <param name="Channel">The data channel (ChannelOpen, ChannelMessage, ChannelClosed, BufferedAmountLow).</param>
/// <param name="Data">The message (ChannelMessage, StreamMessage), valid until the next poll.</param>
/// <param name="IsBinary">Binary or text message (ChannelMessage).</param>
/// <param name="StreamId">The stream (channel events, StreamMessage, StreamReset).</param>
/// <param name="Ppid">The payload protocol identifier (StreamMessage).</param>
/// <param name="Detail">A sentence for logs (StateChanged): the chunk or timer behind the change; no logic reads it.</param>
/// <param name="Cause">The SCTP error cause of an ABORT (StateChanged to Terminated or Failed).</param>
public readonly record struct SctpEvent(
    SctpEventKind Kind,
    DataChannel? Channel = null,
    ReadOnlyMemory<byte> Data = default,
    bool IsBinary = true,
    ushort StreamId = 0,
    uint Ppid = 0,
    string? Detail = null,
    SctpErrorCause Cause = SctpErrorCause.None)
{
    /// <summary>When it happened: the <c>now</c> of the call that caused it.</summary>
    public TimeSpan At { get; init; }

    /// <summary>The state before (StateChanged).</summary>
    public SctpState Previous { get; init; }

    /// <summary>The state now (StateChanged).</summary>
    public SctpState State { get; init; }

    /// <summary>Why the state changed (StateChanged); None for the other kinds.</summary>
    public SctpStateReason Reason { get; init; }

    /// <summary>Receive-buffer bytes this event holds (returned when the next event is polled).</summary>
    internal int Accounted { get; init; }
}
