using System.Globalization;
using System.Text;
using Transport.TestKit;

namespace Transport.Streaming.Tests.Chaos;

/// <summary>What goes wrong on the link during a scenario, at a virtual time relative to the start of the traffic.</summary>
internal abstract record ChaosFault(TimeSpan Start, TimeSpan Duration)
{
    public TimeSpan End => Start + Duration;
}

/// <summary>Both directions cut.</summary>
internal sealed record Partition(TimeSpan Start, TimeSpan Duration) : ChaosFault(Start, Duration)
{
    public override string ToString() => $"partition {Ms(Start)}+{Ms(Duration)} ms";
    internal static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture);
}

/// <summary>One direction cut (<paramref name="From"/> no longer reaches the other end).</summary>
internal sealed record OneWayOutage(TimeSpan Start, TimeSpan Duration, LinkEnd From) : ChaosFault(Start, Duration)
{
    public override string ToString() => $"one-way outage from {From} {Partition.Ms(Start)}+{Partition.Ms(Duration)} ms";
}

/// <summary>
/// A's NAT gives it a new public port at <see cref="ChaosFault.Start"/>: from then on B sees A's datagrams come from a new
/// address, and what B sends to the old one (or sent before and still in flight) no longer reaches A.
/// </summary>
internal sealed record NatRebinding(TimeSpan Start) : ChaosFault(Start, TimeSpan.Zero)
{
    public override string ToString() => $"NAT rebinding of A at {Partition.Ms(Start)} ms";
}

