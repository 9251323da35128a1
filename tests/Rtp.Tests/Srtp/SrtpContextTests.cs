using System.Buffers.Binary;
using Transport.Rtp.Srtp;

namespace Transport.Rtp.Tests.Srtp;

public class SrtpContextTests
{
    private static readonly byte[] Material = Enumerable.Range(1, 60).Select(i => (byte)i).ToArray();

    private static byte[] Rtp(ushort sequence, uint ssrc = 5, int payload = 100, int spare = 64)
    {
        byte[] packet = new byte[12 + payload + spare];
        packet[0] = 0x80;
        packet[1] = 96;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), sequence);
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(8), ssrc);
        for (int i = 0; i < payload; i++)
        {
            packet[12 + i] = (byte)(sequence + i);
        }

        return packet;
    }

    private static byte[] Protect(SrtpSession session, ushort sequence, uint ssrc = 5)
    {
        byte[] packet = Rtp(sequence, ssrc);
        Assert.Equal(SrtpResult.Ok, session.ProtectRtp(packet, 112, out int length));
        return packet[..length];
    }

    [Fact]
    public void ClientAndServerSessionsFromTheSameKeyingMaterialTalkInBothDirections()
    {
        using var client = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, Material, isClient: true);
        using var server = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, Material, isClient: false);
        byte[] toServer = Protect(client, 1);
        Assert.Equal(SrtpResult.Ok, server.UnprotectRtp(toServer, out int n1));
        Assert.Equal(Rtp(1)[..112], toServer[..n1]);
        byte[] toClient = Protect(server, 1);
        Assert.Equal(SrtpResult.Ok, client.UnprotectRtp(toClient, out _));

        // A client does not accept its own packets: the directions use different keys.
        using var otherClient = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, Material, isClient: true);
        Assert.Equal(SrtpResult.AuthenticationFailed, otherClient.UnprotectRtp(Protect(client, 2), out _));
    }

    [Fact]
    public void ReceiverFollowsRolloverWithReorderingAroundTheWrap()
    {
        using var client = SrtpSession.Create(SrtpProfile.AeadAes128Gcm, Enumerable.Range(0, 56).Select(i => (byte)i).ToArray(), isClient: true);
        using var server = SrtpSession.Create(SrtpProfile.AeadAes128Gcm, Enumerable.Range(0, 56).Select(i => (byte)i).ToArray(), isClient: false);
        var sent = new Dictionary<ushort, byte[]>();
        foreach (ushort seq in new ushort[] { 65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3 })
        {
            sent[seq] = Protect(client, seq);
        }

        foreach (ushort seq in new ushort[] { 65530, 65531, 65533, 0, 65532, 2, 65535, 1, 65534, 3 })
        {
            Assert.Equal(SrtpResult.Ok, server.UnprotectRtp(sent[seq].ToArray(), out _));
        }

        Assert.Equal(1u, server.Inbound.GetRolloverCounter(5));
        Assert.Equal(SrtpResult.Replayed, server.UnprotectRtp(sent[65535].ToArray(), out _));
    }

    [Theory]
    [InlineData(64)]
    [InlineData(1024)]
    public void ReplayWindowOfConfiguredSizeAcceptsLateOnesInsideAndRejectsOlder(int window)
    {
        var options = new SrtpOptions { ReplayWindowSize = window };
        using var client = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, Material, true, options);
        using var server = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, Material, false, options);
        var packets = new List<byte[]>();
        for (int i = 0; i <= window + 10; i++)
        {
            packets.Add(Protect(client, (ushort)(1000 + i)));
        }

        Assert.Equal(SrtpResult.Ok, server.UnprotectRtp(packets[window + 10].ToArray(), out _));
        Assert.Equal(SrtpResult.Ok, server.UnprotectRtp(packets[11].ToArray(), out _)); // highest - 11 = window - 1 behind
        Assert.Equal(SrtpResult.Replayed, server.UnprotectRtp(packets[11].ToArray(), out _));
        Assert.Equal(SrtpResult.TooOld, server.UnprotectRtp(packets[10].ToArray(), out _)); // exactly window behind
        Assert.Equal(2, server.Inbound.Counters.Replays);
    }

    [Fact]
    public void ConfiguredMkiIsSentAndRequired()
    {
        var withMki = new SrtpOptions { Mki = new byte[] { 0xAA, 0xBB } };
        using var client = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, Material, true, withMki);
        using var server = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, Material, false, withMki);
        using var serverWithoutMki = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, Material, false);
        using var serverOtherMki = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, Material, false, new SrtpOptions { Mki = new byte[] { 0xAA, 0xBC } });
        byte[] wire = Protect(client, 7);
        Assert.Equal(112 + 2 + 10, wire.Length);
        Assert.Equal(new byte[] { 0xAA, 0xBB }, wire[112..114]);
        Assert.Equal(SrtpResult.MkiMismatch, serverOtherMki.UnprotectRtp(wire.ToArray(), out _));
        Assert.Equal(SrtpResult.AuthenticationFailed, serverWithoutMki.UnprotectRtp(wire.ToArray(), out _));
        Assert.Equal(SrtpResult.Ok, server.UnprotectRtp(wire, out int n));
        Assert.Equal(112, n);

        byte[] rtcp = new byte[100];
        rtcp[0] = 0x80;
        rtcp[1] = 201;
        rtcp[3] = 1;
        BinaryPrimitives.WriteUInt32BigEndian(rtcp.AsSpan(4), 5);
        Assert.Equal(SrtpResult.Ok, client.ProtectRtcp(rtcp, 8, out int rtcpLength));
        Assert.Equal(8 + 4 + 2 + 10, rtcpLength);
        Assert.Equal(SrtpResult.Ok, server.UnprotectRtcp(rtcp.AsSpan(0, rtcpLength), out int plainRtcp));
        Assert.Equal(8, plainRtcp);
    }

    [Fact]
    public void StreamsAreCreatedPerSsrcOnlyForAuthenticPacketsAndBounded()
    {
        var options = new SrtpOptions { MaxStreams = 2 };
        using var client = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_32, Material, true);
        using var server = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_32, Material, false, options);
        byte[] forged = Protect(client, 1, ssrc: 9);
        forged[^1] ^= 0xFF;
        Assert.Equal(SrtpResult.AuthenticationFailed, server.UnprotectRtp(forged, out _));
        Assert.Equal(0, server.Inbound.StreamCount);

        Assert.Equal(SrtpResult.Ok, server.UnprotectRtp(Protect(client, 1, ssrc: 1), out _));
        Assert.Equal(SrtpResult.Ok, server.UnprotectRtp(Protect(client, 1, ssrc: 2), out _));
        Assert.Equal(SrtpResult.TooManyStreams, server.UnprotectRtp(Protect(client, 1, ssrc: 3), out _));
        Assert.Equal(2, server.Inbound.StreamCount);
        Assert.Equal(SrtpResult.Ok, server.UnprotectRtp(Protect(client, 2, ssrc: 2), out _));
    }

    [Fact]
    public void TruncatedAndNonRtpInputIsDroppedNotThrown()
    {
        using var server = SrtpSession.Create(SrtpProfile.AeadAes256Gcm, new byte[88], false);
        Assert.Equal(SrtpResult.Malformed, server.UnprotectRtp(new byte[5], out _));
        Assert.Equal(SrtpResult.Malformed, server.UnprotectRtp(new byte[40], out _)); // version 0
        byte[] headerOnly = Rtp(1, payload: 0, spare: 0);
        Assert.Equal(SrtpResult.Malformed, server.UnprotectRtp(headerOnly, out _));
        Assert.Equal(SrtpResult.Malformed, server.UnprotectRtcp(new byte[10], out _));
        byte[] bogusRtcp = new byte[40];
        bogusRtcp[0] = 0x80;
        Assert.Equal(SrtpResult.AuthenticationFailed, server.UnprotectRtcp(bogusRtcp, out _));
        Assert.Equal(4, server.Inbound.Counters.Malformed);
        Assert.Equal(1, server.Inbound.Counters.AuthenticationFailures);
    }

    [Fact]
    public void ProtectReportsBufferTooSmallWhenNoRoomForTheTag()
    {
        using var client = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, Material, true);
        byte[] packet = Rtp(1, spare: 0);
        Assert.Equal(SrtpResult.BufferTooSmall, client.ProtectRtp(packet, packet.Length, out _));
        Assert.Throws<ArgumentException>(() => SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, new byte[59], true));
    }
}

