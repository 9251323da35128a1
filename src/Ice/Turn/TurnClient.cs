using Transport.Ice.Stun;

namespace Transport.Ice.Turn;

/// <summary>
/// A TURN client (RFC 8656) as a sans-IO state machine on the STUN layer. It allocates a relayed UDP address on one
/// server (over UDP or TCP to it), answers the long-term credential challenge (RFC 8489 section 9.2), follows
/// 300 redirects, refreshes the allocation, its permissions and channel bindings on timers, wraps data to peers
/// in Send indications or ChannelData, unwraps what the server relays back, and deletes the allocation on
/// <see cref="Close"/>.
/// <para>
/// Drive it like every core of this library: after any input (<see cref="HandleDatagram"/>,
/// <see cref="HandleTimeout"/>) or any call (<see cref="Start"/>, <see cref="CreatePermission"/>,
/// <see cref="BindChannel"/>, <see cref="Close"/>), drain <see cref="TryPollTransmit"/> (send each message to the
/// address it names) and <see cref="TryPollEvent"/>, then arm a timer for <see cref="PollTimeout"/>. Time is
/// passed in; nothing here reads a clock. Over TCP, feed it whole frames (<see cref="TurnStreamFraming"/>) and
/// write the transmits to the stream as they are. One logical thread at a time.
/// </para>
/// </summary>
public sealed partial class TurnClient : IDisposable
{
    /// <summary>How long a permission lasts on the server (RFC 8656 section 9).</summary>
    public static readonly TimeSpan PermissionLifetime = TimeSpan.FromSeconds(300);

    /// <summary>How long a channel binding lasts on the server (RFC 8656 section 12).</summary>
    public static readonly TimeSpan ChannelLifetime = TimeSpan.FromSeconds(600);

    /// <summary>IP protocol number of UDP, the value of REQUESTED-TRANSPORT (RFC 8656 section 18.8).</summary>
    public const byte ProtocolUdp = 17;

    private readonly TurnClientOptions _options;
    private readonly StunRetransmissionOptions _retransmission;
    private readonly Queue<TurnEvent> _events = new();
    private readonly List<PendingRequest> _pending = new();
    private readonly Dictionary<StunAddress, Permission> _permissions = new();
    private readonly Dictionary<StunAddress, Channel> _channelsByPeer = new();
    private readonly Dictionary<ushort, Channel> _channelsByNumber = new();
    private readonly byte[] _scratch = new byte[1500];
    private TimeSpan _now;
    private ushort _nextChannel = ChannelData.MinChannel;
    private int _redirects;

    /// <summary>Creates a client; nothing is sent before <see cref="Start"/>.</summary>
    public TurnClient(TurnClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _retransmission = options.Transport == TurnTransport.Tcp ? options.Retransmission with { Reliable = true } : options.Retransmission;
        ServerAddress = options.Server;
    }

    /// <summary>The options.</summary>
    public TurnClientOptions Options => _options;

    /// <summary>Current state.</summary>
    public TurnClientState State { get; private set; }

    /// <summary>The server the client talks to: the configured one, or the alternate after a 300 redirect. Every transmit goes here.</summary>
    public StunAddress ServerAddress { get; private set; }

    /// <summary>The relayed address once allocated.</summary>
    public StunAddress RelayedAddress { get; private set; }

    /// <summary>The second (IPv6) relayed address of a dual allocation, else the default value.</summary>
    public StunAddress AdditionalRelayedAddress { get; private set; }

    /// <summary>Our address as the server saw it (XOR-MAPPED-ADDRESS of the Allocate response).</summary>
    public StunAddress MappedAddress { get; private set; }

    /// <summary>When the allocation expires unless refreshed.</summary>
    public TimeSpan? ExpiresAt { get; private set; }

    /// <summary>When the next allocation Refresh is due, or null.</summary>
    public TimeSpan? RefreshAt { get; private set; }

    /// <summary>Requests sent again with a fresh nonce after a 438 (Stale Nonce) answer.</summary>
    public long StaleNonceRetries { get; private set; }

