using System.Net;
using Transport.TestKit;

namespace Transport.Ice.Tests.Agent;

/// <summary>Two agents over the virtual link: checks, nomination, roles, lite, trickle, restart.</summary>
public sealed class IceAgentConnectivityTests
{
    private static TimeSpan S(double s) => TimeSpan.FromSeconds(s);
    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    private static IceAgentOptions Controlling(int seed = 1) => new() { Role = IceRole.Controlling, Random = new Random(seed), TieBreaker = 1000 };
    private static IceAgentOptions Controlled(int seed = 2) => new() { Role = IceRole.Controlled, Random = new Random(seed), TieBreaker = 500 };

    [Fact]
    public void TwoFullAgentsConnectOnTheHostPairAndCarryApplicationData()
    {
        var (a, b, driver) = AgentPeer.Pair(Controlling(), Controlled());
        Assert.True(driver.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, S(5)));
        // Check + response (20 ms), nomination waits for no better pair: one more round trip.
        Assert.True(driver.Now < Ms(200), $"connected at {driver.Now}");
        Assert.Equal(a.Local, a.Agent.SelectedLocal!.Address);
        Assert.Equal(b.Local, a.Agent.SelectedRemote!.Address);
        Assert.Equal(a.Local, b.Agent.SelectedRemote!.Address);

        var checking = a.StateChanges.First();
        Assert.Equal((IceConnectionState.New, IceConnectionState.Checking, IceStateReason.ChecksStarted), (checking.Previous, checking.State, checking.Reason));
        var connected = a.StateChanges.Last();
        Assert.Equal((IceConnectionState.Connected, IceStateReason.PairSelected), (connected.State, connected.Reason));
        Assert.Single(a.Events.OfType<IceSelectedPairChangedEvent>());

