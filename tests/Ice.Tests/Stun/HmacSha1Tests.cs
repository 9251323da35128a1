using System.Security.Cryptography;
using Transport.Ice.Stun;

namespace Transport.Ice.Tests.Stun;

/// <summary>Our HMAC-SHA1 (pre-hashed pads) agrees with the platform's at every length that matters.</summary>
public sealed class HmacSha1Tests
{
    [Fact]
    public void MatchesThePlatformHmacForRandomKeysAndSplitInputs()
    {
        var random = new Random(2104);
        var mac = new byte[20];
        foreach (var keyLength in new[] { 0, 1, 16, 20, 22, 63, 64, 65, 100 })
        {
            var key = new byte[keyLength];
            random.NextBytes(key);
            var h = new HmacSha1(key);
            for (var length = 0; length < 300; length += 1 + length / 20)
            {
                var data = new byte[length];
                random.NextBytes(data);
                var split = random.Next(length + 1);
                h.Compute(data.AsSpan(0, split), data.AsSpan(split), mac);
                Assert.Equal(Convert.ToHexString(HMACSHA1.HashData(key, data)), Convert.ToHexString(mac));
            }
        }
    }

    [Fact]
    public void Rfc2202TestCase2()
    {
        var h = new HmacSha1("Jefe"u8);
        var mac = new byte[20];
        h.Compute("what do ya want "u8, "for nothing?"u8, mac);
        Assert.Equal("EFFCDF6AE5EB2FA2D27416D5F184DF9C259A7C79", Convert.ToHexString(mac));
    }
}
