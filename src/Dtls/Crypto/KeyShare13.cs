using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Kems;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Prng;
using Org.BouncyCastle.Security;

namespace Transport.Dtls.Crypto;

/// <summary>
/// TLS 1.3 key shares (RFC 8446 4.2.8): the client offers a share per group, the server answers one. For x25519 and
/// secp256r1/384r1 both sides are ECDHE (<see cref="KeyExchange"/>). X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem,
/// group 0x11EC) is a KEM: client share = ML-KEM-768 encapsulation key (1184 B) || X25519 public (32 B); server
/// share = ML-KEM ciphertext (1088 B) || X25519 public (32 B); shared secret = ML-KEM secret (32 B) || X25519
/// secret (32 B). ML-KEM from BouncyCastle, X25519 from libcrypto (<see cref="X25519KeyExchange"/>).
/// </summary>
internal static class KeyShare13
{
    public const int MlKemEncapsulationKeyLength = 1184, MlKemCiphertextLength = 1088, MlKemSecretLength = 32;

    /// <summary>
    /// The randomness of ML-KEM key generation and encapsulation (FIPS 203 sections 7.1 and 7.2: 64 and 32 fresh bytes):
    /// the operating system's generator, shared (it keeps no state). BouncyCastle's <c>new SecureRandom()</c> would
    /// seed a SHA-256 generator of its own from that same source on every handshake.
    /// </summary>
    internal static readonly SecureRandom Random = new(new CryptoApiRandomGenerator());

    public static bool IsSupported(DtlsNamedGroup group) =>
        group is DtlsNamedGroup.X25519MLKEM768 or DtlsNamedGroup.X25519 or DtlsNamedGroup.Secp256r1 or DtlsNamedGroup.Secp384r1;

    /// <summary>Client: our share of <paramref name="group"/>; <see cref="KeyExchange.DeriveSecret"/> takes the server's.</summary>
    public static KeyExchange CreateClientShare(DtlsNamedGroup group) =>
        group == DtlsNamedGroup.X25519MLKEM768 ? new HybridClientShare() : KeyExchange.Create(group);

    /// <summary>Server: answers the client's share; false when it is invalid.</summary>
    public static bool TryRespond(DtlsNamedGroup group, ReadOnlySpan<byte> clientShare, out byte[] serverShare, out byte[] secret)
    {
        serverShare = [];
        secret = [];
        if (group == DtlsNamedGroup.X25519MLKEM768)
        {
            if (clientShare.Length != MlKemEncapsulationKeyLength + Curve25519.Size) return false;
            byte[] kemSecret;
            var ciphertext = new byte[MlKemCiphertextLength];
            try
            {
                var ek = MLKemPublicKeyParameters.FromEncoding(MLKemParameters.ml_kem_768, clientShare[..MlKemEncapsulationKeyLength].ToArray());
                var encapsulator = new MLKemEncapsulator(MLKemParameters.ml_kem_768);
                encapsulator.Init(new ParametersWithRandom(ek, Random));
                kemSecret = new byte[MlKemSecretLength];
                encapsulator.Encapsulate(ciphertext, kemSecret);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or Org.BouncyCastle.Crypto.CryptoException)
            {
                return false; // not a valid encapsulation key (FIPS 203 7.2 modulus check)
            }
            using var x = new X25519KeyExchange();
            var xSecret = x.DeriveSecret(clientShare[MlKemEncapsulationKeyLength..]);
            if (xSecret is null) return false;
            serverShare = [.. ciphertext, .. x.PublicKey];
            secret = [.. kemSecret, .. xSecret];
            CryptographicOperations.ZeroMemory(kemSecret);
            return true;
        }
        if (!KeyExchange.IsSupported(group)) return false;
        using var ecdhe = KeyExchange.Create(group);
        var s = ecdhe.DeriveSecret(clientShare);
        if (s is null) return false;
        serverShare = ecdhe.PublicKey;
        secret = s;
        return true;
    }
}

/// <summary>The client half of X25519MLKEM768: an ML-KEM-768 key pair and an X25519 key pair.</summary>
internal sealed class HybridClientShare : KeyExchange
{
    private readonly MLKemPrivateKeyParameters _decapsulationKey;
    private readonly X25519KeyExchange _x25519 = new();

    public HybridClientShare()
    {
        var generator = new MLKemKeyPairGenerator();
        generator.Init(new MLKemKeyGenerationParameters(KeyShare13.Random, MLKemParameters.ml_kem_768));
        var pair = generator.GenerateKeyPair();
        _decapsulationKey = (MLKemPrivateKeyParameters)pair.Private;
        var ek = ((MLKemPublicKeyParameters)pair.Public).GetEncoded();
        PublicKey = [.. ek, .. _x25519.PublicKey];
    }

    public override DtlsNamedGroup Group => DtlsNamedGroup.X25519MLKEM768;
    public override byte[] PublicKey { get; }

    public override byte[]? DeriveSecret(ReadOnlySpan<byte> peerPublic)
    {
        if (peerPublic.Length != KeyShare13.MlKemCiphertextLength + Curve25519.Size) return null;
        var decapsulator = new MLKemDecapsulator(MLKemParameters.ml_kem_768);
        decapsulator.Init(_decapsulationKey);
        var kemSecret = new byte[KeyShare13.MlKemSecretLength];
        decapsulator.Decapsulate(peerPublic[..KeyShare13.MlKemCiphertextLength], kemSecret);
        var xSecret = _x25519.DeriveSecret(peerPublic[KeyShare13.MlKemCiphertextLength..]);
        if (xSecret is null) return null;
        byte[] secret = [.. kemSecret, .. xSecret];
        CryptographicOperations.ZeroMemory(kemSecret);
        return secret;
    }

    public override void Dispose() => _x25519.Dispose();
}
