using Transport.Rtp.Congestion;

namespace Transport.Rtp.Tests.Congestion;

/// <summary>The parts of the send-side bandwidth estimator, each driven with explicit times and hand-made feedback.</summary>
public class BandwidthEstimatorTests
{
    // Groups of one packet 10 ms apart by our clock; each arrives `extraMs` later than the one before (queue growth).
    private static BandwidthUsage Feed(DelayTrendDetector d, int groups, double extraMs, long startMicros = 0)
    {
        for (var i = 0; i < groups; i++)
        {
            long send = startMicros + i * 10_000;
            long arrival = 50_000 + startMicros + (long)(i * (10_000 + extraMs * 1000));
            d.Add(send, arrival);
        }
        return d.State;
    }

    [Fact]
    public void ASteadyDelayIsNormalAGrowingOneIsOveruseAndAShrinkingOneUnderuse()
    {
        Assert.Equal(BandwidthUsage.Normal, Feed(new DelayTrendDetector(), 60, 0));
        var growing = new DelayTrendDetector();
        Assert.Equal(BandwidthUsage.Overusing, Feed(growing, 60, 1.0));
        Assert.True(growing.ModifiedTrend > growing.Threshold);
        var shrinking = new DelayTrendDetector();
        Feed(shrinking, 40, 0);
        for (var i = 40; i < 80; i++) shrinking.Add(i * 10_000, 50_000 + 400_000 + (long)((i - 40) * 9_000));
        Assert.Equal(BandwidthUsage.Underusing, shrinking.State);
    }

    [Fact]
    public void PacketsSentWithinFiveMillisecondsAreOneGroupAndReorderedOnesAreSkipped()
    {
        var d = new DelayTrendDetector();
        Assert.False(d.Add(0, 100_000));
        Assert.False(d.Add(2_000, 102_000));      // same group (sent within 5 ms)
        Assert.False(d.Add(10_000, 110_000));     // second group starts: nothing to compare yet
        Assert.False(d.Add(5_000, 111_000));      // sent before the group being filled: skipped
        Assert.Equal(1, d.OutOfOrder);
        Assert.True(d.Add(20_000, 120_000));      // third group completes the second
    }

    [Fact]
    public void TheThresholdAdaptsTowardsTheTrendItSees()
    {
        var d = new DelayTrendDetector();
        Feed(d, 200, 0);
        Assert.Equal(6, d.Threshold, 3);          // a quiet path: down to its floor
    }

    [Fact]
    public void OveruseDropsTheRateToEightyFivePercentOfWhatWasAcknowledged()
    {
        var aimd = new AimdRateController(2_000_000, 30_000, 10_000_000);
        var rate = aimd.Update(BandwidthUsage.Overusing, acked: 1_000_000, applicationLimited: false, nowMicros: 1_000_000);
        Assert.Equal(850_000, rate, 1);
        Assert.True(aimd.NearCapacity);
        // Underuse holds, normal grows again (additively now that the capacity is known: a few kbit/s in 100 ms).
        Assert.Equal(850_000, aimd.Update(BandwidthUsage.Underusing, 900_000, false, 1_100_000), 1);
        aimd.Update(BandwidthUsage.Normal, 900_000, false, 1_200_000);
        var grown = aimd.Update(BandwidthUsage.Normal, 900_000, false, 1_700_000);
        Assert.InRange(grown, 850_001, 900_000);
    }

    [Fact]
    public void OveruseLowersTheRateEvenWhenMoreWasAcknowledgedThanTheEstimate()
    {
        var aimd = new AimdRateController(1_000_000, 30_000, 10_000_000);
        aimd.Update(BandwidthUsage.Overusing, acked: 1_100_000, applicationLimited: false, nowMicros: 0);   // capacity ~1.1 Mbit/s
        Assert.Equal(850_000, aimd.Bitrate, 1);
        aimd.RoundTripTime = TimeSpan.FromMilliseconds(50);
        var shortQueue = TimeSpan.FromMilliseconds(20);
        Assert.False(aimd.TimeToReduceFurther(100_000, 1_000_000, DelayTrendDetector.WindowSize, shortQueue));   // a round trip plus 100 ms not yet passed
        // Then only once the trend took in a window of groups sent after the cut (it still carries the growth that led
        // to it before), or a second passed, or the queue is long; at once when the acknowledged rate fell below half
        // the estimate.
        Assert.False(aimd.TimeToReduceFurther(150_000, 1_000_000, DelayTrendDetector.WindowSize - 1, shortQueue));
        Assert.True(aimd.TimeToReduceFurther(150_000, 1_000_000, DelayTrendDetector.WindowSize, shortQueue));
        Assert.True(aimd.TimeToReduceFurther(150_000, 1_000_000, 0, AimdRateController.LongQueue));
        Assert.True(aimd.TimeToReduceFurther(1_000_000, 1_000_000, 0, shortQueue));
        Assert.True(aimd.TimeToReduceFurther(50_000, 400_000, 0, shortQueue));
        // A probe's padding made the acknowledged rate 1.5 Mbit/s: the estimate still drops (0.85 x 850k).
        Assert.Equal(722_500, aimd.Update(BandwidthUsage.Overusing, 1_500_000, false, 150_000), 1);
    }

