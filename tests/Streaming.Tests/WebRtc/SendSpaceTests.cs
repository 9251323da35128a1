using Transport.Sctp;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.WebRtc;

using static RealPeerKit;

/// <summary>
/// The awaitable room for TrySend senders (PeerConnection.WaitForSendSpaceAsync): the signal alone (completion only
/// once the condition holds, cancellation, one wait at a time, no allocation per wait, no lost wake-up when the
/// condition changes on another thread while the waiter arms), then over real sockets (a sender held by a receiver
/// that does not read wakes once it reads; a connection that ends wakes its waiter).
/// </summary>
public sealed class SendSpaceTests
{
    private sealed class Buffered
    {
        public long Amount;
        public bool Ended;
    }

    private static bool Ready(Buffered b, long threshold) => Volatile.Read(ref b.Ended) || Interlocked.Read(ref b.Amount) <= threshold;

    [Fact]
    public void AWaitCompletesAtOnceWithRoomAndOnlyOnceTheAmountFallsToTheThresholdOtherwise()
    {
        var buffered = new Buffered { Amount = 100 };
        var signal = new SendSpaceSignal<Buffered>(Ready);
        Assert.True(signal.WaitAsync(buffered, 100, default).IsCompletedSuccessfully);

        buffered.Amount = 500;
        var wait = signal.WaitAsync(buffered, 100, default);
        Assert.False(wait.IsCompleted);
        Assert.True(signal.IsArmed);
        buffered.Amount = 101;
        signal.Check();
        Assert.False(wait.IsCompleted);
        buffered.Amount = 100;
        signal.Check();
        Assert.True(wait.IsCompletedSuccessfully);
        wait.GetAwaiter().GetResult();
        Assert.False(signal.IsArmed);
    }

    [Fact]
    public void OneWaitAtATimeAndTheConnectionEndingReleasesIt()
    {
        var buffered = new Buffered { Amount = 500 };
        var signal = new SendSpaceSignal<Buffered>(Ready);
        var wait = signal.WaitAsync(buffered, 100, default);
        Assert.Throws<InvalidOperationException>(() => signal.WaitAsync(buffered, 100, default));
        signal.Release();   // the connection ended: the waiter goes on and its next TrySend says why
        Assert.True(wait.IsCompletedSuccessfully);
        wait.GetAwaiter().GetResult();
        // Reusable after the result was taken.
        var again = signal.WaitAsync(buffered, 100, default);
        Assert.False(again.IsCompleted);
        buffered.Ended = true;
        signal.Check();
        Assert.True(again.IsCompletedSuccessfully);
        again.GetAwaiter().GetResult();
    }

    [Fact]
    public async Task CancellingAWaitThrowsAndTheSignalServesTheNextWait()
    {
        var buffered = new Buffered { Amount = 500 };
        var signal = new SendSpaceSignal<Buffered>(Ready);
        using var cts = new CancellationTokenSource();
        var wait = signal.WaitAsync(buffered, 100, cts.Token);
        Assert.False(wait.IsCompleted);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await wait);
        // A token cancelled before the call ends it at once, without arming.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await signal.WaitAsync(buffered, 100, cts.Token));
        Assert.False(signal.IsArmed);

