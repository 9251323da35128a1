using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>The media path of two of our peer connections over the test kit's virtual link, on virtual time.</summary>
public sealed class PeerConnectionMediaTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly DtlsCertificate Certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));

    private sealed class Adapter(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote) : CorePeer(core, local, remote)
    {
        public RemoteTrack Remote(MediaKind kind) => Events.OfType<RemoteTrackAdded>().Select(e => e.Track).Single(t => t.Kind == kind);
    }

    private sealed record Pair(TwoPeerDriver Driver, Adapter A, Adapter B, LocalTrack Video, LocalTrack Audio, LocalTrack BackVideo);

    /// <summary>A offers audio and video; B answers with a video track of its own. Runs until both are connected.</summary>
    private static Pair Connect(VirtualLink? link = null, IReadOnlyList<CodecSpec>? videoCodecs = null, MediaOptions? media = null,
        bool offerWithoutSsrcs = false)
    {
        var endA = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var endB = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        var options = new PeerConnectionOptions { Certificate = Certificate, Media = media ?? new MediaOptions() };
        var a = new PeerConnectionCore(options with { Ice = options.Ice with { Role = IceRole.Controlling } });
        var b = new PeerConnectionCore(options with { Ice = options.Ice with { Role = IceRole.Controlled } });
        a.AddHostCandidate(endA);
        b.AddHostCandidate(endB);
        var audio = a.AddTrack(MediaKind.Audio);
        var video = a.AddTrack(MediaKind.Video, new LocalTrackOptions { Codecs = videoCodecs });
        var backVideo = b.AddTrack(MediaKind.Video, new LocalTrackOptions { Codecs = videoCodecs });
        var offerText = a.CreateOffer(TimeSpan.Zero).ToString();
        if (offerWithoutSsrcs) // as endpoints that signal no a=ssrc: B must demultiplex by the mid header extension
            offerText = string.Join("\r\n", offerText.Split("\r\n").Where(l => !l.StartsWith("a=ssrc", StringComparison.Ordinal)));
        var offer = SessionDescription.Parse(offerText);
        var answer = SessionDescription.Parse(b.CreateAnswer(offer, TimeSpan.Zero).ToString());
        a.SetRemoteDescription(answer, TimeSpan.Zero);
        var adapterA = new Adapter(a, endA, endB);
        var adapterB = new Adapter(b, endB, endA);
        adapterA.Drain();
        adapterB.Drain();
        var driver = new TwoPeerDriver(adapterA, adapterB, link);
        Assert.True(driver.RunUntil(() => a.State == ConnectionState.Connected && b.State == ConnectionState.Connected, TimeSpan.FromSeconds(10)));
        return new Pair(driver, adapterA, adapterB, video, audio, backVideo);
    }

    private static byte[] Vp8Frame(int index, int size)
    {
        var frame = new byte[size];
        new Random(index).NextBytes(frame);
        frame[0] = (byte)(index % 30 == 0 ? 0x10 : 0x11); // RFC 6386 frame tag: P bit 0 = key frame
        return frame;
    }

    private static List<MediaFrame> Frames(RemoteTrack track)
    {
        var list = new List<MediaFrame>();
        while (track.Frames.TryRead(out var f)) list.Add(f);
        return list;
    }

    [Fact]
    public void NegotiatedTracksLearnTheirSectionCodecAndRtxFromTheAnswer()
    {
        var p = Connect();
        Assert.Equal("VP8", p.Video.Codec!.Codec.Name);
        Assert.True(p.Video.UsesRtx);
        Assert.Equal("opus", p.Audio.Codec!.Codec.Name);
        Assert.False(p.Audio.UsesRtx);
        Assert.Equal(p.Video.Mid, p.BackVideo.Mid);                       // B's video went into A's video section
        var atB = p.B.Remote(MediaKind.Video);
        Assert.Equal(p.Video.Ssrc, atB.Ssrc);
        Assert.Equal(p.Video.RtxSsrc, atB.RtxSsrc);
        Assert.Equal(p.Video.StreamId, atB.StreamId);
        Assert.Equal(p.BackVideo.Ssrc, p.A.Remote(MediaKind.Video).Ssrc);
        Assert.Equal(p.Audio.Ssrc, p.B.Remote(MediaKind.Audio).Ssrc);
        Assert.DoesNotContain(p.A.Events, e => e is RemoteTrackAdded { Track.Kind: MediaKind.Audio }); // B sends no audio
    }

    [Theory]
    [InlineData("VP8")]
    [InlineData("H264")]
    public void FramesSentOnOneSideArriveDepacketizedOnTheOther(string codec)
    {
        var p = Connect(videoCodecs: [codec == "VP8" ? CodecSpec.Vp8 : CodecSpec.H264]);
        var sent = new List<byte[]>();
        var opus = new List<byte[]>();
        for (var i = 0; i < 60; i++)
        {
            var frame = codec == "VP8" ? Vp8Frame(i, 500 + 97 * i) : H264AccessUnit(i, 500 + 97 * i);
            sent.Add(frame);
            Assert.Equal(MediaSendResult.Sent, p.A.Core.SendFrame(p.Video, frame, (uint)(i * 3000), p.Driver.Now));
            var audio = new byte[80 + i];
            new Random(1000 + i).NextBytes(audio);
            opus.Add(audio);
            Assert.Equal(MediaSendResult.Sent, p.A.Core.SendFrame(p.Audio, audio, (uint)(i * 960), p.Driver.Now));
            p.Driver.RunFor(TimeSpan.FromMilliseconds(20));
        }
        p.Driver.RunFor(TimeSpan.FromSeconds(3)); // a few RTCP report intervals

        var video = p.B.Remote(MediaKind.Video);
        var frames = Frames(video);
        Assert.Equal(60, frames.Count);
        Assert.All(frames, f => Assert.True(f.IsComplete));
        Assert.Equal(sent.Select(Convert.ToHexString), frames.Select(f => Convert.ToHexString(f.Data.Span)));
        Assert.Equal(Enumerable.Range(0, 60).Select(i => (uint)(i * 3000)), frames.Select(f => f.Timestamp));
        Assert.Equal(Enumerable.Range(0, 60).Select(i => i % 30 == 0), frames.Select(f => f.IsKeyFrame));
        Assert.True(frames.Max(f => f.PacketCount) >= 6, "the large frames were split into several packets");
        Assert.Equal(p.Video.PacketsSent, video.PacketsReceived);
        Assert.Equal(0, video.PacketsLost);

        var packets = new List<MediaPacket>();
        while (video.Packets.TryRead(out var packet)) packets.Add(packet);
        Assert.Equal(p.Video.PacketsSent, packets.Count);
        Assert.All(packets, x => Assert.Equal(p.Video.Ssrc, x.Ssrc));
        Assert.Equal(60, packets.Count(x => x.Marker));

        var audioFrames = Frames(p.B.Remote(MediaKind.Audio));
        Assert.Equal(opus.Select(Convert.ToHexString), audioFrames.Select(f => Convert.ToHexString(f.Data.Span)));

        // Receiver reports flowed back: A knows its streams were received without loss and measured the RTT.
        Assert.Equal(0, p.Video.LastCumulativeLost);
        Assert.NotNull(p.A.Core.MediaRoundTripTime);
        Assert.InRange(p.A.Core.MediaRoundTripTime!.Value, TimeSpan.FromMilliseconds(15), TimeSpan.FromMilliseconds(25)); // 10 ms each way
        foreach (var f in frames) f.Dispose();
    }

    private static byte[] H264AccessUnit(int index, int size)
    {
        // An IDR access unit (SPS, PPS, IDR slice) every 30 frames, else one non-IDR slice; Annex B start codes.
        var random = new Random(index);
        var slice = new byte[size];
        random.NextBytes(slice);
        for (var i = 1; i < slice.Length; i++) if (slice[i] == 0) slice[i] = 1; // no emulated start codes
        var output = new List<byte>();
        if (index % 30 == 0)
        {
            output.AddRange([0, 0, 0, 1, 0x67, 0x42, 0xE0, 0x1F, 0x8C]);
            output.AddRange([0, 0, 0, 1, 0x68, 0xCE, 0x3C, 0x80]);
            slice[0] = 0x65;
        }
        else slice[0] = 0x41;
        output.AddRange([0, 0, 0, 1]);
        output.AddRange(slice);
        return [.. output];
    }

    [Fact]
    public void EveryPacketIsNumberedForTransportCcAndTheFeedbackTellsTheSenderExactlyWhatTheLinkLost()
    {
        var link = new VirtualLink(3);
        // Without the congestion controller: its probes (padding, numbered too) would be part of the delivery rate,
        // and this test is about the numbering and the feedback (CongestionControlTests has the controller).
        var p = Connect(link, media: new MediaOptions { Congestion = null });
        var ssrc = p.Video.Ssrc;
        // SRTP leaves the RTP header in clear: the test reads every number on the wire.
        var numbers = new List<ushort>();
        var unnumbered = 0;
        bool IsRtp(ReadOnlyMemory<byte> d) => d.Length > 12 && d.Span[0] is >= 128 and <= 191 && d.Span[1] is < 192 or > 223;
        link.AddFilter(LinkEnd.A, d =>
        {
            if (!IsRtp(d)) return false;
            if (Transport.Rtp.RtpPacket.TryRead(d.Span, out var rtp) && rtp.TryGetExtension(3, out var value) && value.Length == 2)
                numbers.Add(System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(value));
            else unnumbered++;
            return false;
        }, _ => FilterAction.Pass);
        bool IsVideoRtp(ReadOnlyMemory<byte> d) => IsRtp(d) && System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(d.Span[8..]) == ssrc;
        link.AddFilter(LinkEnd.A, IsVideoRtp, n => n is 7 or 40 or 41 ? FilterAction.Drop : FilterAction.Pass);
        for (var i = 0; i < 30; i++)
        {
            Assert.Equal(MediaSendResult.Sent, p.A.Core.SendFrame(p.Video, Vp8Frame(i, 3000), (uint)(i * 3000), p.Driver.Now));
            p.Driver.RunFor(TimeSpan.FromMilliseconds(33));
        }
        p.Driver.RunFor(TimeSpan.FromMilliseconds(500));

        var sender = p.A.Core.TransportCcSender!;
        var receiver = p.B.Core.TransportCc!;
        Assert.Equal(0, unnumbered);
        Assert.Equal(3, p.Video.Retransmissions);                         // the RTX copies are on the wire too
        Assert.Equal(numbers.Count, numbers.Distinct().Count());          // a retransmission got a number of its own
        Assert.Equal(Enumerable.Range(0, numbers.Count).Select(i => (ushort)(numbers[0] + i)), numbers); // one after another
        Assert.Equal(numbers.Count, sender.PacketsSent);
        Assert.Equal(numbers.Count - 3, receiver.PacketsRecorded);
        Assert.Equal(3, sender.PacketsLost);
        Assert.Equal(numbers.Count - 3, sender.PacketsReceived);
        Assert.Equal(0, sender.UnknownReports + sender.FeedbackMissed + p.A.Core.MediaCounters.MalformedTransportCcFeedback);
        Assert.Equal(receiver.FeedbackSent, sender.FeedbackReceived);
        // 30 frames of 3000 bytes in a second, plus headers; feedback after a 20 ms round trip and up to 100 ms of wait.
        output.WriteLine($"transport-cc: {sender.PacketsSent} numbered, {sender.PacketsLost} lost, delivery {sender.DeliveryRate / 1000:0} kbit/s, " +
            $"loss fraction {sender.LossFraction:P1}, feedback delay {sender.FeedbackDelay?.TotalMilliseconds:0.0} ms, {sender.FeedbackReceived} messages");
        Assert.InRange(sender.DeliveryRate!.Value, 700_000, 850_000);
        Assert.InRange(sender.FeedbackDelay!.Value, TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(125));
        Assert.Equal(3.0 / numbers.Count, sender.LossFraction, 6);         // the whole second of sending is in the 1 s window
    }

    [Fact]
    public void ARenegotiationWhoseAnswerDropsTransportCcStopsTheNumberingAndMediaGoesOn()
    {
        var link = new VirtualLink(4);
        var p = Connect(link);
        Assert.Equal(MediaSendResult.Sent, p.A.Core.SendFrame(p.Video, Vp8Frame(0, 2000), 0, p.Driver.Now));
        p.Driver.RunFor(TimeSpan.FromMilliseconds(200));
        var numbered = p.A.Core.TransportCcSender!.PacketsSent;
        Assert.True(numbered > 0);

        // A re-offers; B's answer comes back without the transport-wide extension.
        var offer = SessionDescription.Parse(p.A.Core.CreateOffer(p.Driver.Now).ToString());
        var answer = WithoutTransportCc(p.B.Core.CreateAnswer(offer, p.Driver.Now).ToString());
        static string WithoutTransportCc(string sdp) =>
            string.Join("\r\n", sdp.Split("\r\n").Where(l => !l.Contains(RemoteDescription.TransportCcExtensionUri, StringComparison.Ordinal)));
        p.A.Core.SetRemoteDescription(SessionDescription.Parse(answer), p.Driver.Now);

        var unnumbered = 0;
        link.AddFilter(LinkEnd.A, d => d.Length > 12 && d.Span[0] is >= 128 and <= 191 && d.Span[1] is < 192 or > 223
            && Transport.Rtp.RtpPacket.TryRead(d.Span, out var rtp) && !rtp.TryGetExtension(3, out _), _ => { unnumbered++; return FilterAction.Pass; });
        for (var i = 1; i <= 5; i++)
        {
            Assert.Equal(MediaSendResult.Sent, p.A.Core.SendFrame(p.Video, Vp8Frame(i, 2000), (uint)(i * 3000), p.Driver.Now));
            p.Driver.RunFor(TimeSpan.FromMilliseconds(33));
        }
        p.Driver.RunFor(TimeSpan.FromMilliseconds(200));
        Assert.Equal(numbered, p.A.Core.TransportCcSender!.PacketsSent);   // nothing numbered since
        Assert.True(unnumbered >= 10, $"{unnumbered} unnumbered packets on the wire");
        Assert.Equal(6, Frames(p.B.Remote(MediaKind.Video)).Count(f => f.IsComplete));
        Assert.Equal(ConnectionState.Connected, p.A.Core.State);
    }

    [Fact]
    public void ALostPacketIsNackedAndRetransmittedAsRtxSoEveryFrameCompletes()
    {
        var link = new VirtualLink(3);
        var p = Connect(link);
        var ssrc = p.Video.Ssrc;
        bool IsVideoRtp(ReadOnlyMemory<byte> d) => d.Length > 12 && d.Span[0] is >= 128 and <= 191 && d.Span[1] is < 192 or > 223
            && System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(d.Span[8..]) == ssrc;
        link.AddFilter(LinkEnd.A, IsVideoRtp, n => n is 7 or 40 or 41 ? FilterAction.Drop : FilterAction.Pass);
        for (var i = 0; i < 30; i++)
        {
            Assert.Equal(MediaSendResult.Sent, p.A.Core.SendFrame(p.Video, Vp8Frame(i, 3000), (uint)(i * 3000), p.Driver.Now));
            p.Driver.RunFor(TimeSpan.FromMilliseconds(33));
        }
        p.Driver.RunFor(TimeSpan.FromMilliseconds(300));

        var video = p.B.Remote(MediaKind.Video);
        var frames = Frames(video);
        Assert.Equal(30, frames.Count(f => f.IsComplete));
        Assert.Equal(3, link.Dropped);
        Assert.True(p.Video.NacksReceived >= 1, "A received a NACK");
        Assert.Equal(3, p.Video.Retransmissions);
        Assert.Equal(3, video.RetransmissionsReceived);
        Assert.Contains(p.A.Events, e => e is NackReceivedEvent n && n.Track == p.Video && n.Retransmitting > 0);
        Assert.Equal(0, video.PacketsLost);   // the retransmissions filled the gaps (RFC 3550 A.3 counts them)
    }

    [Fact]
    public void WithoutSignalledSsrcsTheMidExtensionRoutesMediaAndRtxToTheirTrack()
    {
        var link = new VirtualLink(6);
        var p = Connect(link, offerWithoutSsrcs: true);
        var video = p.B.Remote(MediaKind.Video);
        Assert.Equal(0u, video.Ssrc);                                   // unknown until the first packet
        var ssrc = p.Video.Ssrc;
        link.AddFilter(LinkEnd.A, d => d.Length > 12 && d.Span[1] is < 192 or > 223
            && System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(d.Span[8..]) == ssrc,
            n => n == 8 ? FilterAction.Drop : FilterAction.Pass);
        for (var i = 0; i < 10; i++)
        {
            p.A.Core.SendFrame(p.Video, Vp8Frame(i, 2500), (uint)(i * 3000), p.Driver.Now);
            p.A.Core.SendFrame(p.Audio, new byte[50 + i], (uint)(i * 960), p.Driver.Now);
            p.Driver.RunFor(TimeSpan.FromMilliseconds(33));
        }
        p.Driver.RunFor(TimeSpan.FromMilliseconds(200));
        Assert.Equal(p.Video.Ssrc, video.Ssrc);
        Assert.Equal(p.Video.RtxSsrc, video.RtxSsrc);                   // learned from the RTX payload type and the mid
        Assert.Equal(1, video.RetransmissionsReceived);
        Assert.Equal(10, Frames(video).Count(f => f.IsComplete));
        Assert.Equal(10, Frames(p.B.Remote(MediaKind.Audio)).Count);
        Assert.Equal(0, p.B.Core.MediaCounters.UnknownSsrc);
    }

    [Fact]
    public void WithoutRtxTheNackedPacketIsSentAgainAsTheOriginal()
    {
        var link = new VirtualLink(4);
        var p = Connect(link, media: new MediaOptions { UseRtx = false });
        Assert.False(p.Video.UsesRtx);
        Assert.Null(p.B.Remote(MediaKind.Video).RtxSsrc);
        var ssrc = p.Video.Ssrc;
        var sequences = new List<ushort>();
        link.AddFilter(LinkEnd.A, d => d.Length > 12 && d.Span[1] is < 192 or > 223
            && System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(d.Span[8..]) == ssrc,
            n => n == 5 ? FilterAction.Drop : FilterAction.Pass);
        for (var i = 0; i < 10; i++)
        {
            p.A.Core.SendFrame(p.Video, Vp8Frame(i, 2500), (uint)(i * 3000), p.Driver.Now);
            p.Driver.RunFor(TimeSpan.FromMilliseconds(33));
        }
        p.Driver.RunFor(TimeSpan.FromMilliseconds(200));
        var video = p.B.Remote(MediaKind.Video);
        Assert.Equal(10, Frames(video).Count(f => f.IsComplete));
        Assert.Equal(1, p.Video.Retransmissions);
        Assert.Equal(0, video.RetransmissionsReceived);               // no RTX: an ordinary packet of the stream
        while (video.Packets.TryRead(out var packet)) { sequences.Add(packet.SequenceNumber); packet.Dispose(); }
        Assert.Equal(sequences.Count, sequences.Distinct().Count());   // the dropped one arrived once, late
        Assert.Equal(p.Video.PacketsSent, sequences.Count);
        Assert.Equal(0, video.PacketsLost);
    }

    [Fact]
    public void SendingAFrameAllocatesNothingAndReceivingOnlyThePacketAndFrameObjects()
    {
        // The pacer lets a frame out at once only when its budget holds it: start the estimate high, so every frame
        // sent at one instant leaves at that instant (the pacer is still on the path measured).
        var p = Connect(media: new MediaOptions { Congestion = new() { StartBitrate = 100_000_000, MaxBitrate = 100_000_000 } });
        var frame = Vp8Frame(1, 5000);
        var buffer = new byte[2048];
        var captured = new List<byte[]>();
        void SendAndCapture(uint ts, bool keep)
        {
            p.A.Core.SendFrame(p.Video, frame, ts, p.Driver.Now);
            while (p.A.Core.TryPollTransmit(buffer, out var n, out _, out _))
                if (keep) captured.Add(buffer.AsSpan(0, n).ToArray());
        }
        for (var i = 0; i < 20; i++) SendAndCapture((uint)(i * 3000), keep: true); // input for the receive side
        // Steady state: the least of several rounds, so one-off costs of a cold process (tiered JIT, statics) do not count.
        var sendAllocated = long.MaxValue;
        var timerAllocated = long.MaxValue;
        for (var round = 0; round < 5; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 100; i++) SendAndCapture((uint)((20 + round * 100 + i) * 3000), keep: false);
            sendAllocated = Math.Min(sendAllocated, GC.GetAllocatedBytesForCurrentThread() - before);
            before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 100; i++) { p.A.Core.PollTimeout(); p.A.Core.HandleTimeout(p.Driver.Now); }
            timerAllocated = Math.Min(timerAllocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        output.WriteLine($"send: {sendAllocated} B for 100 frames (500 packets); timers: {timerAllocated} B for 100 polls");
        Assert.Equal(0, sendAllocated);   // packetize, history, SRTP, queue, transmit
        Assert.Equal(0, timerAllocated);  // timers are polled after every input

        var end = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var local = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        var video = p.B.Remote(MediaKind.Video);
        void Drain()
        {
            while (video.Packets.TryRead(out var x)) x.Dispose();
            while (video.Frames.TryRead(out var f)) f.Dispose();
            while (p.B.Core.TryPollEvent(out _)) { }
        }
        foreach (var d in captured.Take(40)) { p.B.Core.HandleDatagram(d, local, end, p.Driver.Now); Drain(); }
        var receiveAllocated = long.MaxValue;
        const int packets = 30;
        for (var round = 0; round < 2; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 40 + round * packets; i < 40 + (round + 1) * packets; i++) { p.B.Core.HandleDatagram(captured[i], local, end, p.Driver.Now); Drain(); }
            receiveAllocated = Math.Min(receiveAllocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        output.WriteLine($"receive: {receiveAllocated} B for {packets} packets = {(double)receiveAllocated / packets:0.0} B per " +
            $"packet (VP8, 5 packets per frame)");
        Assert.True(receiveAllocated <= packets * 160,
            $"{receiveAllocated} B for {packets} packets ({receiveAllocated / packets} B each): one MediaPacket per packet, one MediaFrame per frame");
    }

    [Fact]
    public void APliFromTheReceiverIsSurfacedToTheSenderAsAKeyFrameRequest()
    {
        var p = Connect();
        p.A.Core.SendFrame(p.Video, Vp8Frame(0, 1000), 0, p.Driver.Now);
        p.Driver.RunFor(TimeSpan.FromMilliseconds(50));
        var atB = p.B.Remote(MediaKind.Video);
        var asked = p.Driver.Now;
        p.B.Core.RequestKeyFrame(atB, p.Driver.Now);
        Assert.True(p.Driver.RunUntil(() => p.A.Events.OfType<KeyFrameRequestReceived>().Any(), TimeSpan.FromSeconds(1)));
        var request = p.A.Events.OfType<KeyFrameRequestReceived>().Single();
        Assert.Same(p.Video, request.Track);
        Assert.False(request.FullIntraRequest);
        Assert.Equal(TimeSpan.FromMilliseconds(10), request.At - asked); // sent at once, one link delay
        Assert.Equal(1, p.Video.PlisReceived);
        Assert.Equal(1, atB.PlisSent);
    }

    [Fact]
    public void AFullIntraRequestIsSurfacedOncePerSequenceNumber()
    {
        var p = Connect();
        var buffer = new byte[256];
        void Fir(byte sequence)
        {
            // RFC 5104 4.3.1, as B's SRTCP (B's core sends only PLI itself).
            var length = Transport.Rtp.Rtcp.RtcpFeedback.WriteFir(buffer, p.BackVideo.Ssrc, p.Video.Ssrc, sequence);
            Assert.Equal(Transport.Rtp.Srtp.SrtpResult.Ok, p.B.Core.Srtp!.ProtectRtcp(buffer, length, out var n));
            p.A.HandleDatagram(buffer.AsSpan(0, n), p.Driver.Now);
        }
        Fir(1);
        Fir(1);   // a repetition of the same request
        Fir(2);
        var requests = p.A.Events.OfType<KeyFrameRequestReceived>().ToList();
        Assert.Equal(2, requests.Count);
        Assert.All(requests, r => Assert.True(r.FullIntraRequest && r.Track == p.Video));
        Assert.Equal(2, p.Video.FirsReceived);
        Assert.Equal(0, p.Video.PlisReceived);
    }

    [Fact]
    public void ByeOnEveryIncomingTrackEndsThemAndClosesTheConnection()
    {
        var link = new VirtualLink(5);
        var p = Connect(link);
        p.A.Core.SendFrame(p.Video, Vp8Frame(0, 1000), 0, p.Driver.Now);
        p.A.Core.SendFrame(p.Audio, new byte[60], 0, p.Driver.Now);
        p.Driver.RunFor(TimeSpan.FromMilliseconds(50));
        // Only SRTP/SRTCP leaves A from now on: B can learn of the end from the RTCP BYE alone.
        link.AddFilter(LinkEnd.A, d => d.Span[0] is < 128 or > 191, _ => FilterAction.Drop);
        var closedAt = p.Driver.Now;
        p.A.Core.Close(p.Driver.Now, "done");
        Assert.True(p.Driver.RunUntil(() => p.B.Core.State == ConnectionState.Closed, TimeSpan.FromSeconds(2)));
        var closed = p.B.Events.OfType<ConnectionStateChanged>().Last();
        Assert.Equal(ConnectionLayer.Srtp, closed.Reason.Layer);
        Assert.Equal(TimeSpan.FromMilliseconds(10), closed.At - closedAt);
        var ended = p.B.Events.OfType<RemoteTrackEnded>().ToList();
        Assert.Equal(2, ended.Count);
        Assert.All(ended, e => Assert.StartsWith("RTCP BYE", e.Reason, StringComparison.Ordinal));
        Assert.True(p.B.Remote(MediaKind.Video).Ended.IsCompleted);
        Assert.True(p.B.Remote(MediaKind.Video).Frames.Completion.IsCompleted || p.B.Remote(MediaKind.Video).Frames.TryRead(out _));
    }

    [Fact]
    public void AnsweringARealChromiumOfferMakesItsTracksWithTheSignalledSsrcsAndPutsOursInItsSections()
    {
        var offer = SessionDescription.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "chromium-offer.sdp")));
        using var core = new PeerConnectionCore(new PeerConnectionOptions { Certificate = Certificate });
        core.AddHostCandidate(new IPEndPoint(IPAddress.Loopback, 5000));
        var video = core.AddTrack(MediaKind.Video, new LocalTrackOptions { Codecs = [CodecSpec.H264, CodecSpec.Vp8] });
        var audio = core.AddTrack(MediaKind.Audio);
        var answer = core.CreateAnswer(offer, TimeSpan.Zero);
        var events = new List<PeerConnectionEvent>();
        while (core.TryPollEvent(out var e)) events.Add(e);

        var tracks = events.OfType<RemoteTrackAdded>().Select(e => e.Track).ToList();
        Assert.Equal([(MediaKind.Audio, "0", 2074587812u, (uint?)null), (MediaKind.Video, "1", 972566056u, 1518315065u)],
            tracks.Select(t => (t.Kind, t.Mid, t.Ssrc, t.RtxSsrc)));
        Assert.Equal("bfef8d56-4306-4ad3-af15-3de5f9237e2a", tracks[1].TrackId);
        Assert.Equal(("0", "opus", 111), (audio.Mid, audio.Codec!.Codec.Name, audio.Codec.PayloadType));
        Assert.Equal(("1", "H264"), (video.Mid, video.Codec!.Codec.Name));     // our preference, the offer's payload type
        Assert.True(video.UsesRtx);
        var videoSection = answer.Media.Single(m => m.Mid == "1");
        Assert.Contains($"FID {video.Ssrc} {video.RtxSsrc}", videoSection.GetAttributes("ssrc-group"));
        Assert.Equal(video.Codec.PayloadType.ToString(System.Globalization.CultureInfo.InvariantCulture), videoSection.Formats[0]);
        Assert.Equal(MediaSendResult.NotConnected, core.SendFrame(video, [0, 0, 0, 1, 0x65, 1], 0, TimeSpan.Zero));
    }

    [Fact]
    public void AFrameLargerThanTheSendQueueIsReportedAndCountedNotDroppedSilently()
    {
        var p = Connect(media: new MediaOptions { SendQueuePackets = 4 });
        var result = p.A.Core.SendFrame(p.Video, Vp8Frame(0, 10 * 1000), 0, p.Driver.Now); // 10 packets of at most 1100 B
        Assert.Equal(MediaSendResult.QueueFull, result);
        Assert.Equal(4, p.Video.PacketsSent);
        Assert.Equal(1, p.Video.PacketsDropped);
        Assert.Equal(1, p.A.Core.MediaCounters.SendQueueFull);
        p.Driver.RunFor(TimeSpan.FromMilliseconds(50));                 // the queue drains to the wire
        Assert.Equal(MediaSendResult.Sent, p.A.Core.SendFrame(p.Video, Vp8Frame(1, 3000), 3000, p.Driver.Now));
    }

    [Fact]
    public void SendingBeforeConnectingOrOnAnUnnegotiatedTrackSaysWhy()
    {
        var core = new PeerConnectionCore(new PeerConnectionOptions { Certificate = Certificate });
        var track = core.AddTrack(MediaKind.Video);
        Assert.Equal(MediaSendResult.NotConnected, core.SendFrame(track, [1, 2, 3], 0, TimeSpan.Zero));
        var p = Connect();
        var late = p.A.Core.AddTrack(MediaKind.Video);
        Assert.Equal(MediaSendResult.NotNegotiated, p.A.Core.SendFrame(late, [1, 2, 3], 0, p.Driver.Now));
        Assert.Equal(MediaSendResult.Invalid, p.A.Core.SendFrame(p.Video, [], 0, p.Driver.Now));
        core.Dispose();
    }
}
