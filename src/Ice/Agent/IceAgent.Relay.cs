using System.Buffers;
using System.Net;
using Transport.Ice.Stun;
using Transport.Ice.Turn;

namespace Transport.Ice;

/// <summary>
/// Relayed candidates (RFC 8445 section 5.1.1.2): one <see cref="TurnClient"/> per host candidate and configured
/// TURN server, the relayed address as a candidate with type preference 0, checks and data of its pairs wrapped
/// for the server (RFC 8656 sections 11 and 12), and what the server relays handled as if it had arrived on the
/// relayed address. Failures and expiries are <see cref="IceRelayErrorEvent"/>s, never exceptions.
/// </summary>
public sealed partial class IceAgent
{
    private readonly List<IceRelay> _relays = new();

    /// <summary>The relayed candidates' TURN clients, for diagnostics and tests (state, counters, channels).</summary>
    public IReadOnlyList<TurnClient> TurnClients
    {
        get
        {
            var list = new List<TurnClient>(_relays.Count);
            foreach (var r in _relays) list.Add(r.Client);
            return list;
        }
    }

    /// <summary>
    /// A whole frame (STUN or ChannelData, split with <see cref="TurnStreamFraming"/>) read from the TCP connection
    /// to a TURN server: <paramref name="local"/> and <paramref name="server"/> are the endpoints of the
    /// <see cref="IceTransmitPath"/> (with <see cref="IceTransmitPath.Tcp"/>) that opened it. Like
    /// <see cref="HandleDatagram(ReadOnlySpan{byte}, IPEndPoint, IPEndPoint, TimeSpan, out ReadOnlySpan{byte}, IceInputKind)"/>
    /// otherwise.
    /// </summary>
    public IceReceiveResult HandleStreamFrame(ReadOnlySpan<byte> frame, IPEndPoint local, IPEndPoint server, TimeSpan now,
        out ReadOnlySpan<byte> applicationData)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(server);
        applicationData = default;
        now = Clamp(now);
        if (_disposed || State is IceConnectionState.Failed or IceConnectionState.Closed) { Drop(IceDropReason.NotRunning); return IceReceiveResult.Dropped; }
        if (FindRelayByServer(local, server, tcp: true) is not { } relay) { Drop(IceDropReason.UnknownPeer); return IceReceiveResult.Dropped; }
        return HandleFromRelay(relay, frame, now, out applicationData);
    }

    /// <summary>
    /// The TCP connection from <paramref name="local"/> to the TURN server <paramref name="server"/> closed: the
    /// server deletes the allocation with it (RFC 8656 section 3.1), so its relayed candidate is removed with an
    /// <see cref="IceRelayErrorEvent"/>.
    /// </summary>
    public void TurnConnectionClosed(IPEndPoint local, IPEndPoint server, TimeSpan now) =>
        TurnConnectionClosed(local, server, now, "the TCP connection to the server closed");

    /// <summary>
    /// Like <see cref="TurnConnectionClosed(IPEndPoint, IPEndPoint, TimeSpan)"/>, with what closed it (a reset, a
    /// refused TLS certificate, a connect timeout): the <see cref="IceRelayErrorEvent.Reason"/>.
    /// </summary>
    public void TurnConnectionClosed(IPEndPoint local, IPEndPoint server, TimeSpan now, string reason)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(reason);
        now = Clamp(now);
        if (_disposed || FindRelayByServer(local, server, tcp: true) is not { } relay) return;
        relay.Client.ConnectionClosed(now, reason);
        PumpRelay(relay, now);
    }

    /// <summary>
    /// The configured server of the relay whose transmits go from <paramref name="local"/> to
    /// <paramref name="server"/> over TCP (the driver opening that connection reads <see cref="TurnServerConfig.Secure"/>
    /// and <see cref="TurnServerConfig.TlsServerName"/> from it); null when no relay of this agent matches.
    /// </summary>
    public TurnServerConfig? FindTurnServer(IPEndPoint local, IPEndPoint server)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(server);
        return FindRelayByServer(local, server, tcp: true)?.Config;
    }

    private void StartRelays(IceCandidate host, TimeSpan now)
    {
        var index = 0;
        foreach (var server in Options.TurnServers)
        {
            var endPoint = server.TryGetEndPoint()!;
            if (endPoint.AddressFamily != host.Address.AddressFamily) continue;
            var options = TurnClientOptionsFor(server);
            // Servers listed first are preferred; host preferences count down by 1 per host, so 1024 per relay keeps them unique.
            var localPreference = (ushort)Math.Max(0, IceCandidate.LocalPreferenceOf(host.Priority) - 1024 * index++);
            var relay = new IceRelay(server, host, new TurnClient(options), RelayRecovery.From(Options)) { LocalPreference = localPreference };
            _relays.Add(relay);
            _gathersPending++;
            relay.Client.Start(now);
            PumpRelay(relay, now);
        }
    }

    private TurnClientOptions TurnClientOptionsFor(TurnServerConfig server)
    {
        var options = TurnClientOptions.FromConfig(server);
        return Options.ConfigureTurnClient is { } configure ? configure(options) : options;
    }

    /// <summary>Moves the TURN client's transmits to the agent's queue and acts on its events, until both are empty.</summary>
    private void PumpRelay(IceRelay relay, TimeSpan now)
    {
        while (true)
        {
            while (true)
            {
                var buffer = ArrayPool<byte>.Shared.Rent(MaxDatagram);
                if (!relay.Client.TryPollTransmit(buffer.AsSpan(0, MaxDatagram), out var n, out var to)) { ArrayPool<byte>.Shared.Return(buffer); break; }
                if (!to.Matches(relay.ServerEndPoint)) relay.ServerEndPoint = to.ToEndPoint(); // a 300 redirect
                _transmits.Enqueue(new PendingTransmit(buffer, n, relay.Host.Base, relay.ServerEndPoint, relay.Tcp));
            }
            if (!relay.Client.TryPollEvent(out var evt)) return;
            OnRelayEvent(relay, evt, now);
        }
    }

    private void OnRelayEvent(IceRelay relay, TurnEvent evt, TimeSpan now)
    {
        switch (evt)
        {
            case TurnAllocated allocated:
                OnRelayAllocated(relay, allocated, now);
                break;
            case TurnAllocationFailed failed:
                Emit(new IceRelayErrorEvent(now, relay.Config, relay.Host.Base, IceRelayError.AllocationFailed, failed.Kind,
                    failed.ErrorCode, failed.Reason, null));
                relay.ReleaseHeld(null);
                FinishRelayGathering(relay, now);
                // A re-allocation attempt failed (the server still down, the connection refused): the next one, on another
                // server after RelayFailoverAfter failures in a row on this one, or give up.
                if (relay.Recovery.Recovering)
                {
                    if (relay.Recovery.AttemptFailed(now)) FailOver(relay);
                    if (!relay.Recovery.Recovering) OnRelayRecoveryOver(now);
                }
                break;
            case TurnAllocationExpired expired:
                LoseRelay(relay, expired.ErrorCode, expired.Reason, now);
                break;
            case TurnPermissionCreated created:
                FlushHeld(relay, created.Peer.ToIPAddress());
                break;
            case TurnPermissionFailed { ErrorCode: 437 }:
            case TurnChannelBindFailed { ErrorCode: 437 }:
                // 437 Allocation Mismatch: the server no longer knows the allocation (it restarted). A Refresh confirms it
                // (its 437 ends the allocation, and the relay is allocated again) rather than failing the pairs one by one.
                relay.Client.RefreshNow(now);
                break;
            case TurnPermissionFailed refused:
                OnPermissionRefused(relay, refused, now);
                break;
        }
    }

    private void OnRelayAllocated(IceRelay relay, TurnAllocated allocated, TimeSpan now)
    {
        var host = relay.Host;
        var relayed = allocated.RelayedAddress.ToEndPoint();
        var mapped = allocated.MappedAddress.ToEndPoint();
        var serverKey = (relay.Tcp ? "tcp:" : "udp:") + relay.Config.TryGetEndPoint();
        // RFC 8445 section 5.1.1.2: the base of a relayed candidate is the relayed address itself; raddr is the mapped address.
        var candidate = new IceCandidate(IceCandidateType.Relayed, relayed,
            IceCandidate.ComputePriority(IceCandidateType.Relayed, relay.LocalPreference),
            Foundation(IceCandidateType.Relayed, host.Base.Address, serverKey), relayed)
        { RelatedAddress = mapped };
        relay.Candidate = candidate;
        _localCandidates.Add(candidate);
        Emit(new IceCandidateGatheredEvent(now, candidate));
        // The Allocate response's XOR-MAPPED-ADDRESS is a server-reflexive candidate too (UDP only: over TCP it is a TCP port).
        if (Options.TransportPolicy == IceTransportPolicy.All && !relay.Tcp && !HasLocalAddress(mapped))
        {
            var srflx = new IceCandidate(IceCandidateType.ServerReflexive, mapped,
                IceCandidate.ComputePriority(IceCandidateType.ServerReflexive, IceCandidate.LocalPreferenceOf(host.Priority)),
                Foundation(IceCandidateType.ServerReflexive, host.Base.Address, relay.Config.TryGetEndPoint()), host.Base);
            _localCandidates.Add(srflx);
            Emit(new IceCandidateGatheredEvent(now, srflx));
        }
        if (relay.Recovery.Recovering)
        {
            Emit(new IceRelayRecoveredEvent(now, relay.Config, relay.Host.Base, candidate, relay.Recovery.Attempts));
            relay.Recovery.Succeeded();
        }
        foreach (var remote in _current.RemoteCandidates) AddPair(_current, candidate, remote);
        FinishRelayGathering(relay, now);
        StartChecksIfReady(now);
    }

    /// <summary>The relay will not carry anything to or from that IP: its pairs fail now rather than after the checks time out.</summary>
    private void OnPermissionRefused(IceRelay relay, TurnPermissionFailed refused, TimeSpan now)
    {
        var ip = refused.Peer.ToIPAddress();
        relay.Refused.Add(ip);
        relay.ReleaseHeld(ip);
        Emit(new IceRelayErrorEvent(now, relay.Config, relay.Host.Base, IceRelayError.PermissionFailed, refused.Kind, refused.ErrorCode,
            $"permission for {ip}: {refused.Reason}", relay.Candidate));
        if (relay.Candidate is not { } candidate) return;
        _transactions.Cancel((candidate, ip),
            static (t, s) => t.Kind == IceTransactionKind.Check && t.Pair is { } p && p.Local == s.candidate && p.Remote.Address.Address.Equals(s.ip), now);
        foreach (var g in new[] { _current, _previous })
            if (g is not null)
                foreach (var p in g.Pairs)
                    if (p.Local == candidate && p.Remote.Address.Address.Equals(ip) && p != LivenessPair) p.State = IceCandidatePairState.Failed;
        CheckAllFailed(now);
    }

    private bool HasLocalAddress(IPEndPoint address)
    {
        foreach (var c in _localCandidates) if (c.Address.Equals(address)) return true;
        foreach (var c in _hosts) if (c.Address.Equals(address)) return true;
        return false;
    }

    private void FinishRelayGathering(IceRelay relay, TimeSpan now)
    {
        if (!relay.Gathering) return;
        relay.Gathering = false;
        _gathersPending--;
        CompleteGatheringIfDone(now);
    }

    /// <summary>
    /// The allocation is gone: its candidate and its pairs are removed (<see cref="IceCandidatePairsRemovedEvent"/>) and
    /// the relay is allocated again after a back-off (<see cref="IceAgentOptions.RelayReallocationAttempts"/>), on another
    /// configured server after <see cref="IceAgentOptions.RelayFailoverAfter"/> failed attempts in a row. When the pair in
    /// use was on it, the rule of <see cref="LosePairInUse"/> applies (with re-allocation off, no other pair: Failed).
    /// </summary>
    private void LoseRelay(IceRelay relay, int errorCode, string reason, TimeSpan now)
    {
        relay.ReleaseHeld(null);
        var candidate = relay.Candidate;
        Emit(new IceRelayErrorEvent(now, relay.Config, relay.Host.Base, IceRelayError.AllocationExpired, null, errorCode, reason, candidate));
        FinishRelayGathering(relay, now);
        var recover = State is not (IceConnectionState.Failed or IceConnectionState.Closed) && relay.Recovery.Lost(now);
        if (candidate is null) return;
        _localCandidates.Remove(candidate);
        var inUse = LivenessPair is { } live && live.Local == candidate;
        RemovePairsOf(candidate, reason, now);
        if (State is IceConnectionState.Failed or IceConnectionState.Closed) return;
        if (inUse) LosePairInUse(IceStateReason.RelayLost, recover, now);
        if (State is IceConnectionState.Failed) return;
        CheckAllFailed(now);
    }

    /// <summary>The pairs of a lost relayed candidate leave both check lists; their transactions and queued checks are cancelled.</summary>
    private void RemovePairsOf(IceCandidate candidate, string reason, TimeSpan now)
    {
        _transactions.Cancel(candidate, static (t, c) => t.Pair is { } p && p.Local == c, now);
        var removed = _current.CheckList.RemoveLocal(candidate) + (_previous?.CheckList.RemoveLocal(candidate) ?? 0);
        if (removed > 0) Emit(new IceCandidatePairsRemovedEvent(now, candidate, removed, reason));
    }

    /// <summary>
    /// A new TURN client on the relay's server and host socket allocates again (a new connection over TCP: the driver
    /// opens it on the first transmit).
    /// </summary>
    private void Reallocate(IceRelay relay, TimeSpan now)
    {
        relay.Recovery.BeginAttempt();
        relay.Renew(new TurnClient(TurnClientOptionsFor(relay.Config)));
        relay.Client.Start(now);
        PumpRelay(relay, now);
    }

    /// <summary>
    /// The relay's server failed <see cref="IceAgentOptions.RelayFailoverAfter"/> attempts in a row: the next attempt goes
    /// to another configured server of the host's family (of the relay's configured kind when one is free,
    /// <see cref="RelayRecovery.NextServer"/>); it stays when there is none.
    /// </summary>
    private void FailOver(IceRelay relay)
    {
        var next = RelayRecovery.NextServer(Options.TurnServers, relay.Config, relay.Configured, relay.Family, server => OccupiedByAnother(relay, server));
        if (next is null) return;
        relay.MoveTo(next);
        relay.Recovery.MovedServer();
    }

    // One allocation per host socket, server and transport: a server another relay of the host holds (or is recovering
    // on) is not a fail-over target.
    private bool OccupiedByAnother(IceRelay relay, TurnServerConfig server)
    {
        var endPoint = server.TryGetEndPoint();
        foreach (var r in _relays)
            if (r != relay && r.Occupies && r.Host == relay.Host && r.ConfiguredEndPoint.Equals(endPoint) && r.Config.Transport == server.Transport)
                return true;
        return false;
    }

    /// <summary>A relay's attempts ran out: the agent fails when nothing is left that could carry data.</summary>
    private void OnRelayRecoveryOver(TimeSpan now)
    {
        if (State is IceConnectionState.Failed or IceConnectionState.Closed || LivenessPair is not null || _outage is null) { CheckAllFailed(now); return; }
        foreach (var r in _relays) if (r.Recovery.Recovering) return;
        foreach (var p in _current.Pairs) if (p.State != IceCandidatePairState.Failed) return;
        Transition(IceConnectionState.Failed, IceStateReason.RelayLost, now);
        StopEverything();
    }

    /// <summary>True while a lost relay is being allocated again: the check list is not final (no AllPairsFailed).</summary>
    private bool RelaysRecovering
    {
        get
        {
            foreach (var r in _relays) if (r.Recovery.Recovering) return true;
            return false;
        }
    }

    /// <summary>
    /// The pair in use went silent: if it is relayed, a Refresh asks the server whether it still holds the allocation (a restarted one answers 437).
    /// </summary>
    private void ProbeRelayOf(IcePair pair, TimeSpan now)
    {
        if (pair.Local.Type != IceCandidateType.Relayed || FindRelayByRelayed(pair.LocalEndPoint) is not { } relay) return;
        relay.Client.RefreshNow(now);
        PumpRelay(relay, now);
    }

    private IceRelay? FindRelayByRelayed(IPEndPoint local)
    {
        foreach (var r in _relays)
            if (r.Candidate is { } c && c.Address.Equals(local)) return r;
        return null;
    }

    // After a fail-over a dead relay (failed at gathering) may name the same server as a live one: the live one answers.
    private IceRelay? FindRelayByServer(IPEndPoint local, IPEndPoint remote, bool tcp)
    {
        IceRelay? found = null;
        foreach (var r in _relays)
            if (r.Tcp == tcp && r.Host.Base.Equals(local) && r.ServerEndPoint.Equals(remote))
            {
                if (r.Occupies) return r;
                found ??= r;
            }
        return found;
    }

    private IceReceiveResult HandleFromRelay(IceRelay relay, ReadOnlySpan<byte> datagram, TimeSpan now, out ReadOnlySpan<byte> applicationData)
    {
        applicationData = default;
        var droppedBefore = relay.Client.Dropped.Total;
        if (!relay.Client.TryReceive(datagram, relay.Client.ServerAddress, now, out var peer, out var payload, out _))
        {
            PumpRelay(relay, now);
            AfterInput(now);
            if (relay.Client.Dropped.Total == droppedBefore) return IceReceiveResult.Stun;
            Drop(IceDropReason.TurnDropped);
            return IceReceiveResult.Dropped;
        }
        if (relay.Candidate is not { } candidate) { Drop(IceDropReason.TurnDropped); return IceReceiveResult.Dropped; }
        // Relayed from 'peer': handled as if it had arrived on the relayed address (RFC 8445 section 5.1.1.2).
        var result = HandleDirect(payload, candidate.Address, RemoteEndPointOf(peer), false, now);
        if (result == IceReceiveResult.ApplicationData) applicationData = payload;
        return result;
    }

    // The remote candidate's own IPEndPoint when it is known, so the data path allocates nothing.
    private IPEndPoint RemoteEndPointOf(StunAddress peer)
    {
        foreach (var c in _current.RemoteCandidates) if (peer.Matches(c.Address)) return c.Address;
        if (_previous is { } g)
            foreach (var c in g.RemoteCandidates) if (peer.Matches(c.Address)) return c.Address;
        return peer.ToEndPoint();
    }

    private void RequestPermission(IceCandidate local, IPEndPoint remote)
    {
        if (FindRelayByRelayed(local.Address) is not { } relay || relay.Client.State != TurnClientState.Allocated || relay.Refused.Contains(remote.Address))
            return;
        relay.Client.CreatePermission(StunAddress.FromEndPoint(remote), _now);
        PumpRelay(relay, _now);
    }

    private void BindRelayChannel(IcePair pair, TimeSpan now)
    {
        if (FindRelayByRelayed(pair.LocalEndPoint) is not { } relay || relay.Client.State != TurnClientState.Allocated) return;
        var peer = StunAddress.FromEndPoint(pair.RemoteEndPoint);
        if (relay.Client.GetBoundChannel(peer) != 0) return;
        try { relay.Client.BindChannel(peer, now); }
        catch (InvalidOperationException) { return; } // all 4096 channels used: data stays in Send indications
        PumpRelay(relay, now);
    }

    /// <summary>Wraps a datagram of a relayed pair for the server; holds it while the peer's permission is on its way.</summary>
    private void SendThroughRelay(IceRelay relay, byte[] buffer, int length, IPEndPoint remote)
    {
        if (relay.Client.State != TurnClientState.Allocated || (relay.Refused.Count > 0 && relay.Refused.Contains(remote.Address)))
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return;
        }
        var peer = StunAddress.FromEndPoint(remote);
        if (relay.Client.GetBoundChannel(peer) == 0 && !relay.Client.HasPermission(peer))
        {
            relay.Client.CreatePermission(peer, _now); // nothing new when it was asked already
            relay.Hold(buffer, length, remote);
            PumpRelay(relay, _now);
            return;
        }
        WrapAndQueue(relay, buffer, length, peer);
    }

    private void WrapAndQueue(IceRelay relay, byte[] buffer, int length, StunAddress peer)
    {
        var wrapped = ArrayPool<byte>.Shared.Rent(TurnClient.GetMaxWrappedSize(length));
        var n = relay.Client.WrapSend(peer, buffer.AsSpan(0, length), wrapped);
        ArrayPool<byte>.Shared.Return(buffer);
        _transmits.Enqueue(new PendingTransmit(wrapped, n, relay.Host.Base, relay.ServerEndPoint, relay.Tcp));
    }

    private void FlushHeld(IceRelay relay, IPAddress ip)
    {
        foreach (var (buffer, length, peer) in relay.TakeHeld(ip))
        {
            if (relay.Client.State == TurnClientState.Allocated) WrapAndQueue(relay, buffer, length, StunAddress.FromEndPoint(peer));
            else ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void HandleRelayTimeouts(TimeSpan now)
    {
        for (var i = 0; i < _relays.Count && State is not (IceConnectionState.Failed or IceConnectionState.Closed); i++)
            if (_relays[i].Recovery.Due(now)) Reallocate(_relays[i], now);
        if (OutageFailedAt() is { } failAt && now >= failAt && State is not (IceConnectionState.Failed or IceConnectionState.Closed))
        {
            FailOutage(now);
            return;
        }
        for (var i = 0; i < _relays.Count && State is not (IceConnectionState.Failed or IceConnectionState.Closed); i++)
        {
            var relay = _relays[i];
            if (!relay.Live || relay.Client.PollTimeout() is not { } due || due > now) continue;
            relay.Client.HandleTimeout(now);
            PumpRelay(relay, now);
        }
    }

    private void CloseRelays(TimeSpan now)
    {
        foreach (var relay in _relays)
        {
            relay.ReleaseHeld(null);
            if (relay.Client.State is not (TurnClientState.Allocating or TurnClientState.Allocated)) continue;
            relay.Client.Close(now);
            PumpRelay(relay, now);
        }
    }

    private void DisposeRelays()
    {
        foreach (var relay in _relays)
        {
            relay.ReleaseHeld(null);
            relay.Client.Dispose();
        }
    }
}
