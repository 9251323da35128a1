using System.Buffers.Binary;
using Transport.Sctp.Wire;

namespace Transport.Sctp;

// SACK processing, congestion control (RFC 9260 section 7), RTO (section 6.3), T3-rtx (section 6.3.3) and
// partial reliability on the sending side (RFC 3758 sections 3.5 and 3.6).
public sealed partial class SctpAssociation
{
    private int _peerRwnd;
    private bool _fastRetransmitBurst;
    private bool _rttMeasuring;
    private uint _rttTsn;
    private TimeSpan _rttSentAt;
    private TimeSpan? _t3Deadline;
    private int _errorCount;
    private bool _sackSinceT3;
    private bool _sendForwardTsn;

    private void HandleSack(ChunkHeader chunk)
    {
        if (!IsEstablishedLike && State is not (SctpState.ShutdownSent or SctpState.ShutdownAckSent)) return;
        if (!SackChunk.TryRead(chunk, out var sack)) { Counters.Malformed++; return; }
        var cum = sack.CumulativeTsnAck;
        // RFC 9260 section 6.2.1 (D i): an older cumulative ack is stale; one beyond what we sent is bogus.
        if (Serial.Lt(cum, _out.CumulativeAck)) return;
        if (Serial.Ge(cum, _out.NextTsn)) { Counters.BogusSack++; return; }
        if (DebugTrace is { } tr)
        {
            var gaps = new System.Text.StringBuilder();
            for (var i = 0; i < sack.GapBlockCount; i++) { var (gs, ge) = sack.GapBlock(i); gaps.Append($"{cum + gs}-{cum + ge} "); }
            tr($"{_now.TotalMilliseconds:0} sack cum {cum} (mine {_out.CumulativeAck}) gaps {gaps}rwnd {sack.AdvertisedWindow}");
        }
        var flightBefore = _out.FlightSize;
        var cumAdvanced = cum != _out.CumulativeAck;
        uint? timed = _rttMeasuring ? _rttTsn : null;
        var newlyAcked = _out.AckCumulative(cum, timed, out var timedAcked);

        // Gap ack blocks (RFC 9260 section 3.3.4), ignoring blocks that point beyond what we sent.
        var highestNewlyAcked = cum;
        for (var i = 0; i < sack.GapBlockCount; i++)
        {
            var (start, end) = sack.GapBlock(i);
            if (start == 0 || end < start) { Counters.BogusSack++; continue; }
            if (Serial.Ge(cum + end, _out.NextTsn)) { Counters.BogusSack++; break; }
            newlyAcked += _out.AckGapBlock(cum + start, cum + end, timed, ref highestNewlyAcked, ref timedAcked);
        }
        if (timedAcked) MeasureRtt(_now - _rttSentAt); // Karn's rule kept retransmitted chunks out (section 6.3.1 C5)

        // Miss indications (RFC 9260 section 7.2.4, the HTNA rule).
        if (sack.GapBlockCount > 0 && Serial.Gt(highestNewlyAcked, cum))
        {
            for (var tsn = cum + 1; Serial.Lt(tsn, highestNewlyAcked); tsn++)
            {
                ref var c = ref _out.At(tsn);
                if (c.State != ChunkState.InFlight || c.FastRetransmitted) continue;
                if (++c.Misses < 3) continue;
                c.FastRetransmitted = true;
                // RFC 9260 section 7.2.4 (2)-(3): halve once per recovery, then send at once.
                if (_cc.OnFastRetransmit(_out.NextTsn - 1)) Counters.FastRetransmits++;
                MarkForRetransmit(tsn, ref c);
                _fastRetransmitBurst = true;
            }
        }

        // Congestion window (RFC 9260 sections 7.2.1 and 7.2.2): grow only when the cumulative ack advanced
        // and the window was in use; fast recovery ends at its exit point.
        _cc.OnSack(cum, cumAdvanced, flightBefore, newlyAcked, _out.FlightSize);

        // Peer's window (RFC 9260 section 6.2.1): a_rwnd less what is still outstanding.
        _peerRwnd = (int)Math.Max(0L, Math.Min(sack.AdvertisedWindow, int.MaxValue) - _out.FlightSize);

        if (cumAdvanced) _errorCount = 0;
        _sackSinceT3 = true;
        if (_out.AllAcked) _t3Deadline = null;
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
        if (_out.AllAcked) return;
        Counters.T3Expirations++;
        DebugTrace?.Invoke($"{_now.TotalMilliseconds:0} T3 cum {_out.CumulativeAck} err {_errorCount} rto {_rto.Value.TotalMilliseconds:0} " +
            $"{string.Join(' ', OutstandingChunks())}");
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
        for (var tsn = _out.CumulativeAck + 1; tsn != _out.NextTsn; tsn++)
        {
            ref var c = ref _out.At(tsn);
            if (c.State == ChunkState.InFlight) MarkForRetransmit(tsn, ref c);
        }
        AdvancePeerAckPoint();
        if (Serial.Gt(_out.AdvancedPeerAck, _out.CumulativeAck)) _sendForwardTsn = true;
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
        _out.MarkForRetransmit(tsn, ref c);
    }

    private void Abandon(OutboundMessage m)
    {
        if (m.Abandoned) return;
        m.Abandoned = true;
        DebugTrace?.Invoke($"{_now.TotalMilliseconds:0} abandon s{m.Stream} r{m.MaxRetransmits} exp {m.Expiry.TotalMilliseconds:0} len {m.Length}");
        Counters.AbandonedMessages++;
        _out.AbandonChunksOf(m);
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
        if (_out.AdvancePeerAckPoint())
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
        if (!Serial.Gt(_out.AdvancedPeerAck, _out.CumulativeAck)) return 0;
        // RFC 3758 section 3.2: one entry per ordered stream with the highest SSN skipped.
        var n = 0;
        var max = Math.Min(_fwdStreams.Length, (d.Length - 8) / 4);
        for (var tsn = _out.CumulativeAck + 1; Serial.Le(tsn, _out.AdvancedPeerAck); tsn++)
        {
            ref var c = ref _out.At(tsn);
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
        BinaryPrimitives.WriteUInt32BigEndian(d[4..], _out.AdvancedPeerAck);
        for (var i = 0; i < n; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(d[(8 + 4 * i)..], _fwdStreams[i]);
            BinaryPrimitives.WriteUInt16BigEndian(d[(10 + 4 * i)..], _fwdSsns[i]);
        }
        Counters.ForwardTsnSent++;
        DebugTrace?.Invoke($"{_now.TotalMilliseconds:0} fwd-send {_out.AdvancedPeerAck} (cum {_out.CumulativeAck})");
        return len;
    }
}
