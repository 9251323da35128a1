using System.Collections.Concurrent;
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
/// SNAP (draft-hancke-tsvwg-snap) with Chromium 156 started with <c>--force-fieldtrials=WebRTC-Sctp-Snap/Enabled/</c>,
/// as offerer and as answerer, in a namespace with only loopback: both descriptions carry a=sctp-init (Chromium's and
/// our own), the association starts without the SCTP handshake, and an in-band channel and a negotiated one
/// (<c>{ negotiated: true, id: 7 }</c>) echo. Without the field trial Chromium sends none, we answer none, and the
/// normal path works.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class ChromiumSnapTests(ITestOutputHelper output)
{
    private const string SnapTrial = "--force-fieldtrials=WebRTC-Sctp-Snap/Enabled/";
    private const int NegotiatedId = 7;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private static string? SctpInitLine(string sdp) =>
        sdp.Split("\r\n").FirstOrDefault(l => l.StartsWith("a=sctp-init:", StringComparison.Ordinal));

    private const string OfferScript = """
        async (id) => {
          const pc = new RTCPeerConnection({ iceServers: [] });
          window.pc = pc;
          window.echoes = [];
          const make = (label, init, text) => {
            const ch = pc.createDataChannel(label, init);
            ch.onopen = () => ch.send(text);
            ch.onmessage = e => window.echoes.push(label + ':' + e.data);
            return ch;
          };
          window.channels = [make('echo', undefined, 'ping'), make('neg', { negotiated: true, id }, 'n-ping')];
          await pc.setLocalDescription(await pc.createOffer());
          await new Promise(r => { if (pc.iceGatheringState === 'complete') r();
            else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
          return pc.localDescription.sdp;
        }
        """;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ChromiumOffersAndWeAnswerWithOurOwnInitAndEchoOnAnInBandAndANegotiatedChannel(bool fieldTrial)
    {
        using var ns = NetworkNamespace.Create("rtc-snap");
        await using var driver = new UdpDriver();
        var local = ns.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
        using var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var core = new PeerConnectionCore(new PeerConnectionOptions { Certificate = certificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });
        core.AddHostCandidate(local);
        var peer = new TimedEchoPeer(core, echoOnlyWhenConnected: false);
        await using var handle = driver.Register(peer);

        await using var chromium = await HeadlessChromium.LaunchAsync(ns, false, fieldTrial ? [SnapTrial] : []);
        var page = await chromium.Browser.NewPageAsync();
        var offerText = await page.EvaluateAsync<string>(OfferScript, NegotiatedId);
        var offerLine = SctpInitLine(offerText);
        output.WriteLine($"Chromium's offer: {offerLine ?? "(no a=sctp-init)"}");
        var started = Stopwatch.StartNew();
        var answer = await handle.InvokeAsync(now =>
        {
            core.CreateDataChannel("neg", new DataChannelOptions { Negotiated = true, Id = NegotiatedId }, now);
            return core.CreateAnswer(SessionDescription.Parse(offerText), now).ToString();
        });
        var answerLine = SctpInitLine(answer);
        output.WriteLine($"our answer: {answerLine ?? "(no a=sctp-init)"}; SNAP refusal: {await handle.InvokeAsync(_ => core.SnapRefusal)}");
        await page.EvaluateAsync("sdp => window.pc.setRemoteDescription({ type: 'answer', sdp })", answer);

        try { await page.WaitForFunctionAsync("() => window.echoes.length === 2", null, new() { Timeout = (int)Patience.TotalMilliseconds }); }
        catch (TimeoutException)
        {
            output.WriteLine("no echoes; ours: " + await handle.InvokeAsync(_ => $"{core.State} ({core.Reason}); dtls {core.Dtls?.State}; sctp " +
                $"{core.Sctp?.State}; {core.DescribeIce()}"));
            output.WriteLine("browser: " + await page.EvaluateAsync<string>("() => JSON.stringify({ conn: window.pc.connectionState, sctp: window.pc.sctp && " +
                "window.pc.sctp.state, channels: window.channels.map(c => c.readyState), echoes: window.echoes })"));
            throw;
        }
        output.WriteLine($"answer applied -> both echoes back in {started.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(["echo:ping", "neg:n-ping"], (await page.EvaluateAsync<string[]>("() => window.echoes")).Order());
        Assert.Equal(fieldTrial, offerLine is not null);
        Assert.Equal(fieldTrial, answerLine is not null);
        Assert.NotEqual(offerLine, answerLine ?? "");                                  // ours, not Chromium's echoed
        Assert.Equal(fieldTrial, await handle.InvokeAsync(_ => core.SnapInUse));
        Assert.Equal(fieldTrial, await handle.InvokeAsync(_ => core.Sctp!.StartedFromPeerInit));
        await handle.InvokeAsync(now => core.Close(now));
    }

    private const string AnswerScript = """
        async ({ offer, id }) => {
          const pc = new RTCPeerConnection({ iceServers: [] });
          window.pc = pc;
          const echo = ch => { ch.onmessage = m => ch.send(m.data); };
          pc.ondatachannel = e => echo(e.channel);
          echo(pc.createDataChannel('neg', { negotiated: true, id }));
          await pc.setRemoteDescription({ type: 'offer', sdp: offer });
          await pc.setLocalDescription(await pc.createAnswer());
          await new Promise(r => { if (pc.iceGatheringState === 'complete') r();
            else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
          return pc.localDescription.sdp;
        }
        """;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task WeOfferAndChromiumAnswersWithItsInitAndEchoesOnAnInBandAndANegotiatedChannel(bool fieldTrial)
    {
        using var ns = NetworkNamespace.Create("rtc-snap");
        await using var driver = new UdpDriver();
        var local = ns.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
        using var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var core = new PeerConnectionCore(new PeerConnectionOptions { Certificate = certificate, Ice = new IceAgentOptions { Role = IceRole.Controlling } });
        core.AddHostCandidate(local);
        var peer = new TimedEchoPeer(core, echo: false);
        await using var handle = driver.Register(peer);

        await using var chromium = await HeadlessChromium.LaunchAsync(ns, false, fieldTrial ? [SnapTrial] : []);
        var page = await chromium.Browser.NewPageAsync();
        var offer = await handle.InvokeAsync(now =>
        {
            core.CreateDataChannel("echo", null, now);
            core.CreateDataChannel("neg", new DataChannelOptions { Negotiated = true, Id = NegotiatedId }, now);
            return core.CreateOffer(now).ToString();
        });
        var offerLine = SctpInitLine(offer);
        Assert.NotNull(offerLine);
        var answerText = await page.EvaluateAsync<string>(AnswerScript, new { offer, id = NegotiatedId });
        var answerLine = SctpInitLine(answerText);
        output.WriteLine($"our offer: {offerLine}; Chromium's answer: {answerLine ?? "(no a=sctp-init)"}");
        var started = Stopwatch.StartNew();
        await handle.InvokeAsync(now => core.SetRemoteDescription(SessionDescription.Parse(answerText), now));

        var end = DateTime.UtcNow + Patience;
        while (peer.Events.OfType<DataChannelOpened>().Count() < 2 && DateTime.UtcNow < end) await Task.Delay(5);
        var channels = peer.Events.OfType<DataChannelOpened>().Select(o => o.Channel).ToDictionary(c => c.Label);
        Assert.True(channels.Count == 2, "channels open: " + string.Join(", ", channels.Keys) + "; " +
            await handle.InvokeAsync(_ => $"{core.State} ({core.Reason}); dtls {core.Dtls?.State}; sctp {core.Sctp?.State}"));
        await handle.InvokeAsync(now =>
        {
            channels["echo"].Send("hello");
            channels["neg"].Send("n-hello");
        });
        end = DateTime.UtcNow + Patience;
        while (peer.Events.OfType<DataChannelMessageReceived>().Count() < 2 && DateTime.UtcNow < end) await Task.Delay(5);
        output.WriteLine($"answer applied -> both echoes back in {started.Elapsed.TotalMilliseconds:0} ms; SNAP refusal: " +
            $"{await handle.InvokeAsync(_ => core.SnapRefusal)}");
        var applied = peer.Events.OfType<ConnectionMilestoneReached>().FirstOrDefault()?.At ?? TimeSpan.Zero;
        foreach (var e in peer.Events.Where(e => e is ConnectionMilestoneReached or DataChannelOpened or DataChannelMessageReceived))
            output.WriteLine($"  {(e.At - applied).TotalMilliseconds,7:0.0} ms {e}");
        output.WriteLine("  ours: " + await handle.InvokeAsync(_ => $"dtls {core.Dtls?.Version} retransmissions {core.Dtls?.Counters.Retransmissions}; sctp " +
            $"sent {core.Sctp?.Counters.PacketsSent} received {core.Sctp?.Counters.PacketsReceived} data chunks {core.Sctp?.Counters.DataChunksSent} " +
            $"retransmitted {core.Sctp?.Counters.Retransmissions} bad tag {core.Sctp?.Counters.BadVerificationTag}"));
        var echoes = peer.Events.OfType<DataChannelMessageReceived>().Select(m => m.Channel.Label + ":" + System.Text.Encoding.UTF8.GetString(m.Data)).Order();
        Assert.Equal(["echo:hello", "neg:n-hello"], echoes);
        Assert.Equal(fieldTrial, answerLine is not null);
        Assert.NotEqual(offerLine, answerLine);
        Assert.Equal(fieldTrial, await handle.InvokeAsync(_ => core.SnapInUse));
        Assert.Equal(fieldTrial, await handle.InvokeAsync(_ => core.Sctp!.StartedFromPeerInit));
        await handle.InvokeAsync(now => core.Close(now));
    }
}
