using Transport.TestKit;

namespace Transport.Sctp.Tests;

/// <summary>
/// SctpOptions.MaxUnreadBytes: delivered bytes count against the advertised window until the application releases
/// them (RFC 9260 section 6.2), so a reader that does not read makes the sender wait instead of our memory grow.
/// </summary>
public sealed class BackpressureTests
{
    private const int MaxUnread = 256 * 1024;
    private const int MessageSize = 8 * 1024;

    [Fact]
    public void AReaderThatDoesNotReadClosesTheWindowAndStopsTheSenderThenEverythingArrivesInOrder()
    {
        var link = new VirtualLink(3, new LinkConditions { Delay = TimeSpan.FromMilliseconds(10) },
            new LinkConditions { Delay = TimeSpan.FromMilliseconds(10) });
        var (a, b, d) = Pair.Connected(link, b: new SctpOptions { MaxUnreadBytes = MaxUnread });
        var ch = a.Association.CreateDataChannel("bulk", now: d.Now);
        Assert.True(d.RunUntil(() => ch.AcknowledgedByPeer, TimeSpan.FromSeconds(5)));

        // The application keeps what it was given and does not read it: copies queue up unreleased.
        var held = new Queue<byte[]>();
        b.OnEvent = e => { if (e.Kind == SctpEventKind.ChannelMessage) held.Enqueue(e.Data.ToArray()); };
        const long total = 4L * 1024 * 1024; // 16 times the bound
        long sent = 0;
        var buffer = new byte[MessageSize];
        void Feed()
        {
            while (sent < total && ch.BufferedAmount < 1024 * 1024)
            {
                for (var i = 0; i < MessageSize; i++) buffer[i] = Pair.Pattern(sent + i);
                ch.Send(buffer);
                sent += MessageSize;
            }
        }
        long maxHeld = 0;
        var stalledAt = TimeSpan.Zero;
        // Two minutes of virtual time without reading: many zero window probes and T3 expirations on the sender.
        var end = d.Now + TimeSpan.FromMinutes(2);
        d.RunUntil(() =>
        {
            Feed();
            maxHeld = Math.Max(maxHeld, (long)b.Association.UnreadBytes + b.Association.ReceiveBuffered);
            return false;
        }, end - d.Now);

        var unread = b.Association.UnreadBytes;
        Assert.Equal(unread, held.Sum(m => (long)m.Length));
        Assert.True(unread >= MaxUnread - 2 * MessageSize, $"unread {unread}: the reader should have been given about the bound");
        Assert.True(maxHeld <= MaxUnread + 64 * 1024, $"held {maxHeld} bytes, bound {MaxUnread} + 64 KiB reserve");
        Assert.True(sent - held.Sum(m => (long)m.Length) > 512 * 1024, "the sender should be holding what it could not send");
        Assert.True(a.Association.Counters.T3Expirations > 0, "the sender should have probed the closed window");
        Assert.Equal(SctpState.Established, a.Association.State); // probes answered by SACKs do not fail the association
        Assert.Equal(SctpState.Established, b.Association.State);

        // Now the application reads: every byte arrives once, in order.
        long received = 0;
        var mismatch = -1L;
        void Consume(byte[] m)
        {
            for (var i = 0; i < m.Length; i++) if (m[i] != Pair.Pattern(received + i) && mismatch < 0) mismatch = received + i;
            received += m.Length;
            b.Association.ReleaseReceived(m.Length);
        }
        b.OnEvent = e => { if (e.Kind == SctpEventKind.ChannelMessage) held.Enqueue(e.Data.ToArray()); };
        var ok = d.RunUntil(() =>
        {
            Feed();
            while (held.Count > 0) Consume(held.Dequeue());
            maxHeld = Math.Max(maxHeld, (long)b.Association.UnreadBytes + b.Association.ReceiveBuffered);
            return received >= total;
        }, TimeSpan.FromMinutes(10));
        Assert.True(ok, $"only {received} of {total} arrived by {d.Now}");
        Assert.True(mismatch < 0, $"byte {mismatch} differs");
        Assert.Equal(total, received);
        Assert.Equal(0, b.Association.UnreadBytes);
        Assert.True(maxHeld <= MaxUnread + 64 * 1024, $"held {maxHeld} bytes");
    }
}
