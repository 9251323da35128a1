using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Transport.Streaming.Io;

/// <summary>
/// Runs one <see cref="IDatagramPeer"/> so that it is only ever entered by one thread at a time and needs no locks.
/// <para>
/// Inputs (datagrams, timer expiries, application work) go into the actor's bounded queues and the actor is run
/// as a thread-pool work item that drains them in a batch. A peer that never blocks
/// (<see cref="IDatagramPeer.RunsInline"/>) and is idle when a STUN datagram or its timer arrives is run at once
/// on the driver's own I/O thread instead: that is the whole cost of an idle connection (consent, keepalive),
/// and it then costs no thread hand-off, no wake-up of a pool thread and no copy.
/// </para>
/// </summary>
internal sealed partial class PeerActor : IThreadPoolWorkItem
{
    private const int Idle = 0, Running = 1;
    private const int BatchSize = 256;

    private readonly UdpDriver _driver;
    private readonly IDatagramPeer _peer;
    private readonly bool _inline;
    // Lean queues: no storage while empty (a ConcurrentQueue keeps a 32-slot segment: 2 KiB for the datagrams).
    private readonly LeanQueue<Datagram> _datagrams = new();
    private readonly LeanQueue<IWorkItem> _work = new();
    private readonly SemaphoreSlim _workSlots;
    private IActorTimer _timer;
    // The member of a socket group (UdpDriverOptions.ReceiveSockets) this peer lives on: its timer is on that member's
    // deadline thread and it sends through that member's socket. It follows the member its datagrams arrive on.
    private int _home;
    private byte[]? _sendBuffer;   // only without batched sends (the batch is written in place otherwise)
    private readonly Dictionary<(UdpDriver.BoundSocket, IPEndPoint), SocketAddress> _remoteAddresses = new();
    // Remotes whose route belongs to another peer of the driver (a STUN or TURN server many connections use): answers
    // from there are routed by the transaction id of our requests instead (UdpDriver.NoteTransaction).
    private readonly HashSet<SocketAddress> _sharedRemotes = new();
    private int _state;
    private int _queuedDatagrams;
    private int _queuedNonStun;   // of those, not STUN (Leave runs a STUN head inline only when none is)
    private int _timerFired;
    private int _stopped;
    private TimeSpan? _armed;
    private TaskCompletionSource? _quiesced;

    [ThreadStatic] private static PeerActor? t_current;

    public PeerActor(UdpDriver driver, IDatagramPeer peer)
    {
        _driver = driver;
        _peer = peer;
        _inline = driver.Options.InlineProcessing && peer.RunsInline;
        _workSlots = new SemaphoreSlim(driver.Options.InboxCapacity, driver.Options.InboxCapacity);
        _home = driver.NextHome();
        _timer = driver.CreateTimer(this, _home);
    }

    public IDatagramPeer Peer => _peer;

    public UdpDriver Driver => _driver;

    /// <summary>Datagrams in the queue (each stamped with its arrival when it was queued).</summary>
    public int QueuedDatagrams => _datagrams.Count;

    public void Start()
    {
        Volatile.Write(ref _timerFired, 1); // the first run arms the first deadline
        if (_inline && _peer.InlineNow && TryEnter()) RunInline(default);
        else Schedule();
    }

    public void AddFragment(string fragment) => _driver.AddFragment(this, fragment);

    // The fragments the driver routes to this peer, as registered and in UTF-8 (copied on write: read by receive threads
    // without a lock).
    private (string Name, byte[] Utf8)[] _fragments = [];

