using Transport.Rtp.Payloads;

namespace Transport.Rtp.Tests.Payloads;

public class PayloadTests
{
    private static List<byte[]> PacketizeVp8(byte[] frame, int max, ushort pictureId)
    {
        var list = new List<byte[]>();
        var packetizer = new Vp8Packetizer(frame, max, pictureId);
        byte[] buffer = new byte[max];
        bool lastMarker = false;
        while (packetizer.TryWriteNext(buffer, out int n, out bool marker))
        {
            Assert.False(lastMarker);
            list.Add(buffer[..n]);
            lastMarker = marker;
        }

        Assert.True(lastMarker);
        return list;
    }

    private static byte[] Rtp(ushort seq, uint ts, bool marker, byte[] payload)
    {
        byte[] buffer = new byte[12 + payload.Length];
        RtpPacketWriter.Write(new RtpHeader(96, seq, ts, 1, marker), payload, buffer);
        return buffer;
    }

    private static void PushAll(RtpFrameAssembler assembler, IReadOnlyList<byte[]> payloads, ushort firstSeq, uint ts, IEnumerable<int>? order = null)
    {
        foreach (int i in order ?? Enumerable.Range(0, payloads.Count))
        {
            assembler.Push(Rtp((ushort)(firstSeq + i), ts, i == payloads.Count - 1, payloads[i]));
        }
    }

    [Fact]
    public void Vp8FrameSurvivesPacketizationReorderingAndReassembly()
    {
        byte[] frame = new byte[3000];
        new Random(3).NextBytes(frame);
        frame[0] &= 0xFE; // P bit 0: key frame
        List<byte[]> payloads = PacketizeVp8(frame, 1000, 0x1234);
        Assert.Equal(4, payloads.Count); // 996 bytes per packet
        Assert.Equal(0x1234 & 0x7FFF, Vp8Depacketizer.PictureId(payloads[1]));
        var depacketizer = new Vp8Depacketizer();
        Assert.True(depacketizer.IsFrameStart(payloads[0]));
        Assert.False(depacketizer.IsFrameStart(payloads[1]));

        var assembler = new RtpFrameAssembler(depacketizer);
        PushAll(assembler, payloads, 65534, 9000, [2, 0, 3, 1]);
        byte[] output = new byte[4000];
        Assert.True(assembler.TryPollFrame(output, out RtpFrameInfo info));
        Assert.True(info.Complete);
        Assert.True(info.KeyFrame);
        Assert.Equal(4, info.PacketCount);
        Assert.Equal(frame, output[..info.Length]);
    }

    [Fact]
    public void FrameStillMissingAPacketWhenTooManyFramesArePendingIsReportedIncomplete()
    {
        byte[] frame = new byte[2500];
        List<byte[]> first = PacketizeVp8(frame, 1000, 1);
        List<byte[]> second = PacketizeVp8(frame, 1000, 2);
        var assembler = new RtpFrameAssembler(new Vp8Depacketizer(), maxPendingFrames: 1);
        PushAll(assembler, first, 100, 3000, [0, 2]); // packet 101 lost
        byte[] output = new byte[4000];
        Assert.False(assembler.TryPollFrame(output, out _));
        PushAll(assembler, second, 103, 6000);
        Assert.True(assembler.TryPollFrame(output, out RtpFrameInfo lost));
        Assert.False(lost.Complete);
        Assert.Equal(3000u, lost.Timestamp);
        Assert.True(assembler.TryPollFrame(output, out RtpFrameInfo ok));
        Assert.True(ok.Complete);
        Assert.Equal(6000u, ok.Timestamp);
        Assert.Equal(1, assembler.IncompleteFrames);

        // The retransmission of the lost packet arrives too late and is dropped.
        assembler.Push(Rtp(101, 3000, false, first[1]));
        Assert.Equal(1, assembler.DroppedPackets);
    }

