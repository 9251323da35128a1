using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Transport.Streaming.Io;

/// <summary>
/// The only I/O of the stack (../shared/DESIGN.md): one UDP socket per bound local address, a receive loop into
/// pooled buffers, RFC 7983 classification, and dispatch to registered sans-IO peers. Each peer runs as an actor
/// (one logical thread at a time, over its own bounded queues) with one timer re-armed from its next deadline
/// through the driver's <see cref="TimeProvider"/>. One port serves many peers: datagrams are routed by remote
/// address, and the first STUN request of an unknown remote address by the USERNAME's local fragment.
/// <para>
/// Threads: each socket has its own receive thread (<see cref="UdpDriverOptions.DedicatedReceiveThreads"/>), and
/// with the system clock all deadlines are served by one dedicated deadline thread; peers' work runs on the thread
/// pool, except that an idle peer which never blocks handles a STUN datagram or its timer right on the receiving or
/// deadline thread. Timers and receives therefore stay punctual when the application saturates the thread pool.
/// </para>
/// </summary>
public sealed partial class UdpDriver : IAsyncDisposable
{
    private readonly TimeProvider _time;
    private readonly long _start;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<BoundSocket> _sockets = new();
    // Tables sized by the peers held at once: they give their storage back once drained (ShrinkingDictionary).
    private readonly ShrinkingDictionary<string, PeerActor> _byFragment = new(StringComparer.Ordinal);
    private readonly ShrinkingDictionary<PeerActor, byte> _actors = new();
    private readonly object _deadlineLock = new();
    private readonly DeadlineThread?[] _deadlines;
    private int _nextHome;
    private int _disposed;

    public UdpDriver(TimeProvider? time = null, UdpDriverOptions? options = null, ILogger? logger = null)
    {
        _time = time ?? TimeProvider.System;
        _start = _time.GetTimestamp();
        Options = options ?? new UdpDriverOptions();
        if (Options.MaxDatagramSize < 576 || Options.MaxDatagramSize > 65535)
            throw new ArgumentOutOfRangeException(nameof(options), "MaxDatagramSize must be between 576 and 65535.");
        if (Options.InboxCapacity < 1) throw new ArgumentOutOfRangeException(nameof(options), "InboxCapacity must be at least 1.");
        if (Options.ReceiveSockets is < 1 or > 1024) throw new ArgumentOutOfRangeException(nameof(options), "ReceiveSockets must be between 1 and 1024.");
        // SO_REUSEPORT groups are a Linux feature here (elsewhere the option means other things, or nothing).
        Members = OperatingSystem.IsLinux() ? Options.ReceiveSockets : 1;
        _deadlines = new DeadlineThread?[Members];
        _logger = logger ?? NullLogger.Instance;
        BatchedSends = Options.BatchedIo && LinuxUdp.IsSupported;
        Buffers = new DatagramBuffers(Options.MaxDatagramSize, Math.Min(Options.InboxCapacity, 1024));
    }

    /// <summary>The options in force.</summary>
    public UdpDriverOptions Options { get; }

    /// <summary>What the driver counted.</summary>
    public UdpDriverCounters Counters { get; } = new();

    /// <summary>Peers registered and not yet stopped (a leak check: every dispose takes one away).</summary>
    public int PeerCount => _actors.Count;

    /// <summary>
    /// Receive buffers held free for reuse (at most 1024, or the inbox capacity if lower): the largest backlog seen, given
    /// back at full collections when unused since the previous one (diagnostics: a churn soak reads it).
    /// </summary>
    public int FreeReceiveBuffers => Buffers.Free;

    /// <summary>ICE username fragments that route first requests to a peer (a leak check: a stopped peer's go with it).</summary>
    public int UsernameFragmentCount => _byFragment.Count;

    /// <summary>Peer timers created and not yet disposed, one per running peer (a leak check: 0 once every peer stopped).</summary>
    public int TimerCount => Volatile.Read(ref _liveTimers);

    private int _liveTimers;

    internal void TimerCreated() => Interlocked.Increment(ref _liveTimers);

    internal void TimerDisposed() => Interlocked.Decrement(ref _liveTimers);

