using System.Net;
using Transport.Ice.Stun;

namespace Transport.Ice;

/// <summary>Outgoing checks, their responses, pacing (Ta), nomination and server-reflexive gathering.</summary>
public sealed partial class IceAgent
{
    // The outgoing requests (checks, consent checks, gathering) and their retransmissions: IceTransactions.cs.
    private readonly IceTransactions _transactions;
    private TimeSpan? _lastCheckAt;
    private int _gathersPending;
    private bool _gatheringStarted;
    private bool _gatheringComplete;

    // ---------------- gathering ----------------

    /// <summary>
    /// Reports the host candidates, asks each configured STUN server (same address family) for a
    /// server-reflexive one and each configured TURN server for a relayed one (RFC 8445 section 5.1.1);
    /// <see cref="IceGatheringCompleteEvent"/> follows when every request ended. Under
    /// <see cref="IceTransportPolicy.Relay"/> only the TURN allocations are made.
    /// </summary>
    public void StartGathering(TimeSpan now)
    {
        ThrowIfTerminal();
        now = Clamp(now);
        if (_gatheringStarted) return;
        _gatheringStarted = true;
        Span<byte> tid = stackalloc byte[StunHeader.TransactionIdSize];
        foreach (var c in _hosts.ToArray())
        {
            StartRelays(c, now);
            if (Options.TransportPolicy == IceTransportPolicy.Relay) continue;
            Emit(new IceCandidateGatheredEvent(now, c));
            foreach (var server in Options.StunServers)
            {
                if (server.AddressFamily != c.Address.AddressFamily) continue;
                var buffer = new byte[128];
                StunTransactionId.NewRandom().WriteTo(tid);
                var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, tid);
                w.AddFingerprint();
                var t = new StunClientTransaction(buffer.AsSpan(0, w.Length), Options.CheckRetransmission);
                if (_transactions.TryStart(new IceTransaction(IceTransactionKind.Gather, t, c.Base, server) { Host = c }, now)) _gathersPending++;
            }
        }
        // Server-reflexive candidates given before gathering (AddServerReflexiveCandidate: a 1:1 NAT's address).
        foreach (var c in _localCandidates.ToArray())
            if (c.Type == IceCandidateType.ServerReflexive || c.IsTcp) Emit(new IceCandidateGatheredEvent(now, c));
        DrainTransactions();
        CompleteGatheringIfDone(now);
    }

    /// <summary>Gathering started and every STUN and TURN request of it ended (<see cref="IceGatheringCompleteEvent"/> was emitted).</summary>
    public bool GatheringComplete => _gatheringComplete;

    private void CompleteGatheringIfDone(TimeSpan now)
    {
        if (!_gatheringStarted || _gatheringComplete || _gathersPending > 0) return;
        _gatheringComplete = true;
        Emit(new IceGatheringCompleteEvent(now));
        CheckAllFailed(now);
    }

    private void OnGatherCompleted(IceTransaction o, in StunMessage response, TimeSpan now)
    {
        _gathersPending--;
        if (o.Transaction.State == StunTransactionState.Succeeded && response.TryGetXorMappedAddress(out var mapped) && o.Host is { } host)
        {
            var address = mapped.ToEndPoint();
            var exists = false;
            foreach (var c in _localCandidates) if (c.Address.Equals(address)) exists = true;
            if (!exists)
            {
                var candidate = new IceCandidate(IceCandidateType.ServerReflexive, address,
                    IceCandidate.ComputePriority(IceCandidateType.ServerReflexive, IceCandidate.LocalPreferenceOf(host.Priority)),
                    Foundation(IceCandidateType.ServerReflexive, host.Base.Address, o.Remote), host.Base);
                // Pairs use the base, so a server-reflexive candidate adds no pair (RFC 8445 section 6.1.2.4).
                _localCandidates.Add(candidate);
                Emit(new IceCandidateGatheredEvent(now, candidate));
            }
        }
        CompleteGatheringIfDone(now);
    }

    // ---------------- checks ----------------

    private void StartChecksIfReady(TimeSpan now)
    {
        if (_current.Remote is null || _current.Pairs.Count == 0) return;
        if (State == IceConnectionState.New) Transition(IceConnectionState.Checking, IceStateReason.ChecksStarted, now);
    }

    internal void EnqueueTriggered(IcePair pair, bool front) => pair.Generation.CheckList.Trigger(pair, front, Role.Role);

    private bool ChecksAllowed =>
        Mode.SendsChecks && _current.Remote is not null && State is not (IceConnectionState.Failed or IceConnectionState.Closed);

    /// <summary>The next pair to check: triggered first, then the best Waiting, then the best Frozen (RFC 8445 section 6.1.4.2).</summary>
    private IcePair? NextPairToCheck(bool take) =>
        // Once a pair of this generation is selected, ordinary checks stop (RFC 8445 section 8.1.2).
        _current.CheckList.Next(take, Role.Role, ordinaryChecksDone: Selected is { } s && s.Generation == _current, SkipTriggered);

    // A triggered pair whose check is already in flight needs no new one, unless it is to carry USE-CANDIDATE.
    private static readonly Func<IcePair, bool> SkipTriggered = t => t.State == IceCandidatePairState.InProgress && !t.NominationPending;

    private TimeSpan? NextCheckDue()
    {
        // At the bound on pending transactions the next check waits until one ends (IceLimits.MaxPendingTransactions).
        if (!ChecksAllowed || !_transactions.HasRoom || NextPairToCheck(take: false) is null) return null;
        var due = _lastCheckAt is { } last && last + Options.Ta > _now ? last + Options.Ta : _now;
        // The controlled agent (the answerer) may hold its ordinary checks until the offerer's first check shows that
        // the offerer has our answer: some stacks (libjuice) call ICE connected on our checks alone and start DTLS
        // before they have the answer's fingerprint, which then fails. Triggered checks are never held.
        // Not while SPED carries the handshake: the offerer (the DTLS client, which starts from our answer) sends its
        // flight one datagram a STUN message (Chromium), so our early check's response brings the part its first
        // check could not carry, a round trip before its next check would; and a SPED peer's DTLS needs our messages.
        if (Options.ControlledCheckHold > TimeSpan.Zero && Role.Role == IceRole.Controlled && !_current.PeerCheckSeen && Sped is not { IsActive: true }
            && _current.CheckList.Triggered.Count == 0 && _current.RemoteSetAt is { } set && due < set + Options.ControlledCheckHold)
            due = set + Options.ControlledCheckHold;
        return due;
    }

    private void RunPacedCheck(TimeSpan now)
    {
        if (NextCheckDue() is not { } due || due > now) return;
        var pair = NextPairToCheck(take: true);
        if (pair is null) return;
        SendCheck(pair, now);
        _lastCheckAt = now;
    }

    private void SendCheck(IcePair pair, TimeSpan now)
    {
        var g = pair.Generation;
        // At the bound on pending transactions no check starts (the paced ones wait in NextCheckDue; a SPED re-check
        // leaves the check in flight be).
        if (g.RemoteKey is null || g.OutgoingUsername is null || !_transactions.HasRoom) return;
        var nominating = pair.NominationPending;
        pair.NominationPending = false;
        // A new check replaces one in progress on the same pair (RFC 8445 section 7.3.1.4): the old one is no longer
        // retransmitted, but its success response still counts when it comes (it may already be on its way; under
        // SPED it may carry the peer's DTLS datagram).
        _transactions.StopRetransmittingChecksOn(pair, now);
        pair.State = IceCandidatePairState.InProgress;
        pair.LastCheckSentAt = now;
        var t = new StunClientTransaction(WriteCheck(g, pair, nominating, out var length, out var spedSent, out var spedCrc).AsSpan(0, length),
            RetransmissionFor(pair));
        _transactions.TryStart(new IceTransaction(IceTransactionKind.Check, t, pair.LocalEndPoint, pair.RemoteEndPoint)
        { Pair = pair, Nominating = nominating, RoleAtSend = Role.Role, IceTcp = pair.IceTcp, SpedSent = spedSent, SpedCrc = spedCrc }, now);
        SendSpedCarriers(g, pair, now);
        DrainTransactions();
    }

    // Over a stream a request is sent once and waits ReliableTimeout for its answer (RFC 8489 section 6.2.2,
    // RFC 6544 section 7.1): a retransmission would only queue behind the first on the same connection.
    private StunRetransmissionOptions RetransmissionFor(IcePair pair) =>
        !pair.IceTcp ? Options.CheckRetransmission
            : _reliableRetransmission ??= Options.CheckRetransmission with { Reliable = true, ReliableTimeout = IceTcpCheckTimeout };

    private StunRetransmissionOptions? _reliableRetransmission;

    /// <summary>How long a check or consent check on an ICE-TCP pair waits for its answer (it is not retransmitted): 5 s, inside consent's 30 s.</summary>
    internal static readonly TimeSpan IceTcpCheckTimeout = TimeSpan.FromSeconds(5);

    private byte[] WriteCheck(IceGeneration g, IcePair pair, bool useCandidate, out int length, out bool spedSent, out uint? spedCrc, bool spedData = true)
    {
        var buffer = new byte[256 + (Options.Software?.Length ?? 0) * 3 + (Sped is { IsActive: true } ? SpedAttributes.MaxStunBody : 0)];
        Span<byte> tid = stackalloc byte[StunHeader.TransactionIdSize];
        StunTransactionId.NewRandom().WriteTo(tid);
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, tid);
        if (Options.Software is { } software) w.AddString(StunAttributeType.Software, software);
        w.AddString(StunAttributeType.Username, pair.BridgeUsername ?? g.OutgoingUsername);
        // PRIORITY: the priority a peer-reflexive candidate of ours would have (RFC 8445 section 7.1.1).
        w.AddUInt32(StunAttributeType.Priority,
            IceCandidate.ComputePriority(IceCandidateType.PeerReflexive, IceCandidate.LocalPreferenceOf(pair.Local.Priority)));
        Role.WriteRoleAttribute(ref w, TieBreaker);
        if (useCandidate) w.AddFlag(StunAttributeType.UseCandidate);
        spedCrc = WriteSped(ref w, out spedSent, spedData);
        w.AddMessageIntegrity(g.RemoteKey!);
        w.AddFingerprint();
        length = w.Length;
        return buffer;
    }

    /// <summary>Moves the due sends of every transaction to the transmit queue.</summary>
    private void DrainTransactions()
    {
        while (true)
        {
            var span = RentTransmit(out var buffer);
            if (!_transactions.TryPollTransmit(span, out var n, out var o)) { System.Buffers.ArrayPool<byte>.Shared.Return(buffer); break; }
            QueueTransmit(buffer, n, o!.Local, o.Remote, o.IceTcp);
        }
    }

    private void HandleTransactionTimeouts(TimeSpan now)
    {
        _transactions.HandleTimeout(now);
        // A failure may end the agent (all pairs failed): that cancels the rest, timed-out ones included.
        while (_transactions.TryPollTimedOut(out var o)) OnTransactionFailed(o, now);
        DrainTransactions();
        _transactions.RemoveCompleted();
    }

    private void OnTransactionFailed(IceTransaction o, TimeSpan now)
    {
        switch (o.Kind)
        {
            case IceTransactionKind.Gather:
                _gathersPending--;
                CompleteGatheringIfDone(now);
                break;
            case IceTransactionKind.Check when o.Pair is { } pair && KeepsOnlyUsablePair(pair):
                // A check on the valid pair data goes on before any nomination (the controlling agent's nominating
                // check, or a triggered one) timed out: at 27 % loss each way all seven requests or their answers may
                // be lost. Failing the pair would leave the agent Connected with no pair to send on until a check of
                // the peer came (chaos seed 75: seconds without media or data). It stays valid; consent (RFC 7675)
                // ends it if the path is really gone, and the nomination is tried again.
                pair.State = IceCandidatePairState.Succeeded;
                Role.ConsiderNomination(this, now);
                break;
            case IceTransactionKind.Check when o.Pair is { } pair:
                pair.State = IceCandidatePairState.Failed;
                ReleaseRemoteIfUnused(pair, now);
                CheckAllFailed(now);
                Role.ConsiderNomination(this, now);
                break;
        }
    }

    // Whether failing this valid pair would leave nothing to send on: no pair is selected and no other valid pair of
    // the current generation is usable.
    private bool KeepsOnlyUsablePair(IcePair pair)
    {
        if (!pair.Valid || Selected is not null || pair.Generation != _current) return false;
        foreach (var p in _current.Pairs)
            if (p != pair && p.Valid && p.State != IceCandidatePairState.Failed) return false;
        return true;
    }

    private IceReceiveResult HandleResponse(in StunMessage response, IPEndPoint local, IPEndPoint remote, bool iceTcp, TimeSpan now)
    {
        var match = _transactions.Find(response.TransactionId);
        if (match is null) { Drop(IceDropReason.UnknownTransaction); return IceReceiveResult.Dropped; }

        if (match.Kind == IceTransactionKind.Gather)
        {
            if (!remote.Equals(match.Remote)) { Drop(IceDropReason.BadResponse); return IceReceiveResult.Dropped; }
            if (match.Transaction.HandleResponse(response, now) != StunResponseMatch.Completed)
            {
                Drop(IceDropReason.UnknownTransaction);
                return IceReceiveResult.Dropped;
            }
            OnGatherCompleted(match, response, now);
            _transactions.Remove(match);
            return IceReceiveResult.Stun;
        }

        // Checks and consent: authenticated with the remote password, and symmetric (RFC 8445 section 7.2.5.2.1).
        var key = match.Pair?.Generation.RemoteKey;
        if (key is null || !response.CheckMessageIntegrity(key) || !local.Equals(match.Local) || !remote.Equals(match.Remote) || iceTcp != match.IceTcp)
        {
            Drop(IceDropReason.BadResponse);
            return IceReceiveResult.Dropped;
        }
        match.Transaction.HandleResponse(response, now);
        _transactions.Remove(match);
        var pair = match.Pair!;
        if (CountsForLiveness(pair)) OnTrafficReceived(now);

        if (match.Transaction.State == StunTransactionState.ErrorResponse)
        {
            // A replaced check's error (a role conflict, say) is stale: the check that replaced it gets its own answer.
            if (match.Transaction.RetransmissionStopped) return IceReceiveResult.Stun;
            if (response.TryGetErrorCode(out var code, out _) && code == StunErrorCode.RoleConflict && match.Kind == IceTransactionKind.Check)
            {
                // RFC 8445 section 7.2.5.1: take the role opposite to the one the request carried, and check the pair again.
                SetRole(match.RoleAtSend == IceRole.Controlling ? IceRoleStrategy.Controlled : IceRoleStrategy.Controlling, now);
                pair.NominationPending = false;
                pair.State = IceCandidatePairState.Waiting;
                EnqueueTriggered(pair, front: false);
            }
            else if (match.Kind == IceTransactionKind.Check)
            {
                pair.State = IceCandidatePairState.Failed;
                ReleaseRemoteIfUnused(pair, now);
                CheckAllFailed(now);
            }
            return IceReceiveResult.Stun;
        }
        if (match.Transaction.State != StunTransactionState.Succeeded) return IceReceiveResult.Stun;
        if (match.Transaction.RoundTripTime is { } rtt) pair.RecordRoundTrip(rtt);

        // RFC 7675 section 5.1: any authenticated response on the pair we send on refreshes consent (selected or not).
        pair.LastResponseAt = now;
        if (pair == LivenessPair) _liveness.ConsentRefreshed(now);
        // SPED: what the peer carried in its answer reaches DTLS before the pair's events do.
        if (match.SpedSent) ReadSped(response, match.SpedCrc);
        if (match.Kind == IceTransactionKind.Check)
        {
            if (response.TryGetXorMappedAddress(out var mapped)) LearnLocalPeerReflexive(pair, mapped);
            OnCheckSucceeded(pair, match.Nominating, now);
        }
        // The response completed the peer's flight (it carries one datagram a message, as Chromium does) and no pair
        // can carry our reply yet: the reply goes at once in requests of its own.
        if (match.SpedSent && pair.Generation == _current && Mode.SendsChecks)
        {
            SendSpedCarriers(pair.Generation, pair, now);
            // The answer carried no DTLS and the peer has sent none: ask again at once (SendSpedProbe).
            SendSpedProbe(pair.Generation, pair, now);
        }
        return IceReceiveResult.Stun;
    }

    /// <summary>
    /// RFC 8445 section 7.2.5.3.1: a mapped address that is none of our candidates is a peer-reflexive local
    /// candidate, with the PRIORITY our check carried and the pair's base. It is not signalled. The valid pair
    /// keeps the checked pair's endpoints, since everything is sent from the base anyway.
    /// </summary>
    private void LearnLocalPeerReflexive(IcePair pair, StunAddress mapped)
    {
        foreach (var c in _localCandidates)
            if (mapped.Matches(c.Address)) return;
        var address = mapped.ToEndPoint();
        _localCandidates.Add(new IceCandidate(IceCandidateType.PeerReflexive, address,
            IceCandidate.ComputePriority(IceCandidateType.PeerReflexive, IceCandidate.LocalPreferenceOf(pair.Local.Priority)),
            Foundation(IceCandidateType.PeerReflexive, pair.Local.Base.Address, null), pair.Local.Base));
    }

    private void OnCheckSucceeded(IcePair pair, bool nominating, TimeSpan now)
    {
        pair.State = IceCandidatePairState.Succeeded;
        pair.Valid = true;
        if (pair.Generation.FirstValidAt is null)
        {
            pair.Generation.FirstValidAt = now;
            if (pair.Generation == _current) Emit(new IceValidPairEvent(now, pair.Local, pair.Remote, pair.RoundTripTime));
        }
        // RFC 8445 section 7.2.5.3.3: unfreeze the pairs of the same foundation.
        pair.Generation.CheckList.Unfreeze(pair.Foundation);
        Role.OnCheckSucceeded(this, pair, nominating, now);
    }

    internal void Nominate(IcePair pair, TimeSpan now)
    {
        pair.Nominated = true;
        if (pair.Generation != _current) return;
        if (Selected is { } s && s.Generation == _current && PriorityOf(s) >= PriorityOf(pair) && !PeerLeftSelected(s, pair, now)) return;
        Select(pair, now);
    }

    // A controlled agent follows a later nomination of a lower pair when nothing arrived on its selected pair for
    // PeerMoveSilence: the controlling peer lost the relay under that pair and nominated another (IceAgent.Relay).
    // Without the silence it keeps the better pair it selected (RFC 8445 section 8.1.1: one nomination per session).
    private bool PeerLeftSelected(IcePair selected, IcePair nominated, TimeSpan now) =>
        Role.Role == IceRole.Controlled && selected != nominated && Options.PeerMoveSilence > TimeSpan.Zero
        && now - _liveness.LastReceived >= Options.PeerMoveSilence;

    private void SwitchRole(TimeSpan now) => SetRole(Role.Opposite, now);

    private void SetRole(IceRoleStrategy role, TimeSpan now)
    {
        if (role == Role) return;
        Role = role;
        Emit(new IceRoleChangedEvent(now, Role.Role));
    }

    private void CheckAllFailed(TimeSpan now)
    {
        if (Selected is not null || State is IceConnectionState.Failed or IceConnectionState.Closed || RelaysRecovering || _outage is not null) return;
        var g = _current;
        if (!g.RemoteEndOfCandidates || !g.CheckList.AllFailed || (_gatheringStarted && !_gatheringComplete)) return;
        Transition(IceConnectionState.Failed, IceStateReason.AllPairsFailed, now);
        StopEverything();
    }
}
