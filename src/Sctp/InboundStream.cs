namespace Transport.Sctp;

/// <summary>A received DATA fragment waiting for the rest of its message (RFC 9260 section 6.9).</summary>
internal struct Fragment
{
    public uint Tsn;
    public byte Flags;
    public ushort Ssn;
    public uint Ppid;
    public byte[] Buffer;
    public int Length;
}

/// <summary>A complete ordered message waiting for its turn (RFC 9260 section 6.6).</summary>
internal struct ReadyMessage
{
    public ushort Ssn;
    public uint Ppid;
    public byte[] Buffer;
    public int Length;
}

/// <summary>Receive state of one inbound stream.</summary>
internal sealed class InboundStream(ushort id)
{
    public readonly ushort Id = id;
    public ushort NextSsn;
    /// <summary>Fragments sorted by TSN.</summary>
    public readonly List<Fragment> Fragments = new();
    /// <summary>Complete ordered messages that arrived ahead of <see cref="NextSsn"/>, sorted by SSN.</summary>
    public readonly List<ReadyMessage> Pending = new();
    /// <summary>Cache of the incomplete run at the end of <see cref="Fragments"/> (from a B fragment), for in-order appends.</summary>
    public bool RunValid;
    public uint RunStartTsn, RunEndTsn;
    public long RunBytes;
    /// <summary>While set, fragments continuing an oversize message are discarded up to its end.</summary>
    public bool Discarding;
    public uint DiscardLastTsn;
}
