using Transport.Ice.Stun;

namespace Transport.Ice;

/// <summary>
/// Timers: pacing, transactions, nomination, and the liveness of the pair in use (the selected pair, or before
/// nomination the valid pair application data went on, RFC 8445 section 12.1): keepalive (RFC 8445 section 11),
/// consent freshness (RFC 7675), receive silence, Disconnected and Failed timeouts. Each is exact on the caller's
/// time; 0 disables it.
/// </summary>
public sealed partial class IceAgent
{
    // The clocks and deadlines of the pair in use (consent, keepalive, Disconnected, receive silence, Failed).
    private readonly IceLiveness _liveness;
    // Before nomination, the valid pair application data went on: consent and liveness run on it (RFC 7675 section 5.1
    // asks consent for every pair we send on, nominated or not).
    private IcePair? _dataPair;

    /// <summary>The pair the liveness timers watch: the selected one, or before nomination the valid pair in use.</summary>
    internal IcePair? LivenessPair => Selected ?? _dataPair;

    /// <summary>
    /// The pair application data goes on: the selected pair's local candidate, or before nomination the local
    /// candidate of the valid pair data went on (<see cref="IceAgentOptions.SendBeforeNomination"/>); null before either.
    /// </summary>
    public IceCandidate? ActiveLocal => LivenessPair?.Local;

    /// <summary>The remote candidate of the pair in use (see <see cref="ActiveLocal"/>).</summary>
    public IceCandidate? ActiveRemote => LivenessPair?.Remote;

    /// <summary>When something was last received on the pair in use (selected, or before nomination the valid pair data went on).</summary>
    public TimeSpan? LastReceivedAt => LivenessPair is null ? null : _liveness.LastReceived;

    /// <summary>
    /// When consent was last refreshed on the pair in use (RFC 7675: the last authenticated response there, or the
    /// selection itself); null before a pair carries data. Consent expires ConsentTimeout after this.
    /// </summary>
    public TimeSpan? LastConsentAt => LivenessPair is null ? null : _liveness.LastConsent;

    /// <summary>
    /// Round-trip time on the pair in use: from the last check or consent check there answered after a single
    /// request (Karn's rule), measured from when the agent queued the request; null before one was (and always for
    /// an ICE-lite agent, which sends no checks). Consent checks (every <see cref="IceAgentOptions.ConsentInterval"/>)
    /// keep it current without any application traffic.
    /// </summary>
    public TimeSpan? RoundTripTime => LivenessPair?.RoundTripTime;

    /// <summary>The round-trip samples of the pair in use smoothed as RFC 6298 does for SRTT (7/8 old + 1/8 new).</summary>
    public TimeSpan? SmoothedRoundTripTime => LivenessPair?.SmoothedRoundTripTime;

    /// <summary>The next deadline, or null when nothing is scheduled.</summary>
    public TimeSpan? PollTimeout() => PollTimeout(out _);

    /// <summary>The next deadline and which timer it is (for a composition that reports the reason of its next wake-up).</summary>
    public TimeSpan? PollTimeout(out IceTimer timer)
    {
        timer = IceTimer.None;
        if (_disposed || State is IceConnectionState.Failed or IceConnectionState.Closed) return null;
        TimeSpan? next = null;
        Consider(ref next, ref timer, NextCheckDue(), IceTimer.Check);
        Consider(ref next, ref timer, _transactions.PollTimeout(), IceTimer.Retransmission);
        if (Role.NominationDeadline(this) is { } nomination && nomination > _now) Consider(ref next, ref timer, nomination, IceTimer.Nomination);
        foreach (var relay in _relays)
        {
            if (relay.Live) Consider(ref next, ref timer, relay.Client.PollTimeout(), IceTimer.Relay);
            Consider(ref next, ref timer, relay.Recovery.RetryAt, IceTimer.RelayReallocation);
        }
        Consider(ref next, ref timer, OutageFailedAt(), IceTimer.Failed);
        if (LivenessPair is not null)
        {
            var l = _liveness;
            if (Mode.SendsChecks) Consider(ref next, ref timer, l.ConsentExpiresAt, IceTimer.ConsentExpiry);
            if (Mode.SendsChecks) Consider(ref next, ref timer, l.ConsentCheckAt, IceTimer.ConsentCheck);
            Consider(ref next, ref timer, l.KeepaliveDue, IceTimer.Keepalive);
            if (State == IceConnectionState.Connected) Consider(ref next, ref timer, l.DisconnectedDue, IceTimer.Disconnected);
            if (State == IceConnectionState.Connected) Consider(ref next, ref timer, l.ReceiveSilenceDue, IceTimer.ReceiveSilence);
            if (State == IceConnectionState.Disconnected) Consider(ref next, ref timer, l.FailedDue, IceTimer.Failed);
        }
        return next;
    }

