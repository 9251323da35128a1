using Transport.Streaming.Sessions;

namespace Transport.Streaming.Tests.Sessions;

/// <summary>The fan-out of WHEP playback: key frames first, bounded queues, losses counted and mended by a key frame.</summary>
public sealed class MediaBroadcastTests
{
    private static MediaFrame Video(int n, bool key = false) => new("video", "VP8", new byte[] { (byte)n }, TimeSpan.FromMilliseconds(33), key);
    private static MediaFrame Audio(int n) => new("audio", "opus", new byte[] { (byte)n }, TimeSpan.FromMilliseconds(20));

    private static List<MediaFrame> Drain(MediaSubscription s)
    {
        s.Dispose(); // completes the queue: what is in it is still read
        return s.ReadAllAsync().ToBlockingEnumerable().ToList();
    }

    [Fact]
    public void AViewerGetsAudioAtOnceAndVideoFromTheNextKeyFrameWhichItsArrivalRequested()
    {
        var broadcast = new MediaBroadcast();
        var requests = 0;
        broadcast.KeyFrameNeeded += () => requests++;
        var viewer = broadcast.Subscribe();
        Assert.Equal(1, requests);
        Assert.Equal(1, broadcast.Viewers);
        broadcast.Publish(Video(1));
        broadcast.Publish(Audio(2));
        broadcast.Publish(Video(3, key: true));
        broadcast.Publish(Video(4));
        var got = Drain(viewer);
        Assert.Equal([2, 3, 4], got.Select(f => (int)f.Payload.Span[0]));
        Assert.Equal(1, broadcast.FramesDropped);
        Assert.Equal(0, broadcast.Viewers);
    }

    [Fact]
    public void ASlowViewerLosesFramesCountedThenResumesVideoAtAKeyFrameRequestedOnce()
    {
        var broadcast = new MediaBroadcast(viewerQueueFrames: 8);
        var requests = 0;
        broadcast.KeyFrameNeeded += () => requests++;
        var slow = broadcast.Subscribe();
        var other = broadcast.Subscribe();
        broadcast.Publish(Video(0, key: true));
        for (var i = 1; i < 20; i++) broadcast.Publish(Video(i));   // nobody reads: both queues fill at 8
        Assert.Equal(2 + 1, requests);                              // two joins, then one request for the publish where video was lost
        Assert.True(slow.WaitingForKeyFrame);
        broadcast.Publish(Video(20, key: true));                    // still no room: the key frame is lost too, asked for again
        Assert.Equal(4, requests);
        _ = Drain(other);
        var got = Drain(slow);
        // The first 8 (key frame 0 and 1..7), nothing of the broken chain, then the next key frame... which found the
        // queue still full (nobody read), so it was lost too: what was read is exactly the first 8.
        Assert.Equal(Enumerable.Range(0, 8), got.Select(f => (int)f.Payload.Span[0]));
        Assert.True(broadcast.FramesDropped >= 2 * 12);
        Assert.Equal(21, broadcast.FramesPublished);
    }

    [Fact]
    public async Task AViewerThatReadsResumesAtTheKeyFrameAfterALoss()
    {
        var broadcast = new MediaBroadcast(viewerQueueFrames: 8);
        var viewer = broadcast.Subscribe();
        broadcast.Publish(Video(0, key: true));
        for (var i = 1; i < 12; i++) broadcast.Publish(Video(i));   // 8..11 lost
        var read = new List<int>();
        await using (var e = viewer.ReadAllAsync().GetAsyncEnumerator())
        {
            for (var i = 0; i < 8; i++) { Assert.True(await e.MoveNextAsync()); read.Add(e.Current.Payload.Span[0]); }
            broadcast.Publish(Video(12));             // a delta: still waiting for a key frame
            broadcast.Publish(Audio(13));             // audio goes on
            broadcast.Publish(Video(14, key: true));
            broadcast.Publish(Video(15));
            for (var i = 0; i < 3; i++) { Assert.True(await e.MoveNextAsync()); read.Add(e.Current.Payload.Span[0]); }
        }
        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7, 13, 14, 15], read);
        viewer.Dispose();
    }

    [Fact]
    public void ViewersAreBounded()
    {
        var broadcast = new MediaBroadcast(maxViewers: 2);
        using var a = broadcast.Subscribe();
        using var b = broadcast.Subscribe();
        Assert.Throws<InvalidOperationException>(() => broadcast.Subscribe());
        b.Dispose();
        using var c = broadcast.Subscribe();
        Assert.Equal(2, broadcast.Viewers);
    }
}
