using System.Security.Cryptography;
using BcX25519 = Org.BouncyCastle.Math.EC.Rfc7748.X25519;

namespace Transport.Dtls.Crypto;

/// <summary>One ephemeral ECDHE key pair (RFC 8422 section 5.4): our public point and the shared secret.</summary>
internal abstract class KeyExchange : IDisposable
{
    public abstract DtlsNamedGroup Group { get; }
    /// <summary>The public value as it goes on the wire (uncompressed point, or the 32-byte u-coordinate).</summary>
    public abstract byte[] PublicKey { get; }
    /// <summary>The premaster secret, or null when the peer's value is invalid.</summary>
    public abstract byte[]? DeriveSecret(ReadOnlySpan<byte> peerPublic);
    public virtual void Dispose() { }

    public static KeyExchange Create(DtlsNamedGroup group) => group switch
    {
        DtlsNamedGroup.X25519 => new X25519KeyExchange(),
        DtlsNamedGroup.Secp256r1 => new NistKeyExchange(group, ECCurve.NamedCurves.nistP256, 32),
        DtlsNamedGroup.Secp384r1 => new NistKeyExchange(group, ECCurve.NamedCurves.nistP384, 48),
        _ => throw new ArgumentOutOfRangeException(nameof(group)),
    };

    public static bool IsSupported(DtlsNamedGroup group) =>
        group is DtlsNamedGroup.X25519 or DtlsNamedGroup.Secp256r1 or DtlsNamedGroup.Secp384r1;
}

/// <summary>secp256r1 / secp384r1 with the .NET ECDiffieHellman; the secret is the x-coordinate (RFC 8422 5.10).</summary>
internal sealed class NistKeyExchange : KeyExchange
{
    private readonly ECDiffieHellman _key;
    private readonly ECCurve _curve;
    private readonly int _size;

    public NistKeyExchange(DtlsNamedGroup group, ECCurve curve, int size)
    {
        Group = group;
        _curve = curve;
        _size = size;
        _key = ECDiffieHellman.Create(curve);
        var q = _key.ExportParameters(false).Q;
        var pub = new byte[1 + 2 * size];
        pub[0] = 4;
        q.X!.CopyTo(pub, 1);
        q.Y!.CopyTo(pub, 1 + size);
        PublicKey = pub;
    }

    public override DtlsNamedGroup Group { get; }
    public override byte[] PublicKey { get; }

    public override byte[]? DeriveSecret(ReadOnlySpan<byte> peerPublic)
    {
        if (peerPublic.Length != 1 + 2 * _size || peerPublic[0] != 4) return null;
        try
        {
            using var peer = ECDiffieHellman.Create(new ECParameters
            {
                Curve = _curve,
                Q = new ECPoint { X = peerPublic.Slice(1, _size).ToArray(), Y = peerPublic.Slice(1 + _size, _size).ToArray() },
            });
            return _key.DeriveRawSecretAgreement(peer.PublicKey);
        }
        catch (CryptographicException)
        {
            return null; // not a point on the curve
        }
    }

    public override void Dispose() => _key.Dispose();
}

/// <summary>
/// X25519 (RFC 7748), which .NET lacks. The public key comes from BouncyCastle's fixed-base multiplication (precomputed
/// Edwards tables, about 55-65 us here); the shared secret from our <see cref="Curve25519"/> ladder on 51-bit limbs,
/// about 105 us against BouncyCastle's 140-150 us on the same machine and run. The ladder is checked against the
/// RFC 7748 vectors and against BouncyCastle by the tests.
/// </summary>
internal sealed class X25519KeyExchange : KeyExchange
{
    private readonly byte[] _private = new byte[BcX25519.ScalarSize];

    public X25519KeyExchange()
    {
        RandomNumberGenerator.Fill(_private);
        PublicKey = new byte[BcX25519.PointSize];
        BcX25519.ScalarMultBase(_private, 0, PublicKey, 0);
    }

    public override DtlsNamedGroup Group => DtlsNamedGroup.X25519;
    public override byte[] PublicKey { get; }

    public override byte[]? DeriveSecret(ReadOnlySpan<byte> peerPublic)
    {
        if (peerPublic.Length != Curve25519.Size) return null;
        var secret = new byte[Curve25519.Size];
        // RFC 7748 section 6.1 / RFC 8422 section 5.11: an all-zero result means a low-order point; reject it.
        if (!Curve25519.ScalarMult(_private, peerPublic, secret)) return null;
        return secret;
    }

    public override void Dispose() => CryptographicOperations.ZeroMemory(_private);
}
