using System.Net;
using Transport.Ice.Stun;

namespace Transport.Ice.Tests.Agent;

/// <summary>Host and server-reflexive candidates, priorities and foundations (RFC 8445 section 5.1).</summary>
public sealed class IceAgentGatheringTests
{
    private static readonly IPEndPoint Host = new(IPAddress.Parse("192.168.1.2"), 4000);
    private static readonly IPEndPoint Server = new(IPAddress.Parse("198.51.100.1"), 3478);

    [Fact]
    public void PrioritiesAndFoundationsFollowRfc8445()
    {
        Assert.Equal(2130706431u, IceCandidate.ComputePriority(IceCandidateType.Host, 65535));
        Assert.Equal(1694498815u, IceCandidate.ComputePriority(IceCandidateType.ServerReflexive, 65535));
        Assert.Equal(1862270975u, IceCandidate.ComputePriority(IceCandidateType.PeerReflexive, 65535));
        using var agent = new IceAgent();
        var first = agent.AddHostCandidate(Host);
        var sameIp = agent.AddHostCandidate(new IPEndPoint(Host.Address, 4001));
        var v6 = agent.AddHostCandidate(new IPEndPoint(IPAddress.Parse("2001:db8::2"), 4000));
        Assert.Equal(2130706431u, first.Priority);
        Assert.Equal(65534, IceCandidate.LocalPreferenceOf(sameIp.Priority));
        Assert.Equal(first.Foundation, sameIp.Foundation);
        Assert.NotEqual(first.Foundation, v6.Foundation);
        Assert.Same(first, agent.AddHostCandidate(Host));
    }

    [Fact]
    public void AKnownNatMappingIsAServerReflexiveCandidateOfItsBaseReportedWithTheHostsAndAddingNoPair()
    {
        using var agent = new IceAgent();
        agent.AddHostCandidate(Host);
        var mapped = new IPEndPoint(IPAddress.Parse("203.0.113.7"), Host.Port);
        var srflx = agent.AddServerReflexiveCandidate(mapped, Host)!;
        Assert.Equal((IceCandidateType.ServerReflexive, Host), (srflx.Type, srflx.Base));
        Assert.Equal("candidate:2 1 udp 1694498815 203.0.113.7 4000 typ srflx raddr 192.168.1.2 rport 4000", srflx.ToSdp());
        Assert.Null(agent.AddServerReflexiveCandidate(mapped, Host)); // already a candidate
        Assert.Throws<ArgumentException>(() => agent.AddServerReflexiveCandidate(mapped, new IPEndPoint(Host.Address, 4999)));
        Assert.False(agent.GatheringComplete);
        agent.StartGathering(TimeSpan.Zero);
        var events = new List<IceEvent>();
        while (agent.TryPollEvent(out var e)) events.Add(e);
        Assert.Equal([IceCandidateType.Host, IceCandidateType.ServerReflexive], events.OfType<IceCandidateGatheredEvent>().Select(e => e.Candidate.Type));
        Assert.IsType<IceGatheringCompleteEvent>(events[^1]);
        Assert.True(agent.GatheringComplete);
        agent.SetRemoteCredentials(new IceCredentials("abcd", "0123456789abcdef0123456789"), TimeSpan.Zero);
        Assert.True(IceCandidate.TryParse("candidate:1 1 udp 2130706431 192.168.1.3 5000 typ host", out var remote));
        agent.AddRemoteCandidate(remote, TimeSpan.Zero);
        Assert.Equal(Host, Assert.Single(agent.CandidatePairs).Local.Address); // checks leave from the base

        using var relayOnly = new IceAgent(new IceAgentOptions { TransportPolicy = IceTransportPolicy.Relay });
        relayOnly.AddHostCandidate(Host);
        Assert.Null(relayOnly.AddServerReflexiveCandidate(mapped, Host));
        Assert.Empty(relayOnly.LocalCandidates);
    }

    [Fact]
    public void ServerReflexiveCandidateIsGatheredFromTheStunServer()
    {
        using var agent = new IceAgent(new IceAgentOptions { StunServers = [Server] });
        agent.AddHostCandidate(Host);
        agent.StartGathering(TimeSpan.Zero);
        var buffer = new byte[1500];
        Assert.True(agent.TryPollTransmit(buffer, out var length, out var t));
        Assert.Equal((Host, Server), (t.Local, t.Remote));
        Assert.True(StunMessage.TryRead(buffer.AsSpan(0, length), out var request));
        Assert.Equal(StunMessageType.BindingRequest, request.Type);

        var mapped = new IPEndPoint(IPAddress.Parse("203.0.113.7"), 40000);
        var response = new byte[100];
        var w = new StunMessageWriter(response, StunMessageType.BindingSuccess, request.TransactionId);
        w.AddXorAddress(StunAttributeType.XorMappedAddress, mapped);
        w.AddFingerprint();
        Assert.Equal(IceReceiveResult.Stun, agent.HandleDatagram(response.AsSpan(0, w.Length), Host, Server, TimeSpan.FromMilliseconds(30)));

        var events = new List<IceEvent>();
        while (agent.TryPollEvent(out var e)) events.Add(e);
        var gathered = events.OfType<IceCandidateGatheredEvent>().Select(e => e.Candidate).ToList();
        Assert.Equal(2, gathered.Count);
        var srflx = gathered[1];
        Assert.Equal(IceCandidateType.ServerReflexive, srflx.Type);
        Assert.Equal(mapped, srflx.Address);
        Assert.Equal(Host, srflx.Base);
        Assert.Equal(IceCandidate.ComputePriority(IceCandidateType.ServerReflexive, 65535), srflx.Priority);
        Assert.Equal("candidate:2 1 udp 1694498815 203.0.113.7 40000 typ srflx raddr 192.168.1.2 rport 4000", srflx.ToSdp());
        Assert.IsType<IceGatheringCompleteEvent>(events[^1]);
        Assert.Equal(TimeSpan.FromMilliseconds(30), events[^1].At);
    }