        var send = a.SendData([0x17, 0xFE, 0xFD, 1, 2, 3], driver.Now);
        Assert.Equal(IceSendStatus.Send, send.Status);
        Assert.Equal((a.Local, b.Local), (send.Local!, send.Remote!));
        driver.RunFor(Ms(50));
        Assert.Single(b.ApplicationData);
        Assert.Equal(new byte[] { 0x17, 0xFE, 0xFD, 1, 2, 3 }, b.ApplicationData[0].Data);
        Assert.Equal(0, a.Agent.DroppedTotal + b.Agent.DroppedTotal);
    }

    [Fact]
    public void SendingBeforeAPairIsSelectedNamesTheState()
    {
        var (a, _, _) = AgentPeer.Pair(Controlling(), Controlled(), signal: false);
        var result = a.Agent.TrySend(TimeSpan.Zero);
        Assert.Equal(IceSendStatus.NotConnected, result.Status);
        Assert.Equal(IceConnectionState.New, result.State);
        Assert.False(result.CanSend);
    }

    [Fact]
    public void FullControllingAgentConnectsWithALiteAgent()
    {
        var (a, b, driver) = AgentPeer.Pair(Controlling(), new IceAgentOptions { Lite = true, Random = new Random(3) });
        Assert.True(b.Agent.IsLite);
        Assert.Equal(IceRole.Controlled, b.Agent.CurrentRole);
        Assert.True(driver.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, S(5)));
        // The lite agent never sends a request: only responses and keepalive indications.
        driver.RunFor(S(20));
        Assert.DoesNotContain(a.ReceivedStun, s => s.Type == 0x0001);
        Assert.Equal(IceConnectionState.Connected, a.State);
        Assert.Equal(IceConnectionState.Connected, b.State);
    }

    [Theory]
    [InlineData(IceRole.Controlling)]
    [InlineData(IceRole.Controlled)]
    public void RoleConflictIsResolvedByTheTieBreaker(IceRole both)
    {
        var (a, b, driver) = AgentPeer.Pair(
            new IceAgentOptions { Role = both, TieBreaker = 10, Random = new Random(1) },
            new IceAgentOptions { Role = both, TieBreaker = 20, Random = new Random(2) });
        Assert.True(driver.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, S(10)));
        // The larger tie-breaker controls (RFC 8445 section 7.3.1.1).
        Assert.Equal(IceRole.Controlled, a.Agent.CurrentRole);
        Assert.Equal(IceRole.Controlling, b.Agent.CurrentRole);
        var changed = both == IceRole.Controlling ? a : b;
        Assert.Single(changed.Events.OfType<IceRoleChangedEvent>());
        if (both == IceRole.Controlling)
            Assert.Contains(a.ReceivedStun, s => s.Type == 0x0111); // a 487 Role Conflict came back to A
    }

    [Fact]
    public void TrickledCandidatesArriveLateAndStillConnect()
    {
        var (a, b, driver) = AgentPeer.Pair(Controlling(), Controlled(), signal: false);
        a.Agent.SetRemoteCredentials(b.Agent.LocalCredentials, TimeSpan.Zero);
        b.Agent.SetRemoteCredentials(a.Agent.LocalCredentials, TimeSpan.Zero);
        driver.RunFor(S(1));
        Assert.Equal(IceConnectionState.New, a.State);
        // Only A learns B's candidate; B learns A's from A's check (peer-reflexive, RFC 8445 section 7.3.1.3).
        foreach (var c in b.Agent.LocalCandidates) a.Agent.AddRemoteCandidate(c, driver.Now);
        Assert.True(driver.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, S(5)));
        Assert.Single(b.Events.OfType<IceRemoteCandidateLearnedEvent>());
        Assert.Equal(IceCandidateType.PeerReflexive, b.Agent.SelectedRemote!.Type);
        // A's candidate trickles in late: it replaces the peer-reflexive one on the same pair.
        foreach (var c in a.Agent.LocalCandidates) b.Agent.AddRemoteCandidate(c, driver.Now);
        Assert.Equal(IceCandidateType.Host, b.Agent.SelectedRemote!.Type);
        Assert.Single(b.Agent.CandidatePairs);
        driver.RunFor(S(10));
        Assert.Equal(IceConnectionState.Connected, b.State);
    }

    [Fact]
    public void EveryPairFailingAfterEndOfCandidatesFailsTheAgent()
    {
        var (a, b, driver) = AgentPeer.Pair(Controlling(), Controlled(), signal: false);
        a.Agent.SetRemoteCredentials(b.Agent.LocalCredentials, TimeSpan.Zero);
        var unreachable = new IceCandidate(IceCandidateType.Host, new IPEndPoint(IPAddress.Parse("10.0.0.9"), 9), 2130706431, "9");
        a.Agent.AddRemoteCandidate(unreachable, TimeSpan.Zero);
        a.Agent.AddRemoteEndOfCandidates(TimeSpan.Zero);
        Assert.True(driver.RunUntil(() => a.State == IceConnectionState.Failed, S(60)));
        var failed = a.StateChanges.Last();
        Assert.Equal(IceStateReason.AllPairsFailed, failed.Reason);
        // Default check schedule: 0, 0.5, 1.5, 3.1, 4.7, 6.3, 7.9 s, then 4 x 500 ms: failed at 9.9 s.
        Assert.Equal(S(9.9), failed.At);
        Assert.Equal(7, a.SwallowedTransmits);
        Assert.Null(a.Agent.PollTimeout());
    }

    [Fact]
    public void ChecksArePacedByTa()
    {
        var agent = new IceAgent(new IceAgentOptions { Ta = Ms(50), Random = new Random(1) });
        var local = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        agent.AddHostCandidate(local);
        agent.SetRemoteCredentials(IceCredentials.Generate(), TimeSpan.Zero);
        for (var i = 0; i < 3; i++)
            agent.AddRemoteCandidate(new IceCandidate(IceCandidateType.Host, new IPEndPoint(IPAddress.Parse("10.0.1." + (i + 1)), 5000),
                (uint)(2130706431 - i), "r" + i), TimeSpan.Zero);
        var firstSends = new Dictionary<IPEndPoint, TimeSpan>();
        var buffer = new byte[1500];
        var now = TimeSpan.Zero;
        while (now < Ms(120))
        {
            agent.HandleTimeout(now);
            while (agent.TryPollTransmit(buffer, out var length, out var t)) firstSends.TryAdd(t.Remote, now);
            now = agent.PollTimeout() ?? Ms(1000);
        }
        Assert.Equal(new[] { Ms(0), Ms(50), Ms(100) }, firstSends.Values.OrderBy(t => t).ToArray());
        // Highest pair priority first.
        Assert.Equal(IPAddress.Parse("10.0.1.1"), firstSends.MinBy(kv => kv.Value).Key.Address);
    }

    [Fact]
    public void EachRemoteAddressWhosePairsAllFailedIsReleasedOnce()
    {
        var agent = new IceAgent(new IceAgentOptions { Random = new Random(1) });
        agent.AddHostCandidate(new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000));
        agent.AddHostCandidate(new IPEndPoint(IPAddress.Parse("10.0.0.2"), 1000));
        agent.SetRemoteCredentials(IceCredentials.Generate(), TimeSpan.Zero);
        var remotes = Enumerable.Range(1, 3).Select(i => new IPEndPoint(IPAddress.Parse("10.0.1." + i), 5000)).ToArray();
        for (var i = 0; i < remotes.Length; i++)
            agent.AddRemoteCandidate(new IceCandidate(IceCandidateType.Host, remotes[i], (uint)(2130706431 - i), "r" + i), TimeSpan.Zero);
        // Nobody answers: every check times out. Two pairs go to each address; the address is released once, with its last pair.
        var released = new List<(TimeSpan At, IPEndPoint Address)>();
        var buffer = new byte[1500];
        var now = TimeSpan.Zero;
        for (var step = 0; step < 10_000 && now < S(60); step++)
        {
            agent.HandleTimeout(now);
            while (agent.TryPollTransmit(buffer, out _, out _)) { }
            while (agent.TryPollEvent(out var e))
                if (e is IceRemoteAddressReleasedEvent r)
                {
                    released.Add((now, r.Address));
                    Assert.All(agent.CandidatePairs.Where(p => p.Remote.Address.Equals(r.Address)), p => Assert.Equal(IceCandidatePairState.Failed, p.State));
                }
            now = agent.PollTimeout() ?? S(60);
        }
        Assert.Equal(remotes.OrderBy(r => r.ToString()), released.Select(r => r.Address).OrderBy(r => r.ToString()));
        Assert.Equal(3, agent.RemoteAddressesReleased);
    }

    [Fact]
    public void AnIceRestartOnTheSameAddressesReleasesNone()
    {
        var (a, b, driver) = AgentPeer.Pair(Controlling(), Controlled());
        Assert.True(driver.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, S(5)));
        var newA = a.Agent.Restart(driver.Now);
        var newB = b.Agent.Restart(driver.Now);
        b.Agent.SetRemoteCredentials(newA, driver.Now);
        a.Agent.SetRemoteCredentials(newB, driver.Now);
        foreach (var c in b.Agent.LocalCandidates) a.Agent.AddRemoteCandidate(c, driver.Now);
        foreach (var c in a.Agent.LocalCandidates) b.Agent.AddRemoteCandidate(c, driver.Now);
        Assert.True(driver.RunUntil(() => a.Events.OfType<IceSelectedPairChangedEvent>().Count() == 2
            && b.Events.OfType<IceSelectedPairChangedEvent>().Count() == 2, S(5)));
        driver.RunFor(S(5));
        // The old check list was dropped, but its address is the new selected pair's: nothing to forget.
        Assert.Empty(a.Events.OfType<IceRemoteAddressReleasedEvent>());
        Assert.Empty(b.Events.OfType<IceRemoteAddressReleasedEvent>());
    }

    [Fact]
    public void IceRestartKeepsDataFlowingOnTheOldPairUntilANewPairIsSelected()
    {
        var (a, b, driver) = AgentPeer.Pair(Controlling(), Controlled());
        Assert.True(driver.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, S(5)));
        var oldCredentials = a.Agent.LocalCredentials;

        var newA = a.Agent.Restart(driver.Now);
        var newB = b.Agent.Restart(driver.Now);
        Assert.NotEqual(oldCredentials, newA);
        // Data still goes out on the old pair while the new generation is being checked.
        Assert.Equal(IceSendStatus.Send, a.SendData([0x80, 1], driver.Now).Status);
        b.Agent.SetRemoteCredentials(newA, driver.Now);
        a.Agent.SetRemoteCredentials(newB, driver.Now);
        foreach (var c in b.Agent.LocalCandidates) a.Agent.AddRemoteCandidate(c, driver.Now);
        foreach (var c in a.Agent.LocalCandidates) b.Agent.AddRemoteCandidate(c, driver.Now);

        var statuses = new List<IceSendStatus>();
        Assert.True(driver.RunUntil(() =>
        {
            statuses.Add(a.SendData([0x80, 2], driver.Now).Status);
            return a.Events.OfType<IceSelectedPairChangedEvent>().Count() == 2 && b.Events.OfType<IceSelectedPairChangedEvent>().Count() == 2;
        }, S(5)));
        Assert.All(statuses, s => Assert.Equal(IceSendStatus.Send, s));
        Assert.Equal(IceConnectionState.Connected, a.State);
        driver.RunFor(S(1));
        Assert.True(b.ApplicationData.Count >= statuses.Count);
        // Old credentials are no longer accepted once the new pair is selected: everything keeps working on the new ones.
        driver.RunFor(S(40));
        Assert.Equal(IceConnectionState.Connected, a.State);
        Assert.Equal(IceConnectionState.Connected, b.State);
        Assert.Equal(0, a.Agent.DroppedTotal + b.Agent.DroppedTotal);
    }

    [Fact]
    public void AnIceRestartBeforeNominationKeepsDataOnTheValidPairOfThePreviousGeneration()
    {
        var (a, b, driver) = AgentPeer.Pair(Controlling(), Controlled());
        // A valid pair carries data (RFC 8445 section 12.1) but the nominating check has not gone out yet. B's own
        // check (held until A's arrived: ControlledCheckHold) has to succeed too, or B takes no data on the pair.
        Assert.True(driver.RunUntil(() => a.Agent.CanSendData && b.Agent.CanSendData, S(5)));
        Assert.Null(a.Agent.SelectedLocal);
        Assert.Null(b.Agent.SelectedLocal);
        var newA = a.Agent.Restart(driver.Now);
        var newB = b.Agent.Restart(driver.Now);
        Assert.True(a.Agent.CanSendData, "the restart took the only path data had");

        var statuses = new List<IceSendStatus>();
        var signalled = false;
        Assert.True(driver.RunUntil(() =>
        {
            statuses.Add(a.SendData([0x80, 3], driver.Now).Status);
            if (!signalled && driver.Now > S(0.2))
            {
                signalled = true;
                b.Agent.SetRemoteCredentials(newA, driver.Now);
                a.Agent.SetRemoteCredentials(newB, driver.Now);
                foreach (var c in b.Agent.LocalCandidates) a.Agent.AddRemoteCandidate(c, driver.Now);
                foreach (var c in a.Agent.LocalCandidates) b.Agent.AddRemoteCandidate(c, driver.Now);
            }
            return a.Agent.SelectedLocal is not null && b.Agent.SelectedLocal is not null;
        }, S(5)));
        Assert.All(statuses, s => Assert.Equal(IceSendStatus.Send, s));
        driver.RunFor(S(1));
        Assert.Equal(statuses.Count, b.ApplicationData.Count(d => d.Data[1] == 3));
        Assert.Equal(IceConnectionState.Connected, a.State);
        Assert.Equal(0, b.Agent.DroppedCount(IceDropReason.UnknownPeer));
    }

    [Fact]
    public void IPv6AgentsConnectAndAnIPv4CandidateIsNotPairedWithThem()
    {
        var ea = new IPEndPoint(IPAddress.Parse("2001:db8::1"), 1000);
        var eb = new IPEndPoint(IPAddress.Parse("2001:db8::2"), 2000);
        var a = new AgentPeer("A", new IceAgent(Controlling()), ea, eb);
        var b = new AgentPeer("B", new IceAgent(Controlled()), eb, ea);
        // A second, IPv4 address on A: no pair with B's IPv6 candidate (RFC 8445 section 6.1.2.2).
        a.Agent.AddHostCandidate(new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000));
        a.Signal(b, TimeSpan.Zero);
        b.Signal(a, TimeSpan.Zero);
        Assert.Single(a.Agent.CandidatePairs);
        var driver = new TwoPeerDriver(a, b);
        Assert.True(driver.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, S(5)));
        Assert.Equal(eb, a.Agent.SelectedRemote!.Address);
        Assert.Equal(ea, b.Agent.SelectedRemote!.Address);
    }

    [Fact]
    public void WithTwoLocalAddressesThePreferredOneIsSelected()
    {
        var ea = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var eb = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        var a = new AgentPeer("A", new IceAgent(Controlling()), ea, eb);
        var b = new AgentPeer("B", new IceAgent(Controlled()), eb, ea);
        // A's second address is unreachable on this link (its transmits are swallowed) and less preferred.
        var second = a.Agent.AddHostCandidate(new IPEndPoint(IPAddress.Parse("10.0.0.3"), 1000));
        Assert.True(second.Priority < a.Agent.LocalCandidates[0].Priority);
        a.Signal(b, TimeSpan.Zero);
        b.Signal(a, TimeSpan.Zero);
        Assert.Equal(2, a.Agent.CandidatePairs.Count);
        Assert.Equal(2, b.Agent.CandidatePairs.Count);
        var driver = new TwoPeerDriver(a, b);
        Assert.True(driver.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, S(5)));
        Assert.Equal(ea, a.Agent.SelectedLocal!.Address);
        Assert.Equal(ea, b.Agent.SelectedRemote!.Address);
    }

    [Fact]
    public void ChecksThatArriveBeforeTheAnswerAreAnsweredAndTheControlledSideConnectsOnceItHasCredentials()
    {
        var (a, b, driver) = AgentPeer.Pair(Controlling(), Controlled(), signal: false);
        a.Signal(b, TimeSpan.Zero); // A has B's answer; B has not received A's offer yet
        Assert.True(driver.RunUntil(() => a.State == IceConnectionState.Connected, S(2)));
        Assert.Equal(IceConnectionState.New, b.State);
        Assert.Equal(0, b.Agent.DroppedTotal);
        driver.RunFor(S(1) - driver.Now);
        b.Agent.SetRemoteCredentials(a.Agent.LocalCredentials, driver.Now);
        Assert.True(driver.RunUntil(() => b.State == IceConnectionState.Connected, S(1)));
        // B learnt A as peer-reflexive from the early checks, and followed A's nomination.
        Assert.Equal(a.Local, b.Agent.SelectedRemote!.Address);
        Assert.True(driver.Now < S(1.2), $"B connected at {driver.Now}");
    }

    [Fact]
    public void TooSmallTransmitBufferIsRefusedWithoutLosingTheDatagram()
    {
        var (a, _, _) = AgentPeer.Pair(Controlling(), Controlled());
        a.Agent.HandleTimeout(TimeSpan.Zero);
        Assert.Throws<ArgumentException>(() => a.Agent.TryPollTransmit(new byte[10], out _, out _));
        Assert.True(a.Agent.TryPollTransmit(new byte[1500], out var length, out var t));
        Assert.True(length > 10);
    }
}