public class SrtcpTests
{
    private static readonly byte[] Material = Enumerable.Range(7, 60).Select(i => (byte)i).ToArray();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SrtcpWithAndWithoutEncryptionIsAcceptedAndReplaysRejected(bool encrypt)
    {
        using var client = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, Material, true, new SrtpOptions { EncryptRtcp = encrypt });
        using var server = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, Material, false);
        byte[] plain = new byte[28];
        plain[0] = 0x81;
        plain[1] = 201;
        plain[3] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(plain.AsSpan(4), 0x55);
        plain[20] = 0x42;
        var wires = new List<byte[]>();
        for (int i = 0; i < 3; i++)
        {
            byte[] buffer = new byte[100];
            plain.CopyTo(buffer, 0);
            Assert.Equal(SrtpResult.Ok, client.ProtectRtcp(buffer, plain.Length, out int n));
            Assert.Equal(plain.Length + 4 + 10, n);
            uint word = BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(plain.Length));
            Assert.Equal(encrypt, (word & 0x8000_0000) != 0);
            Assert.Equal((uint)i, word & 0x7FFF_FFFF);
            Assert.Equal(!encrypt, buffer.AsSpan(0, plain.Length).SequenceEqual(plain));
            wires.Add(buffer[..n]);
        }

        Assert.Equal(SrtpResult.Ok, server.UnprotectRtcp(wires[2].ToArray(), out _));
        byte[] first = wires[0].ToArray();
        Assert.Equal(SrtpResult.Ok, server.UnprotectRtcp(first, out int plainLength));
        Assert.Equal(plain, first[..plainLength]);
        Assert.Equal(SrtpResult.Replayed, server.UnprotectRtcp(wires[0].ToArray(), out _));
        Assert.Equal(2, server.Inbound.Counters.RtcpUnprotected);
    }
}
