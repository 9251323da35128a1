using Transport.Rtp.Streams;

namespace Transport.Rtp.Tests.Streams;

public class ReceiveStatisticsTests
{
    [Fact]
    public void LossFractionAndExtendedSequenceFollowRfc3550AppendixA3()
    {
        var stats = new ReceiveStatistics(7, 90_000);
        TimeSpan t = TimeSpan.Zero;
        // 65530..65545 (16 packets across the wrap) with 4 lost.
        for (int i = 0; i < 16; i++)
        {
            if (i is 3 or 4 or 9 or 12)
            {
                continue;
            }

            stats.OnPacket((ushort)(65530 + i), (uint)(i * 3000), t + TimeSpan.FromMilliseconds(i * 33.3333));
        }

        Assert.Equal((uint)(65536 + 9), stats.ExtendedHighestSequence);
        Assert.Equal(16, stats.Expected);
        Assert.Equal(4, stats.CumulativeLost);
        var block = stats.CreateReportBlock(TimeSpan.FromSeconds(1));
        Assert.Equal(4 * 256 / 16, block.FractionLost);
        Assert.Equal(4, block.CumulativeLost);
        Assert.Equal(0u, block.LastSenderReport);

        // Next interval: 10 more, none lost.
        for (int i = 16; i < 26; i++)
        {
            stats.OnPacket((ushort)(65530 + i), (uint)(i * 3000), TimeSpan.FromMilliseconds(i * 33.3333));
        }

        block = stats.CreateReportBlock(TimeSpan.FromSeconds(2));
        Assert.Equal(0, block.FractionLost);
        Assert.Equal(4, block.CumulativeLost);
    }

    [Fact]
    public void JitterIsZeroForPerfectPacingAndGrowsWithArrivalVariation()
    {
        var steady = new ReceiveStatistics(1, 8000);
        var jittery = new ReceiveStatistics(2, 8000);
        for (int i = 0; i < 200; i++)
        {
            steady.OnPacket((ushort)i, (uint)(i * 160), TimeSpan.FromMilliseconds(i * 20));
            // Alternate +-5 ms around the ideal arrival: |D| = 10 ms = 80 timestamp units each time.
            jittery.OnPacket((ushort)i, (uint)(i * 160), TimeSpan.FromMilliseconds(i * 20 + (i % 2 == 0 ? 5 : -5)));
        }

        Assert.Equal(0u, steady.Jitter);
        // J converges to E|D| = 80 units (RFC 3550 A.8 with a 1/16 gain).
        Assert.InRange(jittery.Jitter, 75u, 80u);
    }

    [Fact]
    public void DlsrCountsTimeSinceTheLastSenderReport()
    {
        var stats = new ReceiveStatistics(3, 90_000);
        stats.OnPacket(1, 0, TimeSpan.FromSeconds(10));
        stats.OnSenderReport(new Transport.Rtp.Rtcp.SenderInfo(0x0000_1234_5678_0000UL, 0, 1, 1), TimeSpan.FromSeconds(10));
        var block = stats.CreateReportBlock(TimeSpan.FromSeconds(10.5));
        Assert.Equal(0x1234_5678u, block.LastSenderReport);
        Assert.Equal(32768u, block.DelaySinceLastSenderReport); // 0.5 s in 1/65536 s
    }
}
