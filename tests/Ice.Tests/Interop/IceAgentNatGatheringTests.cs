using Transport.TestKit;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;
using Transport.Ice.Stun;
using Transport.Ice.Tests.Turn;
using Transport.Ice.Turn;

namespace Transport.Ice.Tests.Interop;

/// <summary>
/// "Gathering a server-reflexive candidate from coturn" that differs from the host candidate: on
/// 127.0.0.1 coturn maps us to our own address and RFC 8445 section 5.1.3 removes it, so this test builds a NAT
/// with network namespaces (<see cref="NatTopology"/>: private 10.77.1.2 -> nftables masquerade -> public
/// 192.168.77.x), runs coturn in the public namespace (killed by process id) and our agent behind the NAT (its
/// socket made inside the private namespace).
/// </summary>
[Collection("coturn")]
[SupportedOSPlatform("linux")]
public sealed class IceAgentNatGatheringTests
{
    [Fact]
    public void BehindANatTheAgentGathersAServerReflexiveCandidateAtTheNatsPublicAddressWithTheHostAsRelatedAddress() =>
        WithNatAndCoturn((topology, server) =>
        {
            var socket = NatTopology.CreateInside(topology.Private, () => NewSocket(topology.PrivateAddress));
            using var agent = new AgentSocketDriver("behind NAT", new IceAgentOptions
            {
                StunServers = [server],
                TurnServers = [TurnServerConfig.Parse($"turn:{server}", CoturnServer.User, CoturnServer.Password)],
            }, socket);
            agent.Agent.StartGathering(agent.Now);
            AgentSocketDriver.RunUntil(() => agent.EventsOf<IceGatheringCompleteEvent>().Any(), TimeSpan.FromSeconds(10), "gathering", agent);

            var host = agent.Agent.LocalCandidates.Single(c => c.Type == IceCandidateType.Host);
            Assert.Equal(topology.PrivateAddress, host.Address.Address);
            var srflx = Assert.Single(agent.Agent.LocalCandidates, c => c.Type == IceCandidateType.ServerReflexive);
            Assert.Equal(topology.NatPublicAddress, srflx.Address.Address);
            Assert.NotEqual(host.Address, srflx.Address);
            Assert.Equal(host.Address, srflx.Base);
            Assert.Equal(host.Address, srflx.RelatedAddress ?? srflx.Base);
            Assert.EndsWith($"typ srflx raddr {host.Address.Address} rport {host.Address.Port}", srflx.ToSdp());
            Assert.True(srflx.Priority < host.Priority);
            // The relayed candidate from the same coturn: its related address is the same NAT mapping.
            var relay = Assert.Single(agent.Agent.LocalCandidates, c => c.Type == IceCandidateType.Relayed);
            Assert.Equal(topology.PublicAddress, relay.Address.Address);
            Assert.InRange(relay.Address.Port, 49160, 49175);
            Assert.Equal(srflx.Address, relay.RelatedAddress);
            Assert.Empty(agent.EventsOf<IceRelayErrorEvent>());
            Assert.Equal(0, agent.Agent.DroppedTotal);
        });

    [Fact]
    public void AnAgentBehindTheNatConnectsToAnAgentOnThePublicSideAndThePeerSeesItsServerReflexiveAddress() =>
        WithNatAndCoturn((topology, server) =>
        {
            var inside = NatTopology.CreateInside(topology.Private, () => NewSocket(topology.PrivateAddress));
            var outside = NatTopology.CreateInside(topology.Public, () => NewSocket(topology.PublicAddress));
            using var a = new AgentSocketDriver("behind NAT", new IceAgentOptions { Role = IceRole.Controlling, StunServers = [server] }, inside);
            using var b = new AgentSocketDriver("public", new IceAgentOptions { Role = IceRole.Controlled }, outside);
            a.Agent.StartGathering(a.Now);
            b.Agent.StartGathering(b.Now);
            AgentSocketDriver.RunUntil(() => a.EventsOf<IceGatheringCompleteEvent>().Any() && b.EventsOf<IceGatheringCompleteEvent>().Any(),
                TimeSpan.FromSeconds(10), "gathering", a, b);
            var srflx = a.Agent.LocalCandidates.Single(c => c.Type == IceCandidateType.ServerReflexive);
            a.SignalTo(b);
            b.SignalTo(a);
            AgentSocketDriver.RunUntil(() => a.Agent.State == IceConnectionState.Connected && b.Agent.State == IceConnectionState.Connected,
                TimeSpan.FromSeconds(15), "connection across the NAT", a, b);
            // A sends from its private host address; the public agent sees it at the NAT's address, which is the srflx candidate.
            Assert.Equal(topology.PrivateAddress, a.Agent.SelectedLocal!.Base.Address);
            Assert.Equal(topology.PublicAddress, a.Agent.SelectedRemote!.Address.Address);
            Assert.Equal(srflx.Address, b.Agent.SelectedRemote!.Address);
            a.Send("across the NAT"u8);
            b.Send("back across the NAT"u8);
            AgentSocketDriver.RunUntil(() => a.Received.Count == 1 && b.Received.Count == 1, TimeSpan.FromSeconds(5), "data both ways", a, b);
            Assert.Equal("back across the NAT", Encoding.UTF8.GetString(a.Received[0]));
        });

