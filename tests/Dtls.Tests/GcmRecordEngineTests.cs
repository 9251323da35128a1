using Transport.Dtls.Records;

namespace Transport.Dtls.Tests;

/// <summary>
/// The two engines of the AES-GCM record suites: our AES-NI + PCLMULQDQ GCM (shared with SRTP, the default when the
/// CPU has the instructions) and the platform AesGcm (fallback). Records must be identical byte for byte, each must
/// open the other's, and forgeries must fail on both without an exception.
/// </summary>
public sealed class GcmRecordEngineTests
{
    [Fact]
    public void TheDefaultEngineIsTheIntrinsicsKernelOnThisMachineAndTheFallbackCanBeForced()
    {
        Assert.True(System.Runtime.Intrinsics.X86.Aes.IsSupported && System.Runtime.Intrinsics.X86.Pclmulqdq.IsSupported,
            "this machine has AES-NI and PCLMULQDQ; the test checks that they are used");
        using var fast = new AesGcmRecordCipher(new byte[16], [1, 2, 3, 4]);
        using var fallback = new AesGcmRecordCipher(new byte[16], [1, 2, 3, 4], allowIntrinsics: false);
        Assert.True(fast.UsesIntrinsics);
        Assert.False(fallback.UsesIntrinsics);
        Assert.True(((AesGcmRecordCipher)RecordCipher.Create(DtlsCipherSuite.EcdheEcdsaWithAes128GcmSha256, new byte[16], new byte[4])).UsesIntrinsics);
        Assert.False(((AesGcmRecordCipher)RecordCipher.Create(DtlsCipherSuite.EcdheEcdsaWithAes256GcmSha384, new byte[32], new byte[4],
            allowIntrinsics: false)).UsesIntrinsics);
    }

    [Theory]
    [InlineData(16)]
    [InlineData(32)]
    public void BothEnginesSealIdenticalRecordsAndOpenEachOthers(int keyLength)
    {
        var random = new Random(keyLength);
        var key = new byte[keyLength];
        random.NextBytes(key);
        var salt = new byte[4];
        random.NextBytes(salt);
        using var fast = new AesGcmRecordCipher(key, salt);
        using var platform = new AesGcmRecordCipher(key, salt, allowIntrinsics: false);
        var a = new byte[1600];
        var b = new byte[1600];
        var plain = new byte[1600];
        foreach (var length in new[] { 0, 1, 12, 15, 16, 17, 48, 63, 64, 65, 100, 255, 1024, 1199, 1200, 1201, 1500 })
        {
            var payload = new byte[length];
            random.NextBytes(payload);
            var type = length % 2 == 0 ? DtlsContentType.ApplicationData : DtlsContentType.Handshake;
            var epoch = (ushort)random.Next(1, 5);
            var sequence = (ulong)random.NextInt64() & DtlsRecordHeader.MaxSequence;
            var na = fast.Seal(type, epoch, sequence, payload, a);
            var nb = platform.Seal(type, epoch, sequence, payload, b);
            Assert.Equal(b.AsSpan(0, nb).ToArray(), a.AsSpan(0, na).ToArray());

            Assert.True(DtlsRecordHeader.TryRead(a.AsSpan(0, na), out var record, out _));
            Assert.True(platform.Open(record, plain, out var m1));
            Assert.Equal(payload, plain.AsSpan(0, m1).ToArray());
            Array.Clear(plain);
            Assert.True(fast.Open(record, plain, out var m2));
            Assert.Equal(payload, plain.AsSpan(0, m2).ToArray());
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AnyFlippedBitFailsToOpenWithoutAnExceptionAndReleasesNoPlaintext(bool intrinsics)
    {
        var random = new Random(intrinsics ? 1 : 2);
        var key = new byte[16];
        random.NextBytes(key);
        using var cipher = new AesGcmRecordCipher(key, [5, 6, 7, 8], intrinsics);
        var payload = new byte[300];
        random.NextBytes(payload);
        var wire = new byte[400];
        var n = cipher.Seal(DtlsContentType.ApplicationData, 1, 42, payload, wire);
        var plain = new byte[400];
        for (var trial = 0; trial < 200; trial++)
        {
            var bad = wire.AsSpan(0, n).ToArray();
            // Header bytes 3..12 (epoch, sequence) and everything after the length field are authenticated.
            var position = random.Next(3, n);
            if (position is 11 or 12) continue; // the length field changes the framing, not the MAC input alone
            bad[position] ^= (byte)(1 << random.Next(8));
            if (!DtlsRecordHeader.TryRead(bad, out var record, out _)) continue;
            Array.Fill(plain, (byte)0xEE);
            Assert.False(cipher.Open(record, plain, out var written));
            Assert.Equal(0, written);
            if (intrinsics) Assert.All(plain, x => Assert.Equal(0xEE, x)); // our kernel writes nothing when the tag fails
        }
    }
}
