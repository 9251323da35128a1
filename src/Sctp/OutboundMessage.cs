namespace Transport.Sctp;

/// <summary>A message queued for sending, pooled so that steady-state sending allocates nothing.</summary>
internal sealed class OutboundMessage
{
    public byte[] Buffer = [];
    public int Length;
    public ushort Stream;
    public ushort Ssn;
    public uint Ppid;
    public bool Unordered;
    public bool SsnAssigned;
    /// <summary>RFC 3758 per-message retransmission limit, or -1 for none.</summary>
    public int MaxRetransmits;
    /// <summary>RFC 3758 lifetime: abandoned when not delivered by then (TimeSpan.MaxValue: never).</summary>
    public TimeSpan Expiry;
    /// <summary>Bytes already cut into DATA chunks.</summary>
    public int Fragmented;
    /// <summary>Chunks in the retransmission ring plus one while still being fragmented.</summary>
    public int References;
    public bool Abandoned;
    public DataChannel? Channel;

    public void Release(Stack<OutboundMessage> pool, BufferPool buffers)
    {
        if (--References > 0) return;
        if (Buffer.Length > 0) buffers.Return(Buffer);
        Buffer = [];
        Channel = null;
        if (pool.Count < 1024) pool.Push(this);
    }
}

/// <summary>One DATA chunk in the retransmission ring, indexed by TSN.</summary>
internal struct OutChunk
{
    public OutboundMessage Message;
    public int Offset;
    public int Length;
    public byte Flags;
    public ChunkState State;
    public int Transmits;
    public int Misses;
    public bool FastRetransmitted;
}

internal enum ChunkState : byte
{
    /// <summary>Sent, counted in the flight size.</summary>
    InFlight,
    /// <summary>Acknowledged by a gap block (not yet by the cumulative ack).</summary>
    GapAcked,
    /// <summary>To be sent again.</summary>
    Retransmit,
    /// <summary>Given up by partial reliability; covered by FORWARD TSN.</summary>
    Abandoned,
}