    /// <summary>Builds the NAT, starts coturn in the public namespace, runs <paramref name="body"/>, then removes everything (asserted).</summary>
    private static void WithNatAndCoturn(Action<NatTopology, IPEndPoint> body)
    {
        var topology = new NatTopology();
        var names = new[] { topology.Private, topology.Nat, topology.Public };
        var directory = Directory.CreateTempSubdirectory("coturn-nat-").FullName;
        var log = new StringBuilder();
        Process? coturn = null;
        Socket? probe = null;
        try
        {
            var server = new IPEndPoint(topology.PublicAddress, 3478);
            coturn = NatTopology.StartInside(topology.Public, CoturnServer.FindTurnServer(),
            [
                "-n", $"--listening-ip={topology.PublicAddress}", $"--relay-ip={topology.PublicAddress}", "--listening-port=3478",
                "--min-port=49160", "--max-port=49175", $"--user={CoturnServer.User}:{CoturnServer.Password}",
                    $"--realm={CoturnServer.Realm}", "--lt-cred-mech",
                "--no-tls", "--no-dtls", "--no-cli", "--fingerprint", "--no-multicast-peers", "--log-file=stdout", "--simple-log",
                $"--pidfile={Path.Combine(directory, "turnserver.pid")}", $"--userdb={Path.Combine(directory, "turndb")}",
            ], log);
            // The probe lives in the private namespace: what it sends crosses the NAT.
            probe = NatTopology.CreateInside(topology.Private, () => NewSocket(topology.PrivateAddress));
            var probeMapped = WaitUntilAnswering(probe, server, coturn, log);
            Assert.Equal(topology.NatPublicAddress, probeMapped.Address); // the NAT works before the agent is involved
            body(topology, server);
        }
        finally
        {
            probe?.Dispose();
            if (coturn is not null)
            {
                try { if (!coturn.HasExited) { coturn.Kill(entireProcessTree: true); coturn.WaitForExit(5000); } }
                catch (InvalidOperationException) { }
                coturn.Dispose();
            }
            topology.Dispose();
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
        }
        Assert.All(names, n => Assert.False(NatTopology.Exists(n), $"namespace {n} left behind"));
    }

    private static Socket NewSocket(IPAddress address)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(address, 0));
        return s;
    }

    /// <summary>Sends Binding requests until coturn answers (bounded: 10 s); returns the mapped address it saw.</summary>
    private static IPEndPoint WaitUntilAnswering(Socket socket, IPEndPoint server, Process coturn, StringBuilder log)
    {
        var request = new byte[28];
        var id = new byte[12];
        Random.Shared.NextBytes(id);
        var writer = new StunMessageWriter(request, StunMessageType.BindingRequest, id);
        var length = writer.Length;
        var buffer = new byte[1500];
        var deadline = Stopwatch.GetTimestamp() + 10 * Stopwatch.Frequency;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (coturn.HasExited) throw new InvalidOperationException($"turnserver exited with {coturn.ExitCode}:\n{log}");
            socket.SendTo(request.AsSpan(0, length), server);
            if (!socket.Poll(100_000, SelectMode.SelectRead)) continue;
            var n = socket.Receive(buffer);
            if (StunMessage.TryRead(buffer.AsSpan(0, n), out var response) && response.TryGetXorMappedAddress(out var mapped)) return mapped.ToEndPoint();
        }
        throw new TimeoutException($"coturn in the public namespace did not answer within 10 s:\n{log}");
    }
}
