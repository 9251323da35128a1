using Transport.Rtp.Rtcp;

namespace Transport.Rtp.Tests.Rtcp;

public class RtcpFeedbackTests
{
    private static RtcpFeedback Single(byte[] buffer, int length)
    {
        var enumerator = RtcpCompound.Enumerate(buffer.AsSpan(0, length));
        Assert.True(enumerator.MoveNext());
        Assert.True(RtcpFeedback.TryRead(enumerator.Current, out RtcpFeedback fb));
        return fb;
    }

    [Fact]
    public void NackPacksRunsIntoPidAndBitmaskAcrossTheWrap()
    {
        ushort[] lost = [65530, 65531, 65535, 3, 10, 100];
        byte[] buffer = new byte[100];
        int length = RtcpFeedback.WriteNack(buffer, 1, 2, lost);
        // 65530 covers 65531..65546 (65535, 3 and 10 wrap into it); 100 needs its own entry.
        Assert.Equal(12 + 2 * 4, length);
        RtcpFeedback fb = Single(buffer, length);
        Assert.True(fb.IsNack);
        Span<ushort> decoded = stackalloc ushort[32];
        int count = fb.GetNackedSequences(decoded);
        Assert.Equal(lost, decoded[..count].ToArray());
    }

    [Fact]
    public void NackFromRfc4585ExampleBitmaskDecodes()
    {
        // PID 0x0100, BLP 0b0000_0000_0000_0101: lost 256, 257, 259.
        byte[] packet = Convert.FromHexString("81cd0003" + "00000001" + "00000002" + "01000005");
        RtcpFeedback fb = Single(packet, packet.Length);
        Span<ushort> decoded = stackalloc ushort[17];
        Assert.Equal(3, fb.GetNackedSequences(decoded));
        Assert.Equal(new ushort[] { 256, 257, 259 }, decoded[..3].ToArray());
    }

    [Fact]
    public void FirAndRembRoundTrip()
    {
        byte[] buffer = new byte[100];
        int length = RtcpFeedback.WriteFir(buffer, 1, 0xABCD, 9);
        RtcpFeedback fir = Single(buffer, length);
        Assert.True(fir.IsFir);
        Assert.True(fir.TryGetFirEntry(0, out uint ssrc, out byte seq));
        Assert.Equal(0xABCDu, ssrc);
        Assert.Equal(9, seq);
        Assert.False(fir.TryGetFirEntry(1, out _, out _));

        length = RtcpFeedback.WriteRemb(buffer, 1, 2_500_000, [5u, 6u]);
        RtcpFeedback remb = Single(buffer, length);
        Assert.True(remb.IsRemb);
        Assert.True(remb.TryGetRemb(out ulong bitrate, out int count));
        Assert.Equal(2, count);
        Assert.Equal(6u, remb.GetRembSsrc(1));
        // 18-bit mantissa: 2,500,000 = 0x2625A0 needs exponent 4, losing the low 4 bits (none set here).
        Assert.Equal(2_500_000UL, bitrate);
    }

    [Fact]
    public void TransportCcFeedbackRoundTripsLossesSmallLargeAndNegativeDeltas()
    {
        var packets = new List<TransportCcPacketStatus>();
        long t = 1_000_000_000; // 1000 s
        for (int i = 0; i < 40; i++)
        {
            ushort seq = (ushort)(65520 + i);
            bool received = i % 9 != 4 && !(i >= 20 && i < 30);
            if (received)
            {
                t += i == 12 ? 100_000 : i == 15 ? -2_000 : 1_250; // large, negative, small deltas
            }

            packets.Add(new TransportCcPacketStatus(seq, received, received ? t : 0));
        }

        byte[] buffer = new byte[512];
        int length = TransportCcFeedback.Write(buffer, 11, 22, 7, packets.ToArray());
        RtcpFeedback fb = Single(buffer, length);
        Assert.True(fb.IsTransportCc);
        var decoded = new TransportCcPacketStatus[64];
        Assert.True(TransportCcFeedback.TryRead(fb.Fci, decoded, out int count, out byte fbCount));
        Assert.Equal(40, count);
        Assert.Equal(7, fbCount);
        long offset = decoded.First(d => d.Received).ArrivalMicroseconds - packets.First(p => p.Received).ArrivalMicroseconds;
        for (int i = 0; i < count; i++)
        {
            Assert.Equal(packets[i].Sequence, decoded[i].Sequence);
            Assert.Equal(packets[i].Received, decoded[i].Received);
            if (packets[i].Received)
            {
                // Times survive up to the 64 ms reference granularity (a constant offset) and 250 us steps.
                Assert.Equal(packets[i].ArrivalMicroseconds + offset, decoded[i].ArrivalMicroseconds);
            }
        }
    }

    [Fact]
    public void TransportCcFeedbackFromTheDraftLayoutDecodes()
    {
        // base 100, count 3, reference 1 (64 ms), fb count 0; run-length chunk: symbol 1 x 3; deltas 4, 8, 0.
        byte[] fci = Convert.FromHexString("00640003" + "00000100" + "2003" + "040800" + "000000");
        var decoded = new TransportCcPacketStatus[3];
        Assert.True(TransportCcFeedback.TryRead(fci, decoded, out int count, out _));
        Assert.Equal(3, count);
        Assert.Equal(new TransportCcPacketStatus(100, true, 64_000 + 1_000), decoded[0]);
        Assert.Equal(new TransportCcPacketStatus(101, true, 64_000 + 3_000), decoded[1]);
        Assert.Equal(new TransportCcPacketStatus(102, true, 64_000 + 3_000), decoded[2]);

        // Truncated deltas are rejected.
        Assert.False(TransportCcFeedback.TryRead(fci.AsSpan(0, 11), decoded, out _, out _));
    }
}
