using Transport.Rtp.Rtcp;
using Transport.Rtp.Streams;

namespace Transport.Rtp.Tests.Streams;

/// <summary>
/// What the sender learns from transport-cc feedback, on virtual time: the feedback is written by hand (statuses with
/// arrival times) so each figure can be worked out exactly.
/// </summary>
public class TransportCcSenderTests
{
    private static TimeSpan Ms(double ms) => TimeSpan.FromTicks((long)(ms * TimeSpan.TicksPerMillisecond));

    private static TransportCcPacketStatus Got(ushort sequence, long arrivalMicros) => new(sequence, true, arrivalMicros);

    private static TransportCcPacketStatus Lost(ushort sequence) => new(sequence, false, 0);

    [Fact]
    public void NumbersFollowOnAcrossTheWrapAndFeedbackCountsArrivalsLossesAndTheDelay()
    {
        var s = new TransportCcSender(firstSequence: 65534);
        ushort[] numbers = Enumerable.Range(0, 4).Select(i => s.Number(1000, Ms(10 * i))).ToArray();
        Assert.Equal([(ushort)65534, (ushort)65535, (ushort)0, (ushort)1], numbers);

        s.OnFeedback([Got(65534, 5_000), Lost(65535), Got(0, 25_000), Got(1, 35_000)], feedbackCount: 0, Ms(100));
        Assert.Equal(4, s.PacketsSent);
        Assert.Equal(3, s.PacketsReceived);
        Assert.Equal(1, s.PacketsLost);
        Assert.Equal(0.25, s.LossFraction);
        Assert.Equal(Ms(70), s.FeedbackDelay);                    // the newest packet reported (sent at 30 ms) to now
        // Two packets of 1000 bytes after the first arrival, in 30 ms of the receiver's clock.
        Assert.Equal(2 * 1000 * 8 / 0.030, s.DeliveryRate!.Value, 3);
        Assert.Equal(Ms(100), s.LastFeedbackAt);
    }

    [Fact]
    public void PacketsNoFeedbackReportsLeaveTheInFlightCountAfterTheTimeout()
    {
        var s = new TransportCcSender(firstSequence: 1);
        for (int i = 0; i < 10; i++) s.Number(1000, Ms(10 * i));      // 1-10, sent at 0-90 ms
        Assert.Equal(10_000, s.BytesInFlightAt(Ms(100)));
        s.OnFeedback([Got(1, 20_000), Got(2, 30_000)], 0, Ms(100));
        Assert.Equal(TimeSpan.FromSeconds(1), s.InFlightTimeout);     // twice a 90 ms feedback delay, at least 1 s
        Assert.Equal(8_000, s.BytesInFlightAt(Ms(100)));
        // A partition: no feedback any more. Each packet leaves the count 1 s after it was sent, not never.
        Assert.Equal(8_000, s.BytesInFlightAt(Ms(1019)));            // 3 left at 20 ms
        Assert.Equal(4_000, s.BytesInFlightAt(Ms(1050)));            // 3-6 (20-50 ms) timed out
        Assert.Equal(0, s.BytesInFlightAt(Ms(2000)));
        Assert.Equal(8, s.PacketsTimedOut);
        // A late report still counts.
        s.OnFeedback([Got(10, 2_000_000)], 1, Ms(2100));
        Assert.Equal(3, s.PacketsReceived);
        Assert.Equal(0, s.BytesInFlightAt(Ms(2100)));
    }

    [Fact]
    public void PacketsALostFeedbackCoveredAreUnreportedNotLostAndAReportLaterStillCounts()
    {
        var s = new TransportCcSender(firstSequence: 1);
        for (int i = 0; i < 5; i++) s.Number(1000, Ms(10 * i));
        s.OnFeedback([Got(1, 1_000)], 0, Ms(60));
        s.OnFeedback([Got(4, 31_000), Got(5, 41_000)], 2, Ms(100));  // feedback 1, on 2 and 3, was lost
        Assert.Equal(2, s.PacketsUnreported);
        Assert.Equal(0, s.PacketsLost);
        Assert.Equal(0, s.LossFraction);
        Assert.Equal(0, s.BytesInFlight);
        s.OnFeedback([Got(2, 11_000), Lost(3)], 1, Ms(110));          // it came after all, out of order
        Assert.Equal(0, s.PacketsUnreported);
        Assert.Equal(4, s.PacketsReceived);
        Assert.Equal(1, s.PacketsLost);
    }