    [Fact]
    public void FarFromCapacityTheRateGrowsEightPercentASecondButNotBeyondWhatArrives()
    {
        var aimd = new AimdRateController(1_000_000, 30_000, 10_000_000);
        aimd.Update(BandwidthUsage.Normal, 1_000_000, false, 0);
        var rate = aimd.Update(BandwidthUsage.Normal, 1_000_000, false, 1_000_000);
        Assert.Equal(1_080_000, rate, 0);
        var limited = new AimdRateController(1_000_000, 30_000, 10_000_000);
        limited.Update(BandwidthUsage.Normal, 100_000, false, 0);
        Assert.Equal(1_000_000, limited.Update(BandwidthUsage.Normal, 100_000, false, 1_000_000), 1);   // 1.5 x 100k + 10k is below: held
        var idle = new AimdRateController(1_000_000, 30_000, 10_000_000);
        idle.Update(BandwidthUsage.Normal, 1_000_000, true, 0);
        Assert.Equal(1_000_000, idle.Update(BandwidthUsage.Normal, 1_000_000, applicationLimited: true, 1_000_000), 1);
    }

    [Fact]
    public void HeavyLossLowersTheRateByHalfTheLossAndLightLossLeavesTheDelayBasedRate()
    {
        var loss = new LossBasedControl(1_000_000, 30_000, 10_000_000);
        Assert.Equal(1_000_000, loss.OnReports(19, 1, 1_000_000, TimeSpan.FromMilliseconds(50), 0), 1);   // 5 %: hold
        Assert.Equal(900_000, loss.OnReports(16, 4, 1_000_000, TimeSpan.FromMilliseconds(50), 1_000_000), 1);   // 20 %: x0.9
        Assert.True(loss.Limiting);
        Assert.Equal(900_000, loss.OnReports(16, 4, 1_000_000, TimeSpan.FromMilliseconds(50), 1_100_000), 1);  // not again within 300 ms + RTT
        var recovered = loss.OnReports(20, 0, 1_000_000, TimeSpan.FromMilliseconds(50), 2_000_000);
        Assert.Equal(900_000 * 1.08 + 1000, recovered, 1);
        Assert.Equal(1_000_000, loss.OnReports(20, 0, 1_000_000, TimeSpan.FromMilliseconds(50), 3_000_000), 1);   // caught up: the delay-based rate rules
        Assert.False(loss.Limiting);
    }

    [Fact]
    public void SendingFarBelowTheEstimateIsApplicationLimitedAndSendingAtItIsNot()
    {
        var alr = new AlrDetector();
        for (var i = 0; i <= 100; i++) alr.OnBytesSent(100, 1_000_000, i * 10_000);      // 80 kbit/s against 1 Mbit/s
        Assert.True(alr.InAlr);
        for (var i = 101; i <= 200; i++) alr.OnBytesSent(1250, 1_000_000, i * 10_000);   // 1 Mbit/s
        Assert.False(alr.InAlr);
        Assert.True(alr.LastDurationMicros > 500_000);
    }

