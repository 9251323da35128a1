using Transport.TestKit;

namespace Transport.Sctp.Tests;

public sealed class PartialReliabilityTests
{
    [Fact]
    public void MaxRetransmitsZeroUnderTwentyPercentLossDropsMessagesNeverStallsAndForwardTsnMovesTheCumulativeAck()
    {
        var cond = new LinkConditions { Delay = TimeSpan.FromMilliseconds(10), Loss = 0.2 };
        var (a, b, d) = Pair.Connected(new VirtualLink(21, cond, cond));
        var ch = a.Association.CreateDataChannel("pr", new DataChannelOptions { MaxRetransmits = 0 }, d.Now);
        d.RunUntil(() => b.Has(SctpEventKind.ChannelOpen), TimeSpan.FromSeconds(30));
        var received = new List<int>();
        b.OnEvent = e =>
        {
            if (e.Kind == SctpEventKind.ChannelMessage) received.Add(e.Data.Span[0] | (e.Data.Span[1] << 8));
        };
        const int count = 3000;
        var payload = new byte[700];
        var sent = 0;
        var finished = d.RunUntil(() =>
        {
            while (sent < count && ch.BufferedAmount < 32 * 1024)
            {
                payload[0] = (byte)sent;
                payload[1] = (byte)(sent >> 8);
                ch.Send(payload);
                sent++;
            }
            return sent == count && a.Association.IsIdle;
        }, TimeSpan.FromMinutes(10));
        Assert.True(finished, $"stalled at {d.Now}: sent {sent}, received {received.Count}");
        Assert.True(d.Now < TimeSpan.FromMinutes(2), $"took {d.Now}");
        Assert.True(received.Count < count, "nothing was dropped");
        Assert.True(received.Count > count / 2, $"only {received.Count} arrived");
        // Ordered channel: what arrives, arrives in order.
        for (var i = 1; i < received.Count; i++) Assert.True(received[i] > received[i - 1]);
        Assert.True(a.Association.Counters.AbandonedMessages > 0);
        Assert.True(a.Association.Counters.ForwardTsnSent > 0);
        Assert.True(b.Association.Counters.ForwardTsnReceived > 0);
        Assert.Equal(0, a.Association.Counters.Retransmissions);
        // FORWARD TSN moved the receiver's cumulative TSN over every abandoned chunk.
        Assert.Equal(a.Association.CumulativeTsnAcked, b.Association.CumulativeTsnReceived);
        Assert.Equal(0, b.Association.HeldFragments);
        Assert.Equal(0, b.Association.ReceiveBuffered);
    }

    [Fact]
    public void UnorderedLifetimeMessagesExpireWhileTheLinkIsCutAndLaterOnesArrive()
    {
        var (a, b, d) = Pair.Connected();
        var ch = a.Association.CreateDataChannel("t", new DataChannelOptions { Ordered = false, MaxPacketLifetime = TimeSpan.FromMilliseconds(300) }, d.Now);
        d.RunUntil(() => b.Has(SctpEventKind.ChannelOpen) && ch.AcknowledgedByPeer, TimeSpan.FromSeconds(5));
        var got = new List<byte>();
        b.OnEvent = e => { if (e.Kind == SctpEventKind.ChannelMessage) got.Add(e.Data.Span[0]); };
        d.Link.Cut = true;
        for (byte i = 0; i < 20; i++) ch.Send(new byte[] { i, 0, 0 }, true, d.Now);
        d.RunFor(TimeSpan.FromSeconds(2));
        d.Link.Cut = false;
        for (byte i = 100; i < 110; i++) ch.Send(new byte[] { i, 0, 0 }, true, d.Now);
        d.RunUntil(() => a.Association.IsIdle && got.Count >= 10, TimeSpan.FromSeconds(60));
        Assert.Equal(Enumerable.Range(100, 10).Select(x => (byte)x), got.Where(x => x >= 100).OrderBy(x => x));
        Assert.DoesNotContain(got, x => x < 100);
        Assert.Equal(20, a.Association.Counters.AbandonedMessages);
        Assert.Equal(a.Association.CumulativeTsnAcked, b.Association.CumulativeTsnReceived);
    }

