using System.Buffers;
using System.Net;
using System.Security.Cryptography;
using Transport.Ice.Stun;

namespace Transport.Ice;

/// <summary>
/// An ICE agent (RFC 8445) with consent freshness (RFC 7675) and liveness timers, as a sans-IO state machine
/// (../shared/DESIGN.md). Datagrams come in with their local and remote endpoints through
/// <see cref="HandleDatagram(ReadOnlySpan{byte}, IPEndPoint, IPEndPoint, TimeSpan)"/>; datagrams to send come out of <see cref="TryPollTransmit"/> with theirs;
/// <see cref="PollTimeout()"/> gives the next deadline and <see cref="HandleTimeout"/> acts on it; state changes are
/// <see cref="IceEvent"/> records from <see cref="TryPollEvent"/>. Application data goes out on the selected pair
/// through <see cref="TrySend(TimeSpan)"/>, and non-STUN datagrams come back as <see cref="IceReceiveResult.ApplicationData"/>.
/// Time is the caller's monotonic <c>now</c>; a time earlier than one already seen is clamped. One logical
/// thread at a time drives an agent.
/// </summary>
public sealed partial class IceAgent : IDisposable
{
    private const int MaxDatagram = 1500;
    private readonly Queue<PendingTransmit> _transmits = new();
    private readonly Queue<IceEvent> _events = new();
    private readonly long[] _dropped = new long[Enum.GetValues<IceDropReason>().Length];
    private readonly List<IceCandidate> _localCandidates = new();
    // Every host address the driver gave (its sockets). Under the relay-only policy they are bases for TURN only.
    private readonly List<IceCandidate> _hosts = new();
    private readonly Dictionary<string, string> _foundations = new();
    private readonly Random _random;
    private IceGeneration _current;
    private TimeSpan _now;
    private bool _disposed;

    /// <summary>Creates an agent.</summary>
    public IceAgent(IceAgentOptions? options = null)
    {
        Options = options ?? new IceAgentOptions();
        Options.Validate();
        _random = Options.Random ?? new Random();
        _liveness = new IceLiveness(Options, _random);
        _transactions = new IceTransactions(Options.Limits.MaxPendingTransactions);
        Mode = Options.Lite ? IceModeStrategy.Lite : IceModeStrategy.Full;
        Role = Options.Lite || Options.Role == IceRole.Controlled ? IceRoleStrategy.Controlled : IceRoleStrategy.Controlling;
        TieBreaker = Options.TieBreaker ?? RandomTieBreaker();
        _current = new IceGeneration(Options.LocalCredentials ?? IceCredentials.Generate());
    }

    private static ulong RandomTieBreaker()
    {
        Span<byte> b = stackalloc byte[8];
        RandomNumberGenerator.Fill(b);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(b);
    }

    /// <summary>The options.</summary>
    public IceAgentOptions Options { get; }

    /// <summary>The connection state.</summary>
    public IceConnectionState State { get; private set; }

    /// <summary>The current role.</summary>
    public IceRole CurrentRole => Role.Role;

    /// <summary>True for an ICE-lite agent.</summary>
    public bool IsLite => Options.Lite;

    /// <summary>The tie-breaker (RFC 8445 section 7.3.1.1).</summary>
    public ulong TieBreaker { get; }

    /// <summary>The local credentials of the current generation (to signal).</summary>
    public IceCredentials LocalCredentials => _current.Local;

    /// <summary>The local candidates so far.</summary>
    public IReadOnlyList<IceCandidate> LocalCandidates => _localCandidates;

    /// <summary>The selected pair's local candidate, or null.</summary>
    public IceCandidate? SelectedLocal => Selected?.Local;

    /// <summary>The selected pair's remote candidate, or null.</summary>
    public IceCandidate? SelectedRemote => Selected?.Remote;

    /// <summary>Datagrams dropped for <paramref name="reason"/>.</summary>
    public long DroppedCount(IceDropReason reason) => _dropped[(int)reason];

    /// <summary>Remote candidates (signalled or peer-reflexive) not used because the check list held <see cref="IceLimits.MaxRemoteCandidates"/>.</summary>
    public long RemoteCandidatesDropped { get; private set; }

