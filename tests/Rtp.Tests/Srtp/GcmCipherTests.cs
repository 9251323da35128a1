using System.Security.Cryptography;
using Transport.Crypto;
using Transport.Rtp.Srtp;

namespace Transport.Rtp.Tests.Srtp;

/// <summary>Our GHASH/CTR decryption agrees with .NET's AesGcm and rejects any altered bit without throwing.</summary>
public class GcmCipherTests
{
    [Theory]
    [InlineData(16)]
    [InlineData(32)]
    public void EncryptsLikeAesGcmDecryptsWhatItEncryptsAndRejectsTampering(int keyLength)
    {
        Assert.True(GcmCipher.IsSupported, "this machine has AES-NI and PCLMULQDQ; the test checks the fast path");
        var random = new Random(keyLength);
        byte[] key = new byte[keyLength];
        random.NextBytes(key);
        using var reference = new AesGcm(key, 16);
        using var ours = new GcmCipher(key);
        for (int length = 0; length < 300; length += 13)
        {
            foreach (int aadLength in new[] { 0, 8, 12, 16, 17, 40 })
            {
                byte[] nonce = new byte[12], plain = new byte[length], aad = new byte[aadLength], tag = new byte[16];
                random.NextBytes(nonce);
                random.NextBytes(plain);
                random.NextBytes(aad);
                byte[] cipher = new byte[length];
                reference.Encrypt(nonce, plain, cipher, tag, aad);

                byte[] ourCipher = (byte[])plain.Clone();
                byte[] ourTag = new byte[16];
                ours.Encrypt(nonce, ourCipher, ourTag, aad);
                Assert.Equal(cipher, ourCipher);
                Assert.Equal(tag, ourTag);

                byte[] work = (byte[])cipher.Clone();
                Assert.True(ours.TryDecrypt(nonce, work, tag, aad));
                Assert.Equal(plain, work);

                byte[] badTag = (byte[])tag.Clone();
                badTag[random.Next(16)] ^= (byte)(1 << random.Next(8));
                work = (byte[])cipher.Clone();
                Assert.False(ours.TryDecrypt(nonce, work, badTag, aad));
                Assert.Equal(cipher, work); // untouched when rejected

                if (length > 0)
                {
                    work = (byte[])cipher.Clone();
                    work[random.Next(length)] ^= 0x40;
                    Assert.False(ours.TryDecrypt(nonce, work, tag, aad));
                }

                if (aadLength > 0)
                {
                    byte[] badAad = (byte[])aad.Clone();
                    badAad[random.Next(aadLength)] ^= 0x01;
                    Assert.False(ours.TryDecrypt(nonce, (byte[])cipher.Clone(), tag, badAad));
                }
            }
        }
    }
}

public class SrtpGcmPathTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void BothGcmVerificationPathsAcceptGenuineAndRejectForgedPackets(bool intrinsics)
    {
        byte[] key = Enumerable.Range(0, 16).Select(i => (byte)i).ToArray();
        byte[] salt = Enumerable.Range(0, 12).Select(i => (byte)(i * 3)).ToArray();
        using var sender = SrtpContext.Create(SrtpProfile.AeadAes128Gcm, key, salt, null, allowIntrinsics: !intrinsics);
        using var receiver = SrtpContext.Create(SrtpProfile.AeadAes128Gcm, key, salt, null, allowIntrinsics: intrinsics);
        Assert.Equal(intrinsics, receiver.UsesGcmIntrinsics);
        for (ushort seq = 0; seq < 50; seq++)
        {
            byte[] packet = new byte[300];
            packet[0] = 0x80;
            packet[3] = (byte)seq;
            packet[20] = (byte)seq;
            Assert.Equal(SrtpResult.Ok, sender.ProtectRtp(packet, 200, out int n));
            byte[] forged = packet[..n];
            forged[30] ^= 0x10;
            Assert.Equal(SrtpResult.AuthenticationFailed, receiver.UnprotectRtp(forged, out _));
            byte[] wire = packet[..n];
            Assert.Equal(SrtpResult.Ok, receiver.UnprotectRtp(wire, out int plain));
            Assert.Equal(200, plain);
            Assert.Equal((byte)seq, wire[20]);

            byte[] rtcp = new byte[100];
            rtcp[0] = 0x80;
            rtcp[1] = 200;
            rtcp[3] = 6;
            rtcp[10] = (byte)seq;
            Assert.Equal(SrtpResult.Ok, sender.ProtectRtcp(rtcp, 28, out n));
            byte[] forgedRtcp = rtcp[..n];
            forgedRtcp[12] ^= 1;
            Assert.Equal(SrtpResult.AuthenticationFailed, receiver.UnprotectRtcp(forgedRtcp, out _));
            Assert.Equal(SrtpResult.Ok, receiver.UnprotectRtcp(rtcp.AsSpan(0, n), out plain));
            Assert.Equal((byte)seq, rtcp[10]);
        }

        Assert.Equal(100, receiver.Counters.AuthenticationFailures);
    }
}