    /// <summary>Monotonic time since the driver started: the <c>now</c> handed to every peer.</summary>
    public TimeSpan Now => _time.GetElapsedTime(_start);

    /// <summary>Sends go through the thread's <see cref="SendBatch"/> (sendmmsg and GSO on 64-bit Linux).</summary>
    internal bool BatchedSends { get; }

    internal TimeProvider Time => _time;
    internal DatagramBuffers Buffers { get; }
    internal ILogger Logger => _logger;
    internal CancellationToken Stopping => _stop.Token;

    /// <summary>Every socket still sends with GSO (tests: a kernel or device that refused it turned it off).</summary>
    internal bool SegmentationOn { get { lock (_sockets) return BatchedSends && _sockets.All(s => s.Gso); } }

    /// <summary>Every socket receives with recvmmsg and GRO (tests: older kernels refuse UDP_GRO).</summary>
    internal bool ReceiveOffloadOn { get { lock (_sockets) return _sockets.All(s => s.NativeReceive && s.Gro); } }

    /// <summary>
    /// Entries in the deadline threads' heaps, stale ones included (diagnostics; 0 before the first timer): a disposed
    /// timer's entries are skipped and dropped when they come due or at the next compaction.
    /// </summary>
    public int DeadlineHeapSize { get { lock (_deadlineLock) return _deadlines.Sum(d => d?.HeapSize ?? 0); } }

    /// <summary>Slots of the deadline threads' heap arrays (tests and diagnostics: shrinks once the timers are gone).</summary>
    internal int DeadlineHeapCapacity { get { lock (_deadlineLock) return _deadlines.Sum(d => d?.HeapCapacity ?? 0); } }

    /// <summary>The driver's tables sized by the peers held at once (tests: each gives its storage back once drained).</summary>
    internal (ShrinkingDictionary<string, PeerActor> Fragments, ShrinkingDictionary<PeerActor, byte> Actors,
        ShrinkingDictionary<(ulong, uint), PeerActor> Transactions) Tables => (_byFragment, _actors, _byTransaction);

    /// <summary>Sockets in each address's group (<see cref="UdpDriverOptions.ReceiveSockets"/>; 1 where the system has no SO_REUSEPORT).</summary>
    internal int Members { get; }

    /// <summary>The group member a new peer starts on (round robin); it moves to the member its datagrams arrive on.</summary>
    internal int NextHome() => Members == 1 ? 0 : (int)((uint)Interlocked.Increment(ref _nextHome) % (uint)Members);

    /// <summary>
    /// A peer's timer: with the system clock, an entry on the driver's deadline thread; with any other provider
    /// (virtual time), a timer of that provider.
    /// </summary>
    internal IActorTimer CreateTimer(PeerActor actor, int member)
    {
        if (!ReferenceEquals(_time, TimeProvider.System)) return new ProviderActorTimer(this, actor);
        lock (_deadlineLock)
        {
            ObjectDisposedException.ThrowIf(_disposed != 0, this);
            return (_deadlines[member] ??= new DeadlineThread(this, Members == 1 ? "Transport deadlines" : $"Transport deadlines {member}")).Create(actor);
        }
    }

    /// <summary>The local endpoints bound so far (with the ports the system chose for port 0).</summary>
    public IReadOnlyList<IPEndPoint> LocalEndPoints
    {
        get { lock (_sockets) return _sockets.Where(s => s.Member == 0).Select(s => s.LocalEndPoint).ToArray(); }
    }

