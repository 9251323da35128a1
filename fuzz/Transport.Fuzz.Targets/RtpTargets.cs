using Transport.Rtp;
using Transport.Rtp.Payloads;
using Transport.Rtp.Rtcp;
using Transport.Rtp.Srtp;
using Transport.Rtp.Streams;

namespace Transport.Fuzz;

/// <summary>RTP, RTCP, SRTP/SRTCP, the depacketizers and the frame assembler.</summary>
public static class RtpTargets
{
    internal const uint SendSsrc = 0x01020304, ReceiveSsrc = 0x05060708, RtxSsrc = 0x0A0B0C0D;

    /// <summary>The targets.</summary>
    public static IEnumerable<FuzzTarget> All =>
    [
        new("rtp", Rtp, "RtpPacket.TryRead, every header field and extension, and an RtpSession receiving it (with RTX unwrapping)"),
        new("rtcp", Rtcp, "a compound RTCP packet: every packet type and feedback (NACK, PLI, FIR, REMB, transport-cc) read, then an RtpSession " +
            "and a TransportCcSender handle it"),
        new("srtp", Srtp, "SRTP unprotect with a real key (byte 0: profile; bit 2: protect the rest first and check the round trip, bit 3: then " +
            "flip one byte, which must fail)"),
        new("srtcp", Srtcp, "SRTCP unprotect with a real key, as srtp"),
        new("h264", data => Depacketize(new H264Depacketizer(), data), "the H.264 depacketizer (RFC 6184: single NAL, STAP-A, FU-A)"),
        new("vp8", data => Depacketize(new Vp8Depacketizer(), data), "the VP8 depacketizer (RFC 7741 payload descriptor)"),
        new("opus", data => Depacketize(new OpusDepacketizer(), data), "the Opus depacketizer"),
        new("frame-assembler", FrameAssembler, "RTP packets (records) into an RtpFrameAssembler for H.264, VP8 or Opus (byte 0 % 3); every frame polled"),
    ];

    /// <summary>Reads every field of an RTP packet and gives it to a receiving session.</summary>
    public static void Rtp(ReadOnlySpan<byte> data)
    {
        if (RtpPacket.TryRead(data, out var rtp))
        {
            _ = rtp.Marker; _ = rtp.PayloadType; _ = rtp.SequenceNumber; _ = rtp.Timestamp; _ = rtp.Ssrc; _ = rtp.HasPadding;
            for (var i = 0; i < rtp.CsrcCount; i++) _ = rtp.GetCsrc(i);
            _ = rtp.ExtensionProfile; _ = rtp.Payload.Length; _ = rtp.HeaderLength; _ = rtp.PaddingLength;
            var n = 0;
            // Every element takes at least two bytes of the header (RFC 8285: one-byte form id/length and a byte of
            // data, two-byte form id and length): more than that means the enumeration does not end. (A bound of 1,000
            // was wrong: a 4.9 KB two-byte block of empty elements holds 2,468, found by the rtp target.)
            foreach (var e in rtp.GetExtensions())
            {
                _ = e.Id;
                _ = e.Value.Length;
                if (++n > rtp.HeaderLength / 2) throw new FuzzPropertyException("extension enumeration does not end");
            }
            for (var id = 0; id < 16; id++) rtp.TryGetExtension(id, out _);
        }
        var session = new RtpSession();
        session.AddReceiveStream(ReceiveSsrc, 90000);
        session.AddReceiveRtx(RtxSsrc, ReceiveSsrc, 96);
        session.HandleRtp(data, TimeSpan.Zero);
        var buffer = new byte[Math.Max(2048, data.Length + 64)];
        session.TryUnwrapRtx(data, buffer, out _);
        session.HandleTimeout(TimeSpan.FromSeconds(2));
        for (var i = 0; i < 1000 && session.TryPollTransmit(buffer, out _, out _); i++) { }
        for (var i = 0; i < 1000 && session.TryPollEvent(out _); i++) { }
    }

