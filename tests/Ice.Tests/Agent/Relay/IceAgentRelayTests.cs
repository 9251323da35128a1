using System.Net;
using System.Text;
using Transport.Ice.Stun;
using Transport.Ice.Turn;

namespace Transport.Ice.Tests.Agent.Relay;

/// <summary>
/// Relayed candidates in the agent (RFC 8445 section 5.1.1.2 with RFC 8656), on virtual time through
/// <see cref="FakeTurnRelay"/>: gathering, priority and SDP form, the relay-only policy, checks and data wrapped for
/// the server (Send indications, then ChannelData), permissions before the first check, refresh timers, and every
/// failure reported as an event with its reason at an exact time. Every link has a 10 ms one-way delay.
/// </summary>
public sealed class IceAgentRelayTests
{
    private static readonly IPEndPoint HostA = new(IPAddress.Parse("10.0.0.1"), 1000);
    private static readonly IPEndPoint HostB = new(IPAddress.Parse("10.0.0.2"), 2000);
    private static readonly TimeSpan Ms10 = TimeSpan.FromMilliseconds(10);

    private static IceAgentOptions Options(IceRole role, IceTransportPolicy policy = IceTransportPolicy.Relay, bool tcp = false,
        string password = FakeTurnRelay.Pass,
        Func<TurnClientOptions, TurnClientOptions>? configure = null, int reallocation = 5) => new()
        {
            RelayReallocationAttempts = reallocation,
            Role = role,
            TransportPolicy = policy,
            TurnServers = [RelayNetwork.Config(tcp, password)],
            ConfigureTurnClient = configure,
            Random = new Random(3),
            TieBreaker = role == IceRole.Controlling ? 2UL : 1UL,
        };

    private static (RelayNetwork Net, RelayNode A, RelayNode B) Connected(IceTransportPolicy policy = IceTransportPolicy.Relay, bool tcp = false,
        Func<TurnClientOptions, TurnClientOptions>? configure = null, Action<FakeTurnRelay>? server = null, int reallocation = 5)
    {
        var net = new RelayNetwork();
        server?.Invoke(net.Server);
        var a = net.Add("A", Options(IceRole.Controlling, policy, tcp, configure: configure, reallocation: reallocation), HostA);
        var b = net.Add("B", Options(IceRole.Controlled, policy, tcp, configure: configure, reallocation: reallocation), HostB);
        a.Agent.StartGathering(net.Now);
        b.Agent.StartGathering(net.Now);
        Assert.True(net.RunUntil(() => a.EventsOf<IceGatheringCompleteEvent>().Any() && b.EventsOf<IceGatheringCompleteEvent>().Any(),
            TimeSpan.FromSeconds(60)));
        a.Signal(b, net.Now);
        b.Signal(a, net.Now);
        Assert.True(net.RunUntil(() => a.Agent.State == IceConnectionState.Connected && b.Agent.State == IceConnectionState.Connected,
            TimeSpan.FromSeconds(30)),
            $"A {a.Agent.State}, B {b.Agent.State}");
        return (net, a, b);
    }

