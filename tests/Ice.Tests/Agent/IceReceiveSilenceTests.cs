using Transport.TestKit;

namespace Transport.Ice.Tests.Agent;

/// <summary>
/// While data flows, a peer that vanishes is noticed after <see cref="IceAgentOptions.ReceiveSilenceTimeout"/>
/// (default 2.5 s) instead of <see cref="IceAgentOptions.DisconnectedTimeout"/> (5 s); an idle connection or a slow
/// stream keeps the Disconnected timeout, and a peer that only stops its data (but stays alive) is never Disconnected.
/// Defaults everywhere except where a test says otherwise.
/// </summary>
public sealed class IceReceiveSilenceTests
{
    private static TimeSpan S(double s) => TimeSpan.FromSeconds(s);

    private static (AgentPeer A, AgentPeer B, TwoPeerDriver D) Connected()
    {
        var (a, b, d) = AgentPeer.Pair(new IceAgentOptions { Role = IceRole.Controlling, TieBreaker = 2, Random = new Random(1) },
                                       new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 1, Random = new Random(2) });
        Assert.True(d.RunUntil(() => a.Agent.SelectedLocal is not null && b.Agent.SelectedLocal is not null, S(5)));
        return (a, b, d);
    }

    /// <summary>Both send one datagram every <paramref name="every"/> until <paramref name="until"/>.</summary>
    private static void Stream(AgentPeer a, AgentPeer b, TwoPeerDriver d, TimeSpan every, TimeSpan until)
    {
        while (d.Now < until)
        {
            a.SendData([0x80, 0x60], d.Now);
            b.SendData([0x80, 0x60], d.Now);
            d.RunFor(every);
        }
    }

    [Fact]
    public void MediaEvery20MillisecondsThenALinkCutGivesDisconnectedTwoAndAHalfSecondsAfterTheLastPacket()
    {
        var (a, b, d) = Connected();
        Stream(a, b, d, TimeSpan.FromMilliseconds(20), S(10));
        d.Link.Cut = true;
        var last = b.Agent.LastReceivedAt!.Value;
        Assert.True(d.RunUntil(() => b.State == IceConnectionState.Failed, S(40)));
        var disconnected = b.StateChanges.Single(e => e.State == IceConnectionState.Disconnected);
        Assert.Equal(IceStateReason.ReceiveSilence, disconnected.Reason);
        Assert.Equal(last + S(2.5), disconnected.At);
        Assert.Equal(S(2.5), disconnected.LastReceivedAge);
        // Failed follows by FailedTimeout (25 s) or, sooner here, by consent expiry 30 s after the last answered check.
        var failed = b.StateChanges.Single(e => e.State == IceConnectionState.Failed);
        Assert.True(failed.At <= disconnected.At + S(25), $"failed at {failed.At} ({failed.Reason})");
    }

    [Fact]
    public void AnIdleConnectionKeepsTheFiveSecondDisconnectedTimeout()
    {
        var (_, b, d) = Connected();
        d.RunFor(S(10));
        d.Link.Cut = true;
        var last = b.Agent.LastReceivedAt!.Value;
        Assert.True(d.RunUntil(() => b.State == IceConnectionState.Disconnected, S(10)));
        var disconnected = b.StateChanges.Single(e => e.State == IceConnectionState.Disconnected);
        Assert.Equal(IceStateReason.NoTraffic, disconnected.Reason);
        Assert.Equal(last + S(5), disconnected.At);
    }

    [Fact]
    public void AStreamWithGapsLongerThanAQuarterOfTheTimeoutDoesNotArmTheTimer()
    {
        var (a, b, d) = Connected();
        Stream(a, b, d, TimeSpan.FromMilliseconds(700), S(10));
        d.Link.Cut = true;
        var last = b.Agent.LastReceivedAt!.Value;
        Assert.True(d.RunUntil(() => b.State == IceConnectionState.Disconnected, S(10)));
        var disconnected = b.StateChanges.Single(e => e.State == IceConnectionState.Disconnected);
        Assert.Equal(IceStateReason.NoTraffic, disconnected.Reason);
        Assert.Equal(last + S(5), disconnected.At);
    }

    [Fact]
    public void APeerThatStopsItsDataButStaysAliveIsNeverDisconnected()
    {
        var (a, b, d) = Connected();
        Stream(a, b, d, TimeSpan.FromMilliseconds(20), S(10));
        // A stops its media; B goes on. A's keepalive (2 s after its last data, on the 100 ms grid, though the idle
        // interval is 3 s) and its consent checks arrive well within 2.5 s of each other.
        while (d.Now < S(40))
        {
            b.SendData([0x80, 0x60], d.Now);
            d.RunFor(TimeSpan.FromMilliseconds(20));
        }
        Assert.DoesNotContain(b.StateChanges, e => e.State == IceConnectionState.Disconnected);
        // And when both stop, the connection idles on without a flap.
        d.RunFor(S(30));
        Assert.DoesNotContain(b.StateChanges, e => e.State == IceConnectionState.Disconnected);
        Assert.DoesNotContain(a.StateChanges, e => e.State == IceConnectionState.Disconnected);
        Assert.Equal(IceConnectionState.Connected, b.State);
    }

    [Fact]
    public void ABurstShorterThanTheTimeoutDoesNotArmTheTimer()
    {
        // A DTLS handshake's few datagrams, then an idle connection: the Disconnected timeout applies, not receive silence.
        var (a, b, d) = Connected();
        Stream(a, b, d, TimeSpan.FromMilliseconds(20), d.Now + S(2));
        d.Link.Cut = true;
        var last = b.Agent.LastReceivedAt!.Value;
        Assert.True(d.RunUntil(() => b.State == IceConnectionState.Disconnected, S(10)));
        var disconnected = b.StateChanges.Single(e => e.State == IceConnectionState.Disconnected);
        Assert.Equal(IceStateReason.NoTraffic, disconnected.Reason);
        Assert.Equal(last + S(5), disconnected.At);
    }

    [Fact]
    public void ZeroDisablesTheTimer()
    {
        var (a, b, d) = AgentPeer.Pair(new IceAgentOptions
        {
            Role = IceRole.Controlling,
            TieBreaker = 2,
            Random = new Random(1),
            ReceiveSilenceTimeout = TimeSpan.Zero
        },
                                       new IceAgentOptions
                                       {
                                           Role = IceRole.Controlled,
                                           TieBreaker = 1,
                                           Random = new Random(2),
                                           ReceiveSilenceTimeout = TimeSpan.Zero
                                       });
        Assert.True(d.RunUntil(() => a.Agent.SelectedLocal is not null && b.Agent.SelectedLocal is not null, S(5)));
        Stream(a, b, d, TimeSpan.FromMilliseconds(20), S(10));
        d.Link.Cut = true;
        var last = b.Agent.LastReceivedAt!.Value;
        Assert.True(d.RunUntil(() => b.State == IceConnectionState.Disconnected, S(10)));
        Assert.Equal(last + S(5), b.StateChanges.Single(e => e.State == IceConnectionState.Disconnected).At);
        Assert.Throws<ArgumentOutOfRangeException>(() => new IceAgent(new IceAgentOptions { ReceiveSilencePackets = 0 }));
    }
}
