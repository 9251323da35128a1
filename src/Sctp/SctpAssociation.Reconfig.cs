using System.Buffers.Binary;
using Transport.Sctp.Wire;

namespace Transport.Sctp;

// Stream reconfiguration, RFC 6525: outgoing SSN reset requests (section 5.1.2), answering the peer's outgoing
// (section 5.2.2) and incoming (section 5.2.3) requests. Data channels close by resetting their streams
// (RFC 8831 section 6.7).
public sealed partial class SctpAssociation
{
    private const int MaxStreamsPerRequest = 64;
    private readonly List<ushort> _pendingResets = new();
    private readonly ushort[] _resetStreams = new ushort[MaxStreamsPerRequest];
    private int _resetStreamCount;
    private bool _reconfigInFlight, _sendReconfigRequest;
    private uint _reconfigRequestSeq, _reconfigLastTsn;
    private TimeSpan? _reconfigDeadline;
    private uint _myReconfigSeq, _peerReconfigSeq;
    private uint _lastPeerRequestResult;
    private readonly (uint Seq, uint Result)[] _reconfigResponses = new (uint, uint)[8];
    private int _reconfigResponseCount;

    /// <summary>Asks the peer to reset our outgoing stream <paramref name="streamId"/> (RFC 6525 section 5.1.2).</summary>
    public void ResetStream(ushort streamId, TimeSpan now)
    {
        Clock(now);
        if (!IsEstablishedLike) throw new InvalidOperationException($"Cannot reset a stream: the association is {State}.");
        QueueReset(streamId);
    }

    private void QueueReset(ushort streamId)
    {
        if (!_pendingResets.Contains(streamId)) _pendingResets.Add(streamId);
        TryStartReconfig();
    }

    private void TryStartReconfig()
    {
        if (_reconfigInFlight || _pendingResets.Count == 0 || !IsEstablishedLike || !_peerReConfig) return;
        _resetStreamCount = 0;
        for (var i = 0; i < _pendingResets.Count && _resetStreamCount < MaxStreamsPerRequest;)
        {
            var s = _pendingResets[i];
            // Section 5.1.2: all data of the stream must have its TSN before the reset request names the last TSN.
            if (HasUnsentData(s)) { i++; continue; }
            _resetStreams[_resetStreamCount++] = s;
            _pendingResets.RemoveAt(i);
        }
        if (_resetStreamCount == 0) return;
        _reconfigInFlight = true;
        _reconfigRequestSeq = _myReconfigSeq++;
        _reconfigLastTsn = _out.NextTsn - 1;
        _sendReconfigRequest = true;
        _reconfigDeadline = _now + _rto.Value;
    }

    private bool HasUnsentData(ushort stream)
    {
        if (_sending is { } s && s.Stream == stream) return true;
        foreach (var m in _sendQueue) if (m.Stream == stream) return true;
        return false;
    }

    private void OnReconfigExpired()
    {
        _reconfigDeadline = null;
        if (!_reconfigInFlight) return;
        if (++_errorCount > _o.MaxRetransmissions) { Fail($"peer unreachable: stream reset unanswered {_errorCount} times"); return; }
        _sendReconfigRequest = true;
        _reconfigDeadline = _now + _rto.Value;
    }

    private int WriteReConfig(Span<byte> d)
    {
        var p = 4;
        var i = 0;
        for (; i < _reconfigResponseCount && p + 12 <= d.Length; i++)
            p += ReConfigChunk.WriteResponse(d[p..], _reconfigResponses[i].Seq, _reconfigResponses[i].Result);
        // Responses that did not fit go in the next packet.
        Array.Copy(_reconfigResponses, i, _reconfigResponses, 0, _reconfigResponseCount - i);
        _reconfigResponseCount -= i;
        if (_sendReconfigRequest && p + 16 + 2 * _resetStreamCount <= d.Length)
        {
            _sendReconfigRequest = false;
            p += ReConfigChunk.WriteOutgoingRequest(d[p..], _reconfigRequestSeq, _peerReconfigSeq - 1, _reconfigLastTsn,
                _resetStreams.AsSpan(0, _resetStreamCount));
        }
        if (p == 4) return 0;
        ChunkHeader.Write(d, ChunkType.ReConfig, 0, p);
        return p;
    }

    private void Respond(uint seq, uint result)
    {
        if (_reconfigResponseCount < _reconfigResponses.Length) _reconfigResponses[_reconfigResponseCount++] = (seq, result);
    }

