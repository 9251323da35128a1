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
/// SPED with Chromium 156 (<c>--force-fieldtrials=WebRTC-IceHandshakeDtls/Enabled/</c>), as offerer and as answerer, in
/// a namespace with only loopback: the ice-options lines, whether the handshake came in the checks (our counters), and
/// an echo on a data channel; without the field trial the normal path. Lines start with "sped:".
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class SpedChromiumTests(ITestOutputHelper output)
{
    private const string Trial = "--force-fieldtrials=WebRTC-IceHandshakeDtls/Enabled/";

    // The page's side: one channel, 5 messages sent once open, the echoes collected.
    private const string Setup = """
        () => {
          window.pc = new RTCPeerConnection({ iceServers: [] });
          window.echoes = [];
          window.wire = ch => {
            let sent = false;
            const send = () => { if (sent) return; sent = true; for (let i = 0; i < 5; i++) ch.send('m' + i); };
            ch.onmessage = e => window.echoes.push(e.data);
            ch.onopen = send;
            if (ch.readyState === 'open') send();
          };
        }
        """;
    private const string Offer = """
        async () => {
          window.wire(window.pc.createDataChannel('chat'));
          await window.pc.setLocalDescription(await window.pc.createOffer());
          await new Promise(r => { if (window.pc.iceGatheringState === 'complete') r();
            else window.pc.onicegatheringstatechange = () => window.pc.iceGatheringState === 'complete' && r(); });
          return window.pc.localDescription.sdp;
        }
        """;
    private const string Answer = """
        async (offer) => {
          window.pc.ondatachannel = e => window.wire(e.channel);
          await window.pc.setRemoteDescription({ type: 'offer', sdp: offer });
          await window.pc.setLocalDescription(await window.pc.createAnswer());
          await new Promise(r => { if (window.pc.iceGatheringState === 'complete') r();
            else window.pc.onicegatheringstatechange = () => window.pc.iceGatheringState === 'complete' && r(); });
          return window.pc.localDescription.sdp;
        }
        """;

    [Theory]
    [InlineData(true, true, DtlsVersion.Dtls13)]
    [InlineData(true, false, DtlsVersion.Dtls13)]
    [InlineData(false, true, DtlsVersion.Dtls13)]
    [InlineData(false, false, DtlsVersion.Dtls13)]
    [InlineData(true, true, DtlsVersion.Dtls12)]
    [InlineData(false, true, DtlsVersion.Dtls12)]
    public async Task ChromiumWithAndWithoutTheFieldTrialEchoes(bool chromiumOffers, bool trial, DtlsVersion ourMax)
    {
        using var ns = NetworkNamespace.Create(chromiumOffers ? "rtc-spo" : "rtc-spa");
        await using var driver = new UdpDriver();
        var local = ns.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
        using var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var core = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = certificate,
            DtlsMaxVersion = ourMax,
            Ice = new IceAgentOptions { Role = chromiumOffers ? IceRole.Controlled : IceRole.Controlling },
        });
        core.AddHostCandidate(local);
        var peer = new TimedEchoPeer(core, echoOnlyWhenConnected: false);
        await using var handle = driver.Register(peer);
        await using var chromium = trial ? await HeadlessChromium.LaunchAsync(ns, false, Trial) : await HeadlessChromium.LaunchAsync(ns);
        var page = await chromium.Browser.NewPageAsync();
        await page.EvaluateAsync(Setup);
        var clock = Stopwatch.StartNew();
        string chromiumSdp, ourSdp;
        if (chromiumOffers)
        {
            chromiumSdp = await page.EvaluateAsync<string>(Offer);
            clock.Restart();
            ourSdp = await handle.InvokeAsync(now => core.CreateAnswer(SessionDescription.Parse(chromiumSdp), now).ToString());
            await page.EvaluateAsync("sdp => window.pc.setRemoteDescription({ type: 'answer', sdp })", ourSdp);
        }
        else
        {
            ourSdp = await handle.InvokeAsync(now => { core.CreateDataChannel("chat", null, now); return core.CreateOffer(now).ToString(); });
            chromiumSdp = await page.EvaluateAsync<string>(Answer, ourSdp);
            clock.Restart();
            await handle.InvokeAsync(now => core.SetRemoteDescription(SessionDescription.Parse(chromiumSdp), now));
        }
        string IceOptions(string sdp) => string.Join(" | ", sdp.Split("\r\n").Where(l => l.StartsWith("a=ice-options", StringComparison.Ordinal)).Distinct());
        output.WriteLine($"sped: chromium {(chromiumOffers ? "offers" : "answers")}, trial {trial}, our max {ourMax}: chromium " +
            $"{IceOptions(chromiumSdp)}; ours {IceOptions(ourSdp)}");

        var end = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (await page.EvaluateAsync<int>("() => window.echoes.length") < 5 && DateTime.UtcNow < end) await Task.Delay(20);
        var echoMs = clock.ElapsedMilliseconds;
        var state = await handle.InvokeAsync(_ =>
            $"{core.State}; DTLS {core.Dtls?.State} {core.Dtls?.Version}, retransmissions {core.Dtls?.Counters.Retransmissions}; SPED " +
            $"{(core.Sped is { } s ? $"{s.State}, received in STUN {s.Counters.DatagramsReceived}, sent {s.Counters.DatagramsSent}, " +
                $"acked {s.Counters.DatagramsAcknowledged}, malformed acks {s.Counters.MalformedAcks}, not DTLS {s.Counters.NotDtls}" : "not negotiated")}");
        var milestones = peer.Events.OfType<ConnectionMilestoneReached>().Select(m => $"{m.Milestone} {m.SinceOffer.TotalMilliseconds:0.0} ms").ToList();
        output.WriteLine($"sped: ours {state}; 5 echoes after {echoMs} ms; milestones: {string.Join(", ", milestones)}");
        var echoes = await page.EvaluateAsync<string[]>("() => window.echoes");
        output.WriteLine($"sped: echoes {string.Join(",", echoes)}");
        Assert.Equal(["m0", "m1", "m2", "m3", "m4"], echoes);
        Assert.Equal(ourMax, await handle.InvokeAsync(_ => core.Dtls?.Version));
        if (trial)
        {
            Assert.Contains("sped", chromiumSdp, StringComparison.Ordinal);
            Assert.True(await handle.InvokeAsync(_ => core.Sped is { Counters.DatagramsReceived: > 0 } && core.DtlsCompletedBySped), state);
        }
        else
        {
            Assert.DoesNotContain("sped", chromiumSdp, StringComparison.Ordinal);
            Assert.True(await handle.InvokeAsync(_ => core.Sped is null or { State: Transport.Ice.SpedState.Off }), state);
        }
    }
}
