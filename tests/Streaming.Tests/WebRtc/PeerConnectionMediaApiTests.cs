using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Io;
using Transport.Streaming.Jsep;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.WebRtc;

using static RealPeerKit;

/// <summary>The async media API of <see cref="PeerConnection"/>: two of ours over real UDP sockets on 127.0.0.1.</summary>
public sealed class PeerConnectionMediaApiTests
{
    [Fact]
    public async Task TracksAddedBeforeTheOfferCarryFramesKeyFrameRequestsAndEndOnClose()
    {
        await using var pair = LoopbackPair.Create();
        var (a, b) = (pair.A, pair.B);

        var video = await a.AddTrackAsync(MediaKind.Video, new LocalTrackOptions { StreamId = "cam", TrackId = "cam-video" });
        var offer = await a.CreateOfferAsync();
        Assert.Contains("a=msid:cam cam-video", offer, StringComparison.Ordinal);
        Assert.Contains($"a=ssrc-group:FID {video.Ssrc} {video.RtxSsrc}", offer, StringComparison.Ordinal);
        var answer = await b.CreateAnswerAsync(offer);
        await a.SetRemoteDescriptionAsync(answer);

        using var cts = new CancellationTokenSource(Patience);
        var remote = await b.RemoteTracks.ReadAsync(cts.Token);
        Assert.Equal(MediaKind.Video, remote.Kind);
        Assert.Equal(("cam", "cam-video"), (remote.StreamId, remote.TrackId));
        await NextAsync<ConnectionStateChanged>(a, s => s.State == ConnectionState.Connected);
        await NextAsync<ConnectionStateChanged>(b, s => s.State == ConnectionState.Connected);

        for (var i = 0; i < 10; i++)
        {
            var frame = new byte[1500 + i];
            frame[0] = (byte)(i == 0 ? 0x10 : 0x11);
            frame[^1] = (byte)i;
            Assert.Equal(MediaSendResult.Sent, await a.SendFrameAsync(video, frame, (uint)(i * 3000)));
            // Spaced as a camera would: a burst read in one recvmmsg batch carries one arrival time for every packet,
            // and a delivery rate needs arrivals spread over time (seen in CI: no rate after 20 s).
            await Task.Delay(20);
        }
        var received = new List<(int Length, byte Last, bool Key)>();
        await foreach (var f in remote.Frames.ReadAllAsync(cts.Token))
        {
            using (f) received.Add((f.Length, f.Data.Span[^1], f.IsKeyFrame));
            if (received.Count == 10) break;
        }
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (1500 + i, (byte)i, i == 0)), received);

        // B's transport-cc feedback on those packets reaches A's health: nothing lost on loopback, a delivery rate.
        var until = System.Diagnostics.Stopwatch.StartNew();
        PeerConnectionHealth h;
        while ((h = await a.GetHealthAsync()).MediaDeliveryRate is null && until.Elapsed < Patience) await Task.Delay(20);
        Assert.Equal(0, h.MediaLossFraction);
        Assert.True(h.MediaDeliveryRate > 0, $"delivery rate {h.MediaDeliveryRate}");
        Assert.InRange(h.SinceMediaFeedback!.Value, TimeSpan.Zero, Patience);
        Assert.Null((await b.GetHealthAsync()).MediaLossFraction);   // B sent no media: no feedback about it

        await b.RequestKeyFrameAsync(remote);
        var request = await NextAsync<KeyFrameRequestReceived>(a);
        Assert.Same(video, request.Track);

        await a.CloseAsync("done");
        Assert.Equal("RTCP BYE: done", await remote.Ended.WaitAsync(Patience)); // the BYE goes out ahead of ABORT and close_notify
        await remote.Frames.Completion.WaitAsync(Patience);
        var error = await Assert.ThrowsAsync<TransportNotConnectedException>(() => a.SendFrameAsync(video, new byte[10], 0));
        Assert.Equal("closed", error.State);
    }
}
