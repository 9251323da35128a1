using Transport.Crypto;
using Transport.Rtp.Srtp;

namespace Transport.Rtp.Tests.Srtp;

/// <summary>RFC 3711 Appendix B and RFC 7714 sections 16 and 17 test vectors.</summary>
public class SrtpVectorTests
{
    private static byte[] Hex(string text) => Convert.FromHexString(string.Concat(text.Where(c => !char.IsWhiteSpace(c))));

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AesCounterModeKeystreamMatchesRfc3711AppendixB2(bool intrinsics)
    {
        using var cipher = new AesCounterMode(Hex("2B7E151628AED2A6ABF7158809CF4F3C"), intrinsics);
        Assert.Equal(intrinsics && System.Runtime.Intrinsics.X86.Aes.IsSupported, cipher.UsesIntrinsics);
        byte[] iv = Hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000");
        byte[] keystream = new byte[65282 * 16];
        cipher.Keystream(iv, keystream);

        Assert.Equal(Hex("E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0"), keystream[..48]);
        Assert.Equal(Hex("EC8CDF7398607CB0F2D21675EA9EA1E4"), keystream.AsSpan(0xFEFF * 16, 16).ToArray());
        Assert.Equal(Hex("362B7C3C6773516318A077D7FC5073AE"), keystream.AsSpan(0xFF00 * 16, 16).ToArray());
        Assert.Equal(Hex("6A2CC3787889374FBEB4C81B17BA6C44"), keystream.AsSpan(0xFF01 * 16, 16).ToArray());
    }

