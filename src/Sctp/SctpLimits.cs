namespace Transport.Sctp;

/// <summary>
/// What a peer can make one association hold through DCEP (RFC 8832), beyond the receive buffer
/// (<see cref="SctpOptions.ReceiveBufferSize"/>). A DATA_CHANNEL_OPEN over a limit is refused: the stream is reset
/// (RFC 8831 section 6.7, so the peer sees its channel close), no channel is created, and
/// <see cref="SctpCounters.RefusedChannels"/> counts it. docs/sctp.md lists the defaults.
/// </summary>
public sealed record SctpLimits
{
    /// <summary>
    /// Data channels open at once on the association, ours and the peer's (default 1024). RFC 8831 allows one per
    /// stream (65535), which with long labels would pin gigabytes.
    /// </summary>
    public int MaxChannels { get; init; } = 1024;

    /// <summary>Largest label of a channel the peer opens, in bytes of UTF-8 (default 1024; RFC 8832 allows 65535).</summary>
    public int MaxLabelLength { get; init; } = 1024;

    /// <summary>Largest sub-protocol of a channel the peer opens, in bytes of UTF-8 (default 1024; RFC 8832 allows 65535).</summary>
    public int MaxProtocolLength { get; init; } = 1024;

    internal void Validate()
    {
        if (MaxChannels < 1) throw new ArgumentOutOfRangeException(nameof(MaxChannels), "MaxChannels must be at least 1.");
        if (MaxLabelLength is < 0 or > ushort.MaxValue) throw new ArgumentOutOfRangeException(nameof(MaxLabelLength), "MaxLabelLength must be in [0, 65535].");
        if (MaxProtocolLength is < 0 or > ushort.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(MaxProtocolLength), "MaxProtocolLength must be in [0, 65535].");
    }
}
