using System.Buffers.Binary;
using System.Security.Cryptography;
using Transport.Crypto;
using Transport.Rtp.Srtp;

namespace Transport.Rtp.Tests.Srtp;

/// <summary>
/// The two HMAC-SHA1 engines of the AES-CM profiles: libcrypto's SHA-1 called directly (the default here) and the
/// platform IncrementalHash fallback. Both must produce the same bytes, libsrtp's bytes, and reject forgeries.
/// </summary>
public class SrtpSha1PathTests
{
    private static readonly byte[] Key = Enumerable.Range(0, 16).Select(i => (byte)(i * 11)).ToArray();
    private static readonly byte[] Salt = Enumerable.Range(0, 14).Select(i => (byte)(i * 5 + 1)).ToArray();

    [Fact]
    public void TheDefaultContextUsesLibCryptoSha1AndTheForcedFallbackDoesNot()
    {
        Assert.True(LibCryptoSha1.IsAvailable, "libcrypto's SHA-1 should be available on this Linux machine");
        using var fast = SrtpContext.Create(SrtpProfile.AesCm128HmacSha1_80, Key, Salt);
        using var fallback = SrtpContext.Create(SrtpProfile.AesCm128HmacSha1_80, Key, Salt, null, allowIntrinsics: false);
        using var gcm = SrtpContext.Create(SrtpProfile.AeadAes128Gcm, Key, Salt[..12]);
        Assert.True(fast.UsesNativeSha1);
        Assert.False(fallback.UsesNativeSha1);
        Assert.False(gcm.UsesNativeSha1);
    }

    [Theory]
    [InlineData(SrtpProfile.AesCm128HmacSha1_80)]
    [InlineData(SrtpProfile.AesCm128HmacSha1_32)]
    public void NativeAndFallbackPathsProduceIdenticalPacketsAndAcceptEachOther(SrtpProfile profile)
    {
        var random = new Random((int)profile + 7);
        using var nativeSender = SrtpContext.Create(profile, Key, Salt);
        using var fallbackSender = SrtpContext.Create(profile, Key, Salt, null, allowIntrinsics: false);
        using var nativeReceiver = SrtpContext.Create(profile, Key, Salt);
        using var fallbackReceiver = SrtpContext.Create(profile, Key, Salt, null, allowIntrinsics: false);
        byte[] a = new byte[1600], b = new byte[1600];
        for (int i = 0; i < 200; i++)
        {
            // RTP: 12-byte header and a payload of 0..1300 bytes (message lengths cross every SHA-1 block offset).
            int length = 12 + random.Next(0, 1301);
            random.NextBytes(a.AsSpan(0, length));
            a[0] = 0x80;
            BinaryPrimitives.WriteUInt16BigEndian(a.AsSpan(2), (ushort)(65_500 + i)); // crosses a ROC rollover
            BinaryPrimitives.WriteUInt32BigEndian(a.AsSpan(8), 0xABCD0001);
            a.AsSpan(0, length).CopyTo(b);
            byte[] plain = a[..length];
            Assert.Equal(SrtpResult.Ok, nativeSender.ProtectRtp(a, length, out int na));
            Assert.Equal(SrtpResult.Ok, fallbackSender.ProtectRtp(b, length, out int nb));
            Assert.Equal(b[..nb], a[..na]);

            byte[] forged = a[..na];
            forged[random.Next(na)] ^= (byte)(1 << random.Next(8));
            Assert.NotEqual(SrtpResult.Ok, nativeReceiver.UnprotectRtp(forged, out _));
            Assert.NotEqual(SrtpResult.Ok, fallbackReceiver.UnprotectRtp((byte[])forged.Clone(), out _));

            Assert.Equal(SrtpResult.Ok, nativeReceiver.UnprotectRtp(b.AsSpan(0, nb), out int pb));
            Assert.Equal(SrtpResult.Ok, fallbackReceiver.UnprotectRtp(a.AsSpan(0, na), out int pa));
            Assert.Equal(plain, a[..pa]);
            Assert.Equal(plain, b[..pb]);

            // RTCP (RR + random words): the SRTCP tag covers header, ciphertext and E||index.
            int words = 1 + random.Next(0, 60);
            a[0] = 0x80;
            a[1] = 201;
            BinaryPrimitives.WriteUInt16BigEndian(a.AsSpan(2), (ushort)words);
            BinaryPrimitives.WriteUInt32BigEndian(a.AsSpan(4), 0xABCD0002);
            random.NextBytes(a.AsSpan(8, 4 * (words - 1)));
            int rtcpLength = 4 + 4 * words;
            a.AsSpan(0, rtcpLength).CopyTo(b);
            Assert.Equal(SrtpResult.Ok, nativeSender.ProtectRtcp(a, rtcpLength, out na));
            Assert.Equal(SrtpResult.Ok, fallbackSender.ProtectRtcp(b, rtcpLength, out nb));
            Assert.Equal(b[..nb], a[..na]);
            Assert.Equal(SrtpResult.Ok, fallbackReceiver.UnprotectRtcp(a.AsSpan(0, na), out _));
            Assert.Equal(SrtpResult.Ok, nativeReceiver.UnprotectRtcp(b.AsSpan(0, nb), out _));
        }

        Assert.Equal(1u, nativeSender.GetRolloverCounter(0xABCD0001));
    }

    [Fact]
    public void TheFallbackPathIsByteIdenticalToLibSrtp()
    {
        const SrtpProfile profile = SrtpProfile.AesCm128HmacSha1_80;
        var random = new Random(3711);
        using var ours = SrtpContext.Create(profile, Key, Salt, null, allowIntrinsics: false);
        using var lib = new LibSrtp(profile, Key, Salt, outbound: true);
        byte[] mine = new byte[1600], theirs = new byte[1600];
        for (int i = 0; i < 50; i++)
        {
            int length = 12 + random.Next(0, 1201);
            random.NextBytes(mine.AsSpan(0, length));
            mine[0] = 0x80;
            BinaryPrimitives.WriteUInt16BigEndian(mine.AsSpan(2), (ushort)(1000 + i));
            BinaryPrimitives.WriteUInt32BigEndian(mine.AsSpan(8), 77);
            mine.AsSpan(0, length).CopyTo(theirs);
            Assert.Equal(SrtpResult.Ok, ours.ProtectRtp(mine, length, out int n));
            Assert.Equal(n, lib.ProtectRtp(theirs, length));
            Assert.Equal(theirs[..n], mine[..n]);
        }
    }

    [Fact]
    public void SharedHmacSha1EqualsThePlatformHmacOnSrtpSizedMessagesOnBothEngines()
    {
        var random = new Random(1);
        byte[] key = new byte[20];
        random.NextBytes(key);
        var native = new HmacSha1(key);
        var managed = new HmacSha1(key, allowNative: false);
        Assert.True(native.UsesNative);
        byte[] mac = new byte[20];
        for (int length = 0; length <= 1500; length += 1 + random.Next(0, 40))
        {
            byte[] data = new byte[length];
            random.NextBytes(data);
            byte[] expected = HMACSHA1.HashData(key, data);
            native.Compute(data, default, mac);
            Assert.Equal(expected, mac);
            managed.Compute(data, default, mac);
            Assert.Equal(expected, mac);
        }
    }
}
