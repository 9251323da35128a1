using System.Buffers.Binary;
using FsCheck.Xunit;
using Transport.Ice.Stun;
using Transport.Rtp;
using Transport.Rtp.Rtcp;
using Transport.Rtp.Srtp;
using Transport.Sctp.Wire;

namespace Transport.Fuzz.Tests;

/// <summary>
/// Writer -> reader round trips on generated values (FsCheck): what our writers put on the wire, our readers read
/// back field for field. A property that fails prints the smallest counterexample FsCheck found.
/// </summary>
public sealed class RoundTripPropertyTests
{
    [Property(MaxTest = 300)]
    public void StunMessagesRoundTripWithIntegrityAndFingerprint(byte[] transactionSeed, uint priority, ulong tieBreaker, uint ipv4, ushort port,
        byte[] usernameBytes, bool useCandidate)
    {
        var transactionId = new byte[12];
        (transactionSeed ?? []).AsSpan(0, Math.Min(12, transactionSeed?.Length ?? 0)).CopyTo(transactionId);
        var username = new string((usernameBytes ?? []).Take(100).Select(b => (char)('a' + b % 26)).ToArray()) + ":x";
        var address = StunAddress.FromBytes(BitConverter.GetBytes(ipv4), port);
        using var key = StunKey.ShortTerm("password-of-the-test");
        var buffer = new byte[512];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, transactionId);
        w.AddString(StunAttributeType.Username, username);
        w.AddUInt32(StunAttributeType.Priority, priority);
        w.AddUInt64(StunAttributeType.IceControlling, tieBreaker);
        w.AddXorAddress(StunAttributeType.XorMappedAddress, address);
        if (useCandidate) w.AddFlag(StunAttributeType.UseCandidate);
        w.AddMessageIntegrity(key);
        w.AddFingerprint();
        Assert.True(StunMessage.TryRead(buffer.AsSpan(0, w.Length), out var m, out var error), error.ToString());
        Assert.Equal(StunMessageType.BindingRequest, m.Type);
        Assert.True(m.TransactionId.SequenceEqual(transactionId));
        Assert.True(m.TryGetUsername(out var u) && u.SequenceEqual(System.Text.Encoding.UTF8.GetBytes(username)));
        Assert.True(m.TryGetPriority(out var p) && p == priority);
        Assert.True(m.TryGetIceControlling(out var t) && t == tieBreaker);
        Assert.True(m.TryGetXorMappedAddress(out var a) && a.Equals(address));
        Assert.Equal(useCandidate, m.HasUseCandidate);
        Assert.True(m.CheckMessageIntegrity(key));
        Assert.True(m.CheckFingerprint());
    }

    [Property(MaxTest = 300)]
    public void RtpPacketsRoundTrip(byte payloadType, ushort sequence, uint timestamp, uint ssrc, bool marker, uint[] csrcs, byte[] extensionIds,
        byte[] payload, bool twoByte)
    {
        payloadType &= 0x7F;
        csrcs = (csrcs ?? []).Take(15).ToArray();
        payload ??= [];
        // Extensions: distinct ids 1..14, values 1..16 bytes (what both forms can carry).
        var ids = (extensionIds ?? []).Select(b => 1 + b % 14).Distinct().Take(8).ToArray();
        var values = ids.Select(id => Enumerable.Range(0, 1 + id % 16).Select(i => (byte)(id * 31 + i)).ToArray()).ToArray();
        var ext = new byte[512];
        var extLength = 0;
        if (ids.Length > 0)
        {
            var ew = new RtpHeaderExtensionWriter(ext, twoByte);
            for (var i = 0; i < ids.Length; i++) ew.Add(ids[i], values[i]);
            extLength = ew.Finish();
        }
        var buffer = new byte[payload.Length + 1024];
        var n = RtpPacketWriter.Write(new RtpHeader(payloadType, sequence, timestamp, ssrc, marker), csrcs, ext.AsSpan(0, extLength), payload, buffer);
        Assert.True(RtpPacket.TryRead(buffer.AsSpan(0, n), out var rtp));
        Assert.Equal(payloadType, rtp.PayloadType);
        Assert.Equal(sequence, rtp.SequenceNumber);
        Assert.Equal(timestamp, rtp.Timestamp);
        Assert.Equal(ssrc, rtp.Ssrc);
        Assert.Equal(marker, rtp.Marker);
        Assert.Equal(csrcs.Length, rtp.CsrcCount);
        for (var i = 0; i < csrcs.Length; i++) Assert.Equal(csrcs[i], rtp.GetCsrc(i));
        Assert.True(rtp.Payload.SequenceEqual(payload));
        for (var i = 0; i < ids.Length; i++) Assert.True(rtp.TryGetExtension(ids[i], out var v) && v.SequenceEqual(values[i]), $"extension {ids[i]}");
    }

    [Property(MaxTest = 200)]
    public void SenderReportsRoundTrip(uint ssrc, ulong ntp, uint rtpTimestamp, uint packets, uint octets, uint[] blockSeeds)
    {
        var blocks = (blockSeeds ?? []).Take(31).Select(s => new ReportBlock(s, (byte)(s >> 3), (int)(s & 0x7FFFFF) - 0x400000, s * 7, s >> 5,
            s * 3, s ^ 0x5555)).ToArray();
        var info = new SenderInfo(ntp, rtpTimestamp, packets, octets);
        var buffer = new byte[2048];
        var n = RtcpReport.WriteSenderReport(buffer, ssrc, info, blocks);
        var read = 0;
        foreach (var packet in RtcpCompound.Enumerate(buffer.AsSpan(0, n)))
        {
            read++;
            Assert.True(RtcpReport.TryRead(packet, out var report));
            Assert.True(report.IsSenderReport);
            Assert.Equal(ssrc, report.Ssrc);
            Assert.Equal(info, report.SenderInfo);
            Assert.Equal(blocks.Length, report.BlockCount);
            for (var i = 0; i < blocks.Length; i++) Assert.Equal(blocks[i], report.GetBlock(i));
        }
        Assert.Equal(1, read);
    }

    [Property(MaxTest = 200)]
    public void NacksRoundTrip(uint sender, uint media, ushort[] lost)
    {
        lost = (lost ?? []).Distinct().Take(200).ToArray();
        if (lost.Length == 0) return; // WriteNack refuses an empty list (a NACK says at least one)
        var buffer = new byte[4096];
        var n = RtcpFeedback.WriteNack(buffer, sender, media, lost);
        var seen = new HashSet<ushort>();
        foreach (var packet in RtcpCompound.Enumerate(buffer.AsSpan(0, n)))
        {
            Assert.True(RtcpFeedback.TryRead(packet, out var fb));
            Assert.True(fb.IsNack);
            Assert.Equal(sender, fb.SenderSsrc);
            Assert.Equal(media, fb.MediaSsrc);
            var got = new ushort[1024];
            var count = fb.GetNackedSequences(got);
            foreach (var s in got.AsSpan(0, count)) seen.Add(s);
        }
        Assert.True(seen.SetEquals(lost), $"{seen.Count} sequences read, {lost.Length} written");
    }

    [Property(MaxTest = 200)]
    public void TransportCcFeedbackRoundTripsSequencesAndReception(ushort first, bool[] received, byte feedbackCount)
    {
        received = (received ?? []).Take(500).ToArray();
        if (received.Length == 0 || !received.Contains(true)) return; // a report needs one received packet
        var statuses = received.Select((r, i) => new TransportCcPacketStatus((ushort)(first + i), r, r ? 1_000_000 + i * 1000L : 0)).ToArray();
        var buffer = new byte[8192];
        var n = TransportCcFeedback.Write(buffer, 1, 2, feedbackCount, statuses);
        foreach (var packet in RtcpCompound.Enumerate(buffer.AsSpan(0, n)))
        {
            Assert.True(RtcpFeedback.TryRead(packet, out var fb));
            Assert.True(fb.IsTransportCc);
            var read = new TransportCcPacketStatus[1024];
            Assert.True(TransportCcFeedback.TryRead(fb.Fci, read, out var count, out var fbCount));
            Assert.Equal(feedbackCount, fbCount);
            // Trailing lost packets need not be reported; every reported one matches.
            Assert.InRange(count, statuses.Count(s => s.Received), statuses.Length);
            for (var i = 0; i < count; i++)
            {
                Assert.Equal(statuses[i].Sequence, read[i].Sequence);
                Assert.Equal(statuses[i].Received, read[i].Received);
            }
            for (var i = 1; i < count; i++)
                if (read[i].Received && read[i - 1].Received)
                    Assert.InRange(read[i].ArrivalMicroseconds - read[i - 1].ArrivalMicroseconds, 1000 - 250, 1000 + 250);
        }
    }

    [Property(MaxTest = 300)]
    public void SctpDataChunksRoundTrip(byte flags, uint tsn, ushort stream, ushort ssn, uint ppid, byte[] payload)
    {
        payload = payload is { Length: > 0 } ? payload : [0];
        flags &= 0x0F;
        var buffer = new byte[payload.Length + 64];
        var n = DataChunk.Write(buffer, flags, tsn, stream, ssn, ppid, payload);
        ReadOnlySpan<byte> chunks = buffer.AsSpan(0, ChunkHeader.Padded(n));
        Assert.True(ChunkHeader.TryReadNext(ref chunks, out var chunk));
        Assert.Equal(ChunkType.Data, chunk.Type);
        Assert.True(DataChunk.TryRead(chunk, out var data));
        Assert.Equal(flags, data.Flags);
        Assert.Equal(tsn, data.Tsn);
        Assert.Equal(stream, data.StreamId);
        Assert.Equal(ssn, data.Ssn);
        Assert.Equal(ppid, data.Ppid);
        Assert.True(data.Payload.SequenceEqual(payload));
        Assert.True(chunks.IsEmpty);
    }

    [Property(MaxTest = 300)]
    public void SctpInitChunksRoundTrip(uint tag, uint window, ushort outbound, ushort inbound, uint tsn, bool zeroChecksum, byte[] cookie)
    {
        // RFC 9260 section 3.3.2: the tag and both stream counts are never zero (the reader refuses them).
        tag = tag == 0 ? 1 : tag;
        outbound = Math.Max((ushort)1, outbound);
        inbound = Math.Max((ushort)1, inbound);
        cookie ??= [];
        var buffer = new byte[cookie.Length + 256];
        var n = InitChunk.Write(buffer, ChunkType.InitAck, tag, window, outbound, inbound, tsn, zeroChecksum, cookie);
        ReadOnlySpan<byte> chunks = buffer.AsSpan(0, n);
        Assert.True(ChunkHeader.TryReadNext(ref chunks, out var chunk));
        Assert.True(InitChunk.TryRead(chunk.Value, out var init));
        Assert.Equal(tag, init.InitiateTag);
        Assert.Equal(window, init.AdvertisedWindow);
        Assert.Equal(outbound, init.OutboundStreams);
        Assert.Equal(inbound, init.InboundStreams);
        Assert.Equal(tsn, init.InitialTsn);
        Assert.Equal(zeroChecksum, init.ZeroChecksum);
        Assert.True(init.Cookie.SequenceEqual(cookie));
    }

    [Property(MaxTest = 200)]
    public void SrtpAndSrtcpProtectThenUnprotectIsTheIdentity(byte profileIndex, ushort sequence, uint timestamp, uint ssrc, byte[] payload)
    {
        payload ??= [];
        SrtpProfile[] profiles = [SrtpProfile.AesCm128HmacSha1_80, SrtpProfile.AesCm128HmacSha1_32, SrtpProfile.AeadAes128Gcm, SrtpProfile.AeadAes256Gcm];
        var profile = profiles[profileIndex % 4];
        using var sender = RtpTargets.Context(profile);
        using var receiver = RtpTargets.Context(profile);
        var buffer = new byte[payload.Length + 128];
        var n = RtpPacketWriter.Write(new RtpHeader(96, sequence, timestamp, ssrc), payload, buffer);
        var plain = buffer[..n];
        Assert.Equal(SrtpResult.Ok, sender.ProtectRtp(buffer, n, out var protectedLength));
        Assert.Equal(SrtpResult.Ok, receiver.UnprotectRtp(buffer.AsSpan(0, protectedLength), out var plainLength));
        Assert.Equal(plain, buffer[..plainLength]);

        var rtcp = new byte[256];
        var r = RtcpFeedback.WritePli(rtcp, ssrc, ssrc ^ 1);
        var rtcpPlain = rtcp[..r];
        Assert.Equal(SrtpResult.Ok, sender.ProtectRtcp(rtcp, r, out protectedLength));
        Assert.Equal(SrtpResult.Ok, receiver.UnprotectRtcp(rtcp.AsSpan(0, protectedLength), out plainLength));
        Assert.Equal(rtcpPlain, rtcp[..plainLength]);
        BinaryPrimitives.WriteUInt32BigEndian(rtcp.AsSpan(4), 0); // a changed byte of a packet already seen: refused
        Assert.NotEqual(SrtpResult.Ok, receiver.UnprotectRtcp(rtcp.AsSpan(0, protectedLength), out _));
    }
}