    private static void Consider(ref TimeSpan? next, ref IceTimer timer, TimeSpan? candidate, IceTimer kind)
    {
        if (candidate is { } c && (next is null || c < next)) { next = c; timer = kind; }
    }

    /// <summary>Acts on every deadline that passed by <paramref name="now"/>.</summary>
    public void HandleTimeout(TimeSpan now)
    {
        now = Clamp(now);
        if (_disposed || State is IceConnectionState.Failed or IceConnectionState.Closed) return;
        HandleTransactionTimeouts(now);
        if (State is IceConnectionState.Failed) return;
        HandleRelayTimeouts(now);
        if (State is IceConnectionState.Failed) return;
        if (Role.NominationDeadline(this) is { } nomination && nomination <= now) Role.ConsiderNomination(this, now);
        RunPacedCheck(now);
        HandleLiveness(now);
        _transactions.RemoveCompleted();
    }

    private void AfterInput(TimeSpan now)
    {
        if (State is IceConnectionState.Failed or IceConnectionState.Closed) return;
        DrainTransactions();
        _transactions.RemoveCompleted();
    }

    private void Select(IcePair pair, TimeSpan now, IceStateReason reason = IceStateReason.PairSelected)
    {
        if (_outage is { } outage)
        {
            _outage = null;
            if (reason == IceStateReason.PairSelected) reason = RecoveredReason(outage.Cause, reason);
        }
        var first = Selected is null;
        Selected = pair;
        // A bridged pair (IceAgent.HandleRequest) is checked by the peer with our previous credentials: they stay valid.
        if (_previous is not null && pair.Generation != _previous && pair.BridgeUsername is null)
        {
            // The restart completed: the old generation's pair stops carrying data.
            var dropped = _previous;
            _previous.Dispose();
            _previous = null;
            ReleaseGeneration(dropped, now);
        }
        // Nomination of the pair data already goes on changes nothing for liveness: its timers go on as they were.
        var continuing = first && pair == _dataPair;
        if (!continuing && (first || pair.Generation == _current)) ResetLiveness(now);
        Emit(new IceSelectedPairChangedEvent(now, pair.Local, pair.Remote));
        // 4 bytes of overhead instead of a 36-byte Send indication for the data (RFC 8656 section 12).
        if (pair.Local.Type == IceCandidateType.Relayed) BindRelayChannel(pair, now);
        Transition(IceConnectionState.Connected, reason, now);
    }

    private void ResetLiveness(TimeSpan now) => _liveness.Reset(now);

    // RFC 8445 section 12.1: TrySend put data on a valid pair before any selection. From the first such send that pair
    // is watched like a selected one (consent, keepalive, receive silence, Disconnected, Failed) and the agent is
    // Connected; when a better pair becomes valid, consent carries over from that pair's own last answered check.
    private void UseEarlyPair(IcePair pair, TimeSpan now)
    {
        var first = _dataPair is null;
        _dataPair = pair;
        if (first) ResetLiveness(now);
        _liveness.ConsentRefreshed(pair.LastResponseAt ?? now);
        if (State == IceConnectionState.Checking) Transition(IceConnectionState.Connected, IceStateReason.ValidPairInUse, now);
        else if (_outage is { } outage)
        {
            // After the pair in use was lost with nothing to take over, a pair carries data again (one of a lost relay's
            // new allocation, or another): without a nomination from a controlling peer that stays on the pair it
            // selected, the relayed pair still gets its channel.
            _outage = null;
            if (State == IceConnectionState.Disconnected)
                Transition(IceConnectionState.Connected, RecoveredReason(outage.Cause, IceStateReason.ValidPairInUse), now);
            if (pair.Local.Type == IceCandidateType.Relayed) BindRelayChannel(pair, now);
        }
    }