    [Fact]
    public void LostLastPacketRecoveredAfterTheNextFrameStartedCompletesBothFrames()
    {
        byte[] frame = new byte[2500];
        List<byte[]> first = PacketizeVp8(frame, 1000, 1);
        List<byte[]> second = PacketizeVp8(frame, 1000, 2);
        var assembler = new RtpFrameAssembler(new Vp8Depacketizer());
        PushAll(assembler, first, 100, 3000, [0, 1]); // the marker packet 102 is lost
        PushAll(assembler, second, 103, 6000, [1, 2]); // and so is the start of the next frame
        byte[] output = new byte[4000];
        Assert.False(assembler.TryPollFrame(output, out _));
        Assert.Equal(2, assembler.PendingFrames);
        PushAll(assembler, first, 100, 3000, [2]); // retransmission of 102 completes frame 1
        PushAll(assembler, second, 103, 6000, [0]); // retransmission of 103 completes frame 2
        Assert.True(assembler.TryPollFrame(output, out RtpFrameInfo a));
        Assert.True(assembler.TryPollFrame(output, out RtpFrameInfo b));
        Assert.True(a.Complete && b.Complete);
        Assert.Equal((3000u, 6000u), (a.Timestamp, b.Timestamp));
        Assert.Equal(0, assembler.PendingFrames);
    }

    [Fact]
    public void RetransmittedPacketCompletesAPendingFrame()
    {
        byte[] frame = new byte[2500];
        List<byte[]> payloads = PacketizeVp8(frame, 1000, 1);
        var assembler = new RtpFrameAssembler(new Vp8Depacketizer());
        PushAll(assembler, payloads, 10, 3000, [0, 2]);
        byte[] output = new byte[4000];
        Assert.False(assembler.TryPollFrame(output, out _));
        PushAll(assembler, payloads, 10, 3000, [1]);
        Assert.True(assembler.TryPollFrame(output, out RtpFrameInfo info));
        Assert.True(info.Complete);
        Assert.Equal(2500, info.Length);
    }

    [Fact]
    public void H264AccessUnitUsesStapAForSmallNalsAndFuAForLargeOnesAndRoundTrips()
    {
        byte[] sps = [0x67, 0x42, 0x00, 0x1F, 0xAA];
        byte[] pps = [0x68, 0xCE, 0x3C, 0x80];
        byte[] idr = new byte[5000];
        new Random(5).NextBytes(idr);
        idr[0] = 0x65;
        for (int i = 1; i < idr.Length - 2; i++)
        {
            if (idr[i] == 0 && idr[i + 1] == 0)
            {
                idr[i + 1] = 1 | 0x10; // keep the random body free of start-code lookalikes
            }
        }

        byte[] annexB = [0, 0, 0, 1, .. sps, 0, 0, 1, .. pps, 0, 0, 0, 1, .. idr];
        var packetizer = new H264Packetizer(annexB, 1200);
        var payloads = new List<byte[]>();
        byte[] buffer = new byte[1200];
        bool lastMarker = false;
        while (packetizer.TryWriteNext(buffer, out int n, out bool marker))
        {
            Assert.False(lastMarker);
            payloads.Add(buffer[..n]);
            lastMarker = marker;
        }

        Assert.True(lastMarker);
        Assert.Equal(24, payloads[0][0] & 0x1F); // STAP-A with SPS and PPS
        Assert.All(payloads.Skip(1), p => Assert.Equal(28, p[0] & 0x1F));
        Assert.Equal(0x80 | 5, payloads[1][1]); // FU-A start of an IDR
        Assert.Equal(0x40 | 5, payloads[^1][1]); // FU-A end

        var assembler = new RtpFrameAssembler(new H264Depacketizer());
        PushAll(assembler, payloads, 500, 90_000);
        byte[] output = new byte[8000];
        Assert.True(assembler.TryPollFrame(output, out RtpFrameInfo info));
        Assert.True(info.Complete);
        Assert.True(info.KeyFrame);
        byte[] expected = [0, 0, 0, 1, .. sps, 0, 0, 0, 1, .. pps, 0, 0, 0, 1, .. idr];
        Assert.Equal(expected, output[..info.Length]);
    }

    [Fact]
    public void H264SmallSingleNalGoesAsSingleNalUnitPacket()
    {
        byte[] annexB = [0, 0, 1, 0x41, 1, 2, 3];
        var packetizer = new H264Packetizer(annexB, 1200);
        byte[] buffer = new byte[1200];
        Assert.True(packetizer.TryWriteNext(buffer, out int n, out bool marker));
        Assert.True(marker);
        Assert.Equal(new byte[] { 0x41, 1, 2, 3 }, buffer[..n]);
        Assert.False(packetizer.TryWriteNext(buffer, out _, out _));
        var depacketizer = new H264Depacketizer();
        byte[] output = new byte[20];
        Assert.Equal(8, depacketizer.Depacketize(buffer[..n], output));
        Assert.False(depacketizer.IsKeyFrame(buffer[..n]));
        Assert.Equal(-1, depacketizer.Depacketize([0x78, 0, 9, 1], output)); // STAP-A size beyond the payload
    }

