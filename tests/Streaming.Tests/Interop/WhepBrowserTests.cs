using System.Diagnostics;
using System.Runtime.Versioning;
using System.Text.Json;
using Transport.Samples.EchoServer;
using Transport.Streaming.Sessions;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// WHEP playback (draft-ietf-wish-whep) with Chromium as the viewer: the main program (the echo server, in this
/// process inside a namespace with only loopback) gets a WHIP publisher (a Chromium page sending its fake camera and
/// microphone) and serves what it sends at <c>/whep</c>; a second page POSTs a recvonly offer there and must decode
/// video frames (getStats framesDecoded, frame size) and receive audio. The viewer's DELETE ends its session and it
/// leaves the broadcast.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class WhepBrowserTests(ITestOutputHelper output)
{
    private const string PublishScript = """
        async () => {
          const pc = new RTCPeerConnection({ iceServers: [] });
          window.pc = pc;
          const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240 } });
          for (const t of stream.getTracks()) pc.addTrack(t, stream);
          await pc.setLocalDescription(await pc.createOffer());
          await new Promise(ok => { if (pc.iceGatheringState === 'complete') ok();
            else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok(); });
          const r = await fetch('/whip', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
          if (r.status !== 201) return 'WHIP POST answered ' + r.status + ': ' + await r.text();
          await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
          return 'ok ' + r.headers.get('Location');
        }
        """;

    // The viewer: recvonly audio and video, POST /whep, then up to 30 s until 30 video frames are decoded.
    private const string ViewScript = """
        async () => {
          const pc = new RTCPeerConnection({ iceServers: [] });
          window.viewer = pc;
          pc.addTransceiver('video', { direction: 'recvonly' });
          pc.addTransceiver('audio', { direction: 'recvonly' });
          pc.ontrack = e => {
            const el = document.createElement(e.track.kind);
            el.srcObject = new MediaStream([e.track]);
            el.muted = true; el.autoplay = true;
            document.body.appendChild(el);
            el.play().catch(() => {});
          };
          await pc.setLocalDescription(await pc.createOffer());
          await new Promise(ok => { if (pc.iceGatheringState === 'complete') ok();
            else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok(); });
          const r = await fetch('/whep', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
          if (r.status !== 201) return { error: 'WHEP POST answered ' + r.status + ': ' + await r.text() };
          const location = r.headers.get('Location');
          const answer = await r.text();
          await pc.setRemoteDescription({ type: 'answer', sdp: answer });
          const inbound = async () => { const out = {};
            (await pc.getStats()).forEach(s => {
            if (s.type === 'inbound-rtp') out[s.kind] = {
            packets: s.packetsReceived || 0, decoded: s.framesDecoded || 0, width: s.frameWidth || 0, height: s.frameHeight || 0,
            keyFrames: s.keyFramesDecoded || 0 }; }); return out; };
          let stats = await inbound();
          const started = performance.now();
          while (performance.now() - started < 30000 && !(stats.video && stats.video.decoded >= 30 && stats.audio && stats.audio.packets > 0)) {
            await new Promise(ok => setTimeout(ok, 250));
            stats = await inbound();
          }
          return { location, answer, stats, waitedMs: Math.round(performance.now() - started), state: pc.connectionState };
        }
        """;

    [Fact]
    public async Task ChromiumViewerDecodesWhatAWhipPublisherSendsThroughOurServer()
    {
        using var ns = NetworkNamespace.Create("rtc-whep");
        var settings = new EchoServerSettings { Urls = "http://127.0.0.1:0", Sessions = new() { UdpPort = 0 } };
        var instance = EchoServerInNamespace.Build(ns, settings);
        var broadcast = instance.Broadcast!;
        HeadlessChromium? chromium = null;
        try
        {
            await instance.App.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
            var url = instance.App.Urls.First() + "/";
            chromium = await HeadlessChromium.LaunchAsync(ns, fakeMedia: true);
            var publisher = await chromium.Browser.NewPageAsync();
            await publisher.GotoAsync(url);
            var published = await publisher.EvaluateAsync<string>(PublishScript);
            Assert.StartsWith("ok /whip/", published, StringComparison.Ordinal);
            var publisherId = published[3..].Split('?')[0].Split('/')[^1];
            // The publisher's media reaches the broadcast (the echo session became its publisher).
            var clock = Stopwatch.StartNew();
            while (broadcast.FramesPublished < 10 && clock.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(100);
            Assert.True(broadcast.FramesPublished >= 10, $"the publisher's frames did not reach the broadcast ({broadcast.FramesPublished})");

            var viewer = await chromium.Browser.NewPageAsync();
            await viewer.GotoAsync(url);
            var result = await viewer.EvaluateAsync<JsonElement>(ViewScript);
            output.WriteLine("whep: " + JsonSerializer.Serialize(new
            {
                stats = result.TryGetProperty("stats", out var st) ? st : default,
                waited = result.TryGetProperty("waitedMs", out var w) ? w : default,
                state = result.TryGetProperty("state", out var s) ? s : default
            }));
            Assert.False(result.TryGetProperty("error", out var error), error.ToString());
            var answer = result.GetProperty("answer").GetString()!;
            // Our answer sends and does not receive: the viewer's sections are recvonly.
            Assert.Contains("a=sendonly", answer, StringComparison.Ordinal);
            Assert.DoesNotContain("a=sendrecv", answer, StringComparison.Ordinal);
            var video = result.GetProperty("stats").GetProperty("video");
            Assert.True(video.GetProperty("decoded").GetInt32() >= 30, "video frames decoded: " + video);
            Assert.Equal(320, video.GetProperty("width").GetInt32());
            Assert.True(video.GetProperty("keyFrames").GetInt32() >= 1, "no key frame decoded: " + video);
            Assert.True(result.GetProperty("stats").GetProperty("audio").GetProperty("packets").GetInt32() > 0);
            Assert.Equal(1, broadcast.Viewers);
            Assert.True(broadcast.KeyFrameRequests >= 1);

            // DELETE on the resource ends the viewer's session; it leaves the broadcast; the publisher carries on.
            var location = result.GetProperty("location").GetString()!;
            var status = await viewer.EvaluateAsync<int>("async l => (await fetch(l, { method: 'DELETE' })).status", location);
            Assert.Equal(200, status);
            clock.Restart();
            while (broadcast.Viewers > 0 && clock.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(50);
            Assert.Equal(0, broadcast.Viewers);
            // The resource's id is the session's (the Location is /whep/{id}?secret=...): that session is gone, the
            // publisher's is not (the echo page opens a data-channel session of its own on each page, also kept).
            var viewerId = location.Split('?')[0].Split('/')[^1];
            clock.Restart();
            while (instance.Server.Sessions.Any(x => x.Id == viewerId) && clock.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(50);
            Assert.DoesNotContain(instance.Server.Sessions, x => x.Id == viewerId);
            Assert.Contains(instance.Server.Sessions, x => x.Id == publisherId);
        }
        finally
        {
            if (chromium is not null) await chromium.DisposeAsync();
            await EchoServerInNamespace.StopAsync(instance, output);
        }
    }
    // Two pictures of the viewer's video, 600 ms apart, drawn on a canvas: how much they differ, and how many colours a
    // row across the middle has (the bars).
    private const string LookScript = """
        async () => {
          const v = document.querySelector('video');
          const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
          const g = c.getContext('2d');
          const row = Math.floor(c.height / 4);
          const grab = () => { g.drawImage(v, 0, 0); return Array.from(g.getImageData(0, row, c.width, 1).data); };
          const a = grab();
          await new Promise(ok => setTimeout(ok, 600));
          const b = grab();
          let diff = 0; for (let i = 0; i < a.length; i++) diff += Math.abs(a[i] - b[i]);
          const colours = new Set(); for (let i = 0; i < a.length; i += 4 * 8) colours.add([a[i] >> 5, a[i + 1] >> 5, a[i + 2] >> 5].join(','));
          return { diff, colours: colours.size, width: v.videoWidth, height: v.videoHeight };
        }
        """;

    [Fact]
    public async Task WithoutAPublisherChromiumViewerDecodesTheMovingTestPattern()
    {
        using var ns = NetworkNamespace.Create("rtc-whep");
        var settings = new EchoServerSettings { Urls = "http://127.0.0.1:0", Sessions = new() { UdpPort = 0 } };
        var instance = EchoServerInNamespace.Build(ns, settings);
        var pattern = instance.TestPattern!;
        HeadlessChromium? chromium = null;
        try
        {
            await instance.App.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(0, pattern.VideoFramesPublished);   // nobody watches yet
            chromium = await HeadlessChromium.LaunchAsync(ns);
            var viewer = await chromium.Browser.NewPageAsync();
            // A blank page of the server's origin (the echo page would start a session of its own).
            await viewer.RouteAsync("**/blank", r => r.FulfillAsync(new() { Status = 200, ContentType = "text/html", Body = "<!doctype html><body></body>" }));
            await viewer.GotoAsync(instance.App.Urls.First() + "/blank");
            var result = await viewer.EvaluateAsync<JsonElement>(ViewScript);
            output.WriteLine("whep pattern: " + JsonSerializer.Serialize(new
            {
                stats = result.TryGetProperty("stats", out var st) ? st : default,
                waited = result.TryGetProperty("waitedMs", out var w) ? w : default
            }));
            Assert.False(result.TryGetProperty("error", out var error), error.ToString());
            var video = result.GetProperty("stats").GetProperty("video");
            Assert.True(video.GetProperty("decoded").GetInt32() >= 30, "video frames decoded: " + video);
            Assert.Equal((pattern.Width, pattern.Height), (video.GetProperty("width").GetInt32(), video.GetProperty("height").GetInt32()));
            Assert.True(result.GetProperty("stats").GetProperty("audio").GetProperty("packets").GetInt32() > 0, "no audio packets");
            Assert.True(pattern.VideoFramesPublished >= 30);
            var look = await viewer.EvaluateAsync<JsonElement>(LookScript);
            output.WriteLine("picture: " + look);
            Assert.True(look.GetProperty("colours").GetInt32() >= 4, "the bars are not there: " + look);
            Assert.True(look.GetProperty("diff").GetInt64() > 0, "the picture does not move: " + look);
            var status = await viewer.EvaluateAsync<int>("async l => (await fetch(l, { method: 'DELETE' })).status",
                result.GetProperty("location").GetString());
            Assert.Equal(200, status);
            var clock = Stopwatch.StartNew();
            while (instance.Broadcast!.Viewers > 0 && clock.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(50);
            Assert.Equal(0, instance.Broadcast.Viewers);
        }
        finally
        {
            if (chromium is not null) await chromium.DisposeAsync();
            await EchoServerInNamespace.StopAsync(instance, output);
        }
    }
    // The server-offer variant: POST without a body, our offer in the 201, the browser's answer by PATCH; then up to
    // 30 s until 30 video frames are decoded.
    private const string ServerOfferScript = """
        async () => {
          const r = await fetch('/whep', { method: 'POST' });
          if (r.status !== 201) return { error: 'WHEP POST answered ' + r.status + ': ' + await r.text() };
          const location = r.headers.get('Location'), etag = r.headers.get('ETag'), offer = await r.text();
          const pc = new RTCPeerConnection({ iceServers: [] });
          window.viewer = pc;
          pc.ontrack = e => {
            const el = document.createElement(e.track.kind);
            el.srcObject = new MediaStream([e.track]);
            el.muted = true; el.autoplay = true;
            document.body.appendChild(el);
            el.play().catch(() => {});
          };
          await pc.setRemoteDescription({ type: 'offer', sdp: offer });
          await pc.setLocalDescription(await pc.createAnswer());
          await new Promise(ok => { if (pc.iceGatheringState === 'complete') ok();
            else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok(); });
          const p = await fetch(location, { method: 'PATCH', headers: { 'Content-Type': 'application/sdp', 'If-Match': etag }, body: pc.localDescription.sdp });
          const again = await fetch(location, { method: 'PATCH', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
          const inbound = async () => { const out = {};
            (await pc.getStats()).forEach(s => {
            if (s.type === 'inbound-rtp') out[s.kind] = {
            packets: s.packetsReceived || 0, decoded: s.framesDecoded || 0, width: s.frameWidth || 0, height: s.frameHeight || 0 }; }); return out; };
          let stats = await inbound();
          const started = performance.now();
          while (performance.now() - started < 30000 && !(stats.video && stats.video.decoded >= 30)) {
            await new Promise(ok => setTimeout(ok, 250));
            stats = await inbound();
          }
          return { location, offer, answer: pc.localDescription.sdp, patch: p.status, again: again.status, stats, state: pc.connectionState };
        }
        """;

    [Fact]
    public async Task ChromiumViewerAnswersTheServersOfferAndDecodesTheTestPattern()
    {
        using var ns = NetworkNamespace.Create("rtc-whep");
        var settings = new EchoServerSettings { Urls = "http://127.0.0.1:0", Sessions = new() { UdpPort = 0 } };
        var instance = EchoServerInNamespace.Build(ns, settings);
        HeadlessChromium? chromium = null;
        try
        {
            await instance.App.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
            chromium = await HeadlessChromium.LaunchAsync(ns);
            var viewer = await chromium.Browser.NewPageAsync();
            await viewer.RouteAsync("**/blank", r => r.FulfillAsync(new() { Status = 200, ContentType = "text/html", Body = "<!doctype html><body></body>" }));
            await viewer.GotoAsync(instance.App.Urls.First() + "/blank");
            var result = await viewer.EvaluateAsync<JsonElement>(ServerOfferScript);
            output.WriteLine("server offer: " + JsonSerializer.Serialize(new
            {
                stats = result.TryGetProperty("stats", out var st) ? st : default,
                patch = result.TryGetProperty("patch", out var p) ? p : default,
                state = result.TryGetProperty("state", out var s) ? s : default
            }));
            Assert.False(result.TryGetProperty("error", out var error), error.ToString());
            var offer = result.GetProperty("offer").GetString()!;
            Assert.Contains("m=video", offer, StringComparison.Ordinal);
            Assert.Contains("a=setup:actpass", offer, StringComparison.Ordinal);
            Assert.Contains("a=candidate:", offer, StringComparison.Ordinal);
            Assert.Contains("a=recvonly", result.GetProperty("answer").GetString()!, StringComparison.Ordinal);
            Assert.Equal(204, result.GetProperty("patch").GetInt32());
            Assert.Equal(409, result.GetProperty("again").GetInt32());   // one answer per offer
            var video = result.GetProperty("stats").GetProperty("video");
            Assert.True(video.GetProperty("decoded").GetInt32() >= 30, "video frames decoded: " + video);
            Assert.Equal(320, video.GetProperty("width").GetInt32());
            Assert.Equal(1, instance.Broadcast!.Viewers);
            var status = await viewer.EvaluateAsync<int>("async l => (await fetch(l, { method: 'DELETE' })).status",
                result.GetProperty("location").GetString());
            Assert.Equal(200, status);
            var clock = Stopwatch.StartNew();
            while (instance.Broadcast.Viewers > 0 && clock.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(50);
            Assert.Equal(0, instance.Broadcast.Viewers);
        }
        finally
        {
            if (chromium is not null) await chromium.DisposeAsync();
            await EchoServerInNamespace.StopAsync(instance, output);
        }
    }
}
