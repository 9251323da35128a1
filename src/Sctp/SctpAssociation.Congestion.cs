using System.Buffers.Binary;
using Transport.Sctp.Wire;

namespace Transport.Sctp;

// SACK processing, congestion control (RFC 9260 section 7), RTO (section 6.3), T3-rtx (section 6.3.3) and
// partial reliability on the sending side (RFC 3758 sections 3.5 and 3.6).
public sealed partial class SctpAssociation
{
    private int _flightSize, _peerRwnd;
    private bool _fastRetransmitBurst;
    private bool _rttMeasuring;
    private uint _rttTsn;
    private TimeSpan _rttSentAt;
    private TimeSpan? _t3Deadline;
    private int _errorCount;
    private bool _sackSinceT3;
    private uint _advancedPeerAck;
    private bool _sendForwardTsn;

    private void HandleSack(ChunkHeader chunk)
    {
        if (!IsEstablishedLike && State is not (SctpState.ShutdownSent or SctpState.ShutdownAckSent)) return;
        if (!SackChunk.TryRead(chunk, out var sack)) { Counters.Malformed++; return; }
        var cum = sack.CumulativeTsnAck;
        // RFC 9260 section 6.2.1 (D i): an older cumulative ack is stale; one beyond what we sent is bogus.
        if (Serial.Lt(cum, _cumAck)) return;
        if (Serial.Ge(cum, _nextTsn)) { Counters.BogusSack++; return; }
        if (DebugTrace is { } tr)
        {
            var gaps = new System.Text.StringBuilder();
            for (var i = 0; i < sack.GapBlockCount; i++) { var (gs, ge) = sack.GapBlock(i); gaps.Append($"{cum + gs}-{cum + ge} "); }
            tr($"{_now.TotalMilliseconds:0} sack cum {cum} (mine {_cumAck}) gaps {gaps}rwnd {sack.AdvertisedWindow}");
        }
        var flightBefore = _flightSize;
        long newlyAcked = 0;
        var cumAdvanced = cum != _cumAck;
        for (var tsn = _cumAck + 1; Serial.Le(tsn, cum); tsn++)
        {
            ref var c = ref At(tsn);
            switch (c.State)
            {
                case ChunkState.InFlight: _flightSize -= c.Length; newlyAcked += c.Length; break;
                case ChunkState.Retransmit: _retransmitCount--; newlyAcked += c.Length; break;
            }
            if (_rttMeasuring && tsn == _rttTsn) MeasureRtt(_now - _rttSentAt);
            c.Message.Release(_messagePool, _pool, Counters);
            c = default;
        }
        _cumAck = cum;
        if (Serial.Lt(_advancedPeerAck, cum)) _advancedPeerAck = cum;

        // Gap ack blocks (RFC 9260 section 3.3.4), ignoring blocks that point beyond what we sent.
        var highestNewlyAcked = cum;
        for (var i = 0; i < sack.GapBlockCount; i++)
        {
            var (start, end) = sack.GapBlock(i);
            if (start == 0 || end < start) { Counters.BogusSack++; continue; }
            if (Serial.Ge(cum + end, _nextTsn)) { Counters.BogusSack++; break; }
            for (var tsn = cum + start; Serial.Le(tsn, cum + end); tsn++)
            {
                ref var c = ref At(tsn);
                if (c.State == ChunkState.InFlight) { _flightSize -= c.Length; }
                else if (c.State == ChunkState.Retransmit) { _retransmitCount--; }
                else continue;
                c.State = ChunkState.GapAcked;
                newlyAcked += c.Length;
                if (Serial.Gt(tsn, highestNewlyAcked)) highestNewlyAcked = tsn;
                if (_rttMeasuring && tsn == _rttTsn) MeasureRtt(_now - _rttSentAt);
            }
        }

        // Miss indications (RFC 9260 section 7.2.4, the HTNA rule).
        if (sack.GapBlockCount > 0 && Serial.Gt(highestNewlyAcked, cum))
        {
            for (var tsn = cum + 1; Serial.Lt(tsn, highestNewlyAcked); tsn++)
            {
                ref var c = ref At(tsn);
                if (c.State != ChunkState.InFlight || c.FastRetransmitted) continue;
                if (++c.Misses < 3) continue;
                c.FastRetransmitted = true;
                // RFC 9260 section 7.2.4 (2)-(3): halve once per recovery, then send at once.
                if (_cc.OnFastRetransmit(_nextTsn - 1)) Counters.FastRetransmits++;
                MarkForRetransmit(tsn, ref c);
                _fastRetransmitBurst = true;
            }
        }

        // Congestion window (RFC 9260 sections 7.2.1 and 7.2.2): grow only when the cumulative ack advanced
        // and the window was in use; fast recovery ends at its exit point.
        _cc.OnSack(cum, cumAdvanced, flightBefore, newlyAcked, _flightSize);

        // Peer's window (RFC 9260 section 6.2.1): a_rwnd less what is still outstanding.
        _peerRwnd = (int)Math.Max(0L, Math.Min(sack.AdvertisedWindow, int.MaxValue) - _flightSize);

        if (cumAdvanced) _errorCount = 0;
        _sackSinceT3 = true;
        if (_cumAck + 1 == _nextTsn) _t3Deadline = null;
        else if (cumAdvanced) _t3Deadline = _now + _rto.Value;

        AdvancePeerAckPoint();
        if (State is SctpState.ShutdownPending or SctpState.ShutdownReceived) TryProgressShutdown();
        TryStartReconfig();
    }

