using System.Security.Cryptography;
using Transport.Crypto;

namespace Transport.Rtp.Tests.Srtp;

/// <summary>
/// Every GHASH kernel of <see cref="GcmCipher"/> (VPCLMULQDQ on 512-bit and 256-bit vectors, PCLMULQDQ on 128-bit
/// vectors) on the known-answer tests of the GCM specification and against the platform <see cref="AesGcm"/> on
/// lengths around each kernel's step (16, 64, 128, 256 bytes) and on random inputs; the platform path of the callers
/// (<see cref="AeadOpen"/>) on the same random inputs. A flipped bit in the tag or the ciphertext is rejected and no
/// plaintext is written.
/// </summary>
public class GcmKernelTests
{
    // Kernels are passed by name (GcmKernel is internal; a public test method cannot take it).
    // Only the kernels this CPU has: the wide ones need VPCLMULQDQ (with AVX2 / AVX-512BW); a CPU without them runs
    // the rows of the 128-bit kernel alone (and Auto picks it, AutoPicksTheWidestKernelTheCpuHas).
    private static readonly string[] SupportedKernels = new[]
    {
        GcmCipher.IsSupported ? "Vector128" : null,
        GcmCipher.IsSupported && GcmCipher.Vector256Supported ? "Vector256" : null,
        GcmCipher.IsSupported && GcmCipher.Vector512Supported ? "Vector512" : null,
    }.OfType<string>().ToArray();

    public static TheoryData<string> Kernels => new(SupportedKernels);

    private static GcmCipher Create(byte[] key, string kernelName)
    {
        var kernel = Enum.Parse<GcmKernel>(kernelName);
        var cipher = new GcmCipher(key, kernel);
        Assert.Equal(kernel, cipher.Kernel);
        return cipher;
    }

    [Fact]
    public void AutoPicksTheWidestKernelTheCpuHas()
    {
        using var cipher = new GcmCipher(new byte[16]);
        var expected = GcmCipher.Vector512Supported ? GcmKernel.Vector512 : GcmCipher.Vector256Supported ? GcmKernel.Vector256 : GcmKernel.Vector128;
        Assert.Equal(expected, cipher.Kernel);
    }

    // McGrew and Viega, "The Galois/Counter Mode of Operation (GCM)", revised 2005, appendix B: test cases 1-4
    // (AES-128) and 13-16 (AES-256), the ones with a 96-bit IV. Columns: key, IV, plaintext, AAD, ciphertext, tag.
    private const string P64 = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" +
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
    private const string P60 = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" +
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
    private const string Aad20 = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
    private const string K128 = "feffe9928665731c6d6a8f9467308308";