    /// <summary>Remote candidates refused for their address (<see cref="IceLimits"/>: unspecified, multicast, broadcast, ours, private when denied).</summary>
    public long RemoteCandidatesFiltered { get; private set; }

    /// <summary>Pairs not formed because the check list held <see cref="IceLimits.MaxPairs"/>.</summary>
    public long PairsDropped { get; private set; }

    /// <summary>Consent checks and gathering requests not sent because <see cref="IceLimits.MaxPendingTransactions"/> were pending.</summary>
    public long TransactionsRefused => _transactions.Refused;

    /// <summary>All dropped datagrams.</summary>
    public long DroppedTotal { get { long n = 0; foreach (var d in _dropped) n += d; return n; } }

    /// <summary>The pairs of the current check list, for diagnostics and tests.</summary>
    public IReadOnlyList<IceCandidatePairInfo> CandidatePairs
    {
        get
        {
            var list = new List<IceCandidatePairInfo>();
            foreach (var p in _current.Pairs) list.Add(new(p.Local, p.Remote, PriorityOf(p), p.State, p.Nominated));
            return list;
        }
    }

    internal IceGeneration Current => _current;
    internal IceRoleStrategy Role { get; private set; }
    internal IceModeStrategy Mode { get; }
    internal IcePair? Selected { get; private set; }
    internal ulong PriorityOf(IcePair pair) => pair.PriorityFor(Role.Role);

    private TimeSpan Clamp(TimeSpan now)
    {
        if (now > _now) _now = now;
        return _now;
    }

    private void Drop(IceDropReason reason) => _dropped[(int)reason]++;

    // ---------------- candidates and credentials (signaling side) ----------------

    /// <summary>
    /// Adds a listening TCP socket of the driver as a passive TCP host candidate (ICE-TCP, RFC 6544): peers' active
    /// candidates connect to it and send their checks over RFC 4571 framing (<see cref="HandleIceTcpFrame"/>). Its
    /// priority is below every UDP candidate's (<see cref="IceCandidate.TcpHostTypePreference"/>), so UDP wins
    /// whenever it works. Reported by <see cref="StartGathering"/> (or at once, when gathering already started).
    /// </summary>
    public IceCandidate AddTcpHostCandidate(IPEndPoint address)
    {
        ArgumentNullException.ThrowIfNull(address);
        ThrowIfTerminal();
        foreach (var c in _localCandidates)
            if (c.IsTcp && c.Address.Equals(address)) return c;
        var count = 0;
        foreach (var c in _localCandidates) if (c.IsTcp) count++;
        var candidate = new IceCandidate(IceCandidateType.Host, address, IceCandidate.ComputeTcpHostPriority(IceTcpType.Passive, 8191 - count),
            Foundation(IceCandidateType.Host, address.Address, "tcp"))
        { Protocol = IceProtocol.Tcp, TcpType = IceTcpType.Passive };
        // Relay-only (iceTransportPolicy "relay"): never signalled nor answered on.
        if (Options.TransportPolicy == IceTransportPolicy.Relay) return candidate;
        _localCandidates.Add(candidate);
        if (_gatheringStarted) Emit(new IceCandidateGatheredEvent(_now, candidate));
        return candidate;
    }

    /// <summary>
    /// Adds a local address (a socket the driver owns) as a host candidate. Addresses added first are preferred
    /// (local preference 65535, 65534, ...). The candidate is reported by <see cref="StartGathering"/>.
    /// </summary>
    public IceCandidate AddHostCandidate(IPEndPoint address)
    {
        ArgumentNullException.ThrowIfNull(address);
        ThrowIfTerminal();
        foreach (var c in _hosts)
            if (c.Address.Equals(address)) return c;
        var localPreference = (ushort)(65535 - _hosts.Count);
        var candidate = new IceCandidate(IceCandidateType.Host, address, IceCandidate.ComputePriority(IceCandidateType.Host, localPreference),
            Foundation(IceCandidateType.Host, address.Address, null));
        _hosts.Add(candidate);
        // Relay-only (iceTransportPolicy "relay"): the host address is never signalled, paired or answered on.
        if (Options.TransportPolicy == IceTransportPolicy.Relay) return candidate;
        _localCandidates.Add(candidate);
        foreach (var remote in _current.RemoteCandidates) AddPair(_current, candidate, remote);
        return candidate;
    }

