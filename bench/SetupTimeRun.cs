using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.Versioning;
using System.Text.Json;
using Microsoft.Playwright;
using Transport.Dtls;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Io;
using Transport.Streaming.Tests.Interop;
using Transport.Streaming.WebRtc;

namespace Transport.Bench;

/// <summary>
/// Set-up time over a real delay: two network namespaces joined by a link that delays each packet 25 ms each way
/// (RTT 50 ms; <see cref="DelayedLink"/>: a veth pair with <c>tc netem</c>, or TUN devices and a delaying relay on a
/// kernel without netem). Measured: offer created -> the offerer's first message echoed by the answerer, median and
/// min/max over N runs, for each <see cref="Variants"/> entry, with
/// <list type="bullet">
/// <item>ours <-> ours: one of our peer connections in each namespace, each on its own UDP driver; signaling is
/// in-process, so it adds nothing;</item>
/// <item>Chromium -> ours: headless Chromium 156 (Playwright) in B offers (with the variant's field trials), ours in A
/// answers and echoes; the time is the page's (performance.now()) less the signaling hop through Playwright
/// (between the page's local description and the answer applied), which ours <-> ours does not have either;</item>
/// <item>ours -> Chromium: ours in A offers, Chromium answers and echoes; less the signaling hop (offer made -> answer
/// back, Chromium's gathering wait included);</item>
/// <item>node-datachannel <-> node-datachannel (libdatachannel 0.33.4, which has neither SNAP nor SPED) as the reference: one node
/// process per namespace, signaling relayed through this process's pipes (about a millisecond).</item>
/// </list>
/// Needs root. <c>dotnet run -c Release --project bench -- setup-time [runs=10] [delay-ms=25] [--no-chromium] [--no-node] [--only=TEXT] [--peers=LIST]
/// [--milestones]</c>
/// (<c>--peers=</c> a comma list of <c>ours</c>, <c>chromium-offers</c>, <c>chromium-answers</c>, <c>node</c>: the rows to run; all by default).
/// </summary>
[SupportedOSPlatform("linux")]
public static class SetupTimeRun
{
    /// <summary>
    /// One way of setting up: SPED and SNAP on our sides (both are on by default, so each variant says both), whether
    /// the channel is negotiated (no DCEP), and the Chromium field trials that turn the same features on there.
    /// </summary>
    public sealed record Variant(string Name, bool Sped, bool Snap, bool Negotiated, string? ChromiumFieldTrials)
    {
        public PeerConnectionOptions Configure(PeerConnectionOptions o) => o with { Sped = Sped, Snap = Snap };
    }

    private const string SnapTrial = "WebRTC-Sctp-Snap/Enabled/";
    private const string SpedSnapTrials = "WebRTC-IceHandshakeDtls/Enabled/WebRTC-Sctp-Snap/Enabled/";

    public static readonly Variant[] Variants =
    [
        new("normal (SCTP handshake, DCEP)", false, false, false, null),
        new("SNAP, DCEP", false, true, false, SnapTrial),
        new("SNAP + negotiated channel", false, true, true, SnapTrial),
        new("SPED + SNAP, DCEP", true, true, false, SpedSnapTrials),
        new("SPED + SNAP + negotiated channel", true, true, true, SpedSnapTrials),
    ];

    // Whether our side's DTLS completed in the checks (the DtlsConnected milestone names SPED's state then).
    private static bool CompletedBySped(PeerConnectionEvent e) =>
        e is ConnectionMilestoneReached { Milestone: ConnectionMilestone.DtlsConnected } m
        && (m.Detail.Contains("SPED pending", StringComparison.Ordinal) || m.Detail.Contains("SPED complete", StringComparison.Ordinal));

    // Per row: in how many counted runs our side's handshake came in the checks (SPED variants only).
    private static readonly List<string> SpedNotes = new();

    private const int NegotiatedId = 1;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    // --only=TEXT: the variants whose name contains TEXT; --milestones: print our side's milestones of each Chromium run.
    private static bool _milestones;