    [Fact]
    public void APacketReportedLostThenReceivedCountsAsReceived()
    {
        var s = new TransportCcSender(firstSequence: 10);
        for (int i = 0; i < 3; i++) s.Number(500, Ms(i));
        s.OnFeedback([Got(10, 1_000), Lost(11)], 0, Ms(50));
        Assert.Equal(1, s.PacketsLost);
        Assert.Equal(0.5, s.LossFraction);

        s.OnFeedback([Got(11, 9_000), Got(12, 3_000)], 1, Ms(150));  // 11 arrived late
        Assert.Equal(0, s.PacketsLost);
        Assert.Equal(3, s.PacketsReceived);
        Assert.Equal(0, s.LossFraction);

        s.OnFeedback([Got(11, 9_000)], 2, Ms(160));                  // reported again: counted once
        Assert.Equal(3, s.PacketsReceived);
    }

    [Fact]
    public void NumbersNeverSentOrForgottenAndMissingFeedbackAreCounted()
    {
        var s = new TransportCcSender(firstSequence: 100);
        s.Number(100, Ms(0));
        s.OnFeedback([Got(100, 0), Got(101, 10), Got(5000, 20)], 7, Ms(10));
        Assert.Equal(2, s.UnknownReports);
        Assert.Equal(1, s.PacketsReceived);

        s.OnFeedback([], 10, Ms(20));                                // 8 and 9 never came
        Assert.Equal(2, s.FeedbackMissed);
        Assert.Equal(2, s.FeedbackReceived);

        for (int i = 0; i < 9000; i++) s.Number(100, Ms(30));        // 100 is long forgotten
        s.OnFeedback([Got(100, 40)], 11, Ms(40));
        Assert.Equal(3, s.UnknownReports);
    }

    [Fact]
    public void TheWindowForgetsOldLossesAndOldArrivals()
    {
        var s = new TransportCcSender(firstSequence: 1) { Window = TimeSpan.FromSeconds(1) };
        s.Number(1200, Ms(0));
        s.Number(1200, Ms(1));
        s.OnFeedback([Got(1, 1_000), Lost(2)], 0, Ms(100));
        Assert.Equal(0.5, s.LossFraction);

        // Two seconds later, ten clean packets 10 ms apart: the loss and the old arrival are out of the window.
        var statuses = new List<TransportCcPacketStatus>();
        for (int i = 0; i < 10; i++)
        {
            ushort n = s.Number(1200, Ms(2000 + 10 * i));
            statuses.Add(Got(n, (2000 + 10 * i) * 1000L));
        }

        s.OnFeedback(statuses.ToArray(), 1, Ms(2200));
        Assert.Equal(0, s.LossFraction);
        Assert.Equal(1, s.PacketsLost);                              // the total keeps it
        Assert.Equal(9 * 1200 * 8 / 0.090, s.DeliveryRate!.Value, 3);
    }

    [Fact]
    public void FeedbackFromOurReceiverRoundTripsThroughTheWire()
    {
        // The two halves together, through the RTCP bytes: numbers 1..50, every tenth lost on the way.
        var sender = new TransportCcSender(firstSequence: 1);
        var receiver = new TransportCcReceiver();
        for (int i = 0; i < 50; i++)
        {
            ushort n = sender.Number(1000, Ms(i * 2));
            if (i % 10 != 9) receiver.OnPacket(n, 42, Ms(i * 2 + 15));
        }

        var buffer = new byte[1500];
        var statuses = new TransportCcPacketStatus[100];
        while (receiver.TryWriteNow(buffer, 1, Ms(200), out int length))
        {
            var e = RtcpCompound.Enumerate(buffer.AsSpan(0, length));
            Assert.True(e.MoveNext());
            Assert.True(RtcpFeedback.TryRead(e.Current, out RtcpFeedback fb));
            Assert.True(TransportCcFeedback.TryRead(fb.Fci, statuses, out int count, out byte fbCount));
            sender.OnFeedback(statuses.AsSpan(0, count), fbCount, Ms(230));
        }

        Assert.Equal(45, sender.PacketsReceived);
        Assert.Equal(4, sender.PacketsLost);                         // the 50th (lost) is not reported: nothing after it came
        Assert.Equal(Ms(230 - 96), sender.FeedbackDelay);         // number 49 went at 96 ms
    }
}
