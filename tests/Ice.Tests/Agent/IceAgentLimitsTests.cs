using System.Net;
using Transport.Ice.Stun;

namespace Transport.Ice.Tests.Agent;

/// <summary>
/// What a remote party can make an agent hold is bounded (<see cref="IceLimits"/>): remote candidates, pairs, addresses
/// that must never be checked; the work per candidate does not grow with the check list; and triggered checks of pairs
/// that can still win are not starved by a flood of peer-reflexive pairs. All on explicit (virtual) time.
/// </summary>
public sealed class IceAgentLimitsTests
{
    private static readonly IPEndPoint Local = new(IPAddress.Parse("10.0.0.2"), 2000);

    private static IceAgent NewAgent(IceLimits? limits = null, IceRole role = IceRole.Controlling)
    {
        var agent = new IceAgent(new IceAgentOptions
        {
            Role = role,
            LocalCredentials = new IceCredentials("bbbb", "bbbbbbbbbbbbbbbbbbbbbbbb"),
            Random = new Random(1),
            Limits = limits ?? new IceLimits(),
        });
        agent.AddHostCandidate(Local);
        agent.SetRemoteCredentials(new IceCredentials("aaaa", "aaaaaaaaaaaaaaaaaaaaaaaa"), TimeSpan.Zero);
        return agent;
    }

    private static IceCandidate Host(IPEndPoint address, int n) =>
        new(IceCandidateType.Host, address, IceCandidate.ComputePriority(IceCandidateType.Host, 65535), "r" + n);

    private static IPEndPoint Public(int i) => new(new IPAddress([198, 18, (byte)(i >> 8), (byte)i]), 10000 + i % 50000);

