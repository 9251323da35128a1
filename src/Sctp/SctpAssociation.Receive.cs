using Transport.Sctp.Wire;

namespace Transport.Sctp;

// Receiving: DATA and FORWARD TSN in (RFC 9260 sections 6.2, 6.5, 6.6, 6.9; RFC 3758 section 3.6), all bounded by the
// receive buffer. The TSN record and the SACK schedule are DataTracker's; reassembly and ordering ReassemblyQueue's;
// this part decides what is accepted (window, room) and computes the advertised window.
public sealed partial class SctpAssociation
{
    /// <summary>How many TSNs beyond the cumulative TSN we track; later ones are out of window.</summary>
    internal const int TsnWindow = DataTracker.Window;

    // Received TSNs, duplicates and the SACK schedule.
    private readonly DataTracker _tsns = new();
    // Fragments and ordered messages waiting for their turn, per inbound stream.
    private readonly ReassemblyQueue _reassembly;
    // Bytes of delivered messages whose events hold pooled buffers (until the next poll or TakeEventBuffer).
    private int _deliveredHeld;
    private bool _windowWasClosed;

    private int _unread, _lastAdvertised;

    private int AdvertisedWindow => Math.Max(0, ReceiveRoom);

    // What we can still take: the receive buffer less what reassembly and ordering hold, and with backpressure on
    // (SctpOptions.MaxUnreadBytes) the unread bound less what the application holds unread and what will reach it.
    private int ReceiveRoom => _o.MaxUnreadBytes > 0
        ? Math.Min(_o.ReceiveBufferSize - ReceiveBuffered, _o.MaxUnreadBytes - _unread - ReceiveBuffered)
        : _o.ReceiveBufferSize - ReceiveBuffered;

    private int WindowCapacity => _o.MaxUnreadBytes > 0 ? Math.Min(_o.ReceiveBufferSize, _o.MaxUnreadBytes) : _o.ReceiveBufferSize;

    /// <summary>The cumulative TSN we have received (for tests and diagnostics).</summary>
    internal uint CumulativeTsnReceived => _tsns.CumulativeTsn;
    /// <summary>The highest TSN the peer has acknowledged cumulatively.</summary>
    internal uint CumulativeTsnAcked => _out.CumulativeAck;
    /// <summary>Bytes held by fragments and waiting ordered messages.</summary>
    internal int HeldFragments => _reassembly.HeldCount;

    private void StartReceive(uint peerInitialTsn)
    {
        _tsns.Start(peerInitialTsn);
        _lastAdvertised = WindowCapacity;
        _reassembly.Start(_inboundStreams);
    }

    private void HandleData(ChunkHeader chunk)
    {
        if (!IsEstablishedLike && State != SctpState.ShutdownSent) return;
        if (!DataChunk.TryRead(chunk, out var data)) { Counters.Malformed++; return; }
        _tsns.SackPending = true;
        var tsn = data.Tsn;
        DebugTrace?.Invoke($"{_now.TotalMilliseconds:0} data {tsn} s{data.StreamId} f{data.Flags} len {data.Payload.Length} (cum {_tsns.CumulativeTsn} high " +
            $"{_tsns.HighestTsn} seen {_tsns.Seen(tsn)})");
        if (_tsns.IsDuplicate(tsn)) { Counters.DuplicateTsn++; return; } // reported in the next SACK, sent at once (section 6.2)
        if (_tsns.IsBeyondWindow(tsn)) { Counters.OutOfWindowTsn++; _tsns.SackImmediate = true; return; }
        var len = data.Payload.Length;
        // RFC 9260 section 6.2: with no room, drop new data. One in-sequence chunk may use a small reserve so that
        // a full buffer of out-of-order data can still be completed and drained.
        var room = ReceiveRoom;
        if (len > room && !(tsn == _tsns.CumulativeTsn + 1 && len <= room + ReceiveReserve))
        {
            Counters.ReceiveBufferFull++;
            _windowWasClosed = true;
            _tsns.SackImmediate = true;
            return;
        }
        _tsns.Accept(tsn); // a gap: SACK at once (section 6.7)
        if ((data.Flags & DataChunk.FlagImmediate) != 0) _tsns.SackImmediate = true;
        _reassembly.Add(tsn, data.StreamId, data.Flags, data.Ssn, data.Ppid, data.Payload);
    }

    private const int ReceiveReserve = 64 * 1024;
    private const int ControlReserve = 320;

    // RFC 9260 section 6.2: SACK at least every second packet with DATA, else within the delayed-ack time.
    private void AfterDataPacket() => _tsns.OnDataPacket(_now, _o.DelayedAckTimeout, State != SctpState.Established);

    private int WriteSack(Span<byte> d)
    {
        var p = _tsns.WriteSack(d, ControlReserve, (uint)AdvertisedWindow);
        _lastAdvertised = AdvertisedWindow;
        if (_lastAdvertised < _mtu) _windowWasClosed = true;
        return p;
    }

    private void HandleForwardTsn(ChunkHeader chunk)
    {
        if (!IsEstablishedLike && State != SctpState.ShutdownSent) return;
        if (!ForwardTsnChunk.TryRead(chunk, out var fwd)) { Counters.Malformed++; return; }
        Counters.ForwardTsnReceived++;
        _tsns.SackPending = _tsns.SackImmediate = true;
        var newCum = fwd.NewCumulativeTsn;
        DebugTrace?.Invoke($"{_now.TotalMilliseconds:0} fwd-recv {newCum} (cum {_tsns.CumulativeTsn} high {_tsns.HighestTsn})");
        if (Serial.Le(newCum, _tsns.CumulativeTsn)) return;
        // Beyond the TSNs we accept DATA for, the peer cannot have sent what it abandons: moving there would leave every
        // later DATA of the peer behind our cumulative TSN, delivered never (found by fuzzing: the association stayed
        // Established and carried nothing). A protocol violation, as usrsctp treats it: ABORT, with the reason.
        if (_tsns.IsBeyondWindow(newCum))
        {
            Counters.OutOfWindowTsn++;
            _sendAbort = true;
            _abortReason = $"FORWARD TSN to {newCum}, beyond the receive window (cumulative TSN {_tsns.CumulativeTsn})";
            Terminate(SctpState.Failed, SctpCloseKind.AbortSent, "ABORT sent: " + _abortReason, SctpErrorCause.ProtocolViolation);
            return;
        }
        // RFC 3758 section 3.6: move the cumulative TSN, forget what lies below it.
        _tsns.ForwardTo(newCum);
        // RFC 3758 section 3.6: partial messages that can no longer complete go, skipped SSNs are passed over.
        _reassembly.DropAbandonedFragments(newCum, _tsns.CumulativeTsn);
        for (var i = 0; i < fwd.StreamCount; i++)
        {
            var (id, ssn) = fwd.Stream(i);
            _reassembly.SkipTo(id, ssn);
        }
    }

    private void ReleaseReceiveState() => _reassembly.Clear();
}