    [Fact]
    public void ARelayOnlyAgentGathersOnlyItsRelayedCandidateWithTypePreferenceZeroAndTheMappedAddressAsRelatedAddress()
    {
        var net = new RelayNetwork();
        var a = net.Add("A", Options(IceRole.Controlling), HostA);
        a.Agent.StartGathering(TimeSpan.Zero);
        Assert.True(net.RunUntil(() => a.EventsOf<IceGatheringCompleteEvent>().Any(), TimeSpan.FromSeconds(5)));

        // Allocate at 0, 401 back at 20 ms, Allocate with credentials, success at exactly 40 ms.
        var gathered = Assert.Single(a.EventsOf<IceCandidateGatheredEvent>());
        Assert.Equal(TimeSpan.FromMilliseconds(40), gathered.At);
        Assert.Equal(TimeSpan.FromMilliseconds(40), a.EventsOf<IceGatheringCompleteEvent>().Single().At);
        var relay = gathered.Candidate;
        Assert.Equal(IceCandidateType.Relayed, relay.Type);
        Assert.Equal(new IPEndPoint(FakeTurnRelay.RelayIp, 50000), relay.Address);
        Assert.Equal(relay.Address, relay.Base);
        Assert.Equal(HostA, relay.RelatedAddress);
        // RFC 8445 section 5.1.2.1: 2^24 * 0 + 2^8 * 65535 + (256 - 1).
        Assert.Equal(16_777_215u, relay.Priority);
        Assert.Equal($"candidate:{relay.Foundation} 1 udp 16777215 192.0.2.1 50000 typ relay raddr 10.0.0.1 rport 1000", relay.ToSdp());
        Assert.True(IceCandidate.TryParse(relay.ToSdp(), out var parsed));
        Assert.Equal(IceCandidateType.Relayed, parsed.Type);
        Assert.Equal(HostA, parsed.RelatedAddress);
        // The host address is never signalled under the relay-only policy.
        Assert.Equal([relay], a.Agent.LocalCandidates);
        Assert.Equal(["Allocate", "Allocate"], net.Server.Log.Select(l => l.What));
        Assert.Equal(0, a.Swallowed);
    }

    [Fact]
    public void TwoRelayOnlyAgentsConnectThroughTheServerAndExchangeDataFirstInSendIndicationsThenInChannelData()
    {
        var (net, a, b) = Connected();
        Assert.Equal(IceCandidateType.Relayed, a.Agent.SelectedLocal!.Type);
        Assert.Equal(IceCandidateType.Relayed, b.Agent.SelectedLocal!.Type);
        Assert.Equal(b.Agent.SelectedLocal!.Address, a.Agent.SelectedRemote!.Address);
        Assert.Equal(a.Agent.SelectedLocal!.Address, b.Agent.SelectedRemote!.Address);

        // Each agent asked a permission for the other's relayed IP before its first check went out through the relay.
        foreach (var node in new[] { a, b })
        {
            var log = net.Server.Log.Where(l => l.Client.Equals(node.Host)).Select(l => l.What).ToList();
            Assert.True(log.IndexOf("CreatePermission") >= 0 && log.IndexOf("CreatePermission") < log.IndexOf("Send"), string.Join(",", log));
        }
        Assert.Equal(0, net.Server.DroppedWithoutPermission);
        // Exact times: signalled at 40 ms, CreatePermission at the server at 50 ms, its answer back at 60 ms, and the check
        // that was held meanwhile reaches the server at 70 ms.
        Assert.Equal(TimeSpan.FromMilliseconds(50), net.Server.LogOf(HostA, "CreatePermission").First().At);
        Assert.Equal(TimeSpan.FromMilliseconds(70), net.Server.LogOf(HostA, "Send").First().At);

        // The selected pair gets a channel (RFC 8656 section 12); until it is bound, data goes in Send indications.
        var peerOfA = StunAddress.FromEndPoint(a.Agent.SelectedRemote!.Address);
        var peerOfB = StunAddress.FromEndPoint(b.Agent.SelectedRemote!.Address);
        var sendsBefore = net.Server.LogOf(HostA, "Send").Count();
        Assert.True(net.Send(a, "before the channel"u8.ToArray()).CanSend);
        Assert.True(net.RunUntil(() => b.ApplicationData.Count == 1, TimeSpan.FromSeconds(1)));
        // The channel is not bound yet (its ChannelBind is still on the way): the data went in a Send indication.
        Assert.Equal(sendsBefore + 1, net.Server.LogOf(HostA, "Send").Count());
        Assert.Equal("before the channel", Encoding.UTF8.GetString(b.ApplicationData[0].Data));
        b.ApplicationData.Clear();
        Assert.True(net.RunUntil(() => a.Turn.GetBoundChannel(peerOfA) != 0 && b.Turn.GetBoundChannel(peerOfB) != 0, TimeSpan.FromSeconds(1)));
        Assert.Single(net.Server.LogOf(HostA, "ChannelBind"));

        for (var i = 0; i < 5; i++)
        {
            Assert.True(net.Send(a, Encoding.UTF8.GetBytes($"A{i}")).Relayed);
            Assert.True(net.Send(b, Encoding.UTF8.GetBytes($"B{i}")).Relayed);
        }
        net.RunFor(TimeSpan.FromMilliseconds(50));
        Assert.Equal(["A0", "A1", "A2", "A3", "A4"], b.ApplicationData.Select(d => Encoding.UTF8.GetString(d.Data)));
        Assert.Equal(["B0", "B1", "B2", "B3", "B4"], a.ApplicationData.Select(d => Encoding.UTF8.GetString(d.Data)));
        // Sent at t, delivered at t + 20 ms (agent -> server -> agent).
        Assert.All(b.ApplicationData, d => Assert.Equal(a.ApplicationData[0].At, d.At));
        Assert.True(net.Server.LogOf(HostA, "ChannelData").Count() >= 5);
        // Nothing went anywhere but to the server, nothing was dropped.
        Assert.All(a.Transmits.Concat(b.Transmits), t => Assert.Equal(FakeTurnRelay.Address, t.Remote));
        Assert.Equal(0, a.Swallowed + b.Swallowed);
        Assert.Equal(0, a.Agent.DroppedTotal + b.Agent.DroppedTotal);
    }

