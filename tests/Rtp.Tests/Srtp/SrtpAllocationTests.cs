using System.Buffers.Binary;
using Transport.Rtp.Srtp;

namespace Transport.Rtp.Tests.Srtp;

/// <summary>The steady-state protect and unprotect paths allocate nothing per packet.</summary>
public class SrtpAllocationTests
{
    [Theory]
    [InlineData(SrtpProfile.AesCm128HmacSha1_80)]
    [InlineData(SrtpProfile.AesCm128HmacSha1_32)]
    [InlineData(SrtpProfile.AeadAes128Gcm)]
    [InlineData(SrtpProfile.AeadAes256Gcm)]
    public void ProtectAndUnprotectOfRtpAndRtcpAllocateNothingPerPacket(SrtpProfile profile)
    {
        byte[] material = new byte[SrtpProfileInfo.KeyingMaterialLength(profile)];
        new Random(4).NextBytes(material);
        using var client = SrtpSession.Create(profile, material, true);
        using var server = SrtpSession.Create(profile, material, false);
        byte[] rtp = new byte[1300];
        rtp[0] = 0x80;
        BinaryPrimitives.WriteUInt32BigEndian(rtp.AsSpan(8), 77);
        byte[] rtcp = new byte[200];
        rtcp[0] = 0x80;
        rtcp[1] = 201;
        rtcp[3] = 1;
        BinaryPrimitives.WriteUInt32BigEndian(rtcp.AsSpan(4), 77);

        // Counts failures instead of asserting inside the loop: xUnit's Assert allocates.
        int RoundTrip(ushort seq)
        {
            int failures = 0;
            BinaryPrimitives.WriteUInt16BigEndian(rtp.AsSpan(2), seq);
            failures += client.ProtectRtp(rtp, 1212, out int n) == SrtpResult.Ok ? 0 : 1;
            failures += server.UnprotectRtp(rtp.AsSpan(0, n), out _) == SrtpResult.Ok ? 0 : 1;
            failures += client.ProtectRtcp(rtcp, 8, out n) == SrtpResult.Ok ? 0 : 1;
            failures += server.UnprotectRtcp(rtcp.AsSpan(0, n), out _) == SrtpResult.Ok ? 0 : 1;
            return failures;
        }

        // Warm up: first sight creates the per-SSRC state, and tiered JIT settles.
        int failures = 0;
        for (ushort seq = 0; seq < 5000; seq++)
        {
            failures += RoundTrip(seq);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (ushort seq = 5000; seq < 7000; seq++)
        {
            failures += RoundTrip(seq);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, failures);
        Assert.Equal(7000, server.Inbound.Counters.RtpUnprotected);

        // Any per-packet allocation would be at least 24 bytes x 2000; allow a few runtime one-offs (JIT).
        Assert.True(allocated < 2000, $"{allocated} bytes allocated over 2000 round trips");
    }
}
