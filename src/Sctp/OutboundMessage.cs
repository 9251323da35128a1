namespace Transport.Sctp;

/// <summary>A message queued for sending, pooled so that steady-state sending allocates nothing.</summary>
internal sealed class OutboundMessage
{
    /// <summary>The pool's copy of the message, or empty when <see cref="Owner"/> lent its memory (no copy).</summary>
    public byte[] Buffer = [];
    /// <summary>The message's bytes: the start of <see cref="Buffer"/>, or the caller's memory.</summary>
    public ReadOnlyMemory<byte> Data;
    /// <summary>
    /// The caller's memory owner when the message was queued without a copy: disposed once no chunk of the message can
    /// be sent again (acknowledged, abandoned, or the association ended).
    /// </summary>
    public IDisposable? Owner;
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

    // As many as a full send buffer of small messages (16 MiB of 1 KiB, PeerConnectionOptions.MaxBufferedAmount's
    // default): beyond 1024 a bulk sender of small messages allocated one per message. The pool is dropped when idle.
    private const int MaxPooled = 16384;

    public void Release(Stack<OutboundMessage> pool, BufferPool buffers, SctpCounters counters)
    {
        if (--References > 0) return;
        DropData(buffers, counters);
        Channel = null;
        if (pool.Count < MaxPooled) pool.Push(this);
    }

    /// <summary>Gives the bytes back: the pool's copy to the pool, the caller's memory to its owner (once).</summary>
    public void DropData(BufferPool buffers, SctpCounters counters)
    {
        if (Buffer.Length > 0) buffers.Return(Buffer);
        Buffer = [];
        Data = default;
        if (Owner is { } owner)
        {
            Owner = null;
            // The owner is the application's: its failure must not break the association.
            try { owner.Dispose(); }
            catch (Exception) { counters.OwnerDisposeFailures++; }
        }
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
