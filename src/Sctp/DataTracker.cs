using System.Buffers.Binary;
using Transport.Sctp.Wire;

namespace Transport.Sctp;

/// <summary>
/// The receiving side's record of DATA TSNs (RFC 9260 sections 6.2 and 6.7) and when to acknowledge them: the
/// cumulative TSN, the TSNs received beyond it (one bit each over a window of <see cref="Window"/>), the duplicates to
/// report, and the SACK schedule (at once on a gap, a duplicate or every second DATA packet, else within the delayed-ack
/// time). It writes the SACK chunk (section 3.3.4). It holds no payload: reassembly is another type's.
/// </summary>
internal sealed class DataTracker
{
    /// <summary>How many TSNs beyond the cumulative TSN are tracked; later ones are out of window.</summary>
    public const int Window = 1 << 14;
    /// <summary>At most this many duplicate TSNs are reported in one SACK.</summary>
    public const int MaxDuplicatesReported = 16;

    // One bit per TSN of the window (2 KiB; it was a bool each, 16 KiB), made at the first TSN that arrives out of
    // order: in-order data needs no bit, so an association that never saw a gap holds none. Every bit is clear again
    // once the cumulative TSN reaches the highest; TrimIdle then lets the array go.
    private ulong[] _seen = [];
    private uint _cum, _highest;
    private readonly uint[] _duplicates = new uint[MaxDuplicatesReported];
    private int _duplicateCount;
    private int _packetsSinceSack;

    /// <summary>The cumulative TSN: every TSN up to it has arrived (or was skipped by FORWARD TSN).</summary>
    public uint CumulativeTsn => _cum;
    /// <summary>The highest TSN received.</summary>
    public uint HighestTsn => _highest;
    /// <summary>Duplicates waiting to be reported in the next SACK.</summary>
    public int DuplicateCount => _duplicateCount;
    /// <summary>A SACK is owed to the peer.</summary>
    public bool SackPending { get; set; }
    /// <summary>The SACK owed must go now, not after the delayed-ack time.</summary>
    public bool SackImmediate { get; set; }
    /// <summary>When a delayed SACK is due, or null.</summary>
    public TimeSpan? DelayedAckDeadline { get; set; }

    /// <summary>Starts tracking from the peer's Initial TSN (the cumulative TSN is one below it).</summary>
    public void Start(uint peerInitialTsn)
    {
        _seen = [];
        _cum = peerInitialTsn - 1;
        _highest = _cum;
        _duplicateCount = 0;
        _packetsSinceSack = 0;
    }

    /// <summary>True when <paramref name="tsn"/> is beyond the cumulative TSN and was received.</summary>
    public bool Seen(uint tsn) { if (_seen.Length == 0) return false; var i = tsn & (Window - 1); return (_seen[i >> 6] & (1UL << (int)(i & 63))) != 0; }

    /// <summary>Whether the TSN bits are held (made at the first out-of-order TSN, let go by <see cref="TrimIdle"/>).</summary>
    public bool BitsHeld => _seen.Length != 0;

    /// <summary>Lets the TSN bits go when no gap is open (every bit is then clear); the next gap makes them again.</summary>
    public void TrimIdle() { if (_cum == _highest) _seen = []; }

    private void SetSeen(uint tsn, bool value)
    {
        if (_seen.Length == 0)
        {
            if (!value) return;
            _seen = new ulong[Window / 64];
        }
        var i = tsn & (Window - 1);
        if (value) _seen[i >> 6] |= 1UL << (int)(i & 63);
        else _seen[i >> 6] &= ~(1UL << (int)(i & 63));
    }

    /// <summary>
    /// A DATA TSN arrived and was already received: at or below the cumulative TSN, or seen within the window. It is
    /// recorded for the next SACK (up to <see cref="MaxDuplicatesReported"/>) and the SACK goes at once (section 6.2).
    /// </summary>
    public bool IsDuplicate(uint tsn)
    {
        if (!(Serial.Le(tsn, _cum) || Seen(tsn) && Serial.Le(tsn, _cum + Window))) return false;
        if (_duplicateCount < MaxDuplicatesReported) _duplicates[_duplicateCount++] = tsn;
        SackImmediate = true;
        return true;
    }

    /// <summary>True when <paramref name="tsn"/> lies beyond the window of TSNs that can be tracked.</summary>
    public bool IsBeyondWindow(uint tsn) => Serial.Gt(tsn, _cum + Window);

