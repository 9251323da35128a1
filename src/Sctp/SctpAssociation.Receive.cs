using System.Buffers;
using System.Runtime.InteropServices;
using System.Buffers.Binary;
using Transport.Sctp.Wire;

namespace Transport.Sctp;

// Receiving: TSN tracking, duplicate detection, reassembly, ordered and unordered delivery (RFC 9260
// sections 6.2, 6.5, 6.6, 6.9), SACK generation with gap blocks and duplicates (section 3.3.4), delayed SACK
// (section 6.2), FORWARD TSN on the receiving side (RFC 3758 section 3.6), all bounded by the receive buffer.
public sealed partial class SctpAssociation
{
    /// <summary>How many TSNs beyond the cumulative TSN we track; later ones are out of window.</summary>
    internal const int TsnWindow = 1 << 14;
    private const int MaxDuplicatesReported = 16;

    // One bit per TSN of the window (2 KiB; it was a bool each, 16 KiB per association), made at the first TSN that
    // arrives out of order: in-order data needs no bit, so an association that never saw a gap holds none. Every bit
    // is clear again once the cumulative TSN reaches the highest; the idle trim then lets it go.
    private ulong[] _tsnSeenBits = [];

    private bool Seen(long tsn) { if (_tsnSeenBits.Length == 0) return false; var i = (uint)tsn & (TsnWindow - 1); return (_tsnSeenBits[i >> 6] & (1UL << (int)(i & 63))) != 0; }

    private void SetSeen(long tsn, bool value)
    {
        if (_tsnSeenBits.Length == 0)
        {
            if (!value) return;
            _tsnSeenBits = new ulong[TsnWindow / 64];
        }
        var i = (uint)tsn & (TsnWindow - 1);
        if (value) _tsnSeenBits[i >> 6] |= 1UL << (int)(i & 63);
        else _tsnSeenBits[i >> 6] &= ~(1UL << (int)(i & 63));
    }
    private uint _cumTsn, _highestTsn;
    private int _recvBuffered;
    private bool _sackPending, _sackImmediate, _windowWasClosed;
    private int _packetsSinceSack;
    private TimeSpan? _delayedAckDeadline;
    private readonly uint[] _duplicates = new uint[MaxDuplicatesReported];
    private int _duplicateCount;
    private InboundStream?[] _inStreams = [];
    private readonly List<InboundStream> _activeStreams = new();

    private int _unread, _lastAdvertised;

    private int AdvertisedWindow => Math.Max(0, ReceiveRoom);

    // What we can still take: the receive buffer less what reassembly and ordering hold, and with backpressure on
    // (SctpOptions.MaxUnreadBytes) the unread bound less what the application holds unread and what will reach it.
    private int ReceiveRoom => _o.MaxUnreadBytes > 0
        ? Math.Min(_o.ReceiveBufferSize - _recvBuffered, _o.MaxUnreadBytes - _unread - _recvBuffered)
        : _o.ReceiveBufferSize - _recvBuffered;

    private int WindowCapacity => _o.MaxUnreadBytes > 0 ? Math.Min(_o.ReceiveBufferSize, _o.MaxUnreadBytes) : _o.ReceiveBufferSize;

    /// <summary>The cumulative TSN we have received (for tests and diagnostics).</summary>
    internal uint CumulativeTsnReceived => _cumTsn;
    /// <summary>The highest TSN the peer has acknowledged cumulatively.</summary>
    internal uint CumulativeTsnAcked => _cumAck;
    /// <summary>Bytes held by fragments and waiting ordered messages.</summary>
    internal int HeldFragments
    {
        get
        {
            var n = 0;
            foreach (var s in _activeStreams) n += s.Fragments.Count + s.Pending.Count;
            return n;
        }
    }

    private void InitReceiveState() { }

    private void StartReceive(uint peerInitialTsn)
    {
        _tsnSeenBits = [];
        _cumTsn = peerInitialTsn - 1;
        _highestTsn = _cumTsn;
        _lastAdvertised = WindowCapacity;
        _inStreams = new InboundStream?[Math.Min((int)_inboundStreams, 16)];
    }