    private void OnTrafficReceived(TimeSpan now)
    {
        _liveness.Received(now);
        if (State == IceConnectionState.Disconnected) Transition(IceConnectionState.Connected, IceStateReason.TrafficResumed, now);
    }

    // Input on this pair proves the peer alive: on the selected pair; before nomination on any pair of the peer's
    // (authenticated, or data on a valid pair), since the peer may send on another valid pair than the one we use.
    private bool CountsForLiveness(IcePair? pair) => pair is not null && (Selected is { } s ? pair == s : _dataPair is not null);

    private void OnApplicationDataReceived(TimeSpan now)
    {
        _liveness.DataReceived(now);
        OnTrafficReceived(now);
    }

    private void HandleLiveness(TimeSpan now)
    {
        if (LivenessPair is not { } pair) return;
        var l = _liveness;
        if (Mode.SendsChecks && l.ConsentExpiresAt is { } expiry && now >= expiry)
        {
            // RFC 7675 section 5.1: consent lost; stop sending at once.
            Transition(IceConnectionState.Failed, IceStateReason.ConsentExpired, now);
            StopEverything();
            return;
        }
        if (State == IceConnectionState.Connected && l.ReceiveSilenceDue is { } silence && now >= silence)
        {
            l.Disconnected(now);
            Transition(IceConnectionState.Disconnected, IceStateReason.ReceiveSilence, now);
            l.ProbeAtOnce(now);
            ProbeRelayOf(pair, now);
        }
        if (State == IceConnectionState.Connected && l.DisconnectedDue is { } quiet && now >= quiet)
        {
            l.Disconnected(now);
            Transition(IceConnectionState.Disconnected, IceStateReason.NoTraffic, now);
            l.ProbeAtOnce(now);
            ProbeRelayOf(pair, now);
        }
        if (State == IceConnectionState.Disconnected && l.FailedDue is { } failed && now >= failed)
        {
            Transition(IceConnectionState.Failed, IceStateReason.FailedTimeout, now);
            StopEverything();
            return;
        }
        if (Mode.SendsChecks && l.ConsentCheckAt is { } check && now >= check)
        {
            SendConsentCheck(pair, now);
            l.ConsentSent(now, State == IceConnectionState.Disconnected);
        }
        if (l.KeepaliveDue is { } keepalive && now >= keepalive) SendKeepalive(pair);
    }

    private void SendConsentCheck(IcePair pair, TimeSpan now)
    {
        var g = pair.Generation;
        if (g.RemoteKey is null) return;
        var request = WriteCheck(g, pair, useCandidate: false, out var length, out var spedSent, out var spedCrc);
        var t = new StunClientTransaction(request.AsSpan(0, length), RetransmissionFor(pair));
        _transactions.TryStart(new IceTransaction(IceTransactionKind.Consent, t, pair.LocalEndPoint, pair.RemoteEndPoint)
        { Pair = pair, IceTcp = pair.IceTcp, SpedSent = spedSent, SpedCrc = spedCrc }, now);
        DrainTransactions();
    }

    private void SendKeepalive(IcePair pair)
    {
        var span = RentTransmit(out var buffer);
        Span<byte> tid = stackalloc byte[StunHeader.TransactionIdSize];
        StunTransactionId.NewRandom().WriteTo(tid);
        var w = new StunMessageWriter(span, StunMessageType.BindingIndication, tid);
        w.AddFingerprint();
        QueueTransmit(buffer, w.Length, pair.LocalEndPoint, pair.RemoteEndPoint, pair.IceTcp);
    }
}