    [Fact]
    public void IntrinsicAndPortableCounterModeAgreeOnOddLengthsAndAes256()
    {
        var random = new Random(7);
        foreach (int keyLength in new[] { 16, 32 })
        {
            byte[] key = new byte[keyLength];
            random.NextBytes(key);
            using var fast = new AesCounterMode(key, true);
            using var portable = new AesCounterMode(key, false);
            for (int length = 0; length < 200; length += 7)
            {
                byte[] iv = new byte[16];
                random.NextBytes(iv);
                byte[] a = new byte[length];
                random.NextBytes(a);
                byte[] b = (byte[])a.Clone();
                fast.Transform(iv, a);
                portable.Transform(iv, b);
                Assert.Equal(b, a);
            }
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void KeyDerivationMatchesRfc3711AppendixB3(bool intrinsics)
    {
        byte[] masterKey = Hex("E1F97A0D3E018BE0D64FA32C06DE4139");
        byte[] masterSalt = Hex("0EC675AD498AFEEBB6960B3AABE6");
        using var prf = new AesCounterMode(masterKey, intrinsics);

        byte[] cipherKey = new byte[16];
        SrtpKeyDerivation.Derive(prf, masterSalt, SrtpKeyDerivation.LabelRtpEncryption, cipherKey);
        Assert.Equal(Hex("C61E7A93744F39EE10734AFE3FF7A087"), cipherKey);

        byte[] cipherSalt = new byte[14];
        SrtpKeyDerivation.Derive(prf, masterSalt, SrtpKeyDerivation.LabelRtpSalt, cipherSalt);
        Assert.Equal(Hex("30CBBC08863D8C85D49DB34A9AE1"), cipherSalt);

        byte[] authKey = new byte[94];
        SrtpKeyDerivation.Derive(prf, masterSalt, SrtpKeyDerivation.LabelRtpAuthentication, authKey);
        Assert.Equal(
            Hex("CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE E049646C43D9327AD175578EF7227098" +
                "6371C10C9A369AC2F94A8C5FBCDDDC25 6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2"),
            authKey);
    }

    // RFC 7714 sections 16 and 17 use these session keys directly (no key derivation).
    private const string GcmKey128 = "000102030405060708090a0b0c0d0e0f";
    private const string GcmKey256 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    private const string GcmSalt = "517569642070726f2071756f";
    private const string RfcRtp = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976 69736120 696e2070 61727465 73207472 6573";
    private const string RfcRtcp = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef";

    private static SrtpContext GcmContext(SrtpProfile profile, string key, SrtpOptions? options = null) =>
        SrtpContext.CreateFromSessionKeys(
            profile,
            new SrtpContext.SessionKeys(Hex(key), Hex(GcmSalt), []),
            new SrtpContext.SessionKeys(Hex(key), Hex(GcmSalt), []),
            options);

    [Theory]
    [InlineData(SrtpProfile.AeadAes128Gcm, GcmKey128,
        "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5 0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce")]
    [InlineData(SrtpProfile.AeadAes256Gcm, GcmKey256,
        "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa b1801238 9a58e2f3 b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13")]
    public void GcmRtpMatchesRfc7714Section16(SrtpProfile profile, string key, string expected)
    {
        using var sender = GcmContext(profile, key);
        byte[] buffer = new byte[256];
        byte[] plain = Hex(RfcRtp);
        plain.CopyTo(buffer, 0);
        Assert.Equal(SrtpResult.Ok, sender.ProtectRtp(buffer, plain.Length, out int written));
        Assert.Equal(Hex(expected), buffer[..written]);

        using var receiver = GcmContext(profile, key);
        byte[] wire = Hex(expected);
        Assert.Equal(SrtpResult.Ok, receiver.UnprotectRtp(wire, out int plainLength));
        Assert.Equal(plain, wire[..plainLength]);

        byte[] again = Hex(expected);
        Assert.Equal(SrtpResult.Replayed, receiver.UnprotectRtp(again, out _));
        Assert.Equal(1, receiver.Counters.Replays);
    }

    [Theory]
    [InlineData(SrtpProfile.AeadAes128Gcm, GcmKey128, true,
        "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 " +
        "96cf4d2f c5abf872 45d9eade 800005d4")]
    [InlineData(SrtpProfile.AeadAes256Gcm, GcmKey256, true,
        "81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d bffe0a50 a2eaa5c1 110555be 8415f658 c61de047 6f1b6fad 1d1eb30c " +
        "4446839f 57ff6f6c b26ac3be 800005d4")]
    [InlineData(SrtpProfile.AeadAes128Gcm, GcmKey128, false,
        "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef 841dd968 " +
        "3dd78ec9 2ae58790 125f62b3 000005d4")]
    [InlineData(SrtpProfile.AeadAes256Gcm, GcmKey256, false,
        "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef 91db4afb " +
        "feee5a97 8fab4393 ed2615fe 000005d4")]
    public void GcmRtcpMatchesRfc7714Section17(SrtpProfile profile, string key, bool encrypt, string expected)
    {
        using var sender = GcmContext(profile, key, new SrtpOptions { EncryptRtcp = encrypt });
        sender.SetNextSrtcpIndex(0x4d617273, 0x5d4);
        byte[] buffer = new byte[256];
        byte[] plain = Hex(RfcRtcp);
        plain.CopyTo(buffer, 0);
        Assert.Equal(SrtpResult.Ok, sender.ProtectRtcp(buffer, plain.Length, out int written));
        Assert.Equal(Hex(expected), buffer[..written]);

        using var receiver = GcmContext(profile, key);
        byte[] wire = Hex(expected);
        Assert.Equal(SrtpResult.Ok, receiver.UnprotectRtcp(wire, out int plainLength));
        Assert.Equal(plain, wire[..plainLength]);
        Assert.Equal(SrtpResult.Replayed, receiver.UnprotectRtcp(Hex(expected), out _));

        byte[] tampered = Hex(expected);
        tampered[20] ^= 1;
        using var fresh = GcmContext(profile, key);
        Assert.Equal(SrtpResult.AuthenticationFailed, fresh.UnprotectRtcp(tampered, out _));
        Assert.Equal(1, fresh.Counters.AuthenticationFailures);
        Assert.Equal(0, fresh.StreamCount);
    }
}