    /// <summary>Counters of input that was dropped, by reason.</summary>
    public TurnDropCounters Dropped { get; } = new();

    /// <summary>Starts allocating: the first Allocate (without credentials, RFC 8656 section 7.1) is due now.</summary>
    public void Start(TimeSpan now)
    {
        if (State != TurnClientState.Idle) throw new InvalidOperationException($"The TURN client is {State}, not Idle.");
        Advance(now);
        State = TurnClientState.Allocating;
        SendAllocate();
    }

    /// <summary>
    /// Installs a permission for <paramref name="peer"/>'s IP address (the port does not matter, RFC 8656 section
    /// 9) and keeps it refreshed every <see cref="TurnClientOptions.PermissionRefreshInterval"/>. Before the
    /// allocation exists the request waits for it. Calling it again for the same IP does nothing.
    /// </summary>
    public void CreatePermission(StunAddress peer, TimeSpan now)
    {
        EnsureUsable();
        Advance(now);
        var key = IpOnly(peer);
        if (_permissions.ContainsKey(key)) return;
        var permission = new Permission(key);
        _permissions.Add(key, permission);
        if (State == TurnClientState.Allocated) SendCreatePermission(permission);
    }

    /// <summary>True when a permission for <paramref name="peer"/>'s IP is installed on the server.</summary>
    public bool HasPermission(StunAddress peer) => _permissions.TryGetValue(IpOnly(peer), out var p) && p.Installed;

    /// <summary>
    /// Binds a channel to <paramref name="peer"/> (RFC 8656 section 12) and keeps it refreshed every
    /// <see cref="TurnClientOptions.ChannelRefreshInterval"/>; returns the channel number. Until
    /// <see cref="TurnChannelBound"/> the data keeps going in Send indications. The binding also installs the
    /// permission for the peer's IP, which is then refreshed on its own timer.
    /// </summary>
    public ushort BindChannel(StunAddress peer, TimeSpan now)
    {
        EnsureUsable();
        Advance(now);
        if (_channelsByPeer.TryGetValue(peer, out var existing)) return existing.Number;
        if (_nextChannel > ChannelData.MaxChannel) throw new InvalidOperationException("All 4096 channel numbers are in use.");
        var channel = new Channel(peer, _nextChannel++);
        _channelsByPeer.Add(peer, channel);
        _channelsByNumber.Add(channel.Number, channel);
        var key = IpOnly(peer);
        if (!_permissions.ContainsKey(key)) _permissions.Add(key, new Permission(key) { CoveredByChannel = true });
        if (State == TurnClientState.Allocated) SendChannelBind(channel);
        return channel.Number;
    }

    /// <summary>The channel bound to <paramref name="peer"/> and confirmed by the server, or 0.</summary>
    public ushort GetBoundChannel(StunAddress peer) => _channelsByPeer.TryGetValue(peer, out var c) && c.Bound ? c.Number : (ushort)0;

    /// <summary>
    /// Deletes the allocation: a Refresh with LIFETIME 0 (RFC 8656 section 8) when one exists, then
    /// <see cref="TurnClosed"/> on its answer or timeout. Without an allocation the client closes at once.
    /// </summary>
    public void Close(TimeSpan now)
    {
        Advance(now);
        if (State is TurnClientState.Closing or TurnClientState.Closed) return;
        CancelAll();
        if (State == TurnClientState.Allocated)
        {
            Transition(TurnClientState.Closing, null);
            SendRefresh(0);
            return;
        }
        Transition(TurnClientState.Closed, new TurnClosed(State switch
        {
            TurnClientState.Idle => "closed before starting",
            TurnClientState.Allocating => "closed while allocating",
            TurnClientState.Expired => "closed after the allocation expired",
            _ => "closed after the allocation failed",
        }));
    }

