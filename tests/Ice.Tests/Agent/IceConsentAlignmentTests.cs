namespace Transport.Ice.Tests.Agent;

/// <summary>
/// Consent checks (RFC 7675) are random within +-20 % of the interval and, by default, land on multiples of
/// ConsentAlignment so that many agents on one host share wake-ups; the window always wins over the alignment.
/// </summary>
public sealed class IceConsentAlignmentTests
{
    private static readonly TimeSpan LinkDelay = TimeSpan.FromMilliseconds(10);   // AgentPeer.Pair's clean link

    private static List<TimeSpan> ConsentRequestsSentByA(IceAgentOptions a, IceAgentOptions b, TimeSpan run)
    {
        var (pa, pb, d) = AgentPeer.Pair(a, b);
        Assert.True(d.RunUntil(() => pa.State == IceConnectionState.Connected && pb.State == IceConnectionState.Connected, TimeSpan.FromSeconds(5)));
        d.RunFor(TimeSpan.FromSeconds(2));   // past the connectivity checks
        pb.ReceivedStun.Clear();
        d.RunFor(run);
        Assert.Equal(IceConnectionState.Connected, pa.State);
        return pb.ReceivedStun.Where(s => s.Type == 0x0001).Select(s => s.At - LinkDelay).ToList();
    }

    [Fact]
    public void ByDefaultConsentChecksFallOnMultiplesOfOneHundredMillisecondsWithinTheWindow()
    {
        var sent = ConsentRequestsSentByA(new IceAgentOptions { Role = IceRole.Controlling, TieBreaker = 2, Random = new Random(3) },
                                          new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 1, Random = new Random(4) }, TimeSpan.FromSeconds(200));
        Assert.InRange(sent.Count, 33, 50);
        Assert.All(sent, t => Assert.Equal(0, t.Ticks % TimeSpan.FromMilliseconds(100).Ticks));
        var intervals = sent.Zip(sent.Skip(1), (x, y) => y - x).ToList();
        Assert.All(intervals, i => Assert.InRange(i, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(6)));
        Assert.True(intervals.Distinct().Count() > 5, "still random among the multiples the window holds");
    }

    [Fact]
    public void ZeroAlignmentKeepsThePlainRandomTimes()
    {
        var sent = ConsentRequestsSentByA(new IceAgentOptions { Role = IceRole.Controlling, TieBreaker = 2, Random = new Random(3), ConsentAlignment = TimeSpan.Zero },
                                          new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 1, Random = new Random(4) }, TimeSpan.FromSeconds(100));
        Assert.True(sent.Count(t => t.Ticks % TimeSpan.FromMilliseconds(100).Ticks != 0) > sent.Count / 2);
    }

    [Fact]
    public void AWindowNarrowerThanTheAlignmentKeepsTheWindow()
    {
        // 150 ms +-20 % is [120, 180] ms: no multiple of 1 s inside, so the random time stands.
        var sent = ConsentRequestsSentByA(new IceAgentOptions
        {
            Role = IceRole.Controlling, TieBreaker = 2, Random = new Random(5), ConsentInterval = TimeSpan.FromMilliseconds(150),
            ConsentAlignment = TimeSpan.FromSeconds(1), KeepaliveInterval = TimeSpan.Zero,
        }, new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 1, Random = new Random(6) }, TimeSpan.FromSeconds(10));
        var intervals = sent.Zip(sent.Skip(1), (x, y) => y - x).ToList();
        Assert.InRange(intervals.Count, 50, 85);
        Assert.All(intervals, i => Assert.InRange(i, TimeSpan.FromMilliseconds(120), TimeSpan.FromMilliseconds(180)));
    }

    [Fact]
    public void ANegativeAlignmentIsRefused()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new IceAgent(new IceAgentOptions { ConsentAlignment = TimeSpan.FromMilliseconds(-1) }));
        Assert.Contains("ConsentAlignment", e.ParamName);
    }
}
