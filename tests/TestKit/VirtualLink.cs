namespace Transport.TestKit;

/// <summary>The two ends of a <see cref="VirtualLink"/>.</summary>
public enum LinkEnd { A, B }

/// <summary>What a <see cref="VirtualLink"/> does to the datagrams of one direction.</summary>
public sealed record LinkConditions
{
    /// <summary>Fixed one-way delay.</summary>
    public TimeSpan Delay { get; init; } = TimeSpan.FromMilliseconds(10);
    /// <summary>Uniform random extra delay in [0, Jitter). Jitter alone can reorder datagrams.</summary>
    public TimeSpan Jitter { get; init; }
    /// <summary>Probability in [0, 1] that a datagram is lost.</summary>
    public double Loss { get; init; }
    /// <summary>Probability in [0, 1] that a datagram is delivered twice.</summary>
    public double Duplicate { get; init; }
    /// <summary>Probability in [0, 1] that a datagram is held back by <see cref="ReorderDelay"/>, so later ones overtake it.</summary>
    public double Reorder { get; init; }
    /// <summary>Extra delay of a reordered datagram.</summary>
    public TimeSpan ReorderDelay { get; init; } = TimeSpan.FromMilliseconds(30);

    /// <summary>
    /// Bottleneck rate in bits per second (0: unlimited). Datagrams are serialized one after another at this
    /// rate through a drop-tail queue of <see cref="QueueLimitBytes"/>; the time a datagram waits in that queue
    /// comes before <see cref="Delay"/>.
    /// </summary>
    public long RateBitsPerSecond { get; init; }
    /// <summary>Bytes the bottleneck queue holds (waiting, not yet serialized) before it drops arrivals. Only with <see cref="RateBitsPerSecond"/>.</summary>
    public int QueueLimitBytes { get; init; } = 64 * 1024;

    /// <summary>A clean link with the given delay.</summary>
    public static LinkConditions Clean(TimeSpan delay) => new() { Delay = delay };
}

/// <summary>What a filter decides for one datagram.</summary>
public enum FilterAction { Pass, Drop }

/// <summary>A counted datagram, as the link saw it.</summary>
public readonly record struct LinkDatagram(LinkEnd From, byte[] Data, TimeSpan SentAt, TimeSpan DueAt, long Sequence);

/// <summary>
/// Carries datagrams between two endpoints on virtual time with delay, jitter, loss, duplication,
/// reordering, cut-off (partition) and per-datagram filters. Deterministic for a given seed: the same
/// sends at the same times give the same deliveries at the same times.
/// </summary>
public sealed class VirtualLink
{
    private readonly Random _random;
    private readonly PriorityQueue<LinkDatagram, (TimeSpan Due, long Seq)> _toA = new();
    private readonly PriorityQueue<LinkDatagram, (TimeSpan Due, long Seq)> _toB = new();
    private readonly List<Filter> _filters = new();
    private long _sequence;

    public VirtualLink(int seed = 1, LinkConditions? aToB = null, LinkConditions? bToA = null)
    {
        _random = new Random(seed);
        AToB = aToB ?? new LinkConditions();
        BToA = bToA ?? new LinkConditions();
    }

    /// <summary>Conditions of the A to B direction; may be changed at any time.</summary>
    public LinkConditions AToB { get; set; }
    /// <summary>Conditions of the B to A direction; may be changed at any time.</summary>
    public LinkConditions BToA { get; set; }

    /// <summary>While true, every datagram sent in that direction is lost (a partition). Datagrams already in flight still arrive.</summary>
    public bool CutAToB { get; set; }
    /// <summary>See <see cref="CutAToB"/>.</summary>
    public bool CutBToA { get; set; }

    /// <summary>Cuts or restores both directions at once.</summary>
    public bool Cut { set { CutAToB = value; CutBToA = value; } }

    /// <summary>Datagrams handed to the link, per sending end.</summary>
    public int SentFrom(LinkEnd end) => end == LinkEnd.A ? _sentA : _sentB;
    private int _sentA, _sentB;

    /// <summary>Datagrams the link dropped (loss, cut or filter).</summary>
    public int Dropped { get; private set; }
    /// <summary>Datagrams the bottleneck queue dropped because it was full (also counted in <see cref="Dropped"/>).</summary>
    public int QueueDropped { get; private set; }
    /// <summary>Datagrams delivered to their destination.</summary>
    public int Delivered { get; private set; }

    /// <summary>
    /// Adds a filter that sees every datagram sent from <paramref name="from"/> (null: both directions) for
    /// which <paramref name="match"/> holds; <paramref name="decide"/> receives the 1-based count of matching
    /// datagrams so far. Filters run before loss.
    /// </summary>
    public void AddFilter(LinkEnd? from, Func<ReadOnlyMemory<byte>, bool> match, Func<int, FilterAction> decide)
    {
        ArgumentNullException.ThrowIfNull(match);
        ArgumentNullException.ThrowIfNull(decide);
        _filters.Add(new Filter(from, match, decide));
    }

