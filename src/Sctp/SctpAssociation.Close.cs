using System.Buffers.Binary;
using System.Text;
using Transport.Sctp.Wire;

namespace Transport.Sctp;

// SHUTDOWN (RFC 9260 section 9.2), ABORT (section 9.1) and HEARTBEAT (section 8.3).
public sealed partial class SctpAssociation
{
    private TimeSpan? _t2Deadline;
    private bool _sendShutdown, _sendShutdownAck, _sendShutdownComplete;
    private TimeSpan? _heartbeatDeadline;
    private bool _sendHeartbeat, _heartbeatOutstanding;
    private readonly byte[] _heartbeatAck = new byte[64];
    private int _heartbeatAckLength;

    private bool AllAcked => _sendQueue.Count == 0 && _sending is null && _out.CumulativeAck + 1 == _out.NextTsn;

    private void TryProgressShutdown()
    {
        if (!AllAcked) return;
        if (State == SctpState.ShutdownPending)
        {
            _sendShutdown = true;
            _t2Deadline = _now + _rto.Value;
            Transition(SctpState.ShutdownSent, SctpStateReason.ShutdownSent, "SHUTDOWN sent");
        }
        else if (State == SctpState.ShutdownReceived)
        {
            _sendShutdownAck = true;
            _t2Deadline = _now + _rto.Value;
            Transition(SctpState.ShutdownAckSent, SctpStateReason.ShutdownAckSent, "SHUTDOWN ACK sent");
        }
    }

    private int WriteShutdown(Span<byte> d)
    {
        ChunkHeader.Write(d, ChunkType.Shutdown, 0, 8);
        BinaryPrimitives.WriteUInt32BigEndian(d[4..], _tsns.CumulativeTsn);
        return 8;
    }

    private void HandleShutdown(ChunkHeader chunk)
    {
        if (chunk.Chunk.Length < 8) { Counters.Malformed++; return; }
        // The cumulative TSN ack in SHUTDOWN acknowledges like a SACK (RFC 9260 section 6.2, 9.2).
        var cum = BinaryPrimitives.ReadUInt32BigEndian(chunk.Chunk[4..]);
        if (Serial.Ge(cum, _out.CumulativeAck) && Serial.Lt(cum, _out.NextTsn)) AckCumulative(cum);
        switch (State)
        {
            case SctpState.Established or SctpState.ShutdownPending:
                Transition(SctpState.ShutdownReceived, SctpStateReason.ShutdownReceived, "SHUTDOWN received");
                TryProgressShutdown();
                break;
            case SctpState.ShutdownSent:
                // Both sides shut down at once (section 9.2): answer with SHUTDOWN ACK.
                _sendShutdownAck = true;
                _t2Deadline = _now + _rto.Value;
                Transition(SctpState.ShutdownAckSent, SctpStateReason.ShutdownAckSent, "SHUTDOWN crossed ours: SHUTDOWN ACK sent");
                break;
            case SctpState.ShutdownAckSent:
                _sendShutdownAck = true;
                break;
        }
    }

    private void AckCumulative(uint cum)
    {
        _out.AckCumulative(cum, null, out _);
        if (_out.AllAcked) _t3Deadline = null;
    }

    private void HandleShutdownAck()
    {
        if (State is not (SctpState.ShutdownSent or SctpState.ShutdownAckSent)) return;
        _sendShutdownComplete = true;
        Terminate(SctpState.Terminated, SctpCloseKind.ShutdownComplete, "shutdown complete", SctpErrorCause.None);
    }

    private void HandleShutdownComplete()
    {
        if (State != SctpState.ShutdownAckSent) return;
        Terminate(SctpState.Terminated, SctpCloseKind.ShutdownComplete, "shutdown complete", SctpErrorCause.None);
    }

