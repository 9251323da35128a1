using Transport.Ice.Stun;
using Transport.TestKit;

namespace Transport.Ice.Tests.Stun;

/// <summary>The client transaction on virtual time (RFC 8489 section 6.2.1).</summary>
public sealed class StunClientTransactionTests
{
    private static byte[] BindingRequest(out StunTransactionId id)
    {
        id = StunTransactionId.NewRandom();
        Span<byte> tid = stackalloc byte[12];
        id.WriteTo(tid);
        var buffer = new byte[64];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, tid);
        w.AddFingerprint();
        return buffer.AsSpan(0, w.Length).ToArray();
    }

    private static byte[] Response(ReadOnlySpan<byte> tid, StunClass @class = StunClass.SuccessResponse, ushort method = StunMethod.Binding)
    {
        var buffer = new byte[64];
        var w = new StunMessageWriter(buffer, new StunMessageType(method, @class), tid);
        if (@class == StunClass.ErrorResponse) w.AddErrorCode(400, "Bad Request");
        return buffer.AsSpan(0, w.Length).ToArray();
    }

    /// <summary>Runs the transaction alone on a manual clock, recording the virtual time of each send.</summary>
    private static List<TimeSpan> Run(StunClientTransaction t, ManualClock clock, TimeSpan? stopAt = null)
    {
        var sends = new List<TimeSpan>();
        var buffer = new byte[1500];
        t.Start(clock.Now);
        while (true)
        {
            while (t.TryPollTransmit(buffer, out var n))
            {
                Assert.Equal(t.Request.Length, n);
                sends.Add(clock.Now);
            }
            if (t.PollTimeout() is not { } due || (stopAt is { } s && due > s)) return sends;
            clock.AdvanceTo(due);
            t.HandleTimeout(clock.Now);
        }
    }

    private static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    [Fact]
    public void DefaultScheduleSendsAtRfcTimesAndTimesOutAt39Point5Seconds()
    {
        var t = new StunClientTransaction(BindingRequest(out _));
        var clock = new ManualClock();
        var sends = Run(t, clock);
        Assert.Equal(new[] { S(0), S(0.5), S(1.5), S(3.5), S(7.5), S(15.5), S(31.5) }, sends);
        Assert.Equal(StunTransactionState.TimedOut, t.State);
        Assert.Equal(S(39.5), t.CompletedAt);
        Assert.Equal(S(39.5), clock.Now);
        Assert.Equal(7, t.RequestsSent);
        Assert.Null(t.PollTimeout());
    }

    [Fact]
    public void OtherSettingsGiveTheirOwnSchedule()
    {
        var options = new StunRetransmissionOptions { InitialRto = TimeSpan.FromMilliseconds(100), MaxRequests = 4, LastRequestWaitMultiplier = 3 };
        var t = new StunClientTransaction(BindingRequest(out _), options);
        var clock = new ManualClock(S(10));
        var sends = Run(t, clock);
        // 10.0, +0.1, +0.2, +0.4; then 3 x 100 ms.
        Assert.Equal(new[] { S(10), S(10.1), S(10.3), S(10.7) }, sends);
        Assert.Equal(S(11.0), t.CompletedAt);
        Assert.Equal(StunTransactionState.TimedOut, t.State);
    }

    [Fact]
    public void MaxRtoCapsTheDoubling()
    {
        var options = new StunRetransmissionOptions { InitialRto = TimeSpan.FromMilliseconds(500), MaxRto = S(2), MaxRequests = 6 };
        var t = new StunClientTransaction(BindingRequest(out _), options);
        var sends = Run(t, new ManualClock());
        Assert.Equal(new[] { S(0), S(0.5), S(1.5), S(3.5), S(5.5), S(7.5) }, sends);
        Assert.Equal(S(15.5), t.CompletedAt);
    }

    [Fact]
    public void ReliableTransportSendsOnceAndTimesOutAfterTi()
    {
        var t = new StunClientTransaction(BindingRequest(out _), new StunRetransmissionOptions { Reliable = true });
        var sends = Run(t, new ManualClock());
        Assert.Equal(new[] { S(0) }, sends);
        Assert.Equal(S(39.5), t.CompletedAt);
    }

    [Fact]
    public void ResponseCompletesTheTransactionAndStopsRetransmissions()
    {
        var request = BindingRequest(out var id);
        var t = new StunClientTransaction(request);
        var clock = new ManualClock();
        var sends = Run(t, clock, stopAt: S(1.5));
        Assert.Equal(new[] { S(0), S(0.5), S(1.5) }, sends);

        clock.AdvanceTo(S(2));
        Span<byte> tid = stackalloc byte[12];
        id.WriteTo(tid);
        var response = Response(tid);
        Assert.True(StunMessage.TryRead(response, out var m));
        Assert.Equal(StunResponseMatch.Completed, t.HandleResponse(m, clock.Now));
        Assert.Equal(StunTransactionState.Succeeded, t.State);
        Assert.Equal(S(2), t.CompletedAt);
        Assert.Null(t.PollTimeout());
        Assert.False(t.TryPollTransmit(new byte[100], out _));
        // Retransmitted, so no RTT sample (Karn).
        Assert.Null(t.RoundTripTime);

        // A duplicate of the response is ignored.
        Assert.Equal(StunResponseMatch.Duplicate, t.HandleResponse(m, S(2.1)));
        Assert.Equal(S(2), t.CompletedAt);
    }

    [Fact]
    public void RoundTripTimeIsMeasuredWhenOneRequestWasEnough()
    {
        var t = new StunClientTransaction(BindingRequest(out var id));
        t.Start(S(1));
        Assert.True(t.TryPollTransmit(new byte[100], out _));
        Span<byte> tid = stackalloc byte[12];
        id.WriteTo(tid);
        Assert.True(StunMessage.TryRead(Response(tid), out var m));
        Assert.Equal(StunResponseMatch.Completed, t.HandleResponse(m, S(1.042)));
        Assert.Equal(TimeSpan.FromMilliseconds(42), t.RoundTripTime);
    }

    [Fact]
    public void StaleAndForeignMessagesAreIgnored()
    {
        var t = new StunClientTransaction(BindingRequest(out var id));
        t.Start(TimeSpan.Zero);
        Span<byte> tid = stackalloc byte[12];
        id.WriteTo(tid);

        // Another transaction's response.
        var other = tid.ToArray();
        other[11] ^= 1;
        Assert.True(StunMessage.TryRead(Response(other), out var foreign));
        Assert.Equal(StunResponseMatch.NotMine, t.HandleResponse(foreign, S(0.1)));
        // A request carrying our ID (e.g. reflected back) is not a response.
        Assert.True(StunMessage.TryRead(Response(tid, StunClass.Request), out var request));
        Assert.Equal(StunResponseMatch.NotMine, t.HandleResponse(request, S(0.1)));
        // Right ID, wrong method.
        Assert.True(StunMessage.TryRead(Response(tid, StunClass.SuccessResponse, StunMethod.Allocate), out var wrongMethod));
        Assert.Equal(StunResponseMatch.NotMine, t.HandleResponse(wrongMethod, S(0.1)));
        Assert.Equal(StunTransactionState.Pending, t.State);

        // An error response completes it.
        Assert.True(StunMessage.TryRead(Response(tid, StunClass.ErrorResponse), out var error));
        Assert.Equal(StunResponseMatch.Completed, t.HandleResponse(error, S(0.2)));
        Assert.Equal(StunTransactionState.ErrorResponse, t.State);
    }

    [Fact]
    public void ResponseWithUnknownComprehensionRequiredAttributeFailsTheTransaction()
    {
        var t = new StunClientTransaction(BindingRequest(out var id));
        t.Start(TimeSpan.Zero);
        Span<byte> tid = stackalloc byte[12];
        id.WriteTo(tid);
        var buffer = new byte[64];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingSuccess, tid);
        w.AddUInt32(0x7ABC, 1);
        Assert.True(StunMessage.TryRead(buffer.AsSpan(0, w.Length), out var m));
        Assert.Equal(StunResponseMatch.Completed, t.HandleResponse(m, S(0.1)));
        Assert.Equal(StunTransactionState.UnknownAttributes, t.State);
    }

    [Fact]
    public void EarlyTimeoutCallsDoNothingAndCancelStopsEverything()
    {
        var t = new StunClientTransaction(BindingRequest(out _));
        t.Start(TimeSpan.Zero);
        Assert.True(t.TryPollTransmit(new byte[100], out _));
        t.HandleTimeout(S(0.4));
        Assert.False(t.TryPollTransmit(new byte[100], out _));
        Assert.Equal(S(0.5), t.PollTimeout());
        t.Cancel(S(0.45));
        Assert.Equal(StunTransactionState.Cancelled, t.State);
        Assert.Null(t.PollTimeout());
    }

    [Fact]
    public void AStoppedTransactionSendsNoMoreButStillTakesItsResponseAndNeverTimesOut()
    {
        // RFC 8445 section 7.3.1.4: a check replaced by a new one on the same pair is no longer retransmitted, its lack
        // of response is no failure, and its response, when it comes within the transaction's wait, still counts.
        var answered = new StunClientTransaction(BindingRequest(out var id));
        answered.Start(TimeSpan.Zero);
        Assert.True(answered.TryPollTransmit(new byte[100], out _));
        answered.StopRetransmitting(S(0.1));
        Assert.True(answered.RetransmissionStopped);
        // Rm x the initial RTO after the stop (defaults: 16 x 500 ms), not the next retransmission at 0.5 s.
        Assert.Equal(S(8.1), answered.PollTimeout());
        answered.HandleTimeout(S(0.5));
        Assert.False(answered.TryPollTransmit(new byte[100], out _));
        Span<byte> tid = stackalloc byte[12];
        id.WriteTo(tid);
        Assert.True(StunMessage.TryRead(Response(tid), out var m));
        Assert.Equal(StunResponseMatch.Completed, answered.HandleResponse(m, S(0.6)));
        Assert.Equal(StunTransactionState.Succeeded, answered.State);
        Assert.Equal(1, answered.RequestsSent);
        Assert.Equal(S(0.6), answered.RoundTripTime);

        var unanswered = new StunClientTransaction(BindingRequest(out _));
        var clock = new ManualClock();
        unanswered.Start(clock.Now);
        Assert.True(unanswered.TryPollTransmit(new byte[100], out _));
        unanswered.StopRetransmitting(clock.Now);
        var sends = 0;
        while (unanswered.PollTimeout() is { } due && sends < 100)
        {
            clock.AdvanceTo(due);
            unanswered.HandleTimeout(clock.Now);
            while (unanswered.TryPollTransmit(new byte[100], out _)) sends++;
        }
        Assert.Equal(0, sends);
        Assert.Equal(StunTransactionState.Cancelled, unanswered.State);
        Assert.Equal(S(8), unanswered.CompletedAt);
        // Stopping again, or a completed transaction, changes nothing.
        unanswered.StopRetransmitting(clock.Now);
        Assert.Equal(StunTransactionState.Cancelled, unanswered.State);
    }

    [Fact]
    public void InvalidOptionsAndRequestsAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new StunClientTransaction(BindingRequest(out _), new StunRetransmissionOptions { MaxRequests = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new StunClientTransaction(BindingRequest(out _),
            new StunRetransmissionOptions { InitialRto = TimeSpan.Zero }));
        Assert.Throws<ArgumentException>(() => new StunClientTransaction(new byte[] { 1, 2, 3 }));
        Assert.Throws<ArgumentException>(() => new StunClientTransaction(Rfc5769Vectors.ResponseIPv4));
    }
}
