namespace Transport.Sctp;

/// <summary>
/// What an association dropped or did, for diagnosis and for the tests that show hostile input is bounded.
/// Bad input is dropped and counted here, never thrown.
/// </summary>
public sealed class SctpCounters
{
    /// <summary>Packets whose CRC32c did not match.</summary>
    public long BadChecksum { get; internal set; }
    /// <summary>Packets whose verification tag did not match (RFC 9260 section 8.5).</summary>
    public long BadVerificationTag { get; internal set; }
    /// <summary>Packets or chunks that could not be parsed.</summary>
    public long Malformed { get; internal set; }
    /// <summary>COOKIE ECHOs with a bad signature or past their lifetime.</summary>
    public long BadCookie { get; internal set; }
    /// <summary>DATA chunks with a TSN beyond what we track (out of window).</summary>
    public long OutOfWindowTsn { get; internal set; }
    /// <summary>DATA chunks dropped because the receive buffer was full.</summary>
    public long ReceiveBufferFull { get; internal set; }
    /// <summary>Messages dropped on receipt because they exceed the maximum message size.</summary>
    public long OversizeMessage { get; internal set; }
    /// <summary>Duplicate DATA chunks.</summary>
    public long DuplicateTsn { get; internal set; }
    /// <summary>SACKs acknowledging data we never sent, or otherwise inconsistent.</summary>
    public long BogusSack { get; internal set; }
    /// <summary>DATA on a stream id beyond the negotiated inbound streams.</summary>
    public long InvalidStream { get; internal set; }
    /// <summary>Chunks of unknown or unexpected type that were skipped.</summary>
    public long UnexpectedChunk { get; internal set; }
    /// <summary>Packets received and accepted.</summary>
    public long PacketsReceived { get; internal set; }
    /// <summary>Packets sent.</summary>
    public long PacketsSent { get; internal set; }
    /// <summary>DATA chunks sent, first transmissions and retransmissions alike (the denominator of a retransmission fraction).</summary>
    public long DataChunksSent { get; internal set; }
    /// <summary>DATA chunks sent again (T3-rtx or fast retransmit).</summary>
    public long Retransmissions { get; internal set; }
    /// <summary>Fast retransmit events (RFC 9260 section 7.2.4).</summary>
    public long FastRetransmits { get; internal set; }
    /// <summary>T3-rtx expirations.</summary>
    public long T3Expirations { get; internal set; }
    /// <summary>Messages abandoned by partial reliability (RFC 3758).</summary>
    public long AbandonedMessages { get; internal set; }
    /// <summary>FORWARD TSN chunks sent.</summary>
    public long ForwardTsnSent { get; internal set; }
    /// <summary>FORWARD TSN chunks received.</summary>
    public long ForwardTsnReceived { get; internal set; }
    /// <summary>
    /// DATA_CHANNEL_OPENs refused: over <see cref="SctpLimits"/> (the stream is reset), or arriving once a shutdown
    /// began (RFC 9260 section 9.2: no new data is accepted from the upper layer, so no ACK can be sent).
    /// </summary>
    public long RefusedChannels { get; internal set; }
    /// <summary>Messages delivered to the application.</summary>
    public long MessagesDelivered { get; internal set; }
    /// <summary>Memory owners of messages queued without a copy whose Dispose threw (counted; the association goes on).</summary>
    public long OwnerDisposeFailures { get; internal set; }
}