    private void OnT2Expired()
    {
        _t2Deadline = null;
        if (++_errorCount > _o.MaxRetransmissions) { Fail($"shutdown failed: T2-shutdown expired {_errorCount} times"); return; }
        _rto.DoubleUpToMax();
        if (State == SctpState.ShutdownSent) _sendShutdown = true;
        else if (State == SctpState.ShutdownAckSent) _sendShutdownAck = true;
        else return;
        _t2Deadline = _now + _rto.Value;
    }

    private void HandleAbort(ChunkHeader chunk)
    {
        // RFC 9260 section 9.1: a received ABORT ends the association at once; report its cause.
        var cause = SctpErrorCause.None;
        string detail = "";
        var v = chunk.Value;
        if (v.Length >= 4)
        {
            cause = (SctpErrorCause)BinaryPrimitives.ReadUInt16BigEndian(v);
            int len = BinaryPrimitives.ReadUInt16BigEndian(v[2..]);
            if (cause == SctpErrorCause.UserInitiatedAbort && len > 4 && len <= v.Length)
                detail = ": " + Encoding.UTF8.GetString(v[4..len]);
        }
        Terminate(SctpState.Terminated, SctpCloseKind.AbortReceived, $"ABORT received (cause {cause}){detail}", cause);
    }

    private void ArmHeartbeat()
    {
        if (_o.HeartbeatInterval is { } hb) _heartbeatDeadline = _now + hb + _rto.Value;
    }

    private void OnHeartbeatDue()
    {
        _heartbeatDeadline = null;
        if (!IsEstablishedLike) return;
        if (_heartbeatOutstanding && ++_errorCount > _o.MaxRetransmissions)
        {
            Fail($"peer unreachable: {_errorCount} heartbeats unanswered (Association.Max.Retrans = {_o.MaxRetransmissions})");
            return;
        }
        _sendHeartbeat = true;
        _heartbeatOutstanding = true;
        ArmHeartbeat();
    }

    private int WriteHeartbeat(Span<byte> d)
    {
        _sendHeartbeat = false;
        // Heartbeat Info parameter (type 1) carrying our send time, echoed back for an RTT sample.
        ChunkHeader.Write(d, ChunkType.Heartbeat, 0, 16);
        BinaryPrimitives.WriteUInt16BigEndian(d[4..], 1);
        BinaryPrimitives.WriteUInt16BigEndian(d[6..], 12);
        BinaryPrimitives.WriteInt64BigEndian(d[8..], _now.Ticks);
        return 16;
    }

    private void HandleHeartbeat(ChunkHeader chunk)
    {
        // RFC 9260 section 8.3: echo the Heartbeat Info unchanged.
        var v = chunk.Value;
        if (v.Length > _heartbeatAck.Length) { Counters.Malformed++; return; }
        v.CopyTo(_heartbeatAck);
        _heartbeatAckLength = v.Length;
    }

    private int WriteHeartbeatAck(Span<byte> d)
    {
        var len = 4 + _heartbeatAckLength;
        ChunkHeader.Write(d, ChunkType.HeartbeatAck, 0, len);
        _heartbeatAck.AsSpan(0, _heartbeatAckLength).CopyTo(d[4..]);
        var padded = ChunkHeader.Padded(len);
        d[len..padded].Clear();
        _heartbeatAckLength = 0;
        return padded;
    }

    private void HandleHeartbeatAck(ChunkHeader chunk)
    {
        var v = chunk.Value;
        if (v.Length < 12 || BinaryPrimitives.ReadUInt16BigEndian(v) != 1) return;
        // The echoed send time is the peer's to forge (found by fuzzing: a negative one overflowed the RTT
        // arithmetic): only an answer to a heartbeat of ours, carrying a time we could have sent, is an RTT sample.
        var ticks = BinaryPrimitives.ReadInt64BigEndian(v[4..]);
        if (ticks < 0 || ticks > _now.Ticks) { Counters.Malformed++; return; }
        if (!_heartbeatOutstanding) return;
        var sent = TimeSpan.FromTicks(ticks);
        _heartbeatOutstanding = false;
        _errorCount = 0;
        MeasureRtt(_now - sent);
    }
}
