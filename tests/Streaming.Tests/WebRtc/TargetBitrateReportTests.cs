using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// <see cref="TargetBitrateReport"/> alone: the target the application is told (the estimate less the pacer's backlog
/// sent within a second, never below the minimum), when a new target is reported (more than 2 %, or a bound reached),
/// and the NACK resend interval following the round trip (up at once, down by 10 % a feedback).
/// </summary>
public sealed class TargetBitrateReportTests
{
    private const long Min = 30_000, Max = 2_500_000;
    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    [Fact]
    public void TheStartRateIsReportedAndMovesOfTwoPercentOrLessAreNot()
    {
        var r = new TargetBitrateReport(Min, Max);
        Assert.Null(r.Reported);
        Assert.Equal(300_000, r.Start(300_000));
        Assert.False(r.OnFeedback(306_000, Ms(50), queuedBytes: 0, out var bitrate));   // 2 % exactly
        Assert.Equal(306_000, bitrate);
        Assert.Equal(300_000, r.Reported);
        Assert.True(r.OnFeedback(306_001, Ms(50), queuedBytes: 0, out bitrate));
        Assert.Equal(306_001, r.Reported);
        Assert.True(r.OnFeedback(250_000, Ms(50), queuedBytes: 0, out bitrate));
        Assert.Equal(250_000, bitrate);
    }

    [Fact]
    public void ThePacersBacklogIsTakenOffTheEstimateNeverBelowTheMinimum()
    {
        var r = new TargetBitrateReport(Min, Max);
        Assert.Equal(920_000, r.Target(1_000_000, queuedBytes: 10_000));   // 80 kbit waiting: sent within the second
        Assert.Equal(Min, r.Target(100_000, queuedBytes: 100_000));
        r.Start(1_000_000);
        Assert.True(r.OnFeedback(1_000_000, Ms(50), queuedBytes: 10_000, out var bitrate));
        Assert.Equal(920_000, bitrate);
    }

    [Fact]
    public void ReachingABoundIsReportedEvenWhenTheMoveIsSmall()
    {
        var r = new TargetBitrateReport(Min, Max);
        r.Start(30_400);
        Assert.False(r.OnFeedback(30_200, Ms(50), 0, out _));   // 0.7 %, not a bound
        Assert.True(r.OnFeedback(Min, Ms(50), 0, out var bitrate));
        Assert.Equal(Min, bitrate);
        Assert.False(r.OnFeedback(Min, Ms(50), 0, out _));      // at the bound already: nothing new
        r.Start(2_490_000);
        Assert.True(r.OnFeedback(Max, Ms(50), 0, out bitrate));
        Assert.Equal(Max, bitrate);
    }

    [Fact]
    public void TheResendIntervalFollowsTheRoundTripUpAtOnceAndDownByTenPercentAFeedback()
    {
        var r = new TargetBitrateReport(Min, Max);
        r.Start(300_000);
        Assert.Equal(TimeSpan.Zero, r.ResendInterval);
        r.OnFeedback(300_000, Ms(100), 0, out _);
        Assert.Equal(Ms(150), r.ResendInterval);   // 1.5 round trips
        r.OnFeedback(300_000, Ms(400), 0, out _);
        Assert.Equal(Ms(600), r.ResendInterval);   // up at once
        r.OnFeedback(300_000, Ms(100), 0, out _);
        Assert.Equal(Ms(540), r.ResendInterval);   // down by 10 %
        for (var i = 0; i < 40; i++) r.OnFeedback(300_000, Ms(100), 0, out _);
        Assert.Equal(Ms(150), r.ResendInterval);   // and no lower than 1.5 round trips
    }
}
