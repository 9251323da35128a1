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
    private TimeSpan _lastReceived;
    private TimeSpan _lastSent;
    // When application data (TrySend) was last sent: see KeepaliveDue.
    private TimeSpan? _lastDataSent;
    private TimeSpan _lastConsent;
    private TimeSpan _nextConsentAt;
    private TimeSpan _disconnectedAt;
    // Receive silence: when application data last arrived, and when its current run began (a run: no gap longer than
    // ReceiveSilenceTimeout / ReceiveSilencePackets between two application datagrams).
    private TimeSpan? _lastDataAt;
    private TimeSpan _dataRunStart;
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
    public TimeSpan? LastReceivedAt => LivenessPair is null ? null : _lastReceived;

    /// <summary>
    /// When consent was last refreshed on the pair in use (RFC 7675: the last authenticated response there, or the
    /// selection itself); null before a pair carries data. Consent expires ConsentTimeout after this.
    /// </summary>
    public TimeSpan? LastConsentAt => LivenessPair is null ? null : _lastConsent;

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
        foreach (var o in _outgoing) Consider(ref next, ref timer, o.Transaction.PollTimeout(), IceTimer.Retransmission);
        if (Role.NominationDeadline(this) is { } nomination && nomination > _now) Consider(ref next, ref timer, nomination, IceTimer.Nomination);
        foreach (var relay in _relays)
        {
            if (relay.Live) Consider(ref next, ref timer, relay.Client.PollTimeout(), IceTimer.Relay);
            Consider(ref next, ref timer, relay.RetryAt, IceTimer.RelayReallocation);
        }
        if (_relayOutageSince is { } outage && LivenessPair is null && Options.FailedTimeout > TimeSpan.Zero) Consider(ref next, ref timer, outage + Options.FailedTimeout, IceTimer.Failed);
        if (LivenessPair is not null)
        {
            var o = Options;
            if (o.ConsentTimeout > TimeSpan.Zero && Mode.SendsChecks) Consider(ref next, ref timer, _lastConsent + o.ConsentTimeout, IceTimer.ConsentExpiry);
            if (o.ConsentInterval > TimeSpan.Zero && Mode.SendsChecks) Consider(ref next, ref timer, _nextConsentAt, IceTimer.ConsentCheck);
            if (o.KeepaliveInterval > TimeSpan.Zero) Consider(ref next, ref timer, KeepaliveDue(), IceTimer.Keepalive);
            if (State == IceConnectionState.Connected && o.DisconnectedTimeout > TimeSpan.Zero) Consider(ref next, ref timer, _lastReceived + o.DisconnectedTimeout, IceTimer.Disconnected);
            if (State == IceConnectionState.Connected && ReceiveSilenceDue() is { } silence) Consider(ref next, ref timer, silence, IceTimer.ReceiveSilence);
            if (State == IceConnectionState.Disconnected && o.FailedTimeout > TimeSpan.Zero) Consider(ref next, ref timer, _disconnectedAt + o.FailedTimeout, IceTimer.Failed);
        }
        return next;
    }

    private static void Consider(ref TimeSpan? next, ref IceTimer timer, TimeSpan? candidate, IceTimer kind)
    {
        if (candidate is { } c && (next is null || c < next)) { next = c; timer = kind; }
    }

    private static TimeSpan? Min(TimeSpan? a, TimeSpan? b) => a is null ? b : b is null ? a : (a < b ? a : b);

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
        _outgoing.RemoveAll(o => o.Transaction.IsCompleted);
    }

    private void AfterInput(TimeSpan now)
    {
        if (State is IceConnectionState.Failed or IceConnectionState.Closed) return;
        DrainTransactions();
        _outgoing.RemoveAll(o => o.Transaction.IsCompleted);
    }

    private void Select(IcePair pair, TimeSpan now, IceStateReason reason = IceStateReason.PairSelected)
    {
        if (_relayOutageSince is not null)
        {
            _relayOutageSince = null;
            if (reason == IceStateReason.PairSelected) reason = IceStateReason.RelayRecovered;
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

    private void ResetLiveness(TimeSpan now)
    {
        _lastReceived = now;
        _lastSent = now;
        _lastConsent = now;
        _nextConsentAt = NextConsentAt(now);
        _lastDataAt = null;
    }

    // RFC 8445 section 12.1: TrySend put data on a valid pair before any selection. From the first such send that pair
    // is watched like a selected one (consent, keepalive, receive silence, Disconnected, Failed) and the agent is
    // Connected; when a better pair becomes valid, consent carries over from that pair's own last answered check.
    private void UseEarlyPair(IcePair pair, TimeSpan now)
    {
        var first = _dataPair is null;
        _dataPair = pair;
        if (first) ResetLiveness(now);
        _lastConsent = pair.LastResponseAt ?? now;
        if (State == IceConnectionState.Checking) Transition(IceConnectionState.Connected, IceStateReason.ValidPairInUse, now);
        else if (_relayOutageSince is not null)
        {
            // A pair of a lost relay's new allocation (or another one) carries data again; without a nomination from a
            // controlling peer that stays on the pair it selected, the relayed pair still gets its channel.
            _relayOutageSince = null;
            if (State == IceConnectionState.Disconnected) Transition(IceConnectionState.Connected, IceStateReason.RelayRecovered, now);
            if (pair.Local.Type == IceCandidateType.Relayed) BindRelayChannel(pair, now);
        }
    }

    // RFC 7675 section 5.1: uniformly in [0.8, 1.2] x the interval. Then, when the window allows it, moved to the next
    // multiple of ConsentAlignment on the agent's clock (or the previous one if the next leaves the window): the
    // checks of many agents sharing a clock then fall on common instants, and a host with thousands of idle
    // connections wakes a few times per alignment period instead of once per check. Still inside the window, still
    // random among the multiples the window holds.
    private TimeSpan NextConsentAt(TimeSpan now)
    {
        var interval = Options.ConsentInterval.Ticks;
        var at = now.Ticks + (long)(interval * (0.8 + 0.4 * _random.NextDouble()));
        var grid = Options.ConsentAlignment.Ticks;
        if (grid <= 0) return TimeSpan.FromTicks(at);
        long earliest = now.Ticks + interval * 8 / 10, latest = now.Ticks + interval * 12 / 10;
        var up = (at + grid - 1) / grid * grid;
        if (up <= latest) return TimeSpan.FromTicks(up);
        var down = at / grid * grid;
        return TimeSpan.FromTicks(down >= earliest ? down : at);
    }

    private void OnTrafficReceived(TimeSpan now)
    {
        _lastReceived = now;
        if (State == IceConnectionState.Disconnected) Transition(IceConnectionState.Connected, IceStateReason.TrafficResumed, now);
    }

    // Input on this pair proves the peer alive: on the selected pair; before nomination on any pair of the peer's
    // (authenticated, or data on a valid pair), since the peer may send on another valid pair than the one we use.
    private bool CountsForLiveness(IcePair? pair) => pair is not null && (Selected is { } s ? pair == s : _dataPair is not null);

    private void OnApplicationDataReceived(TimeSpan now)
    {
        if (_lastDataAt is not { } last || now - last > ExpectedDataGap) _dataRunStart = now;
        _lastDataAt = now;
        OnTrafficReceived(now);
    }

    private TimeSpan ExpectedDataGap => Options.ReceiveSilenceTimeout / Options.ReceiveSilencePackets;

    // Receive silence: only while data flows (see IceAgentOptions.ReceiveSilenceTimeout): a run of application data
    // that has lasted the timeout itself (a DTLS handshake's burst does not arm it), still going when the last
    // datagram of any kind arrived. Counted from that last datagram, so STUN from a live peer that stopped its data
    // defers it and then disarms it.
    private TimeSpan? ReceiveSilenceDue()
    {
        var timeout = Options.ReceiveSilenceTimeout;
        if (timeout <= TimeSpan.Zero || _lastDataAt is not { } data) return null;
        if (data - _dataRunStart < timeout || _lastReceived - data > ExpectedDataGap) return null;
        return _lastReceived + timeout;
    }

    private void HandleLiveness(TimeSpan now)
    {
        if (LivenessPair is not { } pair) return;
        var o = Options;
        if (Mode.SendsChecks && o.ConsentTimeout > TimeSpan.Zero && now >= _lastConsent + o.ConsentTimeout)
        {
            // RFC 7675 section 5.1: consent lost; stop sending at once.
            Transition(IceConnectionState.Failed, IceStateReason.ConsentExpired, now);
            StopEverything();
            return;
        }
        if (State == IceConnectionState.Connected && ReceiveSilenceDue() is { } silence && now >= silence)
        {
            _disconnectedAt = now;
            Transition(IceConnectionState.Disconnected, IceStateReason.ReceiveSilence, now);
            ProbeAtOnce(now);
            ProbeRelayOf(pair, now);
        }
        if (State == IceConnectionState.Connected && o.DisconnectedTimeout > TimeSpan.Zero && now >= _lastReceived + o.DisconnectedTimeout)
        {
            _disconnectedAt = now;
            Transition(IceConnectionState.Disconnected, IceStateReason.NoTraffic, now);
            ProbeAtOnce(now);
            ProbeRelayOf(pair, now);
        }
        if (State == IceConnectionState.Disconnected && o.FailedTimeout > TimeSpan.Zero && now >= _disconnectedAt + o.FailedTimeout)
        {
            Transition(IceConnectionState.Failed, IceStateReason.FailedTimeout, now);
            StopEverything();
            return;
        }
        if (Mode.SendsChecks && o.ConsentInterval > TimeSpan.Zero && now >= _nextConsentAt)
        {
            SendConsentCheck(pair, now);
            _nextConsentAt = State == IceConnectionState.Disconnected && o.PeerMoveSilence > TimeSpan.Zero
                ? now + o.ConsentInterval * 0.4 : NextConsentAt(now);
        }
        if (o.KeepaliveInterval > TimeSpan.Zero && now >= KeepaliveDue()) SendKeepalive(pair);
    }

    // Disconnected: a consent check goes at once (below, in the same HandleLiveness). If the peer's NAT rebound, the
    // check reaches it from its new address; its answer and its triggered check make that pair valid, and its data
    // then moves us there (PeerMoved) within a round trip instead of at the next regular consent check.
    private void ProbeAtOnce(TimeSpan now)
    {
        if (Options.PeerMoveSilence > TimeSpan.Zero && _nextConsentAt > now) _nextConsentAt = now;
    }

    // RFC 8445 section 11: a keepalive when nothing was sent for KeepaliveInterval; then on the next multiple of
    // KeepaliveAlignment (never before the interval passed), so idle agents' periodic sends share instants. Right after
    // application data stopped, the next one goes sooner: by 4/5 of ReceiveSilenceTimeout (2 s by default). A peer that
    // saw our data flowing goes Disconnected (ReceiveSilence) that long after our last datagram while that datagram came
    // within ReceiveSilenceTimeout / ReceiveSilencePackets of our last data (its rule, with our options standing for its
    // own); a datagram later than that disarms its timer, and from then on only its DisconnectedTimeout matters, which
    // the longer interval serves.
    private TimeSpan KeepaliveDue()
    {
        var interval = Options.KeepaliveInterval;
        var silence = Options.ReceiveSilenceTimeout;
        if (_lastDataSent is { } data && silence > TimeSpan.Zero && silence * 0.8 < interval && _lastSent - data <= ExpectedDataGap)
            interval = silence * 0.8;
        var due = (_lastSent + interval).Ticks;
        var grid = Options.KeepaliveAlignment.Ticks;
        return TimeSpan.FromTicks(grid <= 0 ? due : (due + grid - 1) / grid * grid);
    }

    private void SendConsentCheck(IcePair pair, TimeSpan now)
    {
        var g = pair.Generation;
        if (g.RemoteKey is null) return;
        var request = WriteCheck(g, pair, useCandidate: false, out var length, out var spedSent, out var spedCrc);
        var t = new StunClientTransaction(request.AsSpan(0, length), RetransmissionFor(pair));
        _outgoing.Add(new Outgoing(OutgoingKind.Consent, t, pair.LocalEndPoint, pair.RemoteEndPoint) { Pair = pair, IceTcp = pair.IceTcp, SpedSent = spedSent, SpedCrc = spedCrc });
        t.Start(now);
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
