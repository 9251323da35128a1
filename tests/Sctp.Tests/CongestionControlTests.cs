namespace Transport.Sctp.Tests;

/// <summary>RFC 9260 section 7.2 on its own (<see cref="CongestionControl"/>): initial window, slow start, congestion avoidance, fast recovery, T3.</summary>
public sealed class CongestionControlTests
{
    private const int Mtu = 1163;

    private static CongestionControl Started(uint peerWindow = 1 << 20)
    {
        var cc = new CongestionControl(Mtu);
        cc.Start(peerWindow);
        return cc;
    }

    [Fact]
    public void TheInitialWindowIsMinOfFourMtusAndMaxOfTwoMtusAnd4380AndSsthreshIsThePeersWindow()
    {
        var cc = Started(peerWindow: 123_456);
        Assert.Equal(Math.Min(4 * Mtu, Math.Max(2 * Mtu, 4380)), cc.Cwnd);
        Assert.Equal(4380, cc.Cwnd);
        Assert.Equal(123_456, cc.Ssthresh);
        var small = new CongestionControl(500);
        small.Start(uint.MaxValue);
        Assert.Equal(2000, small.Cwnd);       // 4 MTU < 4380
        Assert.Equal(int.MaxValue, small.Ssthresh);
    }

    [Fact]
    public void SlowStartGrowsByAtMostOneMtuPerSackAndOnlyWhenTheWindowWasInUseAndTheCumulativeAckMoved()
    {
        var cc = Started();
        var w = cc.Cwnd;
        cc.OnSack(10, cumAdvanced: true, flightBefore: w, newlyAcked: 3 * Mtu, flightAfter: 0);
        Assert.Equal(w + Mtu, cc.Cwnd);       // min(acked, MTU)
        w = cc.Cwnd;
        cc.OnSack(11, cumAdvanced: true, flightBefore: w, newlyAcked: 100, flightAfter: 0);
        Assert.Equal(w + 100, cc.Cwnd);
        w = cc.Cwnd;
        cc.OnSack(12, cumAdvanced: true, flightBefore: w - Mtu - 1, newlyAcked: Mtu, flightAfter: 0);
        Assert.Equal(w, cc.Cwnd);             // the window was not in use
        cc.OnSack(12, cumAdvanced: false, flightBefore: w, newlyAcked: Mtu, flightAfter: 0);
        Assert.Equal(w, cc.Cwnd);             // only gap blocks acknowledged
    }

    [Fact]
    public void CongestionAvoidanceGrowsOneMtuPerWindowOfAcknowledgedBytes()
    {
        var cc = Started();
        cc.OnRetransmissionTimeout();        // cwnd 1 MTU, ssthresh 4 MTU
        while (cc.Cwnd <= cc.Ssthresh) cc.OnSack(1, true, cc.Cwnd, Mtu, 1);
        var w = cc.Cwnd;
        Assert.True(w > cc.Ssthresh);
        cc.OnSack(2, true, w, w - 1, flightAfter: 1);
        Assert.Equal(w, cc.Cwnd);
        Assert.Equal(w - 1, cc.PartialBytesAcked);
        cc.OnSack(3, true, w, 1, flightAfter: 1);
        Assert.Equal(w + Mtu, cc.Cwnd);
        Assert.Equal(0, cc.PartialBytesAcked);
        cc.OnSack(4, true, cc.Cwnd, 500, flightAfter: 0);
        Assert.Equal(0, cc.PartialBytesAcked); // nothing in flight: partial_bytes_acked resets
    }

    [Fact]
    public void FastRetransmitHalvesOncePerRecoveryAndTheWindowDoesNotGrowUntilTheExitPointIsAcknowledged()
    {
        var cc = Started();
        for (var i = 0; i < 30; i++) cc.OnSack((uint)i, true, cc.Cwnd, Mtu, 1);
        var w = cc.Cwnd;
        Assert.True(cc.OnFastRetransmit(highestOutstanding: 100));
        Assert.Equal(Math.Max(w / 2, 4 * Mtu), cc.Ssthresh);
        Assert.Equal(cc.Ssthresh, cc.Cwnd);
        Assert.True(cc.InFastRecovery);
        Assert.False(cc.OnFastRetransmit(highestOutstanding: 120)); // a second loss in the same window: no second halving
        Assert.Equal(100u, cc.FastRecoveryExit);
        var reduced = cc.Cwnd;
        cc.OnSack(99, true, reduced, Mtu, 1);
        Assert.Equal(reduced, cc.Cwnd);       // still recovering
        Assert.True(cc.InFastRecovery);
        cc.OnSack(100, true, reduced, Mtu, 1);
        Assert.False(cc.InFastRecovery);
        Assert.True(cc.Cwnd > reduced || cc.PartialBytesAcked > 0);
        Assert.True(cc.OnFastRetransmit(highestOutstanding: 200)); // a new recovery may halve again
    }

    [Fact]
    public void T3ExpirySetsSsthreshToHalfTheWindowAtLeastFourMtusAndTheWindowToOneMtu()
    {
        var cc = Started();
        for (var i = 0; i < 40; i++) cc.OnSack((uint)i, true, cc.Cwnd, Mtu, 1);
        var w = cc.Cwnd;
        cc.OnFastRetransmit(50);
        cc.OnRetransmissionTimeout();
        Assert.Equal(Mtu, cc.Cwnd);
        Assert.Equal(Math.Max(Math.Max(w / 2, 4 * Mtu) / 2, 4 * Mtu), cc.Ssthresh);
        Assert.False(cc.InFastRecovery);
        cc.OnRetransmissionTimeout();
        Assert.Equal(4 * Mtu, cc.Ssthresh);  // never below 4 MTU
        Assert.Equal(Mtu, cc.Cwnd);
    }
}
