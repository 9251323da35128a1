using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Runtime.Versioning;
using System.Text.Json;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Io;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// Headless Chromium sends its fake camera and microphone to our peer connection, which depacketizes the frames and
/// echoes them back re-packetized on its own tracks; the browser's getStats must show the echo decoded without loss.
/// NACKs and PLIs are provoked by dropping packets on purpose (loopback loses nothing by itself).
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class ChromiumMediaTests(ITestOutputHelper output)
{
    /// <summary>
    /// Our side: echoes every complete video frame (re-packetized) and every audio packet of the browser's tracks on our
    /// own tracks; drops packets on request.
    /// </summary>
    private sealed class MediaEchoPeer(PeerConnectionCore core) : IDatagramPeer
    {
        public PeerConnectionCore Core { get; } = core;
        public LocalTrack Video = null!, Audio = null!;
        public RemoteTrack? RemoteVideo, RemoteAudio;
        public long VideoFrames, KeyFrames, IncompleteFrames, AudioFrames, MinVideoFrame = long.MaxValue, MaxVideoFrame, MaxKeyFrame, Echoed, EchoRefused;
        public long PacketsRead, PlisForwarded, OutgoingVideo, DroppedOut, IncomingVideo, DroppedIn;
        public int DropEveryOut, DropEveryIn;      // 0 = never
        public bool Blackout;                      // drop all our video (and RTX) while set
        public bool DropRtx;                       // drop our retransmissions while set
        public string? ClosedReason;
        public IReadOnlyCollection<string> LocalUsernameFragments => Core.LocalUsernameFragments;

        public void HandleDatagram(ReadOnlySpan<byte> datagram, IPEndPoint local, IPEndPoint remote, TimeSpan now)
        {
            if (RemoteVideo is { Ssrc: not 0 } v && IsRtpOf(datagram, v.Ssrc) && DropEveryIn > 0 && ++IncomingVideo % DropEveryIn == DropEveryIn / 2)
            {
                DroppedIn++;
                return;
            }
            Core.HandleDatagram(datagram, local, remote, now);
        }

        public void HandleTimeout(TimeSpan now) => Core.HandleTimeout(now);
        public TimeSpan? PollTimeout() => Core.PollTimeout();
        /// <summary>
        /// Sans-IO core and concurrent queues only: never blocks, so the driver runs it on its own threads (timers stay punctual however busy the pool is).
        /// </summary>
        public bool RunsInline => true;

        public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote)
        {
            while (Core.TryPollTransmit(destination, out written, out local, out remote))
            {
                var d = destination[..written];
                if (Video is not null && (IsRtpOf(d, Video.Ssrc) || (Video.RtxSsrc is { } rtx && IsRtpOf(d, rtx))))
                {
                    if (Blackout || (DropRtx && !IsRtpOf(d, Video.Ssrc))) { DroppedOut++; continue; }
                    if (IsRtpOf(d, Video.Ssrc) && DropEveryOut > 0 && ++OutgoingVideo % DropEveryOut == DropEveryOut / 2) { DroppedOut++; continue; }
                }
                return true;
            }
            return false;
        }

        private static bool IsRtpOf(ReadOnlySpan<byte> d, uint ssrc) =>
            d.Length >= 12 && d[0] is >= 128 and <= 191 && d[1] is < 192 or > 223 && BinaryPrimitives.ReadUInt32BigEndian(d[8..]) == ssrc;

        public void AfterInput(TimeSpan now)
        {
            Core.AfterInput(now);
            while (Core.TryPollEvent(out var e))
            {
                switch (e)
                {
                    case RemoteTrackAdded { Track.Kind: MediaKind.Video } t: RemoteVideo = t.Track; break;
                    case RemoteTrackAdded { Track.Kind: MediaKind.Audio } t: RemoteAudio = t.Track; break;
                    case KeyFrameRequestReceived k when k.Track == Video && RemoteVideo is not null:
                        // An echo has no encoder of its own: the browser's encoder must make the key frame.
                        Core.RequestKeyFrame(RemoteVideo, now);
                        PlisForwarded++;
                        break;
                    case ConnectionStateChanged { State: ConnectionState.Closed or ConnectionState.Failed } s:
                        ClosedReason = s.Reason.ToString();
                        break;
                }
            }
            Echo(RemoteVideo, Video, now, video: true);
            Echo(RemoteAudio, Audio, now, video: false);
            Core.AfterInput(now);
        }

        private void Echo(RemoteTrack? from, LocalTrack to, TimeSpan now, bool video)
        {
            if (from is null) return;
            while (from.Packets.TryRead(out var p))
            {
                using (p)
                {
                    PacketsRead++;
                    // Audio is echoed packet by packet (SendRtpPacket), video frame by frame (SendFrame).
                    if (video) continue;
                    if (Core.SendRtpPacket(to, p.Data.Span, now) == MediaSendResult.Sent) Echoed++;
                    else EchoRefused++;
                }
            }
            while (from.Frames.TryRead(out var f))
            {
                using (f)
                {
                    if (!f.IsComplete) { IncompleteFrames++; continue; }
                    if (video)
                    {
                        VideoFrames++;
                        if (f.IsKeyFrame) { KeyFrames++; MaxKeyFrame = Math.Max(MaxKeyFrame, f.Length); }
                        MinVideoFrame = Math.Min(MinVideoFrame, f.Length);
                        MaxVideoFrame = Math.Max(MaxVideoFrame, f.Length);
                    }
                    else { AudioFrames++; continue; }
                    if (Core.SendFrame(to, f.Data.Span, f.Timestamp, now) == MediaSendResult.Sent) Echoed++;
                    else EchoRefused++;
                }
            }
        }
    }

    private const string OfferScript = """
        async () => {
          const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480, frameRate: 30 } });
          const pc = new RTCPeerConnection({ iceServers: [] });
          window.pc = pc;
          window.received = [];
          pc.ontrack = e => {
            window.received.push(e.track.kind);
            const el = document.createElement(e.track.kind);
            el.srcObject = new MediaStream([e.track]);
            el.muted = true;
            el.autoplay = true;
            document.body.appendChild(el);
            el.play().catch(() => {});
          };
          for (const t of stream.getTracks()) pc.addTrack(t, stream);
          await pc.setLocalDescription(await pc.createOffer());
          await new Promise(r => { if (pc.iceGatheringState === 'complete') r();
            else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
          return pc.localDescription.sdp;
        }
        """;

    private const string AnswerScript = """
        async (offer) => {
          const pc = new RTCPeerConnection({ iceServers: [] });
          window.pc = pc;
          window.received = [];
          pc.ontrack = e => {
            window.received.push(e.track.kind);
            const el = document.createElement(e.track.kind);
            el.srcObject = new MediaStream([e.track]);
            el.muted = true;
            el.autoplay = true;
            document.body.appendChild(el);
            el.play().catch(() => {});
          };
          await pc.setRemoteDescription({ type: 'offer', sdp: offer });
          const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480, frameRate: 30 } });
          for (const t of pc.getTransceivers()) {
            const track = stream.getTracks().find(x => x.kind === t.receiver.track.kind);
            if (!track) continue;
            await t.sender.replaceTrack(track);
            t.sender.setStreams(stream);
            t.direction = 'sendrecv';
          }
          await pc.setLocalDescription(await pc.createAnswer());
          await new Promise(r => { if (pc.iceGatheringState === 'complete') r();
            else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); });
          return pc.localDescription.sdp;
        }
        """;

    private const string StatsScript = """
        async () => {
          const report = await window.pc.getStats();
          const out = [];
          report.forEach(s => {
            if (s.type !== 'inbound-rtp' && s.type !== 'outbound-rtp') return;
            const codec = s.codecId ? report.get(s.codecId) : null;
            out.push({ type: s.type, kind: s.kind, codec: codec ? codec.mimeType : '',
              packetsReceived: s.packetsReceived || 0, packetsLost: s.packetsLost || 0, framesDecoded: s.framesDecoded || 0,
              keyFramesDecoded: s.keyFramesDecoded || 0, nackCount: s.nackCount || 0, pliCount: s.pliCount || 0,
              packetsSent: s.packetsSent || 0, retransmittedPacketsSent: s.retransmittedPacketsSent || 0,
              framesEncoded: s.framesEncoded || 0, retransmittedPacketsReceived: s.retransmittedPacketsReceived || 0 });
          });
          return JSON.stringify(out);
        }
        """;

    private sealed record RtpStats(string Type, string Kind, string Codec, long PacketsReceived, long PacketsLost, long FramesDecoded, long KeyFramesDecoded,
        long NackCount, long PliCount, long PacketsSent, long RetransmittedPacketsSent, long FramesEncoded, long RetransmittedPacketsReceived);

    private static async Task<List<RtpStats>> StatsAsync(Microsoft.Playwright.IPage page) =>
        JsonSerializer.Deserialize<List<RtpStats>>(await page.EvaluateAsync<string>(StatsScript),
            new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;

    private static RtpStats Find(List<RtpStats> stats, string type, string kind) =>
        stats.SingleOrDefault(s => s.Type == type && s.Kind == kind) ?? new RtpStats(type, kind, "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);


    /// <summary>The video codecs the browser can send (RTCRtpSender.getCapabilities), e.g. "video/H264 ...packetization-mode=1...".</summary>
    private static async Task<string[]> VideoCapabilitiesAsync(Microsoft.Playwright.IPage page) =>
        await page.EvaluateAsync<string[]>("() => RTCRtpSender.getCapabilities('video').codecs.map(c => c.mimeType + ' ' + (c.sdpFmtpLine || ''))");

    [Fact]
    public Task ChromiumSendsCameraAndMicrophoneAsVp8AndOpusAndDecodesOurEcho() => RunEchoAsync(CodecSpec.Vp8);

    [Fact]
    public Task WeOfferAudioAndVideoAndChromiumAnswersSendingItsCameraAndDecodingOurEcho() => RunEchoAsync(CodecSpec.Vp8, weOffer: true);

    /// <summary>
    /// H.264 both ways. The Chromium the tests run (Debian's) encodes H.264 with the system's OpenH264 and offers it:
    /// a browser that does not offer it fails this test with the reason, it does not pass untested.
    /// </summary>
    [Fact]
    public async Task ChromiumSendsCameraAsH264AndDecodesOurEcho()
    {
        using (var ns = NetworkNamespace.Create())
        {
            await using var chromium = await HeadlessChromium.LaunchAsync(ns, fakeMedia: true);
            var page = await chromium.NewSecurePageAsync();
            var capabilities = await VideoCapabilitiesAsync(page);
            output.WriteLine("Chromium video send codecs: " + string.Join(" | ", capabilities));
            Assert.True(capabilities.Any(c => c.StartsWith("video/H264", StringComparison.OrdinalIgnoreCase)
                && c.Contains("packetization-mode=1", StringComparison.Ordinal)),
                "this Chromium offers no H.264 with packetization-mode 1 (a build without OpenH264 / proprietary codecs), so " +
                "H.264 cannot be tested against it: " +
                string.Join(" | ", capabilities));
        }
        await RunEchoAsync(CodecSpec.H264);
    }

    private async Task RunEchoAsync(CodecSpec videoCodec, bool weOffer = false)
    {
        using var ns = NetworkNamespace.Create();
        await using var driver = new UdpDriver();
        var local = ns.CreateInside(() => driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
        using var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var core = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = certificate,
            Ice = new IceAgentOptions { Role = weOffer ? IceRole.Controlling : IceRole.Controlled }
        });
        core.AddHostCandidate(local);
        var peer = new MediaEchoPeer(core)
        {
            Audio = core.AddTrack(MediaKind.Audio),
            Video = core.AddTrack(MediaKind.Video, new LocalTrackOptions { Codecs = [videoCodec] }),
            DropEveryOut = 300,   // 0.33 % of our echoed video, to provoke the browser's NACKs
            DropEveryIn = 200,    // 0.5 % of the browser's video, to make us NACK
        };
        await using var handle = driver.Register(peer);

        await using var chromium = await HeadlessChromium.LaunchAsync(ns, fakeMedia: true);
        var page = await chromium.NewSecurePageAsync();
        page.Console += (_, m) => output.WriteLine("browser: " + m.Text);
        var started = Stopwatch.StartNew();
        if (weOffer)
        {
            var ourOffer = await handle.InvokeAsync(now => core.CreateOffer(now).ToString());
            var browserAnswer = await page.EvaluateAsync<string>(AnswerScript, ourOffer);
            Assert.Contains(videoCodec.Name + "/90000", browserAnswer, StringComparison.OrdinalIgnoreCase);
            await handle.InvokeAsync(now => core.SetRemoteDescription(SessionDescription.Parse(browserAnswer), now));
            Assert.Equal(2, await handle.InvokeAsync(_ => core.RemoteTracks.Count)); // the browser's answer sends on both sections
        }
        else
        {
            var offerText = await page.EvaluateAsync<string>(OfferScript);
            var offer = SessionDescription.Parse(offerText);
            Assert.Contains(videoCodec.Name + "/90000", offerText, StringComparison.OrdinalIgnoreCase);
            var answer = await handle.InvokeAsync(now => core.CreateAnswer(offer, now).ToString());
            await page.EvaluateAsync("sdp => window.pc.setRemoteDescription({ type: 'answer', sdp })", answer);
        }
        Assert.Equal(videoCodec.Name, peer.Video.Codec?.Codec.Name);
        Assert.Equal("opus", peer.Audio.Codec?.Codec.Name);

        // Wait until the browser decoded a good number of our echoed frames.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(40);
        List<RtpStats> stats;
        while (true)
        {
            stats = await StatsAsync(page);
            if (Find(stats, "inbound-rtp", "video").FramesDecoded >= 200 || DateTime.UtcNow > deadline) break;
            await Task.Delay(250);
        }
        var ours = await handle.InvokeAsync(_ => Describe(peer));
        output.WriteLine($"after {started.Elapsed.TotalSeconds:0.0} s: {ours}");
        foreach (var s in stats) output.WriteLine("browser " + s);

        var inVideo = Find(stats, "inbound-rtp", "video");
        var inAudio = Find(stats, "inbound-rtp", "audio");
        var outVideo = Find(stats, "outbound-rtp", "video");
        Assert.Equal("video/" + videoCodec.Name, inVideo.Codec, StringComparer.OrdinalIgnoreCase);
        Assert.True(inVideo.FramesDecoded >= 200, $"the browser decoded {inVideo.FramesDecoded} of our echoed frames");
        Assert.True(inVideo.PacketsLost * 100 < inVideo.PacketsReceived,
            $"browser: video packetsLost {inVideo.PacketsLost} of {inVideo.PacketsReceived} received (at most 1 %)");
        Assert.True(inAudio.PacketsReceived > 100, $"browser: {inAudio.PacketsReceived} audio packets received");

        // What we received from the browser: decrypted, depacketized frames with key frames and sane sizes.
        var (videoFrames, keyFrames, audioFrames, minFrame, maxKey, echoed) = await handle.InvokeAsync(_ => (peer.VideoFrames, peer.KeyFrames, peer.AudioFrames,
            peer.MinVideoFrame, peer.MaxKeyFrame, peer.Echoed));
        var refused = await handle.InvokeAsync(_ => peer.EchoRefused);
        Assert.True(videoFrames >= 200, $"{videoFrames} video frames");
        Assert.True(keyFrames >= 1, "a key frame arrived");
        Assert.InRange(maxKey, 1_000, 500_000);   // a 640x480 key frame
        Assert.InRange(minFrame, 1, 200_000);
        Assert.True(audioFrames >= 100, $"{audioFrames} Opus frames");
        // Every frame is echoed, or refused by our congestion control while its estimate ramps up (counted: a sender
        // drops a frame the path cannot carry yet), a few at most.
        Assert.True(echoed + refused >= videoFrames + audioFrames - 5, $"echoed {echoed}, refused {refused}");
        Assert.True(refused <= videoFrames / 5, $"refused {refused} of {videoFrames} video frames");

        // NACK both ways: the browser NACKed what we dropped on purpose and we retransmitted it (RTX);
        // we NACKed what we dropped of its video and it retransmitted.
        var (nacks, retransmissions, rtxIn, droppedOut, droppedIn, lostAtUs) = await handle.InvokeAsync(_ =>
            (peer.Video.NacksReceived, peer.Video.Retransmissions, peer.RemoteVideo!.RetransmissionsReceived, peer.DroppedOut, peer.DroppedIn,
                peer.RemoteVideo.PacketsLost));
        output.WriteLine($"we dropped {droppedOut} of our video packets: the browser sent {outVideo.NackCount}/{inVideo.NackCount} NACKs (stats), we " +
            $"received {nacks} and retransmitted {retransmissions}");
        output.WriteLine($"we dropped {droppedIn} of the browser's video packets: {rtxIn} came back as RTX; cumulative lost at our side {lostAtUs}; browser " +
            $"retransmittedPacketsSent {outVideo.RetransmittedPacketsSent}");
        Assert.True(droppedOut > 0 && nacks > 0 && retransmissions > 0, "the browser's NACKs were answered");
        Assert.True(inVideo.NackCount > 0, "the browser reports NACKs sent");
        Assert.True(droppedIn > 0 && rtxIn > 0, "our NACKs were answered by the browser");

        // PLI: a blackout of our video that NACKs cannot repair (retransmissions dropped too) leaves the browser
        // without decodable frames, so it asks for a key frame (PLI); we forward it to its own sender.
        // (The browser may already have sent PLIs while starting; only the increase counts.)
        var pliBefore = inVideo.PliCount;
        var pliOutBefore = outVideo.PliCount;
        var (plisInBefore, forwardedBefore, plisSentBefore) = await handle.InvokeAsync(_ => (peer.Video.PlisReceived + peer.Video.FirsReceived,
            peer.PlisForwarded, peer.RemoteVideo!.PlisSent));
        await handle.InvokeAsync(_ => peer.Blackout = peer.DropRtx = true);
        await Task.Delay(1500);
        await handle.InvokeAsync(_ => peer.Blackout = false);
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        do
        {
            await Task.Delay(250);
            stats = await StatsAsync(page);
        } while (Find(stats, "outbound-rtp", "video").PliCount <= pliOutBefore && DateTime.UtcNow < deadline);
        await handle.InvokeAsync(_ => peer.DropRtx = false);
        var (plisIn, forwarded, plisSent) = await handle.InvokeAsync(_ => (peer.Video.PlisReceived + peer.Video.FirsReceived, peer.PlisForwarded,
            peer.RemoteVideo!.PlisSent));
        output.WriteLine($"PLI: browser inbound pliCount {pliBefore} -> {Find(stats, "inbound-rtp", "video").PliCount}, we received {plisInBefore} -> " +
            $"{plisIn}, forwarded {forwardedBefore} -> {forwarded}, sent {plisSentBefore} -> {plisSent}; browser outbound pliCount {pliOutBefore} -> " +
            $"{Find(stats, "outbound-rtp", "video").PliCount}");
        Assert.True(Find(stats, "inbound-rtp", "video").PliCount > pliBefore, "the browser asked for a key frame after the blackout");
        Assert.True(plisIn > plisInBefore && forwarded > forwardedBefore && plisSent > plisSentBefore,
            "the key frame request reached us and was forwarded upstream");
        Assert.True(Find(stats, "outbound-rtp", "video").PliCount > pliOutBefore, "the browser's sender received our forwarded PLI");
        Assert.True(await page.EvaluateAsync<int>("() => window.received.length") == 2, "the browser got our two tracks");

        // Transport-cc both ways: Chromium's feedback on our numbered packets calls lost only packets we dropped on
        // purpose, and received only packets we let through, most of them. (It forgets numbers after 500 ms, so long
        // runs of drops, in the blackout, may go unreported: from all of them to well under half, run by run.)
        var (twccSent, twccReceived, twccLost, twccFeedback, twccUnknown, twccMalformed, dropped, ourFeedback) = await handle.InvokeAsync(_ =>
            (core.TransportCcSender!.PacketsSent, core.TransportCcSender.PacketsReceived, core.TransportCcSender.PacketsLost,
                core.TransportCcSender.FeedbackReceived,
             core.TransportCcSender.UnknownReports, core.MediaCounters.MalformedTransportCcFeedback, peer.DroppedOut, core.TransportCc!.FeedbackSent));
        output.WriteLine($"transport-cc: we numbered {twccSent} packets; Chromium's {twccFeedback} feedback messages reported " +
            $"{twccReceived} received and {twccLost} lost " +
            $"(we dropped {dropped}); unknown {twccUnknown}, malformed {twccMalformed}; we sent {ourFeedback} feedback messages");
        Assert.True(twccFeedback > 10 && ourFeedback > 10, "transport-cc feedback flowed both ways");
        Assert.Equal(0, twccUnknown + twccMalformed);
        var reached = twccSent - dropped;
        Assert.InRange(twccLost, 1, dropped);
        Assert.InRange(twccReceived, reached * 80 / 100, reached);

        // The browser closes: we are Closed at once (close_notify and/or BYE on every track).
        var closing = Stopwatch.StartNew();
        await page.EvaluateAsync("() => window.pc.close()");
        var end = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (await handle.InvokeAsync(_ => core.State) != ConnectionState.Closed && DateTime.UtcNow < end) await Task.Delay(1);
        output.WriteLine($"browser pc.close() -> our side Closed in {closing.Elapsed.TotalMilliseconds:0.0} ms " +
            $"({await handle.InvokeAsync(_ => peer.ClosedReason)}); tracks ended: " +
            $"{await handle.InvokeAsync(_ => string.Join(", ", core.RemoteTracks.Select(t => t.Kind + " " + (t.Ended.IsCompleted ? t.Ended.Result : "no"))))}");
        // Read on the core's actor, not from the test's thread.
        var (closedState, tracksEnded) = await handle.InvokeAsync(_ => (core.State, core.RemoteTracks.Select(t => t.IsEnded).ToArray()));
        Assert.Equal(ConnectionState.Closed, closedState);
        Assert.All(tracksEnded, Assert.True);
    }

    private static string Describe(MediaEchoPeer p) =>
        $"in: video frames {p.VideoFrames} (key {p.KeyFrames}, incomplete {p.IncompleteFrames}, sizes {p.MinVideoFrame}-{p.MaxVideoFrame}, largest key " +
        $"{p.MaxKeyFrame}), audio frames {p.AudioFrames}, packets read {p.PacketsRead}; " +
        $"echoed {p.Echoed} (refused {p.EchoRefused}); out: video packets {p.Video.PacketsSent}, audio packets {p.Audio.PacketsSent}; " +
        $"media counters: rtcp in {p.Core.MediaCounters.RtcpPacketsReceived} out {p.Core.MediaCounters.RtcpPacketsSent}, unknown ssrc " +
        $"{p.Core.MediaCounters.UnknownSsrc}, rtx padding {p.Core.MediaCounters.RtxPadding}, unprotect failures {p.Core.MediaCounters.UnprotectFailures}, " +
        $"RTT {p.Core.MediaRoundTripTime?.TotalMilliseconds:0.0} ms";
}
