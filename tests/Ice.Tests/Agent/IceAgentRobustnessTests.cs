using System.Net;
using Transport.TestKit;

namespace Transport.Ice.Tests.Agent;

/// <summary>The agent on a bad link and under garbage: it connects, stays up, and never throws.</summary>
public sealed class IceAgentRobustnessTests
{
    private static TimeSpan S(double s) => TimeSpan.FromSeconds(s);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ConnectsAndStaysConnectedOverALossyDuplicatingReorderingLink(int seed)
    {
        var bad = new LinkConditions
        {
            Delay = TimeSpan.FromMilliseconds(40),
            Jitter = TimeSpan.FromMilliseconds(30),
            Loss = 0.2,
            Duplicate = 0.1,
            Reorder = 0.1,
            ReorderDelay = TimeSpan.FromMilliseconds(60),
        };
        var link = new VirtualLink(seed, bad, bad);
        var (a, b, d) = AgentPeer.Pair(new IceAgentOptions { Role = IceRole.Controlling, TieBreaker = 9, Random = new Random(seed) },
                                       new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 3, Random = new Random(seed + 100) }, link);
        Assert.True(d.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, S(10)));
        // With 20 % loss each way, Disconnected may come and go, but consent (30 s) and the failed timer
        // (25 s after Disconnected) must never fire while the link carries most packets.
        d.RunFor(S(120));
        Assert.NotEqual(IceConnectionState.Failed, a.State);
        Assert.NotEqual(IceConnectionState.Failed, b.State);
        Assert.Equal(a.Agent.SelectedLocal!.Address, b.Agent.SelectedRemote!.Address);
        Assert.Equal(0, a.Agent.DroppedCount(IceDropReason.Unauthenticated) + b.Agent.DroppedCount(IceDropReason.Unauthenticated));
    }

    [Fact]
    public void GarbageFromEverywhereWhileConnectedIsDroppedWithoutHarm()
    {
        var (a, b, d) = AgentPeer.Pair(new IceAgentOptions { Role = IceRole.Controlling, TieBreaker = 9, Random = new Random(1) },
                                       new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 3, Random = new Random(2) });
        Assert.True(d.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, S(5)));
        var random = new Random(99);
        var stranger = new IPEndPoint(IPAddress.Parse("10.9.9.9"), 666);
        var buffer = new byte[1500];
        var answered = 0;
        long dropped = 0, fromStranger = 0, applicationData = 0;
        for (var round = 0; round < 200; round++)
        {
            d.RunFor(TimeSpan.FromMilliseconds(50));
            var droppedBefore = a.Agent.DroppedTotal;
            var droppedNow = 0;
            for (var i = 0; i < 20; i++)
            {
                var g = new byte[random.Next(0, 300)];
                random.NextBytes(g);
                if (g.Length > 0 && random.Next(2) == 0) g[0] &= 0x03; // half of them look like STUN
                var fromPeer = random.Next(3) == 0;
                var result = a.Agent.HandleDatagram(g, a.Local, fromPeer ? b.Local : stranger, d.Now);
                // From the stranger: always dropped. From the peer's valid pair: random non-STUN bytes are application
                // data for the layer above; random STUN-looking bytes fail to parse or authenticate and are dropped.
                if (!fromPeer) { fromStranger++; Assert.Equal(IceReceiveResult.Dropped, result); }
                else if (g.Length == 0 || g[0] > 3) Assert.Equal(IceReceiveResult.ApplicationData, result);
                else Assert.Equal(IceReceiveResult.Dropped, result);
                if (result == IceReceiveResult.Dropped) droppedNow++;
                if (result == IceReceiveResult.ApplicationData) applicationData++;
            }
            // Every drop reported is a drop counted (the agent's own timers ran before, not during, these 20).
            Assert.Equal(droppedNow, a.Agent.DroppedTotal - droppedBefore);
            dropped += droppedNow;
            // Nothing may be sent to the stranger.
            while (a.Agent.TryPollTransmit(buffer, out var length, out var t))
            {
                Assert.NotEqual(stranger, t.Remote);
                answered++;
            }
        }
        Assert.True(dropped >= fromStranger && fromStranger > 1000, $"dropped {dropped}, from the stranger {fromStranger}");
        Assert.True(applicationData > 0);
        Assert.Equal(IceConnectionState.Connected, a.State);
        Assert.Equal(IceConnectionState.Connected, b.State);
    }
}