    /// <summary>Drops the <paramref name="nth"/> (1-based) datagram from <paramref name="from"/> that matches.</summary>
    public void DropNth(LinkEnd? from, int nth, Func<ReadOnlyMemory<byte>, bool> match)
    {
        if (nth < 1) throw new ArgumentOutOfRangeException(nameof(nth));
        AddFilter(from, match, n => n == nth ? FilterAction.Drop : FilterAction.Pass);
    }

    /// <summary>Removes every filter.</summary>
    public void ClearFilters() => _filters.Clear();

    /// <summary>Sends a copy of <paramref name="datagram"/> from <paramref name="from"/> at <paramref name="now"/>.</summary>
    public void Send(LinkEnd from, ReadOnlySpan<byte> datagram, TimeSpan now)
    {
        if (from == LinkEnd.A) _sentA++; else _sentB++;
        var copy = datagram.ToArray();
        foreach (var f in _filters)
        {
            if (f.From is { } e && e != from) continue;
            if (!f.Match(copy)) continue;
            f.Count++;
            if (f.Decide(f.Count) == FilterAction.Drop) { Dropped++; return; }
        }
        var cond = from == LinkEnd.A ? AToB : BToA;
        var cut = from == LinkEnd.A ? CutAToB : CutBToA;
        // Draw every random number whatever the outcome, so that a cut does not shift later draws.
        double loss = _random.NextDouble(), dup = _random.NextDouble(), reorder = _random.NextDouble();
        double jitter1 = _random.NextDouble(), jitter2 = _random.NextDouble();
        if (cut || loss < cond.Loss) { Dropped++; return; }
        var queue = from == LinkEnd.A ? _toB : _toA;
        var leaves = now;
        if (cond.RateBitsPerSecond > 0)
        {
            ref var busy = ref from == LinkEnd.A ? ref _busyAToB : ref _busyBToA;
            if (busy < now) busy = now;
            // Bytes still waiting in the queue: what the link has not serialized by now.
            var backlog = (long)((busy - now).TotalSeconds * cond.RateBitsPerSecond / 8);
            if (backlog + copy.Length > cond.QueueLimitBytes) { Dropped++; QueueDropped++; return; }
            busy += TimeSpan.FromTicks((long)Math.Ceiling(copy.Length * 8.0 * TimeSpan.TicksPerSecond / cond.RateBitsPerSecond));
            leaves = busy;
        }
        var due = leaves + cond.Delay + cond.Jitter * jitter1;
        if (reorder < cond.Reorder) due += cond.ReorderDelay;
        Enqueue(queue, from, copy, now, due);
        if (dup < cond.Duplicate)
            Enqueue(queue, from, copy, now, leaves + cond.Delay + cond.Jitter * jitter2);
    }

    private TimeSpan _busyAToB, _busyBToA;

    /// <summary>How long a datagram sent now from <paramref name="from"/> would wait in the bottleneck queue.</summary>
    public TimeSpan QueueDelay(LinkEnd from, TimeSpan now)
    {
        var busy = from == LinkEnd.A ? _busyAToB : _busyBToA;
        return busy > now ? busy - now : TimeSpan.Zero;
    }

    private void Enqueue(PriorityQueue<LinkDatagram, (TimeSpan, long)> q, LinkEnd from, byte[] data, TimeSpan now, TimeSpan due)
    {
        var seq = _sequence++;
        q.Enqueue(new LinkDatagram(from, data, now, due, seq), (due, seq));
    }

    /// <summary>When the next datagram arrives anywhere, or null when nothing is in flight.</summary>
    public TimeSpan? NextDelivery
    {
        get
        {
            TimeSpan? a = _toA.TryPeek(out var x, out _) ? x.DueAt : null;
            TimeSpan? b = _toB.TryPeek(out var y, out _) ? y.DueAt : null;
            if (a is null) return b;
            if (b is null) return a;
            return a < b ? a : b;
        }
    }

    /// <summary>Datagrams in flight towards <paramref name="to"/>.</summary>
    public int InFlightTo(LinkEnd to) => to == LinkEnd.A ? _toA.Count : _toB.Count;

    /// <summary>Takes the next datagram due at or before <paramref name="now"/> for <paramref name="to"/>.</summary>
    public bool TryReceive(LinkEnd to, TimeSpan now, out LinkDatagram datagram)
    {
        var q = to == LinkEnd.A ? _toA : _toB;
        if (q.TryPeek(out var d, out _) && d.DueAt <= now)
        {
            q.Dequeue();
            Delivered++;
            datagram = d;
            return true;
        }
        datagram = default;
        return false;
    }

    private sealed class Filter(LinkEnd? from, Func<ReadOnlyMemory<byte>, bool> match, Func<int, FilterAction> decide)
    {
        public LinkEnd? From { get; } = from;
        public Func<ReadOnlyMemory<byte>, bool> Match { get; } = match;
        public Func<int, FilterAction> Decide { get; } = decide;
        public int Count { get; set; }
    }
}
