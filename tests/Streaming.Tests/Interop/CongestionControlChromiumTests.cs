using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.Versioning;
using System.Text;
using System.Text.Json;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Io;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sessions;
using Transport.Streaming.WebRtc;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// Send-side congestion control on a real, shaped link with Chromium receiving (issue 21, the "real" test): our peer
/// connection (this process, its UDP socket in one network namespace) and headless Chromium (in another) joined by a
/// veth pair whose end on our side is shaped by a token bucket (<c>tc qdisc tbf</c>: 1.5 Mbit/s with a queue bounded
/// to 200 ms at the rate, then stepped down to 600 kbit/s mid-test). No added propagation delay: this kernel has no
/// netem, and the round trip is the veth's (well under a millisecond) plus the tbf queue's own delay. We send VP8
/// video at 30 frames a second, each frame sized from our current target bitrate (the <see cref="TargetBitrateChanged"/>
/// events: target / 8 / 30 bytes): a key frame of the test pattern (<see cref="TestPatternSource.RenderFrame"/>,
/// 160x120, 1.3-1.6 KB) followed by zeros up to that size, which VP8's last token partition carries and libvpx never
/// reads, so every frame decodes. Chromium's getStats (sampled in the page every 200 ms) shows what it received and
/// decoded. The test prints the estimate and the receive rate over time, and asserts with generous bounds (a loaded
/// 2-core machine): the target settles (its median) between 40 % and 110 % of each shaped rate, the browser receives about what
/// we target, frames keep being decoded (the jitter buffer does not starve), little is lost, and after the step
/// down the target follows.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class CongestionControlChromiumTests(ITestOutputHelper output)
{
    private const string Tc = "/usr/sbin/tc";
    private const int FramesPerSecond = 30, Width = 160, Height = 120;
    private const long HighRate = 1_500_000, LowRate = 600_000;
    private static readonly TimeSpan HighPhase = TimeSpan.FromSeconds(40), LowPhase = TimeSpan.FromSeconds(30);
    // Where each phase is graded: from this long after its start to its end (the estimate has had time to settle).
    private static readonly TimeSpan SettleHigh = TimeSpan.FromSeconds(15), SettleLow = TimeSpan.FromSeconds(10);

    // The viewer: a recvonly video section, its track shown in a <video> (so Chromium renders and counts freezes), and
    // a sampler of the inbound video's getStats every 200 ms into window.samples (read and emptied by the test).
    private const string OfferScript = """
        async () => {
          const pc = new RTCPeerConnection({ iceServers: [] });
          window.pc = pc;
          pc.addTransceiver('video', { direction: 'recvonly' });
          pc.ontrack = e => {
            const v = document.createElement('video');
            v.srcObject = new MediaStream([e.track]);
            v.muted = true; v.autoplay = true;
            document.body.appendChild(v);
            v.play().catch(() => {});
          };
          window.samples = [];
          const sample = async () => {
            let s = null;
            (await pc.getStats()).forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'video') s = r; });
            if (!s) return;
            window.samples.push({
              t: performance.timeOrigin + performance.now(),
              bytes: s.bytesReceived || 0, header: s.headerBytesReceived || 0, packets: s.packetsReceived || 0,
              lost: s.packetsLost || 0, decoded: s.framesDecoded || 0, received: s.framesReceived || 0,
              dropped: s.framesDropped || 0, freezes: s.freezeCount || 0, freezeSeconds: s.totalFreezesDuration || 0,
              jbDelay: s.jitterBufferDelay || 0, jbCount: s.jitterBufferEmittedCount || 0,
              nacks: s.nackCount || 0, plis: s.pliCount || 0, width: s.frameWidth || 0,
            });
          };
          window.sampler = setInterval(() => { sample().catch(() => {}); }, 200);
          await pc.setLocalDescription(await pc.createOffer());
          await new Promise(ok => { if (pc.iceGatheringState === 'complete') ok(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok(); });
          return pc.localDescription.sdp;
        }
        """;

    private sealed record PageSample(double T, long Bytes, long Header, long Packets, long Lost, long Decoded, long Received, long Dropped,
        long Freezes, double FreezeSeconds, double JbDelay, long JbCount, long Nacks, long Plis, int Width);

    private sealed record OurSample(double T, long Target, double? Delivery, double? Loss, long BytesSent, long FramesSent, long Refused);

    // The tbf queue on our side (tc -s qdisc): bytes waiting, and packets dropped so far.
    private sealed record QueueSample(double T, long BacklogBytes, long Dropped);

    private static double WallMs() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    [Fact]
    public async Task OurTargetFollowsATbfShapedLinkAndChromiumReceivesItWithoutStarving()
    {
        if (!File.Exists(Tc)) throw new InvalidOperationException($"{Tc} is missing: install the Debian package 'iproute2'.");
        var subnet = $"10.81.{Random.Shared.Next(1, 250)}";
        string serverAddress = subnet + ".1", browserAddress = subnet + ".2";
        using var serverNs = NetworkNamespace.Create("rtc-ccs");
        using var browserNs = NetworkNamespace.Create("rtc-ccb");
        serverNs.ConnectVeth(browserNs, serverAddress, browserAddress);
        browserNs.AddDefaultRoute(serverAddress);
        // What we send is held to the rate behind a queue of 200 ms at that rate (tbf's limit); 4 KB of burst (a few
        // packets: tbf drops a packet larger than its burst). The browser's direction is not shaped.
        Shape(serverNs, "add", HighRate);

        await using var driver = new UdpDriver();
        serverNs.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Parse(serverAddress), 0)));
        using var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        // Congestion control is on by default (start 300 kbit/s, probes at start).
        await using var pc = new PeerConnection(driver, new PeerConnectionOptions { Certificate = certificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });
        var options = new Transport.Rtp.Congestion.CongestionControlOptions();
        long target = options.StartBitrate;
        var targetChanges = new List<(double T, long Bps)>();
        var events = Task.Run(async () =>
        {
            await foreach (var e in pc.Events.ReadAllAsync())
                if (e is TargetBitrateChanged t)
                {
                    Interlocked.Exchange(ref target, t.BitsPerSecond);
                    lock (targetChanges) targetChanges.Add((WallMs(), t.BitsPerSecond));
                }
        });

        var pageSamples = new List<PageSample>();
        var ours = new List<OurSample>();
        var queue = new List<QueueSample>();
        using var stopSending = new CancellationTokenSource();
        Task? sender = null;
        long framesSent = 0, framesRefused = 0, framesOther = 0;
        double t0 = 0, stepAt = 0;
        try
        {
            await using var chromium = await HeadlessChromium.LaunchAsync(browserNs);
            var page = await chromium.NewSecurePageAsync();
            var offer = await page.EvaluateAsync<string>(OfferScript);
            var video = await pc.AddTrackAsync(MediaKind.Video, new LocalTrackOptions { Codecs = [CodecSpec.Vp8] });
            var answer = await pc.CreateAnswerAsync(offer).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Contains("transport-wide-cc", answer, StringComparison.Ordinal);
            await page.EvaluateAsync("sdp => window.pc.setRemoteDescription({ type: 'answer', sdp })", answer);
            var clock = Stopwatch.StartNew();
            while (!(pc.State == ConnectionState.Connected && video.IsNegotiated) && clock.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(100);
            Assert.Equal(ConnectionState.Connected, pc.State);
            Assert.True(video.IsNegotiated);
            t0 = WallMs();

            // The application: 30 frames a second, each target / 8 / 30 bytes (the pattern's key frame, then zeros). The
            // pattern is small (160x120: its key frames are the floor of what we send, which must stay well below the
            // lowest target: at 320x240 they alone make about 700 kbit/s at 30 frames a second).
            var pattern = Enumerable.Range(0, 64).Select(n => TestPatternSource.RenderFrame(n, Width, Height)).ToArray();
            output.WriteLine($"pattern key frames: {pattern.Min(f => f.Length)}-{pattern.Max(f => f.Length)} bytes ({pattern.Max(f => f.Length) * 8 * FramesPerSecond / 1000} kbit/s at {FramesPerSecond} frames/s)");
            // On a thread of its own (a camera's): the thread pool's timers come late on this loaded machine, and a
            // frame that leaves late shows in Chromium as a freeze that the link did not cause.
            var sending = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            sender = sending.Task;
            new Thread(() =>
            {
                try
                {
                    var since = Stopwatch.StartNew();
                    var n = 0L;
                    while (!stopSending.IsCancellationRequested)
                    {
                        var wait = TimeSpan.FromSeconds((double)n / FramesPerSecond) - since.Elapsed;
                        if (wait > TimeSpan.Zero) Thread.Sleep(wait);
                        // Late by more than 5 frames (a stalled machine): skip ahead, as a camera does, rather than burst.
                        else if (-wait > TimeSpan.FromSeconds(5.0 / FramesPerSecond)) n = (long)(since.Elapsed.TotalSeconds * FramesPerSecond);
                        var rendered = pattern[n % pattern.Length];
                        var size = (int)Math.Clamp(Interlocked.Read(ref target) / 8 / FramesPerSecond, rendered.Length, 200_000);
                        var frame = new byte[size];
                        rendered.CopyTo(frame, 0);
                        var result = pc.SendFrameAsync(video, frame, (uint)(since.Elapsed.TotalSeconds * 90_000)).GetAwaiter().GetResult();
                        if (result == MediaSendResult.Sent) Interlocked.Increment(ref framesSent);
                        else if (result == MediaSendResult.Congested) Interlocked.Increment(ref framesRefused);
                        else Interlocked.Increment(ref framesOther);
                        n++;
                    }
                    sending.SetResult();
                }
                catch (Exception e) { sending.SetException(e); }
            })
            { IsBackground = true, Name = "camera" }.Start();

            async Task RunPhase(TimeSpan length)
            {
                var phase = Stopwatch.StartNew();
                var lastRead = TimeSpan.Zero;
                while (phase.Elapsed < length)
                {
                    await Task.Delay(250);
                    var h = await pc.GetHealthAsync();
                    if (ReadQueue(serverNs) is { } q) queue.Add(q);
                    ours.Add(new OurSample(WallMs(), h.TargetBitrate ?? 0, h.MediaDeliveryRate, h.MediaLossFraction, Interlocked.Read(ref video.BytesSent), Interlocked.Read(ref video.FramesSent), Interlocked.Read(ref framesRefused)));
                    if (phase.Elapsed - lastRead > TimeSpan.FromSeconds(2))
                    {
                        pageSamples.AddRange(await ReadSamples(page));
                        lastRead = phase.Elapsed;
                    }
                }
                pageSamples.AddRange(await ReadSamples(page));
            }

            await RunPhase(HighPhase);
            Shape(serverNs, "change", LowRate);
            stepAt = WallMs();
            await RunPhase(LowPhase);
            await stopSending.CancelAsync();
            await sender.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(ConnectionState.Connected, pc.State);
            await page.EvaluateAsync("() => { clearInterval(window.sampler); window.pc.close(); }");
        }
        finally
        {
            await stopSending.CancelAsync();
            if (sender is not null) await Task.WhenAny(sender, Task.Delay(TimeSpan.FromSeconds(10)));
            await pc.CloseAsync();
            await Task.WhenAny(events, Task.Delay(TimeSpan.FromSeconds(10)));
            output.WriteLine(Table(t0, stepAt, ours, pageSamples, queue));
            output.WriteLine($"frames: sent {framesSent}, refused (congested) {framesRefused}, other {framesOther}");
            lock (targetChanges) output.WriteLine($"target changes: {targetChanges.Count}");
        }

        // Grading. Windows: [t0 + 15 s, step) at 1.5 Mbit/s, [step + 10 s, end) at 600 kbit/s.
        double highFrom = t0 + SettleHigh.TotalMilliseconds, lowFrom = stepAt + SettleLow.TotalMilliseconds, end = ours[^1].T;
        var highTarget = MeanTarget(ours, highFrom, stepAt);
        var lowTarget = MeanTarget(ours, lowFrom, end);
        var highMedian = MedianTarget(ours, highFrom, stepAt);
        var lowMedian = MedianTarget(ours, lowFrom, end);
        var highReceived = ReceiveRate(pageSamples, highFrom, stepAt);
        var lowReceived = ReceiveRate(pageSamples, lowFrom, end);
        var converged = ours.FirstOrDefault(s => s.T >= t0 && s.Target >= 0.4 * HighRate && s.Target <= 1.1 * HighRate)?.T - t0;
        var followed = ours.FirstOrDefault(s => s.T >= stepAt && s.Target <= 1.1 * LowRate)?.T - stepAt;
        var first = pageSamples.First(s => s.T >= t0);
        var last = pageSamples[^1];
        var decodedFirst = pageSamples.FirstOrDefault(s => s.Decoded > 0);
        var gap = MaxDecodeGap(pageSamples);
        var lossFraction = last.Packets + last.Lost > 0 ? (double)last.Lost / (last.Packets + last.Lost) : 0;
        var jitterBufferMs = last.JbCount > 0 ? last.JbDelay / last.JbCount * 1000 : 0;
        var highQueueMs = QueueDelayMs(queue, highFrom, stepAt, HighRate);
        var lowQueueMs = QueueDelayMs(queue, lowFrom, end, LowRate);
        var queueDrops = queue.Count > 0 ? queue[^1].Dropped : 0;
        output.WriteLine(FormattableString.Invariant(
            $"summary: 1.5 Mbit/s: target within 40-110 % after {converged / 1000:0.0} s, mean target {highTarget / 1000:0} kbit/s ({highTarget / HighRate:P0}), median {highMedian / HighRate:P0}, Chromium received {highReceived / 1000:0} kbit/s ({highReceived / highTarget:P0} of the target), tbf queue {highQueueMs:0} ms mean; ") +
            FormattableString.Invariant($"step to 600 kbit/s: target <= 110 % after {followed / 1000:0.0} s, mean {lowTarget / 1000:0} kbit/s ({lowTarget / LowRate:P0}), median {lowMedian / LowRate:P0}, received {lowReceived / 1000:0} kbit/s ({lowReceived / lowTarget:P0}), queue {lowQueueMs:0} ms mean; tbf dropped {queueDrops} packets; ") +
            FormattableString.Invariant($"decoded {last.Decoded} frames, longest gap without a decoded frame {gap / 1000:0.00} s, freezes {last.Freezes} ({last.FreezeSeconds:0.00} s), ") +
            FormattableString.Invariant($"lost {last.Lost} of {last.Packets + last.Lost} packets ({lossFraction:P2}), NACKs {last.Nacks}, PLIs {last.Plis}, mean jitter buffer delay {jitterBufferMs:0} ms"));

        Assert.NotNull(decodedFirst);
        // Within 20 s: the start probe lifts the estimate in under a second when its result counts (in some runs here it
        // did not, and the estimate climbed by its increase alone, in about 10 s).
        Assert.True(converged is not null && converged < 20_000, $"the target did not reach 40-110 % of 1.5 Mbit/s within 20 s ({converged})");
        // The median, not the mean: a stall of this loaded machine (Chromium's or ours) reads as a queue to the estimator
        // and costs it half its rate for the seconds it takes to climb back; that is a dip, not where it settles.
        Assert.InRange(highMedian, 0.4 * HighRate, 1.1 * HighRate);
        Assert.InRange(highReceived / highTarget, 0.6, 1.25);
        Assert.True(followed is not null && followed < 10_000, $"the target did not follow the step down to 600 kbit/s within 10 s ({followed})");
        Assert.InRange(lowMedian, 0.4 * LowRate, 1.1 * LowRate);
        Assert.InRange(lowReceived / lowTarget, 0.6, 1.25);
        // The jitter buffer does not starve: frames keep coming out of it, every second, at the step too.
        Assert.True(gap < 2_500, $"{gap / 1000:0.00} s without a decoded frame");
        Assert.True(last.Decoded - first.Decoded >= 0.6 * FramesPerSecond * (last.T - first.T) / 1000, $"{last.Decoded - first.Decoded} frames decoded in {(last.T - first.T) / 1000:0.0} s");
        // Chromium counts a freeze when a frame comes 150 ms or more later than usual: on this loaded machine its own stalls
        // and ours count too (one run at load 60-70 saw 26 freezes, 7.9 s of 70, with the tbf queue empty and nothing
        // lost). Frozen less than a fifth of the time.
        Assert.True(last.FreezeSeconds < 0.2 * (last.T - first.T) / 1000, $"{last.Freezes} freezes, {last.FreezeSeconds:0.00} s in all");
        Assert.True(lossFraction < 0.03, $"lost {last.Lost} of {last.Packets + last.Lost} packets");
    }

    private static void Shape(NetworkNamespace ns, string verb, long rate) =>
        ns.Exec(Tc, "qdisc", verb, "dev", "veth-a", "root", "tbf", "rate", $"{rate / 1000}kbit", "burst", "4kb", "latency", "200ms");

    // `tc -s qdisc show` of the shaped end: "backlog 1234b 2p" and "(dropped N, ...)". Null when it cannot be read.
    private static QueueSample? ReadQueue(NetworkNamespace ns)
    {
        var info = new ProcessStartInfo("ip", $"netns exec {ns.Name} {Tc} -s qdisc show dev veth-a") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var p = Process.Start(info);
        if (p is null) return null;
        var text = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(5_000) || p.ExitCode != 0) return null;
        var backlog = System.Text.RegularExpressions.Regex.Match(text, @"backlog (\d+)b");
        var dropped = System.Text.RegularExpressions.Regex.Match(text, @"dropped (\d+)");
        if (!backlog.Success || !dropped.Success) return null;
        return new QueueSample(WallMs(), long.Parse(backlog.Groups[1].Value, CultureInfo.InvariantCulture), long.Parse(dropped.Groups[1].Value, CultureInfo.InvariantCulture));
    }

    // The mean time the bytes in the tbf queue take to leave at the shaped rate, over the window's samples.
    private static double QueueDelayMs(List<QueueSample> queue, double from, double to, long rate)
    {
        var window = queue.Where(s => s.T >= from && s.T < to).ToList();
        return window.Count == 0 ? 0 : window.Average(s => s.BacklogBytes * 8000.0 / rate);
    }

    private static async Task<List<PageSample>> ReadSamples(Microsoft.Playwright.IPage page)
    {
        var json = await page.EvaluateAsync<string>("() => JSON.stringify(window.samples.splice(0))");
        return JsonSerializer.Deserialize<List<PageSample>>(json, new JsonSerializerOptions { PropertyNameCaseInsensitive = true }) ?? new();
    }

    private static double MeanTarget(List<OurSample> ours, double from, double to)
    {
        var window = ours.Where(s => s.T >= from && s.T < to).ToList();
        return window.Count == 0 ? 0 : window.Average(s => (double)s.Target);
    }

    private static double MedianTarget(List<OurSample> ours, double from, double to)
    {
        var window = ours.Where(s => s.T >= from && s.T < to).Select(s => s.Target).Order().ToList();
        return window.Count == 0 ? 0 : window[window.Count / 2];
    }

    // Bits per second Chromium received (payload and RTP headers) between the samples nearest the window's ends.
    private static double ReceiveRate(List<PageSample> samples, double from, double to)
    {
        var window = samples.Where(s => s.T >= from && s.T <= to).ToList();
        if (window.Count < 2) return 0;
        var (a, b) = (window[0], window[^1]);
        return (b.Bytes + b.Header - a.Bytes - a.Header) * 8 / ((b.T - a.T) / 1000);
    }

    // The longest time (ms) between two samples that saw framesDecoded grow, from the first decoded frame on.
    private static double MaxDecodeGap(List<PageSample> samples)
    {
        double gap = 0, lastGrowth = double.NaN;
        long decoded = 0;
        foreach (var s in samples)
        {
            if (s.Decoded <= decoded) continue;
            if (!double.IsNaN(lastGrowth)) gap = Math.Max(gap, s.T - lastGrowth);
            lastGrowth = s.T;
            decoded = s.Decoded;
        }
        if (!double.IsNaN(lastGrowth) && samples.Count > 0) gap = Math.Max(gap, samples[^1].T - lastGrowth);
        return gap;
    }

    // Every 2 s: our target and the delivery rate our feedback measured, what Chromium received and decoded.
    private static string Table(double t0, double stepAt, List<OurSample> ours, List<PageSample> page, List<QueueSample> queue)
    {
        var text = new StringBuilder("    t  shaped  target (min-max)  feedback  received  queue  refused  decoded/s  lost  nacks  freezes  jitter buffer   (s, kbit/s, ms; 2 s windows)\n");
        if (t0 == 0 || ours.Count == 0) return text.ToString();
        var end = ours[^1].T;
        for (var from = t0; from < end; from += 2000)
        {
            var to = Math.Min(from + 2000, end);
            var o = ours.Where(s => s.T >= from && s.T < to).ToList();
            var p = page.Where(s => s.T >= from && s.T <= to).ToList();
            if (o.Count == 0) continue;
            var delivery = o.Where(s => s.Delivery is not null).Select(s => s.Delivery!.Value).DefaultIfEmpty(0).Average();
            string received = "-", decoded = "-", lost = "-", nacks = "-", freezes = "-", buffer = "-";
            if (p.Count >= 2)
            {
                var (a, b) = (p[0], p[^1]);
                var seconds = (b.T - a.T) / 1000;
                received = ((b.Bytes + b.Header - a.Bytes - a.Header) * 8 / seconds / 1000).ToString("0", CultureInfo.InvariantCulture);
                decoded = ((b.Decoded - a.Decoded) / seconds).ToString("0.0", CultureInfo.InvariantCulture);
                lost = (b.Lost - a.Lost).ToString(CultureInfo.InvariantCulture);
                nacks = (b.Nacks - a.Nacks).ToString(CultureInfo.InvariantCulture);
                freezes = b.Freezes.ToString(CultureInfo.InvariantCulture);
                buffer = b.JbCount > a.JbCount ? ((b.JbDelay - a.JbDelay) / (b.JbCount - a.JbCount) * 1000).ToString("0", CultureInfo.InvariantCulture) + " ms" : "-";
            }
            var shaped = stepAt > 0 && from >= stepAt ? LowRate : HighRate;
            var range = $"({o.Min(s => s.Target) / 1000}-{o.Max(s => s.Target) / 1000})";
            var queued = QueueDelayMs(queue, from, to, shaped).ToString("0", CultureInfo.InvariantCulture);
            var refused = o[^1].Refused - (ours.LastOrDefault(s => s.T < from)?.Refused ?? 0);
            text.Append(CultureInfo.InvariantCulture, $"{(from - t0) / 1000,5:0}  {shaped / 1000,6}  {o.Average(s => s.Target) / 1000,6:0} {range,-11}  {delivery / 1000,8:0}  {received,8}  {queued,5}  {refused,7}  {decoded,9}  {lost,4}  {nacks,5}  {freezes,7}  {buffer,13}\n");
        }
        return text.ToString();
    }
}