    /// <summary>
    /// Opens a UDP socket on <paramref name="local"/> and starts receiving. Returns the bound endpoint. The address
    /// must be one of the host's: a wildcard (0.0.0.0, ::) throws <see cref="ArgumentException"/>, use
    /// <see cref="BindAll"/> (one socket per address, see there why).
    /// </summary>
    public IPEndPoint Bind(IPEndPoint local)
    {
        ArgumentNullException.ThrowIfNull(local);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (local.Address.Equals(IPAddress.Any) || local.Address.Equals(IPAddress.IPv6Any))
            throw new ArgumentException($"Cannot bind the wildcard {local}: a host candidate must be a real address, and the ICE agent must know which " +
                "address each datagram came to. Use BindAll(port) for every address of the host (one socket each).", nameof(local));
        var members = new List<BoundSocket>(Members);
        try
        {
            // A group (ReceiveSockets > 1): every member binds the same address and port with SO_REUSEPORT, the first
            // one choosing the port when asked for 0; the kernel then spreads the remote 5-tuples over the members.
            var routes = new ShrinkingDictionary<SocketAddress, Route>();
            var endPoint = local;
            for (var m = 0; m < Members; m++)
            {
                var socket = OpenSocket(endPoint, reusePort: Members > 1);
                var bound = new BoundSocket(socket, (IPEndPoint)socket.LocalEndPoint!, Counters, routes, m);
                members.Add(bound);
                endPoint = bound.LocalEndPoint;
            }
        }
        catch
        {
            foreach (var m in members) m.Socket.Dispose();
            throw;
        }
        lock (_sockets)
        {
            _sockets.AddRange(members);
            Volatile.Write(ref _socketSnapshot, _sockets.ToArray());
        }
        foreach (var bound in members) StartReceiving(bound);
        ListenIceTcp(members[0].LocalEndPoint);
        return members[0].LocalEndPoint;
    }

