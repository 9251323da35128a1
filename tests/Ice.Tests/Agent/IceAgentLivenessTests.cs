using Transport.Ice.Stun;
using Transport.TestKit;

namespace Transport.Ice.Tests.Agent;

/// <summary>Keepalive, consent freshness, Disconnected and Failed timers on virtual time, to the tick.</summary>
public sealed class IceAgentLivenessTests
{
    private static TimeSpan S(double s) => TimeSpan.FromSeconds(s);

    private static IceAgentOptions Fast(IceRole role, int seed) => new()
    {
        Role = role,
        TieBreaker = role == IceRole.Controlling ? 2UL : 1UL,
        Random = new Random(seed),
        KeepaliveInterval = S(1),
        KeepaliveAlignment = TimeSpan.Zero,   // exact keepalives here; the 100 ms grid has its own tests
        DisconnectedTimeout = S(2),
        FailedTimeout = S(5),
    };

    private static (AgentPeer A, AgentPeer B, TwoPeerDriver D) Connected(IceAgentOptions a, IceAgentOptions b)
    {
        var (pa, pb, d) = AgentPeer.Pair(a, b);
        Assert.True(d.RunUntil(() => pa.State == IceConnectionState.Connected && pb.State == IceConnectionState.Connected, S(5)));
        return (pa, pb, d);
    }

    [Fact]
    public void LinkCutAtTenSecondsGivesDisconnectedTwoSecondsAfterTheLastPacketAndFailedFiveSecondsLater()
    {
        var (a, b, d) = Connected(Fast(IceRole.Controlling, 1), Fast(IceRole.Controlled, 2));
        d.RunFor(S(10) - d.Now);
        Assert.Equal(S(10), d.Now);
        d.Link.Cut = true;
        var lastA = a.LastReceivedAt!.Value;
        Assert.InRange(lastA, S(9), S(10)); // keepalives every second kept packets flowing until the cut

        Assert.True(d.RunUntil(() => a.State == IceConnectionState.Failed && b.State == IceConnectionState.Failed, S(20)));
        foreach (var peer in new[] { a, b })
        {
            var last = peer.LastReceivedAt!.Value;
            var disconnected = peer.StateChanges.Single(e => e.State == IceConnectionState.Disconnected);
            var failed = peer.StateChanges.Single(e => e.State == IceConnectionState.Failed);
            Assert.Equal(last + S(2), disconnected.At);
            Assert.Equal(IceStateReason.NoTraffic, disconnected.Reason);
            Assert.Equal(S(2), disconnected.LastReceivedAge);
            Assert.InRange(disconnected.At, S(11), S(12));
            Assert.Equal(disconnected.At + S(5), failed.At);
            Assert.Equal(IceStateReason.FailedTimeout, failed.Reason);
            Assert.Equal(S(7), failed.LastReceivedAge);
            Assert.Equal(IceSendStatus.Failed, peer.Agent.TrySend(d.Now).Status);
        }
    }

    [Fact]
    public void WithMediaEvery20MillisecondsALinkCutAtTenSecondsGivesDisconnectedAtTwelveAndFailedAtSeventeen()
    {
        var (a, b, d) = Connected(Fast(IceRole.Controlling, 1), Fast(IceRole.Controlled, 2));
        var tick = TimeSpan.FromMilliseconds(20);
        // Start on a 20 ms grid so that a send falls exactly at t = 10 s.
        d.RunFor(tick * (int)Math.Ceiling(d.Now / tick) - d.Now);
        while (d.Now < S(20))
        {
            if (d.Now == S(10)) d.Link.Cut = true;
            Assert.NotEqual(IceSendStatus.NotConnected, a.SendData([0x80, 0x60], d.Now).Status);
            Assert.NotEqual(IceSendStatus.NotConnected, b.SendData([0x80, 0x60], d.Now).Status);
            d.RunFor(tick);
        }
        foreach (var peer in new[] { a, b })
        {
            // The last packet before the cut left at 9.98 s and arrived 10 ms later.
            Assert.Equal(TimeSpan.FromMilliseconds(9990), peer.LastReceivedAt);
            var disconnected = peer.StateChanges.Single(e => e.State == IceConnectionState.Disconnected);
            var failed = peer.StateChanges.Single(e => e.State == IceConnectionState.Failed);
            Assert.Equal(TimeSpan.FromMilliseconds(11990), disconnected.At);
            Assert.Equal(TimeSpan.FromMilliseconds(16990), failed.At);
            Assert.Equal(IceSendStatus.Failed, peer.Agent.TrySend(d.Now).Status);
        }
    }

