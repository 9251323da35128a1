namespace Transport.Sctp.Tests;

/// <summary>RFC 9260 section 6.3 on its own (<see cref="RetransmissionTimeout"/>): C1-C3, C6-C7, E2, and the seeded first RTO.</summary>
public sealed class RetransmissionTimeoutTests
{
    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    private static RetransmissionTimeout Rto(TimeSpan? maxBackoff = null) => new(Ms(1000), Ms(200), Ms(10_000), maxBackoff);

    [Fact]
    public void BeforeAnySampleTheRtoIsRtoInitialAndSrttIsUnknown()
    {
        var rto = Rto();
        Assert.Equal(Ms(1000), rto.Value);
        Assert.Null(rto.Srtt);
        Assert.Null(rto.Rttvar);
        Assert.Equal(Ms(1000), rto.FirstRto());
    }

    [Fact]
    public void FirstSampleSetsSrttToRAndRttvarToHalfRThenLaterSamplesSmoothWithAnEighthAndAQuarter()
    {
        var rto = Rto();
        rto.Measure(Ms(100));                 // C2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR = 300 ms
        Assert.Equal(Ms(100), rto.Srtt);
        Assert.Equal(Ms(50), rto.Rttvar);
        Assert.Equal(Ms(300), rto.Value);
        rto.Measure(Ms(180));                 // C3: RTTVAR = 3/4 * 50 + 1/4 * |100 - 180| = 57.5; SRTT = 7/8 * 100 + 1/8 * 180 = 110
        Assert.Equal(57.5, rto.Rttvar!.Value.TotalMilliseconds, 6);
        Assert.Equal(110, rto.Srtt!.Value.TotalMilliseconds, 6);
        Assert.Equal(110 + 4 * 57.5, rto.Value.TotalMilliseconds, 6);
    }

    [Fact]
    public void TheRtoStaysWithinRtoMinAndRtoMax()
    {
        var rto = Rto();
        rto.Measure(Ms(1));                   // 3 ms computed: C6 raises it to RTO.Min
        Assert.Equal(Ms(200), rto.Value);
        var slow = Rto();
        slow.Measure(Ms(5000));               // 15 s computed: C7 lowers it to RTO.Max
        Assert.Equal(Ms(10_000), slow.Value);
    }

    [Fact]
    public void BackOffDoublesUpToRtoMaxOrTheCapButNeverBelowTheMeasuredRto()
    {
        var rto = Rto();
        rto.Measure(Ms(100));                 // 300 ms
        var seen = new List<double>();
        for (var i = 0; i < 8; i++) { rto.BackOff(); seen.Add(rto.Value.TotalMilliseconds); }
        Assert.Equal(new double[] { 600, 1200, 2400, 4800, 9600, 10_000, 10_000, 10_000 }, seen);

        var capped = Rto(maxBackoff: Ms(3000));
        capped.Measure(Ms(100));
        for (var i = 0; i < 5; i++) capped.BackOff();
        Assert.Equal(Ms(3000), capped.Value);

        // A measured RTO above the cap is kept, not lowered to it.
        var slowPath = Rto(maxBackoff: Ms(3000));
        slowPath.Measure(Ms(2000));           // 6 s
        slowPath.BackOff();
        Assert.Equal(Ms(6000), slowPath.Value);

        // A sample after the back-off starts from the measurement again (the back-off is not remembered).
        rto.Measure(Ms(100));
        Assert.True(rto.Value < Ms(1000));
    }

    [Fact]
    public void ShutdownDoublingIgnoresTheBackOffCapAndT1DoublesItsOwnRto()
    {
        var rto = Rto(maxBackoff: Ms(3000));
        rto.Measure(Ms(1000));                // 3 s
        rto.DoubleUpToMax();
        Assert.Equal(Ms(6000), rto.Value);
        rto.DoubleUpToMax();
        Assert.Equal(Ms(10_000), rto.Value);
        Assert.Equal(Ms(800), RetransmissionTimeout.Doubled(Ms(400), Ms(10_000)));
        Assert.Equal(Ms(10_000), RetransmissionTimeout.Doubled(Ms(6000), Ms(10_000)));
    }

    [Fact]
    public void ASeededPathRoundTripGivesThreeTimesItWithinTheBoundsUntilTheFirstSample()
    {
        var rto = Rto();
        Assert.False(rto.SeedPathRtt(TimeSpan.Zero));
        Assert.True(rto.SeedPathRtt(Ms(40)));
        Assert.Equal(Ms(1000), rto.Value);    // seeding changes nothing until Restart
        Assert.Equal(Ms(200), rto.FirstRto()); // 3 x 40 = 120 ms, raised to RTO.Min
        Assert.True(rto.SeedPathRtt(Ms(150)));
        rto.Restart();
        Assert.Equal(Ms(450), rto.Value);
        Assert.Null(rto.Srtt);                // the path's round trip is not the association's own SRTT

        rto.Measure(Ms(100));
        Assert.False(rto.SeedPathRtt(Ms(40))); // ignored once a sample was taken
        Assert.Equal(Ms(100), rto.Srtt);
    }
}
