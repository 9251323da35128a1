using System.Threading.Channels;
using Transport.Streaming.Io;

namespace Transport.Streaming.WebRtc;

// Backpressure (PeerConnectionOptions.MaxUnreadBytes): a received message counts against the SCTP window until the
// application takes it from Events; then its bytes are released on the connection's thread, which may send a window
// update (RFC 9260 section 6.2).
public sealed partial class PeerConnection
{
    private readonly EventReader _eventReader;
    private readonly ReleaseWork _release;
    private long _pendingRelease;

    /// <summary>Bytes of received messages not yet read plus what SCTP holds for them (a snapshot, for tests and runs).</summary>
    internal int UnreadBytes => _core.UnreadBytes;

    /// <summary>The SCTP association once it exists, for diagnostics only (benchmarks read its counters and flow state; not synchronized).</summary>
    internal Transport.Sctp.SctpAssociation? SctpForDiagnostics => _core.Sctp;

    /// <summary>Datagrams waiting in this connection's queue on the driver (diagnostics).</summary>
    internal int QueuedDatagrams => _handle.QueuedDatagrams;

    private void Consumed(int bytes)
    {
        if (bytes <= 0) return;
        // Only the reader that makes the count non-zero posts: one release on the way at a time, taking the whole sum.
        if (Interlocked.Add(ref _pendingRelease, bytes) != bytes) return;
        var posted = _handle.PostAsync(_release, CancellationToken.None);
        if (!posted.IsCompleted) _ = posted.AsTask(); // waits for a work slot; the result (stopped) needs no action
    }

    private void WakeForLeases()
    {
        // ReleaseWork with nothing pending is a turn of the connection: its AfterInput drains the returned leases.
        var posted = _handle.PostAsync(_release, CancellationToken.None);
        if (!posted.IsCompleted) _ = posted.AsTask();
    }

    /// <summary>Runs on the connection's thread.</summary>
    private sealed class ReleaseWork(PeerConnection owner) : IWorkItem
    {
        public void Run(TimeSpan now)
        {
            var bytes = Interlocked.Exchange(ref owner._pendingRelease, 0);
            if (bytes > 0) owner._core.ReleaseReceived((int)Math.Min(bytes, int.MaxValue));
        }

        public void Complete() { }
        public void Abandon() { }
    }

    /// <summary>The events channel's reader that tells the connection when a message was read.</summary>
    private sealed class EventReader(PeerConnection owner, ChannelReader<PeerConnectionEvent> inner) : ChannelReader<PeerConnectionEvent>
    {
        public override bool TryRead(out PeerConnectionEvent item)
        {
            if (!inner.TryRead(out item!)) return false;
            if (item is DataChannelMessageReceived m) owner.Consumed(m.Data.Length);
            return true;
        }

        public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) => inner.WaitToReadAsync(cancellationToken);
        public override Task Completion => inner.Completion;
        public override bool CanCount => inner.CanCount;
        public override int Count => inner.Count;
        public override bool CanPeek => inner.CanPeek;
        public override bool TryPeek(out PeerConnectionEvent item) => inner.TryPeek(out item!);
    }
}
