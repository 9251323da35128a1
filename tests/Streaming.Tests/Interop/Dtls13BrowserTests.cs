using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Runtime.Versioning;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Transport.Dtls;
using Transport.Ice;
using Transport.Samples.EchoServer;
using Transport.Streaming.Io;
using Transport.Streaming.Sessions;
using Transport.Streaming.Tests.Hosting;
using Transport.Streaming.WebRtc;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// DTLS 1.3 (RFC 9147) with the X25519MLKEM768 hybrid group against real browsers. The echo server runs in
/// this process inside a namespace with only loopback, with DTLS 1.3 allowed (1.2 still accepted); the browser opens
/// a data channel over WHIP, gets 10 echoes, and reports its getStats transport entry. Asserted from our side: the
/// negotiated version, suite and group (the peer connection's health). Lines start with "dtls13:".
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class Dtls13BrowserTests(ITestOutputHelper output)
{
    // ?media=1: the page also sends its fake camera and microphone, and once the data echoes are back waits (20 s at
    // most) until getStats shows the echoed audio and video received and video decoded. Any failed connection state is
    // reported at once ({ failed: true }).
    private const string Page = """
        <!doctype html><html><body><script>
        'use strict';
        let reported = false;
        const report = body => { if (reported) return; reported = true; fetch('/dtls13/report', { method: 'POST', body: JSON.stringify(body) }); };
        const media = new URLSearchParams(location.search).get('media') === '1';
        const transportsOf = stats => { const t = []; stats.forEach(s => { if (s.type === 'transport') t.push(JSON.parse(JSON.stringify(s))); }); return t; };
        const rtpOf = stats => { const r = [];
          stats.forEach(s => { if (s.type === 'inbound-rtp' || s.type === 'outbound-rtp') r.push({
          type: s.type, kind: s.kind, packetsReceived: s.packetsReceived || 0, packetsSent: s.packetsSent || 0, framesDecoded: s.framesDecoded || 0,
          packetsLost: s.packetsLost || 0 }); }); return r; };
        (async () => {
          const pc = new RTCPeerConnection({ iceServers: [] });
          const control = pc.createDataChannel('control');
          const data = pc.createDataChannel('data');
          control.onmessage = e => { const m = JSON.parse(e.data); if (m.type === 'ping') control.send(JSON.stringify({ type: 'pong', id: m.id })); };
          pc.onconnectionstatechange = async () => {
            if (pc.connectionState === 'failed') report({
              failed: true, state: pc.connectionState, transports: transportsOf(await pc.getStats()), client: navigator.userAgent });
          };
          let echoes = 0;
          data.onmessage = async () => {
            if (++echoes !== 10) return;
            let stats = await pc.getStats();
            const started = performance.now();
            if (media) {
              const ok = r => ['audio', 'video'].every(k => r.some(s => s.type === 'inbound-rtp' && s.kind === k && s.packetsReceived > 0))
                && r.some(s => s.type === 'inbound-rtp' && s.kind === 'video' && s.framesDecoded > 0);
              for (let i = 0; i < 80 && !ok(rtpOf(stats)); i++) { await new Promise(r => setTimeout(r, 250)); stats = await pc.getStats(); }
            }
            report({ echoes, transports: transportsOf(stats), rtp: rtpOf(stats), mediaWaitedMs: Math.round(performance.now() - started),
              client: navigator.userAgent });
          };
          const timer = setTimeout(() => report({ error: 'not open within 20 s: ' + pc.connectionState }), 20000);
          data.onopen = () => { clearTimeout(timer); for (let i = 0; i < 10; i++) data.send('m' + i); };
          try {
            if (media) {
              const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 240 } });
              for (const t of stream.getTracks()) pc.addTrack(t, stream);
              pc.ontrack = e => {
                const el = document.createElement(e.track.kind);
                el.srcObject = new MediaStream([e.track]);
                el.muted = true;
                el.autoplay = true;
                document.body.appendChild(el);
                el.play().catch(() => {});
              };
            }
            await pc.setLocalDescription(await pc.createOffer());
            await new Promise(ok => { if (pc.iceGatheringState === 'complete') ok();
              else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok(); });
            const r = await fetch('/whip', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
            if (r.status !== 201) { report({ error: 'WHIP POST answered ' + r.status + ': ' + await r.text() }); return; }
            await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
          } catch (e) { report({ error: String(e) }); }
        })();
        </script></body></html>
        """;

    private sealed record Server(EchoServerInstance Instance, TaskCompletionSource<string> Reported, ConcurrentQueue<(LogLevel, string)> Logs);

    private static Server StartServer(NetworkNamespace ns, DtlsVersion min, DtlsVersion max)
    {
        var logs = new ConcurrentQueue<(LogLevel, string)>();
        var reported = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var settings = new EchoServerSettings
        {
            Urls = "http://127.0.0.1:0",
            Sessions = new()
            {
                UdpPort = 0,
                Transport = new WebRtcTransportOptions { PeerConnection = new PeerConnectionOptions { DtlsMinVersion = min, DtlsMaxVersion = max } },
            },
        };
        var instance = EchoServerInNamespace.Build(ns, settings, logging => logging.AddProvider(new CapturingLoggerProvider(logs)));
        instance.App.MapGet("/dtls13", context =>
        {
            context.Response.ContentType = "text/html; charset=utf-8";
            return context.Response.WriteAsync(Page);
        });
        instance.App.MapPost("/dtls13/report", async context =>
        {
            using var reader = new StreamReader(context.Request.Body);
            reported.TrySetResult(await reader.ReadToEndAsync(context.RequestAborted));
            context.Response.StatusCode = StatusCodes.Status204NoContent;
        });
        return new Server(instance, reported, logs);
    }

    private async Task<PeerConnectionHealth> AssertEchoAndReadHealth(Server server, string report)
    {
        Assert.False(JsonDocument.Parse(report).RootElement.TryGetProperty("error", out _), report);
        Assert.False(JsonDocument.Parse(report).RootElement.TryGetProperty("failed", out _), report);
        Assert.Equal(10, JsonDocument.Parse(report).RootElement.GetProperty("echoes").GetInt32());
        var session = Assert.Single(server.Instance.Server.Sessions);
        var pc = ((WebRtcSessionTransport)session.Transport).PeerConnection;
        var health = await pc.GetHealthAsync();
        output.WriteLine($"dtls13: ours: {health.DtlsVersion}, {health.DtlsCipherSuite}, {health.DtlsGroup}");
        foreach (var (_, line) in server.Logs.Where(l => l.Item2.Contains(" since the offer", StringComparison.Ordinal)).Take(20))
            output.WriteLine("server: " + line);
        return health;
    }

    /// <summary>
    /// One browser ("firefox" or "chromium", the latter with <paramref name="trials"/> as --force-fieldtrials) against a
    /// fresh echo server allowing DTLS 1.2 to <paramref name="max"/> in a fresh namespace; waits 45 s at most for the
    /// page's report and hands it to <paramref name="check"/> while the server and the browser still run.
    /// </summary>
    private async Task RunAsync(string browser, string trials, DtlsVersion max, string query, Func<Server, string, Task> check)
    {
        using var ns = NetworkNamespace.Create(browser == "firefox" ? "rtc-d13f" : "rtc-d13c");
        var server = StartServer(ns, DtlsVersion.Dtls12, max);
        HeadlessFirefox? firefox = null;
        HeadlessChromium? chromium = null;
        try
        {
            await server.Instance.App.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
            var url = server.Instance.App.Urls.First() + "/dtls13" + query;
            var clock = Stopwatch.StartNew();
            if (browser == "firefox") firefox = HeadlessFirefox.Launch(ns, url);
            else
            {
                chromium = trials.Length == 0
                    ? await HeadlessChromium.LaunchAsync(ns, fakeMedia: true)
                    : await HeadlessChromium.LaunchAsync(ns, true, "--force-fieldtrials=" + trials);
                var page = await chromium.Browser.NewPageAsync();
                await page.GotoAsync(url);
            }
            while (!server.Reported.Task.IsCompleted && clock.Elapsed < TimeSpan.FromSeconds(45) && (firefox is null || firefox.IsRunning))
                await Task.WhenAny(server.Reported.Task, Task.Delay(200));
            if (!server.Reported.Task.IsCompleted)
            {
                foreach (var (_, line) in server.Logs.Take(60)) output.WriteLine("server: " + line);
                throw new Xunit.Sdk.XunitException($"no report from {browser} after {clock.Elapsed.TotalSeconds:0} s");
            }
            var report = await server.Reported.Task;
            output.WriteLine($"page ({browser}, {clock.Elapsed.TotalSeconds:0.0} s after the launch): {report}");
            await check(server, report);
        }
        finally
        {
            if (firefox is not null)
            {
                firefox.KillProcessGroup(ns, TimeSpan.FromSeconds(5));
                foreach (var line in firefox.Output.Take(20)) output.WriteLine("firefox: " + line);
                firefox.Dispose();
            }
            if (chromium is not null) await chromium.DisposeAsync();
            await EchoServerInNamespace.StopAsync(server.Instance, output);
        }
    }

    [Fact]
    public Task FirefoxEsrNegotiatesDtls13WithTheHybridGroupAndEchoes() =>
        RunAsync("firefox", "", DtlsVersion.Dtls13, "", async (server, report) =>
        {
            var health = await AssertEchoAndReadHealth(server, report);
            Assert.Equal(DtlsVersion.Dtls13, health.DtlsVersion);
            Assert.Equal(DtlsNamedGroup.X25519MLKEM768, health.DtlsGroup);
            Assert.Equal(DtlsCipherSuite.TlsAes128GcmSha256, health.DtlsCipherSuite);
        });

    /// <param name="trials">Chromium's --force-fieldtrials value ("" for none).</param>
    /// <param name="expected">The version we expect (null: whatever Chromium's default is, printed).</param>
    /// <param name="hybrid">Whether the hybrid group must have been chosen.</param>
    [Theory]
    [InlineData("WebRTC-ForceDtls13/Enabled/", DtlsVersion.Dtls13, true)]
    [InlineData("WebRTC-ForceDtls13/Enabled/WebRTC-EnableDtlsPqc/Enabled/", DtlsVersion.Dtls13, true)]
    // A DTLS-1.3-only Chromium.
    [InlineData("WebRTC-ForceDtls13/Only/", DtlsVersion.Dtls13, true)]
    // Chromium 156 without field trials: DTLS 1.3 with X25519MLKEM768 too (measured).
    [InlineData("", DtlsVersion.Dtls13, true)]
    public Task ChromiumNegotiatesTheVersionItsFieldTrialsAllowAndEchoes(string trials, DtlsVersion? expected, bool hybrid) =>
        RunAsync("chromium", trials, DtlsVersion.Dtls13, "", async (server, report) =>
        {
            var health = await AssertEchoAndReadHealth(server, report);
            output.WriteLine($"dtls13: chromium trials '{trials}': {health.DtlsVersion}, {health.DtlsGroup}");
            Assert.NotNull(health.DtlsVersion);
            if (expected is { } v) Assert.Equal(v, health.DtlsVersion);
            if (hybrid) Assert.Equal(DtlsNamedGroup.X25519MLKEM768, health.DtlsGroup);
        });

    /// <summary>
    /// Chromium with <c>WebRTC-ForceDtls13/Only/</c> against our server pinned to DTLS 1.2. Measured on Chromium 156:
    /// "Only" no longer makes it DTLS-1.3-only (it still offers 1.2, as with 1.3 its default the field trial is
    /// ignored), so it negotiates DTLS 1.2 with us and echoes; asserted on both sides (our health and its getStats
    /// <c>tlsVersion</c> FEFD). The clean failure against a truly 1.3-only peer is the next test.
    /// </summary>
    [Fact]
    public Task ChromiumWithForceDtls13OnlyStillFallsBackToDtls12WithOurServerPinnedToDtls12() =>
        RunAsync("chromium", "WebRTC-ForceDtls13/Only/", DtlsVersion.Dtls12, "", async (server, report) =>
        {
            var health = await AssertEchoAndReadHealth(server, report);
            var transport = Assert.Single(JsonDocument.Parse(report).RootElement.GetProperty("transports").EnumerateArray());
            output.WriteLine($"dtls13: chromium 'Only' vs our 1.2-pinned server: ours {health.DtlsVersion}, {health.DtlsCipherSuite}, {health.DtlsGroup}; "
                + $"chromium tlsVersion {transport.GetProperty("tlsVersion").GetString()}, {transport.GetProperty("dtlsCipher").GetString()}");
            Assert.Equal(DtlsVersion.Dtls12, health.DtlsVersion);
            Assert.Equal("FEFD", transport.GetProperty("tlsVersion").GetString());
        });

    /// <summary>
    /// A peer that allows DTLS 1.3 only (our own peer connection with DtlsMinVersion = DtlsMaxVersion = Dtls13, as no
    /// browser here can be made 1.3-only, see above) offers over WHIP to the echo server pinned to DTLS 1.2: no common
    /// version, so the handshake must fail on both sides with a DTLS reason, the session end as TransportFailed, and
    /// nothing be logged as an error.
    /// </summary>
    [Fact]
    public async Task ADtls13OnlyPeerAgainstOurServerPinnedToDtls12FailsCleanlyOnBothSides()
    {
        using var ns = NetworkNamespace.Create("rtc-d13p");
        var server = StartServer(ns, DtlsVersion.Dtls12, DtlsVersion.Dtls12);
        var driver = new UdpDriver();
        try
        {
            await server.Instance.App.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
            ns.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
            await using var pc = new PeerConnection(driver, new PeerConnectionOptions
            {
                DtlsMinVersion = DtlsVersion.Dtls13,
                DtlsMaxVersion = DtlsVersion.Dtls13,
                Ice = new IceAgentOptions { Role = IceRole.Controlling },
            });
            var offer = await pc.CreateOfferAsync();
            using var http = NamespaceHttpClient(ns);
            using var content = new StringContent(offer, Encoding.UTF8);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/sdp");
            using var response = await http.PostAsync(new Uri(server.Instance.App.Urls.First() + "/whip"), content);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            var clock = Stopwatch.StartNew();
            await pc.SetRemoteDescriptionAsync(await response.Content.ReadAsStringAsync());

            ConnectionStateChanged? ours = null;
            using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
            {
                try
                {
                    await foreach (var e in pc.Events.ReadAllAsync(cts.Token))
                        if (e is ConnectionStateChanged { State: ConnectionState.Failed or ConnectionState.Closed or ConnectionState.Connected } c)
                        {
                            ours = c;
                            break;
                        }
                }
                catch (OperationCanceledException) { }
            }
            var clientMs = clock.ElapsedMilliseconds;
            string? ended = null;
            while (ended is null && clock.Elapsed < TimeSpan.FromSeconds(45))
            {
                ended = server.Logs.Select(l => l.Item2).FirstOrDefault(l => l.Contains(" ended (", StringComparison.Ordinal));
                if (ended is null) await Task.Delay(100);
            }
            foreach (var (level, line) in server.Logs.Where(l => l.Item2.Contains("ended", StringComparison.Ordinal)
                || l.Item2.Contains("Dtls", StringComparison.Ordinal)).Take(30))
                output.WriteLine($"server ({level}): {line}");
            output.WriteLine($"dtls13: 1.3-only peer vs 1.2-pinned server: the peer {ours?.State} after {clientMs} ms ({ours?.Reason}); server: {ended} " +
                $"after {clock.ElapsedMilliseconds} ms");
            Assert.NotNull(ours);
            Assert.Equal(ConnectionState.Failed, ours.State);
            Assert.Equal(ConnectionLayer.Dtls, ours.Reason.Layer);
            Assert.NotNull(ended);
            Assert.Contains("TransportFailed", ended, StringComparison.Ordinal);
            Assert.Contains("Dtls", ended, StringComparison.Ordinal);
            Assert.DoesNotContain(server.Logs, l => l.Item1 >= LogLevel.Error);
        }
        finally
        {
            await driver.DisposeAsync();
            await EchoServerInNamespace.StopAsync(server.Instance, output);
        }
    }

    // An HttpClient whose connections are made from sockets inside the namespace (the server listens only there).
    private static HttpClient NamespaceHttpClient(NetworkNamespace ns) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = ns.CreateInside(() => new Socket(SocketType.Stream, ProtocolType.Tcp));
            try
            {
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    { Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>
    /// Media echo over DTLS 1.3: the browser's fake camera and microphone go to the echo server, which echoes every
    /// frame back; the browser's getStats must show the echoed audio and video received (and video decoded: the SRTP
    /// keys from the TLS 1.3 exporter agree), and our side must count frames in and out.
    /// </summary>
    [Theory]
    [InlineData("firefox")]
    [InlineData("chromium")]
    public Task MediaIsEchoedOverDtls13(string browser) =>
        RunAsync(browser, "", DtlsVersion.Dtls13, "?media=1", async (server, report) =>
        {
            var health = await AssertEchoAndReadHealth(server, report);
            Assert.Equal(DtlsVersion.Dtls13, health.DtlsVersion);
            Assert.Equal(DtlsNamedGroup.X25519MLKEM768, health.DtlsGroup);
            var rtp = JsonDocument.Parse(report).RootElement.GetProperty("rtp").EnumerateArray().ToArray();
            long Sum(string type, string kind, string field) =>
                rtp.Where(s => s.GetProperty("type").GetString() == type && s.GetProperty("kind").GetString() == kind).Sum(s =>
                    s.GetProperty(field).GetInt64());
            foreach (var kind in (string[])["audio", "video"])
            {
                Assert.True(Sum("outbound-rtp", kind, "packetsSent") > 0, $"{browser} sent no {kind}: {report}");
                Assert.True(Sum("inbound-rtp", kind, "packetsReceived") > 0, $"{browser} received no echoed {kind}: {report}");
            }
            Assert.True(Sum("inbound-rtp", "video", "framesDecoded") > 0, $"{browser} decoded no echoed video: {report}");
            var transport = (WebRtcSessionTransport)Assert.Single(server.Instance.Server.Sessions).Transport;
            output.WriteLine($"dtls13: {browser} media: ours {transport.MediaFramesReceived} frames in, {transport.MediaFramesSent} out, "
                + $"{health.DroppedMedia} SRTP packets dropped, delivery "
                + $"{health.MediaDeliveryRate?.ToString("0", System.Globalization.CultureInfo.InvariantCulture) ?? "-"} bit/s; "
                + $"browser received audio {Sum("inbound-rtp", "audio", "packetsReceived")} / video {Sum("inbound-rtp", "video", "packetsReceived")} "
                + $"packets, {Sum("inbound-rtp", "video", "framesDecoded")} frames decoded");
            Assert.True(transport.MediaFramesReceived > 0, "our side received no media");
            Assert.True(transport.MediaFramesSent > 0, "our side echoed no media");
        });
}
