using Transport.Streaming.Io;

namespace Transport.Streaming.Tests.Io;

/// <summary>The actor's input queue: first in first out, no storage while empty, several producers and one consumer.</summary>
public sealed class LeanQueueTests
{
    [Fact]
    public void KeepsOrderAcrossGrowthAndHoldsNoStorageOnceReleasedEmpty()
    {
        var q = new LeanQueue<int>();
        Assert.Equal(0, q.Capacity);
        Assert.False(q.TryDequeue(out _));
        // Wrap the ring before it grows, so growth must keep the order from the middle of the ring.
        for (var i = 0; i < 10; i++) q.Enqueue(i);
        for (var i = 0; i < 8; i++) { Assert.True(q.TryDequeue(out var x)); Assert.Equal(i, x); }
        for (var i = 10; i < 200; i++) q.Enqueue(i);
        Assert.Equal(192, q.Count);
        Assert.True(q.Capacity >= 192);
        q.ReleaseIfEmpty();   // not empty: kept
        Assert.True(q.Capacity >= 192);
        for (var i = 8; i < 200; i++) { Assert.True(q.TryDequeue(out var x)); Assert.Equal(i, x); }
        Assert.True(q.IsEmpty);
        Assert.False(q.TryDequeue(out _));
        q.ReleaseIfEmpty();
        Assert.Equal(0, q.Capacity);
        q.Enqueue(7);   // rents again
        Assert.True(q.TryDequeue(out var again));
        Assert.Equal(7, again);
    }

    [Fact]
    public void ManyProducersOneConsumerLoseAndDuplicateNothing()
    {
        const int producers = 4, each = 20_000;
        var q = new LeanQueue<long>();
        var seen = new bool[producers * each];
        var taken = 0;
        var tasks = Enumerable.Range(0, producers).Select(p => Task.Run(() =>
        {
            for (var i = 0; i < each; i++) q.Enqueue((long)p * each + i);
        })).ToArray();
        var last = new long[producers];
        Array.Fill(last, -1);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (taken < producers * each && DateTime.UtcNow < deadline)
        {
            if (!q.TryDequeue(out var v)) { q.ReleaseIfEmpty(); Thread.Yield(); continue; }
            Assert.False(seen[v]);
            seen[v] = true;
            var producer = (int)(v / each);
            Assert.True(v > last[producer], "one producer's items come in its order");
            last[producer] = v;
            taken++;
        }
        Task.WaitAll(tasks, TimeSpan.FromSeconds(30));
        Assert.Equal(producers * each, taken);
        Assert.DoesNotContain(false, seen);
        q.ReleaseIfEmpty();
        Assert.Equal(0, q.Capacity);
    }
}