    [Fact]
    public void GatheringCompletesWhenTheStunServerNeverAnswers()
    {
        using var agent = new IceAgent(new IceAgentOptions { StunServers = [Server] });
        agent.AddHostCandidate(Host);
        agent.StartGathering(TimeSpan.Zero);
        var buffer = new byte[1500];
        var sends = 0;
        var now = TimeSpan.Zero;
        IceGatheringCompleteEvent? complete = null;
        while (complete is null && now < TimeSpan.FromSeconds(60))
        {
            while (agent.TryPollTransmit(buffer, out _, out _)) sends++;
            while (agent.TryPollEvent(out var e)) if (e is IceGatheringCompleteEvent c) complete = c;
            if (complete is not null || agent.PollTimeout() is not { } due) break;
            now = due;
            agent.HandleTimeout(now);
        }
        Assert.NotNull(complete);
        Assert.Equal(7, sends);
        Assert.Equal(TimeSpan.FromSeconds(9.9), complete.At);
    }

    [Fact]
    public void CandidatesRoundTripThroughSdp()
    {
        Assert.True(IceCandidate.TryParse("a=candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host", out var host));
        Assert.Equal(new IPEndPoint(IPAddress.Parse("10.0.0.1"), 5000), host.Address);
        Assert.Equal("candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host", host.ToSdp());
        Assert.True(IceCandidate.TryParse("candidate:7 1 UDP 1694498815 2001:db8::7 6000 typ srflx raddr 2001:db8::1 rport 5000", out var srflx));
        Assert.Equal(IceCandidateType.ServerReflexive, srflx.Type);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("2001:db8::1"), 5000), srflx.Base);
        Assert.False(IceCandidate.TryParse("candidate:1 1 tcp 1 10.0.0.1 9 typ host", out _));
        Assert.False(IceCandidate.TryParse("garbage", out _));
    }

    [Fact]
    public void AMappedAddressThatIsNoCandidateBecomesALocalPeerReflexiveCandidate()
    {
        var remoteCredentials = new IceCredentials("rrrr", "rrrrrrrrrrrrrrrrrrrrrrrr");
        var peer = new IPEndPoint(IPAddress.Parse("198.51.100.20"), 6000);
        using var agent = new IceAgent(new IceAgentOptions { Role = IceRole.Controlling, Random = new Random(1) });
        agent.AddHostCandidate(Host);
        agent.SetRemoteCredentials(remoteCredentials, TimeSpan.Zero);
        agent.AddRemoteCandidate(new IceCandidate(IceCandidateType.Host, peer, 2130706431, "r"), TimeSpan.Zero);
        agent.HandleTimeout(TimeSpan.Zero);
        var buffer = new byte[1500];
        Assert.True(agent.TryPollTransmit(buffer, out var length, out var t));
        Assert.True(StunMessage.TryRead(buffer.AsSpan(0, length), out var check));
        Assert.True(check.TryGetPriority(out var sentPriority));

        // The peer saw us behind a NAT.
        var natted = new IPEndPoint(IPAddress.Parse("203.0.113.99"), 31000);
        using var remoteKey = StunKey.ShortTerm(remoteCredentials.Password);
        var response = new byte[200];
        var w = new StunMessageWriter(response, StunMessageType.BindingSuccess, check.TransactionId);
        w.AddXorAddress(StunAttributeType.XorMappedAddress, natted);
        w.AddMessageIntegrity(remoteKey);
        w.AddFingerprint();
        Assert.Equal(IceReceiveResult.Stun, agent.HandleDatagram(response.AsSpan(0, w.Length), Host, peer, TimeSpan.FromMilliseconds(30)));

        var prflx = Assert.Single(agent.LocalCandidates, c => c.Type == IceCandidateType.PeerReflexive);
        Assert.Equal(natted, prflx.Address);
        Assert.Equal(Host, prflx.Base);
        Assert.Equal(sentPriority, prflx.Priority);
        Assert.Equal(IceCandidatePairState.Succeeded, Assert.Single(agent.CandidatePairs).State);
        // Not signalled: peer-reflexive candidates never are.
        while (agent.TryPollEvent(out var e)) Assert.IsNotType<IceCandidateGatheredEvent>(e);
    }

    [Fact]
    public void ACandidateLongerThanTheLimitIsRefusedBeforeItIsCutIntoTokens()
    {
        const string line = "candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host ufrag ";
        var longest = line + new string('u', IceCandidateFields.MaxLength - line.Length);
        Assert.True(IceCandidateFields.TryRead(longest, out var fields, out _));
        Assert.Equal(IceCandidateFields.MaxLength - line.Length, fields.GetExtension("ufrag")!.Length);
        Assert.True(IceCandidate.TryParse(longest, out _));
        Assert.False(IceCandidateFields.TryRead(longest + "u", out _, out var error));
        Assert.Contains("longer than 1024", error);
        Assert.False(IceCandidate.TryParse(longest + "u", out _));
        // A 64 KiB line from a remote party costs a short error text, not its tokens (some 30 B per character before).
        var huge = line + new string('u', 65536);
        IceCandidateFields.TryRead(huge, out _, out _);
        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.False(IceCandidateFields.TryRead(huge, out _, out _));
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 512);
    }
}
