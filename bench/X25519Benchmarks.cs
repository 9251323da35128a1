using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Transport.Dtls.Crypto;
using BcX25519 = Org.BouncyCastle.Math.EC.Rfc7748.X25519;

namespace Transport.Bench;

/// <summary>
/// X25519 shared secret and public key: what the handshake uses (<see cref="Curve25519"/>: libcrypto's EVP X25519,
/// else BouncyCastle) against BouncyCastle alone, in one run.
/// </summary>
[MemoryDiagnoser]
public class X25519Benchmarks
{
    private readonly byte[] _scalar = new byte[32];
    private readonly byte[] _peer = new byte[32];
    private readonly byte[] _result = new byte[32];

    [GlobalSetup]
    public void Setup()
    {
        RandomNumberGenerator.Fill(_scalar);
        var other = new byte[32];
        RandomNumberGenerator.Fill(other);
        BcX25519.ScalarMultBase(other, 0, _peer, 0);
        if (!Curve25519.UsesLibCrypto) Console.WriteLine("libcrypto X25519 not available: Curve25519 is BouncyCastle here");
    }

    [Benchmark(Baseline = true)]
    public bool SharedSecretUsed() => Curve25519.ScalarMult(_scalar, _peer, _result);

    [Benchmark]
    public bool SharedSecretBouncyCastle() => BcX25519.CalculateAgreement(_scalar, 0, _peer, 0, _result, 0);

    [Benchmark]
    public bool SharedSecretOldLadder() => OldCurve25519Ladder.ScalarMult(_scalar, _peer, _result);

    [Benchmark]
    public void PublicKeyUsed() => Curve25519.ScalarMultBase(_scalar, _result);

    [Benchmark]
    public void PublicKeyBouncyCastle() => BcX25519.ScalarMultBase(_scalar, 0, _result, 0);
}

/// <summary>
/// What one handshake does with X25519 (a fresh key pair, then one shared secret), per implementation in one run:
/// libcrypto (one EVP key made from the scalar, its public key computed once, then derived from), BouncyCastle, and
/// the old ladder of ours (BouncyCastle's fixed-base public key, the ladder for the secret).
/// </summary>
[MemoryDiagnoser]
public class X25519ExchangeBenchmarks
{
    private readonly byte[] _scalar = new byte[32];
    private readonly byte[] _peer = new byte[32];
    private readonly byte[] _public = new byte[32];
    private readonly byte[] _result = new byte[32];

    [GlobalSetup]
    public void Setup()
    {
        RandomNumberGenerator.Fill(_scalar);
        var other = new byte[32];
        RandomNumberGenerator.Fill(other);
        BcX25519.ScalarMultBase(other, 0, _peer, 0);
    }

    [Benchmark(Baseline = true)]
    public bool LibCrypto()
    {
        using var key = LibCryptoX25519.NewKey(_scalar, _public)!;
        return LibCryptoX25519.DeriveWithKey(key, _peer, _result) == true;
    }

    [Benchmark]
    public bool BouncyCastle()
    {
        BcX25519.ScalarMultBase(_scalar, 0, _public, 0);
        return BcX25519.CalculateAgreement(_scalar, 0, _peer, 0, _result, 0);
    }

    [Benchmark]
    public bool OldLadder()
    {
        BcX25519.ScalarMultBase(_scalar, 0, _public, 0);
        return OldCurve25519Ladder.ScalarMult(_scalar, _peer, _result);
    }
}