/// <summary>The separate-buffer forms of <see cref="GcmCipher"/> (used by DTLS records) against AesGcm.</summary>
public class GcmCipherSeparateBufferTests
{
    [Theory]
    [InlineData(16)]
    [InlineData(32)]
    public void EncryptIntoAnotherBufferEqualsAesGcmAndDecryptWritesOnlyWhenAuthentic(int keyLength)
    {
        var random = new Random(keyLength * 3);
        byte[] key = new byte[keyLength];
        random.NextBytes(key);
        using var reference = new AesGcm(key, 16);
        using var ours = new GcmCipher(key);
        foreach (int length in new[] { 0, 1, 15, 16, 17, 63, 64, 65, 200, 1200, 1201, 1500 })
        {
            byte[] nonce = new byte[12], plain = new byte[length], aad = new byte[13];
            random.NextBytes(nonce);
            random.NextBytes(plain);
            random.NextBytes(aad);
            byte[] cipher = new byte[length], tag = new byte[16];
            reference.Encrypt(nonce, plain, cipher, tag, aad);

            byte[] ourCipher = new byte[length + 5], ourTag = new byte[16];
            ours.Encrypt(nonce, plain, ourCipher, ourTag, aad);
            Assert.Equal(cipher, ourCipher[..length]);
            Assert.Equal(new byte[5], ourCipher[length..]); // nothing written past the ciphertext
            Assert.Equal(tag, ourTag);

            byte[] output = new byte[length];
            Assert.True(ours.TryDecrypt(nonce, cipher, tag, output, aad));
            Assert.Equal(plain, output);

            byte[] badTag = (byte[])tag.Clone();
            badTag[random.Next(16)] ^= 0x80;
            byte[] untouched = Enumerable.Repeat((byte)0x5A, length).ToArray();
            Assert.False(ours.TryDecrypt(nonce, cipher, badTag, untouched, aad));
            Assert.All(untouched, b => Assert.Equal(0x5A, b));
            Assert.False(ours.TryDecrypt(nonce, cipher, tag.AsSpan(0, 0), untouched, aad)); // empty tag never verifies
        }
    }
}

/// <summary>The separate-buffer form of the counter mode on all three kernels (AES-128 AES-NI, generic AES-NI, portable).</summary>
public class AesCounterModeSeparateBufferTests
{
    [Theory]
    [InlineData(16, true)]
    [InlineData(32, true)]
    [InlineData(16, false)]
    [InlineData(32, false)]
    public void TransformIntoAnotherBufferEqualsTheInPlaceTransformAndLeavesTheSourceAlone(int keyLength, bool intrinsics)
    {
        var random = new Random(keyLength + (intrinsics ? 1 : 0));
        byte[] key = new byte[keyLength], iv = new byte[16];
        random.NextBytes(key);
        random.NextBytes(iv);
        using var cipher = new AesCounterMode(key, intrinsics);
        Assert.Equal(intrinsics, cipher.UsesIntrinsics);
        foreach (int length in new[] { 1, 15, 16, 17, 63, 64, 65, 130, 1200, 1201 })
        {
            byte[] source = new byte[length];
            random.NextBytes(source);
            byte[] original = (byte[])source.Clone();
            byte[] inPlace = (byte[])source.Clone();
            cipher.Transform(iv, inPlace);
            byte[] destination = new byte[length + 3];
            cipher.Transform(iv, source, destination);
            Assert.Equal(inPlace, destination[..length]);
            Assert.Equal(new byte[3], destination[length..]);
            Assert.Equal(original, source);
        }

        Assert.Throws<ArgumentException>(() => cipher.Transform(iv, new byte[10], new byte[9]));
    }
}