    private void HandleReConfig(ChunkHeader chunk)
    {
        if (!IsEstablishedLike && State is not (SctpState.ShutdownSent)) return;
        var rest = chunk.Value;
        while (rest.Length >= 8)
        {
            var type = BinaryPrimitives.ReadUInt16BigEndian(rest);
            int len = BinaryPrimitives.ReadUInt16BigEndian(rest[2..]);
            if (len < 8 || len > rest.Length) { Counters.Malformed++; return; }
            var param = rest[..len];
            switch (type)
            {
                case ReConfigChunk.OutgoingResetRequest when len >= 16:
                    OnPeerOutgoingReset(param);
                    break;
                case ReConfigChunk.IncomingResetRequest:
                    OnPeerIncomingReset(param);
                    break;
                case ReConfigChunk.Response when len >= 12:
                    OnReconfigResponse(BinaryPrimitives.ReadUInt32BigEndian(param[4..]), BinaryPrimitives.ReadUInt32BigEndian(param[8..]));
                    break;
                default:
                    Counters.UnexpectedChunk++;
                    break;
            }
            var padded = ChunkHeader.Padded(len);
            rest = padded >= rest.Length ? default : rest[padded..];
        }
    }

    private void OnPeerOutgoingReset(ReadOnlySpan<byte> param)
    {
        var seq = BinaryPrimitives.ReadUInt32BigEndian(param[4..]);
        var lastTsn = BinaryPrimitives.ReadUInt32BigEndian(param[12..]);
        if (seq == _peerReconfigSeq - 1) { Respond(seq, _lastPeerRequestResult); return; }
        if (seq != _peerReconfigSeq) { Respond(seq, ReConfigChunk.ResultBadSequence); return; }
        // Section 5.2.2: reset only once every TSN up to the sender's last assigned one has arrived.
        if (Serial.Gt(lastTsn, _tsns.CumulativeTsn)) { Respond(seq, ReConfigChunk.ResultInProgress); return; }
        _peerReconfigSeq++;
        _lastPeerRequestResult = ReConfigChunk.ResultPerformed;
        Respond(seq, ReConfigChunk.ResultPerformed);
        var streams = param[16..];
        if (streams.Length < 2)
        {
            for (var i = 0; i < _reassembly.ActiveStreamCount; i++) ResetInbound(_reassembly.ActiveStreamId(i));
            return;
        }
        for (var i = 0; i + 1 < streams.Length; i += 2) ResetInbound(BinaryPrimitives.ReadUInt16BigEndian(streams[i..]));
    }

    private void ResetInbound(ushort id)
    {
        _reassembly.ResetStream(id);
        OnIncomingStreamReset(id);
    }

    private void OnPeerIncomingReset(ReadOnlySpan<byte> param)
    {
        var seq = BinaryPrimitives.ReadUInt32BigEndian(param[4..]);
        if (seq == _peerReconfigSeq - 1) { Respond(seq, _lastPeerRequestResult); return; }
        if (seq != _peerReconfigSeq) { Respond(seq, ReConfigChunk.ResultBadSequence); return; }
        _peerReconfigSeq++;
        // Section 5.2.3: the peer asks us to reset our outgoing streams; we do so with our own request.
        _lastPeerRequestResult = ReConfigChunk.ResultInProgress;
        Respond(seq, ReConfigChunk.ResultInProgress);
        var streams = param[8..];
        for (var i = 0; i + 1 < streams.Length; i += 2) QueueReset(BinaryPrimitives.ReadUInt16BigEndian(streams[i..]));
    }

    private void OnReconfigResponse(uint seq, uint result)
    {
        if (!_reconfigInFlight || seq != _reconfigRequestSeq) return;
        _errorCount = 0; // the peer answered: it is reachable (RFC 9260 section 8.1 counts only unanswered timers)
        if (result == ReConfigChunk.ResultInProgress) { _reconfigDeadline = _now + _rto.Value; return; }
        _reconfigInFlight = false;
        _reconfigDeadline = null;
        _errorCount = 0;
        for (var i = 0; i < _resetStreamCount; i++)
        {
            var s = _resetStreams[i];
            // Section 5.1.2 / 5.2.2: after the reset both sides restart the stream's SSN at zero.
            if ((result is ReConfigChunk.ResultPerformed or ReConfigChunk.ResultNothingToDo) && s < _outSsn.Length) _outSsn[s] = 0;
            OnOutgoingStreamReset(s);
        }
        _resetStreamCount = 0;
        TryStartReconfig();
    }
}