/// <summary>
/// One seeded chaos scenario: the link's conditions in each direction (delay, jitter, loss, duplication, reordering, a
/// bottleneck) and the faults, in time order. Everything follows from <see cref="Seed"/>.
/// </summary>
internal sealed record ChaosScenario(int Seed, LinkConditions AToB, LinkConditions BToA, IReadOnlyList<ChaosFault> Faults,
    TimeSpan TrafficDuration, int MaxRetransmits, TimeSpan Lifetime)
{
    /// <summary>Messages and frames keep flowing this long after the last fault's reconnection bound.</summary>
    public static readonly TimeSpan AfterLastHeal = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Both ends are Connected again at most this long after a fault healed: 3 s after a partition or a one-way outage
    /// (media flows every 20 ms: the first datagram through brings ICE back); 7 s after a NAT rebinding (the peer's
    /// next check from its new address makes the new pair; that check comes when its side notices the silence, 2.5 s,
    /// or at its next consent check, 4-6 s). A rebinding in the traffic's first <see cref="EarlyRebinding"/> comes
    /// before the 2.5 s silence detection is armed (it needs 2.5 s of data first: IceAgentOptions.ReceiveSilenceTimeout),
    /// so the side notices by its 5 s disconnected timeout instead: 9 s (5 s, then the four messages of the move at up
    /// to 30 % loss; seed 96 took 7.0 s against the 7 s bound once in ten replays).
    /// </summary>
    public static TimeSpan ReconnectBound(ChaosFault fault) => fault switch
    {
        NatRebinding { Start: var start } when start < EarlyRebinding => TimeSpan.FromSeconds(9),
        NatRebinding => TimeSpan.FromSeconds(7),
        _ => TimeSpan.FromSeconds(3),
    };

    /// <summary>A rebinding before this (from the start of the traffic) comes before the silence detection is armed.</summary>
    public static readonly TimeSpan EarlyRebinding = TimeSpan.FromSeconds(3);

    /// <summary>When the last fault healed (relative to the start of the traffic), or zero without faults.</summary>
    public TimeSpan LastHeal => Faults.Count == 0 ? TimeSpan.Zero : Faults.Max(f => f.End);

    public static ChaosScenario FromSeed(int seed)
    {
        var r = new Random(seed);
        LinkConditions Direction(double loss, long rate, int queue)
        {
            var jitter = r.NextDouble() < 0.6 ? TimeSpan.FromMilliseconds(r.Next(1, 30)) : TimeSpan.Zero;
            return new LinkConditions
            {
                Delay = TimeSpan.FromMilliseconds(r.Next(5, 80)),
                Jitter = jitter,
                Loss = loss,
                Duplicate = r.NextDouble() < 0.5 ? r.NextDouble() * 0.05 : 0,
                Reorder = r.NextDouble() < 0.5 ? r.NextDouble() * 0.1 : 0,
                ReorderDelay = TimeSpan.FromMilliseconds(r.Next(10, 60)),
                RateBitsPerSecond = rate,
                QueueLimitBytes = queue,
            };
        }
        // Loss 0-30 %, the same order in both directions (some seeds asymmetric).
        var loss = r.NextDouble() * 0.30;
        var lossBack = r.NextDouble() < 0.3 ? r.NextDouble() * 0.30 : loss;
        var limited = r.NextDouble() < 0.5;
        long rate = limited ? r.Next(1_000, 6_000) * 1000L : 0;
        var queue = r.Next(16, 64) * 1024;
        var aToB = Direction(loss, rate, queue);
        var bToA = Direction(lossBack, limited && r.NextDouble() < 0.5 ? rate : 0, queue);

        // The faults, each in a slot of its own so that "after the heal" is well defined for each.
        var kinds = new List<int> { 0 };                      // a partition always
        if (r.NextDouble() < 0.3) kinds.Add(0);               // sometimes a second one
        if (r.NextDouble() < 0.6) kinds.Add(1);               // a one-way outage
        if (r.NextDouble() < 0.5) kinds.Add(2);               // a NAT rebinding
        for (var i = kinds.Count - 1; i > 0; i--) { var j = r.Next(i + 1); (kinds[i], kinds[j]) = (kinds[j], kinds[i]); }
        var faults = new List<ChaosFault>();
        var at = TimeSpan.FromSeconds(2);
        foreach (var kind in kinds)
        {
            var start = at + TimeSpan.FromMilliseconds(r.Next(0, 1000));
            // Mostly short partitions; now and then a long one (still far under the ICE failed timeout, 5 s + 25 s).
            var length = TimeSpan.FromMilliseconds(r.NextDouble() < 0.15 ? r.Next(6000, 12000) : r.Next(300, 5000));
            ChaosFault fault = kind switch
            {
                0 => new Partition(start, length),
                1 => new OneWayOutage(start, length, r.NextDouble() < 0.5 ? LinkEnd.A : LinkEnd.B),
                _ => new NatRebinding(start),
            };
            faults.Add(fault);
            // The next fault comes after this one's reconnection bound, so that each bound is checked alone.
            at = fault.End + ReconnectBound(fault) + TimeSpan.FromMilliseconds(r.Next(500, 2000));
        }
        var traffic = faults.Max(f => f.End + ReconnectBound(f)) + AfterLastHeal;
        return new ChaosScenario(seed, aToB, bToA, faults, traffic, r.Next(0, 4), TimeSpan.FromMilliseconds(r.Next(150, 1500)));
    }

    /// <summary>The longest a datagram can take from one end to the other under these conditions (queue, delay, jitter, reordering).</summary>
    public TimeSpan MaxOneWay(LinkConditions c)
    {
        var queue = c.RateBitsPerSecond > 0 ? TimeSpan.FromSeconds((c.QueueLimitBytes + 1500) * 8.0 / c.RateBitsPerSecond) : TimeSpan.Zero;
        return queue + c.Delay + c.Jitter + c.ReorderDelay + TimeSpan.FromMilliseconds(1);
    }

    public override string ToString()
    {
        static string Link(LinkConditions c) =>
            string.Create(CultureInfo.InvariantCulture,
                $"delay {c.Delay.TotalMilliseconds:0} ms, jitter {c.Jitter.TotalMilliseconds:0} ms, loss {c.Loss * 100:0.0} %, dup {c.Duplicate * 100:0.0} " +
                $"%, reorder {c.Reorder * 100:0.0} %/{c.ReorderDelay.TotalMilliseconds:0} ms")
            + (c.RateBitsPerSecond > 0 ? string.Create(CultureInfo.InvariantCulture,
                $", bottleneck {c.RateBitsPerSecond / 1000} kbit/s queue {c.QueueLimitBytes / 1024} KiB") : "");
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"seed {Seed}: A->B [{Link(AToB)}]; B->A [{Link(BToA)}]; ");
        sb.Append(string.Join("; ", Faults));
        sb.Append(CultureInfo.InvariantCulture,
            $"; traffic {TrafficDuration.TotalSeconds:0.0} s; max-retransmits {MaxRetransmits}, lifetime {Lifetime.TotalMilliseconds:0} ms");
        return sb.ToString();
    }
}