    public static async Task<int> RunAsync(string[] args)
    {
        _milestones = args.Contains("--milestones");
        var numbers = args.Skip(1).Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray();
        var runs = numbers.Length > 0 ? int.Parse(numbers[0], CultureInfo.InvariantCulture) : 10;
        var delayMs = numbers.Length > 1 ? int.Parse(numbers[1], CultureInfo.InvariantCulture) : 25;
        var link = DelayedLink.Create(TimeSpan.FromMilliseconds(delayMs));
        var captures = StartCaptures(link);
        try { return await MeasureAsync(link, runs, delayMs, args).ConfigureAwait(false); }
        finally
        {
            foreach (var c in captures) StopCapture(c);
            link.Dispose();
            if (link.RelayReport is { } report) Console.WriteLine(report);
        }
    }

    // SETUP_TIME_PCAP=DIR: tcpdump on each namespace's end of the link (a.pcap: ours, b.pcap: the other peer's), so
    // every datagram has its send and arrival time on both sides (tools/sped-trace.py reads them).
    private static List<Process> StartCaptures(DelayedLink link)
    {
        var list = new List<Process>();
        if (Environment.GetEnvironmentVariable("SETUP_TIME_PCAP") is not { Length: > 0 } dir) return list;
        Directory.CreateDirectory(dir);
        foreach (var (ns, side) in new[] { (link.A, "a"), (link.B, "b") })
        {
            var device = link.How.Contains("TUN", StringComparison.Ordinal) ? "t" + side : "v" + side;
            var info = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardError = true };
            foreach (var arg in new[] { "netns", "exec", ns.Name, "tcpdump", "-i", device, "-U", "-s", "2048", "-w", Path.Combine(dir, side + ".pcap"), "udp" })
                info.ArgumentList.Add(arg);
            if (Process.Start(info) is { } p) list.Add(p);
        }
        Thread.Sleep(1000);   // tcpdump opens the device
        return list;
    }

    private static void StopCapture(Process p)
    {
        try
        {
            // SIGINT to tcpdump (our own child; `ip netns exec` execs it, so the pid is tcpdump's) flushes the file.
            using var kill = Process.Start("kill", ["-INT", p.Id.ToString(CultureInfo.InvariantCulture)]);
            kill?.WaitForExit(5000);
            if (!p.WaitForExit(5000)) p.Kill();
        }
        catch (InvalidOperationException) { }
        p.Dispose();
    }

    // SETUP_TIME_CHROMIUM_LOG=FILE: Chromium logs (ICE, DTLS, SPED, SCTP) to FILE, with microsecond timestamps (the
    // renderer's WebRTC logs go to stderr only: HeadlessChromium appends it to FILE).
    private static string[] ChromiumArgs(Variant v)
    {
        var args = new List<string>();
        if (v.ChromiumFieldTrials is { } trials) args.Add("--force-fieldtrials=" + trials);
        if (Environment.GetEnvironmentVariable("SETUP_TIME_CHROMIUM_LOG") is { Length: > 0 } log)
        {
            args.Add("--enable-logging=stderr");
            Environment.SetEnvironmentVariable("CHROMIUM_STDERR", log);
            args.Add("--v=0");
            args.Add("--vmodule=" + (Environment.GetEnvironmentVariable("SETUP_TIME_CHROMIUM_VMODULE")
                ?? "*dtls_stun_piggyback*=3,*dtls_transport*=3,*p2p_transport_channel*=2,*connection*=2,*sctp*=2,*dcsctp*=2,*stun_port*=1"));
        }
        return args.ToArray();
    }

    private static async Task<int> MeasureAsync(DelayedLink link, int runs, int delayMs, string[] args)
    {
        var rtt = 2.0 * delayMs;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"set-up time, offer created -> first message echoed, {delayMs} ms each way (RTT {rtt} ms; {link.How}), {runs} runs " +
            $"each, {DateTime.UtcNow:yyyy-MM-dd}"));
        Console.WriteLine("| peers | variant | median ms | min ms | max ms | median in RTT |");
        Console.WriteLine("|---|---|---|---|---|---|");
        void Row(string peers, string variant, List<double> times)
        {
            if (times.Count == 0) { Console.WriteLine($"| {peers} | {variant} | failed | | | |"); return; }
            times.Sort();
            var median = times[times.Count / 2];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {peers} | {variant} | {median:0.0} | {times[0]:0.0} | {times[^1]:0.0} | {median / rtt:0.00} |"));
        }

        var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        await using var dA = new UdpDriver();
        await using var dB = new UdpDriver();
        link.A.CreateInside(() => dA.Bind(new IPEndPoint(IPAddress.Parse(DelayedLink.AddressA), 0)));
        link.B.CreateInside(() => dB.Bind(new IPEndPoint(IPAddress.Parse(DelayedLink.AddressB), 0)));
        var only = args.FirstOrDefault(a => a.StartsWith("--only=", StringComparison.Ordinal))?["--only=".Length..];
        var variants = only is null ? Variants : Variants.Where(v => v.Name.Contains(only, StringComparison.Ordinal)).ToArray();
        var peers = args.FirstOrDefault(a => a.StartsWith("--peers=", StringComparison.Ordinal))?["--peers=".Length..].Split(',');
        bool Runs(string row) => peers is null || peers.Contains(row, StringComparer.Ordinal);
        foreach (var v in Runs("ours") ? variants : [])
        {
            await OursOnceAsync(dA, dB, certificate, v);   // warm-up, not counted
            var times = new List<double>();
            var sped = 0;
            for (var i = 0; i < runs; i++)
            {
                var (ms, bySped) = await OursOnceAsync(dA, dB, certificate, v);
                times.Add(ms);
                if (bySped) sped++;
            }
            Row("ours <-> ours", v.Name, times);
            if (v.Sped) SpedNotes.Add($"ours <-> ours, {v.Name}: DTLS completed in the checks (SPED) in {sped} of {runs} runs");
        }
        if (!args.Contains("--no-chromium"))
        {
            foreach (var v in Runs("chromium-offers") ? variants : [])
            {
                var times = new List<double>();
                try { times = await ChromiumRunsAsync(link, dA, certificate, v, runs); }
                catch (Exception e) when (e is InvalidOperationException or TimeoutException or PlaywrightException)
                {
                    Console.WriteLine($"Chromium, {v.Name}: {e.Message}");
                }
                Row($"Chromium 156 -> ours{(v.ChromiumFieldTrials is null ? "" : " (" + v.ChromiumFieldTrials.TrimEnd('/') + ")")}", v.Name, times);
            }
            foreach (var v in Runs("chromium-answers") ? variants : [])
            {
                var times = new List<double>();
                try { times = await ChromiumAnswersRunsAsync(link, dA, certificate, v, runs); }
                catch (Exception e) when (e is InvalidOperationException or TimeoutException or PlaywrightException or OperationCanceledException)
                {
                    Console.WriteLine($"ours -> Chromium, {v.Name}: {e.Message}");
                }
                Row($"ours -> Chromium 156{(v.ChromiumFieldTrials is null ? "" : " (" + v.ChromiumFieldTrials.TrimEnd('/') + ")")}", v.Name, times);
            }
        }
        if (!args.Contains("--no-node") && Runs("node"))
        {
            var times = NodeRuns(link, runs, out var note);
            if (note is not null) Console.WriteLine("node-datachannel: " + note);
            Row("node-datachannel <-> node-datachannel", "normal (libdatachannel has no SNAP nor SPED)", times);
        }
        foreach (var note in SpedNotes) Console.WriteLine(note);
        return 0;
    }

    private static PeerConnectionOptions Options(DtlsCertificate certificate, IceRole role, Variant v) =>
        v.Configure(new PeerConnectionOptions { Certificate = certificate, Ice = new IceAgentOptions { Role = role } });

    // The answerer's side: echoes every message on the channel it came on, once; true when its DTLS completed by SPED.
    private static Task<bool> EchoOnceAsync(PeerConnection b, UdpDriver driver, CancellationToken token) => Task.Run(async () =>
    {
        var sped = false;
        var log = new List<string>();
        TimeSpan? offerAt = null;
        await foreach (var e in b.Events.ReadAllAsync(token))
        {
            sped |= CompletedBySped(e);
            if (_milestones && e is ConnectionMilestoneReached milestone)
            {
                offerAt ??= milestone.At - milestone.SinceOffer;
                log.Add(string.Create(CultureInfo.InvariantCulture, $"{milestone.Milestone} {milestone.SinceOffer.TotalMilliseconds:0.0}"));
                if (milestone.Milestone == ConnectionMilestone.DtlsConnected) log.Add("(" + milestone.Detail + ")");
            }
            if (_milestones && e is DataChannelMessageReceived received && offerAt is { } o)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  ours (ms after the offer reached us at {DateTime.UtcNow - (driver.Now - o):HH:mm:ss.ffffff} UTC): {string.Join(", ", log)}, message " +
                    $"{(received.At - o).TotalMilliseconds:0.0}"));
            if (e is DataChannelMessageReceived m) { await b.SendAsync(m.Channel, m.Data, m.IsBinary, token); return sped; }
        }
        return sped;
    }, token);

    // Completes at the first message `pc` receives (the echo), with whether its DTLS completed by SPED on the way.
    private static Task<bool> EchoedAsync(PeerConnection pc, CancellationToken token) => Task.Run(async () =>
    {
        var sped = false;
        await foreach (var e in pc.Events.ReadAllAsync(token))
        {
            sped |= CompletedBySped(e);
            if (e is DataChannelMessageReceived) return sped;
        }
        return sped;
    }, token);

    // Ms from the offer to the echo, and whether both sides' DTLS completed by SPED.
    private static async Task<(double Ms, bool Sped)> OursOnceAsync(UdpDriver d1, UdpDriver d2, DtlsCertificate certificate, Variant v)
    {
        await using var a = new PeerConnection(d1, Options(certificate, IceRole.Controlling, v));
        await using var b = new PeerConnection(d2, Options(certificate, IceRole.Controlled, v));
        using var cts = new CancellationTokenSource(Patience);
        var echo = EchoOnceAsync(b, d2, cts.Token);
        var echoed = EchoedAsync(a, cts.Token);
        var channelOptions = v.Negotiated ? new DataChannelOptions { Negotiated = true, Id = NegotiatedId } : null;
        var clock = Stopwatch.StartNew();
        var opened = a.CreateDataChannelAsync("setup", channelOptions, cts.Token);
        var answererOpened = v.Negotiated ? b.CreateDataChannelAsync("setup", channelOptions, cts.Token) : Task.FromResult<DataChannel>(null!);
        var offer = await a.CreateOfferAsync(cts.Token);
        var answer = await b.CreateAnswerAsync(offer, cts.Token);
        await a.SetRemoteDescriptionAsync(answer, cts.Token);
        var channel = await opened;
        await a.SendAsync(channel, "ping", cts.Token);
        var spedA = await echoed;
        var ms = clock.Elapsed.TotalMilliseconds;
        await answererOpened;
        var spedB = await echo;
        return (ms, spedA && spedB);
    }

    // Chromium in B offers (t0 just before createOffer), sends "ping" when its channel opens and records the echo.
    private const string OfferScript = """
        async ({ negotiated, id }) => {
          const pc = new RTCPeerConnection({ iceServers: [] });
          window.pc = pc;
          const t0 = performance.now();
          const ch = pc.createDataChannel('setup', negotiated ? { negotiated: true, id } : undefined);
          window.echo = new Promise(r => { ch.onmessage = () => r(performance.now()); });
          ch.onopen = () => ch.send('ping');
          await pc.setLocalDescription(await pc.createOffer());
          window.t0 = t0;
          window.tLocal = performance.now();
          await new Promise(r => {
            if (pc.iceGatheringState === 'complete') r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r();
          });
          return pc.localDescription.sdp;
        }
        """;

    private const string AnswerScript = """
        async (answer) => {
          const tAnswer = performance.now();
          await window.pc.setRemoteDescription({ type: 'answer', sdp: answer });
          const tEcho = await Promise.race([window.echo, new Promise(r => setTimeout(() => r(-1), 15000))]);
          window.pc.close();
          return [window.t0, window.tLocal, tAnswer, tEcho, performance.timeOrigin];
        }
        """;

    private static async Task<List<double>> ChromiumRunsAsync(DelayedLink link, UdpDriver dA, DtlsCertificate certificate, Variant v, int runs)
    {
        await using var chromium = await HeadlessChromium.LaunchAsync(link.B, false, ChromiumArgs(v));
        var page = await chromium.Browser.NewPageAsync();
        var times = new List<double>();
        var sped = 0;
        for (var i = 0; i < runs + 1; i++)   // the first is a warm-up, not counted
        {
            await using var ours = new PeerConnection(dA, Options(certificate, IceRole.Controlled, v));
            using var cts = new CancellationTokenSource(Patience);
            var echo = EchoOnceAsync(ours, dA, cts.Token);
            if (v.Negotiated) _ = ours.CreateDataChannelAsync("setup", new DataChannelOptions { Negotiated = true, Id = NegotiatedId }, cts.Token);
            var offer = await page.EvaluateAsync<string>(OfferScript, new { negotiated = v.Negotiated, id = NegotiatedId });
            if (v.ChromiumFieldTrials?.Contains("Snap", StringComparison.Ordinal) == true && !offer.Contains("a=sctp-init:", StringComparison.Ordinal))
                throw new InvalidOperationException("Chromium's offer has no a=sctp-init although the field trial is on");
            if (v.Sped && !offer.Contains("sped", StringComparison.Ordinal))
                throw new InvalidOperationException("Chromium's offer has no SPED ice-option although the field trial is on");
            var answer = await ours.CreateAnswerAsync(offer, cts.Token);
            var t = await page.EvaluateAsync<double[]>(AnswerScript, answer);
            if (t[3] < 0) throw new TimeoutException($"run {i}: no echo within 15 s");
            var bySped = await echo;
            if (_milestones)
            {
                static string Utc(double epochMs) => DateTimeOffset.FromUnixTimeMilliseconds(0).AddMilliseconds(epochMs).UtcDateTime.ToString("HH:mm:ss.ffffff",
                    CultureInfo.InvariantCulture);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  Chromium run {i}: answer applied at {Utc(t[4] + t[2])} UTC, echo at {Utc(t[4] + t[3])} UTC ({t[3] - t[2]:0.0} ms after; counted " +
                    $"{t[3] - t[0] - (t[2] - t[1]):0.0} ms)"));
            }
            // Offer created -> echo, less the signaling hop (local description set -> answer being applied).
            if (i > 0)
            {
                times.Add(t[3] - t[0] - (t[2] - t[1]));
                if (bySped) sped++;
            }
        }
        if (v.Sped) SpedNotes.Add($"Chromium -> ours, {v.Name}: our DTLS completed in the checks (SPED) in {sped} of {runs} runs");
        return times;
    }

    // Chromium in B answers and echoes on every channel (the in-band one it is given, or the negotiated one it makes).
    private const string ChromiumAnswerScript = """
        async ({ offer, negotiated, id }) => {
          if (window.pc) window.pc.close();
          const pc = new RTCPeerConnection({ iceServers: [] });
          window.pc = pc;
          const echo = ch => { ch.onmessage = m => ch.send(m.data); };
          pc.ondatachannel = e => echo(e.channel);
          if (negotiated) echo(pc.createDataChannel('setup', { negotiated: true, id }));
          await pc.setRemoteDescription({ type: 'offer', sdp: offer });
          await pc.setLocalDescription(await pc.createAnswer());
          await new Promise(r => {
            if (pc.iceGatheringState === 'complete') r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r();
          });
          return pc.localDescription.sdp;
        }
        """;

    // Ours in A offers; the time runs from before CreateOffer to the echo, less the signaling hop (offer made -> answer
    // back from the page, which includes Chromium's gathering wait).
    private static async Task<List<double>> ChromiumAnswersRunsAsync(DelayedLink link, UdpDriver dA, DtlsCertificate certificate, Variant v, int runs)
    {
        await using var chromium = await HeadlessChromium.LaunchAsync(link.B, false, ChromiumArgs(v));
        var page = await chromium.Browser.NewPageAsync();
        var times = new List<double>();
        var sped = 0;
        for (var i = 0; i < runs + 1; i++)   // the first is a warm-up, not counted
        {
            await using var ours = new PeerConnection(dA, Options(certificate, IceRole.Controlling, v));
            using var cts = new CancellationTokenSource(Patience);
            var echoed = EchoedAsync(ours, cts.Token);
            var channelOptions = v.Negotiated ? new DataChannelOptions { Negotiated = true, Id = NegotiatedId } : null;
            var clock = Stopwatch.StartNew();
            var opened = ours.CreateDataChannelAsync("setup", channelOptions, cts.Token);
            var offer = await ours.CreateOfferAsync(cts.Token);
            var offered = clock.Elapsed.TotalMilliseconds;
            var answer = await page.EvaluateAsync<string>(ChromiumAnswerScript, new { offer, negotiated = v.Negotiated, id = NegotiatedId });
            var answered = clock.Elapsed.TotalMilliseconds;
            if (v.ChromiumFieldTrials?.Contains("Snap", StringComparison.Ordinal) == true && !answer.Contains("a=sctp-init:", StringComparison.Ordinal))
                throw new InvalidOperationException("Chromium's answer has no a=sctp-init although the field trial is on");
            if (v.Sped && !answer.Contains("sped", StringComparison.Ordinal))
                throw new InvalidOperationException("Chromium's answer has no SPED ice-option although the field trial is on");
            await ours.SetRemoteDescriptionAsync(answer, cts.Token);
            await ours.SendAsync(await opened, "ping", cts.Token);
            var bySpedRun = await echoed;
            if (i > 0)
            {
                times.Add(clock.Elapsed.TotalMilliseconds - (answered - offered));
                if (bySpedRun) sped++;
            }
        }
        if (v.Sped) SpedNotes.Add($"ours -> Chromium, {v.Name}: our DTLS completed in the checks (SPED) in {sped} of {runs} runs");
        await page.EvaluateAsync("() => window.pc && window.pc.close()");
        return times;
    }

    private static List<double> NodeRuns(DelayedLink link, int runs, out string? outNote)
    {
        string? note = null;
        outNote = null;
        var dir = Path.Combine(AppContext.BaseDirectory, "node");
        if (!Directory.Exists(Path.Combine(dir, "node_modules", "node-datachannel")))
        {
            Console.WriteLine("node-datachannel: npm install (needs Node.js 20 and npm) ...");
            using var npm = Process.Start(new ProcessStartInfo("npm", "install --no-audit --no-fund")
            {
                WorkingDirectory = dir,
                RedirectStandardOutput = true,
                RedirectStandardError = true
            })!;
            if (!npm.WaitForExit(180_000)) { npm.Kill(true); outNote = "npm install took over 3 minutes"; return []; }
        }
        Process Start(NetworkNamespace ns, string args) =>
            Process.Start(new ProcessStartInfo("ip", $"netns exec {ns.Name} node dc-setup.mjs {args}")
            {
                WorkingDirectory = dir,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            }) ?? throw new InvalidOperationException("could not start node");
        using var offerer = Start(link.B, $"offer {DelayedLink.AddressB} {runs}");
        using var answerer = Start(link.A, $"answer {DelayedLink.AddressA}");
        List<double>? result = null;
        // Relay each line to the other process; the offerer's result line ends the run.
        var toAnswerer = Task.Run(() =>
        {
            while (offerer.StandardOutput.ReadLine() is { } line)
            {
                if (line.Contains("\"kind\":\"result\"", StringComparison.Ordinal))
                {
                    using var json = JsonDocument.Parse(line);
                    result = json.RootElement.GetProperty("ms").EnumerateArray().Where(e => e.ValueKind == JsonValueKind.Number)
                        .Select(e => e.GetDouble()).ToList();
                    var failed = json.RootElement.GetProperty("ms").GetArrayLength() - result.Count;
                    if (failed > 0) note = $"{failed} runs got no echo within 15 s";
                    return;
                }
                answerer.StandardInput.WriteLine(line);
                answerer.StandardInput.Flush();
            }
        });
        var toOfferer = Task.Run(() =>
        {
            while (answerer.StandardOutput.ReadLine() is { } line)
            {
                try { offerer.StandardInput.WriteLine(line); offerer.StandardInput.Flush(); }
                catch (IOException) { return; }
            }
        });
        if (!toAnswerer.Wait(TimeSpan.FromSeconds(20 * (runs + 1)))) note = "timed out";
        foreach (var p in new[] { offerer, answerer })
        {
            try { p.StandardInput.Close(); } catch (IOException) { }
            if (!p.WaitForExit(5000)) p.Kill(entireProcessTree: true);
        }
        toOfferer.Wait(TimeSpan.FromSeconds(5));
        if (result is null) note ??= "no result: " + offerer.StandardError.ReadToEnd().Trim();
        outNote = note;
        return result ?? [];
    }
}