    [Fact]
    public void StartProbesAreThreeAndSixTimesTheStartRateAndAResultIsTheSlowerOfSendAndReceive()
    {
        var probes = new ProbeController(new CongestionControlOptions());
        probes.OnStart(300_000, 0);
        Assert.True(probes.TryTake(out var first));
        Assert.True(probes.TryTake(out var second));
        Assert.Equal(900_000, first.Bitrate);
        Assert.Equal(1_800_000, second.Bitrate);
        // Ten 1000-byte packets sent 1 ms apart (8 Mbit/s) arrive 4 ms apart (2 Mbit/s): the path's rate, less 5 %.
        double? result = null;
        for (var i = 0; i < 10; i++)
            result ??= probes.OnPacket(new PacketResult(i * 1000, 100_000 + i * 4000, 1000, first.Id), 200_000);
        Assert.NotNull(result);
        Assert.Equal(0.95 * 2_000_000, result!.Value, 1);
    }

    [Fact]
    public void TheEstimatorFallsWhenTheDelayGrowsAndReportsTheChange()
    {
        var e = new SendSideBandwidthEstimator(new CongestionControlOptions { StartBitrate = 1_000_000, ProbeAtStart = false });
        var batch = new PacketResult[20];
        long send = 0, arrival = 0;
        // 1.2 Mbit/s sent into a 1 Mbit/s path: 1000-byte packets every 6.67 ms, arriving every 8 ms.
        for (var f = 0; f < 30; f++)
        {
            for (var i = 0; i < batch.Length; i++)
            {
                e.OnPacketSent(1000, TimeSpan.FromMicroseconds(send));
                batch[i] = new PacketResult(send, arrival, 1000, -1);
                send += 6_667;
                arrival += 8_000;
            }
            e.OnFeedback(batch, TimeSpan.FromMicroseconds(send + 40_000));
        }
        // The sender here never follows the target, so the queue grows for 4 s and overuse cuts again and again (once
        // the trend took in a window of groups sent after the last cut): first to 0.85 of the acknowledged 1 Mbit/s,
        // then 0.85 of the estimate.
        Assert.True(e.Overuses > 1, $"{e.Overuses}");
        Assert.InRange(e.TargetBitrate, 30_000, 850_000);
        Assert.True(e.TryTakeTargetChange(out var changed));
        Assert.Equal(e.TargetBitrate, changed);
        Assert.False(e.TryTakeTargetChange(out _));
    }

    [Fact]
    public void AQueueAboveThirtyMillisecondsThatKeepsGrowingIsAnOveruseEvenUnderTheTrendThreshold()
    {
        var e = new SendSideBandwidthEstimator(new CongestionControlOptions { StartBitrate = 1_000_000, ProbeAtStart = false });
        var batch = new PacketResult[10];
        long send = 0, arrival = 20_000;
        // 1000-byte packets every 10 ms; each arrives 0.1 ms later than the one before (a queue growing 10 ms a second):
        // the trend (0.01, times 4 and 60: 2.4) stays under the threshold (6 at the least), only the level can tell.
        void Run(int feedbacks, double extraMs)
        {
            for (var f = 0; f < feedbacks; f++)
            {
                for (var i = 0; i < batch.Length; i++)
                {
                    e.OnPacketSent(1000, TimeSpan.FromMicroseconds(send));
                    batch[i] = new PacketResult(send, arrival, 1000, -1);
                    send += 10_000;
                    arrival += 10_000 + (long)(extraMs * 1000);
                }
                e.OnFeedback(batch, TimeSpan.FromMicroseconds(send + 40_000));
            }
        }

        Run(25, 0.1);   // 2.5 s: the queue reaches 25 ms
        Assert.Equal(BandwidthUsage.Normal, e.DelayState);
        Assert.Equal(0, e.Overuses);
        Run(10, 0.1);   // 3.5 s: 35 ms, still growing
        Assert.True(e.OverusesOnLevel > 0 && e.Overuses >= 1, $"{e.OverusesOnLevel} on the level, {e.Overuses} acted on");
        Assert.True(e.DelayBasedBitrate < 1_000_000);
        // A queue that shrinks is no overuse, however long it still is.
        Run(5, -0.1);
        var onLevel = e.OverusesOnLevel;
        Run(10, -0.1);
        Assert.Equal(onLevel, e.OverusesOnLevel);
    }

    [Fact]
    public void NonsenseOptionsAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            new SendSideBandwidthEstimator(new CongestionControlOptions { MinBitrate = 2_000_000, MaxBitrate = 1_000_000 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SendSideBandwidthEstimator(new CongestionControlOptions { StartBitrate = 10 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SendSideBandwidthEstimator(new CongestionControlOptions { PacingFactor = 0.5 }));
    }
}
