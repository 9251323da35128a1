using Transport.TestKit;

namespace Transport.Sctp.Tests;

public sealed class DataTransferTests
{
    private const long TenMegabytes = 10L * 1024 * 1024;

    private static LinkConditions Lossy(double loss) => new()
    {
        Delay = TimeSpan.FromMilliseconds(10),
        Jitter = loss > 0 ? TimeSpan.FromMilliseconds(2) : TimeSpan.Zero,
        Loss = loss,
        Duplicate = loss > 0 ? 0.02 : 0,
        Reorder = loss > 0 ? 0.05 : 0,
        ReorderDelay = TimeSpan.FromMilliseconds(15),
    };

    /// <summary>Sends <paramref name="total"/> bytes as messages from A to B and checks every byte once, in order.</summary>
    private static (SctpPeer A, SctpPeer B, TwoPeerDriver D) TransferOrdered(double loss, long total, int messageSize, int seed = 7)
    {
        var link = new VirtualLink(seed, Lossy(loss), Lossy(loss));
        var (a, b, driver) = Pair.Connected(link);
        long sent = 0, received = 0;
        var mismatch = -1L;
        b.OnEvent = e =>
        {
            if (e.Kind != SctpEventKind.StreamMessage) return;
            var span = e.Data.Span;
            for (var i = 0; i < span.Length; i++)
                if (span[i] != Pair.Pattern(received + i) && mismatch < 0) mismatch = received + i;
            received += span.Length;
        };
        var buffer = new byte[messageSize];
        var ok = driver.RunUntil(() =>
        {
            while (sent < total && a.Association.OutboundBuffered < 1024 * 1024)
            {
                var n = (int)Math.Min(messageSize, total - sent);
                for (var i = 0; i < n; i++) buffer[i] = Pair.Pattern(sent + i);
                a.Association.SendMessage(1, Ppid.Binary, buffer.AsSpan(0, n));
                sent += n;
            }
            return received >= total || mismatch >= 0;
        }, TimeSpan.FromHours(2));
        Assert.True(mismatch < 0, $"byte {mismatch} differs (loss {loss})");
        Assert.True(ok, $"only {received} of {total} bytes arrived by {driver.Now} (loss {loss}); A {a.Association.State}, B {b.Association.State}");
        Assert.Equal(total, received);
        // Exactly once: nothing more arrives afterwards.
        driver.RunFor(TimeSpan.FromSeconds(5));
        Assert.Equal(total, received);
        Assert.True(a.Association.IsIdle);
        return (a, b, driver);
    }

    [Fact]
    public void TenMegabytesArriveExactlyOnceInOrderOnACleanLink()
    {
        var (a, b, d) = TransferOrdered(0, TenMegabytes, 16 * 1024);
        Assert.False(b.Association.TsnBitsHeld, "in-order data needs no TSN bits");
        var c = a.Association.Counters;
        Assert.True(c.Retransmissions == 0,
            $"rtx {c.Retransmissions} t3 {c.T3Expirations} fast {c.FastRetransmits} dupB {b.Association.Counters.DuplicateTsn} full " +
            $"{b.Association.Counters.ReceiveBufferFull} oow {b.Association.Counters.OutOfWindowTsn} time {d.Now}");
        Assert.True(d.Now < TimeSpan.FromSeconds(60), $"took {d.Now} of virtual time");
    }

    [Fact]
    public void TenMegabytesArriveExactlyOnceInOrderWithFivePercentLossReorderingAndDuplication()
    {
        var (a, b, d) = TransferOrdered(0.05, TenMegabytes, 16 * 1024);
        // Gaps made the receiver track TSNs; once idle (no heartbeats here) the owner's trim lets the bits go.
        b.Association.TrimIdle();
        Assert.False(b.Association.TsnBitsHeld);
        Assert.True(d.Link.Dropped > 100);
        Assert.True(a.Association.Counters.Retransmissions > 0);
        Assert.True(a.Association.Counters.FastRetransmits > 0);
        Assert.True(b.Association.Counters.DuplicateTsn > 0);
    }

    [Fact]
    public void TenMegabytesArriveExactlyOnceInOrderWithTwentyPercentLossReorderingAndDuplication()
    {
        var (a, _, d) = TransferOrdered(0.20, TenMegabytes, 16 * 1024);
        Assert.True(d.Link.Dropped > 1000);
        Assert.True(a.Association.Counters.Retransmissions > 1000);
    }

