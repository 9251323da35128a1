namespace Transport.TestKit;

/// <summary>
/// Virtual time for tests. <see cref="Now"/> is a monotonic <see cref="TimeSpan"/> since the start of
/// the test, the form the sans-IO cores take. It is also a <see cref="TimeProvider"/> whose timers fire
/// only when the test advances the clock, so the I/O layer (Streaming) can run on virtual time too.
/// </summary>
public sealed class ManualClock : TimeProvider
{
    private readonly Lock _gate = new();
    private readonly List<ManualTimer> _timers = new();
    private readonly DateTimeOffset _epoch;
    private TimeSpan _now;

    /// <param name="start">The initial virtual time.</param>
    /// <param name="epoch">The wall-clock instant that virtual time zero maps to.</param>
    public ManualClock(TimeSpan start = default, DateTimeOffset? epoch = null)
    {
        if (start < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(start), "Virtual time starts at zero or later.");
        _now = start;
        _epoch = epoch ?? new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    }

    /// <summary>The current virtual time.</summary>
    public TimeSpan Now { get { lock (_gate) return _now; } }

    /// <summary>Moves time forward by <paramref name="delta"/>, firing every timer that falls due, in order.</summary>
    public void Advance(TimeSpan delta)
    {
        if (delta < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(delta), "Time never goes back.");
        AdvanceTo(Now + delta);
    }

    /// <summary>
    /// Moves time to <paramref name="time"/>. Going back is refused: the cores rely on monotonic time.
    /// Timers due on the way fire at their own due time (the clock reads that time while they run).
    /// </summary>
    public void AdvanceTo(TimeSpan time)
    {
        while (true)
        {
            ManualTimer? due = null;
            lock (_gate)
            {
                if (time < _now) throw new ArgumentOutOfRangeException(nameof(time), $"Time never goes back (now {_now}, asked {time}).");
                foreach (var t in _timers)
                    if (t.DueAt is { } d && d <= time && (due is null || d < due.DueAt)) due = t;
                if (due is null) { _now = time; return; }
                _now = due.DueAt!.Value;
                due.Rearm();
            }
            due.Fire();
        }
    }

    /// <summary>The earliest time a timer created by this clock is due, or null.</summary>
    public TimeSpan? NextTimerDue
    {
        get
        {
            lock (_gate)
            {
                TimeSpan? best = null;
                foreach (var t in _timers)
                    if (t.DueAt is { } d && (best is null || d < best)) best = d;
                return best;
            }
        }
    }

    /// <inheritdoc />
    public override DateTimeOffset GetUtcNow() => _epoch + Now;

    /// <inheritdoc />
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    /// <inheritdoc />
    public override long GetTimestamp() => Now.Ticks;

    /// <inheritdoc />
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new ManualTimer(this, callback, state);
        lock (_gate) _timers.Add(timer);
        timer.Change(dueTime, period);
        return timer;
    }

    private void Remove(ManualTimer timer) { lock (_gate) _timers.Remove(timer); }

    private sealed class ManualTimer(ManualClock clock, TimerCallback callback, object? state) : ITimer
    {
        private TimeSpan _period;
        public TimeSpan? DueAt { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (clock._gate)
            {
                _period = period;
                DueAt = dueTime == Timeout.InfiniteTimeSpan ? null : clock._now + (dueTime < TimeSpan.Zero ? TimeSpan.Zero : dueTime);
            }
            return true;
        }

        // Called under the clock's lock, just before Fire.
        public void Rearm() =>
            DueAt = _period == Timeout.InfiniteTimeSpan || _period <= TimeSpan.Zero ? null : DueAt + _period;

        public void Fire() => callback(state);

        public void Dispose() { DueAt = null; clock.Remove(this); }

        public ValueTask DisposeAsync() { Dispose(); return ValueTask.CompletedTask; }
    }
}
