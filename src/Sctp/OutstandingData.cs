using Transport.Sctp.Wire;

namespace Transport.Sctp;

/// <summary>
/// The sender's DATA chunks between the cumulative TSN ack and the next TSN (RFC 9260 sections 6.1-6.3, 7.2.4; RFC 3758
/// section 3.5): a ring indexed by TSN that grows by doubling, each chunk in flight, acked by a gap block, to retransmit
/// or abandoned; the flight size (bytes in flight), how many chunks wait for retransmission, and the advanced peer ack
/// point over abandoned chunks. It does the bookkeeping of acknowledgement, retransmission marking and abandoning; the
/// decisions (when to retransmit, what partial reliability abandons, the congestion window, timers, RTT samples) stay
/// with the association. A chunk holds a reference to its message, released when the cumulative ack passes it.
/// </summary>
internal sealed class OutstandingData
{
    private readonly Stack<OutboundMessage> _messagePool;
    private readonly BufferPool _pool;
    private readonly SctpCounters _counters;
    // 16 entries while idle rather than 256 (8 KiB) per association.
    private OutChunk[] _ring = new OutChunk[16];

    public OutstandingData(Stack<OutboundMessage> messagePool, BufferPool pool, SctpCounters counters)
    {
        _messagePool = messagePool;
        _pool = pool;
        _counters = counters;
    }

    /// <summary>The TSN the next new chunk gets.</summary>
    public uint NextTsn { get; private set; }
    /// <summary>The highest TSN the peer acknowledged cumulatively (none yet: TSN -1).</summary>
    public uint CumulativeAck { get; private set; } = uint.MaxValue;
    /// <summary>The advanced peer ack point (RFC 3758 section 3.5): the cumulative ack moved over abandoned chunks.</summary>
    public uint AdvancedPeerAck { get; private set; }
    /// <summary>Bytes of chunks in flight (sent, not acknowledged, not marked for retransmission).</summary>
    public int FlightSize { get; private set; }
    /// <summary>Chunks marked for retransmission.</summary>
    public int RetransmitCount { get; private set; }
    /// <summary>No TSN below which a chunk marked for retransmission lies (where the retransmission scan starts).</summary>
    public uint RetransmitHint { get; set; }
    /// <summary>True when every chunk sent is acknowledged cumulatively.</summary>
    public bool AllAcked => CumulativeAck + 1 == NextTsn;
    /// <summary>The ring's capacity (for tests).</summary>
    public int Capacity => _ring.Length;

    /// <summary>Starts numbering at <paramref name="initialTsn"/>.</summary>
    public void Start(uint initialTsn)
    {
        NextTsn = initialTsn;
        CumulativeAck = initialTsn - 1;
        AdvancedPeerAck = CumulativeAck;
        RetransmitHint = initialTsn;
    }

    /// <summary>The chunk of <paramref name="tsn"/> (which must lie after the cumulative ack and before the next TSN).</summary>
    public ref OutChunk At(uint tsn) => ref _ring[tsn & (uint)(_ring.Length - 1)];

    /// <summary>
    /// Sends a new chunk: <paramref name="length"/> bytes of <paramref name="message"/> from <paramref name="offset"/>
    /// with DATA <paramref name="flags"/>; it is in flight, transmitted once, and holds a reference to the message.
    /// Returns its TSN.
    /// </summary>
    public uint Add(OutboundMessage message, int offset, int length, byte flags)
    {
        if (NextTsn - CumulativeAck - 1 >= _ring.Length) Grow();
        var tsn = NextTsn++;
        At(tsn) = new OutChunk { Message = message, Offset = offset, Length = length, Flags = flags, State = ChunkState.InFlight, Transmits = 1 };
        message.References++;
        FlightSize += length;
        return tsn;
    }

    private void Grow()
    {
        var bigger = new OutChunk[_ring.Length * 2];
        for (var tsn = CumulativeAck + 1; tsn != NextTsn; tsn++) bigger[tsn & (uint)(bigger.Length - 1)] = At(tsn);
        _ring = bigger;
    }

