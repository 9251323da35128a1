using Transport.TestKit;

namespace Transport.Sctp.Tests;

public sealed class AssociationLifecycleTests
{
    [Fact]
    public void CutLinkFailsTheAssociationAfterMaxRetransAtTheExpectedTime()
    {
        var (a, b, d) = Pair.Connected();
        // Warm the RTT estimate, then wait until everything is acknowledged.
        for (var i = 0; i < 20; i++) a.Association.SendMessage(1, Ppid.Binary, new byte[500]);
        d.RunUntil(() => a.Association.IsIdle, TimeSpan.FromSeconds(10));
        d.RunFor(TimeSpan.FromSeconds(1));
        var rto = a.Association.Rto;
        Assert.Equal(TimeSpan.FromMilliseconds(200), rto); // 20 ms RTT: clamped to RTO.Min
        Assert.Equal(TimeSpan.FromMilliseconds(20), a.Association.SmoothedRoundTripTime);
        d.Link.Cut = true;
        var cutAt = d.Now;
        a.Association.SendMessage(1, Ppid.Binary, new byte[500]);
        d.Flush();
        d.RunUntil(() => a.Association.State == SctpState.Failed, TimeSpan.FromMinutes(5));
        Assert.Equal(SctpState.Failed, a.Association.State);
        // T3-rtx doubles from the RTO up to RTO.Max; the 11th expiry exceeds Association.Max.Retrans = 10.
        var expected = TimeSpan.Zero;
        var r = rto;
        for (var k = 0; k <= 10; k++) { expected += r; r = r * 2 > TimeSpan.FromSeconds(10) ? TimeSpan.FromSeconds(10) : r * 2; }
        Assert.Equal(cutAt + expected, a.FailedAt);
        Assert.Contains("Max.Retrans", a.Association.CloseReason);
        Assert.Equal(SctpCloseKind.Failed, a.Association.CloseKind);
        Assert.Contains(a.Events, e => e.Kind == SctpEventKind.StateChanged && e.State == SctpState.Failed
            && e.Reason == SctpStateReason.RetransmissionLimit && e.Detail!.Contains("T3-rtx"));
        Assert.Null(a.Association.PollTimeout());
    }

    /// <summary>
    /// The chaos suite's seed 12 (docs/chaos.md): after an outage the doubled T3-rtx kept the next retransmission up to
    /// RTO.Max (10 s) away once the path worked again, and without a fresh RTT sample (Karn's rule) it stayed there; at
    /// 30 % loss each way the reliable data took minutes. With SctpOptions.MaxTimerBackoff (3 s, as in the peer
    /// connection) the data that waited through the outage arrives within the cap after the link heals.
    /// </summary>
    [Theory]
    [InlineData(null, 10.0)]
    [InlineData(3.0, 3.0)]
    public void AfterAnOutageTheNextRetransmissionIsAtMostTheBackoffCapAway(double? capSeconds, double expectedWaitSeconds)
    {
        var o = new SctpOptions { MaxTimerBackoff = capSeconds is { } c ? TimeSpan.FromSeconds(c) : null, MaxRetransmissions = 30 };
        var (a, b, d) = Pair.Connected(a: o, b: o);
        for (var i = 0; i < 20; i++) a.Association.SendMessage(1, Ppid.Binary, new byte[500]);
        Assert.True(d.RunUntil(() => a.Association.IsIdle, TimeSpan.FromSeconds(10)));
        var delivered = b.Association.Counters.MessagesDelivered;
        // A 40 s outage: T3-rtx backs off from 200 ms to the cap (RTO.Max without one).
        d.Link.Cut = true;
        a.Association.SendMessage(1, Ppid.Binary, new byte[500]);
        d.Flush();
        d.RunFor(TimeSpan.FromSeconds(40));
        Assert.Equal(SctpState.Established, a.Association.State);
        Assert.Equal(TimeSpan.FromSeconds(expectedWaitSeconds), a.Association.Rto);
        var next = a.Association.PollTimeout(out var timer);
        Assert.Equal(SctpTimer.T3Rtx, timer);
        Assert.True(next - d.Now <= TimeSpan.FromSeconds(expectedWaitSeconds));
        d.Link.Cut = false;
        var healed = d.Now;
        Assert.True(d.RunUntil(() => b.Association.Counters.MessagesDelivered > delivered, TimeSpan.FromSeconds(30)));
        var wait = d.Now - healed;
        Assert.True(wait <= TimeSpan.FromSeconds(expectedWaitSeconds) + TimeSpan.FromMilliseconds(50), $"delivered {wait} after the link healed");
        if (capSeconds is not null) Assert.True(wait < TimeSpan.FromSeconds(3.1));
    }

