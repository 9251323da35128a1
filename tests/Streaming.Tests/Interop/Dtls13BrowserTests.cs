using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.Versioning;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Transport.Dtls;
using Transport.Samples.EchoServer;
using Transport.Streaming.Sessions;
using Transport.Streaming.Tests.Hosting;
using Transport.Streaming.WebRtc;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// Issue 17: DTLS 1.3 (RFC 9147) with the X25519MLKEM768 hybrid group against real browsers. The echo server runs in
/// this process inside a namespace with only loopback, with DTLS 1.3 allowed (1.2 still accepted); the browser opens
/// a data channel over WHIP, gets 10 echoes, and reports its getStats transport entry. Asserted from our side: the
/// negotiated version, suite and group (the peer connection's health). Lines start with "dtls13:".
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class Dtls13BrowserTests(ITestOutputHelper output)
{
    private const string Page = """
        <!doctype html><html><body><script>
        'use strict';
        const report = body => fetch('/dtls13/report', { method: 'POST', body: JSON.stringify(body) });
        (async () => {
          const pc = new RTCPeerConnection({ iceServers: [] });
          const control = pc.createDataChannel('control');
          const data = pc.createDataChannel('data');
          control.onmessage = e => { const m = JSON.parse(e.data); if (m.type === 'ping') control.send(JSON.stringify({ type: 'pong', id: m.id })); };
          let echoes = 0;
          data.onmessage = async () => {
            if (++echoes !== 10) return;
            const transports = [];
            (await pc.getStats()).forEach(s => { if (s.type === 'transport') transports.push({ tlsVersion: s.tlsVersion, dtlsCipher: s.dtlsCipher, dtlsState: s.dtlsState, tlsGroup: s.tlsGroup }); });
            report({ echoes, transports, client: navigator.userAgent });
          };
          const timer = setTimeout(() => report({ error: 'not open within 20 s: ' + pc.connectionState }), 20000);
          data.onopen = () => { clearTimeout(timer); for (let i = 0; i < 10; i++) data.send('m' + i); };
          try {
            await pc.setLocalDescription(await pc.createOffer());
            await new Promise(ok => { if (pc.iceGatheringState === 'complete') ok(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok(); });
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
        var instance = ns.CreateInside(() => EchoServerApp.Build(settings, logging => logging.AddProvider(new CapturingLoggerProvider(logs))));
        instance.App.Services.GetRequiredService<IOptions<SocketTransportOptions>>().Value.CreateBoundListenSocket =
            endpoint => ns.CreateInside(() => SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint));
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
        output.WriteLine("page: " + report);
        Assert.False(JsonDocument.Parse(report).RootElement.TryGetProperty("error", out _), report);
        Assert.Equal(10, JsonDocument.Parse(report).RootElement.GetProperty("echoes").GetInt32());
        var session = Assert.Single(server.Instance.Server.Sessions);
        var pc = ((WebRtcSessionTransport)session.Transport).PeerConnection;
        var health = await pc.GetHealthAsync();
        output.WriteLine($"dtls13: ours: {health.DtlsVersion}, {health.DtlsCipherSuite}, {health.DtlsGroup}");
        foreach (var (_, line) in server.Logs.Where(l => l.Item2.Contains(" since the offer", StringComparison.Ordinal)).Take(20)) output.WriteLine("server: " + line);
        return health;
    }

    [Fact]
    public async Task FirefoxEsrNegotiatesDtls13WithTheHybridGroupAndEchoes()
    {
        using var ns = NetworkNamespace.Create("rtc-d13f");
        var server = StartServer(ns, DtlsVersion.Dtls12, DtlsVersion.Dtls13);
        HeadlessFirefox? firefox = null;
        try
        {
            await server.Instance.App.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
            firefox = HeadlessFirefox.Launch(ns, server.Instance.App.Urls.First() + "/dtls13");
            var clock = Stopwatch.StartNew();
            while (!server.Reported.Task.IsCompleted && clock.Elapsed < TimeSpan.FromSeconds(60) && firefox.IsRunning)
                await Task.WhenAny(server.Reported.Task, Task.Delay(200));
            if (!server.Reported.Task.IsCompleted)
            {
                foreach (var (_, line) in server.Logs.Take(60)) output.WriteLine("server: " + line);
                throw new Xunit.Sdk.XunitException($"no report from Firefox after {clock.Elapsed.TotalSeconds:0} s");
            }
            var health = await AssertEchoAndReadHealth(server, await server.Reported.Task);
            Assert.Equal(DtlsVersion.Dtls13, health.DtlsVersion);
            Assert.Equal(DtlsNamedGroup.X25519MLKEM768, health.DtlsGroup);
            Assert.Equal(DtlsCipherSuite.TlsAes128GcmSha256, health.DtlsCipherSuite);
        }
        finally
        {
            if (firefox is not null)
            {
                firefox.KillProcessGroup(ns, TimeSpan.FromSeconds(5));
                foreach (var line in firefox.Output.Take(20)) output.WriteLine("firefox: " + line);
                firefox.Dispose();
            }
            try { await server.Instance.App.StopAsync().WaitAsync(TimeSpan.FromSeconds(15)); }
            catch (TimeoutException) { output.WriteLine("the echo server did not stop within 15 s"); }
            await server.Instance.App.DisposeAsync();
        }
    }

    /// <param name="trials">Chromium's --force-fieldtrials value ("" for none).</param>
    /// <param name="expected">The version we expect (null: whatever Chromium's default is, printed).</param>
    /// <param name="hybrid">Whether the hybrid group must have been chosen.</param>
    [Theory]
    [InlineData("WebRTC-ForceDtls13/Enabled/", DtlsVersion.Dtls13, true)]
    [InlineData("WebRTC-ForceDtls13/Enabled/WebRTC-EnableDtlsPqc/Enabled/", DtlsVersion.Dtls13, true)]
    // Chromium 156 without field trials: DTLS 1.3 with X25519MLKEM768 too (measured).
    [InlineData("", DtlsVersion.Dtls13, true)]
    public async Task ChromiumNegotiatesTheVersionItsFieldTrialsAllowAndEchoes(string trials, DtlsVersion? expected, bool hybrid)
    {
        using var ns = NetworkNamespace.Create("rtc-d13c");
        var server = StartServer(ns, DtlsVersion.Dtls12, DtlsVersion.Dtls13);
        try
        {
            await server.Instance.App.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
            await using var chromium = trials.Length == 0
                ? await HeadlessChromium.LaunchAsync(ns)
                : await HeadlessChromium.LaunchAsync(ns, false, "--force-fieldtrials=" + trials);
            var page = await chromium.Browser.NewPageAsync();
            await page.GotoAsync(server.Instance.App.Urls.First() + "/dtls13");
            var done = await Task.WhenAny(server.Reported.Task, Task.Delay(TimeSpan.FromSeconds(60)));
            if (done != server.Reported.Task)
            {
                foreach (var (_, line) in server.Logs.Take(60)) output.WriteLine("server: " + line);
                throw new Xunit.Sdk.XunitException("no report from Chromium within 60 s");
            }
            var health = await AssertEchoAndReadHealth(server, await server.Reported.Task);
            output.WriteLine($"dtls13: chromium trials '{trials}': {health.DtlsVersion}, {health.DtlsGroup}");
            Assert.NotNull(health.DtlsVersion);
            if (expected is { } v) Assert.Equal(v, health.DtlsVersion);
            if (hybrid) Assert.Equal(DtlsNamedGroup.X25519MLKEM768, health.DtlsGroup);
        }
        finally
        {
            try { await server.Instance.App.StopAsync().WaitAsync(TimeSpan.FromSeconds(15)); }
            catch (TimeoutException) { output.WriteLine("the echo server did not stop within 15 s"); }
            await server.Instance.App.DisposeAsync();
        }
    }
}