    /// <summary>
    /// The cumulative TSN ack moved to <paramref name="cum"/> (after the current one, before <see cref="NextTsn"/>): the
    /// chunks up to it leave, their messages released. Returns the bytes acknowledged now (in flight or waiting for
    /// retransmission; not those acked before by a gap block or abandoned). <paramref name="watchedAcked"/>: whether
    /// <paramref name="watched"/> (the chunk timed for an RTT sample) was among them.
    /// </summary>
    public long AckCumulative(uint cum, uint? watched, out bool watchedAcked)
    {
        long acked = 0;
        watchedAcked = false;
        for (var tsn = CumulativeAck + 1; Serial.Le(tsn, cum); tsn++)
        {
            ref var c = ref At(tsn);
            switch (c.State)
            {
                case ChunkState.InFlight: FlightSize -= c.Length; acked += c.Length; break;
                case ChunkState.Retransmit: RetransmitCount--; acked += c.Length; break;
            }
            if (tsn == watched) watchedAcked = true;
            c.Message.Release(_messagePool, _pool, _counters);
            c = default;
        }
        CumulativeAck = cum;
        if (Serial.Lt(AdvancedPeerAck, cum)) AdvancedPeerAck = cum;
        return acked;
    }

    /// <summary>
    /// A gap ack block acknowledged <paramref name="first"/>..<paramref name="last"/> (after the cumulative ack, before
    /// <see cref="NextTsn"/>): chunks in flight or waiting for retransmission become gap-acked. Returns the bytes newly
    /// acknowledged; raises <paramref name="highestNewlyAcked"/> and sets <paramref name="watchedAcked"/> as it finds them.
    /// </summary>
    public long AckGapBlock(uint first, uint last, uint? watched, ref uint highestNewlyAcked, ref bool watchedAcked)
    {
        long acked = 0;
        for (var tsn = first; Serial.Le(tsn, last); tsn++)
        {
            ref var c = ref At(tsn);
            if (c.State == ChunkState.InFlight) FlightSize -= c.Length;
            else if (c.State == ChunkState.Retransmit) RetransmitCount--;
            else continue;
            c.State = ChunkState.GapAcked;
            acked += c.Length;
            if (Serial.Gt(tsn, highestNewlyAcked)) highestNewlyAcked = tsn;
            if (tsn == watched) watchedAcked = true;
        }
        return acked;
    }

    /// <summary>The chunk leaves the flight and waits for retransmission.</summary>
    public void MarkForRetransmit(uint tsn, ref OutChunk c)
    {
        FlightSize -= c.Length;
        c.State = ChunkState.Retransmit;
        RetransmitCount++;
        if (Serial.Lt(tsn, RetransmitHint) || Serial.Le(RetransmitHint, CumulativeAck)) RetransmitHint = tsn;
    }

    /// <summary>A chunk marked for retransmission was sent again: in flight once more, its miss count reset.</summary>
    public void Retransmitted(ref OutChunk c)
    {
        c.State = ChunkState.InFlight;
        c.Transmits++;
        c.Misses = 0;
        RetransmitCount--;
        FlightSize += c.Length;
    }

    /// <summary>Every chunk of <paramref name="message"/> is abandoned (RFC 3758 section 3.5): out of the flight, never sent again.</summary>
    public void AbandonChunksOf(OutboundMessage message)
    {
        for (var tsn = CumulativeAck + 1; tsn != NextTsn; tsn++)
        {
            ref var c = ref At(tsn);
            if (!ReferenceEquals(c.Message, message)) continue;
            if (c.State == ChunkState.InFlight) FlightSize -= c.Length;
            else if (c.State == ChunkState.Retransmit) RetransmitCount--;
            c.State = ChunkState.Abandoned;
        }
    }

    /// <summary>
    /// Moves the advanced peer ack point over abandoned chunks (RFC 3758 section 3.5 C1); true when it lies beyond the
    /// cumulative ack, so a FORWARD TSN is due.
    /// </summary>
    public bool AdvancePeerAckPoint()
    {
        if (Serial.Lt(AdvancedPeerAck, CumulativeAck)) AdvancedPeerAck = CumulativeAck;
        while (AdvancedPeerAck + 1 != NextTsn && At(AdvancedPeerAck + 1).State == ChunkState.Abandoned) AdvancedPeerAck++;
        return Serial.Gt(AdvancedPeerAck, CumulativeAck);
    }

    /// <summary>The association ended: each chunk's message goes to <paramref name="drop"/>, and nothing is outstanding.</summary>
    public void Clear(Action<OutboundMessage> drop)
    {
        // Before set-up the TSNs are not initialised: nothing is in the ring.
        for (var tsn = CumulativeAck + 1; tsn != NextTsn; tsn++)
        {
            ref var c = ref At(tsn);
            if (c.Message is { } m) drop(m);
            c = default;
        }
        CumulativeAck = NextTsn - 1;
        FlightSize = 0;
        RetransmitCount = 0;
    }
}