    private void MeasureRtt(TimeSpan r)
    {
        _rttMeasuring = false;
        _rto.Measure(r);
    }

    private void StartT3IfIdle()
    {
        _t3Deadline ??= _now + _rto.Value;
    }

    private void OnT3Expired()
    {
        _t3Deadline = null;
        if (_cumAck + 1 == _nextTsn) return;
        Counters.T3Expirations++;
        DebugTrace?.Invoke($"{_now.TotalMilliseconds:0} T3 cum {_cumAck} err {_errorCount} rto {_rto.Value.TotalMilliseconds:0} {string.Join(' ', OutstandingChunks())}");
        // RFC 9260 section 6.1 (A): while the peer's window is closed and it keeps answering with SACKs, unanswered
        // zero window probes do not count towards the error counter: a slow reader is not an unreachable peer.
        var probing = _peerRwnd == 0 && _sackSinceT3;
        _sackSinceT3 = false;
        // RFC 9260 section 8.2 and 8.3: count the failure; past Association.Max.Retrans the peer is unreachable.
        if (!probing && ++_errorCount > _o.MaxRetransmissions)
        {
            Fail($"peer unreachable: T3-rtx expired {_errorCount} times (Association.Max.Retrans = {_o.MaxRetransmissions})");
            return;
        }
        // RFC 9260 section 7.2.3 and 6.3.3 (E1-E3).
        _cc.OnRetransmissionTimeout();
        _rto.BackOff(); // RFC 9260 section 6.3.3 E2, capped by SctpOptions.MaxTimerBackoff
        _rttMeasuring = false;
        for (var tsn = _cumAck + 1; tsn != _nextTsn; tsn++)
        {
            ref var c = ref At(tsn);
            if (c.State == ChunkState.InFlight) MarkForRetransmit(tsn, ref c);
        }
        AdvancePeerAckPoint();
        if (Serial.Gt(_advancedPeerAck, _cumAck)) _sendForwardTsn = true;
        _t3Deadline = _now + _rto.Value;
    }

