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
          const gathered = new Promise(ok => { pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') ok(); };
            setTimeout(ok, 5000); });
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
          await new Promise((ok, fail) => { data.onopen = ok;
            setTimeout(() => fail(new Error('the data channel did not open: ' + pc.connectionState + ' / ' + pc.iceConnectionState)), 20000); });
          for (let i = 0; i < 20; i++) data.send('m' + i);
          await new Promise((ok, fail) => { const t = setInterval(() => { if (out.echoes.length >= 20) { clearInterval(t); ok(); } }, 20);
            setTimeout(() => fail(new Error('echoes: ' + out.echoes.length)), 10000); });
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

    [Fact]
    public async Task ChromiumBeyondAOneToOneNatReachesTheServerThroughThePublicAddressItAnnounces()
    {
        // server (10.78.N.2) -- router (10.78.N.1 | 192.168.78.1, and 192.168.78.10 mapped 1:1 to the server by
        // nftables) -- browser (192.168.78.2). The router forwards nothing from outside that it did not map: the
        // server's host candidate is unreachable, only the public address it announces (--public-address) works
        // (without the option the data channel does not open).
        const string nft = "/usr/sbin/nft";
        if (!File.Exists(nft)) throw new InvalidOperationException($"{nft} is missing: install the Debian package 'nftables'.");
        var inside = $"10.78.{Random.Shared.Next(1, 250)}";
        string server = inside + ".2", router = inside + ".1";
        const string publicAddress = "192.168.78.10", browser = "192.168.78.2";
        using var serverNs = NetworkNamespace.Create("rtc-srv");
        using var routerNs = NetworkNamespace.Create("rtc-nat");
        using var browserNs = NetworkNamespace.Create("rtc-brw");
        routerNs.ConnectVeth(serverNs, router, server, "in0", "eth0");
        routerNs.ConnectVeth(browserNs, "192.168.78.1", browser, "out0", "eth0");
        routerNs.Exec("ip", "addr", "add", publicAddress + "/24", "dev", "out0");
        routerNs.Exec("sysctl", "-qw", "net.ipv4.ip_forward=1");
        serverNs.AddDefaultRoute(router);
        browserNs.AddDefaultRoute("192.168.78.1");
        var rules = Path.Combine(Path.GetTempPath(), $"{routerNs.Name}.nft");
        File.WriteAllText(rules, $$"""
            table ip nat {
              chain pre { type nat hook prerouting priority -100; ip daddr {{publicAddress}} dnat to {{server}}; }
              chain post { type nat hook postrouting priority 100; oifname "out0" ip saddr {{server}} snat to {{publicAddress}}; }
            }
            table ip filter {
              chain passing { type filter hook forward priority 0; policy accept;
                iifname "out0" ct status dnat accept; iifname "out0" ct state established,related accept; iifname "out0" drop; }
            }
            """);
        try { routerNs.Exec(nft, "-f", rules); }
        finally { File.Delete(rules); }

        using var process = await EchoServerProcess.StartAtAsync(serverNs, $"http://{publicAddress}:8080",
            ["--public-address", publicAddress], "http://0.0.0.0:8080");
        try
        {
            await using var chromium = await HeadlessChromium.LaunchAsync(browserNs);
            var page = await chromium.Browser.NewPageAsync();
            await page.GotoAsync(process.Url + "/");
            var json = await page.EvaluateAsync<string>(Script, "whip");
            output.WriteLine(json);
            var r = JsonDocument.Parse(json).RootElement;
            Assert.Equal(201, r.GetProperty("status").GetInt32());
            Assert.Equal(Enumerable.Range(0, 20).Select(i => "m" + i), r.GetProperty("echoes").EnumerateArray().Select(e => e.GetString()));
            var candidates = r.GetProperty("answer").GetString()!.Split("\r\n").Where(l => l.StartsWith("a=candidate:", StringComparison.Ordinal)).ToArray();
            Assert.Contains(candidates, c => c.EndsWith($" {server} 50000 typ host", StringComparison.Ordinal));
            Assert.Contains(candidates, c => c.EndsWith($" {publicAddress} 50000 typ srflx raddr {server} rport 50000", StringComparison.Ordinal));
            Assert.Equal(publicAddress, r.GetProperty("remote").GetString());
            Assert.Equal("srflx", r.GetProperty("remoteType").GetString());
            Assert.Equal(browser, r.GetProperty("local").GetString());
        }
        catch
        {
            output.WriteLine(string.Join("\n", process.Output));
            throw;
        }
    }

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
            Assert.Contains(server.Output, l => l.Contains($"WebRTC media on UDP {serverAddress}:50000", StringComparison.Ordinal)
                && !l.Contains("127.0.0.1", StringComparison.Ordinal));
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