    [Fact]
    public void TheRelayedDataPathAllocatesNothingPerPacket()
    {
        var (net, a, b) = Connected();
        var peerOfA = StunAddress.FromEndPoint(a.Agent.SelectedRemote!.Address);
        var peerOfB = StunAddress.FromEndPoint(b.Agent.SelectedRemote!.Address);
        Assert.True(net.RunUntil(() => a.Turn.GetBoundChannel(peerOfA) != 0 && b.Turn.GetBoundChannel(peerOfB) != 0, TimeSpan.FromSeconds(1)));
        var payload = new byte[1000];
        payload[0] = 23; // a DTLS record
        var wrapped = new byte[1100];
        // What the server relays to B: ChannelData on B's channel to A's relayed address.
        var relayedToB = new byte[1100];
        var relayedLength = ChannelData.Write(relayedToB, b.Turn.GetBoundChannel(peerOfB), payload, padded: false);
        var now = net.Now;
        var received = 0;
        void OnePacket()
        {
            // No assertion inside the measured loop: only plain comparisons.
            if (!a.Agent.TrySend(payload, wrapped, now, out var size, out var t).CanSend || size != ChannelData.HeaderSize + payload.Length) return;
            if (b.Agent.HandleDatagram(relayedToB.AsSpan(0, relayedLength), HostB, FakeTurnRelay.Address, now, out var data) == IceReceiveResult.ApplicationData
                && data.Length == payload.Length) received++;
        }
        for (var i = 0; i < 100; i++) OnePacket(); // warm-up
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++) OnePacket();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(1100, received);
    }

    [Fact]
    public void OverTcpToTheServerTransmitsAreMarkedTcpAndFramesComeBackThroughHandleStreamFrame()
    {
        var (net, a, b) = Connected(tcp: true);
        Assert.True(net.RunUntil(() => a.Turn.GetBoundChannel(StunAddress.FromEndPoint(a.Agent.SelectedRemote!.Address)) != 0
                                       && b.Turn.GetBoundChannel(StunAddress.FromEndPoint(b.Agent.SelectedRemote!.Address)) != 0, TimeSpan.FromSeconds(1)));
        // Odd sizes (a DTLS and an RTP first byte): ChannelData over TCP is padded to 4 bytes (RFC 8656 section 12.5), the payload is not.
        net.Send(a, [23, 2, 3, 4, 5]);
        net.Send(b, [128, 8, 7]);
        net.RunFor(TimeSpan.FromMilliseconds(50));
        Assert.Equal([23, 2, 3, 4, 5], b.ApplicationData.Single().Data);
        Assert.Equal([128, 8, 7], a.ApplicationData.Single().Data);
        Assert.All(a.Transmits.Concat(b.Transmits), t => Assert.True(t.Tcp));
        Assert.Equal(TurnTransport.Tcp, a.Turn.Options.Transport);
        Assert.Equal(0, a.Agent.DroppedTotal + b.Agent.DroppedTotal);
    }

    [Fact]
    public void AWrongTurnPasswordIsAnAuthenticationErrorEventAndGatheringCompletesWithoutARelay()
    {
        var net = new RelayNetwork();
        var a = net.Add("A", Options(IceRole.Controlling, password: "wrong"), HostA);
        a.Agent.StartGathering(TimeSpan.Zero);
        net.RunFor(TimeSpan.FromSeconds(5));
        var error = Assert.Single(a.EventsOf<IceRelayErrorEvent>());
        Assert.Equal(TimeSpan.FromMilliseconds(40), error.At);
        Assert.Equal(IceRelayError.AllocationFailed, error.Error);
        Assert.Equal(TurnFailureKind.Authentication, error.FailureKind);
        Assert.Equal(401, error.ErrorCode);
        Assert.Contains("relay.test", error.Reason);
        Assert.Equal(HostA, error.HostBase);
        Assert.Equal(FakeTurnRelay.Address, error.Server.TryGetEndPoint());
        Assert.Null(error.Candidate);
        Assert.Equal(TimeSpan.FromMilliseconds(40), a.EventsOf<IceGatheringCompleteEvent>().Single().At);
        Assert.Empty(a.Agent.LocalCandidates);
        Assert.Equal(IceConnectionState.New, a.Agent.State);
    }

    [Fact]
    public void AnAllocateRefusedWith486IsReportedWithTheServersReason()
    {
        var net = new RelayNetwork();
        net.Server.FailAllocate = (486, "Allocation Quota Reached");
        var a = net.Add("A", Options(IceRole.Controlling), HostA);
        a.Agent.StartGathering(TimeSpan.Zero);
        net.RunFor(TimeSpan.FromSeconds(5));
        var error = Assert.Single(a.EventsOf<IceRelayErrorEvent>());
        Assert.Equal((TimeSpan.FromMilliseconds(40), IceRelayError.AllocationFailed, TurnFailureKind.ErrorResponse, 486),
            (error.At, error.Error, error.FailureKind, error.ErrorCode));
        Assert.Contains("Allocation Quota Reached", error.Reason);
        Assert.Single(a.EventsOf<IceGatheringCompleteEvent>());
    }

    [Fact]
    public void ASilentTurnServerIsReportedAsATimeoutAtExactly39AndAHalfSeconds()
    {
        var net = new RelayNetwork();
        net.Server.Answer = false;
        var a = net.Add("A", Options(IceRole.Controlling), HostA);
        a.Agent.StartGathering(TimeSpan.Zero);
        net.RunFor(TimeSpan.FromSeconds(60));
        var error = Assert.Single(a.EventsOf<IceRelayErrorEvent>());
        Assert.Equal((TimeSpan.FromSeconds(39.5), IceRelayError.AllocationFailed, TurnFailureKind.Timeout), (error.At, error.Error, error.FailureKind));
        Assert.Equal(TimeSpan.FromSeconds(39.5), a.EventsOf<IceGatheringCompleteEvent>().Single().At);
        // RFC 8489 section 6.2.1: sends at 0, 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s.
        Assert.Equal([0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5], net.Server.Log.Select(l => (l.At - Ms10).TotalSeconds));
    }

    [Fact]
    public void WithReallocationOffARefusedRefreshRemovesTheRelayedCandidateAndFailsTheAgentOnItWithRelayLost()
    {
        // Granted 100 s (less than twice the 60 s margin): the Refresh goes at half the lifetime, 50 s after the
        // allocation at 40 ms; its 437 comes back 20 ms later.
        var (net, a, b) = Connected(server: s => { s.GrantedLifetime = 100; s.RefuseRefresh = true; }, reallocation: 0);
        var candidate = a.Agent.SelectedLocal!;
        net.RunFor(TimeSpan.FromSeconds(60) - net.Now);
        var refresh = net.Server.LogOf(HostA, "Refresh").First();
        Assert.Equal(TimeSpan.FromSeconds(50.04), refresh.At - Ms10);
        var error = Assert.Single(a.EventsOf<IceRelayErrorEvent>());
        Assert.Equal((TimeSpan.FromSeconds(50.06), IceRelayError.AllocationExpired, 437), (error.At, error.Error, error.ErrorCode));
        Assert.Equal(candidate, error.Candidate);
        Assert.DoesNotContain(candidate, a.Agent.LocalCandidates);
        var failed = a.EventsOf<IceStateChangedEvent>().Last();
        Assert.Equal((IceConnectionState.Failed, IceStateReason.RelayLost, TimeSpan.FromSeconds(50.06)), (failed.State, failed.Reason, failed.At));
        Assert.Equal(IceSendStatus.Failed, a.Agent.TrySend(net.Now).Status);
    }

    [Fact]
    public void AnAllocationThatIsNotRefreshedExpiresAtExactlyItsLifetime()
    {
        var (net, a, _) = Connected(configure: o => o with { RefreshAllocation = false }, server: s => s.GrantedLifetime = 30, reallocation: 0);
        net.RunFor(TimeSpan.FromSeconds(40) - net.Now);
        var error = Assert.Single(a.EventsOf<IceRelayErrorEvent>());
        // Allocated at 40 ms with 30 s.
        Assert.Equal((TimeSpan.FromSeconds(30.04), IceRelayError.AllocationExpired, 0), (error.At, error.Error, error.ErrorCode));
        Assert.Contains("lifetime", error.Reason);
        Assert.Equal(IceStateReason.RelayLost, a.EventsOf<IceStateChangedEvent>().Last().Reason);
        Assert.Empty(net.Server.LogOf(HostA, "Refresh"));
    }

    [Fact]
    public void WhileConnectedTheAgentRefreshesTheAllocationThePermissionAndTheChannelOnTheirTimers()
    {
        var (net, a, b) = Connected();
        net.RunFor(TimeSpan.FromSeconds(1200) - net.Now);
        Assert.Equal(IceConnectionState.Connected, a.Agent.State);
        Assert.Equal(IceConnectionState.Connected, b.Agent.State);
        Assert.Empty(a.EventsOf<IceRelayErrorEvent>());
        TimeSpan[] Sent(string what) => net.Server.LogOf(HostA, what).Select(l => l.At - Ms10).ToArray();
        var refresh = Sent("Refresh");
        var permission = Sent("CreatePermission");
        var channel = Sent("ChannelBind");
        // Allocation: 600 s granted at 0.04 s, refreshed 60 s before it ends; each success (20 ms later) restarts the lifetime.
        Assert.Equal([TimeSpan.FromSeconds(540.04), TimeSpan.FromSeconds(1080.06)], refresh);
        // Permission: asked when B's candidate arrived (0.04 s), then every 240 s after each answer (20 ms later).
        Assert.Equal([0.04, 240.06, 480.08, 720.10, 960.12], permission.Select(t => Math.Round(t.TotalSeconds, 6)));
        // Channel: bound when the pair was selected, then every 540 s after each answer.
        Assert.Equal([channel[0], channel[0] + TimeSpan.FromSeconds(540.02), channel[0] + TimeSpan.FromSeconds(1080.04)], channel);
        Assert.True(net.Server.HasAllocation(HostA));
    }

    [Fact]
    public void WithTheDefaultPolicyAgentsWhoseHostsCannotReachEachOtherConnectThroughTheRelay()
    {
        var (net, a, b) = Connected(policy: IceTransportPolicy.All);
        Assert.Equal([IceCandidateType.Host, IceCandidateType.Relayed], a.Agent.LocalCandidates.Select(c => c.Type));
        Assert.True(a.Agent.LocalCandidates[0].Priority > a.Agent.LocalCandidates[1].Priority);
        Assert.Equal(IceCandidateType.Relayed, a.Agent.SelectedLocal!.Type);
        Assert.Equal(IceCandidateType.Relayed, b.Agent.SelectedLocal!.Type);
        Assert.True(a.Swallowed > 0); // the checks between hosts went nowhere
        net.Send(a, [23]);
        net.RunFor(TimeSpan.FromMilliseconds(30));
        Assert.Equal([23], b.ApplicationData.Single().Data);
    }

    [Fact]
    public void TheMappedAddressOfTheAllocateResponseIsAlsoAServerReflexiveCandidateWhenItDiffersFromTheHost()
    {
        var net = new RelayNetwork();
        var nat = new IPEndPoint(IPAddress.Parse("198.51.100.7"), 40000);
        net.Server.MappedAddress = _ => nat;
        var a = net.Add("A", Options(IceRole.Controlling, IceTransportPolicy.All), HostA);
        a.Agent.StartGathering(TimeSpan.Zero);
        net.RunFor(TimeSpan.FromSeconds(1));
        Assert.Equal([IceCandidateType.Host, IceCandidateType.Relayed, IceCandidateType.ServerReflexive], a.Agent.LocalCandidates.Select(c => c.Type));
        var srflx = a.Agent.LocalCandidates[2];
        Assert.Equal(nat, srflx.Address);
        Assert.Equal(HostA, srflx.Base);
        Assert.EndsWith("typ srflx raddr 10.0.0.1 rport 1000", srflx.ToSdp());
        Assert.Equal(nat, a.Agent.LocalCandidates[1].RelatedAddress);
    }

    [Fact]
    public void AServerThatIsBothTheStunAndTheTurnServerAnswersBothOnOneSocketAndTheSameMappingGivesOneServerReflexiveCandidate()
    {
        var net = new RelayNetwork();
        var nat = new IPEndPoint(IPAddress.Parse("198.51.100.7"), 40000);
        net.Server.MappedAddress = _ => nat;
        var a = net.Add("A", Options(IceRole.Controlling, IceTransportPolicy.All) with { StunServers = [FakeTurnRelay.Address] }, HostA);
        a.Agent.StartGathering(TimeSpan.Zero);
        net.RunFor(TimeSpan.FromSeconds(1));
        // The Binding response (at 20 ms) went to the agent's own transaction, not to the TURN client on that socket.
        Assert.Equal([IceCandidateType.Host, IceCandidateType.ServerReflexive, IceCandidateType.Relayed], a.Agent.LocalCandidates.Select(c => c.Type));
        Assert.Equal(TimeSpan.FromMilliseconds(20),
            a.EventsOf<IceCandidateGatheredEvent>().Single(e => e.Candidate.Type == IceCandidateType.ServerReflexive).At);
        Assert.Equal(nat, a.Agent.LocalCandidates[1].Address);
        Assert.Equal(TimeSpan.FromMilliseconds(40), a.EventsOf<IceGatheringCompleteEvent>().Single().At);
        Assert.Equal(0, a.Agent.DroppedTotal);
        Assert.Equal(0, a.Turn.Dropped.Total);
    }

    [Fact]
    public void WithReallocationOffALostTcpConnectionToTheServerRemovesTheRelayAndFailsTheAgentOnIt()
    {
        var (net, a, _) = Connected(tcp: true, reallocation: 0);
        var candidate = a.Agent.SelectedLocal!;
        a.Agent.TurnConnectionClosed(HostA, FakeTurnRelay.Address, net.Now);
        a.DrainEvents();
        var error = Assert.Single(a.EventsOf<IceRelayErrorEvent>());
        Assert.Equal((IceRelayError.AllocationExpired, net.Now, candidate), (error.Error, error.At, error.Candidate));
        Assert.Contains("TCP connection", error.Reason);
        Assert.Equal((IceConnectionState.Failed, IceStateReason.RelayLost), (a.Agent.State, a.EventsOf<IceStateChangedEvent>().Last().Reason));
    }

    [Fact]
    public void UnderTheRelayOnlyPolicyAnAuthenticatedCheckSentStraightToTheHostAddressIsDroppedUnanswered()
    {
        var net = new RelayNetwork();
        var a = net.Add("A", Options(IceRole.Controlled), HostA);
        a.Agent.StartGathering(TimeSpan.Zero);
        net.RunFor(TimeSpan.FromSeconds(1));
        var peer = new IceCredentials("peer", "peerpasswordpeerpassword");
        a.Agent.SetRemoteCredentials(peer, net.Now);
        var check = new byte[256];
        var w = new StunMessageWriter(check, StunMessageType.BindingRequest, new byte[12]);
        w.AddString(StunAttributeType.Username, a.Agent.LocalCredentials.Ufrag + ":peer");
        w.AddUInt32(StunAttributeType.Priority, 1234);
        w.AddUInt64(StunAttributeType.IceControlling, 99);
        using (var key = StunKey.ShortTerm(a.Agent.LocalCredentials.Password)) { w.AddMessageIntegrity(key); }
        w.AddFingerprint();
        var transmitsBefore = a.Transmits.Count;
        Assert.Equal(IceReceiveResult.Dropped, a.Agent.HandleDatagram(check.AsSpan(0, w.Length), HostA, HostB, net.Now));
        Assert.Equal(1, a.Agent.DroppedCount(IceDropReason.UnknownLocalAddress));
        net.Flush();
        Assert.Equal(transmitsBefore, a.Transmits.Count);
        Assert.DoesNotContain(a.Agent.LocalCandidates, c => c.Type == IceCandidateType.Host);
    }

    [Fact]
    public void GarbageFromTheTurnServerAddressIsDroppedAndCountedAndTheRelayedPairStaysUp()
    {
        var (net, a, _) = Connected();
        var random = new Random(11);
        var buffer = new byte[200];
        for (var i = 0; i < 3000; i++)
        {
            var length = random.Next(0, buffer.Length);
            random.NextBytes(buffer.AsSpan(0, length));
            // Half of them look like ChannelData or STUN at first glance.
            if (length > 0 && i % 2 == 0) buffer[0] = (byte)(i % 4 == 0 ? 0x40 : 0x01);
            a.Agent.HandleDatagram(buffer.AsSpan(0, length), HostA, FakeTurnRelay.Address, net.Now, out _);
        }
        Assert.True(a.Agent.DroppedCount(IceDropReason.TurnDropped) > 2000);
        net.RunFor(TimeSpan.FromSeconds(10));
        Assert.Equal(IceConnectionState.Connected, a.Agent.State);
        Assert.Empty(a.EventsOf<IceRelayErrorEvent>());
    }

    [Fact]
    public void AnIceRestartOfRelayOnlyAgentsSelectsANewRelayedPairWithoutRefusingASend()
    {
        var (net, a, b) = Connected();
        var oldPair = (a.Agent.SelectedLocal, a.Agent.SelectedRemote);
        a.Agent.Restart(net.Now);
        b.Agent.Restart(net.Now);
        a.Signal(b, net.Now);
        b.Signal(a, net.Now);
        var refused = 0;
        var selections = a.EventsOf<IceSelectedPairChangedEvent>().Count();
        Assert.True(net.RunUntil(() =>
        {
            if (!net.Send(a, [23]).CanSend) refused++;
            return a.EventsOf<IceSelectedPairChangedEvent>().Count() > selections;
        }, TimeSpan.FromSeconds(10)));
        Assert.Equal(0, refused);
        Assert.Equal(IceCandidateType.Relayed, a.Agent.SelectedLocal!.Type);
        Assert.Equal(oldPair.SelectedLocal!.Address, a.Agent.SelectedLocal.Address); // the same allocation serves the new generation
        Assert.Equal(IceConnectionState.Connected, a.Agent.State);
        Assert.Equal(0, a.Agent.DroppedTotal);
    }

    [Fact]
    public void ARefusedPermissionIsReportedOnceAndFailsThePairsToThatPeerAtOnce()
    {
        var net = new RelayNetwork();
        net.Server.RefusePermissionsOf = HostA;
        var a = net.Add("A", Options(IceRole.Controlling), HostA);
        var b = net.Add("B", Options(IceRole.Controlled), HostB);
        a.Agent.StartGathering(net.Now);
        b.Agent.StartGathering(net.Now);
        Assert.True(net.RunUntil(() => a.EventsOf<IceGatheringCompleteEvent>().Any() && b.EventsOf<IceGatheringCompleteEvent>().Any(),
            TimeSpan.FromSeconds(1)));
        a.Signal(b, net.Now);
        a.Agent.AddRemoteEndOfCandidates(net.Now);
        b.Signal(a, net.Now);
        net.RunFor(TimeSpan.FromSeconds(20));
        // Signalled at 40 ms; the 403 is back at 60 ms: reported once, the only pair failed, and the agent with it.
        var error = Assert.Single(a.EventsOf<IceRelayErrorEvent>());
        Assert.Equal((TimeSpan.FromMilliseconds(60), IceRelayError.PermissionFailed, TurnFailureKind.ErrorResponse, 403),
            (error.At, error.Error, error.FailureKind, error.ErrorCode));
        Assert.Contains("192.0.2.1", error.Reason);
        Assert.Equal(IceCandidatePairState.Failed, a.Agent.CandidatePairs.Single().State);
        var failed = a.EventsOf<IceStateChangedEvent>().Last();
        Assert.Equal((IceConnectionState.Failed, IceStateReason.AllPairsFailed, TimeSpan.FromMilliseconds(60)), (failed.State, failed.Reason, failed.At));
        Assert.Single(net.Server.LogOf(HostA, "CreatePermission"));
        Assert.Empty(net.Server.LogOf(HostA, "Send"));
    }

    [Fact]
    public void CloseDeletesTheAllocation()
    {
        var (net, a, _) = Connected();
        a.Agent.Close(net.Now);
        net.RunFor(TimeSpan.FromMilliseconds(100));
        Assert.False(net.Server.HasAllocation(HostA));
    }

    [Fact]
    public void TurnsOverUdpAndServerNamesAreRefusedWithAClearError()
    {
        var secure = Assert.Throws<NotSupportedException>(() =>
            new IceAgent(new IceAgentOptions { TurnServers = [TurnServerConfig.Parse("turns:192.0.2.1?transport=udp", "u", "p")] }));
        Assert.Contains("turns: over UDP (DTLS to the TURN server) is not supported", secure.Message);
        // turns: over TCP (TLS, run by the driver) is accepted.
        using var tls = new IceAgent(new IceAgentOptions { TurnServers = [TurnServerConfig.Parse("turns:192.0.2.1", "u", "p")] });
        var named = Assert.Throws<ArgumentException>(() =>
            new IceAgent(new IceAgentOptions { TurnServers = [TurnServerConfig.Parse("turn:turn.example.org", "u", "p")] }));
        Assert.Contains("IP address literal", named.Message);
    }
}