    /// <summary>
    /// Adds a server-reflexive candidate known without a STUN server: <paramref name="mapped"/> is the address a NAT
    /// with a fixed 1:1 mapping (a cloud VM's public address) presents for the host candidate
    /// <paramref name="hostBase"/> (which must have been added). Like a gathered one it is signalled with raddr/rport
    /// of its base and adds no pair (RFC 8445 section 6.1.2.4): checks leave from the base. Ignored (null) under the
    /// relay-only policy, and when the address is already a candidate.
    /// </summary>
    public IceCandidate? AddServerReflexiveCandidate(IPEndPoint mapped, IPEndPoint hostBase)
    {
        ArgumentNullException.ThrowIfNull(mapped);
        ArgumentNullException.ThrowIfNull(hostBase);
        ThrowIfTerminal();
        var host = _hosts.FirstOrDefault(h => h.Address.Equals(hostBase))
            ?? throw new ArgumentException($"{hostBase} is not a host candidate of this agent.", nameof(hostBase));
        if (Options.TransportPolicy == IceTransportPolicy.Relay) return null;
        foreach (var c in _localCandidates)
            if (c.Address.Equals(mapped)) return null;
        var candidate = new IceCandidate(IceCandidateType.ServerReflexive, mapped,
            IceCandidate.ComputePriority(IceCandidateType.ServerReflexive, IceCandidate.LocalPreferenceOf(host.Priority)),
            Foundation(IceCandidateType.ServerReflexive, host.Base.Address, "1:1 NAT"), host.Base);
        _localCandidates.Add(candidate);
        if (_gatheringStarted) Emit(new IceCandidateGatheredEvent(_now, candidate));
        return candidate;
    }

