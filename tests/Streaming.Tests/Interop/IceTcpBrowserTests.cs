using System.Runtime.Versioning;
using System.Text.Json;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// Chromium behind a network that drops all UDP reaches our echo server over ICE-TCP (RFC
/// 6544). Two namespaces joined by a veth pair (10.79.N.1 the server, 10.79.N.2 the browser); nftables in the
/// browser's namespace drops every UDP packet in and out. The answer carries the server's passive TCP host
/// candidate next to the UDP one; Chromium's active TCP candidate connects to it, the data channel echoes, and
/// getStats' selected pair is TCP on both ends. With the main program's page and Chromium's fake devices, video and
/// audio echo over the same TCP pair and Chromium decodes the video.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class IceTcpBrowserTests(ITestOutputHelper output)
{
    private const string Script = """
        async () => {
          const out = { echoes: [] };
          const pc = new RTCPeerConnection({ iceServers: [] });
          const control = pc.createDataChannel('control');
          const data = pc.createDataChannel('data');
          control.onmessage = e => { const m = JSON.parse(e.data); if (m.type === 'ping') control.send(JSON.stringify({ type: 'pong', id: m.id })); };
          data.onmessage = e => out.echoes.push(e.data);
          const gathered = new Promise(ok => { pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') ok(); };
            setTimeout(ok, 5000); });
          const started = performance.now();
          await pc.setLocalDescription(await pc.createOffer());
          await gathered;
          out.offer = pc.localDescription.sdp;
          const r = await fetch('/whip', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
          out.status = r.status;
          out.answer = await r.text();
          await pc.setRemoteDescription({ type: 'answer', sdp: out.answer });
          await new Promise((ok, fail) => { data.onopen = ok;
            setTimeout(() => fail(new Error('the data channel did not open: ' + pc.connectionState + ' / ' + pc.iceConnectionState)), 30000); });
          out.openMs = performance.now() - started;
          for (let i = 0; i < 50; i++) data.send('m' + i);
          await new Promise((ok, fail) => { const t = setInterval(() => { if (out.echoes.length >= 50) { clearInterval(t); ok(); } }, 20);
            setTimeout(() => fail(new Error('echoes: ' + out.echoes.length)), 15000); });
          const stats = await pc.getStats(); let pairId = null;
          stats.forEach(s => { if (s.type === 'transport') pairId = s.selectedCandidatePairId; });
          const pair = pairId ? stats.get(pairId) : null;
          if (pair) {
            const l = stats.get(pair.localCandidateId), rc = stats.get(pair.remoteCandidateId);
            out.localProtocol = l.protocol; out.localTcpType = l.tcpType || null; out.local = l.address;
            out.remoteProtocol = rc.protocol; out.remoteTcpType = rc.tcpType || null; out.remote = rc.address; out.remotePort = rc.port;
          }
          pc.close();
          return JSON.stringify(out);
        }
        """;

    [Fact]
    public Task ChromiumWhoseNetworkDropsUdpEchoesOverIceTcpAndSelectsATcpPair() => RunAsync(dropUdp: true);

    /// <summary>The same without the nftables rules: UDP is preferred (the figure next to ICE-TCP's, README).</summary>
    [Fact]
    public Task ChromiumWithUdpOpenSelectsTheUdpPairThoughTheAnswerOffersTcpToo() => RunAsync(dropUdp: false);

    // The main program's own page (camera and microphone from Chromium's fake devices, echoed back by the server):
    // once it decoded frames, the selected pair and the inbound video of its connection.
    private const string MediaStatsScript = """
        async () => {
          const out = {};
          const stats = await window.app.pc.getStats(); let pairId = null;
          stats.forEach(s => {
            if (s.type === 'transport') pairId = s.selectedCandidatePairId;
            if (s.type === 'inbound-rtp' && s.kind === 'video') { out.framesDecoded = s.framesDecoded || 0; out.packetsReceived = s.packetsReceived || 0;
              out.packetsLost = s.packetsLost || 0; out.width = s.frameWidth || 0; }
            if (s.type === 'inbound-rtp' && s.kind === 'audio') out.audioPackets = s.packetsReceived || 0;
          });
          const pair = pairId ? stats.get(pairId) : null;
          if (pair) {
            const l = stats.get(pair.localCandidateId), rc = stats.get(pair.remoteCandidateId);
            out.localProtocol = l.protocol; out.localTcpType = l.tcpType || null;
            out.remoteProtocol = rc.protocol; out.remote = rc.address; out.remotePort = rc.port;
          }
          return JSON.stringify(out);
        }
        """;

    /// <summary>
    /// Media over ICE-TCP: the main program's page with Chromium's fake camera and microphone, on a network that drops
    /// all UDP. Its video goes to the server over the TCP pair, comes back echoed (depacketized, re-packetized) on the
    /// same connection, and Chromium decodes it.
    /// </summary>
    [Fact]
    public async Task ChromiumWhoseNetworkDropsUdpGetsItsVideoEchoedOverIceTcpAndDecodesIt()
    {
        var (serverNs, browserNs, serverAddress) = MakeNetwork(dropUdp: true);
        using var _s = serverNs;
        using var _b = browserNs;
        using var server = await EchoServerProcess.StartAtAsync(serverNs, $"http://{serverAddress}:8080", []);
        try
        {
            // An http:// page of a 10.x address is no secure context, and getUserMedia needs one: Chromium's flag for a test origin.
            await using var chromium = await HeadlessChromium.LaunchAsync(browserNs, fakeMedia: true,
                "--unsafely-treat-insecure-origin-as-secure=" + server.Url);
            var page = await chromium.Browser.NewPageAsync();
            page.Console += (_, m) => output.WriteLine("browser: " + m.Text);
            await page.GotoAsync(server.Url + "/");
            await page.WaitForFunctionAsync("() => document.getElementById('state').textContent === 'connected'", null, new() { Timeout = 45_000 });
            await page.WaitForFunctionAsync("() => window.app.framesDecoded >= 20", null, new() { Timeout = 45_000 });
            var json = await page.EvaluateAsync<string>(MediaStatsScript);
            output.WriteLine(json);
            var r = JsonDocument.Parse(json).RootElement;
            Assert.True(r.GetProperty("framesDecoded").GetInt32() >= 20, json);
            Assert.True(r.GetProperty("width").GetInt32() > 0, json);
            Assert.True(r.GetProperty("audioPackets").GetInt32() > 0, json);
            Assert.Equal("tcp", r.GetProperty("localProtocol").GetString());
            Assert.Equal("active", r.GetProperty("localTcpType").GetString());
            Assert.Equal("tcp", r.GetProperty("remoteProtocol").GetString());
            Assert.Equal(serverAddress, r.GetProperty("remote").GetString());
            Assert.Equal(50000, r.GetProperty("remotePort").GetInt32());
        }
        catch
        {
            output.WriteLine(string.Join("\n", server.Output));
            throw;
        }
    }

    // Two namespaces on a veth pair (the server's and the browser's), nftables dropping all UDP in the browser's when asked.
    private static (NetworkNamespace Server, NetworkNamespace Browser, string ServerAddress) MakeNetwork(bool dropUdp)
    {
        const string nft = "/usr/sbin/nft";
        if (!File.Exists(nft)) throw new InvalidOperationException($"{nft} is missing: install the Debian package 'nftables'.");
        var subnet = $"10.79.{Random.Shared.Next(1, 250)}";
        string serverAddress = subnet + ".1", browserAddress = subnet + ".2";
        var serverNs = NetworkNamespace.Create("rtc-srv");
        NetworkNamespace? browserNs = null;
        try
        {
            browserNs = NetworkNamespace.Create("rtc-brw");
            serverNs.ConnectVeth(browserNs, serverAddress, browserAddress);
            browserNs.AddDefaultRoute(serverAddress);
            if (dropUdp)
            {
                var rules = Path.Combine(Path.GetTempPath(), $"{browserNs.Name}.nft");
                File.WriteAllText(rules, """
                    table inet noudp {
                      chain out { type filter hook output priority 0; policy accept; meta l4proto udp counter drop; }
                      chain in { type filter hook input priority 0; policy accept; meta l4proto udp counter drop; }
                    }
                    """);
                try { browserNs.Exec(nft, "-f", rules); }
                finally { File.Delete(rules); }
            }
            return (serverNs, browserNs, serverAddress);
        }
        catch
        {
            browserNs?.Dispose();
            serverNs.Dispose();
            throw;
        }
    }

    private async Task RunAsync(bool dropUdp)
    {
        var (serverNsMade, browserNsMade, serverAddress) = MakeNetwork(dropUdp);
        using var serverNs = serverNsMade;
        using var browserNs = browserNsMade;

        using var server = await EchoServerProcess.StartAtAsync(serverNs, $"http://{serverAddress}:8080", []);
        try
        {
            Assert.Contains(server.Output, l => l.Contains($"ICE-TCP (RFC 6544, passive) on TCP {serverAddress}:50000", StringComparison.Ordinal));
            await using var chromium = await HeadlessChromium.LaunchAsync(browserNs);
            var page = await chromium.Browser.NewPageAsync();
            await page.GotoAsync(server.Url + "/");
            var json = await page.EvaluateAsync<string>(Script);
            output.WriteLine(json);
            var r = JsonDocument.Parse(json).RootElement;
            Assert.Equal(201, r.GetProperty("status").GetInt32());
            var answer = r.GetProperty("answer").GetString()!;
            Assert.Contains($" tcp ", answer, StringComparison.Ordinal);
            Assert.Contains($" {serverAddress} 50000 typ host tcptype passive", answer, StringComparison.Ordinal);
            Assert.Contains($" udp ", answer, StringComparison.Ordinal);   // UDP next to TCP
            // Chromium does not signal its active TCP candidate (port 9) in the offer: it connects to our passive one,
            // and we learn its end of the connection as a peer-reflexive candidate from the first check.
            Assert.Equal(Enumerable.Range(0, 50).Select(i => "m" + i), r.GetProperty("echoes").EnumerateArray().Select(e => e.GetString()));
            var protocol = dropUdp ? "tcp" : "udp";
            Assert.Equal(protocol, r.GetProperty("localProtocol").GetString());
            Assert.Equal(protocol, r.GetProperty("remoteProtocol").GetString());
            if (dropUdp) Assert.Equal("active", r.GetProperty("localTcpType").GetString());
            Assert.Equal(serverAddress, r.GetProperty("remote").GetString());
            Assert.Equal(50000, r.GetProperty("remotePort").GetInt32());
            output.WriteLine($"data channel open {r.GetProperty("openMs").GetDouble():F0} ms after createOffer (gathering included), over {protocol}");
        }
        catch
        {
            output.WriteLine(string.Join("\n", server.Output));
            throw;
        }
    }
}
