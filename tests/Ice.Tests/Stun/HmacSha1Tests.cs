using System.Security.Cryptography;
using Transport.Crypto;

namespace Transport.Ice.Tests.Stun;

/// <summary>
/// Our HMAC-SHA1 (pre-hashed pads; libcrypto's SHA-1 or the managed fallback) agrees with the platform's at every
/// length that matters, on both engines.
/// </summary>
public sealed class HmacSha1Tests
{
    [Fact]
    public void LibCryptoSha1IsFoundOnThisLinuxMachine()
    {
        // .NET itself runs on OpenSSL's libcrypto on Linux, so the fast path must be there; if this fails the
        // benchmarks would silently measure the managed fallback.
        Assert.True(OperatingSystem.IsLinux(), "the libcrypto path is only expected on Linux");
        Assert.True(LibCryptoSha1.IsAvailable, "libcrypto's SHA1_* functions were not found or failed the self-test");
        Assert.StartsWith("libcrypto", LibCryptoSha1.LibraryName);
        Assert.True(new HmacSha1("k"u8).UsesNative);
        Assert.False(new HmacSha1("k"u8, allowNative: false).UsesNative);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void MatchesThePlatformHmacForRandomKeysAndSplitInputs(bool native)
    {
        var random = new Random(native ? 2104 : 2105);
        var mac = new byte[20];
        foreach (var keyLength in new[] { 0, 1, 16, 20, 22, 63, 64, 65, 100, 200 })
        {
            var key = new byte[keyLength];
            random.NextBytes(key);
            var h = new HmacSha1(key, allowNative: native);
            Assert.Equal(native, h.UsesNative);
            for (var length = 0; length < 1500; length += 1 + length / 16)
            {
                var data = new byte[length];
                random.NextBytes(data);
                var split = random.Next(length + 1);
                h.Compute(data.AsSpan(0, split), data.AsSpan(split), mac);
                Assert.Equal(Convert.ToHexString(HMACSHA1.HashData(key, data)), Convert.ToHexString(mac));
            }
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void BothEnginesAgreeOnEveryLengthAroundBlockBoundaries(bool splitInTwo)
    {
        var random = new Random(55);
        var key = new byte[22];
        random.NextBytes(key);
        var native = new HmacSha1(key);
        var managed = new HmacSha1(key, allowNative: false);
        var a = new byte[20];
        var b = new byte[20];
        for (var length = 0; length <= 260; length++)
        {
            var data = new byte[length];
            random.NextBytes(data);
            var split = splitInTwo ? length / 2 : length;
            native.Compute(data.AsSpan(0, split), data.AsSpan(split), a);
            managed.Compute(data.AsSpan(0, split), data.AsSpan(split), b);
            Assert.Equal(a, b);
        }
    }

    [Theory]
    [InlineData(true, 10)]
    [InlineData(false, 10)]
    [InlineData(true, 4)]
    [InlineData(false, 4)]
    public void ShortDestinationReceivesTheTruncatedMac(bool native, int length)
    {
        // SRTP's HMAC-SHA1-80 and -32 tags are the leftmost 10 and 4 bytes (RFC 3711 section 4.2.1).
        var key = Enumerable.Range(0, 20).Select(i => (byte)i).ToArray();
        var data = Enumerable.Range(0, 1216).Select(i => (byte)(i * 7)).ToArray();
        var tag = new byte[length + 2];
        new HmacSha1(key, native).Compute(data, default, tag.AsSpan(0, length));
        Assert.Equal(HMACSHA1.HashData(key, data)[..length], tag[..length]);
        Assert.Equal(new byte[2], tag[length..]); // nothing written past the requested length
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Rfc2202TestCases(bool native)
    {
        var mac = new byte[20];
        new HmacSha1("Jefe"u8, native).Compute("what do ya want "u8, "for nothing?"u8, mac);
        Assert.Equal("EFFCDF6AE5EB2FA2D27416D5F184DF9C259A7C79", Convert.ToHexString(mac));

        // Test case 6: an 80-byte key (longer than a block, hashed first).
        var key = Enumerable.Repeat((byte)0xAA, 80).ToArray();
        new HmacSha1(key, native).Compute("Test Using Larger Than Block-Size Key - Hash Key First"u8, default, mac);
        Assert.Equal("AA4AE5E15272D00E95705637CE8A3B55ED402112", Convert.ToHexString(mac));
    }

    [Fact]
    public void AMissingLibraryOrMissingSymbolsGiveNoNativeFunctions()
    {
        Assert.False(LibCryptoSha1.Load(["libdoes-not-exist-transport.so.9"]).IsValid);
        // libc exists but has no SHA1_Update: the symbol check must reject it (and free it).
        Assert.False(LibCryptoSha1.Load(["libc.so.6"]).IsValid);
        // The first good name in the list wins after bad ones.
        var found = LibCryptoSha1.Load(["libdoes-not-exist-transport.so.9", "libc.so.6", .. LibCryptoSha1.LibraryNames]);
        Assert.True(found.IsValid);
    }
}
