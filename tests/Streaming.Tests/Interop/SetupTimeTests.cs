using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using System.Text.Json;
using Xunit.Abstractions;
using Transport.TestKit;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// Independent clients (Firefox ESR's NSS/nICEr stack, node-datachannel's libdatachannel) offer a data channel to
/// our answering peer connection over a WHIP-like POST inside a namespace with only loopback, then send one message
/// that must come back echoed. Each prints its set-up times (offer created -> channel open); with the environment
/// variable TRANSPORT_SETUP_RUNS=20 they are the set-up measurement of docs/dtls.md.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class SetupTimeTests(ITestOutputHelper output)
{
    private const string NodeVersion = "0.33.4";

    private static int Runs => int.TryParse(Environment.GetEnvironmentVariable("TRANSPORT_SETUP_RUNS"), out var n) && n is > 0 and <= 100 ? n : 3;

    // Each run: a new connection with one data channel, gathering complete, POST /whip, answer applied; times from
    // before createOffer to the channel's open and to the echo of one message. The report goes to POST /result.
    private static string FirefoxPage(int runs) => $$"""
        <!doctype html><html><body><script>
        'use strict';
        const once = () => new Promise(async resolve => {
          const pc = new RTCPeerConnection({ iceServers: [] });
          const dc = pc.createDataChannel('echo');
          const result = {};
          const timer = setTimeout(() => { pc.close(); resolve({ error: 'not open and echoed within 10 s: ' + pc.connectionState }); }, 10000);
          const t0 = performance.now();
          dc.onopen = () => { result.openMs = performance.now() - t0; dc.send('ping'); };
          dc.onmessage = () => { result.echoMs = performance.now() - t0; clearTimeout(timer); pc.close(); resolve(result); };
          try {
            await pc.setLocalDescription(await pc.createOffer());
            await new Promise(ok => { if (pc.iceGatheringState === 'complete') ok();
              else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok(); });
            const r = await fetch('/whip', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
            const answer = await r.text();
            result.answerMs = performance.now() - t0;
            await pc.setRemoteDescription({ type: 'answer', sdp: answer });
          } catch (e) { clearTimeout(timer); pc.close(); resolve({ error: String(e) }); }
        });
        (async () => {
          const out = { client: navigator.userAgent, runs: [] };
          for (let i = 0; i < {{runs}}; i++) { out.runs.push(await once()); await new Promise(ok => setTimeout(ok, 50)); }
          await fetch('/result', { method: 'POST', body: JSON.stringify(out) });
        })();
        </script></body></html>
        """;

    [Fact]
    public async Task FirefoxOffersADataChannelAndGetsItsMessageEchoed()
    {
        var runs = Runs;
        using var ns = NetworkNamespace.Create("rtc-ff");
        await using var server = SetupTimingServer.Start(ns, FirefoxPage(runs));
        using var firefox = HeadlessFirefox.Launch(ns, server.Url + "/page");
        var report = await WaitForReportAsync(server, TimeSpan.FromSeconds(60 + 12 * runs), () => firefox.IsRunning, firefox.Output);
        Check("firefox", report, runs, server);
    }

    [Fact]
    public async Task NodeDataChannelOffersADataChannelAndGetsItsMessageEchoed()
    {
        var runs = Runs;
        var dir = PrepareNodeDirectory();
        using var ns = NetworkNamespace.Create("rtc-ndc");
        await using var server = SetupTimingServer.Start(ns, "");
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = dir };
        foreach (var a in (string[])["netns", "exec", ns.Name, Find("node"), "setup-client.mjs", server.Url, runs.ToString(CultureInfo.InvariantCulture)])
            start.ArgumentList.Add(a);
        using var node = Process.Start(start) ?? throw new InvalidOperationException("could not start node");
        try
        {
            var stdout = node.StandardOutput.ReadToEndAsync();
            var stderr = node.StandardError.ReadToEndAsync();
            await node.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30 + 12 * runs));
            output.WriteLine("node stderr: " + await stderr);
            Check("node-datachannel", await stdout, runs, server);
        }
        finally
        {
            if (!node.HasExited) node.Kill(entireProcessTree: true);
        }
    }

    private async Task<string> WaitForReportAsync(SetupTimingServer server, TimeSpan patience, Func<bool> alive, IEnumerable<string> log)
    {
        var deadline = Stopwatch.StartNew();
        while (!server.Result.IsCompleted && deadline.Elapsed < patience && alive())
            await Task.WhenAny(server.Result, Task.Delay(500));
        if (!server.Result.IsCompleted)
        {
            foreach (var line in log.Take(200)) output.WriteLine(line);
            Assert.Fail($"no report after {deadline.Elapsed.TotalSeconds:0} s (client running: {alive()}, answered {server.Answered})");
        }
        return await server.Result;
    }

    private void Check(string client, string report, int runs, SetupTimingServer server)
    {
        output.WriteLine(report);
        using var json = JsonDocument.Parse(report);
        var results = json.RootElement.GetProperty("runs").EnumerateArray().ToList();
        var errors = results.Where(r => r.TryGetProperty("error", out _)).Select(r => r.GetProperty("error").GetString()).ToList();
        var open = results.Where(r => r.TryGetProperty("openMs", out _)).Select(r => r.GetProperty("openMs").GetDouble()).Order().ToList();
        // After the answer: what the DTLS role and retransmission timing decide (gathering and HTTP come before it).
        var afterAnswer = results.Where(r => r.TryGetProperty("openMs", out _) && r.TryGetProperty("answerMs", out _))
            .Select(r => r.GetProperty("openMs").GetDouble() - r.GetProperty("answerMs").GetDouble()).Order().ToList();
        if (open.Count > 0)
            output.WriteLine(FormattableString.Invariant(
                $"{client}: {open.Count} set-ups, offer created -> channel open: median {Median(open):0.0} ms, min {open[0]:0.0} ms, max {open[^1]:0.0} ms; ") +
                FormattableString.Invariant($"over 500 ms: {open.Count(x => x > 500)}; ") +
                FormattableString.Invariant($"answer received -> channel open: median {Median(afterAnswer):0.0} ms, max {afterAnswer[^1]:0.0} ms"));
        Assert.Empty(errors);
        Assert.Equal(runs, results.Count);
        Assert.All(results, r => Assert.True(r.TryGetProperty("echoMs", out _), "a run without its echo: " + r));
        Assert.Equal(runs, server.Answered);
    }

    private static double Median(List<double> sorted) =>
        sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;

    private static string Find(string name) => NodePackages.Find(name);

    // npm install of node-datachannel into a temp directory once per version.
    private static string PrepareNodeDirectory() => NodePackages.Prepare("transport-setup-node-datachannel-" + NodeVersion,
        """{ "name": "transport-setup-client", "private": true, "version": "1.0.0", "type": "module", "dependencies": """ +
        $$"""{ "node-datachannel": "{{NodeVersion}}" } }""",
        NodePackages.RepositoryPath("tests", "Streaming.Tests", "Interop", "node"), ["setup-client.mjs"]);
}