    /// <summary>Every packet of a compound RTCP packet read the way the stack reads them, then handled by a session.</summary>
    public static void Rtcp(ReadOnlySpan<byte> data)
    {
        RtcpCompound.IsValid(data, out _);
        Span<ushort> nacks = stackalloc ushort[1024];
        var statuses = new TransportCcPacketStatus[8192];
        var sender = new TransportCcSender();
        for (var i = 0; i < 64; i++) sender.Number(1000, TimeSpan.FromMilliseconds(i));
        var count = 0;
        foreach (var packet in RtcpCompound.Enumerate(data))
        {
            if (++count > 10_000) throw new FuzzPropertyException("compound enumeration does not end");
            _ = packet.Count; _ = packet.PacketType; _ = packet.Ssrc; _ = packet.Body.Length;
            if (RtcpReport.TryRead(packet, out var report))
            {
                for (var i = 0; i < report.BlockCount; i++) _ = report.GetBlock(i);
                _ = report.SenderInfo;
            }
            if (RtcpFeedback.TryRead(packet, out var fb))
            {
                _ = fb.IsNack; _ = fb.IsPli; _ = fb.IsFir; _ = fb.IsRemb; _ = fb.SenderSsrc; _ = fb.MediaSsrc;
                if (fb.IsNack) fb.GetNackedSequences(nacks);
                if (fb.IsFir) for (var i = 0; i < 64 && fb.TryGetFirEntry(i, out _, out _); i++) { }
                if (fb.IsRemb && fb.TryGetRemb(out _, out var ssrcs)) for (var i = 0; i < ssrcs; i++) _ = fb.GetRembSsrc(i);
                if (fb.IsTransportCc && TransportCcFeedback.TryRead(fb.Fci, statuses, out var n, out var fbCount))
                {
                    if (n < 0 || n > statuses.Length) throw new FuzzPropertyException($"transport-cc count {n}");
                    sender.OnFeedback(statuses.AsSpan(0, n), fbCount, TimeSpan.FromMilliseconds(100));
                }
            }
            RtcpSdes.TryGetCname(packet, packet.Ssrc, out _);
            if (RtcpBye.TryRead(packet, out var bye)) { for (var i = 0; i < bye.Count; i++) _ = bye.GetSsrc(i); _ = bye.Reason.Length; }
            if (RtcpApp.TryRead(packet, out var app)) { _ = app.Name.Length; _ = app.Data.Length; }
        }
        var session = new RtpSession();
        session.AddSendStream(SendSsrc, 90000, new RtxParameters(RtxSsrc, 97));
        session.AddReceiveStream(ReceiveSsrc, 48000);
        var buffer = new byte[2048];
        for (ushort seq = 0; seq < 32; seq++)
        {
            var n = RtpPacketWriter.Write(new RtpHeader(96, seq, seq * 3000u, SendSsrc), new byte[100], buffer);
            session.OnRtpSent(buffer.AsSpan(0, n), TimeSpan.FromMilliseconds(seq));
        }
        session.HandleRtcp(data, TimeSpan.FromSeconds(1));
        for (var i = 0; i < 1000 && session.TryPollTransmit(buffer, out _, out _); i++) { }
        for (var i = 0; i < 1000 && session.TryPollEvent(out _); i++) { }
    }

    private static readonly SrtpProfile[] Profiles = [SrtpProfile.AesCm128HmacSha1_80, SrtpProfile.AesCm128HmacSha1_32, SrtpProfile.AeadAes128Gcm,
        SrtpProfile.AeadAes256Gcm];

    /// <summary>A context with the fixed test key of the SRTP targets.</summary>
    public static SrtpContext Context(SrtpProfile profile)
    {
        var key = new byte[SrtpProfileInfo.MasterKeyLength(profile)];
        var salt = new byte[SrtpProfileInfo.MasterSaltLength(profile)];
        for (var i = 0; i < key.Length; i++) key[i] = (byte)(i * 7 + 1);
        for (var i = 0; i < salt.Length; i++) salt[i] = (byte)(i * 13 + 5);
        return SrtpContext.Create(profile, key, salt);
    }

    /// <summary>SRTP: the rest of the input unprotected by a real context, or protected then unprotected.</summary>
    public static void Srtp(ReadOnlySpan<byte> data) => RoundTrip(data, rtcp: false);

