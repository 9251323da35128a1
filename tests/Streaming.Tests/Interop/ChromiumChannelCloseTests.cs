using System.Collections.Concurrent;
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
/// Data channels closed one at a time, by either side, against headless Chromium (dcsctp): RFC 8831 section 6.7 closes
/// a channel by resetting its streams (RFC 6525 outgoing SSN reset requests, each side its own), so this is our stream
/// reset against an independent implementation, in a namespace with only loopback.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class ChromiumChannelCloseTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    // The browser answers, keeps every channel by label, echoes text, and records which channels closed.
    private const string AnswerScript = """
        async (offer) => {
          const pc = new RTCPeerConnection({ iceServers: [] });
          window.pc = pc;
          window.chans = {};
          window.closedLabels = [];
          pc.ondatachannel = e => {
            const ch = e.channel;
            window.chans[ch.label] = ch;
            ch.onmessage = m => ch.send('echo:' + m.data);
            ch.onclose = () => window.closedLabels.push(ch.label);
          };
          await pc.setRemoteDescription({ type: 'offer', sdp: offer });
          await pc.setLocalDescription(await pc.createAnswer());
          await new Promise(r => {
            if (pc.iceGatheringState === 'complete') r();
            else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r();
          });
          return pc.localDescription.sdp;
        }
        """;

    [Fact]
    public async Task ChannelsClosedByEitherSideCloseOnTheOtherAndTheRestKeepWorking()
    {
        using var ns = NetworkNamespace.Create();
        await using var driver = new UdpDriver();
        var local = ns.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
        using var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var core = new PeerConnectionCore(new PeerConnectionOptions { Certificate = certificate, Ice = new IceAgentOptions { Role = IceRole.Controlling } });
        core.AddHostCandidate(local);
        var peer = new TimedEchoPeer(core, echo: false);
        await using var handle = driver.Register(peer);
        await using var chromium = await HeadlessChromium.LaunchAsync(ns);
        var page = await chromium.Browser.NewPageAsync();

        string[] labels = ["ours", "theirs1", "theirs2", "stays"];
        var offer = await handle.InvokeAsync(now =>
        {
            foreach (var label in labels) core.CreateDataChannel(label, null, now);
            return core.CreateOffer(now).ToString();
        });
        var answer = SessionDescription.Parse(await page.EvaluateAsync<string>(AnswerScript, offer));
        await handle.InvokeAsync(now => core.SetRemoteDescription(answer, now));
        var end = DateTime.UtcNow + Patience;
        while (peer.Events.OfType<DataChannelOpened>().Count() < labels.Length && DateTime.UtcNow < end) await Task.Delay(10);
        var channels = peer.Events.OfType<DataChannelOpened>().Select(o => o.Channel).ToDictionary(c => c.Label);
        Assert.Equal(labels.Order(), channels.Keys.Order());
        await page.WaitForFunctionAsync("n => Object.values(window.chans).filter(c => c.readyState === 'open').length === n", labels.Length,
            new() { Timeout = 20_000 });

        bool ClosedHere(string label) => peer.Events.OfType<DataChannelClosed>().Any(c => c.Channel.Label == label);
        async Task WaitClosedHere(params string[] names)
        {
            var until = DateTime.UtcNow + Patience;
            while (!names.All(ClosedHere) && DateTime.UtcNow < until) await Task.Delay(10);
            Assert.All(names, n => Assert.True(ClosedHere(n), $"{n} not closed on our side"));
        }

        // We close one: our reset request, then the browser's own for its side (both directions, RFC 8831 section 6.7).
        await handle.InvokeAsync(now => channels["ours"].Close(now));
        await page.WaitForFunctionAsync("() => window.closedLabels.includes('ours')", null, new() { Timeout = 20_000 });
        await WaitClosedHere("ours");

        // The browser closes two in the same turn (dcsctp may name both streams in one request).
        await page.EvaluateAsync("() => { window.chans.theirs1.close(); window.chans.theirs2.close(); }");
        await WaitClosedHere("theirs1", "theirs2");
        await page.WaitForFunctionAsync("() => window.closedLabels.includes('theirs1') && window.closedLabels.includes('theirs2')", null,
            new() { Timeout = 20_000 });
        Assert.All(new[] { "ours", "theirs1", "theirs2" }, l => Assert.Equal(DataChannelState.Closed, channels[l].State));

        // The remaining channel still carries messages both ways, and its stream was not reset.
        await handle.InvokeAsync(now => channels["stays"].Send("after the closes"));
        end = DateTime.UtcNow + Patience;
        bool Echoed() => peer.Events.OfType<DataChannelMessageReceived>()
            .Any(m => m.Channel.Label == "stays" && System.Text.Encoding.UTF8.GetString(m.Data) == "echo:after the closes");
        while (!Echoed() && DateTime.UtcNow < end) await Task.Delay(10);
        Assert.True(Echoed(), "the open channel did not echo after the others closed");
        Assert.Equal(["ours", "theirs1", "theirs2"], (await page.EvaluateAsync<string[]>("() => window.closedLabels")).Order());
        var (state, sctp) = await handle.InvokeAsync(_ => (core.State, core.Sctp!.State));
        output.WriteLine($"closed by us and by the browser; connection {state}, SCTP {sctp}");
        Assert.Equal(ConnectionState.Connected, state);
        Assert.Equal(SctpState.Established, sctp);
        await handle.InvokeAsync(now => core.Close(now, "test done"));
    }
}
