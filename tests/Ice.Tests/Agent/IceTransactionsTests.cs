using System.Net;
using Transport.Ice.Stun;

namespace Transport.Ice.Tests.Agent;

/// <summary>
/// <see cref="IceTransactions"/> alone, on virtual time: the retransmission schedule of a check (RFC 8445 section 14.3,
/// RFC 8489 section 6.2.1) and its timeout, matching a response by transaction ID, the bound on pending transactions,
/// a replaced check that only waits (RFC 8445 section 7.3.1.4), and cancellation.
/// </summary>
public sealed class IceTransactionsTests
{
    private static readonly IPEndPoint Local = new(IPAddress.Parse("10.0.0.1"), 1000);
    private static readonly IPEndPoint Remote = new(IPAddress.Parse("10.0.0.2"), 2000);
    private static readonly StunRetransmissionOptions Checks = new IceAgentOptions().CheckRetransmission;

    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    private static IceTransaction Check(out byte[] id, IcePair? pair = null, StunRetransmissionOptions? options = null)
    {
        id = new byte[StunHeader.TransactionIdSize];
        StunTransactionId.NewRandom().WriteTo(id);
        var buffer = new byte[64];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, id);
        w.AddFingerprint();
        return new IceTransaction(IceTransactionKind.Check, new StunClientTransaction(buffer.AsSpan(0, w.Length), options ?? Checks), Local, Remote)
        { Pair = pair };
    }

    private static IcePair NewPair(int remotePort)
    {
        var list = new IceGeneration(IceCredentials.Generate()).CheckList;
        var local = new IceCandidate(IceCandidateType.Host, Local, IceCandidate.ComputePriority(IceCandidateType.Host, 65535), "1");
        var remote = new IceCandidate(IceCandidateType.Host, new IPEndPoint(Remote.Address, remotePort),
            IceCandidate.ComputePriority(IceCandidateType.Host, 65535), "2");
        return list.GetOrAdd(local, remote, 10, out _, out _)!;
    }

    /// <summary>Runs the set until nothing is scheduled, recording when each request left and when each timed out.</summary>
    private static (List<(TimeSpan At, IceTransaction From)> Sends, List<(TimeSpan At, IceTransaction What)> TimedOut) Run(IceTransactions set, TimeSpan now)
    {
        var sends = new List<(TimeSpan, IceTransaction)>();
        var timedOut = new List<(TimeSpan, IceTransaction)>();
        var buffer = new byte[1500];
        for (var step = 0; step < 1000; step++)
        {
            while (set.TryPollTransmit(buffer, out var n, out var from))
            {
                Assert.Equal(from!.Transaction.Request.Length, n);
                sends.Add((now, from));
            }
            if (set.PollTimeout() is not { } due) break;
            Assert.True(due >= now);
            now = due;
            set.HandleTimeout(now);
            while (set.TryPollTimedOut(out var t)) timedOut.Add((now, t));
        }
        return (sends, timedOut);
    }

    [Fact]
    public void ACheckIsSentSevenTimesFromFiveHundredMillisecondsDoublingToTheCapThenTimesOutAfterFourRtos()
    {
        var set = new IceTransactions(10);
        var check = Check(out _);
        var start = Ms(1000);
        Assert.True(set.TryStart(check, start));
        var (sends, timedOut) = Run(set, start);
        // 500 ms, doubling, capped at 1600 ms, 7 requests (Rc); then Rm (4) times the first RTO.
        Assert.Equal(new[] { 0, 500, 1500, 3100, 4700, 6300, 7900 }.Select(ms => start + Ms(ms)), sends.Select(s => s.At));
        Assert.All(sends, s => Assert.Same(check, s.From));
        Assert.Equal([(start + Ms(9900), check)], timedOut);
        Assert.Equal(StunTransactionState.TimedOut, check.Transaction.State);
        Assert.Equal(0, set.Count);
        Assert.Null(set.PollTimeout());
    }

    [Fact]
    public void AResponseFindsItsRequestByTransactionIdUntilItIsRemoved()
    {
        var set = new IceTransactions(10);
        var first = Check(out var firstId);
        var second = Check(out var secondId);
        set.TryStart(first, TimeSpan.Zero);
        set.TryStart(second, TimeSpan.Zero);
        Assert.Same(second, set.Find(secondId));
        Assert.Same(first, set.Find(firstId));
        var stranger = new byte[StunHeader.TransactionIdSize];
        StunTransactionId.NewRandom().WriteTo(stranger);
        Assert.Null(set.Find(stranger));
        set.Remove(second);
        Assert.Null(set.Find(secondId));
        // An ended transaction (cancelled here) answers to nothing, even before it is removed.
        first.Transaction.Cancel(TimeSpan.Zero);
        Assert.Null(set.Find(firstId));
        Assert.Equal(1, set.Count);
        set.RemoveCompleted();
        Assert.Equal(0, set.Count);
    }

    [Fact]
    public void AtTheBoundNoTransactionStartsAndTheRefusalIsCountedUntilOneEnds()
    {
        var set = new IceTransactions(2);
        var a = Check(out var aId);
        Assert.True(set.TryStart(a, TimeSpan.Zero));
        Assert.True(set.TryStart(Check(out _), TimeSpan.Zero));
        Assert.False(set.HasRoom);
        var refused = Check(out var refusedId);
        Assert.False(set.TryStart(refused, TimeSpan.Zero));
        Assert.Equal(1, set.Refused);
        Assert.Equal(StunTransactionState.Created, refused.Transaction.State); // never sent
        Assert.Null(set.Find(refusedId));
        var buffer = new byte[1500];
        var sent = 0;
        while (set.TryPollTransmit(buffer, out _, out _)) sent++;
        Assert.Equal(2, sent);
        set.Remove(set.Find(aId)!);
        Assert.True(set.HasRoom);
        Assert.True(set.TryStart(Check(out _), Ms(10)));
        Assert.Equal(2, set.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => new IceTransactions(0));
    }

    [Fact]
    public void AReplacedCheckStopsSendingStillTakesItsResponseAndEndsWithoutATimeout()
    {
        var set = new IceTransactions(10);
        var pair = NewPair(2000);
        var other = NewPair(2001);
        var replaced = Check(out var replacedId, pair);
        var untouched = Check(out _, other);
        set.TryStart(replaced, TimeSpan.Zero);
        set.TryStart(untouched, TimeSpan.Zero);
        var buffer = new byte[1500];
        while (set.TryPollTransmit(buffer, out _, out _)) { }
        set.StopRetransmittingChecksOn(pair, Ms(100));
        Assert.True(replaced.Transaction.RetransmissionStopped);
        Assert.False(untouched.Transaction.RetransmissionStopped);
        // Still matched while it waits (Rm x RTO = 2 s from the stop).
        Assert.Same(replaced, set.Find(replacedId));
        var (sends, timedOut) = Run(set, Ms(100));
        Assert.DoesNotContain(sends, s => s.From == replaced);
        Assert.Equal(6, sends.Count(s => s.From == untouched));
        Assert.Equal([untouched], timedOut.Select(t => t.What));
        Assert.Equal(StunTransactionState.Cancelled, replaced.Transaction.State);
        Assert.Equal(Ms(2100), replaced.Transaction.CompletedAt);
    }

    [Fact]
    public void CancellingRemovesWhatTheRuleSelectsAndCancelAllForgetsTimedOutOnesNotYetPolled()
    {
        var set = new IceTransactions(10);
        var pair = NewPair(2000);
        var onPair = Check(out _, pair);
        var elsewhere = Check(out var elsewhereId);
        set.TryStart(onPair, TimeSpan.Zero);
        set.TryStart(elsewhere, TimeSpan.Zero);
        set.Cancel(pair, static (t, p) => t.Pair == p, Ms(5));
        Assert.Equal(StunTransactionState.Cancelled, onPair.Transaction.State);
        Assert.Equal(1, set.Count);
        Assert.Same(elsewhere, set.Find(elsewhereId));

        var reliable = Checks with { Reliable = true, ReliableTimeout = Ms(300) };
        var soon = Check(out _, options: reliable);
        set.TryStart(soon, Ms(10));
        set.HandleTimeout(Ms(310));
        set.CancelAll(Ms(310));
        Assert.False(set.TryPollTimedOut(out _));
        Assert.Equal(0, set.Count);
        Assert.Null(set.PollTimeout());
        Assert.False(set.TryPollTransmit(new byte[1500], out _, out _));
    }
}
