using Transport.TestKit;

namespace Transport.Ice.Tests.Agent;

/// <summary>
/// <see cref="IceAgentOptions.ControlledCheckHold"/>: the answerer (controlled) holds its ordinary checks until the
/// offerer's first check shows the offerer has the answer, or until the hold ends; triggered checks never wait.
/// Exact instants on virtual time (10 ms one way).
/// </summary>
public sealed class IceControlledCheckHoldTests
{
    // B (controlled) has A's credentials at 0; A (controlling) gets B's at answerAt (null: never). Returns the
    // instants, in ms, at which each side sent its Binding requests during the first 400 ms.
    private static (List<double> A, List<double> B) Requests(TimeSpan? answerAt, TimeSpan? hold = null)
    {
        var controlled = new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 1, Random = new Random(2) };
        if (hold is { } h) controlled = controlled with { ControlledCheckHold = h };
        var (a, b, d) = AgentPeer.Pair(new IceAgentOptions { Role = IceRole.Controlling, TieBreaker = 2, Random = new Random(1) }, controlled, signal: false);
        var sentA = new List<double>();
        var sentB = new List<double>();
        // RFC 5389 section 6: message type 0x0001 is a Binding request.
        d.Link.AddFilter(LinkEnd.A, m => m.Span.Length >= 20 && m.Span[0] == 0 && m.Span[1] == 1, _ => { sentA.Add(d.Now.TotalMilliseconds); return FilterAction.Pass; });
        d.Link.AddFilter(LinkEnd.B, m => m.Span.Length >= 20 && m.Span[0] == 0 && m.Span[1] == 1, _ => { sentB.Add(d.Now.TotalMilliseconds); return FilterAction.Pass; });
        b.Signal(a, TimeSpan.Zero);
        if (answerAt is { } at)
        {
            d.RunFor(at);
            a.Signal(b, d.Now);
        }
        d.RunFor(TimeSpan.FromMilliseconds(400) - d.Now);
        return (sentA, sentB);
    }

    [Fact]
    public void TheAnswererHoldsItsChecksUntilTheOfferersFirstCheckArrivesAndAnswersItAtOnce()
    {
        var (a, b) = Requests(answerAt: TimeSpan.FromMilliseconds(100));
        Assert.Equal(100, a[0]);      // the offerer checks as soon as it has the answer
        Assert.Equal(110, b[0]);      // our first check: the triggered one, when the offerer's arrives
    }

    [Fact]
    public void WithoutAnyCheckFromTheOffererTheHoldEndsAfterItsDefault150Ms()
    {
        var (a, b) = Requests(answerAt: null);
        Assert.Empty(a);
        Assert.Equal(150, b[0]);      // the offerer answers it with its own password: one check is enough
        Assert.Single(b);
    }

    [Fact]
    public void AZeroHoldChecksAtOnce()
    {
        var (_, b) = Requests(answerAt: null, hold: TimeSpan.Zero);
        Assert.Equal(0, b[0]);
    }

    [Fact]
    public void TheControllingAgentNeverHolds()
    {
        var (a, _) = Requests(answerAt: TimeSpan.Zero);
        Assert.Equal(0, a[0]);
    }

    [Fact]
    public void ANegativeHoldIsRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new IceAgent(new IceAgentOptions { ControlledCheckHold = TimeSpan.FromMilliseconds(-1) }));
}
