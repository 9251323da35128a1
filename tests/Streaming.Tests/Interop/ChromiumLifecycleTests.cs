using System.Diagnostics;
using System.Net;
using System.Runtime.Versioning;
using Transport.Dtls;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Io;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// The lifecycle against headless Chromium: the browser closes, the browser dies, we close.
/// Every measured time is printed on a line starting with "lifecycle:".
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class ChromiumLifecycleTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    /// <summary>The browser offers one ordered channel "life" and records, on its own clock, every lifecycle change.</summary>
    private const string OfferScript = """
        async () => {
          const pc = new RTCPeerConnection({ iceServers: [] });
          window.pc = pc;
          const log = window.log = [];
          const mark = what => log.push({ what, at: performance.now() });
          pc.onconnectionstatechange = () => mark('connection:' + pc.connectionState);
          pc.oniceconnectionstatechange = () => mark('ice:' + pc.iceConnectionState);
          const ch = window.ch = pc.createDataChannel('life');
          ch.binaryType = 'arraybuffer';
          window.echoes = 0;
          ch.onmessage = () => window.echoes++;
          ch.onopen = () => {
            mark('channel:open');
            if (pc.sctp) {
              pc.sctp.onstatechange = () => mark('sctp:' + pc.sctp.state);
              pc.sctp.transport.onstatechange = () => mark('dtls:' + pc.sctp.transport.state);
            }
          };
          ch.onclose = () => mark('channel:closed');
          await pc.setLocalDescription(await pc.createOffer());
          await new Promise(r => { if (pc.iceGatheringState === 'complete') r();
            else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
          return pc.localDescription.sdp;
        }
        """;

    // The page offers a data channel, we answer, and one message is echoed: the connection is up.
    private static async Task<Microsoft.Playwright.IPage> ConnectAndEchoOnceAsync(HeadlessChromium chromium, PeerConnection pc)
    {
        var page = await chromium.Browser.NewPageAsync();
        var offer = await page.EvaluateAsync<string>(OfferScript);
        var answer = await pc.CreateAnswerAsync(offer).WaitAsync(Patience);
        await page.EvaluateAsync("sdp => window.pc.setRemoteDescription({ type: 'answer', sdp })", answer);
        await page.WaitForFunctionAsync("() => window.ch.readyState === 'open'", null, new() { Timeout = 20_000 });
        await page.EvaluateAsync("() => window.ch.send('hello')");
        await page.WaitForFunctionAsync("() => window.echoes === 1", null, new() { Timeout = 5_000 });
        return page;
    }

    private static DtlsCertificate NewCertificate() =>
        DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));

    // The browser closes, through the public async API: the existing ChromiumDataChannelTests assert the core is Closed within
    // 100 ms; this checks what the application sees: the event, the end of the event stream and the send guard.
    [Fact]
    public async Task BrowserCloseEndsOurAsyncConnectionByItsCloseAndLaterSendsThrowNotConnected()
    {
        using var ns = NetworkNamespace.Create();
        await using var driver = new UdpDriver();
        ns.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
        using var certificate = NewCertificate();
        await using var pc = new PeerConnection(driver,
            new PeerConnectionOptions { Certificate = certificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });
        var session = new AsyncEchoSession(pc);
        try
        {
            await using var chromium = await HeadlessChromium.LaunchAsync(ns);
            var page = await ConnectAndEchoOnceAsync(chromium, pc);
            Assert.Equal(ConnectionState.Connected, pc.State);
            var channel = session.Events.OfType<DataChannelOpened>().Single().Channel;

            // One wall clock for both sides: the page stamps pc.close() with performance.timeOrigin + now(), and the
            // driver's clock (which stamps our events) is mapped onto the same Unix time. Playwright's own round trip
            // (tens of ms when the machine is busy) is then not counted, only the browser's and our reaction.
            var (wallAtStart, driverAtStart) = (DateTimeOffset.UtcNow, driver.Now);
            var closing = Stopwatch.StartNew();
            var closeCalledAt = await page.EvaluateAsync<double>("() => { const t = performance.timeOrigin + performance.now(); " +
                "window.pc.close(); return t; }");
            Assert.True(await session.WaitForStateAsync(ConnectionState.Closed, TimeSpan.FromSeconds(5)), $"still {pc.State} 5 s after the browser closed");
            var polled = closing.Elapsed;
            // The event stream completes once the connection is closed: the echo loop ends by itself.
            await session.Loop.WaitAsync(TimeSpan.FromSeconds(5));
            var last = session.Events.OfType<ConnectionStateChanged>().Last();
            var closedAt = (wallAtStart + (last.At - driverAtStart) - DateTimeOffset.UnixEpoch).TotalMilliseconds;
            var took = closedAt - closeCalledAt;
            output.WriteLine($"lifecycle: browser pc.close() -> our Closed event in {took:0.0} ms ({pc.Reason}); seen by the test through Playwright after " +
                $"{polled.TotalMilliseconds:0.0} ms; event stream completed");
            // The claim is that the browser's close (its SCTP ABORT or DTLS close_notify: the reason's layer, below) ends
            // our connection, not a liveness timeout (seconds); the milliseconds are reported above, not bounded tightly:
            // two clocks and a loaded machine are in them. A generous bound only.
            Assert.True(took < 2_000, $"the Closed event came {took:0.0} ms after pc.close()");
            Assert.Equal(ConnectionState.Closed, last.State);
            Assert.Contains(last.Reason.Layer, new[] { ConnectionLayer.Sctp, ConnectionLayer.Dtls });
            Assert.Empty(session.Errors);

            var refused = await Assert.ThrowsAsync<TransportNotConnectedException>(() => pc.SendAsync(channel, "too late").WaitAsync(Patience));
            Assert.Equal("closed", refused.State);
            output.WriteLine($"lifecycle: send after the browser closed -> {refused.Message}");
        }
        finally { await session.StopAsync(); }
    }

    // The browser process tree is SIGKILLed; nothing says goodbye, so only our liveness timers can tell.
    [Fact]
    public async Task KilledBrowserMakesUsDisconnectedThenFailedAtTheConfiguredTimeouts()
    {
        var disconnectedTimeout = TimeSpan.FromSeconds(1);
        var failedTimeout = TimeSpan.FromSeconds(2);
        using var ns = NetworkNamespace.Create();
        await using var driver = new UdpDriver();
        var local = ns.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
        using var certificate = NewCertificate();
        // Consent checks and keepalives keep their defaults (5 s, 2 s): while the browser lives, its data keeps the
        // path busy, and after the kill nothing can answer them anyway; consent expiry (30 s) comes far later.
        var core = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = certificate,
            Ice = new IceAgentOptions { Role = IceRole.Controlled, DisconnectedTimeout = disconnectedTimeout, FailedTimeout = failedTimeout },
        });
        core.AddHostCandidate(local);
        var peer = new TimedEchoPeer(core);
        await using var handle = driver.Register(peer);

        var chromium = await HeadlessChromium.LaunchAsync(ns);
        try
        {
            var page = await chromium.Browser.NewPageAsync();
            var offer = SessionDescription.Parse(await page.EvaluateAsync<string>(OfferScript));
            var answer = await handle.InvokeAsync(now => core.CreateAnswer(offer, now).ToString()).WaitAsync(Patience);
            await page.EvaluateAsync("sdp => window.pc.setRemoteDescription({ type: 'answer', sdp })", answer);
            await page.WaitForFunctionAsync("() => window.ch.readyState === 'open'", null, new() { Timeout = 20_000 });
            // A message every 50 ms, echoed: the path is never quiet for our 1 s Disconnected timeout while the browser lives.
            await page.EvaluateAsync("() => { let i = 0; window.ticker = setInterval(() => window.ch.send('tick' + i++), 50); }");
            await page.WaitForFunctionAsync("() => window.echoes >= 40", null, new() { Timeout = 10_000 });
            Assert.Equal([ConnectionState.Connecting, ConnectionState.Connected], peer.StateChanges.Select(s => s.State));

            var chromiumPids = ChromiumProcesses.In(ns);
            Assert.NotEmpty(chromiumPids);
            var killedAt = driver.Now;
            var killed = ChromiumProcesses.KillAll(ns, TimeSpan.FromSeconds(5));
            output.WriteLine($"lifecycle: SIGKILLed {killed} chromium processes ({string.Join(",", chromiumPids)}) in " +
                $"{(driver.Now - killedAt).TotalMilliseconds:0} ms");
            Assert.Empty(ChromiumProcesses.In(ns));

            var clock = Stopwatch.StartNew();
            while (!peer.StateChanges.Any(s => s.State == ConnectionState.Failed)
                && clock.Elapsed < disconnectedTimeout + failedTimeout + TimeSpan.FromSeconds(10))
                await Task.Delay(5);
            var changes = peer.StateChanges.ToList();
            output.WriteLine("after the kill: " + string.Join(" -> ", changes.Select(c => $"{c.State}@{c.At.TotalMilliseconds:0}ms ({c.Reason})")));
            Assert.Equal([ConnectionState.Connecting, ConnectionState.Connected, ConnectionState.Disconnected, ConnectionState.Failed],
                changes.Select(c => c.State));
            var lastReceived = peer.LastDatagramAt ?? throw new InvalidOperationException("nothing was ever received");
            var disconnected = changes[2];
            var failed = changes[3];
            Assert.Equal(ConnectionLayer.Ice, disconnected.Reason.Layer);
            Assert.Equal(ConnectionLayer.Ice, failed.Reason.Layer);
            Assert.Contains(nameof(IceStateReason.FailedTimeout), failed.Reason.Detail);

            var toDisconnected = disconnected.At - lastReceived;
            var toFailed = failed.At - disconnected.At;
            output.WriteLine($"lifecycle: browser killed; last packet from it {(lastReceived - killedAt).TotalMilliseconds:0} ms after the kill began");
            output.WriteLine($"lifecycle: last packet received -> Disconnected in {toDisconnected.TotalMilliseconds:0.0} ms (configured " +
                $"{disconnectedTimeout.TotalMilliseconds:0} ms)");
            output.WriteLine($"lifecycle: Disconnected -> Failed in {toFailed.TotalMilliseconds:0.0} ms (configured {failedTimeout.TotalMilliseconds:0} ms)");
            output.WriteLine($"lifecycle: kill -> Failed in {(failed.At - killedAt).TotalMilliseconds:0.0} ms");
            AssertFiredAfter(disconnectedTimeout, toDisconnected, "last packet -> Disconnected");
            AssertFiredAfter(failedTimeout, toFailed, "Disconnected -> Failed");
            // The ICE agent's own idea of the last packet is the same instant (it counts only the selected pair's traffic).
            var iceLast = await handle.InvokeAsync(_ => core.Ice.LastReceivedAt).WaitAsync(Patience);
            Assert.Equal(lastReceived, iceLast);
        }
        finally
        {
            ChromiumProcesses.KillAll(ns, TimeSpan.FromSeconds(5));
            try { await chromium.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)); }
            catch (Exception e) when (e is TimeoutException or Microsoft.Playwright.PlaywrightException)
            {
                output.WriteLine("closing the killed browser: " + e.Message);
            }
        }
    }

    // The browser dies, as the application sees it: the state events carry the times, the event stream completes at Failed,
    // and sends are refused naming the state.
    [Fact]
    public async Task KilledBrowserEndsOurAsyncConnectionFailedAndLaterSendsThrowFailed()
    {
        var disconnectedTimeout = TimeSpan.FromSeconds(1);
        var failedTimeout = TimeSpan.FromSeconds(2);
        using var ns = NetworkNamespace.Create();
        await using var driver = new UdpDriver();
        ns.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
        using var certificate = NewCertificate();
        await using var pc = new PeerConnection(driver, new PeerConnectionOptions
        {
            Certificate = certificate,
            Ice = new IceAgentOptions { Role = IceRole.Controlled, DisconnectedTimeout = disconnectedTimeout, FailedTimeout = failedTimeout },
        });
        var session = new AsyncEchoSession(pc);
        var chromium = await HeadlessChromium.LaunchAsync(ns);
        try
        {
            var channel = await ConnectTickingPageAsync(chromium, pc, session);

            var killedAt = driver.Now;
            ChromiumProcesses.KillAll(ns, TimeSpan.FromSeconds(5));
            Assert.True(await session.WaitForStateAsync(ConnectionState.Failed, disconnectedTimeout + failedTimeout + TimeSpan.FromSeconds(10)),
                $"still {pc.State} long after the kill");
            await session.Loop.WaitAsync(TimeSpan.FromSeconds(5)); // the event stream completed by itself
            var changes = session.Events.OfType<ConnectionStateChanged>().ToList();
            Assert.Equal([ConnectionState.Connecting, ConnectionState.Connected, ConnectionState.Disconnected, ConnectionState.Failed],
                changes.Select(c => c.State));
            var toFailed = changes[3].At - changes[2].At;
            output.WriteLine($"lifecycle: async API: kill -> Disconnected in {(changes[2].At - killedAt).TotalMilliseconds:0.0} ms ({changes[2].Reason}), " +
                $"Disconnected -> Failed in {toFailed.TotalMilliseconds:0.0} ms ({changes[3].Reason})");
            AssertFiredAfter(failedTimeout, toFailed, "Disconnected -> Failed");
            // The kill itself takes some tens of ms (the last packets may leave the browser meanwhile): measured from the kill.
            AssertFiredAfter(disconnectedTimeout, changes[2].At - killedAt, "kill -> Disconnected", early: TimeSpan.FromMilliseconds(50));

            var refused = await Assert.ThrowsAsync<TransportNotConnectedException>(() => pc.SendAsync(channel, "after failure").WaitAsync(Patience));
            Assert.Equal("failed", refused.State);
            output.WriteLine($"lifecycle: send after the browser died -> {refused.Message}");
            Assert.Empty(session.Errors);
        }
        finally
        {
            await session.StopAsync();
            ChromiumProcesses.KillAll(ns, TimeSpan.FromSeconds(5));
            try { await chromium.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)); }
            catch (Exception e) when (e is TimeoutException or Microsoft.Playwright.PlaywrightException)
            {
                output.WriteLine("closing the killed browser: " + e.Message);
            }
        }
    }

    /// <summary>Connects a page that sends a message every 50 ms (echoed by the session); returns our side of its channel.</summary>
    private static async Task<DataChannel> ConnectTickingPageAsync(HeadlessChromium chromium, PeerConnection pc, AsyncEchoSession session)
    {
        var page = await chromium.Browser.NewPageAsync();
        var offer = await page.EvaluateAsync<string>(OfferScript);
        var answer = await pc.CreateAnswerAsync(offer).WaitAsync(Patience);
        await page.EvaluateAsync("sdp => window.pc.setRemoteDescription({ type: 'answer', sdp })", answer);
        await page.WaitForFunctionAsync("() => window.ch.readyState === 'open'", null, new() { Timeout = 20_000 });
        await page.EvaluateAsync("() => { let i = 0; window.ticker = setInterval(() => window.ch.send('tick' + i++), 50); }");
        await page.WaitForFunctionAsync("() => window.echoes >= 20", null, new() { Timeout = 10_000 });
        return session.Events.OfType<DataChannelOpened>().Single().Channel;
    }

    // Buffering while Disconnected, with a real outage: "While Disconnected (temporary) reliable data is buffered up to a bound and
    // delivered when connectivity returns". The browser is frozen (SIGSTOP on every Chromium process), not killed:
    // we go Disconnected, buffer, and when it is thawed (SIGCONT) we are Connected again and the page gets every message.
    [Fact]
    public async Task FrozenBrowserMakesUsDisconnectedAndWhatWeSendMeanwhileArrivesWhenItThaws()
    {
        var disconnectedTimeout = TimeSpan.FromSeconds(1);
        using var ns = NetworkNamespace.Create();
        await using var driver = new UdpDriver();
        ns.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
        using var certificate = NewCertificate();
        await using var pc = new PeerConnection(driver, new PeerConnectionOptions
        {
            Certificate = certificate,
            Ice = new IceAgentOptions { Role = IceRole.Controlled, DisconnectedTimeout = disconnectedTimeout, FailedTimeout = TimeSpan.FromSeconds(10) },
        });
        var session = new AsyncEchoSession(pc);
        var chromium = await HeadlessChromium.LaunchAsync(ns);
        var frozen = Array.Empty<int>();
        try
        {
            var channel = await ConnectTickingPageAsync(chromium, pc, session);
            var page = chromium.Browser.Contexts[0].Pages[0];
            // The echoes of ticks already sent may still arrive (seen once in CI: "tick23" after the ticker stopped):
            // they are the page's own messages coming back, not what we send while Disconnected, so they are left out.
            await page.EvaluateAsync("() => { clearInterval(window.ticker); window.got = []; window.ch.onmessage = e => { if " +
                "(!String(e.data).startsWith('tick')) window.got.push(e.data); }; }");

            var frozenAt = driver.Now;
            frozen = ChromiumProcesses.Signal(ns, "STOP");
            Assert.True(await session.WaitForStateAsync(ConnectionState.Disconnected, TimeSpan.FromSeconds(5)),
                $"still {pc.State} 5 s after freezing the browser");
            output.WriteLine($"lifecycle: browser frozen (SIGSTOP, {frozen.Length} processes) -> Disconnected after " +
                $"{(driver.Now - frozenAt).TotalMilliseconds:0} ms");

            var results = Enumerable.Range(0, 20).Select(i => pc.TrySend(channel, System.Text.Encoding.UTF8.GetBytes("buffered" + i), binary: false)).ToList();
            Assert.All(results, r => Assert.Equal(SendStatus.Buffered, r.Status));
            Assert.All(results, r => Assert.Equal(ConnectionState.Disconnected, r.State));
            await pc.SendAsync(channel, "buffered20").WaitAsync(Patience);   // accepted too, does not throw

            var thawedAt = driver.Now;
            ChromiumProcesses.Signal(ns, "CONT");
            frozen = [];
            Assert.True(await session.WaitForStateAsync(ConnectionState.Connected, TimeSpan.FromSeconds(10)),
                $"still {pc.State} 10 s after thawing the browser");
            output.WriteLine($"lifecycle: browser thawed (SIGCONT) -> Connected again after {(driver.Now - thawedAt).TotalMilliseconds:0} ms ({pc.Reason})");
            await page.WaitForFunctionAsync("() => window.got.length >= 21", null, new() { Timeout = 15_000 });
            Assert.Equal(Enumerable.Range(0, 21).Select(i => "buffered" + i), await page.EvaluateAsync<string[]>("() => window.got"));
            output.WriteLine($"lifecycle: the 21 messages sent while Disconnected reached the page " +
                $"{(driver.Now - thawedAt).TotalMilliseconds:0} ms after the thaw");
            Assert.Equal([ConnectionState.Connecting, ConnectionState.Connected, ConnectionState.Disconnected, ConnectionState.Connected], session.States);
            Assert.Empty(session.Errors);
            Assert.Empty(session.Events.OfType<DataChannelSendFailed>());
        }
        finally
        {
            if (frozen.Length > 0) ChromiumProcesses.Signal(ns, "CONT");
            await session.StopAsync();
            try { await chromium.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)); }
            catch (Exception e) when (e is TimeoutException or Microsoft.Playwright.PlaywrightException)
            {
                output.WriteLine("closing the browser: " + e.Message);
            }
            ChromiumProcesses.KillAll(ns, TimeSpan.FromSeconds(5));
        }
    }

    // A liveness timer on the real clock: not before its configured time (less the 10 % the timers allow, and `early`
    // more when the measurement starts before the last packet), and not seconds after it. How exact the timers are is
    // claimed by the virtual-time tests (IceAgentLivenessTests, to the tick), not here: on a loaded 2-core machine a
    // deadline thread may run hundreds of milliseconds late.
    private static void AssertFiredAfter(TimeSpan expected, TimeSpan measured, string what, TimeSpan early = default)
    {
        Assert.True(measured >= expected * 0.9 - early && measured <= expected + TimeSpan.FromSeconds(2),
            $"{what}: {measured.TotalMilliseconds:0.0} ms for a configured {expected.TotalMilliseconds:0} ms");
    }

    // We close; the browser learns it from our SCTP ABORT and DTLS close_notify. Report how long it took.
    [Fact]
    public async Task OurCloseIsNoticedByTheBrowserWithinTenSeconds()
    {
        using var ns = NetworkNamespace.Create();
        await using var driver = new UdpDriver();
        ns.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
        using var certificate = NewCertificate();
        await using var pc = new PeerConnection(driver,
            new PeerConnectionOptions { Certificate = certificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });
        var session = new AsyncEchoSession(pc);
        try
        {
            await using var chromium = await HeadlessChromium.LaunchAsync(ns);
            var page = await ConnectAndEchoOnceAsync(chromium, pc);

            // The page's clock starts just before we close (an upper bound: it includes one evaluate's return trip).
            var pageStart = await page.EvaluateAsync<double>("() => window.closeAsked = performance.now()");
            var closing = Stopwatch.StartNew();
            await pc.CloseAsync("test closes").WaitAsync(Patience);
            Assert.Equal(ConnectionState.Closed, pc.State);
            const string noticed = "() => window.ch.readyState === 'closed' || ['closed', 'failed'].includes(window.pc.connectionState)";
            await page.WaitForFunctionAsync(noticed, null, new() { Timeout = 10_000, PollingInterval = 1 });
            var polled = closing.Elapsed;
            // The channel's own close is waited for (bounded), not assumed to have come after a fixed sleep.
            await page.WaitForFunctionAsync("() => window.log.some(e => e.at >= window.closeAsked && e.what === 'channel:closed')", null,
                new() { Timeout = 10_000, PollingInterval = 10 });
            var log = (await page.EvaluateAsync<string[]>("() => window.log.filter(e => e.at >= window.closeAsked).map(e => e.what + '|' + e.at)"))
                .Select(e => e.Split('|')).Select(p => new LogEntry(p[0], double.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture))).ToList();
            output.WriteLine($"lifecycle: we closed -> the browser noticed (polled from the test) after {polled.TotalMilliseconds:0.0} ms");
            foreach (var e in log) output.WriteLine($"lifecycle: we closed -> browser {e.What} after {e.At - pageStart:0.0} ms (page clock)");
            var first = log.FirstOrDefault(e => e.What is "channel:closed" or "connection:closed" or "connection:failed")
                ?? throw new Xunit.Sdk.XunitException("the browser logged no close: " + string.Join(", ", log.Select(e => e.What)));
            output.WriteLine($"lifecycle: we closed -> browser {first.What} first, after {first.At - pageStart:0.0} ms (page clock)");
            Assert.True(first.At - pageStart < 10_000);
            Assert.Contains(log, e => e.What == "channel:closed");
        }
        finally { await session.StopAsync(); }
    }

    private sealed record LogEntry(string What, double At);
}
