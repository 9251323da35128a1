using Transport.Rtp.Rtcp;
using Transport.Rtp.Streams;

namespace Transport.Rtp.Tests.Streams;

/// <summary>
/// The transport-cc feedback we send for the packets a peer numbers, on virtual time: when it is sent, what it reports
/// (every number, received or not, with its arrival in 250 us steps), and the edges (wrap, reordering across a
/// feedback, long silences, backlogs, duplicates). The byte layout is checked against a message worked out by hand from
/// draft-holmer-rmcat-transport-wide-cc-extensions-01 section 3.1; Chromium's estimator reading it is in
/// tests/Streaming.Tests (ChromiumTransportCcTests).
/// </summary>
public class TransportCcReceiverTests
{
    private static TimeSpan Ms(double ms) => TimeSpan.FromTicks((long)(ms * TimeSpan.TicksPerMillisecond));

    private static (TransportCcPacketStatus[] Packets, byte FeedbackCount, uint MediaSsrc) Decode(byte[] buffer, int length)
    {
        var e = RtcpCompound.Enumerate(buffer.AsSpan(0, length));
        Assert.True(e.MoveNext());
        Assert.True(RtcpFeedback.TryRead(e.Current, out RtcpFeedback fb));
        Assert.True(fb.IsTransportCc);
        Assert.False(e.MoveNext());
        var decoded = new TransportCcPacketStatus[1024];
        Assert.True(TransportCcFeedback.TryRead(fb.Fci, decoded, out int count, out byte fbCount));
        return (decoded[..count], fbCount, fb.MediaSsrc);
    }

    private static List<(TransportCcPacketStatus[] Packets, byte FeedbackCount, uint MediaSsrc)> Drain(TransportCcReceiver r, TimeSpan now)
    {
        var list = new List<(TransportCcPacketStatus[], byte, uint)>();
        var buffer = new byte[1500];
        while (r.TryWriteFeedback(buffer, 0x5EED, now, out int n)) list.Add(Decode(buffer, n));
        return list;
    }

    [Fact]
    public void TheMessageHasTheDraftsLayoutByteForByte()
    {
        // Worked by hand: seq 10 at 129 ms, 11 lost, 12 at 129.5 ms, 13 at 200 ms. Reference time 2 (128 ms); deltas
        // 4 and 2 (one octet, symbol 1) and 282 (two octets, symbol 2); one two-bit status vector chunk
        // 1 1 01 00 01 10 00 00 00 = 0xD180; FCI 8 + 2 + 4 = 14 bytes, zero-padded to 16; length (12 + 16) / 4 - 1 = 6.
        var r = new TransportCcReceiver();
        r.OnPacket(10, 0xAABBCCDD, Ms(129));
        r.OnPacket(12, 0xAABBCCDD, Ms(129.5));
        r.OnPacket(13, 0xAABBCCDD, Ms(200));
        var buffer = new byte[100];
        Assert.True(r.TryWriteNow(buffer, 0x11223344, Ms(200), out int n));
        Assert.Equal("8FCD0006" + "11223344" + "AABBCCDD" + "000A0004" + "00000200" + "D1800402" + "011A0000", Convert.ToHexString(buffer, 0, n));
    }

    [Fact]
    public void TheFirstFeedbackGoesAtOnceThenOneEveryIntervalAndNoneWhileNothingArrives()
    {
        var r = new TransportCcReceiver(new TransportCcReceiverOptions { Interval = Ms(100) });
        Assert.Null(r.PollTimeout());

        r.OnPacket(1000, 7, Ms(1000));
        Assert.Equal(TimeSpan.Zero, r.PollTimeout());          // the first packet: at once
        var first = Assert.Single(Drain(r, Ms(1000)));
        Assert.Equal(new TransportCcPacketStatus(1000, true, 1_000_000), Assert.Single(first.Packets));
        Assert.Equal(0, first.FeedbackCount);
        Assert.Equal(7u, first.MediaSsrc);
        Assert.Null(r.PollTimeout());                           // nothing waits: no timer

        // 20 packets every 5 ms: one message 100 ms after the last, covering all of them with exact arrivals.
        for (int i = 1; i <= 20; i++) r.OnPacket((ushort)(1000 + i), 7, Ms(1000 + 5 * i));
        Assert.Equal(Ms(1100), r.PollTimeout());
        Assert.Empty(Drain(r, Ms(1099.9)));
        var second = Assert.Single(Drain(r, Ms(1100)));
        Assert.Equal(1, second.FeedbackCount);
        Assert.Equal(Enumerable.Range(1, 20).Select(i => new TransportCcPacketStatus((ushort)(1000 + i), true, (1000 + 5 * i) * 1000L)), second.Packets);
        Assert.Null(r.PollTimeout());
        Assert.Equal(2, r.FeedbackSent);
        Assert.Equal(21, r.PacketsRecorded);
    }

    [Fact]
    public void LossesAreReportedAsNotReceivedAndTheNumberingWrapsAt65536()
    {
        var r = new TransportCcReceiver();
        ushort[] sent = [65533, 65534, 65535, 0, 1, 2, 3];
        var lost = new HashSet<ushort> { 65535, 2 };
        var t = 10_000.0;
        foreach (var s in sent)
        {
            t += 1.25;
            if (!lost.Contains(s)) r.OnPacket(s, 1, Ms(t));
        }

        var message = Assert.Single(Drain(r, Ms(t)));
        Assert.Equal(sent, message.Packets.Select(p => p.Sequence));
        Assert.Equal(sent.Select(s => !lost.Contains(s)), message.Packets.Select(p => p.Received));
        Assert.Equal(10_008_750, message.Packets.Last().ArrivalMicroseconds);
    }