    /// <summary>
    /// Refreshes the allocation now rather than at <see cref="RefreshAt"/>: a probe of whether the server still holds it
    /// (the ICE agent sends one when the relayed pair in use goes silent). A server that restarted answers 437 and the
    /// allocation ends as expired (<see cref="TurnAllocationExpired"/>); a success renews the lifetime. Nothing happens
    /// unless the client is Allocated with no Refresh in flight.
    /// </summary>
    public void RefreshNow(TimeSpan now)
    {
        Advance(now);
        if (State != TurnClientState.Allocated || HasPending(RequestKind.Refresh) || !_options.RefreshAllocation) return;
        SendRefresh(LifetimeSeconds());
    }

    /// <summary>
    /// Tells the client that its TCP connection to the server closed. The server deletes the allocation with the
    /// connection (RFC 8656 section 3.1), so an allocation ends as expired and an Allocate in progress fails.
    /// </summary>
    public void ConnectionClosed(TimeSpan now, string reason = "the TCP connection to the server closed")
    {
        Advance(now);
        switch (State)
        {
            case TurnClientState.Allocating:
                CancelAll();
                Transition(TurnClientState.Failed, new TurnAllocationFailed(TurnFailureKind.ConnectionClosed, 0, reason));
                break;
            case TurnClientState.Allocated:
                CancelAll();
                Transition(TurnClientState.Expired, new TurnAllocationExpired(0, reason));
                break;
            case TurnClientState.Closing:
                CancelAll();
                Transition(TurnClientState.Closed, new TurnClosed(reason));
                break;
        }
    }

    /// <summary>Next event, if any.</summary>
    public bool TryPollEvent(out TurnEvent evt) => _events.TryDequeue(out evt!);

    /// <summary>
    /// Next message to send, if any: written into <paramref name="destination"/> (1500 bytes is always enough),
    /// to be sent to <paramref name="to"/> (the <see cref="ServerAddress"/>).
    /// </summary>
    public bool TryPollTransmit(Span<byte> destination, out int written, out StunAddress to)
    {
        to = ServerAddress;
        foreach (var p in _pending)
            if (p.Transaction.TryPollTransmit(destination, out written)) return true;
        written = 0;
        return false;
    }

    /// <summary>The next deadline: a retransmission, a transaction timeout, a refresh or an expiry; null when none.</summary>
    public TimeSpan? PollTimeout()
    {
        TimeSpan? next = null;
        foreach (var p in _pending) next = Min(next, p.Transaction.PollTimeout());
        if (State == TurnClientState.Allocated)
        {
            next = Min(next, ExpiresAt);
            if (!HasPending(RequestKind.Refresh)) next = Min(next, RefreshAt);
            foreach (var permission in _permissions.Values)
                if (permission.Installed && permission.Pending is null) next = Min(next, permission.RefreshAt);
            foreach (var channel in _channelsByPeer.Values)
                if (channel.Bound && channel.Pending is null) next = Min(next, channel.RefreshAt);
        }
        return next;
    }

    /// <summary>Acts on every deadline that passed: retransmissions, timeouts, refreshes, expiry.</summary>
    public void HandleTimeout(TimeSpan now)
    {
        Advance(now);
        for (var i = 0; i < _pending.Count; i++)
        {
            var p = _pending[i];
            p.Transaction.HandleTimeout(_now);
            if (p.Transaction.State != StunTransactionState.TimedOut) continue;
            _pending.RemoveAt(i--);
            OnTimedOut(p);
        }
        if (State != TurnClientState.Allocated) return;
        if (ExpiresAt is { } expires && _now >= expires)
        {
            CancelAll();
            Transition(TurnClientState.Expired, new TurnAllocationExpired(0, "the allocation lifetime ran out without a successful Refresh"));
            return;
        }
        if (RefreshAt is { } refresh && _now >= refresh && !HasPending(RequestKind.Refresh)) SendRefresh(LifetimeSeconds());
        foreach (var permission in _permissions.Values)
            if (permission.Installed && permission.Pending is null && _now >= permission.RefreshAt) SendCreatePermission(permission);
        foreach (var channel in _channelsByPeer.Values)
            if (channel.Bound && channel.Pending is null && _now >= channel.RefreshAt) SendChannelBind(channel);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _key?.Dispose();
        _key = null;
    }