    [Fact]
    public void FragmentedPartialReliableMessagesAreDroppedWholeUnderLoss()
    {
        var cond = new LinkConditions { Delay = TimeSpan.FromMilliseconds(10), Loss = 0.15 };
        var (a, b, d) = Pair.Connected(new VirtualLink(5, cond, cond));
        var sizes = new List<int>();
        var corrupt = 0;
        b.OnEvent = e =>
        {
            if (e.Kind != SctpEventKind.StreamMessage) return;
            sizes.Add(e.Data.Length);
            var s = e.Data.Span;
            for (var i = 1; i < s.Length; i++) if (s[i] != (byte)(s[0] + i)) corrupt++;
        };
        var buf = new byte[5000];
        for (var m = 0; m < 300; m++)
        {
            for (var i = 0; i < buf.Length; i++) buf[i] = (byte)(m + i);
            a.Association.SendMessage(4, Ppid.Binary, buf, maxRetransmits: 1);
        }
        Assert.True(d.RunUntil(() => a.Association.IsIdle, TimeSpan.FromMinutes(5)));
        Assert.All(sizes, s => Assert.Equal(5000, s));
        Assert.Equal(0, corrupt);
        Assert.True(sizes.Count < 300);
        Assert.Equal(0, b.Association.HeldFragments);
    }
    /// <summary>
    /// FORWARD TSN on a receiver that holds part of a reliable message: large reliable messages on one stream, small
    /// abandoned ones (max-retransmits 0) around each of them on another, under loss and a bottleneck. Every reliable
    /// message must arrive, whole, in order, while FORWARD TSNs move the cumulative TSN over the abandoned ones
    /// (docs/sctp.md: the receiver drops only a message that misses a fragment at or below the new cumulative TSN or
    /// whose continuation is already behind it).
    /// </summary>
    [Fact]
    public void ForwardTsnNeverDropsAReliableMessageBeingFragmented()
    {
        for (var seed = 1; seed <= 6; seed++)
        {
            var cond = new LinkConditions { Delay = TimeSpan.FromMilliseconds(20), Loss = 0.15, RateBitsPerSecond = 2_000_000, QueueLimitBytes = 32 * 1024 };
            var (a, b, d) = Pair.Connected(new VirtualLink(seed, cond, cond));
            var reliable = new List<int>();
            var corrupt = 0;
            b.OnEvent = e =>
            {
                if (e.Kind != SctpEventKind.StreamMessage || e.StreamId != 1) return;
                var span = e.Data.Span;
                var m = span[0] | (span[1] << 8);
                if (span.Length != 12_000) corrupt++;
                for (var k = 2; k < span.Length; k++) if (span[k] != (byte)(m + k)) { corrupt++; break; }
                reliable.Add(m);
            };
            const int count = 40;
            var buf = new byte[12_000];
            var small = new byte[300];
            var sent = 0;
            var done = d.RunUntil(() =>
            {
                while (sent < count && a.Association.OutboundBuffered < 64 * 1024)
                {
                    buf[0] = (byte)sent;
                    buf[1] = (byte)(sent >> 8);
                    for (var k = 2; k < buf.Length; k++) buf[k] = (byte)(sent + k);
                    a.Association.SendMessage(2, Ppid.Binary, small, maxRetransmits: 0);
                    a.Association.SendMessage(1, Ppid.Binary, buf);
                    a.Association.SendMessage(2, Ppid.Binary, small, maxRetransmits: 0);
                    sent++;
                }
                return sent == count && reliable.Count == count;
            }, TimeSpan.FromMinutes(5));
            Assert.True(done, $"seed {seed}: {reliable.Count} of {count} reliable messages after {d.Now} (abandoned " +
                $"{a.Association.Counters.AbandonedMessages}, FORWARD TSN {a.Association.Counters.ForwardTsnSent})");
            Assert.Equal(Enumerable.Range(0, count), reliable);
            Assert.Equal(0, corrupt);
            Assert.True(a.Association.Counters.ForwardTsnSent > 0, $"seed {seed}: no FORWARD TSN, nothing tested");
        }
    }
}