    [Fact]
    public void APacketReportedLostThatArrivesLaterIsReportedAgainAsReceived()
    {
        var r = new TransportCcReceiver();
        r.OnPacket(1, 1, Ms(0));
        r.OnPacket(3, 1, Ms(2));
        var first = Drain(r, Ms(2)).Single().Packets;
        Assert.Equal([true, false, true], first.Select(p => p.Received));

        r.OnPacket(2, 1, Ms(3));            // late: after the feedback that called it lost
        r.OnPacket(4, 1, Ms(4));
        var again = Drain(r, Ms(200)).Single().Packets;
        Assert.Equal([(ushort)2, (ushort)3, (ushort)4], again.Select(p => p.Sequence));
        Assert.All(again, p => Assert.True(p.Received));
        Assert.Equal([3000L, 2000L, 4000L], again.Select(p => p.ArrivalMicroseconds));   // a negative delta for 3
        Assert.Equal(1, r.ReportedAgain);

        r.OnPacket(4, 1, Ms(5));            // a duplicate
        Assert.Equal(1, r.Duplicates);
        Assert.Null(r.PollTimeout());
    }

    [Fact]
    public void ASilenceLongerThanADeltaCanSayStartsANewMessageWithItsOwnReferenceTime()
    {
        // 20 s between two packets reported together (feedback held back): 16-bit deltas in 250 us reach 8.19 s only.
        var r = new TransportCcReceiver(new TransportCcReceiverOptions { Interval = TimeSpan.FromSeconds(60) });
        r.OnPacket(1, 1, Ms(0));
        Assert.Single(Drain(r, Ms(0)));
        r.OnPacket(2, 1, Ms(100));
        r.OnPacket(3, 1, Ms(20_100));
        var messages = new List<TransportCcPacketStatus[]>();
        var buffer = new byte[200];
        while (r.TryWriteNow(buffer, 9, Ms(20_100), out int n)) messages.Add(Decode(buffer, n).Packets);
        Assert.Equal(2, messages.Count);
        Assert.Equal(new TransportCcPacketStatus(2, true, 100_000), Assert.Single(messages[0]));
        Assert.Equal(new TransportCcPacketStatus(3, true, 20_100_000), Assert.Single(messages[1]));
    }

    [Fact]
    public void ABacklogOfAFullMessageGoesAtOnceInSeveralMessages()
    {
        var r = new TransportCcReceiver(new TransportCcReceiverOptions { MaxPacketsPerFeedback = 100 });
        r.OnPacket(0, 1, Ms(0));
        Assert.Single(Drain(r, Ms(0)));
        for (int i = 1; i <= 250; i++) r.OnPacket((ushort)i, 1, Ms(i * 0.25));
        Assert.Equal(TimeSpan.Zero, r.PollTimeout());           // 250 waiting, more than a message holds
        var messages = Drain(r, Ms(63));
        Assert.Equal([100, 100, 50], messages.Select(m => m.Packets.Length));
        Assert.Equal(Enumerable.Range(1, 250).Select(i => (ushort)i), messages.SelectMany(m => m.Packets).Select(p => p.Sequence));
        Assert.Equal([1, 2, 3], messages.Select(m => (int)m.FeedbackCount));
    }

    [Fact]
    public void ARunOfLossesLongerThanAMessageIsReportedAndTheArrivalsAfterItToo()
    {
        var r = new TransportCcReceiver(new TransportCcReceiverOptions { MaxPacketsPerFeedback = 100 });
        r.OnPacket(0, 1, Ms(0));
        Assert.Single(Drain(r, Ms(0)));
        r.OnPacket(301, 1, Ms(500));                            // 1..300 lost: three whole messages of losses
        var messages = Drain(r, Ms(500));
        var packets = messages.SelectMany(m => m.Packets).ToArray();
        Assert.Equal(Enumerable.Range(1, 301).Select(i => (ushort)i), packets.Select(p => p.Sequence));
        Assert.Equal(new TransportCcPacketStatus(301, true, 500_000), packets[^1]);
        Assert.Equal(300, packets.Count(p => !p.Received));
        Assert.Null(r.PollTimeout());
    }

    [Fact]
    public void PacketsOlderThanTheHistoryAreCountedNotReportedAndAJumpSkipsTheGap()
    {
        var r = new TransportCcReceiver(new TransportCcReceiverOptions { History = 64 });
        r.OnPacket(100, 1, Ms(0));
        Assert.Single(Drain(r, Ms(0)));
        r.OnPacket(200, 1, Ms(1));                              // 99 numbers skipped, 63 of them beyond the history
        r.OnPacket(120, 1, Ms(2));                              // too old to report
        Assert.Equal(1, r.TooLate);
        Assert.Equal(36, r.Skipped);                            // 101..136 left the history unreported
        var packets = Drain(r, Ms(200)).Single().Packets;
        Assert.Equal(137, packets[0].Sequence);
        Assert.Equal(200, packets[^1].Sequence);
        Assert.Equal(64, packets.Length);
        Assert.Single(packets, p => p.Received);
    }

    [Fact]
    public void OptionsOutOfRangeAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TransportCcReceiver(new TransportCcReceiverOptions { Interval = TimeSpan.Zero }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TransportCcReceiver(new TransportCcReceiverOptions { History = 1000 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TransportCcReceiver(new TransportCcReceiverOptions { MaxPacketsPerFeedback = 0 }));
    }
}
