using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using Transport.Samples.EchoServer;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Hosting;

/// <summary>
/// WHEP (draft-ietf-wish-whep) against the echo server with our own clients: a WHIP publisher's frames reach a WHEP
/// viewer, whose resource has WHIP's lifecycle (ICE restart by PATCH with entity tags, DELETE, the token).
/// </summary>
public sealed class WhepLifecycleTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition() && clock.Elapsed < Patience) await Task.Delay(20);
        Assert.True(condition(), what);
    }

    // A publisher's media: an Opus-sized audio frame every 20 ms and a VP8 frame every 33 ms (a key frame every 30).
    private static async Task PublishAsync(WebRtcStreamClient publisher, CancellationToken stop)
    {
        var audio = new byte[160];
        var video = new byte[1200];
        long audioSent = 0, videoSent = 0;
        var clock = Stopwatch.StartNew();
        TimeSpan nextAudio = TimeSpan.Zero, nextVideo = TimeSpan.Zero;
        while (!stop.IsCancellationRequested && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (clock.Elapsed >= nextAudio)
            {
                await publisher.SendFrameAsync(publisher.Audio!, audio, (uint)(audioSent++ * 960));
                nextAudio += TimeSpan.FromMilliseconds(20);
            }
            if (clock.Elapsed >= nextVideo)
            {
                video[0] = (byte)(videoSent % 30 == 0 ? 0x10 : 0x11); // VP8: bit 0 clear on a key frame
                await publisher.SendFrameAsync(publisher.Video!, video, (uint)(videoSent++ * 3000));
                nextVideo += TimeSpan.FromMilliseconds(33);
            }
            try { await Task.Delay(5, stop); } catch (OperationCanceledException) { }
        }
    }

    [Fact]
    public async Task AViewerGetsThePublishersFramesRestartsIceByPatchAndLeavesByDelete()
    {
        await using var host = await EchoTestHost.StartAsync();
        var broadcast = host.Instance.Broadcast!;
        using var http = new HttpClient();
        var whep = new Uri(host.Http, "/whep");
        await using var publisher = await WebRtcStreamClient.ConnectAsync(WebRtcStreamClient.WhipAsync(http, host.Whip), withMedia: true).WaitAsync(Patience);
        using var stop = new CancellationTokenSource();
        var publishing = Task.Run(() => PublishAsync(publisher, stop.Token));
        try
        {
            await WaitForAsync(() => broadcast.FramesPublished >= 5, $"the publisher's frames did not reach the broadcast ({broadcast.FramesPublished})");

            await using var viewer = await WebRtcStreamClient.ConnectAsync(WebRtcStreamClient.WhipAsync(http, whep), withMedia: true).WaitAsync(Patience);
            Assert.StartsWith("/whep/", viewer.Resource!.AbsolutePath, StringComparison.Ordinal);
            var id = viewer.Resource.Segments[^1];
            // The viewer's handler subscribes once its session runs (the transport connected), which may come a moment
            // after the client saw its channels open.
            await WaitForAsync(() => broadcast.Viewers == 1, $"viewers: {broadcast.Viewers}");
            // Video from a key frame on (the viewer's arrival asked the publisher for one), audio at once.
            await WaitForAsync(() => viewer.VideoFramesReceived >= 10 && viewer.AudioFramesReceived >= 10,
                $"the viewer got {viewer.VideoFramesReceived} video and {viewer.AudioFramesReceived} audio frames");
            Assert.True(broadcast.KeyFrameRequests >= 1);

            // ICE restart over the WHEP resource: 200 with a new entity tag, the new pair selected, frames go on.
            var firstTag = viewer.WhipEntityTag;
            Assert.Matches($"^\"{id}\\.[A-Za-z0-9+/]{{4,}}\"$", firstTag);
            var selected = await viewer.RestartIceOverWhipAsync(http).WaitAsync(Patience);
            var done = await selected.WaitAsync(Patience);
            Assert.Equal($"\"{id}.{done.RemoteUsernameFragment}\"", viewer.WhipEntityTag);
            var videoBefore = viewer.VideoFramesReceived;
            await WaitForAsync(() => viewer.VideoFramesReceived >= videoBefore + 10, $"video stopped after the ICE restart at {viewer.VideoFramesReceived}");
            // A trickle PATCH with the old ICE session's tag -> 412.
            using (var patch = new HttpRequestMessage(HttpMethod.Patch, viewer.Resource) { Content = new StringContent("a=end-of-candidates\r\n") })
            {
                patch.Content.Headers.ContentType = new MediaTypeHeaderValue("application/trickle-ice-sdpfrag");
                patch.Headers.TryAddWithoutValidation("If-Match", firstTag);
                Assert.Equal(HttpStatusCode.PreconditionFailed, (await http.SendAsync(patch)).StatusCode);
            }

            // DELETE without the secret -> 404 and nothing ends; with it -> 200, the viewer leaves the broadcast.
            Assert.Equal(HttpStatusCode.NotFound, (await http.DeleteAsync(new Uri(host.Http, viewer.Resource.AbsolutePath))).StatusCode);
            Assert.Equal(1, broadcast.Viewers);
            Assert.Equal(HttpStatusCode.OK, (await http.DeleteAsync(viewer.Resource)).StatusCode);
            await WaitForAsync(() => broadcast.Viewers == 0, "the viewer is still in the broadcast after DELETE");
            Assert.Null(host.Server.Find(id));
            Assert.Equal(HttpStatusCode.NotFound, (await http.DeleteAsync(viewer.Resource)).StatusCode);
            // The publisher goes on.
            var published = broadcast.FramesPublished;
            await WaitForAsync(() => broadcast.FramesPublished > published + 5, "the publisher stopped with its viewer");
            output.WriteLine($"published {broadcast.FramesPublished}, dropped {broadcast.FramesDropped}, key frame requests {broadcast.KeyFrameRequests}");
        }
        finally
        {
            stop.Cancel();
            await publishing.WaitAsync(Patience);
        }
    }

    [Fact]
    public async Task WithATokenWhepRefusesAnOfferWithoutItNamingItsRealm()
    {
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { Whip = new() { BearerToken = "s3cret-token" } } });
        using var http = new HttpClient();
        using var post = new HttpRequestMessage(HttpMethod.Post, new Uri(host.Http, "/whep")) { Content = new StringContent("v=0\r\n") };
        post.Content.Headers.ContentType = new MediaTypeHeaderValue("application/sdp");
        var response = await http.SendAsync(post);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("realm=\"whep\"", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        Assert.Equal(0, host.Server.Reserved);
    }
}
