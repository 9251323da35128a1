namespace Transport.Ice.Tests.Agent;

/// <summary>
/// RFC 8445 section 12.1: data may go on any valid pair before a pair is selected. The agent announces its first
/// valid pair and lets data go on the best one while the (Ta-paced) nomination is still in flight.
/// </summary>
public sealed class IceEarlyDataTests
{
    private static (AgentPeer A, AgentPeer B, Transport.TestKit.TwoPeerDriver D) Pair(bool early) =>
        AgentPeer.Pair(new IceAgentOptions { Role = IceRole.Controlling, TieBreaker = 2, Random = new Random(1), SendBeforeNomination = early },
                       new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 1, Random = new Random(2), SendBeforeNomination = early });

    [Fact]
    public void DataMayGoOnTheFirstValidPairWhileNominationIsPending()
    {
        var (a, b, d) = Pair(early: true);
        Assert.True(d.RunUntil(() => a.Events.OfType<IceValidPairEvent>().Any() && b.Events.OfType<IceValidPairEvent>().Any(), TimeSpan.FromSeconds(1)));
        Assert.Equal(IceConnectionState.Checking, a.State);   // nominated only at the next Ta tick
        var valid = a.Events.OfType<IceValidPairEvent>().Single();
        Assert.Equal(a.Local, valid.Local.Base);

        var send = a.Agent.TrySend(d.Now);
        Assert.Equal(IceSendStatus.Send, send.Status);
        // Data on the valid pair makes it the pair in use: Connected, with consent and liveness on it.
        Assert.Equal(IceConnectionState.Connected, send.State);
        a.DrainEvents();
        Assert.Equal(IceStateReason.ValidPairInUse, a.StateChanges.Last().Reason);
        Assert.Null(a.Agent.SelectedLocal);
        Assert.Equal(a.Remote, send.Remote);

        // What goes on that pair is accepted by the peer as application data, also before it has selected a pair.
        a.SendData([0x17, 0xFE, 0xFD, 1, 2, 3], d.Now);
        Assert.True(d.RunUntil(() => b.ApplicationData.Count == 1, TimeSpan.FromMilliseconds(100)));
        Assert.Equal(IceConnectionState.Checking, b.State);

        // Nomination still completes; the valid-pair event came once per generation.
        Assert.True(d.RunUntil(() => a.Agent.SelectedLocal is not null && b.Agent.SelectedLocal is not null, TimeSpan.FromSeconds(2)));
        Assert.Single(a.Events.OfType<IceValidPairEvent>());
        Assert.Equal(IceSendStatus.Send, a.Agent.TrySend(d.Now).Status);
    }

    [Fact]
    public void WithTheOptionOffNothingIsSentBeforeAPairIsSelected()
    {
        var (a, b, d) = Pair(early: false);
        Assert.True(d.RunUntil(() => a.Events.OfType<IceValidPairEvent>().Any(), TimeSpan.FromSeconds(1)));
        Assert.Equal(IceConnectionState.Checking, a.State);
        var send = a.Agent.TrySend(d.Now);
        Assert.Equal(IceSendStatus.NotConnected, send.Status);
        Assert.Null(send.Remote);
        Assert.True(d.RunUntil(() => a.State == IceConnectionState.Connected, TimeSpan.FromSeconds(2)));
        Assert.Equal(IceSendStatus.Send, a.Agent.TrySend(d.Now).Status);
    }
}