    private Socket OpenSocket(IPEndPoint local, bool reusePort)
    {
        var socket = new Socket(local.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            if (local.AddressFamily == AddressFamily.InterNetworkV6) socket.DualMode = false;
            if (Options.SocketReceiveBufferSize > 0) socket.ReceiveBufferSize = Options.SocketReceiveBufferSize;
            if (Options.SocketSendBufferSize > 0) socket.SendBufferSize = Options.SocketSendBufferSize;
            if (reusePort && !LinuxUdp.TrySetOption(socket.SafeHandle, LinuxUdp.SolSocket, LinuxUdp.SoReusePort, 1))
                throw new SocketException((int)SocketError.OperationNotSupported);
            socket.Bind(local);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private void StartReceiving(BoundSocket bound)
    {
        var socket = bound.Socket;
        if (Options.DedicatedReceiveThreads)
        {
            bound.NativeReceive = Options.BatchedIo && LinuxUdp.IsSupported;
            // Before the first datagram can arrive: a GSO train is then always delivered whole.
            bound.Gro = bound.NativeReceive && LinuxUdp.TrySetOption(socket.SafeHandle, LinuxUdp.SolUdp, LinuxUdp.UdpGro, 1);
            var thread = new Thread(() => { if (bound.NativeReceive) BatchedReceiveThread(bound); else ReceiveThread(bound); })
            { IsBackground = true, Name = Members == 1 ? $"Transport UDP {bound.LocalEndPoint}" : $"Transport UDP {bound.LocalEndPoint} #{bound.Member}" };
            bound.ReceiveThread = thread;
            thread.Start();
        }
        else
        {
            bound.ReceiveTask = Task.Run(() => ReceiveLoopAsync(bound));
        }
    }

    /// <summary>
    /// Binds <paramref name="port"/> on every address of the host that <paramref name="addresses"/> takes
    /// (<see cref="HostAddresses.Enumerate"/>; default: every unicast address of the interfaces that are up, without
    /// link-local IPv6, loopback only when there is nothing else), one socket per address, and returns the bound
    /// endpoints. Every peer connection then gets one host candidate per socket.
    /// </summary>
    /// <remarks>
    /// One socket per address rather than one wildcard socket: a datagram then always leaves from the address the peer
    /// checked (a wildcard socket lets the kernel pick the source by route, so on a host with several addresses an
    /// answer to a check sent to one of them could leave from another, and the peer would drop it), and each received
    /// datagram is handed to the ICE agent with the local address it came to, without IP_PKTINFO. Addresses the host
    /// gains after this call are not served. Port 0 lets the system choose one port per socket. An address that cannot
    /// be bound (an IPv6 address still in duplicate address detection, say) is skipped and logged; when none could
    /// be, or none fits, <see cref="InvalidOperationException"/> names why.
    /// </remarks>
    public IReadOnlyList<IPEndPoint> BindAll(int port, HostAddressOptions? addresses = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        var candidates = HostAddresses.Enumerate(addresses);
        if (candidates.Count == 0)
            throw new InvalidOperationException("No address of this host fits: " + (addresses?.Addresses is { Count: > 0 } a
                ? "none of " + string.Join(", ", a) + " is an address of an interface that is up" : "no interface that is up has a unicast address"));
        var bound = new List<IPEndPoint>();
        var errors = new List<string>();
        foreach (var address in candidates)
        {
            try { bound.Add(Bind(new IPEndPoint(address, port))); }
            catch (SocketException e)
            {
                errors.Add($"{address}: {e.SocketErrorCode}");
                LogBindSkipped(address, port, e.SocketErrorCode);
            }
        }
        if (bound.Count == 0) throw new InvalidOperationException($"No address could be bound on port {port}: " + string.Join("; ", errors));
        return bound;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "UDP: {Address} port {Port} skipped: {Error}")]
    private partial void LogBindSkipped(IPAddress address, int port, SocketError error);

    /// <summary>
    /// Starts running <paramref name="peer"/>: its local username fragments become routable, its first deadline is
    /// armed. Dispose the returned handle to stop it.
    /// </summary>
    public PeerHandle Register(IDatagramPeer peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var actor = new PeerActor(this, peer);
        foreach (var fragment in peer.LocalUsernameFragments)
        {
            if (!_byFragment.TryAdd(fragment, actor))
                throw new InvalidOperationException($"The ICE username fragment '{fragment}' is already registered on this driver.");
            actor.NoteFragment(fragment);
        }
        _actors.TryAdd(actor, 0);
        actor.Start();
        return new PeerHandle(actor);
    }

    /// <summary>Adds a username fragment to a running peer (after an ICE restart).</summary>
    internal void AddFragment(PeerActor actor, string fragment)
    {
        if (!_byFragment.TryAdd(fragment, actor) && _byFragment[fragment] != actor)
            throw new InvalidOperationException($"The ICE username fragment '{fragment}' is already registered on this driver.");
        actor.NoteFragment(fragment);
    }

    internal void Unregister(PeerActor actor)
    {
        _actors.TryRemove(actor, out _);
        CloseIceTcpOf(actor);
        CloseTurnConnectionsOf(actor);
        if (Volatile.Read(ref _transactionCount) > 0)
            foreach (var (key, owner) in _byTransaction)
                if (owner == actor && _byTransaction.TryRemove(new KeyValuePair<(ulong, uint), PeerActor>(key, owner)))
                    Interlocked.Decrement(ref _transactionCount);
        // The peer's own fragments and the routes it learnt, not a walk of every peer's entries: with 20,000 connections a
        // walk of both tables was 40,000 entries per stopped peer, so stopping them all (a driver's disposal, a server's
        // churn) grew with the square of the connections.
        foreach (var fragment in actor.FragmentNames)
            _byFragment.TryRemove(new KeyValuePair<string, PeerActor>(fragment, actor));
        foreach (var (socket, address) in actor.LearntRemotes)
            if (socket.Routes.TryGetValue(address, out var route) && route.Actor == actor)
                socket.Routes.TryRemove(new KeyValuePair<SocketAddress, Route>(address, route));
    }

    /// <summary>
    /// The routes (socket, remote address) known on all sockets: one per remote address a peer sent to (a leak check:
    /// a stopped peer's routes go with it, and those ICE released while it ran).
    /// </summary>
    public int RouteCount
    {
        get
        {
            lock (_sockets)
            {
                var n = 0;
                foreach (var s in _sockets) if (s.Member == 0) n += s.Routes.Count;
                return n;
            }
        }
    }

    /// <summary>
    /// Routes datagrams arriving on <paramref name="socket"/> from <paramref name="remote"/> to <paramref name="actor"/>
    /// (called when the peer sends there): the 5-tuple, so many peers on different local ports may talk to one remote.
    /// </summary>
    /// <returns>False when the remote's route already belongs to another peer (a STUN or TURN server they share).</returns>
    internal static bool Learn(BoundSocket socket, SocketAddress remote, IPEndPoint remoteEndPoint, PeerActor actor) =>
        socket.Routes.TryAdd(remote, new Route(actor, remoteEndPoint)) || socket.Routes.TryGetValue(remote, out var r) && r.Actor == actor;

    /// <summary>The peer whose route <paramref name="remote"/> is on <paramref name="socket"/>, or null.</summary>
    internal static PeerActor? RouteOwner(BoundSocket socket, SocketAddress remote) => socket.Routes.TryGetValue(remote, out var r) ? r.Actor : null;

    /// <summary>
    /// True when a peer other than <paramref name="actor"/> owns the 5-tuple (<paramref name="local"/>'s socket,
    /// <paramref name="remote"/>): datagrams from there reach that peer.
    /// </summary>
    internal bool RouteTakenByOther(PeerActor actor, IPEndPoint local, IPEndPoint remote)
    {
        var socket = SocketFor(local, remote.AddressFamily);
        if (socket is null || !socket.LocalEndPoint.Equals(local)) return false;
        return RouteOwner(socket, remote.Serialize()) is { } owner && owner != actor;
    }

    // Requests sent by a peer to a remote whose route belongs to another peer (many connections gathering from one STUN
    // server): the answer is routed by its transaction id. Bounded; an entry leaves with its answer or its peer.
    private readonly ShrinkingDictionary<(ulong, uint), PeerActor> _byTransaction = new();
    private int _transactionCount;

    /// <summary>Most requests awaiting an answer routed by transaction id (beyond: not noted, counted).</summary>
    internal const int MaxNotedTransactions = 4096;

    /// <summary>Requests whose answers are routed by transaction id now (diagnostics; a stopped peer's go with it).</summary>
    public int NotedTransactions => Volatile.Read(ref _transactionCount);

    /// <summary>Notes the transaction id of <paramref name="datagram"/> when it is a STUN request, so its answer reaches <paramref name="actor"/>.</summary>
    internal void NoteTransaction(ReadOnlySpan<byte> datagram, PeerActor actor)
    {
        if (!TryReadStun(datagram, out var type, out var key) || (type & 0x0110) != 0) return; // requests only
        if (Volatile.Read(ref _transactionCount) >= MaxNotedTransactions) { Interlocked.Increment(ref Counters._transactionsNotNoted); return; }
        if (_byTransaction.TryAdd(key, actor)) Interlocked.Increment(ref _transactionCount);
    }

    // The peer that sent the request this STUN response answers, when it was noted.
    private PeerActor? TakeTransaction(ReadOnlySpan<byte> datagram)
    {
        if (Volatile.Read(ref _transactionCount) == 0 || !TryReadStun(datagram, out var type, out var key) || (type & 0x0100) == 0) return null;
        if (!_byTransaction.TryRemove(key, out var actor)) return null;
        Interlocked.Decrement(ref _transactionCount);
        return actor;
    }

    private static bool TryReadStun(ReadOnlySpan<byte> d, out ushort type, out (ulong, uint) key)
    {
        // RFC 8489 section 5: type (2), length (2), magic cookie 0x2112A442 (4), transaction id (12).
        if (d.Length < 20 || d[4] != 0x21 || d[5] != 0x12 || d[6] != 0xA4 || d[7] != 0x42) { type = 0; key = default; return false; }
        type = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(d);
        key = (System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(d[8..]), System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(d[16..]));
        return true;
    }

    internal BoundSocket? SocketFor(IPEndPoint? local, AddressFamily family, int member = 0)
    {
        // Every send asks: a snapshot read without a lock (the list changes only when an address is bound).
        BoundSocket? fallback = null;
        foreach (var s in Volatile.Read(ref _socketSnapshot))
        {
            if (s.Member != member) continue;
            if (local is not null && s.LocalEndPoint.Equals(local)) return s;
            if (fallback is null && s.LocalEndPoint.AddressFamily == family) fallback = s;
        }
        return fallback;
    }

    private BoundSocket[] _socketSnapshot = [];

    // Blocking receives on a thread of the socket's own: no thread-pool hand-off before the datagram is routed, and
    // the buffer is reused whenever the datagram was handled inline or dropped.
    private void ReceiveThread(BoundSocket bound)
    {
        var address = new SocketAddress(bound.LocalEndPoint.AddressFamily);
        var buffer = Buffers.Rent();
        var token = _stop.Token;
        var errors = 0;
        try
        {
            while (!token.IsCancellationRequested)
            {
                int length;
                try
                {
                    length = bound.Socket.ReceiveFrom(buffer.AsSpan(0, Options.MaxDatagramSize), SocketFlags.None, address);
                }
                catch (Exception e) when (e is ObjectDisposedException || token.IsCancellationRequested)
                {
                    break;
                }
                catch (SocketException e)
                {
                    // ICMP errors reported on a UDP socket (e.g. port unreachable) concern one send; keep receiving.
                    LogReceiveError(bound.LocalEndPoint, e.SocketErrorCode);
                    BackOff(ref errors);
                    continue;
                }
                errors = 0;
                Interlocked.Increment(ref Counters._receiveCalls);
                Interlocked.Increment(ref Counters._received);
                if (SafeDispatch(bound, buffer, length, address)) buffer = Buffers.Rent();
            }
        }
        finally { Buffers.Return(buffer); }
    }

    private async Task ReceiveLoopAsync(BoundSocket bound)
    {
        var address = new SocketAddress(bound.LocalEndPoint.AddressFamily);
        var token = _stop.Token;
        var buffer = Buffers.Rent();
        var errors = 0;
        try
        {
            while (!token.IsCancellationRequested)
            {
                int length;
                try
                {
                    length = await bound.Socket.ReceiveFromAsync(buffer.AsMemory(0, Options.MaxDatagramSize), SocketFlags.None,
                        address, token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException || token.IsCancellationRequested)
                {
                    break;
                }
                catch (SocketException e)
                {
                    LogReceiveError(bound.LocalEndPoint, e.SocketErrorCode);
                    if (++errors > 16) await Task.Delay(Math.Min(errors - 16, 100), CancellationToken.None).ConfigureAwait(false);
                    continue;
                }
                errors = 0;
                Interlocked.Increment(ref Counters._receiveCalls);
                Interlocked.Increment(ref Counters._received);
                if (SafeDispatch(bound, buffer, length, address)) buffer = Buffers.Rent();
            }
        }
        finally { Buffers.Return(buffer); }
    }

    /// <summary>Hands one datagram to its peer; true when the peer's queue took the buffer (the caller needs a new one).</summary>
    private bool Dispatch(BoundSocket bound, byte[] buffer, int length, SocketAddress address)
    {
        var datagram = buffer.AsSpan(0, length);
        var kind = DatagramClassifier.Classify(datagram);
        if (kind is DatagramKind.Unknown or DatagramKind.Zrtp)
        {
            Interlocked.Increment(ref Counters._droppedUnknownKind);
            return false;
        }
        if (kind == DatagramKind.Stun && TakeTransaction(datagram) is { } asked)
        {
            // The answer to a request a peer sent to a server other peers use too (its route is theirs).
            if (!asked.Deliver(bound, buffer, length, (IPEndPoint)bound.LocalEndPoint.Create(address), DatagramKind.Stun, out var took))
                Interlocked.Increment(ref Counters._droppedInboxFull);
            return took;
        }
        if (bound.Routes.TryGetValue(address, out var route))
        {
            // A check naming another peer's fragment from an address routed to a peer: the address now belongs to a new
            // client (a port reused after its old owner vanished, or a NAT's mapping reused), and its old session may
            // hold the route for seconds yet. That peer gets the check unrouted, as from an unknown address; its own
            // checks to a 5-tuple another peer holds are refused (FiveTupleInUse), so it fails at once with the reason.
            if (kind == DatagramKind.Stun && length > 1 && datagram[0] == 0x00 && datagram[1] == 0x01 &&
                FragmentOwner(datagram, route.Actor) is { } named && named != route.Actor)
            {
                Interlocked.Increment(ref Counters._unroutedRequests);
                route = new Route(named, route.RemoteEndPoint);
            }
        }
        else
        {
            if (kind != DatagramKind.Stun || !StunUsername.TryGetLocalFragment(datagram, out var fragment) ||
                !_byFragment.TryGetValue(StunUsername.Decode(fragment), out var owner))
            {
                Interlocked.Increment(ref Counters._droppedUnknownPeer);
                return false;
            }
            // No route is learnt here: anyone can put a live ufrag into a USERNAME, from any (spoofed) source. The peer
            // checks MESSAGE-INTEGRITY (RFC 8445 section 7.3) and answers only an authenticated request; sending that
            // answer learns the 5-tuple (PeerActor -> Learn). A forged request is dropped by the peer and leaves nothing.
            Interlocked.Increment(ref Counters._unroutedRequests);
            route = new Route(owner, (IPEndPoint)bound.LocalEndPoint.Create(address));
        }
        if (!route.Actor.Deliver(bound, buffer, length, route.RemoteEndPoint, kind, out var taken))
            Interlocked.Increment(ref Counters._droppedInboxFull);
        return taken;
    }

    // The peer a Binding request's USERNAME names (the fragment before the colon), or null; no allocation. Nearly
    // always the routed peer itself (every consent check of a connection): its own fragments are compared first, as
    // bytes, before a transcoding and a lookup in the table of every connection's fragments.
    private PeerActor? FragmentOwner(ReadOnlySpan<byte> datagram, PeerActor routed)
    {
        if (!StunUsername.TryGetLocalFragment(datagram, out var fragment) || fragment.Length > 256) return null;
        if (routed.OwnsFragment(fragment)) return routed;
        Span<char> chars = stackalloc char[256];
        if (!System.Text.Encoding.UTF8.TryGetChars(fragment, chars, out var n)) return null;
        return _byFragment.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(chars[..n], out var owner) ? owner : null;
    }

    /// <summary>Stops every peer, closes the sockets and waits for the loops to end.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        await StopIceTcpAsync().ConfigureAwait(false);
        CloseAllTurnConnections();
        BoundSocket[] sockets;
        lock (_sockets) sockets = _sockets.ToArray();
        foreach (var s in sockets)
        {
            // Our own recvmmsg is unknown to Socket, which therefore cannot abort it: shutdown(2) wakes it (on Linux
            // also for an unconnected UDP socket, which then reports ENOTCONN), and the thread ends before the close.
            if (!s.NativeReceive) continue;
            try { s.Socket.Shutdown(SocketShutdown.Both); }
            catch (SocketException) { }
            if (s.ReceiveThread is { } thread && thread != Thread.CurrentThread) thread.Join(TimeSpan.FromSeconds(2));
        }
        foreach (var s in sockets) s.Socket.Dispose();
        foreach (var s in sockets)
        {
            if (s.ReceiveTask is { } t) await t.ConfigureAwait(false);
            // Disposing the socket wakes its blocked receive; bounded wait in case the platform does not.
            if (s.ReceiveThread is { } thread && thread != Thread.CurrentThread) thread.Join(TimeSpan.FromSeconds(2));
        }
        foreach (var actor in _actors.Keys) await actor.StopAsync().ConfigureAwait(false);
        lock (_deadlineLock) foreach (var d in _deadlines) d?.Dispose();
        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "UDP receive error on {Local}: {Error}")]
    private partial void LogReceiveError(IPEndPoint local, SocketError error);

    internal sealed class BoundSocket(
        Socket socket, IPEndPoint localEndPoint, UdpDriverCounters counters, ShrinkingDictionary<SocketAddress, Route> routes, int member = 0)
    {
        /// <summary>Which member of its address's group (0 for the first, the only one without a group).</summary>
        public int Member { get; } = member;
        public Socket Socket { get; } = socket;
        public IPEndPoint LocalEndPoint { get; } = localEndPoint;
        public UdpDriverCounters Counters { get; } = counters;
        /// <summary>GSO sends allowed (cleared for good when the path refuses one).</summary>
        public volatile bool Gso = true;
        /// <summary>The receive thread uses recvmmsg (and GRO when <see cref="Gro"/>).</summary>
        public bool NativeReceive { get; set; }
        public bool Gro { get; set; }
        public Task? ReceiveTask { get; set; }
        public Thread? ReceiveThread { get; set; }
        /// <summary>Remote address to peer, for datagrams arriving on this socket (one table for a whole group: the kernel picks the member).</summary>
        public ShrinkingDictionary<SocketAddress, Route> Routes { get; } = routes;
    }

    internal sealed record Route(PeerActor Actor, IPEndPoint RemoteEndPoint);
}
