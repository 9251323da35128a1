using System.Security.Cryptography;
using System.Text;

namespace Transport.Dtls.Tls13;

/// <summary>
/// The TLS 1.3 key schedule (RFC 8446 section 7.1) on the platform HKDF, parameterized by the HKDF-Expand-Label
/// prefix: <c>"tls13 "</c> for TLS (RFC 8448 traces), <c>"dtls13"</c> for DTLS 1.3 (RFC 9147 section 5.9).
/// No PSK: the early secret is HKDF-Extract(0, 0).
/// </summary>
internal sealed class Tls13KeySchedule
{
    public const string TlsPrefix = "tls13 ";
    public const string DtlsPrefix = "dtls13";

    private readonly string _prefix;

    public Tls13KeySchedule(HashAlgorithmName hash, string prefix = DtlsPrefix)
    {
        Hash = hash;
        _prefix = prefix;
        HashLength = hash == HashAlgorithmName.SHA384 ? 48 : 32;
        EmptyHash = HashData([]);
    }

    public HashAlgorithmName Hash { get; }
    public int HashLength { get; }
    /// <summary>Hash("") for Derive-Secret(., "derived", "").</summary>
    public byte[] EmptyHash { get; }

    public byte[]? EarlySecret { get; private set; }
    public byte[]? HandshakeSecret { get; private set; }
    public byte[]? MasterSecret { get; private set; }
    public byte[]? ClientHandshakeTrafficSecret { get; private set; }
    public byte[]? ServerHandshakeTrafficSecret { get; private set; }
    public byte[]? ClientApplicationTrafficSecret { get; private set; }
    public byte[]? ServerApplicationTrafficSecret { get; private set; }
    public byte[]? ExporterMasterSecret { get; private set; }

    public byte[] HashData(ReadOnlySpan<byte> data) =>
        Hash == HashAlgorithmName.SHA384 ? SHA384.HashData(data) : SHA256.HashData(data);

    public byte[] Extract(ReadOnlySpan<byte> salt, ReadOnlySpan<byte> ikm)
    {
        var prk = new byte[HashLength];
        HKDF.Extract(Hash, ikm, salt, prk);
        return prk;
    }

    /// <summary>
    /// HKDF-Expand-Label(Secret, Label, Context, Length) = HKDF-Expand(Secret, HkdfLabel, Length) with
    /// HkdfLabel = uint16 length, opaque label&lt;7..255&gt; = prefix + Label, opaque context&lt;0..255&gt;.
    /// </summary>
    public byte[] ExpandLabel(ReadOnlySpan<byte> secret, string label, ReadOnlySpan<byte> context, int length)
    {
        var output = new byte[length];
        ExpandLabel(secret, label, context, output);
        return output;
    }

    public void ExpandLabel(ReadOnlySpan<byte> secret, string label, ReadOnlySpan<byte> context, Span<byte> output)
    {
        var labelLength = _prefix.Length + label.Length;
        Span<byte> info = stackalloc byte[2 + 1 + labelLength + 1 + context.Length];
        info[0] = (byte)(output.Length >> 8);
        info[1] = (byte)output.Length;
        info[2] = (byte)labelLength;
        Encoding.ASCII.GetBytes(_prefix, info[3..]);
        Encoding.ASCII.GetBytes(label, info[(3 + _prefix.Length)..]);
        info[3 + labelLength] = (byte)context.Length;
        context.CopyTo(info[(4 + labelLength)..]);
        HKDF.Expand(Hash, secret, output, info);
    }

    /// <summary>Derive-Secret(Secret, Label, Messages) with the transcript hash already taken.</summary>
    public byte[] DeriveSecret(ReadOnlySpan<byte> secret, string label, ReadOnlySpan<byte> transcriptHash) =>
        ExpandLabel(secret, label, transcriptHash, HashLength);

    /// <summary>Early secret (no PSK) and the handshake secret from the (EC)DHE / hybrid shared secret.</summary>
    public void SetSharedSecret(ReadOnlySpan<byte> shared)
    {
        Span<byte> zeros = stackalloc byte[HashLength];
        zeros.Clear();
        EarlySecret = Extract(zeros, zeros);
        var derived = DeriveSecret(EarlySecret, "derived", EmptyHash);
        HandshakeSecret = Extract(derived, shared);
        MasterSecret = Extract(DeriveSecret(HandshakeSecret, "derived", EmptyHash), zeros);
    }

    /// <summary>The handshake traffic secrets over Hash(ClientHello..ServerHello).</summary>
    public void DeriveHandshakeTrafficSecrets(ReadOnlySpan<byte> helloHash)
    {
        ClientHandshakeTrafficSecret = DeriveSecret(HandshakeSecret!, "c hs traffic", helloHash);
        ServerHandshakeTrafficSecret = DeriveSecret(HandshakeSecret!, "s hs traffic", helloHash);
    }

    /// <summary>The application traffic secrets and the exporter master secret over Hash(ClientHello..server Finished).</summary>
    public void DeriveApplicationSecrets(ReadOnlySpan<byte> serverFinishedHash)
    {
        ClientApplicationTrafficSecret = DeriveSecret(MasterSecret!, "c ap traffic", serverFinishedHash);
        ServerApplicationTrafficSecret = DeriveSecret(MasterSecret!, "s ap traffic", serverFinishedHash);
        ExporterMasterSecret = DeriveSecret(MasterSecret!, "exp master", serverFinishedHash);
    }

    /// <summary>Finished verify_data = HMAC(finished_key, transcript hash), finished_key = Expand-Label(base, "finished", "", Hash.length).</summary>
    public byte[] FinishedVerifyData(ReadOnlySpan<byte> baseKey, ReadOnlySpan<byte> transcriptHash)
    {
        var finishedKey = ExpandLabel(baseKey, "finished", default, HashLength);
        return Hash == HashAlgorithmName.SHA384 ? HMACSHA384.HashData(finishedKey, transcriptHash) : HMACSHA256.HashData(finishedKey, transcriptHash);
    }

    /// <summary>application_traffic_secret_N+1 = Expand-Label(secret_N, "traffic upd", "", Hash.length) (RFC 8446 7.2).</summary>
    public byte[] NextTrafficSecret(ReadOnlySpan<byte> secret) => ExpandLabel(secret, "traffic upd", default, HashLength);

    /// <summary>
    /// TLS-Exporter(label, context, length) = Expand-Label(Derive-Secret(exporter_master, label, ""), "exporter",
    /// Hash(context), length) (RFC 8446 section 7.5). No context and an empty context are the same in TLS 1.3.
    /// </summary>
    public byte[] Export(string label, ReadOnlySpan<byte> context, int length)
    {
        if (ExporterMasterSecret is null) throw new InvalidOperationException("The exporter master secret is not derived yet.");
        var secret = DeriveSecret(ExporterMasterSecret, label, EmptyHash);
        return ExpandLabel(secret, "exporter", HashData(context), length);
    }

    /// <summary>Traffic keys of a secret: key, iv and (DTLS 1.3) the record-number key sn_key (RFC 9147 4.2.3).</summary>
    public (byte[] Key, byte[] Iv, byte[] SnKey) TrafficKeys(ReadOnlySpan<byte> secret, int keyLength) =>
        (ExpandLabel(secret, "key", default, keyLength), ExpandLabel(secret, "iv", default, 12), ExpandLabel(secret, "sn", default, keyLength));
}
