using System.Diagnostics;
using System.Net;
using System.Runtime.Versioning;
using System.Text.Json;
using Microsoft.Playwright;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// ICE restart against headless Chromium, started by either side, while the page keeps an
/// ordered channel busy with numbered messages that we echo. Afterwards every echo came back in order, the browser's
/// getStats shows it connected on a new selected pair of the new ICE generation, and so does our side. Every measured
/// time is printed on a line starting with "restart:".
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class ChromiumIceRestartTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    /// <summary>
    /// The page's side: one RTCPeerConnection, an ordered channel "tick" sending a numbered message every 10 ms once
    /// open (ticking is started by the test), the echoes it gets back, and helpers for descriptions that wait until
    /// gathering has ended (the candidates are then in the SDP) and for getStats.
    /// </summary>
    private const string Setup = """
        () => {
          const pc = window.pc = new RTCPeerConnection({ iceServers: [] });
          window.sent = 0; window.got = []; window.states = [];
          pc.oniceconnectionstatechange = () => window.states.push('ice:' + pc.iceConnectionState);
          pc.onconnectionstatechange = () => window.states.push('pc:' + pc.connectionState);
          window.gathered = () => new Promise(resolve => {
            const timer = setTimeout(resolve, 5000);
            pc.onicecandidate = e => { if (!e.candidate) { clearTimeout(timer); resolve(); } };
          });
          window.bindChannel = ch => {
            window.ch = ch;
            ch.binaryType = 'arraybuffer';
            ch.onmessage = e => window.got.push(e.data);
          };
          pc.ondatachannel = e => window.bindChannel(e.channel);
          window.startTicking = () => { window.ticker = setInterval(() => { if (window.ch.readyState === 'open') window.ch.send('t' + window.sent++); }, 10); };
          window.stopTicking = () => clearInterval(window.ticker);
          window.iceStats = async () => {
            const stats = await pc.getStats();
            let transport = null;
            stats.forEach(s => { if (s.type === 'transport') transport = s; });
            const pair = transport && transport.selectedCandidatePairId ? stats.get(transport.selectedCandidatePairId) : null;
            const local = pair ? stats.get(pair.localCandidateId) : null;
            const remote = pair ? stats.get(pair.remoteCandidateId) : null;
            return {
              ufrag: transport ? transport.iceLocalUsernameFragment || '' : '',
              iceState: transport ? transport.iceState || '' : '',
              changes: transport ? transport.selectedCandidatePairChanges || 0 : 0,
              pairState: pair ? pair.state : '',
              local: local ? local.address + ':' + local.port : '',
              remote: remote ? remote.address + ':' + remote.port : '',
              connection: pc.iceConnectionState,
              pc: pc.connectionState,
            };
          };
          // Polls getStats every 5 ms until the selected pair changed from `before` changes and is in use: the time
          // from `since` (performance.now() at the restart) to then, on the browser's clock.
          window.untilNewPair = async (since, before) => {
            while (performance.now() - since < 15000) {
              const s = await window.iceStats();
              if (s.changes > before && s.pairState === 'succeeded' && s.connection === 'connected') return performance.now() - since;
              await new Promise(r => setTimeout(r, 5));
            }
            return -1;
          };
        }
        """;

    // Our peer connection on a driver inside a fresh namespace, its echo session, and a Chromium page there with Setup run.
    private sealed class Rig : IAsyncDisposable
    {
        private NetworkNamespace _ns = null!;
        private DtlsCertificate _certificate = null!;
        private HeadlessChromium? _chromium;
        public UdpDriver Driver { get; private init; } = null!;
        public PeerConnection Pc { get; private init; } = null!;
        public AsyncEchoSession Session { get; private init; } = null!;
        public IPage Page { get; private set; } = null!;

        public static async Task<Rig> StartAsync(IceRole role, ITestOutputHelper output)
        {
            var ns = NetworkNamespace.Create();
            var driver = new UdpDriver();
            ns.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
            var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
            var pc = new PeerConnection(driver, new PeerConnectionOptions { Certificate = certificate, Ice = new IceAgentOptions { Role = role } });
            var rig = new Rig { _ns = ns, _certificate = certificate, Driver = driver, Pc = pc, Session = new AsyncEchoSession(pc) };
            try
            {
                rig._chromium = await HeadlessChromium.LaunchAsync(ns);
                rig.Page = await rig._chromium.Browser.NewPageAsync();
                rig.Page.Console += (_, m) => output.WriteLine("browser: " + m.Text);
                await rig.Page.EvaluateAsync(Setup);
                return rig;
            }
            catch
            {
                await rig.DisposeAsync();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_chromium is not null) await _chromium.DisposeAsync();
            await Session.StopAsync();
            await Pc.DisposeAsync();
            _certificate.Dispose();
            await Driver.DisposeAsync();
            _ns.Dispose();
        }
    }

    private static string UfragOf(string sdp) =>
        sdp.Split('\n').Select(l => l.Trim()).First(l => l.StartsWith("a=ice-ufrag:", StringComparison.Ordinal))["a=ice-ufrag:".Length..];

    private static async Task<JsonElement> StatsAsync(IPage page) => await page.EvaluateAsync<JsonElement>("() => window.iceStats()");

    // The browser restarts: restartIce(), a new offer, our answer. Either the offer waits until gathering ended (its
    // candidates are in it), or it goes at once and the browser's new candidates trickle to AddRemoteCandidateAsync
    // as its onicecandidate gives them (each carries "ufrag <new>"), then end-of-candidates.
    private async Task<(double BrowserMs, IceRestartCompleted Ours)> BrowserRestartsAsync(IPage page, PeerConnection pc, AsyncEchoSession session, bool trickle)
    {
        var before = (await StatsAsync(page)).GetProperty("changes").GetInt32();
        var done = session.Events.OfType<IceRestartCompleted>().Count();
        var offer = await page.EvaluateAsync<string>("""
            async trickle => {
              window.restartAt = performance.now();
              window.pc.restartIce();
              if (trickle) {
                window.trickled = []; window.trickleDone = false;
                window.pc.onicecandidate = e => { if (e.candidate && e.candidate.candidate) window.trickled.push(e.candidate.candidate);
                  else window.trickleDone = true; };
                await window.pc.setLocalDescription();
                return window.pc.localDescription.sdp;
              }
              const gathered = window.gathered();
              await window.pc.setLocalDescription();
              await gathered;
              return window.pc.localDescription.sdp;
            }
            """, trickle);
        var answer = await pc.CreateAnswerAsync(offer).WaitAsync(Patience);
        Assert.NotEqual(UfragOf(offer), UfragOf(answer));
        await page.EvaluateAsync("sdp => window.pc.setRemoteDescription({ type: 'answer', sdp })", answer);
        if (trickle)
        {
            var forwarded = 0;
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < Patience)
            {
                var state = await page.EvaluateAsync<JsonElement>("() => ({ list: window.trickled, done: window.trickleDone })");
                var list = state.GetProperty("list").EnumerateArray().Select(e => e.GetString()!).ToList();
                foreach (var candidate in list.Skip(forwarded))
                {
                    Assert.Contains("ufrag " + UfragOf(offer), candidate, StringComparison.Ordinal);
                    await pc.AddRemoteCandidateAsync(candidate).WaitAsync(Patience);
                }
                forwarded = list.Count;
                if (state.GetProperty("done").GetBoolean()) break;
                await Task.Delay(5);
            }
            await pc.AddRemoteCandidateAsync(null).WaitAsync(Patience);
            // Chromium here (loopback only) often gathers its new port without signalling it: we then learn it as
            // peer-reflexive from its checks. Whatever it trickles carries the new ufrag (asserted above).
            output.WriteLine($"restart: {forwarded} browser candidate(s) trickled after the restart offer");
        }
        var browserMs = await page.EvaluateAsync<double>($"() => window.untilNewPair(window.restartAt, {before})");
        output.WriteLine($"restart: browser {browserMs:0.0} ms, stats {await StatsAsync(page)}");
        var ours = await WaitForAsync(session, () => session.Events.OfType<IceRestartCompleted>().Skip(done).FirstOrDefault());
        Assert.Equal(UfragOf(answer), ours.LocalUsernameFragment);
        Assert.Equal(UfragOf(offer), ours.RemoteUsernameFragment);
        Assert.False(session.Events.OfType<IceRestartStarted>().Last().ByUs);
        return (browserMs, ours);
    }

    // We restart: our offer with new credentials, the browser's answer.
    private async Task<(double BrowserMs, IceRestartCompleted Ours, TimeSpan FromAnswer)> WeRestartAsync(IPage page, PeerConnection pc,
        AsyncEchoSession session, UdpDriver driver)
    {
        var before = (await StatsAsync(page)).GetProperty("changes").GetInt32();
        var done = session.Events.OfType<IceRestartCompleted>().Count();
        var offer = await pc.CreateOfferAsync(new OfferOptions { IceRestart = true }).WaitAsync(Patience);
        var answer = await page.EvaluateAsync<string>("""
            async sdp => {
              window.restartAt = performance.now();
              await window.pc.setRemoteDescription({ type: 'offer', sdp });
              const gathered = window.gathered();
              await window.pc.setLocalDescription();
              await gathered;
              return window.pc.localDescription.sdp;
            }
            """, offer);
        var answerAt = driver.Now;
        await pc.SetRemoteDescriptionAsync(answer).WaitAsync(Patience);
        var browserMs = await page.EvaluateAsync<double>($"() => window.untilNewPair(window.restartAt, {before})");
        output.WriteLine($"restart: browser {browserMs:0.0} ms, stats {await StatsAsync(page)}");
        var ours = await WaitForAsync(session, () => session.Events.OfType<IceRestartCompleted>().Skip(done).FirstOrDefault());
        Assert.Equal(UfragOf(offer), ours.LocalUsernameFragment);
        Assert.Equal(UfragOf(answer), ours.RemoteUsernameFragment);
        Assert.True(session.Events.OfType<IceRestartStarted>().Last().ByUs);
        return (browserMs, ours, ours.At - answerAt);
    }

    private static async Task<T> WaitForAsync<T>(AsyncEchoSession session, Func<T?> find) where T : class
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Patience)
        {
            if (find() is { } found) return found;
            await Task.Delay(2);
        }
        throw new TimeoutException($"no {typeof(T).Name} within {Patience}; our state {session.Connection.State}; " +
            $"{await session.Connection.DescribeIceAsync()}");
    }

    // After a restart: the browser is connected on a pair whose ends are the pair we selected for the new generation.
    private async Task AssertOnTheNewPairAsync(IPage page, PeerConnection pc, IceRestartCompleted ours, string label)
    {
        var stats = await StatsAsync(page);
        output.WriteLine($"restart: {label}: browser getStats: {stats}");
        Assert.Equal("connected", stats.GetProperty("connection").GetString());
        Assert.Equal("connected", stats.GetProperty("pc").GetString());
        Assert.Equal("succeeded", stats.GetProperty("pairState").GetString());
        Assert.Equal(ours.Remote.Address.ToString(), stats.GetProperty("local").GetString());
        var selected = await pc.GetSelectedPairAsync();
        Assert.Equal(ours.LocalUsernameFragment, selected!.LocalUsernameFragment);
        Assert.Equal(stats.GetProperty("ufrag").GetString(), selected.RemoteUsernameFragment);
    }

    // Ticks must go on for a while after the last restart, then every echo is back, in order.
    private async Task AssertEveryEchoInOrderAsync(IPage page, AsyncEchoSession session)
    {
        await page.WaitForTimeoutAsync(300);
        await page.EvaluateAsync("() => window.stopTicking()");
        await page.WaitForFunctionAsync("() => window.got.length === window.sent", null, new() { Timeout = 20_000 });
        var got = await page.EvaluateAsync<string[]>("() => window.got");
        Assert.Equal(Enumerable.Range(0, got.Length).Select(i => "t" + i), got);
        output.WriteLine($"restart: {got.Length} messages sent every 10 ms by the page across the restarts, every echo back in order");
        Assert.Empty(session.Errors);
        Assert.Equal([ConnectionState.Connecting, ConnectionState.Connected], session.States);
        var states = await page.EvaluateAsync<string[]>("() => window.states");
        output.WriteLine("restart: browser states: " + string.Join(", ", states));
        Assert.DoesNotContain(states, s => s.EndsWith(":failed", StringComparison.Ordinal) || s.EndsWith(":closed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task BrowserOffersThenRestartsIceThenWeRestartWhileTheChannelEchoes()
    {
        await using var rig = await Rig.StartAsync(IceRole.Controlled, output);
        var (driver, pc, session, page) = (rig.Driver, rig.Pc, rig.Session, rig.Page);
        var offer = await page.EvaluateAsync<string>("""
            async () => {
              window.bindChannel(window.pc.createDataChannel('tick'));
              const gathered = window.gathered();
              await window.pc.setLocalDescription();
              await gathered;
              return window.pc.localDescription.sdp;
            }
            """);
        var answer = await pc.CreateAnswerAsync(offer).WaitAsync(Patience);
        await page.EvaluateAsync("sdp => window.pc.setRemoteDescription({ type: 'answer', sdp })", answer);
        await page.WaitForFunctionAsync("() => window.ch.readyState === 'open'", null, new() { Timeout = 20_000 });
        await page.EvaluateAsync("() => window.startTicking()");
        await page.WaitForFunctionAsync("() => window.got.length >= 20", null, new() { Timeout = 10_000 });
        var first = await StatsAsync(page);

        // Renegotiation without changes, each side offering once: same credentials, no restart, echo unaffected.
        var reoffer = await page.EvaluateAsync<string>("async () => { await window.pc.setLocalDescription(await window.pc.createOffer()); return " +
            "window.pc.localDescription.sdp; }");
        var reanswer = await pc.CreateAnswerAsync(reoffer).WaitAsync(Patience);
        Assert.Equal(UfragOf(answer), UfragOf(reanswer));
        Assert.Contains("a=setup:passive", reanswer, StringComparison.Ordinal);   // we answered passive: we stay the DTLS server
        await page.EvaluateAsync("sdp => window.pc.setRemoteDescription({ type: 'answer', sdp })", reanswer);
        var ourReoffer = await pc.CreateOfferAsync().WaitAsync(Patience);
        Assert.Equal(UfragOf(answer), UfragOf(ourReoffer));
        Assert.Contains("a=setup:passive", ourReoffer, StringComparison.Ordinal); // RFC 8842: the server offers passive
        var browserReanswer = await page.EvaluateAsync<string>("""
            async sdp => { await window.pc.setRemoteDescription({ type: 'offer', sdp }); await window.pc.setLocalDescription();
              return window.pc.localDescription.sdp; }
            """, ourReoffer);
        await pc.SetRemoteDescriptionAsync(browserReanswer).WaitAsync(Patience);
        Assert.Equal(UfragOf(offer), UfragOf(browserReanswer));
        Assert.Contains("a=setup:active", browserReanswer, StringComparison.Ordinal);
        Assert.Empty(session.Events.OfType<IceRestartStarted>());
        var echoed = await page.EvaluateAsync<int>("() => window.got.length");
        await page.WaitForFunctionAsync($"() => window.got.length >= {echoed + 10}", null, new() { Timeout = 10_000 });
        output.WriteLine("restart: re-offers without changes by the browser and by us: same credentials and DTLS roles, echo goes on");

        var (browserMs, ours) = await BrowserRestartsAsync(page, pc, session, trickle: false);
        output.WriteLine($"restart: browser restartIce() -> new pair selected: {browserMs:0.0} ms on the browser's getStats (5 ms polling), " +
            $"{ours.Elapsed.TotalMilliseconds:0.0} ms on our side from our answer");
        Assert.InRange(browserMs, 0, 15_000);
        await AssertOnTheNewPairAsync(page, pc, ours, "after the browser's restart");
        var afterBrowser = await StatsAsync(page);
        Assert.NotEqual(first.GetProperty("ufrag").GetString(), afterBrowser.GetProperty("ufrag").GetString());

        (browserMs, ours, var fromAnswer) = await WeRestartAsync(page, pc, session, driver);
        output.WriteLine($"restart: our restart offer -> new pair selected: {ours.Elapsed.TotalMilliseconds:0.0} ms on our side from our offer " +
            $"({fromAnswer.TotalMilliseconds:0.0} ms from the browser's answer; the rest is the page gathering before answering), {browserMs:0.0} ms on the " +
            $"browser's getStats from its setRemoteDescription");
        Assert.InRange(browserMs, 0, 15_000);
        await AssertOnTheNewPairAsync(page, pc, ours, "after our restart");
        Assert.NotEqual(afterBrowser.GetProperty("ufrag").GetString(), (await StatsAsync(page)).GetProperty("ufrag").GetString());

        await AssertEveryEchoInOrderAsync(page, session);
    }

    [Fact]
    public async Task WeOfferThenRestartThenTheBrowserRestartsIceWhileTheChannelEchoes()
    {
        await using var rig = await Rig.StartAsync(IceRole.Controlling, output);
        var (driver, pc, session, page) = (rig.Driver, rig.Pc, rig.Session, rig.Page);
        var offer = await pc.CreateOfferAsync().WaitAsync(Patience);
        var channelTask = pc.CreateDataChannelAsync("tick");
        var answer = await page.EvaluateAsync<string>("""
            async sdp => {
              await window.pc.setRemoteDescription({ type: 'offer', sdp });
              const gathered = window.gathered();
              await window.pc.setLocalDescription();
              await gathered;
              return window.pc.localDescription.sdp;
            }
            """, offer);
        await pc.SetRemoteDescriptionAsync(answer).WaitAsync(Patience);
        await channelTask.WaitAsync(Patience);
        await page.WaitForFunctionAsync("() => window.ch && window.ch.readyState === 'open'", null, new() { Timeout = 20_000 });
        await page.EvaluateAsync("() => window.startTicking()");
        await page.WaitForFunctionAsync("() => window.got.length >= 20", null, new() { Timeout = 10_000 });

        var (browserMs, ours, fromAnswer) = await WeRestartAsync(page, pc, session, driver);
        output.WriteLine($"restart: (we offered first) our restart offer -> new pair selected: {ours.Elapsed.TotalMilliseconds:0.0} ms on our side from our " +
            $"offer ({fromAnswer.TotalMilliseconds:0.0} ms from the browser's answer), {browserMs:0.0} ms on the browser's getStats");
        Assert.InRange(browserMs, 0, 15_000);
        await AssertOnTheNewPairAsync(page, pc, ours, "after our restart");

        (browserMs, ours) = await BrowserRestartsAsync(page, pc, session, trickle: true);
        output.WriteLine($"restart: (we offered first) browser restartIce() with trickled candidates -> new pair selected: {browserMs:0.0} ms on the " +
            $"browser's getStats, {ours.Elapsed.TotalMilliseconds:0.0} ms on our side from our answer");
        Assert.InRange(browserMs, 0, 15_000);
        await AssertOnTheNewPairAsync(page, pc, ours, "after the browser's restart");

        await AssertEveryEchoInOrderAsync(page, session);
    }
}