    /// <summary>An authenticated check to <paramref name="toUfrag"/> signed with its password.</summary>
    internal static byte[] Check(string username, string password, uint priority)
    {
        var buffer = new byte[300];
        Span<byte> tid = stackalloc byte[12];
        StunTransactionId.NewRandom().WriteTo(tid);
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, tid);
        w.AddString(StunAttributeType.Username, username);
        w.AddUInt32(StunAttributeType.Priority, priority);
        w.AddUInt64(StunAttributeType.IceControlling, 99);
        using (var key = StunKey.ShortTerm(password)) w.AddMessageIntegrity(key);
        w.AddFingerprint();
        return buffer.AsSpan(0, w.Length).ToArray();
    }

    [Fact]
    public void TwentyThousandTrickledCandidatesHoldOnlyTheLimitAndTheRestIsCounted()
    {
        using var agent = NewAgent();
        agent.AddHostCandidate(new IPEndPoint(IPAddress.Parse("fd00::2"), 2000));
        for (var i = 0; i < 20_000; i++) agent.AddRemoteCandidate(Host(Public(i), i), TimeSpan.FromMilliseconds(i / 100));

        Assert.Equal(20_000 - 100, agent.RemoteCandidatesDropped);
        // Each kept IPv4 candidate is paired with the IPv4 host only: 100 pairs, not 20,000 x 2.
        Assert.Equal(100, agent.CandidatePairs.Count);
        Assert.All(agent.CandidatePairs, p => Assert.Equal(Local, p.Local.Address));
        Assert.Equal(0, agent.PairsDropped);
    }

    [Fact]
    public void PairsBeyondMaxPairsAreNotFormedAndAreCounted()
    {
        using var agent = NewAgent(new IceLimits { MaxPairs = 10 });
        agent.AddHostCandidate(new IPEndPoint(IPAddress.Parse("10.0.0.3"), 2000));
        for (var i = 0; i < 20; i++) agent.AddRemoteCandidate(Host(Public(i), i), TimeSpan.Zero);
        Assert.Equal(10, agent.CandidatePairs.Count);
        Assert.Equal(2 * 20 - 10, agent.PairsDropped);
    }

    [Theory]
    [InlineData("224.0.0.251", 5353)]
    [InlineData("239.255.255.250", 1900)]
    [InlineData("255.255.255.255", 9)]
    [InlineData("0.0.0.0", 9)]
    [InlineData("::", 9)]
    [InlineData("ff02::1", 9)]
    [InlineData("198.51.100.1", 0)]
    [InlineData("10.0.0.2", 2000)]   // our own host candidate
    public void AddressesThatMustNeverBeCheckedAreRefused(string address, int port)
    {
        using var agent = NewAgent();
        agent.AddHostCandidate(new IPEndPoint(IPAddress.Parse("fd00::2"), 2000));
        agent.AddRemoteCandidate(Host(new IPEndPoint(IPAddress.Parse(address), port), 1), TimeSpan.Zero);
        Assert.Equal(1, agent.RemoteCandidatesFiltered);
        Assert.Empty(agent.CandidatePairs);
    }

    [Theory]
    [InlineData("10.1.2.3")]
    [InlineData("172.20.0.1")]
    [InlineData("192.168.1.1")]
    [InlineData("100.64.0.1")]
    [InlineData("169.254.1.1")]
    public void PrivateAddressesAreUsedByDefaultAndRefusedWhenDenied(string address)
    {
        var candidate = Host(new IPEndPoint(IPAddress.Parse(address), 4000), 1);
        using var open = NewAgent();
        open.AddRemoteCandidate(candidate, TimeSpan.Zero);
        Assert.Single(open.CandidatePairs);

        using var closed = NewAgent(new IceLimits { AllowPrivateAddresses = false }, IceRole.Controlled);
        closed.AddRemoteCandidate(candidate, TimeSpan.Zero);
        Assert.Empty(closed.CandidatePairs);
        Assert.Equal(1, closed.RemoteCandidatesFiltered);

        // A check from there is still answered (the peer holds our password) but leaves no candidate or pair.
        closed.HandleDatagram(Check("bbbb:aaaa", "bbbbbbbbbbbbbbbbbbbbbbbb", 100), Local, candidate.Address, TimeSpan.Zero);
        Assert.True(closed.TryPollTransmit(new byte[1500], out var answerLength, out var answer));
        Assert.Equal(candidate.Address, answer.Remote);
        Assert.Empty(closed.CandidatePairs);
        Assert.Equal(2, closed.RemoteCandidatesFiltered);
    }

    [Fact]
    public void AFloodOfPeerReflexiveSourcesIsAnsweredButHoldsOnlyTheLimit()
    {
        using var agent = NewAgent(role: IceRole.Controlled);
        var answers = 0;
        var buffer = new byte[1500];
        for (var i = 0; i < 2_000; i++)
        {
            var from = Public(i);
            Assert.Equal(IceReceiveResult.Stun, agent.HandleDatagram(Check("bbbb:aaaa", "bbbbbbbbbbbbbbbbbbbbbbbb", 1000), Local, from, TimeSpan.Zero));
            while (agent.TryPollTransmit(buffer, out var length, out var t))
                if (t.Remote.Equals(from) && StunMessage.TryRead(buffer.AsSpan(0, length), out var m) && m.Type == StunMessageType.BindingSuccess) answers++;
        }
        Assert.Equal(2_000, answers);
        Assert.Equal(100, agent.CandidatePairs.Count);
        Assert.Equal(2_000 - 100, agent.RemoteCandidatesDropped);
    }

    [Fact]
    public void ATriggeredCheckOfAPairThatCanWinIsNotStarvedByAFloodOfPeerReflexivePairs()
    {
        // Limits raised so the flood really forms 1,152 low-priority pairs with triggered checks, queued before the peer's.
        var limits = new IceLimits { MaxRemoteCandidates = 2_000, MaxPairs = 2_000 };
        var (a, b, d) = AgentPeer.Pair(new IceAgentOptions { Role = IceRole.Controlling }, new IceAgentOptions { Role = IceRole.Controlled, Limits = limits });
        var username = b.Agent.LocalCredentials.Ufrag + ":" + a.Agent.LocalCredentials.Ufrag;
        for (var i = 0; i < 1_152; i++)
            b.Agent.HandleDatagram(Check(username, b.Agent.LocalCredentials.Password, 1000), b.Local, Public(i), TimeSpan.Zero);
        Assert.Equal(1_153, b.Agent.CandidatePairs.Count);

        // Served first in, first out at Ta (50 ms), B's check of the real pair would wait about 58 s.
        Assert.True(d.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, TimeSpan.FromSeconds(5)),
            $"A {a.State}, B {b.State} at {d.Now}");
        Assert.Equal(a.Local, b.Agent.SelectedRemote!.Address);
    }

    [Fact]
    public void LimitsOutOfRangeAreRefusedAtConstruction()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new IceAgent(new IceAgentOptions { Limits = new IceLimits { MaxRemoteCandidates = 0 } }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new IceAgent(new IceAgentOptions { Limits = new IceLimits { MaxPairs = 0 } }));
    }
}