    /// <summary>The driver registered <paramref name="fragment"/> for this peer.</summary>
    internal void NoteFragment(string fragment)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(fragment);
        while (true)
        {
            var current = Volatile.Read(ref _fragments);
            foreach (var f in current) if (f.Name == fragment) return;
            if (Interlocked.CompareExchange(ref _fragments, [.. current, (fragment, bytes)], current) == current) return;
        }
    }

    /// <summary>True when <paramref name="fragment"/> (UTF-8) is one the driver routes to this running peer.</summary>
    internal bool OwnsFragment(ReadOnlySpan<byte> fragment)
    {
        if (Volatile.Read(ref _stopped) != 0) return false;
        foreach (var f in Volatile.Read(ref _fragments))
            if (fragment.SequenceEqual(f.Utf8)) return true;
        return false;
    }

    /// <summary>Every fragment the driver was asked to route to this peer (what <see cref="UdpDriver.Unregister"/> removes).</summary>
    internal IEnumerable<string> FragmentNames => Volatile.Read(ref _fragments).Select(f => f.Name);

    /// <summary>
    /// The (socket, remote address) pairs this peer sent to and so may have a route for: every route of a peer is
    /// learnt by its own send (<see cref="Resolve"/>) and forgotten with its entry here (<see cref="Forget"/>). Read once
    /// the actor has stopped (no run changes it any more).
    /// </summary>
    internal IEnumerable<(UdpDriver.BoundSocket Socket, SocketAddress Address)> LearntRemotes =>
        _remoteAddresses.Select(kv => (kv.Key.Item1, kv.Value));

    /// <summary>
    /// Hands a datagram to the peer. When the peer runs inline, is idle and the datagram is STUN, it is handled now
    /// on the calling I/O thread and <paramref name="buffer"/> stays the caller's. Otherwise the buffer is queued
    /// (and then owned by the actor). False when the queue was full (the caller keeps the buffer and counts the drop).
    /// </summary>
    public bool Deliver(UdpDriver.BoundSocket socket, byte[] buffer, int length, IPEndPoint remote, DatagramKind kind, out bool bufferTaken) =>
        Accept(new Datagram(socket, buffer, length, remote, kind, default), out bufferTaken);

    /// <summary>Hands a frame of an ICE-TCP connection to the peer; like <see cref="Deliver"/>.</summary>
    public bool DeliverFrame(UdpDriver.IceTcpConnection connection, byte[] buffer, int length, DatagramKind kind, out bool bufferTaken)
    {
        bufferTaken = false;
        return Volatile.Read(ref _stopped) == 0
            && Accept(new Datagram(null!, buffer, length, connection.Remote, kind, default) { Tcp = connection }, out bufferTaken);
    }

    /// <summary>Hands a frame read from a connection to a TURN server to the peer; like <see cref="DeliverFrame"/>.</summary>
    public bool DeliverTurnFrame(TurnStreamConnection connection, byte[] buffer, int length, DatagramKind kind, out bool bufferTaken)
    {
        bufferTaken = false;
        return Volatile.Read(ref _stopped) == 0
            && Accept(new Datagram(null!, buffer, length, connection.Server, kind, default) { Turn = connection }, out bufferTaken);
    }

    // Runs a STUN input inline when the peer runs inline and is idle (the buffer stays the caller's), else queues it
    // (the actor owns the buffer then); false when the inbox is full.
    private bool Accept(Datagram d, out bool bufferTaken)
    {
        bufferTaken = false;
        if (_inline && d.IsStun && Volatile.Read(ref _stopped) == 0 && _peer.InlineNow && TryEnter())
        {
            RunInline(d);
            return true;
        }
        if (Interlocked.Increment(ref _queuedDatagrams) > _driver.Options.InboxCapacity)
        {
            Interlocked.Decrement(ref _queuedDatagrams);
            return false;
        }
        // Stamped on arrival: the peer sees the time the datagram came in, not when a pool thread got to it, so
        // arrival times (transport-cc feedback, jitter) do not carry the queueing delay.
        if (!d.IsStun) Interlocked.Increment(ref _queuedNonStun);
        _datagrams.Enqueue(d with { ReceivedAt = _driver.Now });
        bufferTaken = true;
        Schedule();
        return true;
    }

    /// <summary>The timer reached the armed deadline (called on the timer's thread).</summary>
    public void OnTimer()
    {
        Interlocked.Increment(ref _driver.Counters._wakeups);
        Volatile.Write(ref _timerFired, 1);
        if (_inline && Volatile.Read(ref _stopped) == 0 && _peer.InlineNow && TryEnter()) RunInline(default);
        else Schedule();
    }

    /// <summary>
    /// Runs the peer on the calling I/O thread (the caller holds the running state): one datagram if given (its buffer
    /// stays the caller's), due deadlines, transmits, events; then leaves, taking further STUN inline.
    /// </summary>
    private void RunInline(Datagram datagram)
    {
        RunInlineOnce(datagram);
        Leave(handOff: true);
    }

    private void RunInlineOnce(Datagram datagram)
    {
        Interlocked.Increment(ref _driver.Counters._inline);
        var now = Monotonic(_driver.Now);
        var previous = t_current;
        t_current = this;
        try
        {
            if (datagram.Buffer is not null) HandleDatagram(datagram, now);
            Volatile.Write(ref _timerFired, 0);
            Finish(now);
        }
        finally
        {
            t_current = previous;
            SendBatch.FlushUnlessDeferring();   // on a driver thread's burst, the burst sends at its end
        }
    }

    /// <summary>
    /// Queues application work. Work is never dropped for a full queue: it waits for room. False when the actor
    /// has stopped.
    /// </summary>
    public async ValueTask<bool> PostAsync(IWorkItem work, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _stopped) != 0) return false;
        await _workSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
        if (Volatile.Read(ref _stopped) != 0)
        {
            _workSlots.Release();
            return false;
        }
        _work.Enqueue(work);
        Schedule();
        // Stop may have drained the queue just before the item went in: make sure it is not left behind.
        if (Volatile.Read(ref _stopped) != 0 && TryEnter()) { AbandonAll(); Leave(handOff: false); }
        return true;
    }

    private bool TryEnter() => Interlocked.CompareExchange(ref _state, Running, Idle) == Idle;

    private void Schedule()
    {
        if (TryEnter()) { Interlocked.Increment(ref _driver.Counters._handoffs); ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false); }
    }

    /// <summary>
    /// Leaves the running state; if inputs arrived meanwhile, runs again: STUN datagrams on the same I/O thread when
    /// the peer runs inline (the answer to a check just sent often arrives while the peer is still finishing the
    /// send), anything else on the pool when <paramref name="handOff"/>.
    /// </summary>
    private void Leave(bool handOff)
    {
        for (var extra = 0; ; extra++)
        {
            Volatile.Write(ref _state, Idle);
            if (Volatile.Read(ref _stopped) != 0)
            {
                if (TryEnter()) { AbandonAll(); Volatile.Write(ref _state, Idle); }
                _quiesced?.TrySetResult();
                return;
            }
            if (!HasPending())
            {
                // Idle: the queues' rings go back to the shared pool (a producer racing with this rents again).
                _datagrams.ReleaseIfEmpty();
                _work.ReleaseIfEmpty();
                return;
            }
            if (!TryEnter()) return;   // another thread took it and will see the inputs
            if (!handOff) { Execute(); return; }
            // Only STUN waiting (counted, not peeked).
            if (_inline && extra < 8 && _work.IsEmpty && Volatile.Read(ref _queuedNonStun) == 0 && _peer.InlineNow && _datagrams.TryDequeue(out var d))
            {
                Interlocked.Decrement(ref _queuedDatagrams);
                if (!d.IsStun) Interlocked.Decrement(ref _queuedNonStun);   // enqueued between the check and the dequeue
                try { RunInlineOnce(d); }
                finally { _driver.Buffers.Return(d.Buffer); }
                continue;   // loop to leave again (no recursion: a burst is taken iteratively)
            }
            Interlocked.Increment(ref _driver.Counters._handoffs);
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
            return;
        }
    }

    private bool HasPending() => !_datagrams.IsEmpty || !_work.IsEmpty || Volatile.Read(ref _timerFired) != 0;

    /// <summary>A thread-pool run: a batch of queued inputs.</summary>
    public void Execute()
    {
        if (Volatile.Read(ref _stopped) != 0) { Leave(handOff: false); return; }
        var previous = t_current;
        t_current = this;
        SendBatch.Begin();
        try
        {
            Volatile.Write(ref _timerFired, 0);
            for (var i = 0; i < BatchSize; i++)
            {
                if (_datagrams.TryDequeue(out var d))
                {
                    Interlocked.Decrement(ref _queuedDatagrams);
                    if (!d.IsStun) Interlocked.Decrement(ref _queuedNonStun);
                    try { HandleDatagram(d, Monotonic(d.ReceivedAt)); }
                    finally { _driver.Buffers.Return(d.Buffer); }
                }
                else if (_work.TryDequeue(out var w))
                {
                    _workSlots.Release();
                    RunWork(w, Monotonic(_driver.Now));
                }
                else break;
                if (Volatile.Read(ref _stopped) != 0) break;
            }
            Finish(Monotonic(_driver.Now));
        }
        finally
        {
            t_current = previous;
            SendBatch.End();
            CompleteWork();
        }
        // More than a batch waiting goes back to the pool, so one busy peer cannot hold a thread for long.
        Leave(handOff: true);
    }

    private void HandleDatagram(in Datagram d, TimeSpan now)
    {
        if (d.Socket is { } socket && socket.Member != _home) MoveHome(socket.Member);   // an ICE-TCP frame has no UDP socket
        try
        {
            var data = d.Buffer.AsSpan(0, d.Length);
            // The driver classified it (RFC 7983) once: the peer is told the class instead of reading it again.
            if (d.Tcp is { } tcp) _peer.HandleIceTcpFrame(data, d.Kind, tcp.Local, tcp.Remote, now);
            else if (d.Turn is { } turn) _peer.HandleTurnStreamFrame(data, d.Kind, turn.Local, turn.Server, now);
            else _peer.HandleDatagram(data, d.Kind, d.Socket.LocalEndPoint, d.Remote, now);
            Drain();
        }
        catch (Exception e) { PeerError(e); }
    }

    private void RunWork(IWorkItem work, TimeSpan now)
    {
        try
        {
            work.Run(now);
            Drain();
            ReportConflicts(now);
            _peer.AfterInput(now);
            Drain();
            for (var i = 0; i < 4096 && _peer.TryPollReleasedRemote(out var released); i++) Forget(released);
        }
        catch (Exception e) { PeerError(e); }
        // Application work completes only once what it queued has been sent: after the run's batch went out.
        (_ran ??= new List<IWorkItem>()).Add(work);
    }

    private List<IWorkItem>? _ran;

    private void CompleteWork()
    {
        if (_ran is not { Count: > 0 } ran) return;
        foreach (var w in ran) w.Complete();
        ran.Clear();
    }

    /// <summary>After a batch: due deadlines, transmits, events to the application, and the timer re-armed.</summary>
    private void Finish(TimeSpan now)
    {
        try
        {
            for (var i = 0; i < _driver.Options.MaxImmediateTimeouts; i++)
            {
                var deadline = _peer.PollTimeout();
                if (deadline is null || deadline > now) break;
                Interlocked.Increment(ref _driver.Counters._timeouts);
                _peer.HandleTimeout(now);
                Drain();
            }
            // No Drain here: every input of the run (a datagram, application work, each timeout above) was drained
            // right after it, and PollTimeout changes nothing, so a poll now would walk every layer for nothing (one
            // empty TryPollTransmit per run: the bulk of an idle connection's runs, consent and keepalive).
            ReportConflicts(now);
            _peer.AfterInput(now);
            Drain();
            for (var i = 0; i < 4096 && _peer.TryPollReleasedRemote(out var released); i++) Forget(released);
        }
        catch (Exception e) { PeerError(e); }
        Rearm(now);
    }

    // The kernel delivers this peer's datagrams to another member of the group: its timer moves to that member's
    // deadline thread (re-armed by the run's end) and its sends leave from that member's socket.
    private void MoveHome(int member)
    {
        _home = member;
        var old = _timer;
        Volatile.Write(ref _timer, _driver.CreateTimer(this, member));
        old.Dispose();
        _armed = null;
        if (Volatile.Read(ref _stopped) != 0) _timer.Dispose();   // stopped meanwhile: StopAsync may have seen the old one
    }

    private void Drain()
    {
        for (var i = 0; i < 10_000; i++)
        {
            if (_driver.BatchedSends)
            {
                // The peer writes straight into the thread's batch: no copy between its transmit and the send.
                var batch = SendBatch.ForThread;
                var reserved = batch.Reserve(_driver.Options.MaxDatagramSize);
                if (!_peer.TryPollTransmit(reserved, out var length, out var from, out var to, out TransmitKind kind)) return;
                if (kind == TransmitKind.IceTcp) { _driver.SendIceTcp(this, from, to, reserved[..length]); continue; }
                if (kind == TransmitKind.TurnStream) { _driver.SendTurnStream(this, from, to, reserved[..length]); continue; }
                if (Resolve(from, to, reserved[..length], out var socket, out var address)) batch.Commit(socket, address, length);
                continue;
            }
            _sendBuffer ??= new byte[_driver.Options.MaxDatagramSize];
            if (!_peer.TryPollTransmit(_sendBuffer, out var written, out var local, out var remote, out TransmitKind path)) return;
            if (path == TransmitKind.IceTcp) { _driver.SendIceTcp(this, local, remote, _sendBuffer.AsSpan(0, written)); continue; }
            if (path == TransmitKind.TurnStream) { _driver.SendTurnStream(this, local, remote, _sendBuffer.AsSpan(0, written)); continue; }
            if (Resolve(local, remote, _sendBuffer.AsSpan(0, written), out var s, out var a)) SendNow(s, a, _sendBuffer.AsSpan(0, written));
        }
    }

    // The socket to send from and the remote's socket address (learnt as a route the first time); false, counted,
    // when no socket fits.
    private bool Resolve(IPEndPoint? local, IPEndPoint remote, ReadOnlySpan<byte> datagram, out UdpDriver.BoundSocket socket, out SocketAddress address)
    {
        socket = _driver.SocketFor(local, remote.AddressFamily, _home)!;
        if (socket is null)
        {
            Interlocked.Increment(ref _driver.Counters._sendErrors);
            address = null!;
            return false;
        }
        if (!_remoteAddresses.TryGetValue((socket, remote), out address!))
        {
            address = remote.Serialize();
            _remoteAddresses[(socket, remote)] = address;
            if (!UdpDriver.Learn(socket, address, remote, this)) _sharedRemotes.Add(address);
        }
        if (_sharedRemotes.Count > 0 && _sharedRemotes.Contains(address))
        {
            // Another peer owns this 5-tuple. A STUN or TURN server many peers use is fine (answers are routed by
            // transaction id), but a connectivity check (a Binding request with USERNAME) there can never work: the
            // remote's datagrams reach the other peer. Not sent; the peer is told and fails at once.
            if (StunUsername.TryGetLocalFragment(datagram, out _) && UdpDriver.RouteOwner(socket, address) is { } owner && owner != this)
            {
                Interlocked.Increment(ref _driver.Counters._fiveTupleConflicts);
                (_conflicts ??= new()).Add((socket.LocalEndPoint, remote));
                return false;
            }
            _driver.NoteTransaction(datagram, this);
        }
        return true;
    }

    private List<(IPEndPoint Local, IPEndPoint Remote)>? _conflicts;

    // Conflicts found while draining are reported once the drain is over (not in the middle of the peer's transmits).
    private void ReportConflicts(TimeSpan now)
    {
        if (_conflicts is not { Count: > 0 } conflicts) return;
        var copy = conflicts.ToArray();
        conflicts.Clear();
        foreach (var (local, remote) in copy) _peer.OnFiveTupleInUse(local, remote, now);
        Drain();
    }

    // ICE released the remote address: the routes this peer learnt for it (on every socket) go, and the cached socket
    // address with them, so a later send there learns the route again.
    private void Forget(IPEndPoint remote)
    {
        List<(UdpDriver.BoundSocket, IPEndPoint)>? gone = null;
        foreach (var key in _remoteAddresses.Keys)
            if (key.Item2.Equals(remote)) (gone ??= new()).Add(key);
        if (gone is null) return;
        foreach (var key in gone)
        {
            _remoteAddresses.Remove(key, out var address);
            var socket = key.Item1;
            if (socket.Routes.TryGetValue(address!, out var route) && route.Actor == this &&
                socket.Routes.TryRemove(new KeyValuePair<SocketAddress, UdpDriver.Route>(address!, route)))
                Interlocked.Increment(ref _driver.Counters._routesForgotten);
        }
    }

    private void SendNow(UdpDriver.BoundSocket socket, SocketAddress address, ReadOnlySpan<byte> datagram)
    {
        try
        {
            socket.Socket.SendTo(datagram, SocketFlags.None, address);
            Interlocked.Increment(ref _driver.Counters._sendCalls);
            Interlocked.Increment(ref _driver.Counters._sent);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _driver.Counters._sendErrors);
        }
    }

    private void Rearm(TimeSpan now)
    {
        TimeSpan? deadline;
        try { deadline = _peer.PollTimeout(); }
        catch (Exception e) { PeerError(e); deadline = null; }
        if (deadline is { } d && d < now) deadline = now;
        if (deadline == _armed) return;   // most inputs leave the soonest deadline where it was: no timer call
        _armed = deadline;
        _timer.Change(deadline);
    }

    /// <summary>
    /// The timer fired at the armed deadline; called by the timer before <see cref="OnTimer"/> so that the next
    /// run re-arms even when the peer's deadline did not move.
    /// </summary>
    public void Disarmed() => _armed = null;

    private void AbandonAll()
    {
        while (_datagrams.TryDequeue(out var d))
        {
            Interlocked.Decrement(ref _queuedDatagrams);
            if (!d.IsStun) Interlocked.Decrement(ref _queuedNonStun);
            _driver.Buffers.Return(d.Buffer);
        }
        while (_work.TryDequeue(out var w))
        {
            _workSlots.Release();
            w.Abandon();
        }
        _datagrams.ReleaseIfEmpty();
        _work.ReleaseIfEmpty();
    }

    /// <summary>Stops the actor: no input is handled after this completes; queued inputs are released.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
        Volatile.Read(ref _timer).Dispose();
        var quiesced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _quiesced, quiesced);
        if (TryEnter())
        {
            AbandonAll();
            Volatile.Write(ref _state, Idle);
            quiesced.TrySetResult();
        }
        else if (t_current == this)
        {
            quiesced.TrySetResult();   // stopped from inside its own run: the run ends after this call returns
        }
        await quiesced.Task.ConfigureAwait(false);
        _driver.Unregister(this);
    }

    private void PeerError(Exception exception)
    {
        Interlocked.Increment(ref _driver.Counters._peerErrors);
        LogPeerError(_driver.Logger, exception);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "A peer threw while handling an input; the input is lost, the peer goes on")]
    private static partial void LogPeerError(ILogger logger, Exception exception);

    private readonly record struct Datagram(UdpDriver.BoundSocket Socket, byte[] Buffer, int Length, IPEndPoint Remote, DatagramKind Kind, TimeSpan ReceivedAt)
    {
        public bool IsStun => Kind == DatagramKind.Stun;

        /// <summary>The ICE-TCP connection the frame came on (Socket is then null).</summary>
        public UdpDriver.IceTcpConnection? Tcp { get; init; }
        /// <summary>The connection to a TURN server the frame came on (Socket is then null).</summary>
        public TurnStreamConnection? Turn { get; init; }
    }

    // The time the peer is given never goes back: a datagram stamped before a deadline the peer already ran at is
    // handed that deadline's time. Only touched while the actor runs (one thread at a time).
    private TimeSpan _lastNow;

    private TimeSpan Monotonic(TimeSpan t) => t > _lastNow ? _lastNow = t : _lastNow;
}

/// <summary>Application work run on a peer's actor.</summary>
internal interface IWorkItem
{
    /// <summary>Runs on the actor; must not throw (it records its own exception).</summary>
    void Run(TimeSpan now);
    /// <summary>Called after the transmits the work queued were sent.</summary>
    void Complete();
    /// <summary>The actor stopped before the work ran.</summary>
    void Abandon();
}

internal sealed class WorkItem<T>(Func<TimeSpan, T> work) : IWorkItem
{
    private readonly TaskCompletionSource<T> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private T? _result;
    private Exception? _error;

    public Task<T> Task => _done.Task;

    public void Run(TimeSpan now)
    {
        try { _result = work(now); }
        catch (Exception e) { _error = e; }
    }

    public void Complete()
    {
        if (_error is not null) _done.TrySetException(_error);
        else _done.TrySetResult(_result!);
    }

    public void Abandon() => _done.TrySetException(new ObjectDisposedException(nameof(PeerHandle), "The peer stopped before the work ran."));
}