    public static TheoryData<string, string, string, string, string, string, string> KnownAnswers
    {
        get
        {
            var cases = new (string Key, string Iv, string Plain, string Aad, string Cipher, string Tag)[]
            {
                (new string('0', 32), new string('0', 24), "", "", "", "58e2fccefa7e3061367f1d57a4e7455a"),
                (new string('0', 32), new string('0', 24), new string('0', 32), "", "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf"),
                (K128, "cafebabefacedbaddecaf888", P64, "",
                    "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e" +
                    "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985", "4d5c2af327cd64a62cf35abd2ba6fab4"),
                (K128, "cafebabefacedbaddecaf888", P60, Aad20,
                    "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e" +
                    "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091", "5bc94fbc3221a5db94fae95ae7121a47"),
                (new string('0', 64), new string('0', 24), "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"),
                (new string('0', 64), new string('0', 24), new string('0', 32), "", "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"),
                (K128 + K128, "cafebabefacedbaddecaf888", P64, "",
                    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa" +
                    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad", "b094dac5d93471bdec1a502270e3cc6c"),
                (K128 + K128, "cafebabefacedbaddecaf888", P60, Aad20,
                    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa" +
                    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662", "76fc6ece0f4e1768cddf8853bb2d551b"),
            };
            var data = new TheoryData<string, string, string, string, string, string, string>();
            foreach (var kernel in SupportedKernels)
            {
                foreach (var c in cases) data.Add(kernel, c.Key, c.Iv, c.Plain, c.Aad, c.Cipher, c.Tag);
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(KnownAnswers))]
    public void MatchesTheKnownAnswerTestsOfTheGcmSpecification(
        string kernel, string keyHex, string ivHex, string plainHex, string aadHex, string cipherHex, string tagHex)
    {
        byte[] key = Convert.FromHexString(keyHex), iv = Convert.FromHexString(ivHex), plain = Convert.FromHexString(plainHex);
        byte[] aad = Convert.FromHexString(aadHex), expectedCipher = Convert.FromHexString(cipherHex), expectedTag = Convert.FromHexString(tagHex);
        using var cipher = Create(key, kernel);
        byte[] output = new byte[plain.Length], tag = new byte[16];
        cipher.Encrypt(iv, plain, output, tag, aad);
        Assert.Equal(expectedCipher, output);
        Assert.Equal(expectedTag, tag);

        byte[] opened = new byte[plain.Length];
        Assert.True(cipher.TryDecrypt(iv, expectedCipher, expectedTag, opened, aad));
        Assert.Equal(plain, opened);
    }

    public static TheoryData<string, int> KernelsAndKeySizes
    {
        get
        {
            var data = new TheoryData<string, int>();
            foreach (var kernel in SupportedKernels)
            {
                data.Add(kernel, 16);
                data.Add(kernel, 32);
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(KernelsAndKeySizes))]
    public void AgreesWithAesGcmAroundEveryStepBoundaryAndRejectsFlippedBits(string kernel, int keyLength)
    {
        var random = new Random(1000 + keyLength + kernel.Length);
        byte[] key = new byte[keyLength];
        random.NextBytes(key);
        using var reference = new AesGcm(key, 16);
        using var ours = Create(key, kernel);
        int[] lengths = [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 191, 240, 255, 256, 257, 383, 511, 512, 513, 1024, 1200, 1201, 1500, 65536];
        foreach (int length in lengths)
        {
            foreach (int aadLength in new[] { 0, 12, 13, 16, 20, 255, 300 })
            {
                CheckOne(ours, reference, random, length, aadLength);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void AgreesWithAesGcmOnRandomKeysNoncesAadAndLengths(string kernel)
    {
        var random = new Random(77 + kernel[^3]);
        for (int i = 0; i < 150; i++)
        {
            byte[] key = new byte[random.Next(2) == 0 ? 16 : 32];
            random.NextBytes(key);
            using var reference = new AesGcm(key, 16);
            using var ours = Create(key, kernel);
            int length = random.Next(8) == 0 ? random.Next(65536 - 4096, 65537) : random.Next(0, 2049);
            CheckOne(ours, reference, random, length, random.Next(0, 600));
        }
    }

    [Fact]
    public void ThePlatformPathOfTheCallersAgreesAndWritesNoPlaintextForAFlippedBit()
    {
        // Without AES-NI/PCLMULQDQ the DTLS and SRTP paths seal with AesGcm and open with AeadOpen.
        var random = new Random(5);
        for (int i = 0; i < 100; i++)
        {
            byte[] key = new byte[random.Next(2) == 0 ? 16 : 32];
            random.NextBytes(key);
            using var platform = new AesGcm(key, 16);
            using var ours = new GcmCipher(key);
            int length = random.Next(0, 2049);
            byte[] nonce = new byte[12], plain = new byte[length], aad = new byte[random.Next(0, 64)];
            random.NextBytes(nonce);
            random.NextBytes(plain);
            random.NextBytes(aad);
            byte[] cipher = new byte[length], tag = new byte[16];
            ours.Encrypt(nonce, plain, cipher, tag, aad);
            byte[] opened = new byte[length];
            Assert.True(AeadOpen.TryDecrypt(platform, nonce, cipher, tag, opened, aad));
            Assert.Equal(plain, opened);

            (byte[] badCipher, byte[] badTag) = Flip(random, cipher, tag);
            Assert.False(AeadOpen.TryDecrypt(platform, nonce, badCipher, badTag, opened, aad));
            Assert.All(opened, b => Assert.Equal(0, b)); // AeadOpen clears what it wrote
        }
    }

    [Fact]
    public void RejectsAWrongNonceLengthAndAMessageTheCounterCannotCover()
    {
        using var cipher = new GcmCipher(new byte[16]);
        byte[] tag = new byte[16];
        Assert.Throws<ArgumentException>(() => cipher.Encrypt(new byte[8], new byte[16], tag, []));
        Assert.Throws<ArgumentException>(() => cipher.Encrypt(new byte[12], new byte[65534 * 16 + 1], tag, []));
        Assert.Throws<ArgumentException>(() => cipher.TryDecrypt(new byte[16], new byte[16], tag, []));
    }

    private static void CheckOne(GcmCipher ours, AesGcm reference, Random random, int length, int aadLength)
    {
        byte[] nonce = new byte[12], plain = new byte[length], aad = new byte[aadLength];
        random.NextBytes(nonce);
        random.NextBytes(plain);
        random.NextBytes(aad);
        byte[] cipher = new byte[length], tag = new byte[16];
        reference.Encrypt(nonce, plain, cipher, tag, aad);

        byte[] ourCipher = new byte[length], ourTag = new byte[16];
        ours.Encrypt(nonce, plain, ourCipher, ourTag, aad);
        Assert.True(cipher.AsSpan().SequenceEqual(ourCipher), $"ciphertext differs at length {length}, AAD {aadLength}");
        Assert.True(tag.AsSpan().SequenceEqual(ourTag), $"tag differs at length {length}, AAD {aadLength}");

        byte[] inPlace = (byte[])plain.Clone(), inPlaceTag = new byte[16];
        ours.Encrypt(nonce, inPlace, inPlaceTag, aad);
        Assert.True(cipher.AsSpan().SequenceEqual(inPlace) && tag.AsSpan().SequenceEqual(inPlaceTag), $"in-place differs at length {length}");

        byte[] opened = new byte[length];
        Assert.True(ours.TryDecrypt(nonce, cipher, tag, opened, aad), $"genuine message rejected at length {length}, AAD {aadLength}");
        Assert.True(plain.AsSpan().SequenceEqual(opened));

        (byte[] badCipher, byte[] badTag) = Flip(random, cipher, tag);
        byte[] untouched = new byte[length];
        Array.Fill(untouched, (byte)0x5A);
        Assert.False(ours.TryDecrypt(nonce, badCipher, badTag, untouched, aad), $"flipped bit accepted at length {length}, AAD {aadLength}");
        Assert.True(untouched.AsSpan().IndexOfAnyExcept((byte)0x5A) < 0, "plaintext written for a rejected message");
        byte[] work = (byte[])badCipher.Clone();
        Assert.False(ours.TryDecrypt(nonce, work, badTag, aad)); // in place: rejected and left as it was
        Assert.True(badCipher.AsSpan().SequenceEqual(work), "in-place buffer changed for a rejected message");
    }

    // One bit flipped, in the tag or (when there is one) the ciphertext.
    private static (byte[] Cipher, byte[] Tag) Flip(Random random, byte[] cipher, byte[] tag)
    {
        byte[] badCipher = (byte[])cipher.Clone(), badTag = (byte[])tag.Clone();
        if (cipher.Length > 0 && random.Next(2) == 0) badCipher[random.Next(cipher.Length)] ^= (byte)(1 << random.Next(8));
        else badTag[random.Next(16)] ^= (byte)(1 << random.Next(8));
        return (badCipher, badTag);
    }
}
