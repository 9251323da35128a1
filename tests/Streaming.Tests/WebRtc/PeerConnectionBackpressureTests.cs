using Transport.Sctp;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.WebRtc;

using static RealPeerKit;

/// <summary>
/// PeerConnectionOptions.MaxUnreadBytes over real sockets on 127.0.0.1: a receiver that does not read closes the SCTP
/// window, so the sender's buffer fills and its sends wait, while the receiver holds no more than the bound; once it
/// reads, everything arrives in order.
/// </summary>
public sealed class PeerConnectionBackpressureTests
{
    private const int MaxUnread = 1 << 20;
    private const int MessageSize = 16 * 1024;
    private const long Total = 32L << 20;

    private static byte Pattern(long offset) => (byte)(offset * 131 + (offset >> 9) * 7 + (offset >> 17));

    [Fact]
    public async Task AReceiverThatDoesNotReadMakesTheSenderWaitWithinTheBoundThenReadsEverythingInOrder()
    {
        await using var pair = LoopbackPair.Create(new PeerConnectionOptions { MaxUnreadBytes = MaxUnread, MaxBufferedAmount = 8L << 20 });
        var (a, b) = (pair.A, pair.B);
        var offer = await a.CreateOfferAsync();
        await a.SetRemoteDescriptionAsync(await b.CreateAnswerAsync(offer));
        var channel = await a.CreateDataChannelAsync("bulk").WaitAsync(Patience);
        await NextAsync<DataChannelOpened>(b);
        channel.BufferedAmountLowThreshold = 4L << 20;

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        var blocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        long accepted = 0;
        var sending = Task.Run(async () =>
        {
            var buffer = new byte[MessageSize];
            for (long sent = 0; sent < Total;)
            {
                for (var i = 0; i < MessageSize; i++) buffer[i] = Pattern(sent + i);
                try
                {
                    await a.SendAsync(channel, buffer, cancellationToken: cts.Token);
                    sent += MessageSize;
                    Interlocked.Exchange(ref accepted, sent);
                    continue;
                }
                catch (InvalidOperationException) { } // the channel holds MaxBufferedAmount: wait for it to drain
                blocked.TrySetResult();
                await NextAsync<DataChannelBufferedAmountLow>(a).WaitAsync(cts.Token);
            }
        });

        // The receiver reads nothing: the sender's buffer fills (its sends wait) and B's window closes at the bound.
        await Task.WhenAny(blocked.Task, sending, Task.Delay(Patience, cts.Token));
        Assert.True(blocked.Task.IsCompleted,
            $"the sender never waited: accepted {Interlocked.Read(ref accepted)}, buffered {channel.BufferedAmount}, B unread {b.UnreadBytes}, B events " +
            $"{b.Events.Count}, sender {sending.Status} {sending.Exception?.InnerException?.Message}");
        for (var i = 0; i < 2000 && b.UnreadBytes < MaxUnread - 4 * MessageSize; i++) await Task.Delay(10, cts.Token);
        var unread = b.UnreadBytes;
        Assert.True(unread >= MaxUnread - 4 * MessageSize, $"B's unread bytes {unread} never reached the bound {MaxUnread}");
        Assert.True(unread <= MaxUnread + 64 * 1024, $"B holds {unread} unread bytes, bound {MaxUnread} + 64 KiB");
        Assert.True((long)b.Events.Count * MessageSize <= MaxUnread + 64 * 1024, $"{b.Events.Count} messages wait in B's events");
        Assert.True(Interlocked.Read(ref accepted) < Total, "the sender should be waiting");
        Assert.False(sending.IsCompleted);

        // Now B reads: every byte once, in order; the unread bytes never pass the bound.
        long received = 0, mismatch = -1, maxUnread = unread;
        await foreach (var e in b.ReadEventsAsync(cts.Token))
        {
            maxUnread = Math.Max(maxUnread, b.UnreadBytes);
            if (e is not DataChannelMessageReceived m) continue;
            for (var i = 0; i < m.Data.Length; i++) if (m.Data[i] != Pattern(received + i) && mismatch < 0) mismatch = received + i;
            received += m.Data.Length;
            if (received >= Total) break;
        }
        await sending.WaitAsync(cts.Token);
        Assert.Equal(-1, mismatch);
        Assert.Equal(Total, received);
        Assert.True(maxUnread <= MaxUnread + 64 * 1024, $"B held up to {maxUnread} unread bytes");
    }
}
