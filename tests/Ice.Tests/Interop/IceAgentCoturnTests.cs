using Transport.TestKit;
using System.Text;
using Transport.Ice.Stun;
using Transport.Ice.Tests.Turn;
using Transport.Ice.Turn;

namespace Transport.Ice.Tests.Interop;

/// <summary>
/// Two of our ICE agents with the relay-only policy connect through coturn 4.6 on 127.0.0.1 (Debian package
/// <c>coturn</c>, started and killed by process id by <see cref="CoturnServer"/>), over UDP and over TCP to the server,
/// and exchange data both ways; a wrong password and a short server lifetime are reported as relay events. The
/// test does the socket I/O for the sans-IO agents (<see cref="AgentSocketDriver"/>).
/// </summary>
[Collection("coturn")] // one coturn at a time with the TURN client tests
public sealed class IceAgentCoturnTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static IceAgentOptions RelayOnly(CoturnServer server, IceRole role, TurnTransport transport, string password = CoturnServer.Password,
        Func<TurnClientOptions, TurnClientOptions>? configure = null) => new()
        {
            Role = role,
            TransportPolicy = IceTransportPolicy.Relay,
            TurnServers = [TurnServerConfig.Parse($"turn:127.0.0.1:{server.Port}?transport={(transport == TurnTransport.Tcp ? "tcp" : "udp")}",
                CoturnServer.User, password)],
            ConfigureTurnClient = configure,
        };

    private static void GatherAndConnect(AgentSocketDriver a, AgentSocketDriver b)
    {
        a.Agent.StartGathering(a.Now);
        b.Agent.StartGathering(b.Now);
        AgentSocketDriver.RunUntil(() => a.EventsOf<IceGatheringCompleteEvent>().Any() && b.EventsOf<IceGatheringCompleteEvent>().Any(),
            Wait, "gathering", a, b);
        a.SignalTo(b);
        b.SignalTo(a);
        AgentSocketDriver.RunUntil(() => a.Agent.State == IceConnectionState.Connected && b.Agent.State == IceConnectionState.Connected, Wait,
            "both agents connected", a, b);
    }

    [Theory]
    [InlineData(TurnTransport.Udp)]
    [InlineData(TurnTransport.Tcp)]
    public void TwoRelayOnlyAgentsConnectThroughCoturnAndExchangeDataBothWays(TurnTransport transport)
    {
        using var server = CoturnServer.Start(tcp: true);
        using var a = new AgentSocketDriver("A", RelayOnly(server, IceRole.Controlling, transport));
        using var b = new AgentSocketDriver("B", RelayOnly(server, IceRole.Controlled, transport));
        GatherAndConnect(a, b);

        foreach (var (self, other) in new[] { (a, b), (b, a) })
        {
            var relay = Assert.Single(self.Agent.LocalCandidates);
            Assert.Equal(IceCandidateType.Relayed, relay.Type);
            Assert.Equal("127.0.0.1", relay.Address.Address.ToString());
            Assert.NotEqual(server.Port, relay.Address.Port);
            Assert.Equal(self.Agent.TurnClients.Single().RelayedAddress.ToEndPoint(), relay.Address);
            Assert.Equal(relay, self.Agent.SelectedLocal);
            Assert.Equal(other.Agent.LocalCandidates.Single().Address, self.Agent.SelectedRemote!.Address);
        }

        // The selected pair's channel, then data both ways as ChannelData.
        AgentSocketDriver.RunUntil(() => a.Agent.TurnClients[0].GetBoundChannel(StunAddress.FromEndPoint(a.Agent.SelectedRemote!.Address)) != 0
                                         && b.Agent.TurnClients[0].GetBoundChannel(StunAddress.FromEndPoint(b.Agent.SelectedRemote!.Address))
                                             != 0, Wait, "channels", a, b);
        const int Count = 20;
        for (var i = 0; i < Count; i++)
        {
            Assert.True(a.Send(Encoding.UTF8.GetBytes($"A->B {i}")).CanSend);
            Assert.True(b.Send(Encoding.UTF8.GetBytes($"B->A {i}")).CanSend);
        }
        AgentSocketDriver.RunUntil(() => a.Received.Count == Count && b.Received.Count == Count, Wait, "data both ways", a, b);
        Assert.Equal(Enumerable.Range(0, Count).Select(i => $"A->B {i}"), b.Received.Select(d => Encoding.UTF8.GetString(d)).OrderBy(s => int.Parse(s[5..])));
        Assert.Equal(Enumerable.Range(0, Count).Select(i => $"B->A {i}"), a.Received.Select(d => Encoding.UTF8.GetString(d)).OrderBy(s => int.Parse(s[5..])));

        // Everything went to coturn over the configured transport; nothing was dropped.
        if (transport == TurnTransport.Tcp) { Assert.Equal(0, a.UdpTransmits + b.UdpTransmits); Assert.True(a.TcpFramesIn > Count); }
        else Assert.Equal(0, a.TcpTransmits + b.TcpTransmits);
        Assert.Equal(0, a.Agent.DroppedTotal + b.Agent.DroppedTotal);
        Assert.Empty(a.EventsOf<IceRelayErrorEvent>());
        Assert.Equal(0, a.Agent.TurnClients[0].Dropped.Total);
    }

    [Fact]
    public void WithTwoConfiguredServersEachAgentGathersTwoRelayedCandidatesAndConnectsThroughThePreferredOne()
    {
        using var server = CoturnServer.Start(tcp: true);
        IceAgentOptions Both(IceRole role) => RelayOnly(server, role, TurnTransport.Udp) with
        {
            TurnServers = [TurnServerConfig.Parse($"turn:127.0.0.1:{server.Port}?transport=udp", CoturnServer.User, CoturnServer.Password),
                           TurnServerConfig.Parse($"turn:127.0.0.1:{server.Port}?transport=tcp", CoturnServer.User, CoturnServer.Password)],
        };
        using var a = new AgentSocketDriver("A", Both(IceRole.Controlling));
        using var b = new AgentSocketDriver("B", Both(IceRole.Controlled));
        GatherAndConnect(a, b);

        var relays = a.Agent.LocalCandidates;
        Assert.Equal(2, relays.Count);
        Assert.All(relays, c => Assert.Equal(IceCandidateType.Relayed, c.Type));
        Assert.Equal([TurnTransport.Udp, TurnTransport.Tcp], a.Agent.TurnClients.Select(t => t.Options.Transport));
        // RFC 8445 sections 5.1.1.3 and 5.1.2.1: distinct foundations (another server transport), distinct priorities, the first server preferred.
        Assert.NotEqual(relays[0].Foundation, relays[1].Foundation);
        Assert.Equal(IceCandidate.ComputePriority(IceCandidateType.Relayed, 65535), relays[0].Priority);
        Assert.Equal(IceCandidate.ComputePriority(IceCandidateType.Relayed, 65535 - 1024), relays[1].Priority);
        // 2 x 2 pairs; the best (UDP relay to UDP relay) is selected once the others are no longer better.
        Assert.Equal(4, a.Agent.CandidatePairs.Count);
        Assert.Equal(relays[0], a.Agent.SelectedLocal);
        Assert.Equal(b.Agent.LocalCandidates[0].Address, a.Agent.SelectedRemote!.Address);
        a.Send("over the UDP relays"u8);
        AgentSocketDriver.RunUntil(() => b.Received.Count == 1, Wait, "data", a, b);
        Assert.True(a.TcpTransmits > 0 && a.UdpTransmits > 0);
    }

    [Theory]
    [InlineData(TurnTransport.Udp)]
    [InlineData(TurnTransport.Tcp)]
    public void AWrongPasswordIsReportedAsAnAuthenticationErrorEvent(TurnTransport transport)
    {
        using var server = CoturnServer.Start(tcp: true);
        using var a = new AgentSocketDriver("A", RelayOnly(server, IceRole.Controlling, transport, password: "not-the-password"));
        a.Agent.StartGathering(a.Now);
        AgentSocketDriver.RunUntil(() => a.EventsOf<IceGatheringCompleteEvent>().Any(), Wait, "gathering", a);
        var error = Assert.Single(a.EventsOf<IceRelayErrorEvent>());
        Assert.Equal(IceRelayError.AllocationFailed, error.Error);
        Assert.Equal(TurnFailureKind.Authentication, error.FailureKind);
        Assert.Equal(401, error.ErrorCode);
        Assert.Contains("authentication failed", error.Reason);
        Assert.Contains(CoturnServer.Realm, error.Reason);
        Assert.Empty(a.Agent.LocalCandidates);
        Assert.Equal(IceConnectionState.New, a.Agent.State);
    }

    [Fact]
    public void OnAShortServerLifetimeRefreshingAgentsStayConnectedAndAnAllocationWithoutRefreshIsReportedExpired()
    {
        using var server = CoturnServer.Start(true, "--max-allocate-lifetime=3");
        using var a = new AgentSocketDriver("A", RelayOnly(server, IceRole.Controlling, TurnTransport.Udp));
        using var b = new AgentSocketDriver("B", RelayOnly(server, IceRole.Controlled, TurnTransport.Udp));
        using var c = new AgentSocketDriver("C",
            RelayOnly(server, IceRole.Controlling, TurnTransport.Udp, configure: o => o with { RefreshAllocation = false }));
        c.Agent.StartGathering(c.Now);
        GatherAndConnect(a, b);
        AgentSocketDriver.RunUntil(() => c.EventsOf<IceGatheringCompleteEvent>().Any(), Wait, "C's relay", c);
        var allocatedAt = c.Events.Single(e => e.Event is IceCandidateGatheredEvent).At;
        var relayOfC = c.Agent.LocalCandidates.Single();

        AgentSocketDriver.RunUntil(() => c.EventsOf<IceRelayErrorEvent>().Any(), Wait, "C's expiry", a, b, c);
        var (at, evt) = c.Events.Single(e => e.Event is IceRelayErrorEvent);
        var expired = (IceRelayErrorEvent)evt;
        Assert.Equal(IceRelayError.AllocationExpired, expired.Error);
        Assert.Equal(relayOfC, expired.Candidate);
        Assert.Contains("lifetime", expired.Reason);
        // The deadline is 3 s after the allocation; the two stamps are rounded apart by up to a tick of the clock (2.9999814 s seen).
        Assert.InRange(at - allocatedAt, TimeSpan.FromSeconds(3) - TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(3.5));
        Assert.Empty(c.Agent.LocalCandidates);

        // A and B refresh every 1.5 s and keep their relayed pair (consent checks through it) past twice the lifetime.
        var until = a.Now + TimeSpan.FromSeconds(4);
        AgentSocketDriver.RunUntil(() => a.Now >= until, Wait, "time", a, b, c);
        Assert.Equal(IceConnectionState.Connected, a.Agent.State);
        Assert.Equal(IceConnectionState.Connected, b.Agent.State);
        Assert.Empty(a.EventsOf<IceRelayErrorEvent>());
        Assert.Equal(TurnClientState.Allocated, a.Agent.TurnClients[0].State);
        a.Send("still relayed"u8);
        AgentSocketDriver.RunUntil(() => b.Received.Count == 1, Wait, "data after refreshes", a, b);
    }
}
