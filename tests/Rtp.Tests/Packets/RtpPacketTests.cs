using System.Buffers.Binary;

namespace Transport.Rtp.Tests.Packets;

public class RtpPacketTests
{
    [Fact]
    public void WrittenPacketWithCsrcsExtensionAndPaddingReadsBack()
    {
        Span<byte> ext = stackalloc byte[64];
        var extensions = new RtpHeaderExtensionWriter(ext);
        extensions.Add(1, [0xAA]);
        extensions.Add(3, [1, 2, 3]);
        int extLength = extensions.Finish();
        Assert.Equal(12, extLength); // 4 header + 2 + 4 = 10, padded to 12

        byte[] buffer = new byte[200];
        var header = new RtpHeader(111, 65535, 0xFFFF_FFF0, 0xDEADBEEF, Marker: true);
        int length = RtpPacketWriter.Write(header, [1u, 2u], ext[..extLength], "hello"u8, buffer, paddingLength: 3);
        Assert.Equal(12 + 8 + 12 + 5 + 3, length);

        Assert.True(RtpPacket.TryRead(buffer.AsSpan(0, length), out RtpPacket rtp));
        Assert.True(rtp.Marker);
        Assert.Equal(111, rtp.PayloadType);
        Assert.Equal(65535, rtp.SequenceNumber);
        Assert.Equal(0xFFFF_FFF0u, rtp.Timestamp);
        Assert.Equal(0xDEADBEEFu, rtp.Ssrc);
        Assert.Equal(2, rtp.CsrcCount);
        Assert.Equal(2u, rtp.GetCsrc(1));
        Assert.Equal(3, rtp.PaddingLength);
        Assert.Equal("hello"u8.ToArray(), rtp.Payload.ToArray());
        Assert.Equal(0xBEDE, rtp.ExtensionProfile);
        Assert.True(rtp.TryGetExtension(3, out ReadOnlySpan<byte> value));
        Assert.Equal(new byte[] { 1, 2, 3 }, value.ToArray());
        Assert.True(rtp.TryGetExtension(1, out value));
        Assert.Equal(new byte[] { 0xAA }, value.ToArray());
        Assert.False(rtp.TryGetExtension(2, out _));
    }

    [Fact]
    public void TwoByteExtensionsCarryLongAndEmptyElements()
    {
        Span<byte> ext = stackalloc byte[300];
        var extensions = new RtpHeaderExtensionWriter(ext, twoByte: true);
        extensions.Add(20, new byte[40]);
        extensions.Add(5, []);
        int extLength = extensions.Finish();
        byte[] buffer = new byte[400];
        int length = RtpPacketWriter.Write(new RtpHeader(96, 1, 2, 3), [], ext[..extLength], [9], buffer);
        Assert.True(RtpPacket.TryRead(buffer.AsSpan(0, length), out RtpPacket rtp));
        Assert.Equal(0x1000, rtp.ExtensionProfile);
        int count = 0;
        foreach (RtpHeaderExtension e in rtp.GetExtensions())
        {
            count++;
            Assert.Equal(e.Id == 20 ? 40 : 0, e.Value.Length);
        }

        Assert.Equal(2, count);
        Assert.Equal(new byte[] { 9 }, rtp.Payload.ToArray());
    }

    [Fact]
    public void OneByteParsingSkipsPaddingAndStopsAtIdFifteen()
    {
        // 0xBEDE, length 2 words: [pad 0][id1 len1: 0x10 0x55][id15 stop][junk...]
        byte[] packet = new byte[12 + 4 + 8];
        packet[0] = 0x90;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(12), 0xBEDE);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(14), 2);
        packet[16] = 0;
        packet[17] = 0x10;
        packet[18] = 0x55;
        packet[19] = 0xF0;
        packet[20] = 0x20;
        Assert.True(RtpPacket.TryRead(packet, out RtpPacket rtp));
        Assert.True(rtp.TryGetExtension(1, out ReadOnlySpan<byte> v));
        Assert.Equal(0x55, v[0]);
        Assert.False(rtp.TryGetExtension(2, out _));
        Assert.True(rtp.Payload.IsEmpty);
    }

    [Theory]
    [InlineData("")]
    [InlineData("80")]
    [InlineData("40000000000000000000000000")] // version 1
    [InlineData("8100000000000000000000000000")] // CC=1 but no CSRC
    [InlineData("90000000000000000000000000000001")] // X with length 1 but no words
    [InlineData("a00000000000000000000000000010")] // padding count larger than the packet
    [InlineData("a00000000000000000000000000000")] // padding count 0
    public void MalformedPacketsAreRejected(string hex)
    {
        Assert.False(RtpPacket.TryRead(Convert.FromHexString(hex), out _));
    }

    [Fact]
    public void SequenceUnwrapperHandlesWrapAndReordering()
    {
        var unwrapper = new SequenceUnwrapper();
        Assert.Equal(65534, unwrapper.Unwrap(65534));
        Assert.Equal(65536 + 1, unwrapper.Unwrap(1));
        Assert.Equal(65535, unwrapper.Unwrap(65535)); // late packet from the previous cycle
        Assert.Equal(65536 + 2, unwrapper.Unwrap(2));
        Assert.Equal(65536 + 30000, unwrapper.Unwrap(30000));
        Assert.Equal(65536 + 60000, unwrapper.Unwrap(60000));
        Assert.Equal(2 * 65536 + 100, unwrapper.Unwrap(100));
    }

    [Fact]
    public void TimestampUnwrapperHandlesWrap()
    {
        var unwrapper = new TimestampUnwrapper();
        Assert.Equal(0xFFFF_FF00L, unwrapper.Unwrap(0xFFFF_FF00));
        Assert.Equal(0x1_0000_0100L, unwrapper.Unwrap(0x100));
        Assert.Equal(0xFFFF_FFF0L, unwrapper.Unwrap(0xFFFF_FFF0));
    }
}

public class RtpDemuxTests
{
    [Theory]
    [InlineData(new byte[] { 0x80, 96 }, true, false)]
    [InlineData(new byte[] { 0x80, 0x80 | 96 }, true, false)] // marker set, PT 96
    [InlineData(new byte[] { 0x80, 200 }, true, true)] // SR
    [InlineData(new byte[] { 0x81, 205 }, true, true)] // RTPFB
    [InlineData(new byte[] { 0x00, 0x01 }, false, false)] // STUN
    [InlineData(new byte[] { 22, 0xFE }, false, false)] // DTLS
    public void RtpAndRtcpAreToldApartPerRfc5761And7983(byte[] datagram, bool media, bool rtcp)
    {
        Assert.Equal(media, RtpDemux.IsRtpOrRtcp(datagram));
        Assert.Equal(rtcp, RtpDemux.IsRtcp(datagram));
    }
}
