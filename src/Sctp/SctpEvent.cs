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
    /// <summary>The association reached <see cref="SctpState.Established"/>.</summary>
    Established,
    /// <summary>The association closed (SHUTDOWN completed, or ABORT sent or received): see Reason and Cause.</summary>
    Closed,
    /// <summary>The association failed (retransmission limit, handshake limit): see Reason.</summary>
    Failed,
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

/// <summary>
/// An output of the association. A value type so that delivering a message allocates nothing. The bytes in
/// <see cref="Data"/> are valid until the next call to <see cref="SctpAssociation.TryPollEvent"/>: copy them
/// to keep them.
/// </summary>
public readonly record struct SctpEvent(
    SctpEventKind Kind,
    DataChannel? Channel = null,
    ReadOnlyMemory<byte> Data = default,
    bool IsBinary = true,
    ushort StreamId = 0,
    uint Ppid = 0,
    string? Reason = null,
    SctpErrorCause Cause = SctpErrorCause.None)
{
    /// <summary>Receive-buffer bytes this event holds (returned when the next event is polled).</summary>
    internal int Accounted { get; init; }
}
