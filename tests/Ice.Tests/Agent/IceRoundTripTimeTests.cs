using Transport.TestKit;

namespace Transport.Ice.Tests.Agent;

/// <summary>The selected pair's round-trip time from checks and consent checks, on virtual time (exact to the tick).</summary>
public sealed class IceRoundTripTimeTests
{
    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);
    private static TimeSpan S(double s) => TimeSpan.FromSeconds(s);

    private static IceAgentOptions Options(IceRole role, int seed) => new()
    {
        Role = role,
        TieBreaker = role == IceRole.Controlling ? 2UL : 1UL,
        Random = new Random(seed),
    };

    private static bool IsBindingRequest(ReadOnlyMemory<byte> m) => m.Length >= 2 && m.Span[0] == 0x00 && m.Span[1] == 0x01;

    [Fact]
    public void TheRoundTripIsTheSumOfTheTwoDirectionsDelays()
    {
        var link = new VirtualLink(seed: 1, LinkConditions.Clean(Ms(10)), LinkConditions.Clean(Ms(27)));
        var (a, b, d) = AgentPeer.Pair(Options(IceRole.Controlling, 1), Options(IceRole.Controlled, 2), link);
        Assert.Null(a.Agent.RoundTripTime);   // nothing selected yet
        Assert.True(d.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, S(5)));
        // Checks answered before the selection count for the pair; consent checks keep it current afterwards.
        d.RunFor(S(20));
        Assert.Equal(IceConnectionState.Connected, a.State);
        foreach (var peer in new[] { a, b })
        {
            Assert.Equal(Ms(37), peer.Agent.RoundTripTime);
            Assert.Equal(Ms(37), peer.Agent.SmoothedRoundTripTime);
        }
    }

    [Fact]
    public void ARetransmittedConsentCheckGivesNoSampleAndTheNextOneDoesWithSmoothing()
    {
        var dropNextRequestOfA = false;
        var link = new VirtualLink(seed: 2, LinkConditions.Clean(Ms(10)), LinkConditions.Clean(Ms(10)));
        link.AddFilter(LinkEnd.A, IsBindingRequest, _ =>
        {
            if (!dropNextRequestOfA) return FilterAction.Pass;
            dropNextRequestOfA = false;
            return FilterAction.Drop;
        });
        var (a, b, d) = AgentPeer.Pair(Options(IceRole.Controlling, 3), Options(IceRole.Controlled, 4), link);
        Assert.True(d.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, S(5)));
        d.RunFor(S(12));
        Assert.Equal(Ms(20), a.Agent.RoundTripTime);
        Assert.Equal(Ms(20), a.Agent.SmoothedRoundTripTime);

        // Slower link from now on; the first transmission of A's next consent check is lost, so its answer follows a
        // retransmission and says nothing about the round trip (Karn's rule).
        link.AToB = LinkConditions.Clean(Ms(30));
        link.BToA = LinkConditions.Clean(Ms(30));
        dropNextRequestOfA = true;
        var responses = a.LastSuccessResponseAt;
        Assert.True(d.RunUntil(() => !dropNextRequestOfA && a.LastSuccessResponseAt != responses, S(10)));
        Assert.Equal(IceConnectionState.Connected, a.State);
        Assert.Equal(Ms(20), a.Agent.RoundTripTime);

        // The next consent check goes out once and is answered 60 ms later: the sample, and 7/8 x 20 + 1/8 x 60 = 25.
        responses = a.LastSuccessResponseAt;
        Assert.True(d.RunUntil(() => a.LastSuccessResponseAt != responses, S(10)));
        Assert.Equal(Ms(60), a.Agent.RoundTripTime);
        Assert.Equal(Ms(25), a.Agent.SmoothedRoundTripTime);
    }

    [Fact]
    public void AnIceLiteAgentHasNoRoundTripSinceItSendsNoChecks()
    {
        var (a, b, d) = AgentPeer.Pair(Options(IceRole.Controlling, 5), Options(IceRole.Controlled, 6) with { Lite = true });
        Assert.True(d.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, S(5)));
        d.RunFor(S(12));
        Assert.Equal(Ms(20), a.Agent.RoundTripTime);   // the full agent's checks: 10 ms each way by default
        Assert.Null(b.Agent.RoundTripTime);
    }
}