    private void Transition(TurnClientState next, TurnEvent? evt)
    {
        State = next;
        if (next != TurnClientState.Allocated) { RefreshAt = null; if (next != TurnClientState.Closing) ExpiresAt = null; }
        if (evt is not null) _events.Enqueue(evt);
    }

    private void EnsureUsable()
    {
        if (State is TurnClientState.Closing or TurnClientState.Closed or TurnClientState.Failed or TurnClientState.Expired)
            throw new InvalidOperationException($"The TURN client is {State}.");
    }

    private void Advance(TimeSpan now)
    {
        // Time never goes back for a core: an earlier value is clamped (DESIGN.md).
        if (now > _now) _now = now;
    }

    private void CancelAll()
    {
        foreach (var p in _pending) p.Transaction.Cancel(_now);
        _pending.Clear();
        foreach (var permission in _permissions.Values) permission.Pending = null;
        foreach (var channel in _channelsByPeer.Values) channel.Pending = null;
    }

    private bool HasPending(RequestKind kind)
    {
        foreach (var p in _pending) if (p.Kind == kind) return true;
        return false;
    }

    private uint LifetimeSeconds() => _options.RequestedLifetime is { } l ? (uint)l.TotalSeconds : 600u;

    private static TimeSpan? Min(TimeSpan? a, TimeSpan? b) => a is null ? b : b is null ? a : a < b ? a : b;

    private static StunAddress IpOnly(StunAddress peer)
    {
        Span<byte> bytes = stackalloc byte[16];
        var n = peer.WriteAddress(bytes);
        return StunAddress.FromBytes(bytes.Slice(0, n), 0);
    }

    private enum RequestKind { Allocate, Refresh, CreatePermission, ChannelBind }

    private sealed class PendingRequest(RequestKind kind, StunClientTransaction transaction)
    {
        public RequestKind Kind { get; } = kind;
        public StunClientTransaction Transaction { get; set; } = transaction;
        public bool Authenticated { get; set; }
        public uint Lifetime { get; init; }
        public Permission? Permission { get; init; }
        public Channel? Channel { get; init; }
        public int StaleNonceRetries { get; set; }
    }

    private sealed class Permission(StunAddress ip)
    {
        public StunAddress Ip { get; } = ip;
        public bool Installed { get; set; }
        public bool CoveredByChannel { get; set; }
        public TimeSpan RefreshAt { get; set; }
        public PendingRequest? Pending { get; set; }
    }

    private sealed class Channel(StunAddress peer, ushort number)
    {
        public StunAddress Peer { get; } = peer;
        public ushort Number { get; } = number;
        public bool Bound { get; set; }
        public TimeSpan RefreshAt { get; set; }
        public PendingRequest? Pending { get; set; }
    }
}

/// <summary>Input the TURN client dropped, by reason (DESIGN.md: bad input is dropped and counted, never thrown).</summary>
public sealed class TurnDropCounters
{
    /// <summary>Neither a STUN message nor a ChannelData message, or a malformed one.</summary>
    public long Malformed { get; internal set; }
    /// <summary>Not from the server.</summary>
    public long NotFromServer { get; internal set; }
    /// <summary>A response to no outstanding request (late, duplicate or forged).</summary>
    public long UnknownTransaction { get; internal set; }
    /// <summary>A response without valid MESSAGE-INTEGRITY to an authenticated request.</summary>
    public long Unauthenticated { get; internal set; }
    /// <summary>A FINGERPRINT that does not match.</summary>
    public long BadFingerprint { get; internal set; }
    /// <summary>ChannelData on a channel that is not bound.</summary>
    public long UnknownChannel { get; internal set; }
    /// <summary>A request, or an indication other than Data, or a Data indication without peer or data, or before the allocation.</summary>
    public long Unexpected { get; internal set; }
    /// <summary>A Data indication from an IP we hold no permission for (RFC 8656 section 11.4).</summary>
    public long NoPermission { get; internal set; }

    /// <summary>All drops.</summary>
    public long Total => Malformed + NotFromServer + UnknownTransaction + Unauthenticated + BadFingerprint + UnknownChannel + Unexpected + NoPermission;
}
