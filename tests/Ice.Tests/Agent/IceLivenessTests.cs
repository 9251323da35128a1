namespace Transport.Ice.Tests.Agent;

/// <summary>
/// <see cref="IceLiveness"/> alone, on virtual time: the consent schedule (RFC 7675 section 5.1), consent expiry, the
/// keepalive (RFC 8445 section 11), the Disconnected and Failed deadlines, and when receive silence is armed.
/// </summary>
public sealed class IceLivenessTests
{
    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    private static IceLiveness New(IceAgentOptions? options = null, int seed = 1) => new(options ?? new IceAgentOptions(), new Random(seed));

    [Fact]
    public void ConsentChecksAreDrawnInsideThePlusMinusTwentyPercentWindowOnTheAlignmentGrid()
    {
        var l = New();
        var now = Ms(12_345);
        var draws = Enumerable.Range(0, 2000).Select(_ => l.DrawConsentAt(now)).ToList();
        Assert.All(draws, d => Assert.InRange(d - now, Ms(4000), Ms(6000)));
        Assert.All(draws, d => Assert.Equal(0, d.Ticks % Ms(100).Ticks));
        // Still random among the multiples the window holds (20 or 21 of them), the extremes included.
        Assert.InRange(draws.Distinct().Count(), 18, 21);
    }

    [Fact]
    public void WithoutAlignmentConsentTimesAreUniformOverTheWindow()
    {
        var l = New(new IceAgentOptions { ConsentAlignment = TimeSpan.Zero });
        var draws = Enumerable.Range(0, 4000).Select(_ => (l.DrawConsentAt(TimeSpan.Zero) - Ms(4000)).TotalMilliseconds).ToList();
        Assert.All(draws, d => Assert.InRange(d, 0, 2000));
        // Each quarter of the window holds about a quarter of the draws.
        for (var q = 0; q < 4; q++) Assert.InRange(draws.Count(d => d >= 500 * q && d < 500 * (q + 1)), 850, 1150);
    }

    [Fact]
    public void ResetStartsEveryClockAndConsentExpiresThirtySecondsAfterTheLastRefresh()
    {
        var l = New();
        l.Reset(Ms(1000));
        Assert.Equal((Ms(1000), Ms(1000), Ms(1000)), (l.LastReceived, l.LastSent, l.LastConsent));
        Assert.Equal(Ms(31_000), l.ConsentExpiresAt);
        Assert.InRange(l.ConsentCheckAt!.Value, Ms(5000), Ms(7000));
        l.ConsentRefreshed(Ms(9000));
        Assert.Equal(Ms(39_000), l.ConsentExpiresAt);
        l.CheckConsentNow(Ms(9500));
        Assert.Equal(Ms(9500), l.ConsentCheckAt);
    }

    [Fact]
    public void TheKeepaliveIsDueAfterTheIntervalOfSilenceOnTheNextMultipleOfItsAlignment()
    {
        var l = New();
        l.Reset(TimeSpan.Zero);
        l.Sent(Ms(1234));
        Assert.Equal(Ms(4300), l.KeepaliveDue);   // 1234 + 3000 (the default) = 4234, up to the 100 ms grid
        l.Sent(Ms(1300));
        Assert.Equal(Ms(4300), l.KeepaliveDue);   // on the grid already: never later than needed
        var exact = New(new IceAgentOptions { KeepaliveAlignment = TimeSpan.Zero });
        exact.Sent(Ms(1234));
        Assert.Equal(Ms(4234), exact.KeepaliveDue);
        Assert.Null(New(new IceAgentOptions { KeepaliveInterval = TimeSpan.Zero }).KeepaliveDue);
    }

    [Fact]
    public void RightAfterOurDataStopsTheKeepaliveComesSoonerThenTheIntervalAgain()
    {
        var l = New(new IceAgentOptions { KeepaliveAlignment = TimeSpan.Zero });
        l.Reset(TimeSpan.Zero);
        l.DataSent(Ms(1000));
        Assert.Equal(Ms(3000), l.KeepaliveDue);   // 4/5 of ReceiveSilenceTimeout (2.5 s): 2 s after the last data
        l.Sent(Ms(3000));                         // that keepalive came 2 s after the data: later than a data gap
        Assert.Equal(Ms(6000), l.KeepaliveDue);   // so the plain interval (3 s) again
        var noSilence = New(new IceAgentOptions { KeepaliveAlignment = TimeSpan.Zero, ReceiveSilenceTimeout = TimeSpan.Zero });
        noSilence.DataSent(Ms(1000));
        Assert.Equal(Ms(4000), noSilence.KeepaliveDue);
    }

