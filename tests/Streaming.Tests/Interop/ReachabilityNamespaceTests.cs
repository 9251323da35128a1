using System.Runtime.Versioning;
using System.Text.Json;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// The main program reached from another machine: two network namespaces joined by a veth pair (10.77.N.1 and
/// 10.77.N.2, nothing else but each one's own loopback), the echo server (EchoServer.dll, <c>ip netns exec</c>) in one,
/// headless Chromium in the other. The page comes from the server's veth address, the answer's candidates are that
/// address, and a data channel echoes over the veth link: no loopback anywhere between them.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class ReachabilityNamespaceTests(ITestOutputHelper output)
{
    // The page's side: WHIP (POST /whip, candidates by PATCH) or /signal (offer, answer, candidates as JSON), then 20
    // echoes on the data channel, then the selected pair's addresses from getStats.
    private const string Script = """
        async (mode) => {
          const out = { echoes: [] };
          const pc = new RTCPeerConnection({ iceServers: [] });
          const control = pc.createDataChannel('control');
          const data = pc.createDataChannel('data');
          control.onmessage = e => { const m = JSON.parse(e.data); if (m.type === 'ping') control.send(JSON.stringify({ type: 'pong', id: m.id })); };
          data.onmessage = e => out.echoes.push(e.data);
          const gathered = new Promise(ok => { pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') ok(); }; setTimeout(ok, 5000); });
          await pc.setLocalDescription(await pc.createOffer());
          await gathered; // the offer carries the browser's candidates: no trickle needed either way
          out.offer = pc.localDescription.sdp;
          let answer;
          if (mode === 'whip') {
            const r = await fetch('/whip', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
            out.status = r.status; answer = await r.text();
          } else {
            const ws = new WebSocket(location.origin.replace('http', 'ws') + '/signal');
            await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error('signal socket failed')); });
            const reply = new Promise(ok => { ws.onmessage = e => { const m = JSON.parse(e.data); if (m.type === 'answer' || m.type === 'error') ok(m); }; });
            ws.send(JSON.stringify({ type: 'offer', sdp: pc.localDescription.sdp }));
            const m = await reply; out.status = m.type === 'answer' ? 200 : m.error; answer = m.sdp;
          }
          out.answer = answer;
          await pc.setRemoteDescription({ type: 'answer', sdp: answer });
          await new Promise((ok, fail) => { data.onopen = ok; setTimeout(() => fail(new Error('the data channel did not open: ' + pc.connectionState + ' / ' + pc.iceConnectionState)), 20000); });
          for (let i = 0; i < 20; i++) data.send('m' + i);
          await new Promise((ok, fail) => { const t = setInterval(() => { if (out.echoes.length >= 20) { clearInterval(t); ok(); } }, 20); setTimeout(() => fail(new Error('echoes: ' + out.echoes.length)), 10000); });
          const stats = await pc.getStats(); let pairId = null;
          stats.forEach(s => { if (s.type === 'transport') pairId = s.selectedCandidatePairId; });
          const pair = pairId ? stats.get(pairId) : null;
          if (pair) { out.local = stats.get(pair.localCandidateId).address; out.remote = stats.get(pair.remoteCandidateId).address;
                      out.remoteType = stats.get(pair.remoteCandidateId).candidateType; }
          pc.close();
          return JSON.stringify(out);
        }
        """;

    [Fact]
    public Task ChromiumOnAnotherMachineEchoesOverWhipWithTheServerBoundToEveryAddress() =>
        RunAsync("whip", subnet => $"http://0.0.0.0:8080");

    [Fact]
    public Task ChromiumOnAnotherMachineEchoesOverSignalingWithTheServerBoundToTheAddressUrlsNames() =>
        RunAsync("signal", subnet => $"http://{subnet}.1:8080");

    private async Task RunAsync(string mode, Func<string, string> urls)
    {
        var subnet = $"10.77.{Random.Shared.Next(1, 250)}";
        string serverAddress = subnet + ".1", browserAddress = subnet + ".2";
        using var serverNs = NetworkNamespace.Create("rtc-srv");
        using var browserNs = NetworkNamespace.Create("rtc-brw");
        serverNs.ConnectVeth(browserNs, serverAddress, browserAddress);
        browserNs.AddDefaultRoute(serverAddress);
        using var server = await EchoServerProcess.StartAtAsync(serverNs, $"http://{serverAddress}:8080", [], urls(subnet));
        try
        {
            // Every address of the server's namespace but loopback is the veth one: the UDP port is bound there only.
            Assert.Contains(server.Output, l => l.Contains($"WebRTC media on UDP {serverAddress}:50000", StringComparison.Ordinal) && !l.Contains("127.0.0.1", StringComparison.Ordinal));
            await using var chromium = await HeadlessChromium.LaunchAsync(browserNs);
            var page = await chromium.Browser.NewPageAsync();
            await page.GotoAsync(server.Url + "/");
            var json = await page.EvaluateAsync<string>(Script, mode);
            output.WriteLine(json);
            var r = JsonDocument.Parse(json).RootElement;
            Assert.Equal(mode == "whip" ? 201 : 200, r.GetProperty("status").GetInt32());
            Assert.Equal(Enumerable.Range(0, 20).Select(i => "m" + i), r.GetProperty("echoes").EnumerateArray().Select(e => e.GetString()));
            var candidates = r.GetProperty("answer").GetString()!.Split("\r\n").Where(l => l.StartsWith("a=candidate:", StringComparison.Ordinal)).ToArray();
            Assert.NotEmpty(candidates);
            Assert.All(candidates, c => Assert.Contains($" {serverAddress} 50000 typ host", c, StringComparison.Ordinal));
            Assert.Contains($" {browserAddress} ", r.GetProperty("offer").GetString(), StringComparison.Ordinal);
            Assert.Equal(serverAddress, r.GetProperty("remote").GetString());
            Assert.Equal(browserAddress, r.GetProperty("local").GetString());
            Assert.Equal("host", r.GetProperty("remoteType").GetString());
        }
        catch
        {
            output.WriteLine(string.Join("\n", server.Output));
            throw;
        }
    }
}