        using var other = new CancellationTokenSource();
        var next = signal.WaitAsync(buffered, 100, other.Token);
        buffered.Amount = 0;
        signal.Check();
        await next;
        await other.CancelAsync();   // after completion: nothing left registered to cancel
        Assert.False(signal.IsArmed);
    }

    [Fact]
    public void RepeatedWaitsAllocateNothing()
    {
        var buffered = new Buffered { Amount = 500 };
        var signal = new SendSpaceSignal<Buffered>(Ready);
        void Cycle()
        {
            buffered.Amount = 500;
            var wait = signal.WaitAsync(buffered, 100, default);
            buffered.Amount = 0;
            signal.Check();
            wait.GetAwaiter().GetResult();
        }
        for (var i = 0; i < 100; i++) Cycle();   // JIT and first-use costs
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++) Cycle();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public async Task AWakeUpIsNeverLostWhileTheConditionChangesOnAnotherThread()
    {
        // The connection's thread lowers the amount and checks, the waiter raises it and waits, over and over: each
        // wait must complete (a lost wake-up leaves one waiting for good, caught by the 10 s bound on each wait while the
        // other thread still runs). At most 20,000 rounds or 15 s, whichever comes first (each round is a thread-pool
        // continuation: a loaded machine runs few).
        var buffered = new Buffered();
        var signal = new SendSpaceSignal<Buffered>(Ready);
        var stop = 0;
        var connection = Task.Run(() =>
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (Volatile.Read(ref stop) == 0 && clock.Elapsed < TimeSpan.FromSeconds(120))
            {
                Interlocked.Exchange(ref buffered.Amount, 0);
                signal.Check();
                Thread.SpinWait(20);
            }
        });
        var rounds = 0;
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            for (; rounds < 20_000 && clock.Elapsed < TimeSpan.FromSeconds(15); rounds++)
            {
                Interlocked.Exchange(ref buffered.Amount, 1000);
                await signal.WaitAsync(buffered, 10, default).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        finally
        {
            Volatile.Write(ref stop, 1);
            await connection;
        }
        Assert.True(rounds >= 100, $"{rounds} rounds");
    }

    [Fact]
    public async Task ASenderHeldByAReceiverThatDoesNotReadWakesOnceItReads()
    {
        // A small unread bound: while B reads nothing, A's channel keeps what SCTP cannot send.
        await using var pair = LoopbackPair.Create(new PeerConnectionOptions { MaxUnreadBytes = 256 * 1024 });
        var (a, b) = (pair.A, pair.B);
        var offer = await a.CreateOfferAsync();
        await a.SetRemoteDescriptionAsync(await b.CreateAnswerAsync(offer));
        var channel = await a.CreateDataChannelAsync("data").WaitAsync(Patience);
        var payload = new byte[1024];
        const long low = 256 * 1024;
        const int first = 2048, total = first + 64;
        for (var i = 0; i < first; i++) Assert.True(a.TrySend(channel, payload).Accepted);   // 2 MiB: far more than the peer takes unread
        var wait = a.WaitForSendSpaceAsync(channel, low).AsTask();
        // B reads nothing yet: A's turns (SACKs with a closing window) leave far more than the threshold buffered.
        Assert.False(wait.IsCompleted, $"completed with {channel.BufferedAmount} + {a.PendingSendBytes} bytes buffered");

        var received = 0L;
        var reading = Task.Run(async () =>
        {
            using var cts = new CancellationTokenSource(Patience);
            await foreach (var e in b.Events.ReadAllAsync(cts.Token))
                if (e is DataChannelMessageReceived m && (received += m.Data.Length) == total * 1024L) return;
        });
        await wait.WaitAsync(Patience);
        Assert.True(channel.BufferedAmount + a.PendingSendBytes <= low, $"{channel.BufferedAmount} + {a.PendingSendBytes} bytes after the wake-up");
        // Room for a burst: the sender refills and everything arrives.
        for (var i = first; i < total; i++) Assert.True(a.TrySend(channel, payload).Accepted);
        await reading.WaitAsync(Patience);
    }

    [Fact]
    public async Task AConnectionThatEndsWakesItsWaiterAndTheNextSendSaysWhy()
    {
        await using var pair = LoopbackPair.Create(new PeerConnectionOptions { MaxUnreadBytes = 256 * 1024 });
        var (a, b) = (pair.A, pair.B);
        var offer = await a.CreateOfferAsync();
        await a.SetRemoteDescriptionAsync(await b.CreateAnswerAsync(offer));
        var channel = await a.CreateDataChannelAsync("data").WaitAsync(Patience);
        var payload = new byte[1024];
        for (var i = 0; i < 2048; i++) Assert.True(a.TrySend(channel, payload).Accepted);
        var wait = a.WaitForSendSpaceAsync(channel, 0).AsTask();
        Assert.False(wait.IsCompleted);
        await a.CloseAsync();
        await wait.WaitAsync(Patience);
        var result = a.TrySend(channel, payload);
        Assert.False(result.Accepted);
        // Waiting on an ended connection returns at once.
        Assert.True(a.WaitForSendSpaceAsync(channel, 0).IsCompletedSuccessfully);
    }
}