    [Fact]
    public void ABackoffCapBelowRtoMinIsRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new SctpAssociation(new SctpOptions { MaxTimerBackoff = TimeSpan.FromMilliseconds(100) }));

    [Fact]
    public void TheSmoothedRoundTripIsTheLinksOnceDataWasAcknowledged()
    {
        var link = new VirtualLink(seed: 4, LinkConditions.Clean(TimeSpan.FromMilliseconds(25)), LinkConditions.Clean(TimeSpan.FromMilliseconds(15)));
        var (a, b, d) = Pair.Connected(link);
        Assert.Null(a.Association.SmoothedRoundTripTime);   // no DATA acknowledged yet
        for (var i = 0; i < 20; i++) a.Association.SendMessage(1, Ppid.Binary, new byte[500]);
        d.RunUntil(() => a.Association.IsIdle, TimeSpan.FromSeconds(10));
        Assert.Equal(TimeSpan.FromMilliseconds(40), a.Association.SmoothedRoundTripTime);
        Assert.Null(b.Association.SmoothedRoundTripTime);   // b sent no DATA: nothing to time
    }

    [Fact]
    public void AbortClosesBothEndsAtOnceWithTheCause()
    {
        var (a, b, d) = Pair.Connected();
        a.Association.Abort(d.Now, "going away");
        Assert.Equal(SctpState.Terminated, a.Association.State);
        var abortSentAt = d.Now;
        d.RunUntil(() => b.Association.State == SctpState.Terminated, TimeSpan.FromSeconds(5));
        Assert.Equal(SctpState.Terminated, b.Association.State);
        Assert.Equal(abortSentAt + TimeSpan.FromMilliseconds(10), b.ClosedAt); // one link delay: no timeout involved
        var closed = b.Events.Single(e => e.Kind == SctpEventKind.StateChanged && e.State == SctpState.Terminated);
        Assert.Equal(SctpErrorCause.UserInitiatedAbort, closed.Cause);
        Assert.Contains("going away", closed.Detail);
        Assert.Equal(SctpStateReason.AbortReceived, closed.Reason);
        Assert.Equal(SctpState.Established, closed.Previous);
        Assert.Equal(abortSentAt + TimeSpan.FromMilliseconds(10), closed.At); // stamped with the time of the packet that caused it
        Assert.Null(b.Association.PollTimeout());
    }

    [Fact]
    public void AbortFromTheAnsweringSideClosesTheInitiator()
    {
        var (a, b, d) = Pair.Connected();
        var ch = a.Association.CreateDataChannel("x", now: d.Now);
        d.RunFor(TimeSpan.FromMilliseconds(100));
        b.Association.Abort(d.Now);
        d.RunUntil(() => a.Association.State == SctpState.Terminated, TimeSpan.FromSeconds(5));
        Assert.Equal(SctpErrorCause.UserInitiatedAbort, a.Events.Single(e => e.Kind == SctpEventKind.StateChanged && e.State == SctpState.Terminated).Cause);
        Assert.Equal(SctpCloseKind.AbortReceived, a.Association.CloseKind);
        Assert.Equal(SctpCloseKind.AbortSent, b.Association.CloseKind);
        Assert.Equal(DataChannelState.Closed, ch.State);
        Assert.Contains(a.Events, e => e.Kind == SctpEventKind.ChannelClosed && e.Channel == ch);
        var ex = Assert.Throws<DataChannelNotOpenException>(() => ch.Send(new byte[1]));
        Assert.Equal(DataChannelState.Closed, ex.State);
    }

    [Fact]
    public void AbortWithWrongVerificationTagIsIgnored()
    {
        var (a, b, d) = Pair.Connected();
        var buf = new byte[256];
        // Build an ABORT as B would, then corrupt the tag.
        b.Association.Abort(d.Now);
        b.Association.HandleTimeout(d.Now);
        Assert.True(b.Association.TryPollTransmit(buf, out var n));
        buf[4] ^= 0xFF;
        Transport.Sctp.Wire.CommonHeader.Seal(buf.AsSpan(0, n), zeroChecksum: false);
        a.Association.HandleDatagram(buf.AsSpan(0, n), d.Now);
        Assert.Equal(SctpState.Established, a.Association.State);
        Assert.Equal(1, a.Association.Counters.BadVerificationTag);
    }

    [Fact]
    public void ShutdownDeliversQueuedDataThenClosesBothEnds()
    {
        var link = new VirtualLink(5, new LinkConditions { Loss = 0.1 }, new LinkConditions { Loss = 0.1 });
        var (a, b, d) = Pair.Connected(link);
        long received = 0;
        b.OnEvent = e => { if (e.Kind == SctpEventKind.StreamMessage) received += e.Data.Length; };
        for (var i = 0; i < 200; i++) a.Association.SendMessage(1, Ppid.Binary, new byte[3000]);
        a.Association.Shutdown(d.Now);
        Assert.Equal(SctpState.ShutdownPending, a.Association.State);
        Assert.Throws<InvalidOperationException>(() => a.Association.SendMessage(1, Ppid.Binary, new byte[1]));
        d.RunUntil(() => a.Association.State == SctpState.Terminated && b.Association.State == SctpState.Terminated, TimeSpan.FromMinutes(5));
        Assert.Equal(200 * 3000, received);
        Assert.Equal("shutdown complete", a.Association.CloseReason);
        Assert.Equal("shutdown complete", b.Association.CloseReason);
        Assert.Equal(SctpCloseKind.ShutdownComplete, a.Association.CloseKind);
        Assert.Equal(SctpCloseKind.ShutdownComplete, b.Association.CloseKind);
        Assert.Null(a.Association.PollTimeout());
        Assert.Null(b.Association.PollTimeout());
    }

    [Fact]
    public void HeartbeatsDetectADeadPeerWhenEnabled()
    {
        var opts = new SctpOptions { HeartbeatInterval = TimeSpan.FromSeconds(1), MaxRetransmissions = 3 };
        var (a, b, d) = Pair.Connected(a: opts);
        d.RunFor(TimeSpan.FromSeconds(10));
        Assert.Equal(SctpState.Established, a.Association.State); // heartbeats answered
        d.Link.Cut = true;
        d.RunUntil(() => a.Association.State == SctpState.Failed, TimeSpan.FromMinutes(2));
        Assert.Equal(SctpState.Failed, a.Association.State);
        Assert.Contains("heartbeats", a.Association.CloseReason);
    }

    [Fact]
    public void LostShutdownCompleteIsSentAgainWhenShutdownAckRepeats()
    {
        var (a, b, d) = Pair.Connected();
        // Drop A's first SHUTDOWN COMPLETE (chunk type 14).
        d.Link.DropNth(LinkEnd.A, 1, m => m.Span[12] == 14);
        a.Association.Shutdown(d.Now);
        d.RunUntil(() => a.Association.State == SctpState.Terminated && b.Association.State == SctpState.Terminated, TimeSpan.FromSeconds(30));
        Assert.Equal("shutdown complete", a.Association.CloseReason);
        Assert.Equal("shutdown complete", b.Association.CloseReason);
        Assert.Equal(SctpCloseKind.ShutdownComplete, a.Association.CloseKind);
        Assert.Equal(SctpCloseKind.ShutdownComplete, b.Association.CloseKind);
    }
}
