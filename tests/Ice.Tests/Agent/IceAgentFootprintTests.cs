using System.Net;
using Xunit.Abstractions;

namespace Transport.Ice.Tests.Agent;

/// <summary>
/// Memory of connected, idle agents (the goal is at most 16 KiB per agent; the driver's share is
/// measured by the coordinator with real sockets). Agents are connected in memory, without a link.
/// </summary>
public sealed class IceAgentFootprintTests(ITestOutputHelper output)
{
    [Fact]
    public void AConnectedIdleAgentHoldsLessThanSixteenKibibytes()
    {
        const int pairs = 200;
        var agents = new List<IceAgent>(2 * pairs);
        var buffer = new byte[1500];
        var before = GC.GetTotalMemory(forceFullCollection: true);
        for (var i = 0; i < pairs; i++)
        {
            var ea = new IPEndPoint(IPAddress.Parse("10.1.0.1"), 10000 + i);
            var eb = new IPEndPoint(IPAddress.Parse("10.2.0.1"), 10000 + i);
            var a = new IceAgent(new IceAgentOptions { Role = IceRole.Controlling, Random = new Random(i) });
            var b = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled, Random = new Random(-i) });
            a.AddHostCandidate(ea);
            b.AddHostCandidate(eb);
            a.SetRemoteCredentials(b.LocalCredentials, TimeSpan.Zero);
            b.SetRemoteCredentials(a.LocalCredentials, TimeSpan.Zero);
            a.AddRemoteCandidate(b.LocalCandidates[0], TimeSpan.Zero);
            b.AddRemoteCandidate(a.LocalCandidates[0], TimeSpan.Zero);
            var now = TimeSpan.Zero;
            for (var step = 0; step < 200 && !(a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected); step++)
            {
                foreach (var (from, to, toLocal, toRemote) in new[] { (a, b, eb, ea), (b, a, ea, eb) })
                {
                    if (from.PollTimeout() is { } due && due <= now) from.HandleTimeout(now);
                    while (from.TryPollTransmit(buffer, out var length, out var t)) to.HandleDatagram(buffer.AsSpan(0, length), toLocal, toRemote, now);
                }
                now += TimeSpan.FromMilliseconds(10);
            }
            Assert.Equal(IceConnectionState.Connected, a.State);
            Assert.Equal(IceConnectionState.Connected, b.State);
            while (a.TryPollEvent(out _)) { }
            while (b.TryPollEvent(out _)) { }
            agents.Add(a);
            agents.Add(b);
        }
        var after = GC.GetTotalMemory(forceFullCollection: true);
        var perAgent = (after - before) / (double)agents.Count;
        output.WriteLine($"{perAgent:F0} bytes per connected idle agent ({agents.Count} agents)");
        Assert.True(perAgent < 16 * 1024, $"{perAgent:F0} bytes per agent");
        GC.KeepAlive(agents);
    }
}
