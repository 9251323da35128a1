using Transport.Rtp.Rtcp;

namespace Transport.Rtp.Tests.Rtcp;

public class RtcpCompoundTests
{
    [Fact]
    public void CompoundOfSrSdesByeAppRoundTrips()
    {
        byte[] buffer = new byte[600];
        int offset = 0;
        var info = new SenderInfo(0x83AA7E80_00000000UL | 0x1234_5678, 90_000, 10, 1_000);
        ReportBlock[] blocks =
        [
            new ReportBlock(0xAAAA, 25, -3, 70_000, 12, 0x1111_2222, 65_536),
            new ReportBlock(0xBBBB, 0, 0x7F_FFFF, 5, 0, 0, 0),
        ];
        offset += RtcpReport.WriteSenderReport(buffer.AsSpan(offset), 0x1000, info, blocks);
        offset += RtcpSdes.WriteCname(buffer.AsSpan(offset), 0x1000, "user@example.com");
        offset += RtcpApp.Write(buffer.AsSpan(offset), 3, 0x1000, "TEST"u8, [1, 2, 3, 4]);
        offset += RtcpBye.Write(buffer.AsSpan(offset), [0x1000u, 0x2000u], "shutdown");

        Assert.True(RtcpCompound.IsValid(buffer.AsSpan(0, offset), out int count));
        Assert.Equal(4, count);
        int seen = 0;
        foreach (RtcpPacket packet in RtcpCompound.Enumerate(buffer.AsSpan(0, offset)))
        {
            switch (seen++)
            {
                case 0:
                    Assert.True(RtcpReport.TryRead(packet, out RtcpReport sr));
                    Assert.True(sr.IsSenderReport);
                    Assert.Equal(0x1000u, sr.Ssrc);
                    Assert.Equal(info, sr.SenderInfo);
                    Assert.Equal(2, sr.BlockCount);
                    Assert.Equal(blocks[0], sr.GetBlock(0));
                    Assert.Equal(blocks[1], sr.GetBlock(1));
                    break;
                case 1:
                    Assert.True(RtcpSdes.TryGetCname(packet, 0x1000, out ReadOnlySpan<byte> cname));
                    Assert.Equal("user@example.com"u8.ToArray(), cname.ToArray());
                    Assert.False(RtcpSdes.TryGetCname(packet, 0x9999, out _));
                    break;
                case 2:
                    Assert.True(RtcpApp.TryRead(packet, out RtcpApp app));
                    Assert.Equal(3, app.Subtype);
                    Assert.Equal("TEST"u8.ToArray(), app.Name.ToArray());
                    Assert.Equal(new byte[] { 1, 2, 3, 4 }, app.Data.ToArray());
                    break;
                case 3:
                    Assert.True(RtcpBye.TryRead(packet, out RtcpBye bye));
                    Assert.Equal(2, bye.Count);
                    Assert.Equal(0x2000u, bye.GetSsrc(1));
                    Assert.Equal("shutdown"u8.ToArray(), bye.Reason.ToArray());
                    break;
            }
        }
    }

    [Fact]
    public void ReducedSizeRtcpWithOnlyFeedbackIsAccepted()
    {
        byte[] buffer = new byte[64];
        int length = RtcpFeedback.WritePli(buffer, 1, 2);
        Assert.True(RtcpCompound.IsValid(buffer.AsSpan(0, length), out int count));
        Assert.Equal(1, count);
        foreach (RtcpPacket packet in RtcpCompound.Enumerate(buffer.AsSpan(0, length)))
        {
            Assert.True(RtcpFeedback.TryRead(packet, out RtcpFeedback fb));
            Assert.True(fb.IsPli);
            Assert.Equal(1u, fb.SenderSsrc);
            Assert.Equal(2u, fb.MediaSsrc);
        }
    }

    [Theory]
    [InlineData("81c90001")] // length says 8 bytes, only 4 present
    [InlineData("41c90000")] // version 1
    [InlineData("81c9000100000001 81")] // trailing garbage
    [InlineData("a1c9000100000000")] // padding count 0
    [InlineData("")]
    public void MalformedCompoundsAreRejected(string hex)
    {
        Assert.False(RtcpCompound.IsValid(Convert.FromHexString(hex.Replace(" ", "")), out _));
    }

    [Fact]
    public void ReceiverReportRoundTripsAndTruncatedBlocksAreRejected()
    {
        byte[] buffer = new byte[100];
        int length = RtcpReport.WriteReceiverReport(buffer, 7, [new ReportBlock(8, 1, 2, 3, 4, 5, 6)]);
        Assert.Equal(32, length);
        var enumerator = RtcpCompound.Enumerate(buffer.AsSpan(0, length));
        Assert.True(enumerator.MoveNext());
        Assert.True(RtcpReport.TryRead(enumerator.Current, out RtcpReport rr));
        Assert.False(rr.IsSenderReport);
        Assert.Equal(new ReportBlock(8, 1, 2, 3, 4, 5, 6), rr.GetBlock(0));

        buffer[0] = 0x82; // claims two blocks in a packet holding one
        enumerator = RtcpCompound.Enumerate(buffer.AsSpan(0, length));
        Assert.True(enumerator.MoveNext());
        Assert.False(RtcpReport.TryRead(enumerator.Current, out _));
    }
}

public class RtcpSdesTests
{
    [Fact]
    public void CnameIsFoundInTheRightChunkAfterOtherItems()
    {
        // Two chunks: SSRC 1 with NAME "ab" then CNAME "x"; SSRC 2 with CNAME "peer".
        byte[] packet = Convert.FromHexString(
            "82ca0006" +
            "00000001" + "02026162" + "01017800" +
            "00000002" + "01047065" + "65720000");
        var enumerator = RtcpCompound.Enumerate(packet);
        Assert.True(enumerator.MoveNext());
        Assert.True(RtcpSdes.TryGetCname(enumerator.Current, 1, out ReadOnlySpan<byte> first));
        Assert.Equal("x"u8.ToArray(), first.ToArray());
        Assert.True(RtcpSdes.TryGetCname(enumerator.Current, 2, out ReadOnlySpan<byte> second));
        Assert.Equal("peer"u8.ToArray(), second.ToArray());
        Assert.False(RtcpSdes.TryGetCname(enumerator.Current, 3, out _));
    }
}
