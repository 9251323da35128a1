using System.Net;
using Transport.TestKit;

namespace Transport.Ice.Tests.Agent;

/// <summary>
/// A NAT rebinding mid-session (found by the chaos suite, docs/chaos.md): A's public port changes, so B sees A's
/// datagrams come from a new address and what B sends to the old one is lost. Nothing changes on A's side, so no ICE
/// restart comes: B must follow the peer-reflexive pair that A's checks from the new address make
/// (<see cref="IceAgentOptions.PeerMoveSilence"/>).
/// </summary>
public sealed class IceNatRebindingTests
{
    private static TimeSpan S(double s) => TimeSpan.FromSeconds(s);
    private static readonly IPEndPoint ANewPort = new(IPAddress.Parse("10.0.0.1"), 1001);

    private static (AgentPeer A, AgentPeer B, TwoPeerDriver D) Connected(TimeSpan peerMoveSilence)
    {
        var (a, b, d) = AgentPeer.Pair(
            new IceAgentOptions { Role = IceRole.Controlling, TieBreaker = 2, Random = new Random(1), PeerMoveSilence = peerMoveSilence },
            new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 1, Random = new Random(2), PeerMoveSilence = peerMoveSilence });
        Assert.True(d.RunUntil(() => a.Agent.SelectedLocal is not null && b.Agent.SelectedLocal is not null, S(5)));
        return (a, b, d);
    }

    /// <summary>Both send a datagram every 20 ms until <paramref name="until"/>.</summary>
    private static void Stream(AgentPeer a, AgentPeer b, TwoPeerDriver d, TimeSpan until)
    {
        for (var i = 0; i < 100_000 && d.Now < until; i++)
        {
            a.TrySendData([0x80, 0x60, 1], d.Now);
            b.TrySendData([0x80, 0x60, 2], d.Now);
            d.RunFor(TimeSpan.FromMilliseconds(20));
        }
    }

    [Fact]
    public void TheAnsweringSideFollowsItsPeerToTheNewPortAndDataFlowsBothWaysAgain()
    {
        var (a, b, d) = Connected(S(1));
        Stream(a, b, d, S(5));
        var rebound = d.Now;
        b.Remote = ANewPort;
        Stream(a, b, d, rebound + S(15));

        var moved = b.StateChanges.Where(e => e.Reason == IceStateReason.PeerMoved).ToList();
        Assert.Single(moved);
        Assert.True(moved[0].At - rebound <= S(7), $"B followed A {moved[0].At - rebound} after the rebinding");
        Assert.Equal(ANewPort, b.Agent.SelectedRemote!.Address);
        Assert.Equal(IceConnectionState.Connected, b.State);
        Assert.Equal(IceConnectionState.Connected, a.State);
        Assert.DoesNotContain(a.StateChanges.Concat(b.StateChanges), e => e.State == IceConnectionState.Failed);
        // B's data reaches A again (A's own address never changed), and A's still reaches B.
        Assert.Contains(a.ApplicationData, x => x.At > moved[0].At + S(1) && x.Data[2] == 2);
        Assert.Contains(b.ApplicationData, x => x.At > moved[0].At + S(1) && x.Data[2] == 1);
    }

    /// <summary>
    /// Chaos seeds 10 and 54 (docs/chaos.md): at 30 % loss each way B's triggered check on the new pair, or A's answer,
    /// was lost and its retransmissions backed off (0.5, 1, 1.6 s), so following took 8-9 s. Now A's data arriving on
    /// that pair triggers a new check at most every initial RTO (500 ms): with B's first three checks to the new port
    /// lost, the fourth goes 1.5 s after the first instead of 3.1 s.
    /// </summary>
    [Fact]
    public void ThePeersDataOnTheNewPairTriggersANewCheckWhenTheFirstIsLost()
    {
        var (a, b, d) = Connected(S(1));
        Stream(a, b, d, S(5));
        var rebound = d.Now;
        // B's Binding requests (type 0x0001) that reach the link go to A's new port: drop the first three.
        d.Link.AddFilter(LinkEnd.B, x => x.Length >= 20 && x.Span[0] == 0 && x.Span[1] == 1, n => n <= 3 ? FilterAction.Drop : FilterAction.Pass);
        b.Remote = ANewPort;
        Stream(a, b, d, rebound + S(15));

        var learned = b.Events.OfType<IceRemoteCandidateLearnedEvent>().First(e => e.At > rebound && e.Candidate.Address.Equals(ANewPort)).At;
        var moved = b.StateChanges.Single(e => e.Reason == IceStateReason.PeerMoved).At;
        Assert.True(moved - learned <= S(2), $"B followed A {moved - learned} after A's first check from its new port (rebound {rebound}, learned {learned})");
        Assert.Equal(ANewPort, b.Agent.SelectedRemote!.Address);
        Assert.Equal(IceConnectionState.Connected, b.State);
    }

    [Fact]
    public void WithPeerMoveSilenceZeroTheConnectionDoesNotFollowAndFails()
    {
        var (a, b, d) = Connected(TimeSpan.Zero);
        Stream(a, b, d, S(5));
        b.Remote = ANewPort;
        Stream(a, b, d, S(45));
        Assert.DoesNotContain(b.StateChanges, e => e.Reason == IceStateReason.PeerMoved);
        Assert.Contains(a.StateChanges.Concat(b.StateChanges), e => e.State == IceConnectionState.Failed);
    }
}