    // RFC 8445 section 5.1.1.3: same type, same base IP, same STUN or TURN server (and transport) -> same foundation.
    private string Foundation(IceCandidateType type, IPAddress baseAddress, object? server)
    {
        var key = $"{type}|{baseAddress}|{server}";
        if (!_foundations.TryGetValue(key, out var foundation))
        {
            foundation = (_foundations.Count + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            _foundations[key] = foundation;
        }
        return foundation;
    }

    /// <summary>Sets the remote ufrag and password (from the offer or answer). Starts checks when pairs exist.</summary>
    public void SetRemoteCredentials(IceCredentials remote, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(remote);
        ThrowIfTerminal();
        now = Clamp(now);
        _current.SetRemote(remote);
        _current.RemoteSetAt ??= now;
        BridgePairsCheckedEarly(now);
        StartChecksIfReady(now);
    }

    // See HandleRequest: pairs of the previous generation the peer already checked with the ufrag just set are the
    // peer's new candidates talking to our previous credentials. They join the current check list at once (a triggered
    // check, and the peer's nomination if it made one) instead of waiting for the peer's next check on them.
    private void BridgePairsCheckedEarly(TimeSpan now)
    {
        if (_previous is not { } previous || _current.Remote is not { } remote || !Mode.SendsChecks) return;
        foreach (var old in previous.Pairs)
        {
            if (old.ForeignPeerUfrag != remote.Ufrag) continue;
            if (!_current.RemoteCandidates.Contains(old.Remote)) _current.RemoteCandidates.Add(old.Remote);
            if (FindOrAddPair(_current, old.Local, old.Remote) is not { } pair) continue;
            pair.BridgeUsername = remote.Ufrag + ":" + previous.Local.Ufrag;
            pair.PeerChecked = true;
            Mode.OnRequest(this, pair, old.ForeignPeerNominated, now);
        }
    }

    /// <summary>Adds a remote candidate (trickle ICE: at any time). Only component 1 over UDP is used.</summary>
    public void AddRemoteCandidate(IceCandidate candidate, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        ThrowIfTerminal();
        now = Clamp(now);
        if (candidate.Component != 1) return;
        for (var i = 0; i < _current.RemoteCandidates.Count; i++)
        {
            var existing = _current.RemoteCandidates[i];
            if (!existing.Address.Equals(candidate.Address) || existing.Protocol != candidate.Protocol) continue;
            // A candidate learnt as peer-reflexive from a check arrives later by signaling: keep the signalled
            // one (its type, priority and foundation) on the same pairs (RFC 8838 section 11.4).
            if (existing.Type == IceCandidateType.PeerReflexive && candidate.Type != IceCandidateType.PeerReflexive)
            {
                _current.RemoteCandidates[i] = candidate;
                foreach (var p in _current.Pairs) if (p.Remote == existing) p.Remote = candidate;
            }
            return;
        }
        if (!AdmitRemoteCandidate(_current, candidate.Address)) return;
        _current.RemoteCandidates.Add(candidate);
        // A signalled TCP candidate forms no pair here: an active one (port 9) opens its connection to our passive
        // candidate, and that connection's first check makes a peer-reflexive pair (RFC 6544 section 7.2); we open
        // no connections (no active candidates), so passive and simultaneous-open ones pair with nothing of ours.
        if (!candidate.IsTcp)
            foreach (var local in _localCandidates)
                if (local.Type is IceCandidateType.Host or IceCandidateType.Relayed) AddPair(_current, local, candidate);
        StartChecksIfReady(now);
    }

    /// <summary>The peer signalled end-of-candidates (RFC 8838 section 8): when every pair fails, the agent fails.</summary>
    public void AddRemoteEndOfCandidates(TimeSpan now)
    {
        now = Clamp(now);
        _current.RemoteEndOfCandidates = true;
        CheckAllFailed(now);
    }

    /// <summary>
    /// ICE restart (RFC 8445 section 9): new local credentials and a new check list. Application data keeps
    /// flowing on the selected pair until the new generation selects one. Signal the returned credentials, then
    /// call <see cref="SetRemoteCredentials"/> and <see cref="AddRemoteCandidate"/> with the peer's new ones.
    /// </summary>
    public IceCredentials Restart(TimeSpan now, IceCredentials? newLocal = null)
    {
        ThrowIfTerminal();
        now = Clamp(now);
        var old = _current;
        IceGeneration? droppedPrevious = null;
        if (_previous is not null && _previous != LivenessPair?.Generation) { droppedPrevious = _previous; _previous.Dispose(); _previous = null; }
        _transactions.Cancel(old, static (t, g) => t.Kind == IceTransactionKind.Check && t.Pair?.Generation == g, now);
        _current = new IceGeneration(newLocal ?? IceCredentials.Generate());
        // Data keeps its path: the selected pair, or, before nomination, the valid pair it already uses (section 12.1).
        if (Selected?.Generation == old || (Selected is null && old.FirstValidAt is not null)) _previous = old;
        else old.Dispose();
        if (droppedPrevious is not null) ReleaseGeneration(droppedPrevious, now);
        if (_previous != old) ReleaseGeneration(old, now);
        return _current.Local;
    }

    // The generation of the selected pair while a restart's new generation is being checked (RFC 8445 section 9).
    private IceGeneration? _previous;

    private void AddPair(IceGeneration g, IceCandidate local, IceCandidate remote) => TryAddPair(g, local, remote);

    // O(1) in the pairs held (IceCheckList): pairing a new remote candidate costs the local candidates of its family, not
    // the check list (RFC 8445 section 6.1.2.5 bounds the list: Limits.MaxPairs).
    private IcePair? TryAddPair(IceGeneration g, IceCandidate local, IceCandidate remote)
    {
        var pair = g.CheckList.GetOrAdd(local, remote, Options.Limits.MaxPairs, out var added, out var full);
        if (full) PairsDropped++;
        // RFC 8656 section 9: the relay forwards only from and to IPs with a permission; ask before the first check.
        if (added && local.Type == IceCandidateType.Relayed) RequestPermission(local, remote.Address);
        return pair;
    }

    /// <summary>The pair of <paramref name="local"/> and <paramref name="remote"/>, formed when new; null when the check list is full.</summary>
    internal IcePair? FindOrAddPair(IceGeneration g, IceCandidate local, IceCandidate remote) => TryAddPair(g, local, remote);

    /// <summary>
    /// Whether a remote candidate may join the check list: its address passes <see cref="IceAgentOptions.Limits"/>
    /// and is none of ours (a check to our own socket would loop), and the list has room. Counted when not.
    /// </summary>
    private bool AdmitRemoteCandidate(IceGeneration g, IPEndPoint address)
    {
        var allowed = Options.Limits.Allows(address);
        if (allowed)
            foreach (var c in _hosts)
                if (c.Address.Equals(address)) { allowed = false; break; }
        if (allowed)
            foreach (var c in _localCandidates)
                if (c.Address.Equals(address)) { allowed = false; break; }
        if (!allowed) { RemoteCandidatesFiltered++; return false; }
        if (g.RemoteCandidates.Count >= Options.Limits.MaxRemoteCandidates) { RemoteCandidatesDropped++; return false; }
        return true;
    }

    // ---------------- outputs ----------------

    /// <summary>
    /// Writes the next datagram to send into <paramref name="destination"/> (at least 1500 bytes): its length in
    /// <paramref name="written"/>, as in every core, and where it goes in <paramref name="path"/>.
    /// </summary>
    public bool TryPollTransmit(Span<byte> destination, out int written, out IceTransmitPath path)
    {
        if (!_transmits.TryPeek(out var t)) { written = 0; path = default; return false; }
        // Misuse: the datagram stays queued for a call with a large enough buffer.
        if (destination.Length < t.Length)
            throw new ArgumentException("The destination cannot hold the datagram (give at least 1500 bytes).", nameof(destination));
        _transmits.Dequeue();
        t.Buffer.AsSpan(0, t.Length).CopyTo(destination);
        ArrayPool<byte>.Shared.Return(t.Buffer);
        written = t.Length;
        path = new IceTransmitPath(t.Local, t.Remote) { Tcp = t.Tcp, IceTcp = t.IceTcp };
        return true;
    }

    /// <summary>The next event, if any.</summary>
    public bool TryPollEvent(out IceEvent evt) => _events.TryDequeue(out evt!);

    /// <summary>
    /// Where to send application data now: the selected pair's endpoints, or a status that names why not. The
    /// caller sends its own bytes; the agent counts the send for the keepalive timer. After consent expired the
    /// answer is <see cref="IceSendStatus.Failed"/> at once (RFC 7675 section 5.2).
    /// </summary>
    public IceSendResult TrySend(TimeSpan now)
    {
        now = Clamp(now);
        switch (State)
        {
            case IceConnectionState.Failed: return new(IceSendStatus.Failed, State, null, null);
            case IceConnectionState.Closed: return new(IceSendStatus.Closed, State, null, null);
        }
        if ((Selected ?? EarlyPair()) is not { } pair) return new(IceSendStatus.NotConnected, State, null, null);
        if (Selected is null && pair != _dataPair) UseEarlyPair(pair, now);
        _liveness.DataSent(now);
        return new(IceSendStatus.Send, State, pair.LocalEndPoint, pair.RemoteEndPoint)
        {
            Relayed = pair.Local.Type == IceCandidateType.Relayed,
            IceTcp = pair.IceTcp
        };
    }

    /// <summary>
    /// Writes the datagram that carries <paramref name="payload"/> on the selected pair into
    /// <paramref name="destination"/> (its length in <paramref name="written"/>) and gives its endpoints in <paramref name="path"/>: the payload itself on
    /// a direct pair, or wrapped for the TURN server (ChannelData once the channel is bound, a Send indication
    /// before; RFC 8656 sections 11 and 12) when the local candidate is relayed. <paramref name="destination"/>
    /// needs <see cref="Turn.TurnClient.GetMaxWrappedSize"/> bytes of the payload. Allocates nothing. When the
    /// answer cannot send, nothing is written and the status names why.
    /// </summary>
    public IceSendResult TrySend(ReadOnlySpan<byte> payload, Span<byte> destination, TimeSpan now, out int written, out IceTransmitPath path)
    {
        written = 0;
        path = default;
        var result = TrySend(now);
        if (!result.CanSend) return result;
        var pair = (Selected ?? EarlyPair())!;
        if (pair.Local.Type != IceCandidateType.Relayed)
        {
            if (destination.Length < payload.Length) throw new ArgumentException("The destination cannot hold the payload.", nameof(destination));
            payload.CopyTo(destination);
            written = payload.Length;
            path = new IceTransmitPath(pair.LocalEndPoint, pair.RemoteEndPoint) { IceTcp = pair.IceTcp };
            return result;
        }
        var relay = FindRelayByRelayed(pair.LocalEndPoint);
        if (relay is null || relay.Client.State != Turn.TurnClientState.Allocated) return new(IceSendStatus.Failed, State, null, null) { Relayed = true };
        written = relay.Client.WrapSend(StunAddress.FromEndPoint(pair.RemoteEndPoint), payload, destination);
        path = new IceTransmitPath(relay.Host.Base, relay.ServerEndPoint) { Tcp = relay.Tcp };
        return result;
    }

    /// <summary>
    /// True when <see cref="TrySend(TimeSpan)"/> would answer Send (a pair is selected, or a valid pair may carry data before
    /// selection); unlike TrySend it changes nothing, so a layer above can leave its datagrams queued until then.
    /// </summary>
    public bool CanSendData => State is not (IceConnectionState.Failed or IceConnectionState.Closed) && (Selected ?? EarlyPair()) is not null;

    /// <summary>
    /// Before a pair is selected, RFC 8445 section 12.1 lets data go on any valid pair: the best valid pair of the
    /// current generation, when <see cref="IceAgentOptions.SendBeforeNomination"/> allows it.
    /// </summary>
    private IcePair? EarlyPair()
    {
        if (!Options.SendBeforeNomination) return null;
        // A restart before any nomination keeps the previous generation's valid pair until the new one has its own.
        return BestValid(_current) ?? (Selected is null && _previous is { } previous ? BestValid(previous) : null);
    }

    private IcePair? BestValid(IceGeneration g) => g.FirstValidAt is null ? null : g.CheckList.BestValid(Role.Role);

    /// <summary>Closes the agent: no more transmits; state Closed.</summary>
    public void Close(TimeSpan now)
    {
        now = Clamp(now);
        if (State is IceConnectionState.Closed) return;
        Transition(IceConnectionState.Closed, IceStateReason.Closed, now);
        StopEverything();
    }

    private void ThrowIfTerminal()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (State is IceConnectionState.Closed or IceConnectionState.Failed)
            throw new InvalidOperationException($"The ICE agent is {State}.");
    }

