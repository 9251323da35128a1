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
    private static (List<double> A, List<double> B) Requests(TimeSpan? answerAt, TimeSpan? hold = null, bool sped = false)
    {
        var controlled = new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 1, Random = new Random(2) };
        if (hold is { } h) controlled = controlled with { ControlledCheckHold = h };
        var (a, b, d) = AgentPeer.Pair(new IceAgentOptions { Role = IceRole.Controlling, TieBreaker = 2, Random = new Random(1) }, controlled, signal: false);
        if (sped)
        {
            a.Agent.Sped = new SpedController();
            b.Agent.Sped = new SpedController();
        }
        var sentA = new List<double>();
        var sentB = new List<double>();
        // RFC 5389 section 6: message type 0x0001 is a Binding request.
        d.Link.AddFilter(LinkEnd.A, m => m.Span.Length >= 20 && m.Span[0] == 0 && m.Span[1] == 1,
            _ => { sentA.Add(d.Now.TotalMilliseconds); return FilterAction.Pass; });
        d.Link.AddFilter(LinkEnd.B, m => m.Span.Length >= 20 && m.Span[0] == 0 && m.Span[1] == 1,
            _ => { sentB.Add(d.Now.TotalMilliseconds); return FilterAction.Pass; });
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
    public void WhileSpedCarriesTheHandshakeTheAnswererChecksAtOnce()
    {
        // A SPED offerer (Chromium) carries one DTLS datagram a STUN message: its post-quantum ClientHello's second
        // datagram leaves with its next check, a round trip after the first, or in its response to a check of ours.
        // Our first check leaving with the answer brings it in that response, half a round trip after the offerer's
        // first check arrives instead of one and a half (bench setup-time, Chromium -> ours).
        var (a, b) = Requests(answerAt: TimeSpan.FromMilliseconds(100), sped: true);
        Assert.Equal(0, b[0]);
        Assert.Equal(100, a[0]);
    }

    [Fact]
    public void TheResponseToACheckReplacedUnderSpedStillMakesThePairValid()
    {
        // Both sides have each other's credentials at 0 and SPED is on: B's first check leaves at once. A's check
        // reaches B at 10 ms while B's is in progress, so B checks the pair again at once (SPED's re-check, for a lost
        // carrying check); RFC 8445 section 7.3.1.4: the replaced check is not retransmitted, but its response, which
        // is already on its way (under SPED it may carry the peer's DTLS datagram), still counts. Before, it was dropped
        // as an unknown transaction and the pair became valid only with the new check's response, 10 ms later.
        var (a, b, d) = AgentPeer.Pair(new IceAgentOptions { Role = IceRole.Controlling, TieBreaker = 2, Random = new Random(1) },
            new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 1, Random = new Random(2) }, signal: false);
        a.Agent.Sped = new SpedController();
        b.Agent.Sped = new SpedController();
        var sentB = new List<double>();
        d.Link.AddFilter(LinkEnd.B, m => m.Span.Length >= 20 && m.Span[0] == 0 && m.Span[1] == 1,
            _ => { sentB.Add(d.Now.TotalMilliseconds); return FilterAction.Pass; });
        a.Signal(b, TimeSpan.Zero);
        b.Signal(a, TimeSpan.Zero);
        d.RunFor(TimeSpan.FromMilliseconds(100));
        Assert.Equal(new double[] { 0, 10 }, sentB.Take(2));
        Assert.Equal(20, b.Events.OfType<IceValidPairEvent>().First().At.TotalMilliseconds);
        Assert.Equal(0, b.Agent.DroppedCount(IceDropReason.UnknownTransaction));
        Assert.Equal(IceConnectionState.Connected, b.State);
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
