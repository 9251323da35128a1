using Transport.TestKit;

namespace Transport.Sctp.Tests;

/// <summary>
/// Every state of RFC 9260 section 4 is reported when entered, as a StateChanged event with the state before, the state
/// now, the reason and the time: the exact sequence on each side of each path (open by the four-way handshake and by
/// SNAP, graceful shutdown from either side and from both at once, abort).
/// </summary>
public sealed class AssociationStateEventsTests
{
    private static readonly TimeSpan OneWay = TimeSpan.FromMilliseconds(10); // VirtualLink's default delay

    private static List<(SctpState Previous, SctpState State, SctpStateReason Reason)> Changes(SctpPeer peer, int from = 0) =>
        peer.Events.Skip(from).Where(e => e.Kind == SctpEventKind.StateChanged).Select(e => (e.Previous, e.State, e.Reason)).ToList();

    private static List<TimeSpan> Times(SctpPeer peer, int from = 0) =>
        peer.Events.Skip(from).Where(e => e.Kind == SctpEventKind.StateChanged).Select(e => e.At).ToList();

    [Fact]
    public void TheFourWayHandshakeReportsCookieWaitCookieEchoedEstablishedOnTheInitiatorAndEstablishedOnTheAnswerer()
    {
        var (a, b, _) = Pair.Connected();
        Assert.Equal(
        [
            (SctpState.Closed, SctpState.CookieWait, SctpStateReason.InitSent),
            (SctpState.CookieWait, SctpState.CookieEchoed, SctpStateReason.InitAckReceived),
            (SctpState.CookieEchoed, SctpState.Established, SctpStateReason.HandshakeComplete),
        ], Changes(a));
        // INIT at 0, INIT ACK back at one round trip, COOKIE ACK back at two.
        Assert.Equal([TimeSpan.Zero, 2 * OneWay, 4 * OneWay], Times(a));
        // The answerer keeps no state before the COOKIE ECHO (section 5.1): Closed to Established when it arrives.
        Assert.Equal([(SctpState.Closed, SctpState.Established, SctpStateReason.HandshakeComplete)], Changes(b));
        Assert.Equal([3 * OneWay], Times(b));
    }

    [Fact]
    public void SnapGoesFromClosedToEstablishedOnBothSidesAtOnce()
    {
        var pa = new SctpPeer(Pair.Client());
        var pb = new SctpPeer(Pair.Server());
        var at = TimeSpan.FromSeconds(3);
        var initA = SctpInitParameters.CreateLocal(pa.Association.Options);
        var initB = SctpInitParameters.CreateLocal(pb.Association.Options);
        pa.Association.StartWithPeerInit(initA, initB, at);
        pb.Association.StartWithPeerInit(initB, initA, at);
        pa.Drain();
        pb.Drain();
        foreach (var p in new[] { pa, pb })
        {
            Assert.Equal([(SctpState.Closed, SctpState.Established, SctpStateReason.HandshakeComplete)], Changes(p));
            Assert.Equal([at], Times(p));
        }
    }