    [Fact]
    public void DisconnectedAndFailedDeadlinesRunFromTheLastInputAndFromTheDisconnection()
    {
        var l = New();
        l.Reset(TimeSpan.Zero);
        l.Received(Ms(700));
        Assert.Equal(Ms(5700), l.DisconnectedDue);
        l.Disconnected(Ms(5700));
        Assert.Equal(Ms(30_700), l.FailedDue);
        var off = New(new IceAgentOptions
        {
            DisconnectedTimeout = TimeSpan.Zero,
            FailedTimeout = TimeSpan.Zero,
            ConsentTimeout = TimeSpan.Zero,
            ConsentInterval = TimeSpan.Zero,
        });
        off.Reset(TimeSpan.Zero);
        Assert.Null(off.DisconnectedDue);
        Assert.Null(off.FailedDue);
        Assert.Null(off.ConsentExpiresAt);
        Assert.Null(off.ConsentCheckAt);
    }

    [Fact]
    public void WhileDisconnectedConsentIsProbedAtOnceAndThenEveryFortyPercentOfTheInterval()
    {
        var l = New();
        l.Reset(TimeSpan.Zero);
        l.ProbeAtOnce(Ms(3000));   // the regular check was 4 to 6 s after the reset
        Assert.Equal(Ms(3000), l.ConsentCheckAt);
        l.ConsentSent(Ms(3000), disconnected: true);
        Assert.Equal(Ms(5000), l.ConsentCheckAt);
        l.ConsentSent(Ms(5000), disconnected: false);
        Assert.InRange(l.ConsentCheckAt!.Value, Ms(9000), Ms(11_000));
        // Without PeerMoveSilence neither the probe nor the shorter interval.
        var plain = New(new IceAgentOptions { PeerMoveSilence = TimeSpan.Zero });
        plain.Reset(TimeSpan.Zero);
        var scheduled = plain.ConsentCheckAt;
        plain.ProbeAtOnce(Ms(1000));
        Assert.Equal(scheduled, plain.ConsentCheckAt);
        plain.ConsentSent(Ms(1000), disconnected: true);
        Assert.InRange(plain.ConsentCheckAt!.Value, Ms(5000), Ms(7000));
    }

    [Fact]
    public void ReceiveSilenceIsArmedOnlyByARunOfDataAsLongAsItsTimeout()
    {
        // Timeout 2.5 s, 4 packets: a run allows gaps up to 625 ms.
        var l = New();
        l.Reset(TimeSpan.Zero);
        Assert.Null(l.ReceiveSilenceDue);
        // A handshake's burst: not a run as long as the timeout.
        for (var t = 0; t <= 300; t += 20) l.DataReceived(Ms(t));
        Assert.Null(l.ReceiveSilenceDue);
        // Data every 500 ms from 1000 ms: the gap from 300 ms (700 ms) starts a new run at 1000 ms.
        for (var t = 1000; t < 3500; t += 500) l.DataReceived(Ms(t));
        Assert.Null(l.ReceiveSilenceDue);   // last at 3000: the run lasted 2000 ms
        l.DataReceived(Ms(3500));           // 2500 ms: armed, 2.5 s after the last input
        Assert.Equal(Ms(6000), l.ReceiveSilenceDue);
        // STUN within the gap defers it; STUN after a longer gap (the data stopped, the peer is alive) disarms it.
        l.Received(Ms(4000));
        Assert.Equal(Ms(6500), l.ReceiveSilenceDue);
        l.Received(Ms(4200));
        Assert.Null(l.ReceiveSilenceDue);
        // A new run must last the timeout again; a reset forgets the data.
        l.DataReceived(Ms(5000));
        Assert.Null(l.ReceiveSilenceDue);
        l.Reset(Ms(5100));
        Assert.Null(l.ReceiveSilenceDue);
        Assert.Null(New(new IceAgentOptions { ReceiveSilenceTimeout = TimeSpan.Zero }).ReceiveSilenceDue);
    }
}
