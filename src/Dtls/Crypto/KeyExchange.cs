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
/// X25519 (RFC 7748), which .NET's API lacks: a key pair and one shared secret per handshake, computed by the
/// libcrypto .NET runs on (one EVP key made from our random scalar: its public key computed once, then the secret
/// derived from it), else by BouncyCastle (<see cref="Curve25519"/>). Measured per handshake in one run
/// (<c>X25519ExchangeBenchmarks</c>, docs/dtls.md): libcrypto is faster than both BouncyCastle and the ladder of ours
/// this replaced.
/// </summary>
internal sealed class X25519KeyExchange : KeyExchange
{
    private readonly byte[] _private = new byte[Curve25519.Size];
    private readonly LibCryptoX25519.Key? _libCryptoKey;

    public X25519KeyExchange()
    {
        RandomNumberGenerator.Fill(_private);
        PublicKey = new byte[Curve25519.Size];
        if (LibCryptoX25519.IsAvailable) _libCryptoKey = LibCryptoX25519.NewKey(_private, PublicKey);
        if (_libCryptoKey is null) BcX25519.ScalarMultBase(_private, 0, PublicKey, 0);
    }

    public override DtlsNamedGroup Group => DtlsNamedGroup.X25519;
    public override byte[] PublicKey { get; }

    public override byte[]? DeriveSecret(ReadOnlySpan<byte> peerPublic)
    {
        if (peerPublic.Length != Curve25519.Size) return null;
        var secret = new byte[Curve25519.Size];
        // RFC 7748 section 6.1 / RFC 8422 section 5.11: an all-zero result means a low-order point; reject it.
        var ok = _libCryptoKey is not null ? LibCryptoX25519.DeriveWithKey(_libCryptoKey, peerPublic, secret) : null;
        ok ??= Curve25519.ScalarMult(_private, peerPublic, secret);
        return ok == true ? secret : null;
    }

    public override void Dispose()
    {
        CryptographicOperations.ZeroMemory(_private);
        _libCryptoKey?.Dispose();
    }
}