    private InboundStream Stream(ushort id)
    {
        if (id >= _inStreams.Length)
        {
            // Grown on demand: an association with 65535 negotiated streams usually uses a handful.
            var size = Math.Min((int)_inboundStreams, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)id + 1));
            Array.Resize(ref _inStreams, size);
        }
        var s = _inStreams[id];
        if (s is null)
        {
            s = new InboundStream(id);
            _inStreams[id] = s;
            _activeStreams.Add(s);
        }
        return s;
    }

    private void HandleData(ChunkHeader chunk)
    {
        if (!IsEstablishedLike && State != SctpState.ShutdownSent) return;
        if (!DataChunk.TryRead(chunk, out var data)) { Counters.Malformed++; return; }
        _sackPending = true;
        var tsn = data.Tsn;
        DebugTrace?.Invoke($"{_now.TotalMilliseconds:0} data {tsn} s{data.StreamId} f{data.Flags} len {data.Payload.Length} (cum {_cumTsn} high {_highestTsn} seen {Seen(tsn)})");
        if (Serial.Le(tsn, _cumTsn) || Seen(tsn) && Serial.Le(tsn, _cumTsn + TsnWindow))
        {
            Counters.DuplicateTsn++;
            if (_duplicateCount < MaxDuplicatesReported) _duplicates[_duplicateCount++] = tsn;
            _sackImmediate = true; // RFC 9260 section 6.2: report duplicates at once
            return;
        }
        if (Serial.Gt(tsn, _cumTsn + TsnWindow)) { Counters.OutOfWindowTsn++; _sackImmediate = true; return; }
        var len = data.Payload.Length;
        // RFC 9260 section 6.2: with no room, drop new data. One in-sequence chunk may use a small reserve so that
        // a full buffer of out-of-order data can still be completed and drained.
        var room = ReceiveRoom;
        if (len > room && !(tsn == _cumTsn + 1 && len <= room + ReceiveReserve))
        {
            Counters.ReceiveBufferFull++;
            _windowWasClosed = true;
            _sackImmediate = true;
            return;
        }
        var inSequence = tsn == _cumTsn + 1;
        if (inSequence && _highestTsn == _cumTsn) _cumTsn = _highestTsn = tsn;   // in order with no gap: no bit needed
        else
        {
            SetSeen(tsn, true);
            if (Serial.Gt(tsn, _highestTsn)) _highestTsn = tsn;
            while (Seen((_cumTsn + 1)) && Serial.Le(_cumTsn + 1, _highestTsn))
            {
                _cumTsn++;
                SetSeen(_cumTsn, false);
            }
        }
        if (!inSequence || _highestTsn != _cumTsn) _sackImmediate = true; // a gap: SACK at once (section 6.7)
        if ((data.Flags & DataChunk.FlagImmediate) != 0) _sackImmediate = true;
        if (data.StreamId >= _inboundStreams) { Counters.InvalidStream++; return; }

        var stream = Stream(data.StreamId);
        if (stream.Discarding)
        {
            if (tsn == stream.DiscardLastTsn + 1 && !data.Begin)
            {
                stream.DiscardLastTsn = tsn;
                if (data.End) stream.Discarding = false;
                Counters.OversizeMessage++;
                return;
            }
            if (data.Begin) stream.Discarding = false;
        }
        if (data.Begin && data.End)
        {
            var buffer = _pool.Rent(len);
            data.Payload.CopyTo(buffer);
            _recvBuffered += len;
            OnMessageComplete(stream, data.Unordered, data.Ssn, data.Ppid, buffer, len);
            return;
        }
        var frag = new Fragment { Tsn = tsn, Flags = data.Flags, Ssn = data.Ssn, Ppid = data.Ppid, Buffer = _pool.Rent(len), Length = len };
        data.Payload.CopyTo(frag.Buffer);
        _recvBuffered += len;
        InsertFragment(stream, frag);
    }

    private const int ReceiveReserve = 64 * 1024;
    private const int ControlReserve = 320;

    private void InsertFragment(InboundStream s, Fragment f)
    {
        var list = s.Fragments;
        var i = list.Count;
        while (i > 0 && Serial.Gt(list[i - 1].Tsn, f.Tsn)) i--;
        list.Insert(i, f);
        var unordered = (f.Flags & DataChunk.FlagUnordered) != 0;
        var frags = CollectionsMarshal.AsSpan(list);
        int first, last;
        long total;
        if (s.RunValid && i == frags.Length - 1 && i > 0 && frags[i - 1].Tsn == s.RunEndTsn && SameMessage(frags[i - 1], frags[i], unordered))
        {
            // In-order fast path: the fragment extends the run of the message being reassembled at the end.
            first = i - (int)(f.Tsn - s.RunStartTsn);
            last = i;
            total = s.RunBytes + f.Length;
        }
        else
        {
            // Find the run of consecutive TSNs of one message around the new fragment.
            first = i;
            while ((frags[first].Flags & DataChunk.FlagBegin) == 0 && first > 0 && SameMessage(frags[first - 1], frags[first], unordered)) first--;
            last = i;
            while ((frags[last].Flags & DataChunk.FlagEnd) == 0 && last + 1 < frags.Length && SameMessage(frags[last], frags[last + 1], unordered)) last++;
            total = 0;
            for (var k = first; k <= last; k++) total += frags[k].Length;
        }
        var complete = (frags[first].Flags & DataChunk.FlagBegin) != 0 && (frags[last].Flags & DataChunk.FlagEnd) != 0;
        s.RunValid = false;
        if (total > _o.MaxMessageSize)
        {
            // RFC 8831 section 6.6: a message beyond max-message-size is refused; the data channel is closed.
            Counters.OversizeMessage++;
            var endSeen = (frags[last].Flags & DataChunk.FlagEnd) != 0;
            var lastTsn = frags[last].Tsn;
            RemoveFragments(s, first, last - first + 1);
            if (!endSeen) { s.Discarding = true; s.DiscardLastTsn = lastTsn; }
            OnOversizeMessage(s.Id);
            return;
        }
        if (!complete)
        {
            if (last == frags.Length - 1 && (frags[first].Flags & DataChunk.FlagBegin) != 0)
            {
                s.RunValid = true;
                s.RunStartTsn = frags[first].Tsn;
                s.RunEndTsn = frags[last].Tsn;
                s.RunBytes = total;
            }
            return;
        }
        var buffer = _pool.Rent((int)Math.Max(1, total));
        var p = 0;
        for (var k = first; k <= last; k++)
        {
            ref var fr = ref frags[k];
            fr.Buffer.AsSpan(0, fr.Length).CopyTo(buffer.AsSpan(p));
            p += fr.Length;
            _pool.Return(fr.Buffer);
        }
        var ssn = frags[first].Ssn;
        var ppid = frags[first].Ppid;
        list.RemoveRange(first, last - first + 1);
        OnMessageComplete(s, unordered, ssn, ppid, buffer, p);
    }

    private static bool SameMessage(in Fragment a, in Fragment b, bool unordered) =>
        b.Tsn == a.Tsn + 1
        && ((a.Flags & DataChunk.FlagUnordered) != 0) == unordered
        && ((b.Flags & DataChunk.FlagUnordered) != 0) == unordered
        && (unordered || a.Ssn == b.Ssn)
        && (a.Flags & DataChunk.FlagEnd) == 0
        && (b.Flags & DataChunk.FlagBegin) == 0;

    private void RemoveFragments(InboundStream s, int index, int count)
    {
        s.RunValid = false;
        for (var k = index; k < index + count; k++)
        {
            _recvBuffered -= s.Fragments[k].Length;
            _pool.Return(s.Fragments[k].Buffer);
        }
        s.Fragments.RemoveRange(index, count);
    }

    private void OnMessageComplete(InboundStream s, bool unordered, ushort ssn, uint ppid, byte[] buffer, int length)
    {
        if (unordered) { Deliver(s.Id, ppid, buffer, length); return; }
        if (ssn == s.NextSsn)
        {
            s.NextSsn++;
            Deliver(s.Id, ppid, buffer, length);
            DrainPending(s);
            return;
        }
        if (Serial.Lt16(ssn, s.NextSsn))
        {
            // Already delivered or skipped by FORWARD TSN.
            _recvBuffered -= length;
            _pool.Return(buffer);
            return;
        }
        var i = s.Pending.Count;
        while (i > 0 && Serial.Lt16(ssn, s.Pending[i - 1].Ssn)) i--;
        s.Pending.Insert(i, new ReadyMessage { Ssn = ssn, Ppid = ppid, Buffer = buffer, Length = length });
    }

    private void DrainPending(InboundStream s)
    {
        while (s.Pending.Count > 0 && s.Pending[0].Ssn == s.NextSsn)
        {
            var m = s.Pending[0];
            s.Pending.RemoveAt(0);
            s.NextSsn++;
            Deliver(s.Id, m.Ppid, m.Buffer, m.Length);
        }
    }

    private void AfterDataPacket()
    {
        // RFC 9260 section 6.2: SACK at least every second packet with DATA, else within the delayed-ack time.
        if (++_packetsSinceSack >= 2) _sackImmediate = true;
        if (State != SctpState.Established) _sackImmediate = true;
        if (!_sackImmediate) _delayedAckDeadline ??= _now + _o.DelayedAckTimeout;
    }

    private int WriteSack(Span<byte> d)
    {
        // Leave room for the control chunks that follow in the same packet (heartbeat, shutdown, FORWARD TSN,
        // RE-CONFIG): a peer that provokes many gaps must not be able to crowd them out or overflow the packet.
        var maxBlocks = Math.Max(0, (d.Length - ControlReserve - SackChunk.FixedLength - 4 * _duplicateCount) / 4);
        var p = SackChunk.FixedLength;
        var blocks = 0;
        if (Serial.Gt(_highestTsn, _cumTsn))
        {
            // Gap ack blocks as offsets from the cumulative TSN (RFC 9260 section 3.3.4).
            var end = _highestTsn - _cumTsn;
            uint off = 2;
            while (off <= end && blocks < maxBlocks)
            {
                while (off <= end && !Seen((_cumTsn + off))) off++;
                if (off > end) break;
                var start = off;
                while (off <= end && Seen((_cumTsn + off))) off++;
                BinaryPrimitives.WriteUInt16BigEndian(d[p..], (ushort)start);
                BinaryPrimitives.WriteUInt16BigEndian(d[(p + 2)..], (ushort)(off - 1));
                p += 4;
                blocks++;
            }
        }
        var dups = Math.Min(_duplicateCount, (d.Length - p) / 4);
        for (var i = 0; i < dups; i++) { BinaryPrimitives.WriteUInt32BigEndian(d[p..], _duplicates[i]); p += 4; }
        ChunkHeader.Write(d, ChunkType.Sack, 0, p);
        BinaryPrimitives.WriteUInt32BigEndian(d[4..], _cumTsn);
        BinaryPrimitives.WriteUInt32BigEndian(d[8..], (uint)AdvertisedWindow);
        BinaryPrimitives.WriteUInt16BigEndian(d[12..], (ushort)blocks);
        BinaryPrimitives.WriteUInt16BigEndian(d[14..], (ushort)dups);
        _lastAdvertised = AdvertisedWindow;
        if (_lastAdvertised < _mtu) _windowWasClosed = true;
        _duplicateCount = 0;
        _sackPending = _sackImmediate = false;
        _packetsSinceSack = 0;
        _delayedAckDeadline = null;
        return p;
    }

    private void HandleForwardTsn(ChunkHeader chunk)
    {
        if (!IsEstablishedLike && State != SctpState.ShutdownSent) return;
        if (!ForwardTsnChunk.TryRead(chunk, out var fwd)) { Counters.Malformed++; return; }
        Counters.ForwardTsnReceived++;
        _sackPending = _sackImmediate = true;
        var newCum = fwd.NewCumulativeTsn;
        DebugTrace?.Invoke($"{_now.TotalMilliseconds:0} fwd-recv {newCum} (cum {_cumTsn} high {_highestTsn})");
        if (Serial.Le(newCum, _cumTsn)) return;
        // Beyond the TSNs we accept DATA for, the peer cannot have sent what it abandons: moving there would leave every
        // later DATA of the peer behind our cumulative TSN, delivered never (found by fuzzing: the association stayed
        // Established and carried nothing). A protocol violation, as usrsctp treats it: ABORT, with the reason.
        if (Serial.Gt(newCum, _cumTsn + TsnWindow))
        {
            Counters.OutOfWindowTsn++;
            _sendAbort = true;
            _abortReason = $"FORWARD TSN to {newCum}, beyond the receive window (cumulative TSN {_cumTsn})";
            Terminate(SctpState.Failed, "ABORT sent: " + _abortReason, SctpErrorCause.ProtocolViolation);
            return;
        }
        // RFC 3758 section 3.6: move the cumulative TSN, forget what lies below it.
        var jump = newCum - _cumTsn;
        if (jump >= TsnWindow) Array.Clear(_tsnSeenBits);
        else for (var t = _cumTsn + 1; Serial.Le(t, newCum); t++) SetSeen(t, false);
        _cumTsn = newCum;
        if (Serial.Lt(_highestTsn, _cumTsn)) _highestTsn = _cumTsn;
        while (Serial.Le(_cumTsn + 1, _highestTsn) && Seen((_cumTsn + 1)))
        {
            _cumTsn++;
            SetSeen(_cumTsn, false);
        }
        foreach (var s in _activeStreams) RemoveDeadFragments(s, newCum);
        for (var i = 0; i < fwd.StreamCount; i++)
        {
            var (id, ssn) = fwd.Stream(i);
            if (id >= _inboundStreams) continue;
            var s = Stream(id);
            if (Serial.Le16(s.NextSsn, ssn))
            {
                s.NextSsn = (ushort)(ssn + 1);
                while (s.Pending.Count > 0 && Serial.Lt16(s.Pending[0].Ssn, s.NextSsn))
                {
                    _recvBuffered -= s.Pending[0].Length;
                    _pool.Return(s.Pending[0].Buffer);
                    s.Pending.RemoveAt(0);
                }
            }
            DrainPending(s);
        }
    }

    // RFC 3758 section 3.6: after a FORWARD TSN, a partly reassembled message goes when it misses a TSN at or below the
    // new cumulative TSN (its earlier fragments were abandoned), or when the TSN that would continue it is already
    // behind the cumulative TSN and not part of it (the sender abandoned the rest before sending it). A message whose
    // fragments up to the new cumulative TSN all arrived and whose next fragment is still to come stays: the peer's
    // advanced ack point moves over acknowledged TSNs as well as abandoned ones, so such a message may be a reliable
    // one in the middle of its transmission (removing it lost a reliable message for good; found by the chaos suite).
    private void RemoveDeadFragments(InboundStream s, uint newCum)
    {
        var i = 0;
        while (i < s.Fragments.Count)
        {
            var frags = CollectionsMarshal.AsSpan(s.Fragments);
            var unordered = (frags[i].Flags & DataChunk.FlagUnordered) != 0;
            var j = i;
            while (j + 1 < frags.Length && SameMessage(frags[j], frags[j + 1], unordered)) j++;
            var missesEarlier = (frags[i].Flags & DataChunk.FlagBegin) == 0 && Serial.Le(frags[i].Tsn - 1, newCum);
            var cutShort = (frags[j].Flags & DataChunk.FlagEnd) == 0 && Serial.Le(frags[j].Tsn + 1, _cumTsn);
            if (missesEarlier || cutShort) { DebugTrace?.Invoke($"{_now.TotalMilliseconds:0} drop-frags s{s.Id} {frags[i].Tsn}-{frags[j].Tsn} misses {missesEarlier} cut {cutShort}"); RemoveFragments(s, i, j - i + 1); }
            else i = j + 1;
        }
    }

    private void ReleaseReceiveState()
    {
        foreach (var s in _activeStreams)
        {
            foreach (var f in s.Fragments) { _recvBuffered -= f.Length; _pool.Return(f.Buffer); }
            foreach (var m in s.Pending) { _recvBuffered -= m.Length; _pool.Return(m.Buffer); }
            s.Fragments.Clear();
            s.Pending.Clear();
        }
        _activeStreams.Clear();
    }
}
