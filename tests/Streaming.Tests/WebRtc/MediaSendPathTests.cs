using System.Buffers.Binary;
using Transport.Rtp;
using Transport.Rtp.Congestion;
using Transport.Rtp.Rtcp;
using Transport.Rtp.Srtp;
using Transport.Rtp.Streams;
using Transport.Streaming.Jsep;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// <see cref="MediaSendPath"/> alone, without a peer connection: a frame becomes RTP packets that the pacer lets out
/// within its budget, numbered (transport-wide sequence number, RFC 8285 one-byte element) and SRTP-protected as they
/// leave; a NACK (RFC 4585) is answered from the send history on the RTX stream (RFC 4588) with the next transport-wide
/// number; a sender report (RFC 3550 6.4.1) counts what was sent; sending before the SRTP keys is refused
/// (<see cref="MediaSendResult.NotConnected"/>), as the connection refuses it. Every packet is read back through a peer's
/// SRTP session; time is virtual.
/// </summary>
public sealed class MediaSendPathTests
{
    private const int Seed = 7;
    private const int TransportCcId = 3;
    private const int VideoPt = 96, RtxPt = 97, OpusPt = 111;
    private const int SrtpTag = 10;   // AES_CM_128_HMAC_SHA1_80 (RFC 3711)
    private const int Descriptor = 4; // VP8 payload descriptor with a 15-bit picture id (RFC 7741 4.2)
    private static TimeSpan Ms(double ms) => TimeSpan.FromMilliseconds(ms);

    // The keying material DTLS would export (RFC 5764 4.2): the client's and the server's keys and salts.
    private static byte[] Material() => Enumerable.Range(1, 2 * (16 + 14)).Select(i => (byte)i).ToArray();

    private sealed class Rig
    {
        public readonly Queue<PeerConnectionEvent> Events = new();
        public readonly MediaCounters Counters = new();
        public readonly SrtpKeying Srtp;
        public readonly MediaSendPath Path;
        // The peer (the DTLS server): it unprotects what the path protected as the client.
        public readonly SrtpSession Peer = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, Material(), isClient: false);

        public Rig(MediaOptions options, bool keys = true)
        {
            Srtp = new SrtpKeying(null);
            Path = new MediaSendPath(options, Srtp, Events, Counters);
            if (keys) GiveKeys();
        }

        public void GiveKeys() => Srtp.SetKeys(SrtpProfile.AesCm128HmacSha1_80, Material(), client: true);

        public LocalTrack Video(int? transportCc = TransportCcId, TimeSpan now = default)
        {
            var track = Path.AddTrack(MediaKind.Video, null);
            Path.OnTransportCcNegotiated(transportCc, now);
            Path.Negotiate(track, "0", new NegotiatedCodec(CodecSpec.Vp8, VideoPt, null, RtxPt), midExtension: null);
            return track;
        }

        public LocalTrack Audio()
        {
            var track = Path.AddTrack(MediaKind.Audio, null);
            Path.Negotiate(track, "0", new NegotiatedCodec(CodecSpec.Opus, OpusPt, null, null), midExtension: null);
            return track;
        }

        /// <summary>The next packet the pacer lets out at <paramref name="now"/>, unprotected by the peer; null when none.</summary>
        public byte[]? Paced(TimeSpan now, out int wireLength)
        {
            var buffer = new byte[1500];
            wireLength = 0;
            if (!Path.TryPollQueued(buffer, now, out var written)) return null;
            wireLength = written;
            return Unprotect(buffer, written);
        }

        public byte[] Unprotect(byte[] buffer, int length)
        {
            var packet = buffer.AsSpan(0, length);
            var rtcp = RtpDemux.IsRtcp(packet);
            var result = rtcp ? Peer.UnprotectRtcp(packet, out var plain) : Peer.UnprotectRtp(packet, out plain);
            Assert.Equal(SrtpResult.Ok, result);
            return packet[..plain].ToArray();
        }