    [Fact]
    public void SmallMessagesAreBundledIntoFewPackets()
    {
        var (a, b, d) = Pair.Connected();
        var count = 0;
        b.OnEvent = e => { if (e.Kind == SctpEventKind.StreamMessage) count++; };
        var before = d.Link.SentFrom(LinkEnd.A);
        for (var i = 0; i < 100; i++) a.Association.SendMessage(2, Ppid.Binary, new byte[40]);
        d.RunUntil(() => count == 100, TimeSpan.FromSeconds(10));
        Assert.Equal(100, count);
        // 100 chunks of 56 bytes: about 20 per 1163-byte packet.
        Assert.True(d.Link.SentFrom(LinkEnd.A) - before <= 8, $"{d.Link.SentFrom(LinkEnd.A) - before} packets");
    }

    [Fact]
    public void UnorderedDeliversEveryMessageUnderLoss()
    {
        var link = new VirtualLink(3, Lossy(0.1), Lossy(0.1));
        var (a, b, driver) = Pair.Connected(link);
        const int count = 2000;
        var seen = new int[count];
        var corrupt = 0;
        b.OnEvent = e =>
        {
            if (e.Kind != SctpEventKind.StreamMessage) return;
            var s = e.Data.Span;
            var index = BitConverterLe(s);
            seen[index]++;
            for (var i = 4; i < s.Length; i++) if (s[i] != (byte)(index + i)) corrupt++;
        };
        var buf = new byte[3000];
        for (var m = 0; m < count; m++)
        {
            var len = 4 + (m * 37) % 2996;
            buf[0] = (byte)m; buf[1] = (byte)(m >> 8); buf[2] = 0; buf[3] = 0;
            for (var i = 4; i < len; i++) buf[i] = (byte)(m + i);
            a.Association.SendMessage(3, Ppid.Binary, buf.AsSpan(0, len), unordered: true);
        }
        Assert.True(driver.RunUntil(() => seen.All(x => x > 0), TimeSpan.FromMinutes(30)));
        driver.RunFor(TimeSpan.FromSeconds(5));
        Assert.All(seen, x => Assert.Equal(1, x));
        Assert.Equal(0, corrupt);

        static int BitConverterLe(ReadOnlySpan<byte> s) => s[0] | (s[1] << 8);
    }

    [Fact]
    public void DelayedSackIsSentAfterTheDelayedAckTimeout()
    {
        var (a, b, d) = Pair.Connected(new VirtualLink(1, LinkConditions.Clean(TimeSpan.FromMilliseconds(10)),
            LinkConditions.Clean(TimeSpan.FromMilliseconds(10))));
        d.RunFor(TimeSpan.FromSeconds(1));
        var start = d.Now;
        var bSent = d.Link.SentFrom(LinkEnd.B);
        a.Association.SendMessage(1, Ppid.Binary, new byte[100]);
        d.Flush();
        Assert.Equal(SctpTimer.T3Rtx, a.Association.PollTimeout(out var timer) is not null ? timer : SctpTimer.None);
        // One packet with DATA: B waits 200 ms before its SACK.
        var log = new List<string>();
        d.Link.AddFilter(LinkEnd.B, m => { log.Add($"{d.Now} type {m.Span[12]} len {m.Length}"); return false; }, _ => FilterAction.Pass);
        d.RunUntil(() => d.Link.SentFrom(LinkEnd.B) > bSent, TimeSpan.FromSeconds(1));
        Assert.True(b.Association.PollTimeout(out var bTimer) is null || bTimer != SctpTimer.DelayedAck);
        Assert.True(log.Count == 1 && d.Now == start + TimeSpan.FromMilliseconds(210), string.Join("; ", log) + $" start {start} bSent {bSent}");
        Assert.Equal(start + TimeSpan.FromMilliseconds(10) + TimeSpan.FromMilliseconds(200), d.Now - TimeSpan.Zero);
    }

    [Fact]
    public void SackIsImmediateWithAGapBlockWhenAPacketIsMissing()
    {
        var (a, b, d) = Pair.Connected();
        d.RunFor(TimeSpan.FromSeconds(1));
        var sacks = new List<(TimeSpan At, int Gaps, uint Cum)>();
        d.Link.AddFilter(LinkEnd.B, m =>
        {
            var s = m.Span;
            if (s[12] == 3)
                sacks.Add((d.Now, System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(s[(12 + 12)..]),
                    System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(s[(12 + 4)..])));
            return false;
        }, _ => FilterAction.Pass);
        // Drop the first DATA packet: the second arrives with a gap.
        d.Link.DropNth(LinkEnd.A, 1, m => m.Span[12] == 0);
        var start = d.Now;
        a.Association.SendMessage(1, Ppid.Binary, new byte[1000], now: d.Now);
        a.Association.SendMessage(1, Ppid.Binary, new byte[1000], now: d.Now);
        d.RunUntil(() => sacks.Count > 0, TimeSpan.FromSeconds(1));
        Assert.Equal(start + TimeSpan.FromMilliseconds(10), sacks[0].At); // no 200 ms delay
        Assert.Equal(1, sacks[0].Gaps);
    }
}
