using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Transport.Streaming.Sessions;

/// <summary>
/// One source of media frames fanned out to many viewers (WHEP playback, <c>MapWhep</c>): a publisher's handler
/// calls <see cref="Publish"/> for each frame it receives (a WHIP client's, or a test pattern), each viewer's
/// handler reads its own <see cref="Subscribe">subscription</see>. Bounded and never blocking the publisher: each
/// viewer has a queue of <see cref="ViewerQueueFrames"/> frames; a viewer that falls behind loses frames (counted)
/// and its video then resumes at the next key frame, which is requested from the publisher at once, as it is when a
/// viewer joins or asks for one (PLI/FIR). Payloads are shared, not copied, between viewers: a published frame's
/// payload must not change afterwards.
/// </summary>
public sealed class MediaBroadcast
{
    private readonly object _gate = new();
    private readonly List<MediaSubscription> _viewers = new();
    private long _published, _dropped, _keyFrameRequests;

    /// <summary>A broadcast whose viewers queue up to <paramref name="viewerQueueFrames"/> frames each (default 256, about 4 s of audio and video).</summary>
    public MediaBroadcast(int viewerQueueFrames = 256, int maxViewers = 1000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(viewerQueueFrames, 8);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxViewers, 1);
        ViewerQueueFrames = viewerQueueFrames;
        MaxViewers = maxViewers;
    }

    /// <summary>Frames a viewer may have queued before it loses frames.</summary>
    public int ViewerQueueFrames { get; }

    /// <summary>Most viewers at once; <see cref="Subscribe"/> refuses more.</summary>
    public int MaxViewers { get; }

    /// <summary>
    /// Raised (on the thread that caused it, never under a lock) when a viewer needs a key frame: it joined, fell
    /// behind, or asked for one. The publisher's handler asks its client (<see cref="StreamContext.RequestKeyFrameAsync"/>).
    /// </summary>
    public event Action? KeyFrameNeeded;

    /// <summary>Viewers subscribed now.</summary>
    public int Viewers { get { lock (_gate) return _viewers.Count; } }

    /// <summary>Frames published so far.</summary>
    public long FramesPublished => Interlocked.Read(ref _published);

    /// <summary>Frames a viewer lost (its queue was full, or video waiting for a key frame).</summary>
    public long FramesDropped => Interlocked.Read(ref _dropped);

    /// <summary>Key frame requests passed on to the publisher.</summary>
    public long KeyFrameRequests => Interlocked.Read(ref _keyFrameRequests);

    /// <summary>Hands <paramref name="frame"/> to every viewer; never blocks.</summary>
    public void Publish(MediaFrame frame)
    {
        ArgumentNullException.ThrowIfNull(frame);
        Interlocked.Increment(ref _published);
        MediaSubscription[] viewers;
        lock (_gate) viewers = _viewers.ToArray();
        var needKey = false;
        foreach (var v in viewers) needKey |= v.Offer(frame);
        if (needKey) RequestKeyFrame();
    }

    /// <summary>A new viewer; its video starts at the next key frame (requested now). Dispose it to leave.</summary>
    /// <exception cref="InvalidOperationException">There are <see cref="MaxViewers"/> viewers already.</exception>
    public MediaSubscription Subscribe()
    {
        var subscription = new MediaSubscription(this);
        lock (_gate)
        {
            if (_viewers.Count >= MaxViewers) throw new InvalidOperationException($"The broadcast has its {MaxViewers} viewers already.");
            _viewers.Add(subscription);
        }
        RequestKeyFrame();
        return subscription;
    }

    /// <summary>Asks the publisher for a key frame (<see cref="KeyFrameNeeded"/>).</summary>
    public void RequestKeyFrame()
    {
        Interlocked.Increment(ref _keyFrameRequests);
        KeyFrameNeeded?.Invoke();
    }

    internal void Leave(MediaSubscription subscription)
    {
        lock (_gate) _viewers.Remove(subscription);
    }

    internal void CountDropped() => Interlocked.Increment(ref _dropped);
}

/// <summary>One viewer of a <see cref="MediaBroadcast"/>.</summary>
public sealed class MediaSubscription : IDisposable
{
    private readonly MediaBroadcast _broadcast;
    private readonly Channel<MediaFrame> _frames;
    private volatile bool _videoWaitsForKey = true;

    internal MediaSubscription(MediaBroadcast broadcast)
    {
        _broadcast = broadcast;
        _frames = Channel.CreateBounded<MediaFrame>(new BoundedChannelOptions(broadcast.ViewerQueueFrames) { SingleReader = true, SingleWriter = false });
    }

    /// <summary>True when video frames are held back until the next key frame.</summary>
    public bool WaitingForKeyFrame => _videoWaitsForKey;

    // True when the viewer now needs a key frame (it just lost video).
    internal bool Offer(MediaFrame frame)
    {
        var video = IsVideo(frame);
        if (video && _videoWaitsForKey)
        {
            if (!frame.KeyFrame) { _broadcast.CountDropped(); return false; }
            _videoWaitsForKey = false;
        }
        if (_frames.Writer.TryWrite(frame)) return false;
        _broadcast.CountDropped();
        if (!video) return false;
        // A lost video frame breaks the decoding chain until the next key frame.
        var first = !_videoWaitsForKey;
        _videoWaitsForKey = true;
        return first;
    }

    private static bool IsVideo(MediaFrame frame) => frame.Track.Equals("video", StringComparison.OrdinalIgnoreCase);

    /// <summary>The frames, in publication order, until disposed or <paramref name="cancellationToken"/>.</summary>
    public async IAsyncEnumerable<MediaFrame> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (true)
        {
            try
            {
                if (!await _frames.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false)) yield break;
            }
            catch (OperationCanceledException) { yield break; }
            while (_frames.Reader.TryRead(out var frame)) yield return frame;
        }
    }

    /// <summary>Leaves the broadcast.</summary>
    public void Dispose()
    {
        _broadcast.Leave(this);
        _frames.Writer.TryComplete();
    }
}

/// <summary>
/// The handler of a WHEP viewer's session: sends what a <see cref="MediaBroadcast"/> publishes on the session's own
/// tracks (frames of a kind the viewer did not ask for are left out), passes the viewer's key frame requests on,
/// and ends when the viewer leaves.
/// </summary>
public sealed class BroadcastViewerHandler(MediaBroadcast broadcast) : IStreamHandler
{
    public async IAsyncEnumerable<StreamOutput> RunAsync(StreamContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        using var subscription = broadcast.Subscribe();
        var tracks = context.OutgoingTracks;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // The viewer's inputs: its key frame requests go to the publisher; the end of its inputs ends the session.
        var inputs = Task.Run(async () =>
        {
            try
            {
                await foreach (var input in context.Inputs.WithCancellation(stop.Token).ConfigureAwait(false))
                    if (input is KeyFrameRequest) broadcast.RequestKeyFrame();
            }
            finally
            {
                await stop.CancelAsync().ConfigureAwait(false);
            }
        }, CancellationToken.None);
        await foreach (var frame in subscription.ReadAllAsync(stop.Token).ConfigureAwait(false))
        {
            if (tracks.Contains(frame.Track)) yield return new MediaOutput(frame);
        }
        await stop.CancelAsync().ConfigureAwait(false);
        try { await inputs.ConfigureAwait(false); }
        catch (OperationCanceledException) { }
    }
}