    [Fact]
    public void OpusPacketsAreFramesOfTheirOwn()
    {
        var assembler = new RtpFrameAssembler(new OpusDepacketizer());
        byte[] opus = [0xFC, 1, 2, 3];
        byte[] payload = new byte[10];
        int n = OpusPacketizer.Write(opus, payload);
        assembler.Push(Rtp(1, 960, false, payload[..n]));
        assembler.Push(Rtp(3, 2880, false, payload[..n])); // 2 lost: no frame to report, audio frames are independent
        byte[] output = new byte[10];
        Assert.True(assembler.TryPollFrame(output, out RtpFrameInfo a));
        Assert.True(assembler.TryPollFrame(output, out RtpFrameInfo b));
        Assert.Equal((960u, 2880u), (a.Timestamp, b.Timestamp));
        Assert.Equal(opus, output[..b.Length]);
    }
}

public class Vp8DescriptorTests
{
    [Theory]
    [InlineData("10 9d", 1)]                 // S=1, no X: 1-byte descriptor
    [InlineData("90 80 05 9d", 3)]           // X, I with 7-bit picture id
    [InlineData("90 80 85 01 9d", 4)]        // X, I with 15-bit picture id
    [InlineData("90 c0 85 01 07 9d", 5)]     // X, I(15), L (TL0PICIDX)
    [InlineData("90 f0 85 01 07 40 9d", 6)]  // X, I(15), L, T/K byte
    [InlineData("90 10 40 9d", 3)]           // X, K only
    public void DescriptorLengthCoversEveryOptionalField(string hex, int expected)
    {
        byte[] payload = Convert.FromHexString(hex.Replace(" ", ""));
        Assert.Equal(expected, Vp8Depacketizer.DescriptorLength(payload));
        var depacketizer = new Vp8Depacketizer();
        Assert.True(depacketizer.IsFrameStart(payload));
        Assert.False(depacketizer.IsKeyFrame(payload)); // 0x9d has the P bit set: inter frame
        Span<byte> output = stackalloc byte[16];
        Assert.Equal(payload.Length - expected, depacketizer.Depacketize(payload, output));
    }

    [Theory]
    [InlineData("90")]
    [InlineData("90 80")]
    [InlineData("90 80 85")]
    [InlineData("90 f0 85 01 07 40")] // descriptor with no payload after it
    public void TruncatedDescriptorsAreRejected(string hex)
    {
        byte[] payload = Convert.FromHexString(hex.Replace(" ", ""));
        Assert.Equal(-1, Vp8Depacketizer.DescriptorLength(payload));
        Assert.Equal(-1, new Vp8Depacketizer().Depacketize(payload, new byte[16]));
    }

    [Fact]
    public void ManySmallNalUnitsAreSplitAcrossSeveralStapAPackets()
    {
        var annexB = new List<byte>();
        for (int i = 0; i < 30; i++)
        {
            annexB.AddRange(new byte[] { 0, 0, 0, 1, 0x41 });
            annexB.AddRange(Enumerable.Repeat((byte)(i + 1), 60));
        }

        var packetizer = new H264Packetizer(annexB.ToArray(), 300);
        byte[] buffer = new byte[300];
        var depacketizer = new H264Depacketizer();
        var rebuilt = new List<byte>();
        int packets = 0;
        while (packetizer.TryWriteNext(buffer, out int n, out _))
        {
            Assert.True(n <= 300);
            Assert.Equal(24, buffer[0] & 0x1F);
            byte[] output = new byte[1000];
            int m = depacketizer.Depacketize(buffer.AsSpan(0, n), output);
            rebuilt.AddRange(output[..m]);
            packets++;
        }

        Assert.Equal(8, packets); // 4 NAL units of 61 bytes (+2 size) per 300-byte STAP-A
        Assert.Equal(annexB, rebuilt);
    }
}