    internal void Transition(IceConnectionState next, IceStateReason reason, TimeSpan now)
    {
        if (next == State) return;
        var previous = State;
        State = next;
        TimeSpan? age = LivenessPair is null ? null : now - _liveness.LastReceived;
        _events.Enqueue(new IceStateChangedEvent(now, previous, next, reason, age));
    }

    internal void Emit(IceEvent evt) => _events.Enqueue(evt);

    /// <summary>A pooled 1500-byte buffer to write one outgoing datagram into; hand it to <see cref="QueueTransmit"/>.</summary>
    private Span<byte> RentTransmit(out byte[] buffer)
    {
        buffer = ArrayPool<byte>.Shared.Rent(MaxDatagram);
        return buffer.AsSpan(0, MaxDatagram);
    }

    private void QueueTransmit(byte[] buffer, int length, IPEndPoint local, IPEndPoint remote, bool iceTcp = false)
    {
        if (LivenessPair is { } s && s.Matches(local, remote, iceTcp)) _liveness.Sent(_now);
        // A datagram from a relayed candidate goes to its TURN server, wrapped (RFC 8656 sections 11 and 12).
        if (!iceTcp && _relays.Count > 0 && FindRelayByRelayed(local) is { } relay) { SendThroughRelay(relay, buffer, length, remote); return; }
        _transmits.Enqueue(new PendingTransmit(buffer, length, local, remote, false) { IceTcp = iceTcp });
    }

    private void StopEverything()
    {
        _transactions.CancelAll(_now);
        while (_transmits.TryDequeue(out var t)) ArrayPool<byte>.Shared.Return(t.Buffer);
        // Delete the allocations (a Refresh with LIFETIME 0, RFC 8656 section 8), sent once: no timer runs any more.
        if (!_disposed) CloseRelays(_now);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        StopEverything();
        _current.Dispose();
        _previous?.Dispose();
        DisposeRelays();
    }

    private readonly record struct PendingTransmit(byte[] Buffer, int Length, IPEndPoint Local, IPEndPoint Remote, bool Tcp)
    {
        public bool IceTcp { get; init; }
    }
}
