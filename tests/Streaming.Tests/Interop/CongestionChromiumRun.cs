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

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// One run of send-side congestion control against headless Chromium on a shaped link (issue 21, the "real" test), shared
/// by <c>CongestionControlChromiumTests</c> (a veth pair, no added delay) and the bench's <c>cc-chromium</c> verb (the
/// same behind bench/DelayedLink.cs, which adds propagation delay). Our peer connection's UDP socket is in one network
/// namespace, Chromium in another; the caller shapes our side's device with <see cref="Shape"/> (<c>tc qdisc tbf</c>)
/// before the run; the run changes it to <see cref="LowRate"/> after <see cref="HighPhase"/>. We send VP8 video at 30
/// frames a second, each frame sized from our current target bitrate (the <see cref="TargetBitrateChanged"/> events:
/// target / 8 / 30 bytes): a key frame of the test pattern (<see cref="TestPatternSource.RenderFrame"/>, 160x120,
/// 1.3-1.6 KB) followed by zeros up to that size, which VP8's last token partition carries and libvpx never reads, so
/// every frame decodes. Chromium's getStats (sampled in the page every 200 ms) shows what it received and decoded; we
/// sample our health (target, delivery rate) and the tbf backlog every 250 ms.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class CongestionChromiumRun
{
    public const string Tc = "/usr/sbin/tc";
    public const int FramesPerSecond = 30, Width = 160, Height = 120;
    public const long HighRate = 1_500_000, LowRate = 600_000;
    public static readonly TimeSpan HighPhase = TimeSpan.FromSeconds(40), LowPhase = TimeSpan.FromSeconds(30);
    // Where each phase is graded: from this long after its start to its end (the estimate has had time to settle).
    public static readonly TimeSpan SettleHigh = TimeSpan.FromSeconds(15), SettleLow = TimeSpan.FromSeconds(10);

    // The viewer: a recvonly video section, its track shown in a <video> (so Chromium renders and counts freezes), and
    // a sampler of the inbound video's getStats every 200 ms into window.samples (read and emptied by the run).
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
          await new Promise(ok => { if (pc.iceGatheringState === 'complete') ok();
            else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok(); });
          return pc.localDescription.sdp;
        }
        """;

    public sealed record PageSample(double T, long Bytes, long Header, long Packets, long Lost, long Decoded, long Received, long Dropped,
        long Freezes, double FreezeSeconds, double JbDelay, long JbCount, long Nacks, long Plis, int Width);

    public sealed record OurSample(double T, long Target, double? Delivery, double? Loss, long BytesSent, long FramesSent, long Refused);

    // The tbf queue on our side (tc -s qdisc): bytes waiting, and packets dropped so far.
    public sealed record QueueSample(double T, long BacklogBytes, long Dropped);

    private readonly NetworkNamespace _ours;
    private readonly string _device;

    private CongestionChromiumRun(NetworkNamespace ours, string device)
    {
        _ours = ours;
        _device = device;
    }

    public List<OurSample> Ours { get; } = new();
    public List<PageSample> Page { get; } = new();
    public List<QueueSample> Queue { get; } = new();
    /// <summary>When the connection was up and sending began, and when the rate was stepped down (Unix ms).</summary>
    public double T0 { get; private set; }
    public double StepAt { get; private set; }
    public long FramesSent, FramesRefused, FramesOther;
    public int TargetChanges { get; private set; }
    public ConnectionState FinalState { get; private set; }

    private static double WallMs() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>
    /// Shapes what leaves <paramref name="device"/> in <paramref name="ns"/> (<paramref name="verb"/> "add" or "change"):
    /// held to <paramref name="rate"/> behind a queue of 200 ms at the rate (tbf's limit), 4 KB of burst (a few packets:
    /// tbf drops a packet larger than its burst). The other direction is not shaped.
    /// </summary>
    public static void Shape(NetworkNamespace ns, string device, string verb, long rate)
    {
        ArgumentNullException.ThrowIfNull(ns);
        if (!File.Exists(Tc)) throw new InvalidOperationException($"{Tc} is missing: install the Debian package 'iproute2'.");
        ns.Exec(Tc, "qdisc", verb, "dev", device, "root", "tbf", "rate", $"{rate / 1000}kbit", "burst", "4kb", "latency", "200ms");
    }

    /// <summary>
    /// Runs the phases: our peer connection bound to <paramref name="ourAddress"/> in <paramref name="ours"/> (whose
    /// <paramref name="device"/> the caller shaped to <see cref="HighRate"/>), Chromium in <paramref name="browser"/>.
    /// Writes the table of the run to <paramref name="log"/> whatever happens.
    /// </summary>
    public static async Task<CongestionChromiumRun> RunAsync(NetworkNamespace ours, NetworkNamespace browser, string ourAddress,
        string device, Action<string> log)
    {
        ArgumentNullException.ThrowIfNull(ours);
        ArgumentNullException.ThrowIfNull(log);
        var run = new CongestionChromiumRun(ours, device);
        await using var driver = new UdpDriver();
        ours.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Parse(ourAddress), 0)));
        using var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        // Congestion control is on by default (start 300 kbit/s, probes at start).
        await using var pc = new PeerConnection(driver,
            new PeerConnectionOptions { Certificate = certificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });
        try { await run.RunPhasesAsync(pc, browser, log); }
        finally { log(run.Table()); }
        return run;
    }

    private async Task RunPhasesAsync(PeerConnection pc, NetworkNamespace browser, Action<string> log)
    {
        var options = new Transport.Rtp.Congestion.CongestionControlOptions();
        long target = options.StartBitrate;
        var events = Task.Run(async () =>
        {
            await foreach (var e in pc.Events.ReadAllAsync())
                if (e is TargetBitrateChanged t)
                {
                    Interlocked.Exchange(ref target, t.BitsPerSecond);
                    TargetChanges++;
                }
        });

        using var stopSending = new CancellationTokenSource();
        Task? sender = null;
        try
        {
            await using var chromium = await HeadlessChromium.LaunchAsync(browser);
            var page = await chromium.NewSecurePageAsync();
            var offer = await page.EvaluateAsync<string>(OfferScript);
            var video = await pc.AddTrackAsync(MediaKind.Video, new LocalTrackOptions { Codecs = [CodecSpec.Vp8] });
            var answer = await pc.CreateAnswerAsync(offer).WaitAsync(TimeSpan.FromSeconds(30));
            if (!answer.Contains("transport-wide-cc", StringComparison.Ordinal)) throw new InvalidOperationException("the answer has no transport-cc");
            await page.EvaluateAsync("sdp => window.pc.setRemoteDescription({ type: 'answer', sdp })", answer);
            var clock = Stopwatch.StartNew();
            while (!(pc.State == ConnectionState.Connected && video.IsNegotiated) && clock.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(100);
            if (pc.State != ConnectionState.Connected || !video.IsNegotiated) throw new InvalidOperationException($"not connected: {pc.State}");
            T0 = WallMs();

            // The application: 30 frames a second, each target / 8 / 30 bytes (the pattern's key frame, then zeros). The
            // pattern is small (160x120: its key frames are the floor of what we send, which must stay well below the
            // lowest target: at 320x240 they alone make about 700 kbit/s at 30 frames a second).
            var pattern = Enumerable.Range(0, 64).Select(n => TestPatternSource.RenderFrame(n, Width, Height)).ToArray();
            log($"pattern key frames: {pattern.Min(f => f.Length)}-{pattern.Max(f => f.Length)} bytes " +
                $"({pattern.Max(f => f.Length) * 8 * FramesPerSecond / 1000} kbit/s at {FramesPerSecond} frames/s)");
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
                        if (result == MediaSendResult.Sent) Interlocked.Increment(ref FramesSent);
                        else if (result == MediaSendResult.Congested) Interlocked.Increment(ref FramesRefused);
                        else Interlocked.Increment(ref FramesOther);
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
                    if (ReadQueue() is { } q) Queue.Add(q);
                    var detail = await pc.InspectAsync((c, _) => Describe(c));
                    var at = WallMs() - T0;
                    if (at < 3000 || Ours.Count % 8 == 0)
                        log(FormattableString.Invariant($"{at / 1000,6:0.00} s  target {h.TargetBitrate / 1000} kbit/s  {detail}"));
                    Ours.Add(new OurSample(WallMs(), h.TargetBitrate ?? 0, h.MediaDeliveryRate, h.MediaLossFraction, Interlocked.Read(ref video.BytesSent),
                        Interlocked.Read(ref video.FramesSent), Interlocked.Read(ref FramesRefused)));
                    if (phase.Elapsed - lastRead > TimeSpan.FromSeconds(2))
                    {
                        Page.AddRange(await ReadSamples(page));
                        lastRead = phase.Elapsed;
                    }
                }
                Page.AddRange(await ReadSamples(page));
            }

            await RunPhase(HighPhase);
            Shape(_ours, _device, "change", LowRate);
            StepAt = WallMs();
            await RunPhase(LowPhase);
            await stopSending.CancelAsync();
            await sender.WaitAsync(TimeSpan.FromSeconds(10));
            FinalState = pc.State;
            await page.EvaluateAsync("() => { clearInterval(window.sampler); window.pc.close(); }");
        }
        finally
        {
            await stopSending.CancelAsync();
            if (sender is not null) await Task.WhenAny(sender, Task.Delay(TimeSpan.FromSeconds(10)));
            await pc.CloseAsync();
            await Task.WhenAny(events, Task.Delay(TimeSpan.FromSeconds(10)));
            log($"frames: sent {FramesSent}, refused (congested) {FramesRefused}, other {FramesOther}; target changes: {TargetChanges}");
        }
    }

    // The estimator's state in a line: where the target comes from, the probes and their last result, the delay detector.
    private static string Describe(PeerConnectionCore c)
    {
        if (c.BandwidthEstimator is not { } e) return "no estimator";
        return FormattableString.Invariant($"delay {e.DelayBasedBitrate / 1000} loss {e.LossBasedBitrate / 1000} acked {e.AckedBitrate / 1000:0} ") +
            FormattableString.Invariant($"probes {e.Probes.ProbesStarted} last probe {e.Probes.LastResult / 1000:0} (sent {e.Probes.LastSendRate / 1000:0} ") +
            FormattableString.Invariant($"received {e.Probes.LastReceiveRate / 1000:0} ") +
            FormattableString.Invariant($"implausible {e.Probes.Implausible}) padding {c.MediaCounters.PaddingPacketsSent} ") +
            FormattableString.Invariant($"overuses {e.Overuses} state {e.DelayState} threshold {e.Detector.Threshold:0.0} ") +
            FormattableString.Invariant($"rtt {e.RoundTripTime.TotalMilliseconds:0} (min {e.MinRoundTripTime?.TotalMilliseconds:0}) alr ") +
            FormattableString.Invariant($"{e.InApplicationLimitedRegion} lost {e.LossesCounted}");
    }

    /// <summary>The figures of a run, graded from <see cref="SettleHigh"/> after the start and <see cref="SettleLow"/> after the step.</summary>
    public sealed record Result(double? Converged, double HighTarget, double HighMedian, double HighReceived, double HighQueueMs,
        double? Followed, double LowTarget, double LowMedian, double LowReceived, double LowQueueMs, long QueueDrops,
        PageSample First, PageSample Last, bool Decoded, double DecodeGapMs, double LossFraction, double JitterBufferMs)
    {
        public override string ToString() =>
            FormattableString.Invariant($"summary: 1.5 Mbit/s: target within 40-110 % after {Converged / 1000:0.0} s, ") +
            FormattableString.Invariant($"mean target {HighTarget / 1000:0} kbit/s ") +
            FormattableString.Invariant($"({HighTarget / HighRate:P0}), median {HighMedian / HighRate:P0}, Chromium received {HighReceived / 1000:0} kbit/s ") +
            FormattableString.Invariant($"({HighReceived / HighTarget:P0} of the target), tbf queue {HighQueueMs:0} ms mean; ") +
            FormattableString.Invariant($"step to 600 kbit/s: target <= 110 % after {Followed / 1000:0.0} s, mean {LowTarget / 1000:0} kbit/s ") +
            FormattableString.Invariant($"({LowTarget / LowRate:P0}), median {LowMedian / LowRate:P0}, received {LowReceived / 1000:0} kbit/s ") +
            FormattableString.Invariant($"({LowReceived / LowTarget:P0}), queue ") +
            FormattableString.Invariant($"{LowQueueMs:0} ms mean; tbf dropped {QueueDrops} packets; ") +
            FormattableString.Invariant($"decoded {Last.Decoded} frames, longest gap without a decoded frame {DecodeGapMs / 1000:0.00} s, freezes ") +
            FormattableString.Invariant($"{Last.Freezes} ({Last.FreezeSeconds:0.00} s), ") +
            FormattableString.Invariant($"lost {Last.Lost} of {Last.Packets + Last.Lost} packets ({LossFraction:P2}), NACKs {Last.Nacks}, PLIs {Last.Plis}, ") +
            FormattableString.Invariant($"mean jitter buffer delay {JitterBufferMs:0} ms");
    }

    public Result Grade()
    {
        // Windows: [t0 + 15 s, step) at 1.5 Mbit/s, [step + 10 s, end) at 600 kbit/s.
        double highFrom = T0 + SettleHigh.TotalMilliseconds, lowFrom = StepAt + SettleLow.TotalMilliseconds, end = Ours[^1].T;
        var last = Page[^1];
        return new Result(
            Converged: Ours.FirstOrDefault(s => s.T >= T0 && s.Target >= 0.4 * HighRate && s.Target <= 1.1 * HighRate)?.T - T0,
            HighTarget: MeanTarget(highFrom, StepAt), HighMedian: MedianTarget(highFrom, StepAt), HighReceived: ReceiveRate(highFrom, StepAt),
            HighQueueMs: QueueDelayMs(highFrom, StepAt, HighRate),
            Followed: Ours.FirstOrDefault(s => s.T >= StepAt && s.Target <= 1.1 * LowRate)?.T - StepAt,
            LowTarget: MeanTarget(lowFrom, end), LowMedian: MedianTarget(lowFrom, end), LowReceived: ReceiveRate(lowFrom, end),
            LowQueueMs: QueueDelayMs(lowFrom, end, LowRate),
            QueueDrops: Queue.Count > 0 ? Queue[^1].Dropped : 0,
            First: Page.First(s => s.T >= T0), Last: last, Decoded: Page.Any(s => s.Decoded > 0), DecodeGapMs: MaxDecodeGap(),
            LossFraction: last.Packets + last.Lost > 0 ? (double)last.Lost / (last.Packets + last.Lost) : 0,
            JitterBufferMs: last.JbCount > 0 ? last.JbDelay / last.JbCount * 1000 : 0);
    }

    // `tc -s qdisc show` of the shaped end: "backlog 1234b 2p" and "(dropped N, ...)". Null when it cannot be read.
    private QueueSample? ReadQueue()
    {
        var info = new ProcessStartInfo("ip", $"netns exec {_ours.Name} {Tc} -s qdisc show dev {_device}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false
        };
        using var p = Process.Start(info);
        if (p is null) return null;
        var text = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(5_000) || p.ExitCode != 0) return null;
        var backlog = System.Text.RegularExpressions.Regex.Match(text, @"backlog (\d+)b");
        var dropped = System.Text.RegularExpressions.Regex.Match(text, @"dropped (\d+)");
        if (!backlog.Success || !dropped.Success) return null;
        return new QueueSample(WallMs(), long.Parse(backlog.Groups[1].Value, CultureInfo.InvariantCulture),
            long.Parse(dropped.Groups[1].Value, CultureInfo.InvariantCulture));
    }

    // The mean time the bytes in the tbf queue take to leave at the shaped rate, over the window's samples.
    private double QueueDelayMs(double from, double to, long rate)
    {
        var window = Queue.Where(s => s.T >= from && s.T < to).ToList();
        return window.Count == 0 ? 0 : window.Average(s => s.BacklogBytes * 8000.0 / rate);
    }

    private static async Task<List<PageSample>> ReadSamples(Microsoft.Playwright.IPage page)
    {
        var json = await page.EvaluateAsync<string>("() => JSON.stringify(window.samples.splice(0))");
        return JsonSerializer.Deserialize<List<PageSample>>(json, new JsonSerializerOptions { PropertyNameCaseInsensitive = true }) ?? new();
    }

    private double MeanTarget(double from, double to)
    {
        var window = Ours.Where(s => s.T >= from && s.T < to).ToList();
        return window.Count == 0 ? 0 : window.Average(s => (double)s.Target);
    }

    private double MedianTarget(double from, double to)
    {
        var window = Ours.Where(s => s.T >= from && s.T < to).Select(s => s.Target).Order().ToList();
        return window.Count == 0 ? 0 : window[window.Count / 2];
    }

    // Bits per second Chromium received (payload and RTP headers) between the samples nearest the window's ends.
    private double ReceiveRate(double from, double to)
    {
        var window = Page.Where(s => s.T >= from && s.T <= to).ToList();
        if (window.Count < 2) return 0;
        var (a, b) = (window[0], window[^1]);
        return (b.Bytes + b.Header - a.Bytes - a.Header) * 8 / ((b.T - a.T) / 1000);
    }

    // The longest time (ms) between two samples that saw framesDecoded grow, from the first decoded frame on.
    private double MaxDecodeGap()
    {
        double gap = 0, lastGrowth = double.NaN;
        long decoded = 0;
        foreach (var s in Page)
        {
            if (s.Decoded <= decoded) continue;
            if (!double.IsNaN(lastGrowth)) gap = Math.Max(gap, s.T - lastGrowth);
            lastGrowth = s.T;
            decoded = s.Decoded;
        }
        if (!double.IsNaN(lastGrowth) && Page.Count > 0) gap = Math.Max(gap, Page[^1].T - lastGrowth);
        return gap;
    }

    // Every 2 s: our target and the delivery rate our feedback measured, what Chromium received and decoded.
    public string Table()
    {
        var text = new StringBuilder("    t  shaped  target (min-max)  feedback  received  queue  refused  decoded/s  lost  nacks  freezes  jitter buffer   " +
            "(s, kbit/s, ms; 2 s windows)\n");
        if (T0 == 0 || Ours.Count == 0) return text.ToString();
        var end = Ours[^1].T;
        for (var from = T0; from < end; from += 2000)
        {
            var to = Math.Min(from + 2000, end);
            var o = Ours.Where(s => s.T >= from && s.T < to).ToList();
            var p = Page.Where(s => s.T >= from && s.T <= to).ToList();
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
                buffer = b.JbCount > a.JbCount ? ((b.JbDelay - a.JbDelay) / (b.JbCount - a.JbCount) * 1000).ToString("0",
                    CultureInfo.InvariantCulture) + " ms" : "-";
            }
            var shaped = StepAt > 0 && from >= StepAt ? LowRate : HighRate;
            var range = $"({o.Min(s => s.Target) / 1000}-{o.Max(s => s.Target) / 1000})";
            var queued = QueueDelayMs(from, to, shaped).ToString("0", CultureInfo.InvariantCulture);
            var refused = o[^1].Refused - (Ours.LastOrDefault(s => s.T < from)?.Refused ?? 0);
            text.Append(CultureInfo.InvariantCulture,
                $"{(from - T0) / 1000,5:0}  {shaped / 1000,6}  {o.Average(s => s.Target) / 1000,6:0} {range,-11}  {delivery / 1000,8:0}  {received,8}  " +
                $"{queued,5}  {refused,7}  {decoded,9}  {lost,4}  {nacks,5}  {freezes,7}  {buffer,13}\n");
        }
        return text.ToString();
    }
}
