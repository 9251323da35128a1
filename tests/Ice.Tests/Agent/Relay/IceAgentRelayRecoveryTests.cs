using System.Net;
using System.Text;

namespace Transport.Ice.Tests.Agent.Relay;

/// <summary>
/// Relays that survive (issue 20), on virtual time through <see cref="FakeTurnRelay"/>: a TURN server restart found by
/// a Refresh (UDP) or by the closed TCP connection is followed by a new allocation on the same server, its relayed
/// candidate reported (to trickle) and paired, the old candidate's pairs removed with a reason, and the connection
/// back on the new relayed pair without the agents ever failing; when another valid pair exists the data moves there
/// at once. Both agents keep sending numbered data every 100 ms, and the new candidates are trickled to the peer as a
/// signaling channel would. Every link has a 10 ms one-way delay.
/// </summary>
public sealed class IceAgentRelayRecoveryTests
{
    private static readonly IPEndPoint HostA = new(IPAddress.Parse("10.0.0.1"), 1000);
    private static readonly IPEndPoint HostB = new(IPAddress.Parse("10.0.0.2"), 2000);

    private static IceAgentOptions Options(IceRole role, params Transport.Ice.Turn.TurnServerConfig[] servers) => new()
    {
        Role = role,
        TransportPolicy = IceTransportPolicy.Relay,
        TurnServers = servers,
        Random = new Random(3),
        TieBreaker = role == IceRole.Controlling ? 2UL : 1UL,
    };

    private static void Connect(RelayNetwork net, RelayNode a, RelayNode b)
    {
        a.Agent.StartGathering(net.Now);
        b.Agent.StartGathering(net.Now);
        Assert.True(net.RunUntil(() => a.EventsOf<IceGatheringCompleteEvent>().Any() && b.EventsOf<IceGatheringCompleteEvent>().Any(),
            TimeSpan.FromSeconds(60)));
        a.Signal(b, net.Now);
        b.Signal(a, net.Now);
        Assert.True(net.RunUntil(() => a.Agent.State == IceConnectionState.Connected && b.Agent.State == IceConnectionState.Connected
            && a.Agent.SelectedLocal is not null && b.Agent.SelectedLocal is not null, TimeSpan.FromSeconds(30)), $"A {a.Agent.State}, B {b.Agent.State}");
    }

    // Trickle: each agent's local candidates reach the other (AddRemoteCandidate ignores those it has).
    private static void Trickle(RelayNetwork net, RelayNode a, RelayNode b)
    {
        foreach (var (from, to) in new[] { (a, b), (b, a) })
        {
            if (to.Agent.State is IceConnectionState.Failed or IceConnectionState.Closed) continue;
            foreach (var c in from.Agent.LocalCandidates.ToArray()) to.Agent.AddRemoteCandidate(c, net.Now);
        }
    }

    /// <summary>Runs until <paramref name="until"/>, each agent sending "name:n" every 100 ms when it can, trickling candidates.</summary>
    private static void RunWithData(RelayNetwork net, RelayNode a, RelayNode b, TimeSpan until, Dictionary<RelayNode, int> sent, Func<bool>? stop = null)
    {
        var next = net.Now;
        for (var i = 0; i < 100_000 && net.Now < until; i++)
        {
            Trickle(net, a, b);
            if (stop?.Invoke() == true) return;
            if (net.Now >= next)
            {
                foreach (var n in new[] { a, b })
                    if (net.Send(n, Encoding.UTF8.GetBytes($"{n.Name}:{sent[n]}")).CanSend) sent[n]++;
                next = net.Now + TimeSpan.FromMilliseconds(100);
            }
            net.RunUntil(() => net.Now >= next, next - net.Now);
        }
    }

