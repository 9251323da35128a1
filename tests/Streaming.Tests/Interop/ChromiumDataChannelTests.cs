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

/// <summary>Headless Chromium (libwebrtc) against our peer connection, in a namespace with only loopback.</summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class ChromiumDataChannelTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>Runs our peer connection on the driver and echoes every data channel message back.</summary>
    private sealed class EchoPeer(PeerConnectionCore core) : IDatagramPeer
    {
        public PeerConnectionCore Core { get; } = core;
        public ConcurrentQueue<PeerConnectionEvent> Events { get; } = new();
        public IReadOnlyCollection<string> LocalUsernameFragments => Core.LocalUsernameFragments;
        public void HandleDatagram(ReadOnlySpan<byte> datagram, IPEndPoint local, IPEndPoint remote, TimeSpan now) => Core.HandleDatagram(datagram, local, remote, now);
        public void HandleTimeout(TimeSpan now) => Core.HandleTimeout(now);
        public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote) =>
            Core.TryPollTransmit(destination, out written, out local, out remote);
        public TimeSpan? PollTimeout() => Core.PollTimeout();

        public void AfterInput(TimeSpan now)
        {
            Core.AfterInput(now);
            while (Core.TryPollEvent(out var e))
            {
                Events.Enqueue(e);
                if (e is DataChannelMessageReceived m && m.Channel.State == DataChannelState.Open)
                {
                    if (m.IsBinary) m.Channel.Send(m.Data, binary: true, now);
                    else m.Channel.Send(System.Text.Encoding.UTF8.GetString(m.Data));
                }
            }
            Core.AfterInput(now); // send what the echo queued
        }
    }

    private const string OfferScript = """
        async () => {
          const pc = new RTCPeerConnection({ iceServers: [] });
          window.pc = pc;
          window.results = { messages: [], closed: false, state: [] };
          pc.onconnectionstatechange = () => window.results.state.push(pc.connectionState);
          const make = (label, init) => {
            const ch = pc.createDataChannel(label, init);
            ch.binaryType = 'arraybuffer';
            ch.onmessage = e => window.results.messages.push({ label, data: typeof e.data === 'string' ? e.data : 'bin:' + e.data.byteLength });
            return ch;
          };
          window.channels = {
            ordered: make('ordered'),
            unordered: make('unordered', { ordered: false }),
            partial: make('partial', { ordered: false, maxRetransmits: 0 }),
          };
          await pc.setLocalDescription(await pc.createOffer());
          await new Promise(r => { if (pc.iceGatheringState === 'complete') r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
          return pc.localDescription.sdp;
        }
        """;

    [Fact]
    public async Task ChromiumOffersAndWeAnswerEchoingOnEveryKindOfChannel()
    {
        using var ns = NetworkNamespace.Create();
        await using var driver = new UdpDriver();
        var local = ns.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
        using var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var core = new PeerConnectionCore(new PeerConnectionOptions { Certificate = certificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });
        core.AddHostCandidate(local);
        var peer = new EchoPeer(core);
        await using var handle = driver.Register(peer);

        await using var chromium = await HeadlessChromium.LaunchAsync(ns);
        var page = await chromium.Browser.NewPageAsync();
        page.Console += (_, m) => output.WriteLine("browser: " + m.Text);
        var offer = SessionDescription.Parse(await page.EvaluateAsync<string>(OfferScript));
        var started = Stopwatch.StartNew();
        var answer = await handle.InvokeAsync(now => core.CreateAnswer(offer, now).ToString());
        await page.EvaluateAsync("sdp => window.pc.setRemoteDescription({ type: 'answer', sdp })", answer);

        await page.WaitForFunctionAsync("() => Object.values(window.channels).every(c => c.readyState === 'open')", null, new() { Timeout = 20_000 });
        output.WriteLine($"offer answered -> every channel open in {started.Elapsed.TotalMilliseconds:0} ms");

        // 1000 messages of 1 KiB on the ordered channel, one of 256 KiB, text, binary and empty ones.
        await page.EvaluateAsync("""
            () => {
              const c = window.channels;
              for (let i = 0; i < 1000; i++) c.ordered.send('x'.repeat(1023) + (i % 10));
              c.ordered.send(new Uint8Array(256 * 1024));
              c.ordered.send('');
              c.ordered.send(new Uint8Array(0));
              for (let i = 0; i < 50; i++) c.unordered.send('u' + i);
              for (let i = 0; i < 50; i++) c.partial.send('p' + i);
            }
            """);
        await page.WaitForFunctionAsync("() => window.results.messages.filter(m => m.label === 'ordered').length === 1003 && window.results.messages.filter(m => m.label === 'unordered').length === 50", null, new() { Timeout = 30_000 });
        var ordered = await page.EvaluateAsync<string[]>("() => window.results.messages.filter(m => m.label === 'ordered').map(m => m.data)");
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => new string('x', 1023) + (i % 10)), ordered.Take(1000));
        Assert.Equal(["bin:262144", "", "bin:0"], ordered.Skip(1000));
        var unordered = await page.EvaluateAsync<string[]>("() => window.results.messages.filter(m => m.label === 'unordered').map(m => m.data)");
        Assert.Equal(Enumerable.Range(0, 50).Select(i => "u" + i).Order(), unordered.Order());
        var partial = await page.EvaluateAsync<int>("() => window.results.messages.filter(m => m.label === 'partial').length");
        Assert.Equal(50, partial);   // loopback loses nothing
        Assert.Equal(ConnectionState.Connected, await handle.InvokeAsync(_ => core.State));
        Assert.Equal(3, peer.Events.OfType<DataChannelOpened>().Count());

        // The browser closes: our side must be Closed at once.
        var closing = Stopwatch.StartNew();
        await page.EvaluateAsync("() => window.pc.close()");
        var end = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (await handle.InvokeAsync(_ => core.State) != ConnectionState.Closed && DateTime.UtcNow < end) await Task.Delay(1);
        var took = closing.Elapsed;
        output.WriteLine($"browser pc.close() -> our side Closed in {took.TotalMilliseconds:0.0} ms ({core.Reason})");
        Assert.Equal(ConnectionState.Closed, core.State);
        Assert.True(took < TimeSpan.FromMilliseconds(100), $"closed after {took.TotalMilliseconds} ms");
    }
}
