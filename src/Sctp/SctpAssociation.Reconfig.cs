namespace Transport.Sctp;

// Stream reconfiguration, RFC 6525: the protocol (requests, responses, sequence numbers, retransmission, the pending
// queue) is StreamResetHandler's; here is what joins it to the association: when a request may start, the timer's
// duration and the error counter, and what a reset does to the streams and channels.
public sealed partial class SctpAssociation : IStreamResetHost
{
    private readonly StreamResetHandler _resets;

    /// <summary>Asks the peer to reset our outgoing stream <paramref name="streamId"/> (RFC 6525 section 5.1.2).</summary>
    public void ResetStream(ushort streamId, TimeSpan now)
    {
        Clock(now);
        if (!IsEstablishedLike) throw new InvalidOperationException($"Cannot reset a stream: the association is {State}.");
        QueueReset(streamId);
    }

    private void QueueReset(ushort streamId)
    {
        _resets.Queue(streamId);
        TryStartReconfig();
    }

    private void TryStartReconfig()
    {
        if (_resets.InFlight || _resets.Pending.Count == 0 || !IsEstablishedLike || !_peerReConfig) return;
        _resets.TryStart(_out.NextTsn - 1, _now + _rto.Value);
    }

    bool IStreamResetHost.HasUnsentData(ushort stream)
    {
        if (_sending is { } s && s.Stream == stream) return true;
        foreach (var m in _sendQueue) if (m.Stream == stream) return true;
        return false;
    }

    private void OnReconfigExpired()
    {
        if (!_resets.OnTimerExpired()) return;
        if (++_errorCount > _o.MaxRetransmissions) { Fail($"peer unreachable: stream reset unanswered {_errorCount} times"); return; }
        _resets.Retransmit(_now + _rto.Value);
    }

    private int WriteReConfig(Span<byte> d) => _resets.WriteChunk(d);

    private void HandleReConfig(Wire.ChunkHeader chunk)
    {
        if (!IsEstablishedLike && State is not (SctpState.ShutdownSent)) return;
        // The peer answered: it is reachable (RFC 9260 section 8.1 counts only unanswered timers).
        if (_resets.HandleChunk(chunk.Value, _tsns.CumulativeTsn, _now + _rto.Value)) _errorCount = 0;
        // A request answered, or the peer's incoming request, may let the next one start.
        TryStartReconfig();
    }

    void IStreamResetHost.OnIncomingReset(ushort stream) => ResetInbound(stream);

    void IStreamResetHost.OnIncomingResetAll()
    {
        for (var i = 0; i < _reassembly.ActiveStreamCount; i++) ResetInbound(_reassembly.ActiveStreamId(i));
    }

    private void ResetInbound(ushort id)
    {
        _reassembly.ResetStream(id);
        OnIncomingStreamReset(id);
    }

    void IStreamResetHost.OnOutgoingReset(ushort stream, bool performed)
    {
        // Section 5.1.2 / 5.2.2: after the reset both sides restart the stream's SSN at zero.
        if (performed && stream < _outSsn.Length) _outSsn[stream] = 0;
        OnOutgoingStreamReset(stream);
    }
}