    /// <summary>
    /// Records a new TSN (not a duplicate, within the window) and moves the cumulative TSN over every TSN now
    /// contiguous. Asks for an immediate SACK when a gap is open or the TSN was out of sequence (section 6.7).
    /// </summary>
    public void Accept(uint tsn)
    {
        if (tsn == _cum + 1 && _highest == _cum)
        {
            _cum = _highest = tsn;   // in order with no gap: no bit needed, no immediate SACK
            return;
        }
        SetSeen(tsn, true);
        if (Serial.Gt(tsn, _highest)) _highest = tsn;
        var inSequence = tsn == _cum + 1;
        AdvanceOverReceived();
        if (!inSequence || _highest != _cum) SackImmediate = true;
    }

    private void AdvanceOverReceived()
    {
        while (Serial.Le(_cum + 1, _highest) && Seen(_cum + 1))
        {
            _cum++;
            SetSeen(_cum, false);
        }
    }

    /// <summary>
    /// FORWARD TSN (RFC 3758 section 3.6): moves the cumulative TSN to <paramref name="newCumulative"/> (which the
    /// caller checked lies within the window and beyond the current one), forgets what lies below, and continues over
    /// TSNs already received beyond it.
    /// </summary>
    public void ForwardTo(uint newCumulative)
    {
        var jump = newCumulative - _cum;
        if (jump >= Window) { if (_seen.Length != 0) Array.Clear(_seen); }
        else for (var t = _cum + 1; Serial.Le(t, newCumulative); t++) SetSeen(t, false);
        _cum = newCumulative;
        if (Serial.Lt(_highest, _cum)) _highest = _cum;
        AdvanceOverReceived();
    }

    /// <summary>
    /// After a packet that carried DATA (section 6.2): SACK at least every second such packet, at once when
    /// <paramref name="immediate"/> (not Established), else within <paramref name="delay"/> of <paramref name="now"/>.
    /// </summary>
    public void OnDataPacket(TimeSpan now, TimeSpan delay, bool immediate)
    {
        if (++_packetsSinceSack >= 2) SackImmediate = true;
        if (immediate) SackImmediate = true;
        if (!SackImmediate) DelayedAckDeadline ??= now + delay;
    }

    /// <summary>The delayed-ack timer expired: a pending SACK goes now.</summary>
    public void OnDelayedAckTimeout()
    {
        DelayedAckDeadline = null;
        if (SackPending) SackImmediate = true;
    }

    /// <summary>Forgets the SACK schedule (the association ended).</summary>
    public void Stop()
    {
        DelayedAckDeadline = null;
        SackPending = SackImmediate = false;
    }

    /// <summary>
    /// Writes a SACK chunk into <paramref name="d"/> advertising <paramref name="advertisedWindow"/>: gap ack blocks as
    /// offsets from the cumulative TSN and the duplicates seen since the last SACK (RFC 9260 section 3.3.4), leaving
    /// <paramref name="reserve"/> bytes for the control chunks that follow in the same packet (a peer that provokes
    /// many gaps must not crowd them out). Resets the schedule; returns the chunk's length.
    /// </summary>
    public int WriteSack(Span<byte> d, int reserve, uint advertisedWindow)
    {
        var maxBlocks = Math.Max(0, (d.Length - reserve - SackChunk.FixedLength - 4 * _duplicateCount) / 4);
        var p = SackChunk.FixedLength;
        var blocks = 0;
        if (Serial.Gt(_highest, _cum))
        {
            var end = _highest - _cum;
            uint off = 2;
            while (off <= end && blocks < maxBlocks)
            {
                while (off <= end && !Seen(_cum + off)) off++;
                if (off > end) break;
                var start = off;
                while (off <= end && Seen(_cum + off)) off++;
                BinaryPrimitives.WriteUInt16BigEndian(d[p..], (ushort)start);
                BinaryPrimitives.WriteUInt16BigEndian(d[(p + 2)..], (ushort)(off - 1));
                p += 4;
                blocks++;
            }
        }
        var dups = Math.Min(_duplicateCount, (d.Length - p) / 4);
        for (var i = 0; i < dups; i++) { BinaryPrimitives.WriteUInt32BigEndian(d[p..], _duplicates[i]); p += 4; }
        ChunkHeader.Write(d, ChunkType.Sack, 0, p);
        BinaryPrimitives.WriteUInt32BigEndian(d[4..], _cum);
        BinaryPrimitives.WriteUInt32BigEndian(d[8..], advertisedWindow);
        BinaryPrimitives.WriteUInt16BigEndian(d[12..], (ushort)blocks);
        BinaryPrimitives.WriteUInt16BigEndian(d[14..], (ushort)dups);
        _duplicateCount = 0;
        SackPending = SackImmediate = false;
        _packetsSinceSack = 0;
        DelayedAckDeadline = null;
        return p;
    }
}