    private void MarkForRetransmit(uint tsn, ref OutChunk c)
    {
        var m = c.Message;
        // RFC 3758 section 3.5 (A1): partially reliable messages past their limit are abandoned instead.
        if ((m.MaxRetransmits >= 0 && c.Transmits > m.MaxRetransmits) || _now >= m.Expiry)
        {
            if (_peerForwardTsn) { Abandon(m); return; }
        }
        _flightSize -= c.Length;
        c.State = ChunkState.Retransmit;
        _retransmitCount++;
        if (Serial.Lt(tsn, _retransmitHint) || Serial.Le(_retransmitHint, _cumAck)) _retransmitHint = tsn;
    }

    private void Abandon(OutboundMessage m)
    {
        if (m.Abandoned) return;
        m.Abandoned = true;
        DebugTrace?.Invoke($"{_now.TotalMilliseconds:0} abandon s{m.Stream} r{m.MaxRetransmits} exp {m.Expiry.TotalMilliseconds:0} len {m.Length}");
        Counters.AbandonedMessages++;
        for (var tsn = _cumAck + 1; tsn != _nextTsn; tsn++)
        {
            ref var c = ref At(tsn);
            if (!ReferenceEquals(c.Message, m)) continue;
            if (c.State == ChunkState.InFlight) _flightSize -= c.Length;
            else if (c.State == ChunkState.Retransmit) _retransmitCount--;
            c.State = ChunkState.Abandoned;
        }
        if (ReferenceEquals(_sending, m))
        {
            // The rest of the message is never sent (RFC 3758 section 3.5: all its fragments are abandoned).
            var unsent = m.Length - m.Fragmented;
            _outboundBuffered -= unsent;
            m.Channel?.OnBytesSent(unsent);
            _sending = null;
            m.Release(_messagePool, _pool, Counters);
        }
        AdvancePeerAckPoint();
    }

    private void AdvancePeerAckPoint()
    {
        if (!_peerForwardTsn) return;
        if (Serial.Lt(_advancedPeerAck, _cumAck)) _advancedPeerAck = _cumAck;
        while (_advancedPeerAck + 1 != _nextTsn && At(_advancedPeerAck + 1).State == ChunkState.Abandoned) _advancedPeerAck++;
        if (Serial.Gt(_advancedPeerAck, _cumAck))
        {
            _sendForwardTsn = true;
            _t3Deadline ??= _now + _rto.Value;
        }
        else _sendForwardTsn = false;
    }

    private readonly ushort[] _fwdStreams = new ushort[64];
    private readonly ushort[] _fwdSsns = new ushort[64];

    private int WriteForwardTsn(Span<byte> d)
    {
        _sendForwardTsn = false;
        if (!Serial.Gt(_advancedPeerAck, _cumAck)) return 0;
        // RFC 3758 section 3.2: one entry per ordered stream with the highest SSN skipped.
        var n = 0;
        var max = Math.Min(_fwdStreams.Length, (d.Length - 8) / 4);
        for (var tsn = _cumAck + 1; Serial.Le(tsn, _advancedPeerAck); tsn++)
        {
            ref var c = ref At(tsn);
            var m = c.Message;
            if (m.Unordered) continue;
            var i = 0;
            while (i < n && _fwdStreams[i] != m.Stream) i++;
            if (i == n)
            {
                if (n == max) continue;
                _fwdStreams[n] = m.Stream;
                _fwdSsns[n] = m.Ssn;
                n++;
            }
            else if (Serial.Lt16(_fwdSsns[i], m.Ssn)) _fwdSsns[i] = m.Ssn;
        }
        var len = 8 + 4 * n;
        ChunkHeader.Write(d, ChunkType.ForwardTsn, 0, len);
        BinaryPrimitives.WriteUInt32BigEndian(d[4..], _advancedPeerAck);
        for (var i = 0; i < n; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(d[(8 + 4 * i)..], _fwdStreams[i]);
            BinaryPrimitives.WriteUInt16BigEndian(d[(10 + 4 * i)..], _fwdSsns[i]);
        }
        Counters.ForwardTsnSent++;
        DebugTrace?.Invoke($"{_now.TotalMilliseconds:0} fwd-send {_advancedPeerAck} (cum {_cumAck})");
        return len;
    }
}
