namespace Transport.Streaming.Io;

/// <summary>One peer's timer: armed at an absolute deadline on the driver's clock (<see cref="UdpDriver.Now"/>).</summary>
internal interface IActorTimer : IDisposable
{
    /// <summary>Arms the timer at <paramref name="deadline"/> (null disarms). A deadline in the past fires at once.</summary>
    void Change(TimeSpan? deadline);
}

/// <summary>
/// A timer made by the driver's <see cref="TimeProvider"/> (used for every provider but the system one, e.g. virtual
/// time in tests): exact, since such providers fire exactly when their clock reaches the due time.
/// </summary>
internal sealed class ProviderActorTimer : IActorTimer
{
    private readonly UdpDriver _driver;
    private readonly ITimer _timer;
    private int _disposed;

    public ProviderActorTimer(UdpDriver driver, PeerActor actor)
    {
        _driver = driver;
        driver.TimerCreated();
        _timer = driver.Time.CreateTimer(static s =>
        {
            var a = (PeerActor)s!;
            a.Disarmed();
            a.OnTimer();
        }, actor, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public void Change(TimeSpan? deadline)
    {
        if (deadline is null) { _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan); return; }
        var due = deadline.Value - _driver.Now;
        _timer.Change(due > TimeSpan.Zero ? due : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _timer.Dispose();
        _driver.TimerDisposed();
    }
}

/// <summary>
/// The deadlines of every peer of a driver on one dedicated thread: a min-heap ordered by deadline, one thread that
/// sleeps until the soonest and then runs the due peers (inline when they allow it). With the system clock this
/// replaces one thread-pool timer per peer: deadlines fire when due (never early, about a millisecond late at most)
/// even when the thread pool is saturated by application work, and an idle peer's timer costs no pool hand-off.
/// </summary>
internal sealed class DeadlineThread : IDisposable
{
    // The storage the heap and the due list grew to at the busiest moment is given back once drained
    // (ShrinkRule.Target: halved while under a quarter full, down to these floors).
    internal const int HeapFloor = 256;
    internal const int DueFloor = 64;

    private readonly UdpDriver _driver;
    private PriorityQueue<Entry, TimeSpan> _heap = new();   // replaced by a smaller one when drained; under _lock
    private readonly object _lock = new();
    private readonly Thread _thread;
    private readonly List<PeerActor> _due = new();   // the deadline thread's own
    private int _live;
    private int _heapShrinks;
    private bool _stopping;

    public DeadlineThread(UdpDriver driver, string name = "Transport deadlines")
    {
        _driver = driver;
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Entries in the heap, stale ones included (for tests and diagnostics).</summary>
    public int HeapSize { get { lock (_lock) return _heap.Count; } }

    /// <summary>Slots of the heap's array (tests and diagnostics: it follows the timers held at once, and shrinks when drained).</summary>
    public int HeapCapacity { get { lock (_lock) return _heap.EnsureCapacity(0); } }

    /// <summary>Times the heap's array was replaced by a smaller one.</summary>
    public int HeapShrinks { get { lock (_lock) return _heapShrinks; } }

    public IActorTimer Create(PeerActor actor) => new Timer(this, actor);

    private void Arm(Timer timer, TimeSpan? deadline)
    {
        lock (_lock)
        {
            timer.Version++;
            if (deadline is null || timer.Disposed) return;
            var wakeNeeded = !_heap.TryPeek(out _, out var soonest) || deadline.Value < soonest;
            _heap.Enqueue(new Entry(timer, timer.Version), deadline.Value);
            // Re-arming leaves the old entries behind (a heap has no cheap removal); they are skipped when they come
            // up. Keep them bounded when a peer re-arms far more often than its deadlines come due.
            if (_heap.Count > 64 + 4 * _live) Compact();
            if (wakeNeeded) Monitor.Pulse(_lock);
        }
    }

    private void Compact()
    {
        var keep = new List<(Entry, TimeSpan)>(_live);
        while (_heap.TryDequeue(out var e, out var at))
            if (e.Version == e.Timer.Version && !e.Timer.Disposed) keep.Add((e, at));
        _heap.EnqueueRange(keep);
        ShrinkHeap();
    }

    // Under _lock: the heap's array halves while under a quarter full (ShrinkRule), e.g. once a burst of peers has gone.
    // Never below twice 32 + 2 per live timer, i.e. above the compaction bound (64 + 4 per live timer): stale entries
    // of re-armed timers fill the heap up to that bound between compactions, and a heap shrunk below it would grow
    // again every time (thrash).
    private void ShrinkHeap()
    {
        if (ShrinkRule.Shrink(ref _heap, HeapFloor, needed: 32 + 2 * _live)) _heapShrinks++;
    }

    // Under _lock, on the deadline thread when it is about to wait (a quiet moment): the heap, and the due list, which
    // only this thread touches and which no burst can fill beyond the heap's entries (sized by them: hysteresis, a
    // burst after a quiet moment does not find it shrunk below what the heap could hand it).
    private void ShrinkIfDrained()
    {
        ShrinkHeap();
        var due = ShrinkRule.Target(_due.Capacity, Math.Max(_heap.Count, _live), DueFloor);
        if (due != _due.Capacity) _due.Capacity = due;
    }

    private void Run()
    {
        while (true)
        {
            lock (_lock)
            {
                while (true)
                {
                    if (_stopping) return;
                    if (!_heap.TryPeek(out var next, out var at))
                    {
                        ShrinkIfDrained();
                        Monitor.Wait(_lock);
                        continue;
                    }
                    if (next.Version != next.Timer.Version || next.Timer.Disposed) { _heap.Dequeue(); continue; }
                    var wait = at - _driver.Now;
                    if (wait > TimeSpan.Zero)
                    {
                        ShrinkIfDrained();
                        // Whole milliseconds, rounded up: never early. Pulsed when a sooner deadline is armed.
                        Monitor.Wait(_lock, (int)Math.Min(int.MaxValue, Math.Ceiling(wait.TotalMilliseconds)));
                        Interlocked.Increment(ref _driver.Counters._deadlineWakeups);
                        continue;
                    }
                    var now = _driver.Now;
                    while (_heap.TryPeek(out var e, out var due) && due <= now)
                    {
                        _heap.Dequeue();
                        if (e.Version != e.Timer.Version || e.Timer.Disposed) continue;
                        e.Timer.Version++;   // fired: a later Change arms it anew
                        _due.Add(e.Timer.Actor!);
                    }
                    break;
                }
            }
            // The due peers' datagrams go out together when the burst ends (idle agents' consent checks and
            // keepalives share the 100 ms grid: one sendmmsg for all of them).
            SendBatch.Begin();
            foreach (var actor in _due)
            {
                try
                {
                    actor.Disarmed();
                    actor.OnTimer();
                }
                catch (Exception ex)
                {
                    // OnTimer handles peer exceptions itself; anything here is a driver bug, never fatal to the others.
                    Interlocked.Increment(ref _driver.Counters._peerErrors);
                    _ = ex;
                }
            }
            _due.Clear();
            SendBatch.End();
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _stopping = true;
            Monitor.Pulse(_lock);
        }
        if (Thread.CurrentThread != _thread) _thread.Join();
    }

    private readonly record struct Entry(Timer Timer, long Version);

    private sealed class Timer : IActorTimer
    {
        private readonly DeadlineThread _owner;

        public Timer(DeadlineThread owner, PeerActor actor)
        {
            _owner = owner;
            Actor = actor;
            lock (owner._lock) owner._live++;
            owner._driver.TimerCreated();
        }

        /// <summary>The peer; null once disposed, so that the stale heap entries a disposed timer leaves behind (until
        /// they come up or a compaction) hold a small object, not a whole connection with its buffers.</summary>
        public PeerActor? Actor { get; private set; }
        public long Version;       // guarded by the owner's lock
        public bool Disposed;      // guarded by the owner's lock

        public void Change(TimeSpan? deadline) => _owner.Arm(this, deadline);

        public void Dispose()
        {
            lock (_owner._lock)
            {
                if (Disposed) return;
                Disposed = true;
                Actor = null;
                Version++;
                _owner._live--;
                // Stale entries beyond the bound go now, not when they come due (a drained server's heap would hold a
                // burst's far deadlines, e.g. 30 s consent expiries, and its array stay large until then): compaction
                // is O(heap) once the live timers fell to a quarter, amortised O(1) per dispose.
                if (_owner._heap.Count > 64 + 4 * _owner._live) _owner.Compact();
            }
            _owner._driver.TimerDisposed();
        }
    }
}
