using System.Buffers;
using System.Net;

namespace Transport.Ice.Tests.Agent;

/// <summary>ICE-TCP (RFC 6544), passive side: priorities, pairing, SDP, and checks/data over a stream connection.</summary>
public sealed class IceTcpTests
{
    private static readonly IPEndPoint ServerUdp = new(IPAddress.Parse("10.0.0.1"), 4000);
    private static readonly IPEndPoint ServerTcp = new(IPAddress.Parse("10.0.0.1"), 4000);   // same port number as UDP
    private static readonly IPEndPoint ClientEnd = new(IPAddress.Parse("10.0.0.2"), 51000);  // the client's end of its connection

    [Fact]
    public void TcpHostPrioritiesFollowRfc6544AndStayBelowEveryUdpCandidate()
    {
        var passive = IceCandidate.ComputeTcpHostPriority(IceTcpType.Passive, 8191);
        var active = IceCandidate.ComputeTcpHostPriority(IceTcpType.Active, 8191);
        var so = IceCandidate.ComputeTcpHostPriority(IceTcpType.SimultaneousOpen, 8191);
        // type preference 90; local preference 2^13 * direction-pref + other-pref (active 6, passive 4, so 2).
        Assert.Equal((90u << 24) + ((4u << 13) + 8191) * 256 + 255, passive);
        Assert.Equal((ushort)((6 << 13) + 8191), IceCandidate.LocalPreferenceOf(active));
        Assert.Equal((ushort)((2 << 13) + 8191), IceCandidate.LocalPreferenceOf(so));
        Assert.True(active > passive && passive > so);
        // UDP is preferred: the lowest UDP host, server-reflexive and peer-reflexive priorities are above any TCP host.
        Assert.True(IceCandidate.ComputePriority(IceCandidateType.Host, 0) > active);
        Assert.True(IceCandidate.ComputePriority(IceCandidateType.ServerReflexive, 0) > active);
        Assert.True(IceCandidate.ComputePriority(IceCandidateType.PeerReflexive, 0) > active);

        var agent = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled });
        var udp = agent.AddHostCandidate(ServerUdp);
        var tcp = agent.AddTcpHostCandidate(ServerTcp);
        Assert.Equal((IceProtocol.Tcp, IceTcpType.Passive, IceCandidateType.Host), (tcp.Protocol, tcp.TcpType, tcp.Type));
        Assert.True(udp.Priority > tcp.Priority);
        Assert.NotEqual(udp.Foundation, tcp.Foundation);
        Assert.Same(tcp, agent.AddTcpHostCandidate(ServerTcp));
        Assert.Equal(2, agent.LocalCandidates.Count);
    }

    [Fact]
    public void PairingTakesOurPassiveOnlyWithTheirActiveAndNeverAcrossTransports()
    {
        IceCandidate C(IceProtocol p, IceTcpType t, string ip = "10.0.0.9") =>
            new(IceCandidateType.Host, new IPEndPoint(IPAddress.Parse(ip), 9), 1, "1") { Protocol = p, TcpType = t };
        var udp = C(IceProtocol.Udp, IceTcpType.None);
        var passive = C(IceProtocol.Tcp, IceTcpType.Passive);
        var active = C(IceProtocol.Tcp, IceTcpType.Active);
        var so = C(IceProtocol.Tcp, IceTcpType.SimultaneousOpen);
        Assert.True(IceTcpPairing.MayPair(udp, udp));
        Assert.True(IceTcpPairing.MayPair(passive, active));
        Assert.True(IceTcpPairing.MayPair(active, passive));
        Assert.True(IceTcpPairing.MayPair(so, so));
        Assert.False(IceTcpPairing.MayPair(passive, passive));
        Assert.False(IceTcpPairing.MayPair(passive, so));
        Assert.False(IceTcpPairing.MayPair(active, active));
        Assert.False(IceTcpPairing.MayPair(udp, active));
        Assert.False(IceTcpPairing.MayPair(passive, udp));
        Assert.False(IceTcpPairing.MayPair(passive, C(IceProtocol.Tcp, IceTcpType.Active, "fd00::9")));

        // Signalled TCP candidates of the peer make no pair of ours (an active one connects to us; we open nothing).
        var agent = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled });
        agent.AddHostCandidate(ServerUdp);
        agent.AddTcpHostCandidate(ServerTcp);
        agent.SetRemoteCredentials(new IceCredentials("remo", "remotepasswordremotepassword"), TimeSpan.Zero);
        Assert.True(IceCandidate.TryParse("candidate:2 1 tcp 1518280447 10.0.0.2 9 typ host tcptype active", out var theirActive));
        Assert.True(IceCandidate.TryParse("candidate:3 1 tcp 1518280446 10.0.0.2 7000 typ host tcptype passive", out var theirPassive));
        Assert.True(IceCandidate.TryParse("candidate:1 1 udp 2122260223 10.0.0.2 7000 typ host", out var theirUdp));
        agent.AddRemoteCandidate(theirActive, TimeSpan.Zero);
        agent.AddRemoteCandidate(theirPassive, TimeSpan.Zero);
        agent.AddRemoteCandidate(theirUdp, TimeSpan.Zero);
        var pair = Assert.Single(agent.CandidatePairs);
        Assert.Equal((IceProtocol.Udp, IceProtocol.Udp), (pair.Local.Protocol, pair.Remote.Protocol));
    }

    [Theory]
    [InlineData("candidate:1 1 tcp 1518283007 10.0.0.1 4000 typ host tcptype passive", IceTcpType.Passive, 4000)]
    [InlineData("candidate:2 1 TCP 1518280447 192.168.1.5 9 typ host tcptype active", IceTcpType.Active, 9)]
    [InlineData("candidate:3 1 tcp 1518214911 10.0.0.1 5001 typ host tcptype so", IceTcpType.SimultaneousOpen, 5001)]
    public void TcpCandidatesRoundTripThroughSdp(string text, IceTcpType tcpType, int port)
    {
        Assert.True(IceCandidate.TryParse("a=" + text, out var c));
        Assert.Equal((IceProtocol.Tcp, tcpType, port), (c.Protocol, c.TcpType, c.Address.Port));
        Assert.Equal(text.Replace("TCP", "tcp", StringComparison.Ordinal), c.ToSdp());
        Assert.True(IceCandidate.TryParse(c.ToSdp(), out var again));
        Assert.Equal(c, again);
    }

    [Theory]
    [InlineData("candidate:1 1 tcp 1518283007 10.0.0.1 4000 typ host")]                    // no tcptype
    [InlineData("candidate:1 1 tcp 1518283007 10.0.0.1 4000 typ host tcptype sideways")]   // unknown tcptype
    [InlineData("candidate:1 1 sctp 1518283007 10.0.0.1 4000 typ host")]
    public void TcpCandidatesWithoutAKnownTcptypeAreRefused(string text) => Assert.False(IceCandidate.TryParse(text, out _));

    [Fact]
    public void OurTcpPassiveCandidateIsSignalledWithItsPortAndAnActiveOneWithPort9()
    {
        var agent = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled });
        var c = agent.AddTcpHostCandidate(ServerTcp);
        Assert.Matches(@"^candidate:\d+ 1 tcp \d+ 10\.0\.0\.1 4000 typ host tcptype passive$", c.ToSdp());
        var active = new IceCandidate(IceCandidateType.Host, new IPEndPoint(IPAddress.Parse("10.0.0.2"), 50123), 1, "7")
        {
            Protocol = IceProtocol.Tcp,
            TcpType = IceTcpType.Active
        };
        Assert.EndsWith(" 10.0.0.2 9 typ host tcptype active", active.ToSdp(), StringComparison.Ordinal);
        agent.StartGathering(TimeSpan.Zero);
        var gathered = new List<IceCandidate>();
        while (agent.TryPollEvent(out var e)) if (e is IceCandidateGatheredEvent g) gathered.Add(g.Candidate);
        Assert.Contains(c, gathered);
    }

    [Fact]
    public void AClientConnectsOverTheStreamAndTheSelectedPairIsTcp()
    {
        // The server: a UDP and a passive TCP candidate, controlled. The client: a plain agent whose datagrams the
        // test carries as the frames of one TCP connection (from ClientEnd to ServerTcp), as an active TCP
        // candidate's would be. The server never hears the client over UDP.
        using var server = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled, Random = new Random(2), TieBreaker = 5 });
        using var client = new IceAgent(new IceAgentOptions { Role = IceRole.Controlling, Random = new Random(1), TieBreaker = 9 });
        server.AddHostCandidate(ServerUdp);
        var tcp = server.AddTcpHostCandidate(ServerTcp);
        client.AddHostCandidate(ClientEnd);
        server.SetRemoteCredentials(client.LocalCredentials, TimeSpan.Zero);
        client.SetRemoteCredentials(server.LocalCredentials, TimeSpan.Zero);
        // The client's active candidate as signalled (port 9): no pair on the server's side.
        server.AddRemoteCandidate(new IceCandidate(IceCandidateType.Host, new IPEndPoint(ClientEnd.Address, 9), 1518280447, "9")
        {
            Protocol = IceProtocol.Tcp,
            TcpType = IceTcpType.Active
        }, TimeSpan.Zero);
        client.AddRemoteCandidate(new IceCandidate(IceCandidateType.Host, ServerTcp, tcp.Priority, "1"), TimeSpan.Zero);
        server.StartGathering(TimeSpan.Zero);
        client.StartGathering(TimeSpan.Zero);

        var serverTransmits = new List<IceTransmitPath>();
        var buffer = new byte[2048];
        var now = TimeSpan.Zero;
        for (var step = 0; step < 500 && !(server.State == IceConnectionState.Connected && client.State == IceConnectionState.Connected); step++)
        {
            now += TimeSpan.FromMilliseconds(10);
            if (client.PollTimeout() is { } c && c <= now) client.HandleTimeout(now);
            if (server.PollTimeout() is { } s && s <= now) server.HandleTimeout(now);
            while (client.TryPollTransmit(buffer, out var length, out var t))
            {
                Assert.False(t.IceTcp);
                Assert.Equal(IceReceiveResult.Stun, server.HandleIceTcpFrame(buffer.AsSpan(0, length), ServerTcp, ClientEnd, now, out _));
            }
            while (server.TryPollTransmit(buffer, out var length, out var t))
            {
                serverTransmits.Add(t);
                Assert.True(t.IceTcp, "the server answered and checked on the connection");
                Assert.Equal((ServerTcp, ClientEnd), (t.Local, t.Remote));
                client.HandleDatagram(buffer.AsSpan(0, length), ClientEnd, ServerTcp, now);
            }
            while (server.TryPollEvent(out _)) { }
            while (client.TryPollEvent(out _)) { }
        }
        Assert.Equal(IceConnectionState.Connected, server.State);
        Assert.Equal(IceConnectionState.Connected, client.State);
        Assert.True(server.SelectedLocal!.IsTcp);
        Assert.Equal(IceTcpType.Passive, server.SelectedLocal.TcpType);
        Assert.Equal((IceCandidateType.PeerReflexive, IceProtocol.Tcp, IceTcpType.Active, ClientEnd),
            (server.SelectedRemote!.Type, server.SelectedRemote.Protocol, server.SelectedRemote.TcpType, server.SelectedRemote.Address));

        // Data: the server's sends go on the connection, and the client's frames are application data.
        var send = server.TrySend([0x17, 0xFE, 0xFD, 1], buffer, now, out _, out var transmit);
        Assert.True(send.CanSend);
        Assert.True(send.IceTcp);
        Assert.True(transmit.IceTcp);
        Assert.Equal(IceReceiveResult.ApplicationData, server.HandleIceTcpFrame([0x17, 0xFE, 0xFD, 2], ServerTcp, ClientEnd, now, out var data));
        Assert.Equal(new byte[] { 0x17, 0xFE, 0xFD, 2 }, data.ToArray());
        // The same bytes as a UDP datagram from that address are no data of the TCP pair.
        Assert.Equal(IceReceiveResult.Dropped, server.HandleDatagram([0x17, 0xFE, 0xFD, 2], ServerUdp, ClientEnd, now));

        // Consent freshness over the stream: the server's consent checks go on the connection, one request each (no
        // retransmission over TCP), and answered ones keep the pair alive past the 30 s consent window.
        serverTransmits.Clear();
        for (var step = 0; step < 4500; step++)
        {
            now += TimeSpan.FromMilliseconds(10);
            if (client.PollTimeout() is { } c && c <= now) client.HandleTimeout(now);
            if (server.PollTimeout() is { } s && s <= now) server.HandleTimeout(now);
            while (client.TryPollTransmit(buffer, out var length, out var t))
                server.HandleIceTcpFrame(buffer.AsSpan(0, length), ServerTcp, ClientEnd, now, out _);
            while (server.TryPollTransmit(buffer, out var length, out var t))
            {
                serverTransmits.Add(t);
                client.HandleDatagram(buffer.AsSpan(0, length), ClientEnd, ServerTcp, now);
            }
        }
        Assert.Equal(IceConnectionState.Connected, server.State);
        Assert.NotEmpty(serverTransmits);
        Assert.All(serverTransmits, t => Assert.True(t.IceTcp));
    }

    [Fact]
    public void ATcpConsentCheckThatIsNeverAnsweredFailsTheAgentWithoutRetransmissions()
    {
        using var server = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled, Random = new Random(2), TieBreaker = 5 });
        using var client = new IceAgent(new IceAgentOptions { Role = IceRole.Controlling, Random = new Random(1), TieBreaker = 9 });
        server.AddTcpHostCandidate(ServerTcp);
        client.AddHostCandidate(ClientEnd);
        server.SetRemoteCredentials(client.LocalCredentials, TimeSpan.Zero);
        client.SetRemoteCredentials(server.LocalCredentials, TimeSpan.Zero);
        client.AddRemoteCandidate(new IceCandidate(IceCandidateType.Host, ServerTcp, 1518283007, "1"), TimeSpan.Zero);
        var buffer = new byte[2048];
        var now = TimeSpan.Zero;
        var connected = false;
        var serverRequests = 0;
        var transactions = new HashSet<string>();
        for (var step = 0; step < 10_000; step++)
        {
            now += TimeSpan.FromMilliseconds(10);
            if (client.PollTimeout() is { } c && c <= now) client.HandleTimeout(now);
            if (server.PollTimeout() is { } s && s <= now) server.HandleTimeout(now);
            if (server.State == IceConnectionState.Connected) connected = true;
            // Once connected the client goes silent (its connection hangs): nothing reaches the server any more.
            while (client.TryPollTransmit(buffer, out var length, out var t))
                if (!connected) server.HandleIceTcpFrame(buffer.AsSpan(0, length), ServerTcp, ClientEnd, now, out _);
            while (server.TryPollTransmit(buffer, out var length, out var t))
            {
                if (connected && buffer[0] == 0 && buffer[1] == 1)
                {
                    serverRequests++;
                    transactions.Add(Convert.ToHexString(buffer, 8, 12));   // the transaction id: a retransmission repeats it
                }
                client.HandleDatagram(buffer.AsSpan(0, length), ClientEnd, ServerTcp, now);
            }
            if (server.State == IceConnectionState.Failed) break;
        }
        Assert.True(connected);
        Assert.Equal(IceConnectionState.Failed, server.State);
        // Consent expires 30 s after the last answer; checks go every ~5 s (every 2 s once Disconnected), each sent
        // once: no transaction repeated (over UDP each would be retransmitted up to 7 times).
        Assert.Equal(serverRequests, transactions.Count);
        Assert.InRange(serverRequests, 1, 20);
    }
    // A TCP port of its own here, so that the test tells the client's transmits apart by their destination.
    private static readonly IPEndPoint TcpEnd = new(IPAddress.Parse("10.0.0.1"), 4443);

    // The server (controlled) with a UDP and a passive TCP candidate, the client (controlling) reaching both from
    // ClientEnd: frames to TcpEnd go as ICE-TCP frames, datagrams to ServerUdp as UDP. The client's remote TCP
    // candidate gets the priority given, so with a high one the client nominates the TCP pair although UDP is valid too.
    private static (IceAgent Server, IceAgent Client) ConnectBoth(bool udpToo, uint clientTcpPriority, ref TimeSpan now, List<IceEvent> serverEvents)
    {
        var server = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled, Random = new Random(2), TieBreaker = 5 });
        var client = new IceAgent(new IceAgentOptions { Role = IceRole.Controlling, Random = new Random(1), TieBreaker = 9 });
        server.AddHostCandidate(ServerUdp);
        server.AddTcpHostCandidate(TcpEnd);
        client.AddHostCandidate(ClientEnd);
        server.SetRemoteCredentials(client.LocalCredentials, TimeSpan.Zero);
        client.SetRemoteCredentials(server.LocalCredentials, TimeSpan.Zero);
        client.AddRemoteCandidate(new IceCandidate(IceCandidateType.Host, TcpEnd, clientTcpPriority, "1"), TimeSpan.Zero);
        if (udpToo)
        {
            client.AddRemoteCandidate(new IceCandidate(IceCandidateType.Host, ServerUdp,
                IceCandidate.ComputePriority(IceCandidateType.Host, 65535), "2"), TimeSpan.Zero);
            server.AddRemoteCandidate(new IceCandidate(IceCandidateType.Host, ClientEnd,
                IceCandidate.ComputePriority(IceCandidateType.Host, 65535), "3"), TimeSpan.Zero);
        }
        server.StartGathering(TimeSpan.Zero);
        client.StartGathering(TimeSpan.Zero);
        // Run until both are connected and, with UDP, the server's own UDP pair is valid too (its check answered). With
        // UDP the client's frames on the connection are held for 300 ms: its UDP check goes meanwhile and the server's
        // triggered check makes that pair valid on the server's side, before the client nominates the TCP pair.
        var held = new List<byte[]>();
        for (var step = 0; step < 1000; step++)
        {
            Step(server, client, ref now, serverEvents, hold: udpToo && step < 30 ? held : null);
            if (!(udpToo && step < 30))
            {
                foreach (var f in held) server.HandleIceTcpFrame(f, TcpEnd, ClientEnd, now, out _);
                held.Clear();
            }
            var udpValid = !udpToo || server.CandidatePairs.Any(p => !p.Local.IsTcp && p.State == IceCandidatePairState.Succeeded);
            if (server.State == IceConnectionState.Connected && client.State == IceConnectionState.Connected && udpValid && step > 50) break;
        }
        return (server, client);
    }

    private static void Step(IceAgent server, IceAgent client, ref TimeSpan now, List<IceEvent> serverEvents, bool tcpOpen = true, List<byte[]>? hold = null)
    {
        var buffer = new byte[2048];
        now += TimeSpan.FromMilliseconds(10);
        if (client.PollTimeout() is { } c && c <= now) client.HandleTimeout(now);
        if (server.PollTimeout() is { } s && s <= now) server.HandleTimeout(now);
        while (client.TryPollTransmit(buffer, out var length, out var t))
        {
            if (t.Remote.Equals(TcpEnd))
            {
                if (hold is not null) hold.Add(buffer.AsSpan(0, length).ToArray());
                else if (tcpOpen) server.HandleIceTcpFrame(buffer.AsSpan(0, length), TcpEnd, ClientEnd, now, out _);
            }
            else server.HandleDatagram(buffer.AsSpan(0, length), ServerUdp, ClientEnd, now);
        }
        while (server.TryPollTransmit(buffer, out var length, out var t))
        {
            if (t.IceTcp && !tcpOpen) continue;
            client.HandleDatagram(buffer.AsSpan(0, length), ClientEnd, t.IceTcp ? TcpEnd : ServerUdp, now);
        }
        while (server.TryPollEvent(out var e)) serverEvents.Add(e);
        while (client.TryPollEvent(out _)) { }
    }

    [Fact]
    public void AClosedTcpConnectionUnderTheSelectedPairDisconnectsAtOnceWithoutAnotherPair()
    {
        var events = new List<IceEvent>();
        var now = TimeSpan.Zero;
        var (server, client) = ConnectBoth(udpToo: false, 1518283007, ref now, events);
        using var _s = server;
        using var _c = client;
        Assert.Equal(IceConnectionState.Connected, server.State);
        Assert.True(server.SelectedLocal!.IsTcp);
        events.Clear();

        // The connection closes (the driver tells the agent): Disconnected now, not 30 s later by consent.
        var closedAt = now;
        server.IceTcpConnectionClosed(TcpEnd, ClientEnd, now);
        while (server.TryPollEvent(out var e)) events.Add(e);
        var change = Assert.Single(events.OfType<IceStateChangedEvent>());
        Assert.Equal((IceConnectionState.Disconnected, IceStateReason.TransportClosed, closedAt), (change.State, change.Reason, change.At));
        Assert.Equal(IceCandidatePairState.Failed, Assert.Single(server.CandidatePairs, p => p.Local.IsTcp).State);
        // An unknown connection changes nothing.
        server.IceTcpConnectionClosed(TcpEnd, new IPEndPoint(ClientEnd.Address, 1), now);
        Assert.False(server.TryPollEvent(out _));

        // Nothing comes back: Failed by FailedTimeout (25 s after the close) or by consent, whichever is first.
        for (var step = 0; step < 3000 && server.State != IceConnectionState.Failed; step++) Step(server, client, ref now, events, tcpOpen: false);
        var failed = events.OfType<IceStateChangedEvent>().Last();
        Assert.Equal(IceConnectionState.Failed, failed.State);
        Assert.Contains(failed.Reason, new[] { IceStateReason.FailedTimeout, IceStateReason.ConsentExpired });
        Assert.True(failed.At <= closedAt + new IceAgentOptions().FailedTimeout + TimeSpan.FromMilliseconds(20),
            $"failed at {failed.At}, closed at {closedAt}");
    }

    [Fact]
    public void AClosedTcpConnectionUnderTheSelectedPairMovesToTheValidUdpPairAtOnce()
    {
        var events = new List<IceEvent>();
        var now = TimeSpan.Zero;
        // The client prefers our TCP candidate (a priority above the UDP one's), so the TCP pair is nominated while the UDP pair is valid too.
        var (server, client) = ConnectBoth(udpToo: true, uint.MaxValue - 1, ref now, events);
        using var _s = server;
        using var _c = client;
        Assert.Equal(IceConnectionState.Connected, server.State);
        Assert.True(server.SelectedLocal!.IsTcp, "the TCP pair is selected");
        Assert.True(server.CandidatePairs.Any(p => !p.Local.IsTcp && p.State == IceCandidatePairState.Succeeded),
            string.Join("; ", server.CandidatePairs.Select(p => $"{p.Local.ToSdp()} -> {p.Remote.ToSdp()} {p.State}")) + " / client: " + string.Join("; ",
            client.CandidatePairs.Select(p => $"{p.Local.ToSdp()} -> {p.Remote.ToSdp()} {p.State} {p.Nominated}")));
        events.Clear();

        server.IceTcpConnectionClosed(TcpEnd, ClientEnd, now);
        while (server.TryPollEvent(out var e)) events.Add(e);
        Assert.Equal(IceConnectionState.Connected, server.State);
        Assert.False(server.SelectedLocal!.IsTcp);
        Assert.Equal(ServerUdp, server.SelectedLocal.Address);
        Assert.Contains(events, e => e is IceSelectedPairChangedEvent sp && !sp.Local.IsTcp);
        var send = server.TrySend(now);
        Assert.True(send.CanSend);
        Assert.False(send.IceTcp);
    }

    [Fact]
    public void AClosedTcpConnectionWithoutAnotherPairLeavesNothingToSendOnAndFailsExactlyFailedTimeoutLater()
    {
        var events = new List<IceEvent>();
        var now = TimeSpan.Zero;
        var (server, client) = ConnectBoth(udpToo: false, 1518283007, ref now, events);
        using var _s = server;
        using var _c = client;
        var closedAt = now;
        server.IceTcpConnectionClosed(TcpEnd, ClientEnd, now);
        // The rule of a lost pair in use (the same as a lost relay's): no pair in use, nothing to send on.
        Assert.Equal(IceConnectionState.Disconnected, server.State);
        Assert.False(server.CanSendData);
        Assert.Equal(IceSendStatus.NotConnected, server.TrySend(now).Status);
        Assert.Null(server.ActiveLocal);
        var buffer = new byte[2048];
        var sentOnTcp = 0;
        for (var step = 0; step < 3000 && server.State != IceConnectionState.Failed; step++)
        {
            now += TimeSpan.FromMilliseconds(10);
            if (server.PollTimeout() is { } s && s <= now) server.HandleTimeout(now);
            if (client.PollTimeout() is { } c && c <= now) client.HandleTimeout(now);
            while (server.TryPollTransmit(buffer, out var length, out var t)) if (t.IceTcp) sentOnTcp++;
            while (client.TryPollTransmit(buffer, out _, out _)) { }   // lost with the connection
            while (server.TryPollEvent(out var e)) events.Add(e);
        }
        // No consent check or keepalive went to the closed connection, and no AllPairsFailed came before the timeout.
        Assert.Equal(0, sentOnTcp);
        var changes = events.OfType<IceStateChangedEvent>().Where(e => e.At >= closedAt).ToList();
        Assert.Equal(2, changes.Count);
        Assert.Equal((IceConnectionState.Disconnected, IceStateReason.TransportClosed, closedAt), (changes[0].State, changes[0].Reason, changes[0].At));
        Assert.Equal((IceConnectionState.Failed, IceStateReason.FailedTimeout, closedAt + new IceAgentOptions().FailedTimeout),
            (changes[1].State, changes[1].Reason, changes[1].At));
    }

    [Fact]
    public void AfterAClosedTcpConnectionThePeerComingBackOnANewOneCarriesTheDataAgain()
    {
        var events = new List<IceEvent>();
        var now = TimeSpan.Zero;
        var (server, client) = ConnectBoth(udpToo: false, 1518283007, ref now, events);
        using var _s = server;
        using var _c = client;
        var closedAt = now;
        server.IceTcpConnectionClosed(TcpEnd, ClientEnd, now);
        // The client opens a new connection: its next check arrives there, and the server's triggered check is answered.
        for (var step = 0; step < 1000 && !server.CanSendData; step++) Step(server, client, ref now, events);
        Assert.True(server.CanSendData);
        Assert.InRange(now - closedAt, TimeSpan.Zero, TimeSpan.FromSeconds(7));
        var send = server.TrySend(now);
        Assert.True(send.CanSend);
        Assert.True(send.IceTcp);
        while (server.TryPollEvent(out var e)) events.Add(e);
        var back = events.OfType<IceStateChangedEvent>().Last();
        Assert.Equal((IceConnectionState.Connected, IceStateReason.ValidPairInUse, now), (back.State, back.Reason, back.At));
        // It stays up: the outage's Failed timer is gone, liveness runs on the pair in use.
        for (var step = 0; step < 4000; step++) Step(server, client, ref now, events);
        Assert.Equal(IceConnectionState.Connected, server.State);
        Assert.True(server.TrySend(now).CanSend);
    }
}