    /// <summary>SRTCP, as <see cref="Srtp"/>.</summary>
    public static void Srtcp(ReadOnlySpan<byte> data) => RoundTrip(data, rtcp: true);

    private static void RoundTrip(ReadOnlySpan<byte> data, bool rtcp)
    {
        if (data.IsEmpty) return;
        var flags = data[0];
        var profile = Profiles[flags & 3];
        var body = data[1..];
        using var sender = Context(profile);
        using var receiver = Context(profile);
        var buffer = new byte[body.Length + 64];
        body.CopyTo(buffer);
        if ((flags & 4) == 0)
        {
            var r = rtcp ? receiver.UnprotectRtcp(buffer.AsSpan(0, body.Length), out var n) : receiver.UnprotectRtp(buffer.AsSpan(0, body.Length), out n);
            if (r == SrtpResult.Ok && (n < 0 || n > body.Length)) throw new FuzzPropertyException($"plain length {n} of {body.Length}");
            return;
        }
        var p = rtcp ? sender.ProtectRtcp(buffer, body.Length, out var protectedLength) : sender.ProtectRtp(buffer, body.Length, out protectedLength);
        if (p != SrtpResult.Ok) return;
        var tamper = (flags & 8) != 0 && protectedLength > 0;
        var at = tamper ? (flags >> 4) * 7 % protectedLength : 0;
        if (tamper) buffer[at] ^= 0x01;
        var u = rtcp ? receiver.UnprotectRtcp(buffer.AsSpan(0, protectedLength), out var plain)
            : receiver.UnprotectRtp(buffer.AsSpan(0, protectedLength), out plain);
        if (tamper)
        {
            if (u == SrtpResult.Ok) throw new FuzzPropertyException($"a flipped bit at {at} of {protectedLength} passed authentication");
            return;
        }
        if (u != SrtpResult.Ok) throw new FuzzPropertyException($"protect -> unprotect failed: {u}");
        if (!buffer.AsSpan(0, plain).SequenceEqual(body)) throw new FuzzPropertyException("protect -> unprotect changed the packet");
    }

    /// <summary>Every depacketizer call on one payload; the output stays within MaxOutputLength.</summary>
    public static void Depacketize(IRtpDepacketizer depacketizer, ReadOnlySpan<byte> payload)
    {
        _ = depacketizer.IsFrameStart(payload);
        _ = depacketizer.IsFrameEnd(payload, true);
        _ = depacketizer.IsKeyFrame(payload);
        var max = depacketizer.MaxOutputLength(payload.Length);
        var destination = new byte[max];
        var n = depacketizer.Depacketize(payload, destination);
        if (n > max) throw new FuzzPropertyException($"wrote {n} of at most {max}");
        if (depacketizer is Vp8Depacketizer) { _ = Vp8Depacketizer.DescriptorLength(payload); _ = Vp8Depacketizer.PictureId(payload); }
    }

    /// <summary>RTP packets into a frame assembler; every frame polled into a buffer of the announced size.</summary>
    public static void FrameAssembler(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        IRtpDepacketizer depacketizer = (data[0] % 3) switch { 0 => new H264Depacketizer(), 1 => new Vp8Depacketizer(), _ => new OpusDepacketizer() };
        var assembler = new RtpFrameAssembler(depacketizer, maxPacketsPerFrame: 64, maxPendingFrames: 4);
        var body = data[1..];
        var total = 0L;
        foreach (var (offset, length) in FuzzRecords.Split(body))
        {
            assembler.Push(body.Slice(offset, length));
            for (var i = 0; i < 100; i++)
            {
                var peek = assembler.PeekLength();
                if (peek < 0) break;
                var destination = new byte[peek];
                if (!assembler.TryPollFrame(destination, out var frame))
                    throw new FuzzPropertyException("PeekLength announced a frame TryPollFrame did not give");
                if (frame.Length != peek) throw new FuzzPropertyException($"frame of {frame.Length} bytes, {peek} announced");
                total += frame.Length;
            }
        }
        // Every byte of a frame came from a payload (plus at most 4 start-code bytes per H.264 NAL unit).
        if (total > 3L * data.Length + 1024) throw new FuzzPropertyException($"{total} frame bytes from {data.Length} input bytes");
    }
}
