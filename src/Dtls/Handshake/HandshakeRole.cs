using System.Security.Cryptography;
using Transport.Dtls.Crypto;

namespace Transport.Dtls.Handshake;

/// <summary>
/// The flights of one role (RFC 6347 section 4.2.4): the client and server differ in what they send and expect,
/// the record layer and retransmission they share live in <see cref="DtlsConnection"/>.
/// </summary>
internal abstract class HandshakeRole(DtlsConnection connection) : IDisposable
{
    protected DtlsConnection Connection { get; } = connection;
    protected DtlsOptions Options => Connection.Options;
    protected KeyExchange? Ephemeral { get; set; }

    /// <summary>Client only: sends flight 1.</summary>
    public virtual void Start() => throw new InvalidOperationException("Only the client starts.");

    /// <summary>The next handshake message in message_seq order.</summary>
    public abstract void HandleMessage(ReceivedMessage message);

    public virtual void Dispose() => Ephemeral?.Dispose();

    protected void Unexpected(ReceivedMessage message) =>
        Connection.Fail(DtlsStateReason.ProtocolViolation, DtlsAlertDescription.UnexpectedMessage,
            $"Unexpected handshake message {message.Type} (seq {message.Sequence}).");

    protected void DecodeError(ReceivedMessage message) =>
        Connection.Fail(DtlsStateReason.ProtocolViolation, DtlsAlertDescription.DecodeError,
            $"Malformed {message.Type} message.");

    protected static byte[] NewRandom()
    {
        var random = new byte[32];
        RandomNumberGenerator.Fill(random);
        return random;
    }

    /// <summary>Certificate message (RFC 5246 section 7.4.2): certificate_list&lt;0..2^24-1&gt; of ASN.1Cert&lt;1..2^24-1&gt;.</summary>
    protected WireWriter CertificateBody()
    {
        var w = new WireWriter();
        var list = w.BeginBlock(3);
        w.Vector24(Options.Certificate.Der.Span);
        w.EndBlock(list, 3);
        return w;
    }

    /// <summary>
    /// Reads the peer's Certificate and checks its fingerprint against the expected one before anything else
    /// (a mismatch is a fatal bad_certificate). Returns false after failing the connection.
    /// </summary>
    protected bool AcceptPeerCertificate(ReceivedMessage message, bool allowEmpty, out bool empty)
    {
        empty = false;
        var r = new WireReader(message.Body);
        if (!r.TryVector24(out var list) || !r.IsEmpty) { DecodeError(message); return false; }
        var l = new WireReader(list);
        if (l.IsEmpty)
        {
            empty = true;
            if (allowEmpty) return true;
            Connection.Fail(DtlsStateReason.BadCertificate, DtlsAlertDescription.HandshakeFailure, "The peer sent no certificate.");
            return false;
        }
        if (!l.TryVector24(out var der) || der.IsEmpty) { DecodeError(message); return false; }
        return AcceptCertificateDer(der);
    }

    /// <summary>The fingerprint check and key import of the peer's end-entity certificate; false after failing.</summary>
    protected bool AcceptCertificateDer(ReadOnlySpan<byte> der)
    {
        // The fingerprint is computed once: DtlsConnected reports the SHA-256 one, the default algorithm (RFC 8122 5).
        string? sha256 = null;
        if (Options.RemoteFingerprint is { } expected)
        {
            var actual = DtlsFingerprint.Compute(der, Options.RemoteFingerprintAlgorithm);
            if (!DtlsFingerprint.Matches(actual, expected))
            {
                Connection.Fail(DtlsStateReason.FingerprintMismatch, DtlsAlertDescription.BadCertificate,
                    $"Peer certificate fingerprint {actual} is not the expected {expected}.");
                return false;
            }
            if (string.Equals(Options.RemoteFingerprintAlgorithm, DtlsFingerprint.Sha256, StringComparison.OrdinalIgnoreCase)) sha256 = actual;
        }
        var certificate = der.ToArray();
        Connection.RemoteKey = PeerPublicKey.TryRead(certificate);
        if (Connection.RemoteKey is null)
        {
            Connection.Fail(DtlsStateReason.BadCertificate, DtlsAlertDescription.UnsupportedCertificate, "The peer certificate has no usable EC or RSA key.");
            return false;
        }
        Connection.RemoteCertificateDer = certificate;
        Connection.RemoteSha256Fingerprint = sha256 ?? DtlsFingerprint.Compute(certificate, DtlsFingerprint.Sha256);
        return true;
    }

    /// <summary>A signature&lt;SignatureAndHashAlgorithm, opaque&lt;0..2^16-1&gt;&gt; (RFC 5246 section 4.7) from the reader.</summary>
    protected static bool TryReadSignature(ref WireReader r, out DtlsSignatureScheme scheme, out ReadOnlySpan<byte> signature)
    {
        signature = default;
        scheme = default;
        if (!r.TryU16(out var s) || !r.TryVector16(out signature)) return false;
        scheme = (DtlsSignatureScheme)s;
        return true;
    }

    protected static void WriteSchemes(WireWriter w, IEnumerable<DtlsSignatureScheme> schemes)
    {
        var block = w.BeginBlock(2);
        foreach (var s in schemes) w.U16((ushort)s);
        w.EndBlock(block, 2);
    }

    /// <summary>The schemes we can verify, offered in ClientHello and CertificateRequest.</summary>
    protected static readonly DtlsSignatureScheme[] VerifiableSchemes =
    [
        DtlsSignatureScheme.EcdsaSecp256r1Sha256, DtlsSignatureScheme.EcdsaSecp384r1Sha384,
        DtlsSignatureScheme.RsaPssRsaeSha256, DtlsSignatureScheme.RsaPkcs1Sha256, DtlsSignatureScheme.RsaPkcs1Sha384,
    ];

    protected static bool IsVerifiable(DtlsSignatureScheme scheme) => Array.IndexOf(VerifiableSchemes, scheme) >= 0;
}