    [Fact]
    public void TrafficResumingBringsDisconnectedBackToConnected()
    {
        var (a, b, d) = Connected(Fast(IceRole.Controlling, 1), Fast(IceRole.Controlled, 2));
        d.RunFor(S(10) - d.Now);
        d.Link.Cut = true;
        Assert.True(d.RunUntil(() => a.State == IceConnectionState.Disconnected && b.State == IceConnectionState.Disconnected, S(5)));
        Assert.Equal(IceSendStatus.Send, a.Agent.TrySend(d.Now).Status); // still sending while Disconnected
        d.RunFor(S(13) - d.Now);
        d.Link.Cut = false;
        Assert.True(d.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, S(2)));
        foreach (var peer in new[] { a, b })
        {
            var resumed = peer.StateChanges.Last();
            Assert.Equal(IceStateReason.TrafficResumed, resumed.Reason);
            Assert.Equal(peer.ReceivedStun.First(r => r.At >= S(13)).At, resumed.At); // at the first packet after the cut
            Assert.InRange(resumed.At, S(13), S(14.1));
        }
        d.RunFor(S(30));
        Assert.Equal(IceConnectionState.Connected, a.State);
        Assert.Equal(IceConnectionState.Connected, b.State);
    }

    [Fact]
    public void ConsentExpiresExactlyThirtySecondsAfterTheLastResponseWhenOnlyResponsesAreLost()
    {
        var dropResponses = false;
        var link = new VirtualLink(seed: 3, LinkConditions.Clean(TimeSpan.FromMilliseconds(10)), LinkConditions.Clean(TimeSpan.FromMilliseconds(10)));
        // B's success responses to A are lost; B's own requests and keepalives still reach A.
        link.AddFilter(LinkEnd.B, m => m.Length >= 2 && m.Span[0] == 0x01 && m.Span[1] == 0x01, _ => dropResponses ? FilterAction.Drop : FilterAction.Pass);
        // B's consent requests come every 4 to 6 s and count as traffic; a 10 s DisconnectedTimeout keeps A Connected.
        var (a, b, d) = AgentPeer.Pair(new IceAgentOptions { Role = IceRole.Controlling, TieBreaker = 2, Random = new Random(5), DisconnectedTimeout = S(10) },
                                       new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 1, Random = new Random(6) }, link);
        Assert.True(d.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, S(5)));
        d.RunFor(S(10) - d.Now);
        dropResponses = true;
        var lastResponse = a.LastSuccessResponseAt!.Value;

        var sentByABeforeFailure = 0;
        Assert.True(d.RunUntil(() => { sentByABeforeFailure = d.Link.SentFrom(LinkEnd.A); return a.State == IceConnectionState.Failed; }, S(60)));
        var failed = a.StateChanges.Last();
        Assert.Equal(IceStateReason.ConsentExpired, failed.Reason);
        Assert.Equal(lastResponse + S(30), failed.At);
        // A was never Disconnected: B's requests kept arriving.
        Assert.DoesNotContain(a.StateChanges, e => e.State == IceConnectionState.Disconnected);
        // Sending stops at once: no application data, nothing on the wire.
        Assert.Equal(IceSendStatus.Failed, a.SendData([0x80], d.Now).Status);
        d.RunFor(S(5));
        Assert.Equal(sentByABeforeFailure, d.Link.SentFrom(LinkEnd.A));
        Assert.Null(a.Agent.PollTimeout());
    }

    [Fact]
    public void ConsentChecksAreRandomizedWithinTwentyPercent()
    {
        var (a, b, d) = Connected(new IceAgentOptions { Role = IceRole.Controlling, TieBreaker = 2, Random = new Random(11) },
                                  new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 1, Random = new Random(12) });
        var start = d.Now;
        b.ReceivedStun.Clear();
        d.RunFor(S(300));
        var requests = b.ReceivedStun.Where(s => s.Type == 0x0001).Select(s => s.At).ToList();
        Assert.InRange(requests.Count, 50, 75);
        var intervals = requests.Zip(requests.Skip(1), (x, y) => y - x).ToList();
        Assert.All(intervals, i => Assert.InRange(i, S(4), S(6)));
        Assert.True(intervals.Min() < S(4.5) && intervals.Max() > S(5.5), "the jitter spreads over the range");
        Assert.InRange(intervals.Average(i => i.TotalSeconds), 4.7, 5.3);
        Assert.Equal(IceConnectionState.Connected, a.State);
    }

    [Fact]
    public void KeepalivesGoOutWhenNothingElseWasSentForTheInterval()
    {
        var (a, b, d) = Connected(new IceAgentOptions
        {
            Role = IceRole.Controlling,
            TieBreaker = 2,
            Random = new Random(1),
            ConsentInterval = TimeSpan.Zero,
            ConsentTimeout = TimeSpan.Zero
        },
                                  new IceAgentOptions
                                  {
                                      Role = IceRole.Controlled,
                                      TieBreaker = 1,
                                      Random = new Random(2),
                                      ConsentInterval = TimeSpan.Zero,
                                      ConsentTimeout = TimeSpan.Zero
                                  });
        b.ReceivedStun.Clear();
        var from = d.Now;
        d.RunFor(S(10));
        var indications = b.ReceivedStun.Where(s => s.Type == 0x0011).Select(s => s.At - from).ToList();
        // Default 3 s: an indication every 3 s exactly once nothing else is sent (consent is off here).
        Assert.InRange(indications.Count, 3, 4);
        Assert.All(indications.Zip(indications.Skip(1), (x, y) => y - x), i => Assert.Equal(S(3), i));

        // Application data counts as sent: while A sends every second, no indication goes out.
        b.ReceivedStun.Clear();
        var dataFrom = d.Now;
        for (var i = 0; i < 10; i++)
        {
            a.SendData([0x80, (byte)i], d.Now);
            d.RunFor(S(1));
        }
        // (An indication already in flight when the data started may still land within the link delay.)
        Assert.DoesNotContain(b.ReceivedStun, s => s.Type == 0x0011 && s.At > dataFrom + TimeSpan.FromMilliseconds(10));
        Assert.Equal(10, b.ApplicationData.Count);
    }

    [Fact]
    public void ZeroDisablesTheTimers()
    {
        IceAgentOptions NoTimers(IceRole role, int seed) => new()
        {
            Role = role,
            TieBreaker = (ulong)seed,
            Random = new Random(seed),
            DisconnectedTimeout = TimeSpan.Zero,
            FailedTimeout = TimeSpan.Zero,
            ConsentTimeout = TimeSpan.Zero,
        };
        var (a, b, d) = Connected(NoTimers(IceRole.Controlling, 2), NoTimers(IceRole.Controlled, 1));
        d.Link.Cut = true;
        d.RunFor(S(120));
        Assert.Equal(IceConnectionState.Connected, a.State);
        Assert.Equal(IceConnectionState.Connected, b.State);
    }

    [Fact]
    public void HundredMillisecondTimersAreHonouredExactly()
    {
        IceAgentOptions Tight(IceRole role, int seed) => new()
        {
            Role = role,
            TieBreaker = (ulong)seed,
            Random = new Random(seed),
            KeepaliveInterval = TimeSpan.FromMilliseconds(100),
            DisconnectedTimeout = TimeSpan.FromMilliseconds(100),
            FailedTimeout = TimeSpan.FromMilliseconds(100),
            ConsentInterval = TimeSpan.FromMilliseconds(100),
            ConsentTimeout = S(1),
        };
        var (a, _, d) = Connected(Tight(IceRole.Controlling, 2), Tight(IceRole.Controlled, 1));
        d.RunFor(S(2));
        Assert.Equal(IceConnectionState.Connected, a.State);
        d.Link.Cut = true;
        Assert.True(d.RunUntil(() => a.State == IceConnectionState.Failed, S(2)));
        var disconnected = a.StateChanges.Single(e => e.State == IceConnectionState.Disconnected);
        var failed = a.StateChanges.Last();
        Assert.Equal(a.LastReceivedAt!.Value + TimeSpan.FromMilliseconds(100), disconnected.At);
        Assert.Equal(disconnected.At + TimeSpan.FromMilliseconds(100), failed.At);
    }

    [Fact]
    public void PollTimeoutNamesTheTimerThatIsDue()
    {
        // PeerMoveSilence 0: no consent check at once on Disconnected (its retransmission would be the next timer).
        var (a, _, d) = Connected(new IceAgentOptions
        {
            Role = IceRole.Controlling,
            TieBreaker = 2,
            Random = new Random(1),
            KeepaliveInterval = S(1),
            ConsentInterval = S(10),
            DisconnectedTimeout = S(3),
            PeerMoveSilence = TimeSpan.Zero
        },
                                  new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 1, Random = new Random(2), KeepaliveInterval = S(1) });
        d.RunFor(S(1));
        Assert.NotNull(a.Agent.PollTimeout(out var timer));
        Assert.Equal(IceTimer.Keepalive, timer);
        d.Link.Cut = true;
        Assert.True(d.RunUntil(() => a.State == IceConnectionState.Disconnected, S(5)));
        // Keepalives still go out every second; the Failed timer is 25 s away.
        var due = a.Agent.PollTimeout(out timer);
        Assert.Equal(IceTimer.Keepalive, timer);
        a.Agent.Close(d.Now);
        a.DrainEvents();
        Assert.Null(a.Agent.PollTimeout(out timer));
        Assert.Equal(IceTimer.None, timer);
        Assert.Equal(IceSendStatus.Closed, a.Agent.TrySend(d.Now).Status);
        Assert.Equal(IceStateReason.Closed, a.StateChanges.Last().Reason);
        Assert.NotNull(due);
    }
}