    [Fact]
    public void AGracefulShutdownReportsEachStepOnTheSideThatAsksAndOnTheSideThatAnswers()
    {
        var (a, b, d) = Pair.Connected();
        int fromA = a.Events.Count, fromB = b.Events.Count;
        // Data in flight: SHUTDOWN waits in ShutdownPending until it is acknowledged (section 9.2).
        a.Association.SendMessage(1, Ppid.Binary, new byte[500]);
        var asked = d.Now;
        a.Association.Shutdown(asked);
        a.Drain();
        Assert.True(d.RunUntil(() => a.Association.State == SctpState.Terminated && b.Association.State == SctpState.Terminated,
            TimeSpan.FromSeconds(10)), $"A {a.Association.State}, B {b.Association.State}");
        Assert.Equal(
        [
            (SctpState.Established, SctpState.ShutdownPending, SctpStateReason.ShutdownRequested),
            (SctpState.ShutdownPending, SctpState.ShutdownSent, SctpStateReason.ShutdownSent),
            (SctpState.ShutdownSent, SctpState.Terminated, SctpStateReason.ShutdownComplete),
        ], Changes(a, fromA));
        Assert.Equal(
        [
            (SctpState.Established, SctpState.ShutdownReceived, SctpStateReason.ShutdownReceived),
            (SctpState.ShutdownReceived, SctpState.ShutdownAckSent, SctpStateReason.ShutdownAckSent),
            (SctpState.ShutdownAckSent, SctpState.Terminated, SctpStateReason.ShutdownComplete),
        ], Changes(b, fromB));
        var ta = Times(a, fromA);
        Assert.Equal(asked, ta[0]);
        Assert.True(ta[1] > ta[0], "SHUTDOWN left only once the DATA was acknowledged");
        Assert.True(ta[2] > ta[1]);
        var tb = Times(b, fromB);
        Assert.True(tb[0] >= ta[1] + OneWay && tb[2] > tb[1] && tb[1] >= tb[0]);
        Assert.Equal(SctpCloseKind.ShutdownComplete, a.Association.CloseKind);
        Assert.Equal(SctpCloseKind.ShutdownComplete, b.Association.CloseKind);
    }

    [Fact]
    public void ShutdownsThatCrossGoFromShutdownSentToShutdownAckSentOnBothSides()
    {
        var (a, b, d) = Pair.Connected();
        int fromA = a.Events.Count, fromB = b.Events.Count;
        a.Association.Shutdown(d.Now);
        b.Association.Shutdown(d.Now);
        Assert.True(d.RunUntil(() => a.Association.State == SctpState.Terminated && b.Association.State == SctpState.Terminated,
            TimeSpan.FromSeconds(10)), $"A {a.Association.State}, B {b.Association.State}");
        foreach (var (p, from) in new[] { (a, fromA), (b, fromB) })
            Assert.Equal(
            [
                (SctpState.Established, SctpState.ShutdownPending, SctpStateReason.ShutdownRequested),
                (SctpState.ShutdownPending, SctpState.ShutdownSent, SctpStateReason.ShutdownSent),
                (SctpState.ShutdownSent, SctpState.ShutdownAckSent, SctpStateReason.ShutdownAckSent),
                (SctpState.ShutdownAckSent, SctpState.Terminated, SctpStateReason.ShutdownComplete),
            ], Changes(p, from));
    }

    [Fact]
    public void AnAbortIsOneStepOnEachSideWithTheCause()
    {
        var (a, b, d) = Pair.Connected();
        int fromA = a.Events.Count, fromB = b.Events.Count;
        var sent = d.Now;
        a.Association.Abort(sent, "bye");
        a.Drain();
        Assert.True(d.RunUntil(() => b.Association.State == SctpState.Terminated, TimeSpan.FromSeconds(5)));
        Assert.Equal([(SctpState.Established, SctpState.Terminated, SctpStateReason.AbortSent)], Changes(a, fromA));
        Assert.Equal([sent], Times(a, fromA));
        Assert.Equal([(SctpState.Established, SctpState.Terminated, SctpStateReason.AbortReceived)], Changes(b, fromB));
        Assert.Equal([sent + OneWay], Times(b, fromB));
        var received = b.Events.Skip(fromB).Single(e => e.Kind == SctpEventKind.StateChanged);
        Assert.Equal(SctpErrorCause.UserInitiatedAbort, received.Cause);
    }

    [Fact]
    public void NoStateChangeCarriesACauseBeforeTheEnd()
    {
        var (a, b, _) = Pair.Connected();
        Assert.All(a.Events.Concat(b.Events).Where(e => e.Kind == SctpEventKind.StateChanged),
            e => Assert.Equal((SctpErrorCause.None, false), (e.Cause, string.IsNullOrEmpty(e.Detail))));
    }
}
