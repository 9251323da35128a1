using System.Diagnostics;
using System.Runtime.CompilerServices;
using Transport.Samples.EchoServer;
using Transport.Streaming.Sessions;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Sessions;

/// <summary>
/// The session layer's input queue is bounded in bytes (<see cref="WebRtcTransportOptions.InputQueueMaxBytes"/>):
/// a handler that reads nothing holds at most the bound; the rest stays unread in the peer connection, whose
/// MaxUnreadBytes closes the SCTP window, so the client's sends wait in its own buffer. Nothing is dropped.
/// </summary>
public sealed class WebRtcSessionInputBoundTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private const int MessageSize = 256 * 1024;
    private const int Messages = 40;          // 10 MiB: more than the bound, the server's MaxUnreadBytes (4 MiB) and SCTP together
    private const int Bound = 1 << 20;

    private static byte Pattern(int message, int offset) => (byte)(message * 31 + offset * 7 + (offset >> 8));

    [Fact]
    public async Task AHandlerThatReadsNothingHoldsAtMostTheByteBoundThenReadsEverythingInOrder()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async IAsyncEnumerable<StreamOutput> SlowReader(StreamContext context, [EnumeratorCancellation] CancellationToken ct)
        {
            await gate.Task.WaitAsync(ct);
            int n = 0, bad = -1;
            await foreach (var input in context.Inputs.WithCancellation(ct))
            {
                var data = ((DataInput)input).Data.Span;
                if (data.Length != MessageSize || data[0] != Pattern(n, 0) || data[^1] != Pattern(n, MessageSize - 1)
                    || data[MessageSize / 2] != Pattern(n, MessageSize / 2))
                    bad = bad < 0 ? n : bad;
                if (++n == Messages) break;
            }
            yield return DataOutput.FromText($"read {n} first bad {bad}");
        }

        await using var rig = WebRtcSessionTransportTests.Rig.Start(() => new LambdaHandler(SlowReader));
        Assert.Equal(Bound, rig.Sessions.Options.InputQueueMaxBytes);   // the default
        StreamSession? session = null;
        await using var client = await WebRtcStreamClient.ConnectAsync(rig.Signal(s => session = s)).WaitAsync(Patience);
        var transport = (WebRtcSessionTransport)session!.Transport;

        var buffer = new byte[MessageSize];
        for (var m = 0; m < Messages; m++)
        {
            for (var i = 0; i < MessageSize; i++) buffer[i] = Pattern(m, i);
            await client.SendBinaryAsync(buffer).WaitAsync(Patience);   // queued in the client (its MaxBufferedAmount is 16 MiB)
        }

        // The handler reads nothing: the input queue fills to the bound, the connection's unread bytes to its
        // MaxUnreadBytes, and the rest waits in the client's buffer (the window is closed).
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < Patience && !(transport.QueuedInputBytes >= Bound - MessageSize && transport.PeerConnection.UnreadBytes >= (3 << 20)))
            await Task.Delay(20);
        // Stays there: sample for a while, nothing more is taken.
        long maxQueued = 0, maxUnread = 0;
        for (var i = 0; i < 25; i++)
        {
            maxQueued = Math.Max(maxQueued, transport.QueuedInputBytes);
            maxUnread = Math.Max(maxUnread, transport.PeerConnection.UnreadBytes);
            await Task.Delay(20);
        }
        var waiting = client.DataBufferedAmount;
        output.WriteLine($"handler not reading: queued {transport.QueuedInputBytes} B (peak {transport.PeakQueuedInputBytes}, bound {Bound}), " +
                         $"connection unread {transport.PeerConnection.UnreadBytes} B (max seen {maxUnread}), client still buffers {waiting} B, after " +
                         $"{watch.ElapsedMilliseconds} ms");
        Assert.InRange(transport.QueuedInputBytes, Bound - MessageSize, Bound);
        Assert.True(transport.PeakQueuedInputBytes <= Bound, $"peak queued {transport.PeakQueuedInputBytes}");
        Assert.True(maxUnread <= (4 << 20) + 64 * 1024, $"connection unread {maxUnread}");
        Assert.True(waiting >= (long)Messages * MessageSize - Bound - (4 << 20) - (2 << 20),
            $"the client's buffer holds only {waiting} B: the server took more than its bounds");

        // Reading resumes: every message, in order, none lost.
        gate.SetResult();
        var reply = await client.NextAsync(Patience);
        output.WriteLine($"handler: {reply.Text}; peak queued {transport.PeakQueuedInputBytes} B");
        Assert.Equal($"read {Messages} first bad -1", reply.Text);
        Assert.True(transport.PeakQueuedInputBytes <= Bound, $"peak queued {transport.PeakQueuedInputBytes}");
    }
}
