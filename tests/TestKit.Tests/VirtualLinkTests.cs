namespace Transport.TestKit.Tests;

public sealed class VirtualLinkTests
{
    private static byte[] Packet(int i) => [(byte)i, (byte)(i >> 8)];

    private static List<(TimeSpan At, int Id)> DeliverAll(VirtualLink link, LinkEnd to)
    {
        var got = new List<(TimeSpan, int)>();
        for (var guard = 0; guard < 100_000 && link.NextDelivery is { } due; guard++)
            while (link.TryReceive(to, due, out var d)) got.Add((due, d.Data[0] | d.Data[1] << 8));
        return got;
    }

    [Fact]
    public void DeliversAfterTheConfiguredDelay()
    {
        var link = new VirtualLink(aToB: LinkConditions.Clean(TimeSpan.FromMilliseconds(25)));
        link.Send(LinkEnd.A, Packet(7), TimeSpan.FromMilliseconds(100));
        Assert.Equal(TimeSpan.FromMilliseconds(125), link.NextDelivery);
        Assert.False(link.TryReceive(LinkEnd.B, TimeSpan.FromMilliseconds(124), out _));
        Assert.False(link.TryReceive(LinkEnd.A, TimeSpan.FromMilliseconds(125), out _));
        Assert.True(link.TryReceive(LinkEnd.B, TimeSpan.FromMilliseconds(125), out var d));
        Assert.Equal(Packet(7), d.Data);
        Assert.Equal(LinkEnd.A, d.From);
        Assert.Null(link.NextDelivery);
    }

    [Fact]
    public void SameSeedGivesSameDeliveries()
    {
        var cond = new LinkConditions
        {
            Delay = TimeSpan.FromMilliseconds(5),
            Jitter = TimeSpan.FromMilliseconds(20),
            Loss = 0.2,
            Duplicate = 0.1,
            Reorder = 0.1
        };
        List<(TimeSpan, int)> Run(int seed)
        {
            var link = new VirtualLink(seed, cond, cond);
            for (var i = 0; i < 500; i++) link.Send(LinkEnd.A, Packet(i), TimeSpan.FromMilliseconds(i));
            return DeliverAll(link, LinkEnd.B);
        }
        Assert.Equal(Run(42), Run(42));
        Assert.NotEqual(Run(42), Run(43));
    }

    [Fact]
    public void LossDuplicationAndReorderingHappenAtRoughlyTheConfiguredRates()
    {
        var link = new VirtualLink(7, new LinkConditions
        {
            Delay = TimeSpan.FromMilliseconds(10),
            Loss = 0.1,
            Duplicate = 0.05,
            Reorder = 0.1,
            ReorderDelay = TimeSpan.FromMilliseconds(50)
        });
        const int n = 10_000;
        for (var i = 0; i < n; i++) link.Send(LinkEnd.A, Packet(i), TimeSpan.FromMilliseconds(i));
        var got = DeliverAll(link, LinkEnd.B);
        var unique = got.Select(g => g.Id).Distinct().Count();
        Assert.InRange(n - unique, 850, 1150);              // about 10 % lost
        Assert.InRange(got.Count - unique, 350, 600);        // about 5 % of the survivors duplicated
        var outOfOrder = got.Zip(got.Skip(1)).Count(p => p.Second.Id < p.First.Id);
        Assert.InRange(outOfOrder, 600, 1200);               // about 10 % held back and overtaken
        Assert.Equal(link.Dropped, n - unique);
    }

    [Fact]
    public void JitterStaysWithinItsBound()
    {
        var link = new VirtualLink(3, new LinkConditions { Delay = TimeSpan.FromMilliseconds(10), Jitter = TimeSpan.FromMilliseconds(5) });
        for (var i = 0; i < 1000; i++) link.Send(LinkEnd.A, Packet(i), TimeSpan.FromSeconds(i));
        var got = DeliverAll(link, LinkEnd.B);
        Assert.Equal(1000, got.Count);
        foreach (var (at, id) in got)
            Assert.InRange(at - TimeSpan.FromSeconds(id), TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(15));
        Assert.Contains(got, g => g.At - TimeSpan.FromSeconds(g.Id) > TimeSpan.FromMilliseconds(12));
    }

    [Fact]
    public void CutDropsNewDatagramsOneWayUntilRestored()
    {
        var link = new VirtualLink();
        link.Send(LinkEnd.A, Packet(1), TimeSpan.Zero);
        link.CutAToB = true;
        link.Send(LinkEnd.A, Packet(2), TimeSpan.Zero);
        link.Send(LinkEnd.B, Packet(3), TimeSpan.Zero);
        link.CutAToB = false;
        link.Send(LinkEnd.A, Packet(4), TimeSpan.Zero);
        Assert.Equal([1, 4], DeliverAll(link, LinkEnd.B).Select(g => g.Id));
        Assert.Equal([3], DeliverAll(link, LinkEnd.A).Select(g => g.Id));
        Assert.Equal(1, link.Dropped);
    }

    [Fact]
    public void FilterDropsTheNthMatchingDatagramOnly()
    {
        var link = new VirtualLink();
        link.DropNth(LinkEnd.A, 3, d => d.Span[0] % 2 == 0);
        for (var i = 0; i < 10; i++) link.Send(LinkEnd.A, Packet(i), TimeSpan.Zero);
        for (var i = 0; i < 10; i++) link.Send(LinkEnd.B, Packet(i), TimeSpan.Zero);
        // Even ids from A: 0, 2, 4 -> the third, 4, is dropped. B is not filtered.
        Assert.Equal([0, 1, 2, 3, 5, 6, 7, 8, 9], DeliverAll(link, LinkEnd.B).Select(g => g.Id));
        Assert.Equal(10, DeliverAll(link, LinkEnd.A).Count);
    }

    [Fact]
    public void BottleneckSerializesAtItsRateAndDropsWhenItsQueueIsFull()
    {
        // 80 kbit/s: a 1000-byte datagram takes 100 ms to serialize; the queue holds 2500 bytes.
        var link = new VirtualLink(aToB: new LinkConditions { Delay = TimeSpan.FromMilliseconds(10), RateBitsPerSecond = 80_000, QueueLimitBytes = 2500 });
        byte[] Big(int i) { var b = new byte[1000]; b[0] = (byte)i; return b; }
        for (var i = 0; i < 5; i++) link.Send(LinkEnd.A, Big(i), TimeSpan.Zero);
        Assert.Equal(TimeSpan.FromMilliseconds(200), link.QueueDelay(LinkEnd.A, TimeSpan.Zero));
        Assert.Equal(3, link.QueueDropped);
        var got = DeliverAll(link, LinkEnd.B);
        Assert.Equal([(TimeSpan.FromMilliseconds(110), 0), (TimeSpan.FromMilliseconds(210), 1)], got);
        // Once the queue has drained, a new datagram goes through at once (plus its own serialization).
        link.Send(LinkEnd.A, Big(7), TimeSpan.FromSeconds(1));
        Assert.Equal([(TimeSpan.FromMilliseconds(1110), 7)], DeliverAll(link, LinkEnd.B));
        Assert.Equal(TimeSpan.Zero, link.QueueDelay(LinkEnd.B, TimeSpan.Zero));
    }
}
