using System.Diagnostics;
using System.Runtime.Versioning;
using System.Text.Json;
using Transport.Samples.EchoServer;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// The signaling relay with two Chromium pages: each connects to the main program (the echo server, in this process
/// inside a namespace with only loopback) over WHIP with a control channel, joins a room over it, and one calls the
/// other through the server (offer, answer, trickled candidates, then an ICE restart, all as relayed signals). Their
/// own data channel carries messages both ways on a pair that does not involve the server's address; when one closes
/// its connection to the server, the other is told.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class RelayBrowserTests(ITestOutputHelper output)
{
    // Connects to the server (WHIP, control + data channels), joins the room, returns the relay id. Everything the
    // relay says lands in R.inbox; signals go to R.onSignal in order; R.p2p is the connection to the other page.
    private const string JoinScript = """
        async (room) => {
          const R = window.R = { inbox: [], p2pMessages: [], chain: Promise.resolve(), pending: [] };
          const server = new RTCPeerConnection({ iceServers: [] });
          const control = server.createDataChannel('control');
          server.createDataChannel('data');
          await server.setLocalDescription(await server.createOffer());
          await new Promise(ok => { if (server.iceGatheringState === 'complete') ok();
            else server.onicegatheringstatechange = () => server.iceGatheringState === 'complete' && ok(); });
          const r = await fetch('/whip', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: server.localDescription.sdp });
          if (r.status !== 201) return 'error: WHIP answered ' + r.status;
          await server.setRemoteDescription({ type: 'answer', sdp: await r.text() });
          await new Promise((ok, fail) => { if (control.readyState === 'open') ok(); else control.onopen = ok;
            setTimeout(() => fail(new Error('the control channel did not open')), 20000); });
          R.server = server;
          R.send = m => control.send(JSON.stringify(m));
          R.next = (type, ms = 20000) => new Promise((ok, fail) => {
            const t0 = performance.now();
            const look = () => {
              const i = R.inbox.findIndex(m => m.type === type);
              if (i >= 0) ok(R.inbox.splice(i, 1)[0]);
              else if (performance.now() - t0 > ms) fail(new Error('no ' + type + ' within ' + ms + ' ms; inbox ' + JSON.stringify(R.inbox)));
              else setTimeout(look, 20);
            };
            look();
          });
          R.makeP2P = other => {
            const p = new RTCPeerConnection({ iceServers: [] });
            R.p2p = p; R.other = other;
            p.onicecandidate = e => R.send({ type: 'signal', to: other, data: { candidate: e.candidate ? e.candidate.toJSON() : null } });
            p.ondatachannel = e => { R.chat = e.channel; e.channel.onmessage = m => R.p2pMessages.push(m.data); };
            return p;
          };
          const handle = async m => {
            const d = m.data;
            if (d.sdp) {
              const p = R.p2p || R.makeP2P(m.from);
              await p.setRemoteDescription(d.sdp);
              for (const c of R.pending.splice(0)) await p.addIceCandidate(c);
              if (d.sdp.type === 'offer') {
                await p.setLocalDescription(await p.createAnswer());
                R.send({ type: 'signal', to: m.from, data: { sdp: p.localDescription.toJSON() } });
              }
            } else if ('candidate' in d && d.candidate) {
              if (R.p2p && R.p2p.remoteDescription) await R.p2p.addIceCandidate(d.candidate); else R.pending.push(d.candidate);
            }
          };
          control.onmessage = e => {
            const m = JSON.parse(e.data);
            if (m.type === 'ping') control.send(JSON.stringify({ type: 'pong', id: m.id }));
            else if (m.type === 'signal') R.chain = R.chain.then(() => handle(m)).catch(err => R.inbox.push({ type: 'page_error', message: String(err) }));
            else R.inbox.push(m);
          };
          R.send({ type: 'join', room });
          return (await R.next('joined')).id;
        }
        """;

    // Calls the other page through the relay; resolves when their own data channel is open and the first message went.
    private const string CallScript = """
        async (target) => {
          const R = window.R;
          const p = R.makeP2P(target);
          const chat = R.chat = p.createDataChannel('chat');
          chat.onmessage = m => R.p2pMessages.push(m.data);
          await p.setLocalDescription(await p.createOffer());
          R.send({ type: 'signal', to: target, data: { sdp: p.localDescription.toJSON() } });
          await new Promise((ok, fail) => { chat.onopen = ok;
            setTimeout(() => fail(new Error('chat did not open: ' + p.connectionState + ' ' + JSON.stringify(R.inbox))), 20000); });
          chat.send('hello from the caller');
          return 'open';
        }
        """;

    // Waits (bounded) until a message arrived on the page's own data channel, then answers it.
    private const string AwaitAndReplyScript = """
        async ([expected, reply]) => {
          const R = window.R;
          const t0 = performance.now();
          while (!R.p2pMessages.includes(expected) && performance.now() - t0 < 20000) await new Promise(ok => setTimeout(ok, 20));
          if (!R.p2pMessages.includes(expected)) return 'missing: ' + expected + ' (got ' + JSON.stringify(R.p2pMessages) + ')';
          if (reply) R.chat.send(reply);
          return 'ok';
        }
        """;

    // The selected pair of the page's own connection, from getStats.
    private const string SelectedPairScript = """
        async () => {
          const s = await window.R.p2p.getStats();
          let pair;
          s.forEach(r => { if (r.type === 'transport' && r.selectedCandidatePairId) pair = s.get(r.selectedCandidatePairId); });
          if (!pair) return { error: 'no selected pair' };
          const l = s.get(pair.localCandidateId), rm = s.get(pair.remoteCandidateId);
          return { local: l.address + ':' + l.port, remote: rm.address + ':' + rm.port, localPort: l.port, remotePort: rm.port, ufrag: l.usernameFragment || '',
            protocol: l.protocol };
        }
        """;

    // An ICE restart of the page's own connection, signalled through the relay; resolves with the new local ufrag once connected again.
    private const string RestartScript = """
        async () => {
          const R = window.R, p = R.p2p;
          const ufrag = sdp => (sdp.match(/a=ice-ufrag:(\S+)/) || [])[1];
          const before = ufrag(p.localDescription.sdp);
          await p.setLocalDescription(await p.createOffer({ iceRestart: true }));
          const after = ufrag(p.localDescription.sdp);
          R.send({ type: 'signal', to: R.other, data: { sdp: p.localDescription.toJSON() } });
          const t0 = performance.now();
          while (!(p.signalingState === 'stable' && p.connectionState === 'connected') && performance.now() - t0 < 20000)
            await new Promise(ok => setTimeout(ok, 20));
          return { before, after, state: p.connectionState, signaling: p.signalingState };
        }
        """;

    [Fact]
    public async Task TwoPagesConnectToEachOtherThroughTheRelayTalkDirectlyAndOneLeavingIsReported()
    {
        using var ns = NetworkNamespace.Create("rtc-relay");
        var settings = new EchoServerSettings { Urls = "http://127.0.0.1:0", Sessions = new() { UdpPort = 0 } };
        var instance = EchoServerInNamespace.Build(ns, settings);
        var relay = instance.Relay!;
        HeadlessChromium? chromium = null;
        try
        {
            await instance.App.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
            // A page of the server's origin that is not the echo page (which would open a session of its own).
            var url = instance.App.Urls.First() + "/relay-test";
            var serverPort = instance.UdpEndPoint.Port;
            chromium = await HeadlessChromium.LaunchAsync(ns);
            var a = await chromium.Browser.NewPageAsync();
            var b = await chromium.Browser.NewPageAsync();
            foreach (var page in new[] { a, b })
            {
                // An empty page served by the browser itself at the server's origin (so fetch('/whip') is same-origin).
                await page.RouteAsync("**/relay-test",
                    route => route.FulfillAsync(new() { Status = 200, ContentType = "text/html", Body = "<!doctype html><title>relay</title>" }));
                await page.GotoAsync(url);
            }
            var aId = await a.EvaluateAsync<string>(JoinScript, "room-1");
            var bId = await b.EvaluateAsync<string>(JoinScript, "room-1");
            Assert.Matches("^[0-9a-f]{16}$", aId);
            Assert.Matches("^[0-9a-f]{16}$", bId);
            Assert.Equal(2, relay.Peers);
            // A learns of B.
            var joinedNote = await a.EvaluateAsync<JsonElement>("() => window.R.next('peer_joined')");
            Assert.Equal(bId, joinedNote.GetProperty("id").GetString());

            // A calls B through the relay; their own channel carries a message each way.
            Assert.Equal("open", await a.EvaluateAsync<string>(CallScript, bId));
            Assert.Equal("ok", await b.EvaluateAsync<string>(AwaitAndReplyScript, new[] { "hello from the caller", "hello back" }));
            Assert.Equal("ok", await a.EvaluateAsync<string>(AwaitAndReplyScript, new[] { "hello back", "" }));
            Assert.True(relay.Relayed >= 2, $"relayed {relay.Relayed}");

            // Directly: the selected pair of each side names neither the server's UDP port.
            foreach (var (page, who) in new[] { (a, "caller"), (b, "callee") })
            {
                var pair = await page.EvaluateAsync<JsonElement>(SelectedPairScript);
                output.WriteLine($"{who}: {pair}");
                Assert.False(pair.TryGetProperty("error", out var e), e.ToString());
                Assert.NotEqual(serverPort, pair.GetProperty("localPort").GetInt32());
                Assert.NotEqual(serverPort, pair.GetProperty("remotePort").GetInt32());
            }

            // An ICE restart, signalled through the relay like the first offer: new credentials, connected, and messages go on.
            var restart = await a.EvaluateAsync<JsonElement>(RestartScript);
            output.WriteLine("restart: " + restart);
            Assert.NotEqual(restart.GetProperty("before").GetString(), restart.GetProperty("after").GetString());
            Assert.Equal("connected", restart.GetProperty("state").GetString());
            Assert.Equal("stable", restart.GetProperty("signaling").GetString());
            await a.EvaluateAsync("() => window.R.chat.send('after the restart')");
            Assert.Equal("ok", await b.EvaluateAsync<string>(AwaitAndReplyScript, new[] { "after the restart", "" }));

            // B closes its connection to the server: A is told that B left, with the reason.
            await b.EvaluateAsync("() => window.R.server.close()");
            var left = await a.EvaluateAsync<JsonElement>("() => window.R.next('peer_left')");
            output.WriteLine("peer_left: " + left);
            Assert.Equal(bId, left.GetProperty("id").GetString());
            Assert.False(string.IsNullOrEmpty(left.GetProperty("reason").GetString()));
            // A signal to B now is answered peer_gone, and nothing more is relayed. Counted from here, not from before B
            // closed: the restart's trickled candidates may still be on their way through the relay until B has left.
            var relayedBefore = relay.Relayed;
            await a.EvaluateAsync("id => window.R.send({ type: 'signal', to: id, data: { hello: 1 } })", bId);
            var gone = await a.EvaluateAsync<JsonElement>("() => window.R.next('relay_error')");
            Assert.Equal("peer_gone", gone.GetProperty("error").GetString());
            Assert.Equal(relayedBefore, relay.Relayed);
            var clock = Stopwatch.StartNew();
            while (relay.Peers != 1 && clock.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(50);
            Assert.Equal(1, relay.Peers);
            var errors = await a.EvaluateAsync<JsonElement>("() => window.R.inbox.filter(m => m.type === 'page_error')");
            Assert.Equal(0, errors.GetArrayLength());
        }
        finally
        {
            if (chromium is not null) await chromium.DisposeAsync();
            await EchoServerInNamespace.StopAsync(instance, output);
        }
    }
}
