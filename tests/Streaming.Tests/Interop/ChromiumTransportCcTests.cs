using System.Diagnostics;
using System.Net;
using System.Runtime.Versioning;
using System.Text.Json;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Io;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// Transport-wide congestion control against Chromium's own estimator: the browser sends its fake camera to us, we
/// answer with transport-cc and send the feedback, and the browser's candidate pair must show an available outgoing
/// bitrate well above the start value it keeps without feedback. The same call without transport-cc (our option off)
/// is the control. Chromium only raises its estimate when it can parse our messages and finds them consistent with
/// what it sent, so this checks the byte layout, the sequence numbers and the arrival times at once.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class ChromiumTransportCcTests(ITestOutputHelper output)
{
    private const string OfferScript = """
        async () => {
          // Noise the encoder cannot compress: it then wants all the estimate allows (a fake camera's calm picture
          // stays below the target, and an application-limited sender does not raise its estimate).
          const canvas = document.createElement('canvas');
          canvas.width = 640; canvas.height = 480;
          const ctx = canvas.getContext('2d');
          const noise = [0, 1, 2].map(() => {
            const img = ctx.createImageData(960, 720);
            const words = new Uint32Array(img.data.buffer);
            for (let i = 0; i < words.length; i++) words[i] = (Math.random() * 0x1000000) | 0xff000000;
            return img;
          });
          let frame = 0;
          setInterval(() => { ctx.putImageData(noise[frame++ % 3], -((frame * 37) % 320), -((frame * 53) % 240)); }, 33);
          const stream = canvas.captureStream(30);
          const pc = new RTCPeerConnection({ iceServers: [] });
          window.pc = pc;
          for (const t of stream.getTracks()) pc.addTransceiver(t, { direction: 'sendonly', streams: [stream] });
          await pc.setLocalDescription(await pc.createOffer());
          await new Promise(r => { if (pc.iceGatheringState === 'complete') r();
            else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
          return pc.localDescription.sdp;
        }
        """;

    private const string StatsScript = """
        async () => {
          const report = await window.pc.getStats();
          let pair = null, out = null;
          report.forEach(s => {
            if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
            if (s.type === 'outbound-rtp' && s.kind === 'video') out = s;
          });
          return JSON.stringify({
            available: pair && pair.availableOutgoingBitrate ? pair.availableOutgoingBitrate : 0,
            target: out && out.targetBitrate ? out.targetBitrate : 0,
            bytesSent: out ? out.bytesSent : 0,
          });
        }
        """;

    private sealed record Stats(double Available, double Target, long BytesSent);

    private sealed record Outcome(double Available, double Target, double SentKbps, long Recorded, long Feedback, long Duplicates, long TooLate);

    private async Task<Outcome> RunAsync(bool transportCc, TimeSpan duration)
    {
        using var ns = NetworkNamespace.Create();
        await using var driver = new UdpDriver();
        var local = ns.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
        using var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var core = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = certificate,
            Ice = new IceAgentOptions { Role = IceRole.Controlled },
            Media = new MediaOptions { TransportCc = transportCc },
        });
        core.AddHostCandidate(local);
        await using var handle = driver.Register(core);

        await using var chromium = await HeadlessChromium.LaunchAsync(ns, fakeMedia: true);
        var page = await chromium.NewSecurePageAsync();   // getUserMedia needs a secure context
        var offer = SessionDescription.Parse(await page.EvaluateAsync<string>(OfferScript));
        var answer = await handle.InvokeAsync(now => core.CreateAnswer(offer, now).ToString());
        Assert.Equal(transportCc, answer.Contains(RemoteDescription.TransportCcExtensionUri, StringComparison.Ordinal));
        await page.EvaluateAsync("sdp => window.pc.setRemoteDescription({ type: 'answer', sdp })", answer);

        var clock = Stopwatch.StartNew();
        Stats? first = null, last = null;
        var firstAt = TimeSpan.Zero;
        while (clock.Elapsed < duration)
        {
            await Task.Delay(500);
            // Nobody reads the incoming track here: empty its readers so they stay small.
            await handle.InvokeAsync(_ =>
            {
                foreach (var t in core.RemoteTracks)
                {
                    while (t.Packets.TryRead(out var p)) p.Dispose();
                    while (t.Frames.TryRead(out var f)) f.Dispose();
                }
            });
            var s = JsonSerializer.Deserialize<Stats>(await page.EvaluateAsync<string>(StatsScript),
                new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
            if (first is null && s.BytesSent > 0 && clock.Elapsed > duration / 2) { first = s; firstAt = clock.Elapsed; }
            last = s;
            output.WriteLine($"{clock.Elapsed.TotalSeconds,5:0.0} s: available {s.Available / 1000,7:0} kbit/s, target {s.Target / 1000,7:0} " +
                $"kbit/s, sent {s.BytesSent} bytes");
        }
        Assert.Equal(ConnectionState.Connected, await handle.InvokeAsync(_ => core.State));
        var sentKbps = first is null ? 0 : (last!.BytesSent - first.BytesSent) * 8 / 1000.0 / (clock.Elapsed - firstAt).TotalSeconds;
        var (recorded, feedback, duplicates, tooLate) = await handle.InvokeAsync(_ => core.TransportCc is { } cc
            ? (cc.PacketsRecorded, cc.FeedbackSent, cc.Duplicates, cc.TooLate)
            : (0L, 0L, 0L, 0L));
        await page.EvaluateAsync("() => window.pc.close()");
        return new Outcome(last!.Available, last.Target, sentKbps, recorded, feedback, duplicates, tooLate);
    }

    [Fact]
    public async Task ChromiumRaisesItsEstimateOnOurFeedbackAndStaysAtItsStartRateWithout()
    {
        var with = await RunAsync(transportCc: true, TimeSpan.FromSeconds(8));
        output.WriteLine($"with transport-cc: {with}");
        var without = await RunAsync(transportCc: false, TimeSpan.FromSeconds(8));
        output.WriteLine($"without: {without}");

        Assert.True(with.Recorded > 200, $"{with.Recorded} numbered packets recorded");
        Assert.True(with.Feedback >= 40, $"{with.Feedback} feedback messages in 8 s at one per 100 ms");
        Assert.Equal(0, with.Duplicates);
        Assert.Equal(0, without.Recorded + without.Feedback);
        // Chromium starts at 300 kbit/s; without feedback it has nothing to raise the estimate on. With our feedback its
        // probes and its delay-based estimator find the loopback's room.
        Assert.True(with.Available >= 2 * Math.Max(without.Available, 300_000),
            $"available outgoing bitrate {with.Available / 1000:0} kbit/s with our feedback, {without.Available / 1000:0} kbit/s without");
        Assert.True(with.Target > without.Target, $"encoder target {with.Target / 1000:0} kbit/s with our feedback, {without.Target / 1000:0} kbit/s without");
    }
}
