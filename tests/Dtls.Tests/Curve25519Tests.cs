using Transport.Dtls.Crypto;
using BcX25519 = Org.BouncyCastle.Math.EC.Rfc7748.X25519;

namespace Transport.Dtls.Tests;

/// <summary>
/// The X25519 the handshake uses (libcrypto's here, <see cref="Curve25519"/>) against RFC 7748 (sections 5.2 and 6.1)
/// and against BouncyCastle's independent implementation.
/// </summary>
public sealed class Curve25519Tests
{
    [Fact]
    public void LibCryptoComputesX25519OnThisMachineAndTheKeyExchangeAgreesWithBouncyCastle()
    {
        Assert.True(Curve25519.UsesLibCrypto, "Linux with OpenSSL 3: libcrypto's X25519 is loaded");
        using var a = new X25519KeyExchange();
        using var b = new X25519KeyExchange();
        var ab = a.DeriveSecret(b.PublicKey);
        var ba = b.DeriveSecret(a.PublicKey);
        Assert.NotNull(ab);
        Assert.Equal(ab, ba);
        // A BouncyCastle key pair agrees with ours.
        var k = new byte[32];
        new Random(5).NextBytes(k);
        var bcPublic = new byte[32];
        BcX25519.ScalarMultBase(k, 0, bcPublic, 0);
        var expected = new byte[32];
        Assert.True(BcX25519.CalculateAgreement(k, 0, a.PublicKey, 0, expected, 0));
        Assert.Equal(expected, a.DeriveSecret(bcPublic));
    }

    private static byte[] Hex(string s) => Convert.FromHexString(s);

    private static byte[] X25519(byte[] k, byte[] u)
    {
        var r = new byte[32];
        Curve25519.ScalarMult(k, u, r);
        return r;
    }

    [Theory]
    [InlineData("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4", "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")]
    [InlineData("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d", "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957")]
    public void Rfc7748Section52Vectors(string scalar, string u, string expected)
    {
        // The second u has its top bit set: it must be masked, not rejected.
        Assert.Equal(expected, Convert.ToHexString(X25519(Hex(scalar), Hex(u))).ToLowerInvariant());
    }

    [Fact]
    public void Rfc7748Section52IteratedOneAndThousandTimes()
    {
        byte[] k = new byte[32], u = new byte[32];
        k[0] = 9;
        u[0] = 9;
        for (var i = 1; i <= 1000; i++)
        {
            var r = X25519(k, u);
            u = k;
            k = r;
            if (i == 1) Assert.Equal("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079", Convert.ToHexString(k).ToLowerInvariant());
        }
        Assert.Equal("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51", Convert.ToHexString(k).ToLowerInvariant());
    }

    [Fact]
    public void Rfc7748Section61DiffieHellman()
    {
        var alice = Hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        var bob = Hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        var alicePublic = new byte[32];
        var bobPublic = new byte[32];
        Curve25519.ScalarMultBase(alice, alicePublic);
        Curve25519.ScalarMultBase(bob, bobPublic);
        Assert.Equal("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", Convert.ToHexString(alicePublic).ToLowerInvariant());
        Assert.Equal("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", Convert.ToHexString(bobPublic).ToLowerInvariant());
        const string shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
        Assert.Equal(shared, Convert.ToHexString(X25519(alice, bobPublic)).ToLowerInvariant());
        Assert.Equal(shared, Convert.ToHexString(X25519(bob, alicePublic)).ToLowerInvariant());
    }

    [Fact]
    public void AgreesWithBouncyCastleOnRandomScalarsAndPointsIncludingNonCanonicalOnes()
    {
        var random = new Random(7748);
        for (var i = 0; i < 300; i++)
        {
            var k = new byte[32];
            var u = new byte[32];
            random.NextBytes(k);
            random.NextBytes(u);
            if (i % 10 == 0) { Array.Fill(u, (byte)0xFF); u[0] = (byte)(0xED + random.Next(0, 18)); } // u >= p and top bit set
            var expected = new byte[32];
            BcX25519.ScalarMult(k, 0, u, 0, expected, 0);
            Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(X25519(k, u)));

            var pub = new byte[32];
            var bcPub = new byte[32];
            Curve25519.ScalarMultBase(k, pub);
            BcX25519.ScalarMultBase(k, 0, bcPub, 0);
            Assert.Equal(bcPub, pub);
        }
    }

    [Fact]
    public void ALowOrderPeerValueGivesAllZeroAndIsRefusedByTheKeyExchange()
    {
        using var exchange = new X25519KeyExchange();
        // u = 0 and u = 1 are of small order: the shared secret is all zero (RFC 7748 section 6.1).
        Assert.Null(exchange.DeriveSecret(new byte[32]));
        var one = new byte[32];
        one[0] = 1;
        Assert.Null(exchange.DeriveSecret(one));
        Assert.Null(exchange.DeriveSecret(new byte[31]));

        using var peer = new X25519KeyExchange();
        Assert.Equal(exchange.DeriveSecret(peer.PublicKey), peer.DeriveSecret(exchange.PublicKey));
    }
}