        /// <summary>The RTP session's events about our tracks, as the connection routes them.</summary>
        public void RouteRtpEvents(TimeSpan now)
        {
            while (Path.Rtp!.TryPollEvent(out var e)) Assert.True(Path.OnRtpEvent(e, now), $"{e} is about one of our tracks");
        }
    }

    private static ushort TransportWideNumber(byte[] plain)
    {
        Assert.True(RtpPacket.TryRead(plain, out var rtp));
        Assert.True(rtp.TryGetExtension(TransportCcId, out var value));
        Assert.Equal(2, value.Length);
        return BinaryPrimitives.ReadUInt16BigEndian(value);
    }

    private static ushort SequenceOf(byte[] plain) => BinaryPrimitives.ReadUInt16BigEndian(plain.AsSpan(2));

    [Fact]
    public void AFrameLeavesAsPacedPacketsOnePerIntervalWithinTheBudget()
    {
        // 1.6 Mbit/s with a pacing factor of 1: 1,000 bytes of budget every 5 ms, less than one packet of the frame, so
        // the pacer lets one out per interval (a packet may take the budget one packet negative).
        var congestion = new CongestionControlOptions
        {
            StartBitrate = 1_600_000,
            PacingFactor = 1,
            ProbeAtStart = false,
            ProbeAfterApplicationLimited = false,
        };
        var rig = new Rig(new MediaOptions { RandomSeed = Seed, Congestion = congestion });
        var track = rig.Video();
        Assert.Equal(new TargetBitrateChanged(TimeSpan.Zero, 1_600_000), Assert.IsType<TargetBitrateChanged>(Assert.Single(rig.Events)));
        Assert.Equal(1_600_000, rig.Path.TargetBitrate);

        var frame = new byte[3 * (1100 - Descriptor)];
        Assert.Equal(MediaSendResult.Sent, rig.Path.SendFrame(track, frame, 3000, TimeSpan.Zero));
        Assert.Equal(3, track.PacketsSent);
        Assert.Equal(3 * 1100, track.BytesSent);
        Assert.Equal(3, rig.Path.Pacer!.Count);

        // 12 header + 8 of the one-byte block (transport-wide number) + 1,100 payload, + the SRTP tag on the wire.
        const int Wire = 12 + 8 + 1100 + SrtpTag;
        var sequences = new List<ushort>();
        foreach (var at in new[] { Ms(0), Ms(5), Ms(10) })
        {
            Assert.Equal(at, rig.Path.Pacer.NextSendTime(at));
            var packet = rig.Paced(at, out var wire);
            Assert.NotNull(packet);
            Assert.Equal(Wire, wire);
            sequences.Add(SequenceOf(packet));
            Assert.Null(rig.Paced(at, out _));   // the budget is spent until the next interval
        }
        Assert.Equal(0, rig.Path.Pacer.Count);
        Assert.Null(rig.Path.Pacer.NextSendTime(Ms(10)));
        Assert.Equal(new[] { sequences[0], (ushort)(sequences[0] + 1), (ushort)(sequences[0] + 2) }, sequences);
        Assert.Equal(3, rig.Counters.RtpPacketsSent);
    }

    [Fact]
    public void TheSeedDrawsTheSsrcsFirstSequenceAndFirstTransportWideNumberInOrder()
    {
        var rig = new Rig(new MediaOptions { RandomSeed = Seed, Congestion = null });
        var track = rig.Video();
        // The order the connection has always drawn them in (tests that replay a run depend on it).
        var random = new Random(Seed);
        Assert.Equal((uint)random.Next(1, int.MaxValue), rig.Path.LocalSsrc);
        Assert.Equal((uint)random.NextInt64(1, uint.MaxValue), track.Ssrc);
        Assert.Equal((uint?)random.NextInt64(1, uint.MaxValue), track.RtxSsrc);
        var firstSequence = (ushort)random.Next(0, 0x8000);
        random.Next(0, 0x8000);   // the first VP8 picture id
        var firstNumber = (ushort)random.Next(1, 0x10000);

        Assert.Equal(MediaSendResult.Sent, rig.Path.SendFrame(track, new byte[500], 0, TimeSpan.Zero));
        var packet = rig.Paced(TimeSpan.Zero, out _)!;
        Assert.Equal(firstSequence, SequenceOf(packet));
        Assert.Equal(firstNumber, TransportWideNumber(packet));
        Assert.Equal(track.Ssrc, rig.Path.ReportSsrc());
    }

    [Fact]
    public void ANackIsAnsweredFromTheHistoryOnTheRtxStream()
    {
        var rig = new Rig(new MediaOptions { RandomSeed = Seed, Congestion = null });
        var track = rig.Video();
        var frame = Enumerable.Range(0, 2 * (1100 - Descriptor)).Select(i => (byte)i).ToArray();
        Assert.Equal(MediaSendResult.Sent, rig.Path.SendFrame(track, frame, 9000, Ms(1)));
        var first = rig.Paced(Ms(1), out _)!;
        var second = rig.Paced(Ms(1), out _)!;
        Assert.Null(rig.Paced(Ms(1), out _));

        // The peer lost the second packet (RFC 4585 6.2.1 generic NACK, reduced size).
        var nack = new byte[64];
        var length = RtcpFeedback.WriteNack(nack, 0x1234, track.Ssrc, [SequenceOf(second)]);
        rig.Path.Rtp!.HandleDatagram(nack.AsSpan(0, length), Ms(40));
        rig.RouteRtpEvents(Ms(40));
        var evt = Assert.IsType<NackReceivedEvent>(rig.Events.Dequeue());
        Assert.Equal((track, 1, 1), (evt.Track, evt.Requested, evt.Retransmitting));
        Assert.Equal((1L, 1L), (track.NacksReceived, track.PacketsNacked));

        var buffer = new byte[1500];
        Assert.True(rig.Path.TryPollRtpTransmit(buffer, Ms(40), out var written, out var taken));
        Assert.True(taken);
        var rtx = rig.Unprotect(buffer, written);
        Assert.True(RtpPacket.TryRead(rtx, out var r));
        Assert.Equal(track.RtxSsrc, r.Ssrc);
        Assert.Equal(RtxPt, r.PayloadType);
        Assert.True(r.Marker);   // the frame's last packet
        Assert.Equal(9000u, r.Timestamp);
        // RFC 4588 section 4: the original sequence number, then the original payload.
        Assert.Equal(SequenceOf(second), BinaryPrimitives.ReadUInt16BigEndian(r.Payload));
        Assert.True(RtpPacket.TryRead(second, out var original));
        Assert.Equal(original.Payload.ToArray(), r.Payload[2..].ToArray());
        Assert.Equal((1L, 1L), (rig.Counters.Retransmissions, track.Retransmissions));
        Assert.False(rig.Path.TryPollRtpTransmit(buffer, Ms(40), out _, out taken));
        Assert.False(taken);
        Assert.Equal(2, track.PacketsSent);   // a retransmission is not a first transmission
        Assert.Equal(SequenceOf(first) + 1, SequenceOf(second));
    }

    [Fact]
    public void TransportWideNumbersAreConsecutiveAcrossMediaAndRetransmissionsInTheOrderTheyLeave()
    {
        var rig = new Rig(new MediaOptions { RandomSeed = Seed, Congestion = null });
        var track = rig.Video();
        var buffer = new byte[1500];
        var numbers = new List<ushort>();
        var sequences = new List<ushort>();

        Assert.Equal(MediaSendResult.Sent, rig.Path.SendFrame(track, new byte[3 * (1100 - Descriptor)], 0, Ms(0)));
        while (rig.Paced(Ms(0), out _) is { } p) { numbers.Add(TransportWideNumber(p)); sequences.Add(SequenceOf(p)); }
        Assert.Equal(3, numbers.Count);

        var nack = new byte[64];
        var length = RtcpFeedback.WriteNack(nack, 0x1234, track.Ssrc, [sequences[0], sequences[2]]);
        rig.Path.Rtp!.HandleDatagram(nack.AsSpan(0, length), Ms(30));
        rig.RouteRtpEvents(Ms(30));
        while (rig.Path.TryPollRtpTransmit(buffer, Ms(30), out var written, out _))
            numbers.Add(TransportWideNumber(rig.Unprotect(buffer, written)));
        Assert.Equal(5, numbers.Count);

        Assert.Equal(MediaSendResult.Sent, rig.Path.SendFrame(track, new byte[200], 3000, Ms(33)));
        numbers.Add(TransportWideNumber(rig.Paced(Ms(33), out _)!));

        var expected = Enumerable.Range(0, 6).Select(i => (ushort)(numbers[0] + i)).ToList();
        Assert.Equal(expected, numbers);
        Assert.Equal(6, rig.Path.TransportCcSender!.PacketsSent);
        Assert.Equal(2, rig.Counters.Retransmissions);
    }

    [Fact]
    public void ASenderReportCountsThePacketsAndPayloadOctetsSent()
    {
        var rig = new Rig(new MediaOptions { RandomSeed = Seed, Congestion = null, ReportInterval = TimeSpan.FromSeconds(1) });
        var audio = rig.Audio();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(MediaSendResult.Sent, rig.Path.SendFrame(audio, new byte[100 + i], (uint)(960 * i), Ms(20 * i)));
            Assert.Equal(12 + 100 + i + SrtpTag, rig.Paced(Ms(20 * i), out var wire) is not null ? wire : -1);   // audio: no extension block
        }

        var due = rig.Path.Rtp!.PollTimeout()!.Value;
        Assert.InRange(due, Ms(500), Ms(1500));   // RFC 3550 6.2: the interval randomized 0.5-1.5 times
        rig.Path.Rtp.HandleTimeout(due);
        var buffer = new byte[1500];
        Assert.True(rig.Path.TryPollRtpTransmit(buffer, due, out var written, out _));
        var compound = rig.Unprotect(buffer, written);

        var enumerator = RtcpCompound.Enumerate(compound);
        Assert.True(enumerator.MoveNext());
        Assert.True(RtcpReport.TryRead(enumerator.Current, out var report));
        Assert.True(report.IsSenderReport);
        Assert.Equal(audio.Ssrc, report.Ssrc);
        Assert.Equal(3u, report.SenderInfo.PacketCount);
        Assert.Equal(100u + 101 + 102, report.SenderInfo.OctetCount);
        Assert.Equal(1, rig.Counters.RtcpPacketsSent);
    }

    [Fact]
    public void SendingBeforeTheSrtpKeysIsRefusedAndQueuesNothing()
    {
        var rig = new Rig(new MediaOptions { RandomSeed = Seed, Congestion = null }, keys: false);
        var track = rig.Video();
        var sequence = track.NextSequence;
        Assert.Equal(MediaSendResult.NotConnected, rig.Path.SendFrame(track, new byte[500], 0, Ms(1)));
        Assert.Equal(MediaSendResult.NotConnected, rig.Path.SendRtp(track, new byte[100], 0, marker: true, Ms(1)));
        Assert.Equal((0L, 0L, 0L), (track.PacketsSent, track.FramesSent, track.PacketsDropped));
        Assert.Equal(sequence, track.NextSequence);
        Assert.Null(rig.Path.Pacer);
        Assert.False(rig.Path.TryPollQueued(new byte[1500], Ms(1), out _));
        rig.Path.SendBye("closed", anyRemoteTrack: true);
        Assert.False(rig.Path.HasQueuedBye);   // no keys: nothing to protect a BYE with

        // The keys come (DTLS connected): the session is made only when the first packet leaves.
        rig.GiveKeys();
        Assert.Equal(MediaSendResult.Sent, rig.Path.SendFrame(track, new byte[500], 0, Ms(2)));
        Assert.False(rig.Srtp.SessionMade);
        var packet = rig.Paced(Ms(2), out _)!;
        Assert.True(rig.Srtp.SessionMade);
        Assert.Equal(sequence, SequenceOf(packet));
        Assert.Equal(0, rig.Counters.ProtectFailures);
    }

    [Fact]
    public void AnUnnegotiatedTrackAnEmptyFrameAndAFullPacerAreRefusedAndCounted()
    {
        var rig = new Rig(new MediaOptions { RandomSeed = Seed, Congestion = null, SendQueuePackets = 4 });
        var pending = rig.Path.AddTrack(MediaKind.Video, null);
        Assert.Equal(MediaSendResult.NotNegotiated, rig.Path.SendFrame(pending, new byte[10], 0, Ms(1)));
        var other = new Rig(new MediaOptions { RandomSeed = Seed + 1 }).Video();
        Assert.Equal(MediaSendResult.NotNegotiated, rig.Path.SendFrame(other, new byte[10], 0, Ms(1)));   // another connection's track

        var track = rig.Video();
        Assert.Equal(MediaSendResult.Invalid, rig.Path.SendFrame(track, ReadOnlySpan<byte>.Empty, 0, Ms(1)));
        Assert.Equal(MediaSendResult.Invalid, rig.Path.SendRtp(track, new byte[1100 + 201], 0, marker: false, Ms(1)));
        // Six packets' worth into a pacer of four: four queued, the fifth refused, the frame not counted as sent.
        Assert.Equal(MediaSendResult.QueueFull, rig.Path.SendFrame(track, new byte[6 * (1100 - Descriptor)], 0, Ms(1)));
        Assert.Equal((4L, 1L, 0L), (track.PacketsSent, track.PacketsDropped, track.FramesSent));
        Assert.Equal((1L, 4), (rig.Counters.SendQueueFull, rig.Path.Pacer!.Count));
    }

    [Fact]
    public void AKeyFrameRequestAndAByeGoThroughTheTrackAndTheCloseQueue()
    {
        var rig = new Rig(new MediaOptions { RandomSeed = Seed, Congestion = null });
        var track = rig.Video();
        var pli = new byte[16];
        var length = RtcpFeedback.WritePli(pli, 0x1234, track.Ssrc);
        rig.Path.Rtp!.HandleDatagram(pli.AsSpan(0, length), Ms(5));
        rig.RouteRtpEvents(Ms(5));
        var request = Assert.IsType<KeyFrameRequestReceived>(Assert.Single(rig.Events));
        Assert.Equal((track, false, 1L, 0L), (request.Track, request.FullIntraRequest, track.PlisReceived, track.FirsReceived));

        Assert.Equal(MediaSendResult.Sent, rig.Path.SendFrame(track, new byte[300], 0, Ms(6)));
        rig.Path.SendBye(new string('x', 300), anyRemoteTrack: false);
        Assert.True(rig.Path.HasQueuedBye);
        // The BYE goes ahead of what the pacer holds (it precedes the DTLS close_notify).
        var bye = rig.Paced(Ms(6), out _)!;
        Assert.True(RtpDemux.IsRtcp(bye));
        var found = false;
        foreach (var packet in RtcpCompound.Enumerate(bye))
        {
            if (packet.PacketType != RtcpPacketType.Bye) continue;
            Assert.True(RtcpBye.TryRead(packet, out var b));
            Assert.Equal((1, track.Ssrc, 255), (b.Count, b.GetSsrc(0), b.Reason.Length));   // the reason cut to 255 bytes
            found = true;
        }
        Assert.True(found);
        Assert.False(rig.Path.HasQueuedBye);
        Assert.False(RtpDemux.IsRtcp(rig.Paced(Ms(6), out _)!));   // then the media
    }
}
