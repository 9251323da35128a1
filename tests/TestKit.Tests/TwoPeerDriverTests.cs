namespace Transport.TestKit.Tests;

public sealed class TwoPeerDriverTests
{
    /// <summary>A toy peer: sends a ping at each deadline (every Interval) and answers every ping with a pong.</summary>
    private sealed class PingPeer(TimeSpan? firstPing, TimeSpan interval) : IVirtualPeer
    {
        private readonly Queue<byte[]> _out = new();
        private TimeSpan? _next = firstPing;
        public List<(TimeSpan At, byte Kind)> Received { get; } = new();
        public List<TimeSpan> TimeoutsHandled { get; } = new();

        public void HandleDatagram(ReadOnlySpan<byte> d, TimeSpan now)
        {
            Received.Add((now, d[0]));
            if (d[0] == 1) _out.Enqueue([2]);
        }

        public void HandleTimeout(TimeSpan now)
        {
            TimeoutsHandled.Add(now);
            _out.Enqueue([1]);
            _next = now + interval;
        }

        public bool TryPollTransmit(Span<byte> dest, out int written)
        {
            if (_out.TryDequeue(out var p)) { p.CopyTo(dest); written = p.Length; return true; }
            written = 0; return false;
        }

        public TimeSpan? PollTimeout() => _next;
    }

    [Fact]
    public void AdvancesToTheEarliestOfDeadlineAndDelivery()
    {
        var a = new PingPeer(TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1));
        var b = new PingPeer(null, TimeSpan.Zero);
        var driver = new TwoPeerDriver(a, b,
            new VirtualLink(1, LinkConditions.Clean(TimeSpan.FromMilliseconds(20)), LinkConditions.Clean(TimeSpan.FromMilliseconds(30))));

        Assert.True(driver.Progress());
        Assert.Equal(TimeSpan.FromMilliseconds(100), driver.Now);          // A's deadline
        Assert.True(driver.Progress());
        Assert.Equal(TimeSpan.FromMilliseconds(120), driver.Now);          // ping arrives at B
        Assert.Equal([(TimeSpan.FromMilliseconds(120), (byte)1)], b.Received);
        Assert.True(driver.Progress());
        Assert.Equal(TimeSpan.FromMilliseconds(150), driver.Now);          // pong arrives at A
        Assert.Equal([(TimeSpan.FromMilliseconds(150), (byte)2)], a.Received);
        Assert.True(driver.Progress());
        Assert.Equal(TimeSpan.FromMilliseconds(1100), driver.Now);         // A's next deadline
    }

    [Fact]
    public void RunUntilStopsWhenTheConditionHolds()
    {
        var a = new PingPeer(TimeSpan.Zero, TimeSpan.FromSeconds(1));
        var b = new PingPeer(null, TimeSpan.Zero);
        var driver = new TwoPeerDriver(a, b);
        Assert.True(driver.RunUntil(() => a.Received.Count == 5, TimeSpan.FromMinutes(1)));
        Assert.Equal(TimeSpan.FromSeconds(4) + TimeSpan.FromMilliseconds(20), driver.Now);
    }

    [Fact]
    public void RunUntilGivesUpAtTheVirtualTimeLimit()
    {
        var a = new PingPeer(TimeSpan.Zero, TimeSpan.FromSeconds(1));
        var b = new PingPeer(null, TimeSpan.Zero);
        var driver = new TwoPeerDriver(a, b);
        driver.Link.Cut = true;
        Assert.False(driver.RunUntil(() => a.Received.Count > 0, TimeSpan.FromSeconds(10)));
        Assert.Equal(TimeSpan.FromSeconds(10), driver.Now);
        Assert.Equal(11, a.TimeoutsHandled.Count);                          // 0 s .. 10 s inclusive
    }

    [Fact]
    public void RunUntilReturnsWhenNothingIsPending()
    {
        var a = new PingPeer(null, TimeSpan.Zero);
        var b = new PingPeer(null, TimeSpan.Zero);
        var driver = new TwoPeerDriver(a, b);
        Assert.False(driver.RunUntil(() => false, TimeSpan.FromHours(1)));
        Assert.Equal(0, driver.Steps);
    }

    [Fact]
    public void LossOnTheLinkIsSeenByThePeers()
    {
        var a = new PingPeer(TimeSpan.Zero, TimeSpan.FromSeconds(1));
        var b = new PingPeer(null, TimeSpan.Zero);
        var link = new VirtualLink(5);
        link.DropNth(LinkEnd.A, 2, d => d.Span[0] == 1);
        var driver = new TwoPeerDriver(a, b, link);
        driver.RunFor(TimeSpan.FromSeconds(3.5));
        Assert.Equal(3, b.Received.Count);                                    // pings at 0,1,2,3 s; the one at 1 s lost
        Assert.Equal(TimeSpan.FromSeconds(3.5), driver.Now);
    }
}