    private static List<int> Numbers(RelayNode receiver, string sender) =>
        receiver.ApplicationData.Select(d => Encoding.UTF8.GetString(d.Data)).Where(s => s.StartsWith(sender + ":", StringComparison.Ordinal))
            .Select(s => int.Parse(s[(sender.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture)).ToList();

    private static void AssertRecovered(RelayNode node, IceCandidate old, TimeSpan restartAt, TimeSpan bound)
    {
        Assert.DoesNotContain(node.EventsOf<IceStateChangedEvent>(), e => e.State == IceConnectionState.Failed);
        var expired = Assert.Single(node.EventsOf<IceRelayErrorEvent>(), e => e.Error == IceRelayError.AllocationExpired);
        Assert.Equal(old, expired.Candidate);
        var removed = Assert.Single(node.EventsOf<IceCandidatePairsRemovedEvent>());
        Assert.Equal((old, expired.At), (removed.Local, removed.At));
        Assert.True(removed.Count >= 1);
        Assert.DoesNotContain(node.Agent.CandidatePairs, p => p.Local == old);
        var recovered = Assert.Single(node.EventsOf<IceRelayRecoveredEvent>());
        Assert.Equal(1, recovered.Attempts);
        // The first attempt goes RelayReallocationDelay (500 ms) after the loss; Allocate, 401, Allocate, success: 40 ms.
        Assert.Equal(expired.At + TimeSpan.FromMilliseconds(540), recovered.At);
        // The new relayed candidate is reported like a gathered one (to trickle), at another address.
        var gathered = node.EventsOf<IceCandidateGatheredEvent>().Last();
        Assert.Equal((recovered.Candidate, recovered.At), (gathered.Candidate, gathered.At));
        Assert.NotEqual(old.Address, recovered.Candidate.Address);
        Assert.Equal(old.Priority, recovered.Candidate.Priority);
        Assert.Equal([recovered.Candidate], node.Agent.LocalCandidates);
        Assert.Equal(IceConnectionState.Connected, node.Agent.State);
        Assert.Equal(recovered.Candidate, node.Agent.ActiveLocal);
        var back = node.EventsOf<IceStateChangedEvent>().Last();
        Assert.Equal((IceConnectionState.Connected, IceStateReason.RelayRecovered), (back.State, back.Reason));
        Assert.InRange(back.At - restartAt, TimeSpan.Zero, bound);
    }

    [Fact]
    public void AfterAServerRestartTheRefreshProbeFindsTheLostUdpAllocationsAndBothAgentsComeBackOnNewOnesWithoutFailing()
    {
        var net = new RelayNetwork();
        var a = net.Add("A", Options(IceRole.Controlling, RelayNetwork.Config()), HostA);
        var b = net.Add("B", Options(IceRole.Controlled, RelayNetwork.Config()), HostB);
        Connect(net, a, b);
        var sent = new Dictionary<RelayNode, int> { [a] = 0, [b] = 0 };
        RunWithData(net, a, b, net.Now + TimeSpan.FromSeconds(3), sent);
        var (oldA, oldB) = (a.Agent.SelectedLocal!, b.Agent.SelectedLocal!);

        var restartAt = net.Now;
        net.RestartServer();
        RunWithData(net, a, b, restartAt + TimeSpan.FromSeconds(20), sent);

        // Over UDP nothing says the server forgot us: the data stops, the pair goes Disconnected (receive silence,
        // 2.5 s), and the Refresh sent then to probe the allocation is answered 437.
        foreach (var (node, old) in new[] { (a, oldA), (b, oldB) })
        {
            var silent = node.EventsOf<IceStateChangedEvent>().First(e => e.At > restartAt);
            Assert.Equal((IceConnectionState.Disconnected, IceStateReason.ReceiveSilence), (silent.State, silent.Reason));
            var probe = net.Server.LogOf(node.Host, "Refresh").Single(l => l.At > restartAt);
            Assert.Equal(silent.At + TimeSpan.FromMilliseconds(10), probe.At);
            var expired = node.EventsOf<IceRelayErrorEvent>().Single();
            Assert.Equal((437, silent.At + TimeSpan.FromMilliseconds(20)), (expired.ErrorCode, expired.At));
            AssertRecovered(node, old, restartAt, TimeSpan.FromSeconds(5));
        }
        Assert.Equal(b.Agent.SelectedLocal?.Address ?? b.Agent.ActiveLocal!.Address, a.Agent.ActiveRemote!.Address);
        Assert.Equal(a.Agent.ActiveLocal!.Address, b.Agent.ActiveRemote!.Address);

        // Data flows again both ways: the last second of what each sent arrived, in order, each once.
        foreach (var (receiver, sender, name) in new[] { (b, a, "A"), (a, b, "B") })
        {
            var got = Numbers(receiver, name);
            Assert.Equal(got.Distinct().Order(), got);
            Assert.Equal(Enumerable.Range(sent[sender] - 10, 10), got.TakeLast(10));
        }
    }

    [Fact]
    public void AClosedTcpConnectionIsFollowedByANewAllocationOnANewConnectionAndTheAgentsNeverFail()
    {
        var net = new RelayNetwork();
        var a = net.Add("A", Options(IceRole.Controlling, RelayNetwork.Config(tcp: true)), HostA);
        var b = net.Add("B", Options(IceRole.Controlled, RelayNetwork.Config(tcp: true)), HostB);
        Connect(net, a, b);
        var sent = new Dictionary<RelayNode, int> { [a] = 0, [b] = 0 };
        RunWithData(net, a, b, net.Now + TimeSpan.FromSeconds(2), sent);
        var (oldA, oldB) = (a.Agent.SelectedLocal!, b.Agent.SelectedLocal!);

        var restartAt = net.Now;
        net.RestartServer();
        // At once: the relay is reported lost with the driver's reason, its pairs are removed, and with no other pair
        // the agents are Disconnected (RelayLost): nothing can carry data until the new allocation.
        foreach (var (node, old) in new[] { (a, oldA), (b, oldB) })
        {
            var expired = node.EventsOf<IceRelayErrorEvent>().Single();
            Assert.Equal((IceRelayError.AllocationExpired, restartAt, "the server closed the connection"), (expired.Error, expired.At, expired.Reason));
            var state = node.EventsOf<IceStateChangedEvent>().Last();
            Assert.Equal((IceConnectionState.Disconnected, IceStateReason.RelayLost, restartAt), (state.State, state.Reason, state.At));
            Assert.False(node.Agent.CanSendData);
            Assert.Equal(IceSendStatus.NotConnected, node.Agent.TrySend(net.Now).Status);
        }
        RunWithData(net, a, b, restartAt + TimeSpan.FromSeconds(10), sent);

        foreach (var (node, old) in new[] { (a, oldA), (b, oldB) })
        {
            // The new Allocate (on a new connection) reached the server 510 ms after the close.
            Assert.Equal(restartAt + TimeSpan.FromMilliseconds(510), net.Server.LogOf(node.Host, "Allocate").First(l => l.At > restartAt).At);
            Assert.All(node.Transmits, t => Assert.True(t.Tcp));
            AssertRecovered(node, old, restartAt, TimeSpan.FromSeconds(2));
        }
        // The controlling agent nominated the new pair: both selected it.
        Assert.Equal(a.Agent.SelectedRemote!.Address, b.Agent.SelectedLocal!.Address);
        Assert.Equal(b.Agent.SelectedRemote!.Address, a.Agent.SelectedLocal!.Address);
        foreach (var (receiver, sender, name) in new[] { (b, a, "A"), (a, b, "B") })
        {
            var got = Numbers(receiver, name);
            Assert.Equal(got.Distinct().Order(), got);
            Assert.Equal(Enumerable.Range(sent[sender] - 10, 10), got.TakeLast(10));
        }
    }

    [Fact]
    public void WhenTheRelayUnderTheSelectedPairIsLostAnotherValidPairTakesTheDataAtOnceAndTheControllingAgentNominatesIt()
    {
        var net = new RelayNetwork();
        // A has two relays on the server, over TCP (listed first: preferred, selected) and over UDP; B one over UDP.
        var a = net.Add("A", Options(IceRole.Controlling, RelayNetwork.Config(tcp: true), RelayNetwork.Config()), HostA);
        var b = net.Add("B", Options(IceRole.Controlled, RelayNetwork.Config()), HostB);
        Connect(net, a, b);
        var sent = new Dictionary<RelayNode, int> { [a] = 0, [b] = 0 };
        RunWithData(net, a, b, net.Now + TimeSpan.FromSeconds(2), sent);
        var tcpRelay = a.Agent.SelectedLocal!;
        var udpRelay = a.Agent.LocalCandidates.Single(c => c != tcpRelay);
        Assert.True(tcpRelay.Priority > udpRelay.Priority);
        Assert.Contains(a.Agent.CandidatePairs, p => p.Local == udpRelay && p.State == IceCandidatePairState.Succeeded);

        var lostAt = net.Now;
        net.CloseTcp(a);
        // At once: the data goes on the other valid pair; A stays Connected.
        Assert.Equal(udpRelay, a.Agent.ActiveLocal);
        Assert.True(a.Agent.CanSendData);
        RunWithData(net, a, b, lostAt + TimeSpan.FromSeconds(5), sent);

        Assert.DoesNotContain(a.EventsOf<IceStateChangedEvent>(), e => e.At >= lostAt);
        Assert.DoesNotContain(b.EventsOf<IceStateChangedEvent>(), e => e.At >= lostAt && e.State == IceConnectionState.Failed);
        // A nominated the UDP relay's pair: selected one round of checks later.
        var moved = a.EventsOf<IceSelectedPairChangedEvent>().Last();
        Assert.Equal(udpRelay, moved.Local);
        Assert.InRange(moved.At - lostAt, TimeSpan.Zero, TimeSpan.FromMilliseconds(200));
        // B follows (the nomination, or A's data on the new pair once its selected pair has been silent 1 s).
        Assert.Equal(udpRelay.Address, b.Agent.SelectedRemote!.Address);
        Assert.InRange(b.EventsOf<IceSelectedPairChangedEvent>().Last().At - lostAt, TimeSpan.Zero, TimeSpan.FromSeconds(1.5));
        // The TCP relay was allocated again meanwhile: a new candidate, paired; the selection stays on the UDP relay.
        var recovered = Assert.Single(a.EventsOf<IceRelayRecoveredEvent>());
        Assert.Contains(recovered.Candidate, a.Agent.LocalCandidates);
        Assert.DoesNotContain(tcpRelay, a.Agent.LocalCandidates);
        Assert.Equal(udpRelay, a.Agent.SelectedLocal);
        // A's data went on without a gap: everything A sent from the loss on reached B, in order.
        var got = Numbers(b, "A");
        Assert.Equal(got.Distinct().Order(), got);
        Assert.Equal(Enumerable.Range(sent[a] - 30, 30), got.TakeLast(30));
    }

    [Fact]
    public void WhenEveryReallocationAttemptFailsTheAgentFailsWithRelayLostAfterTheLastOne()
    {
        var net = new RelayNetwork();
        var a = net.Add("A", Options(IceRole.Controlling, RelayNetwork.Config(tcp: true)) with { RelayReallocationAttempts = 3 }, HostA);
        var b = net.Add("B", Options(IceRole.Controlled, RelayNetwork.Config(tcp: true)), HostB);
        Connect(net, a, b);
        var lostAt = net.Now;
        net.Server.FailAllocate = (508, "Insufficient Capacity");
        net.CloseTcp(a);
        net.RunUntil(() => a.Agent.State == IceConnectionState.Failed, TimeSpan.FromSeconds(30));
        // Attempts at +0.5 s, then 1 s and 2 s after each failure (each answered 508 after 401 and a retry: 40 ms).
        var failures = a.EventsOf<IceRelayErrorEvent>().Where(e => e.Error == IceRelayError.AllocationFailed).ToList();
        Assert.Equal([0.54, 1.58, 3.62], failures.Select(f => Math.Round((f.At - lostAt).TotalSeconds, 3)));
        Assert.All(failures, f => Assert.Equal(508, f.ErrorCode));
        var failed = a.EventsOf<IceStateChangedEvent>().Last();
        Assert.Equal((IceConnectionState.Failed, IceStateReason.RelayLost, failures[^1].At), (failed.State, failed.Reason, failed.At));
    }

    [Fact]
    public void AfterTwoFailedAttemptsOnTheLostServerTheRelayFailsOverToTheOtherConfiguredServerAndTheAgentsComeBackThere()
    {
        var net = new RelayNetwork();
        var second = net.AddServer(new IPEndPoint(IPAddress.Parse("192.0.2.2"), 3478));
        var (s1, s2) = (RelayNetwork.Config(tcp: true), RelayNetwork.Config(tcp: true, server: second.EndPoint));
        // The second server refuses allocations at first: each agent gathers one relay, on the first server.
        second.FailAllocate = (508, "Insufficient Capacity");
        var a = net.Add("A", Options(IceRole.Controlling, s1, s2), HostA);
        var b = net.Add("B", Options(IceRole.Controlled, s1, s2), HostB);
        Connect(net, a, b);
        foreach (var node in new[] { a, b })
        {
            Assert.Equal(s2, Assert.Single(node.EventsOf<IceRelayErrorEvent>()).Server);
            Assert.Equal(FakeTurnRelay.RelayIp, Assert.Single(node.Agent.LocalCandidates).Address.Address);
        }
        var sent = new Dictionary<RelayNode, int> { [a] = 0, [b] = 0 };
        RunWithData(net, a, b, net.Now + TimeSpan.FromSeconds(2), sent);

        // The first server goes down for good (it restarts and refuses every Allocate); the second now has room.
        second.FailAllocate = null;
        net.Server.FailAllocate = (508, "Insufficient Capacity");
        var lostAt = net.Now;
        net.RestartServer();
        RunWithData(net, a, b, lostAt + TimeSpan.FromSeconds(10), sent);

        foreach (var node in new[] { a, b })
        {
            // Two attempts on the first server (+0.5 s, then 1 s after the failure), then the third, 2 s later, on the
            // second server: allocated 40 ms after it started (Allocate, 401, Allocate, success).
            var failures = node.EventsOf<IceRelayErrorEvent>().Where(e => e.At >= lostAt && e.Error == IceRelayError.AllocationFailed).ToList();
            Assert.Equal([0.54, 1.58], failures.Select(f => Math.Round((f.At - lostAt).TotalSeconds, 3)));
            Assert.All(failures, f => Assert.Equal(s1, f.Server));
            Assert.Equal(lostAt + TimeSpan.FromSeconds(3.59), second.LogOf(node.Host, "Allocate").Where(l => l.At > lostAt).First().At);
            var recovered = Assert.Single(node.EventsOf<IceRelayRecoveredEvent>());
            Assert.Equal((s2, 3, lostAt + TimeSpan.FromSeconds(3.62)), (recovered.Server, recovered.Attempts, recovered.At));
            Assert.Equal(second.EndPoint.Address, recovered.Candidate.Address.Address);
            Assert.Equal([recovered.Candidate], node.Agent.LocalCandidates);
            Assert.DoesNotContain(node.EventsOf<IceStateChangedEvent>(), e => e.State == IceConnectionState.Failed);
            Assert.Equal(IceConnectionState.Connected, node.Agent.State);
            Assert.Equal(recovered.Candidate, node.Agent.ActiveLocal);
            Assert.Equal(IceStateReason.RelayRecovered, node.EventsOf<IceStateChangedEvent>().Last().Reason);
        }
        Assert.True(second.Relayed > 0);
        // Data flows again both ways through the second server: the last second of what each sent arrived, in order.
        foreach (var (receiver, sender, name) in new[] { (b, a, "A"), (a, b, "B") })
        {
            var got = Numbers(receiver, name);
            Assert.Equal(got.Distinct().Order(), got);
            Assert.Equal(Enumerable.Range(sent[sender] - 10, 10), got.TakeLast(10));
        }
    }

    [Fact]
    public void WithFailoverOffEveryAttemptStaysOnTheLostServerAlthoughAnotherIsConfigured()
    {
        var net = new RelayNetwork();
        var second = net.AddServer(new IPEndPoint(IPAddress.Parse("192.0.2.2"), 3478));
        var (s1, s2) = (RelayNetwork.Config(tcp: true), RelayNetwork.Config(tcp: true, server: second.EndPoint));
        second.FailAllocate = (508, "Insufficient Capacity");
        var a = net.Add("A", Options(IceRole.Controlling, s1, s2) with { RelayFailoverAfter = 0, RelayReallocationAttempts = 3 }, HostA);
        var b = net.Add("B", Options(IceRole.Controlled, s1, s2), HostB);
        Connect(net, a, b);
        second.FailAllocate = null;
        net.Server.FailAllocate = (508, "Insufficient Capacity");
        var lostAt = net.Now;
        net.CloseTcp(a);
        net.RunUntil(() => a.Agent.State == IceConnectionState.Failed, TimeSpan.FromSeconds(30));
        var failures = a.EventsOf<IceRelayErrorEvent>().Where(e => e.At >= lostAt && e.Error == IceRelayError.AllocationFailed).ToList();
        Assert.Equal(3, failures.Count);
        Assert.All(failures, f => Assert.Equal(s1, f.Server));
        Assert.DoesNotContain(second.LogOf(HostA, "Allocate"), l => l.At > lostAt);
        Assert.Equal(IceStateReason.RelayLost, a.EventsOf<IceStateChangedEvent>().Last().Reason);
    }
}
