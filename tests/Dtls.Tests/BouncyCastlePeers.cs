using System.Collections.Concurrent;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Security;
using Org.BouncyCastle.Tls;
using Org.BouncyCastle.Tls.Crypto;
using Org.BouncyCastle.Tls.Crypto.Impl.BC;
using BcCertificate = Org.BouncyCastle.Tls.Certificate;

namespace Transport.Dtls.Tests;

/// <summary>
/// A DatagramTransport for BouncyCastle's blocking DTLS classes, bridged to our sans-IO connection by queues.
/// BouncyCastle runs on its own thread; the test thread moves datagrams and drives our machine.
/// </summary>
internal sealed class QueueDatagramTransport : DatagramTransport
{
    public BlockingCollection<byte[]> ToBouncyCastle { get; } = new();
    public BlockingCollection<byte[]> FromBouncyCastle { get; } = new();
    public volatile bool Closed;

    public int GetReceiveLimit() => 1500;
    public int GetSendLimit() => 1500;

    public int Receive(byte[] buf, int off, int len, int waitMillis) => Receive(buf.AsSpan(off, len), waitMillis);

    public int Receive(Span<byte> buffer, int waitMillis)
    {
        if (Closed) return -1;
        if (!ToBouncyCastle.TryTake(out var d, waitMillis)) return -1;
        var n = Math.Min(buffer.Length, d.Length);
        d.AsSpan(0, n).CopyTo(buffer);
        return n;
    }

    public void Send(byte[] buf, int off, int len) => Send(buf.AsSpan(off, len));

    public void Send(ReadOnlySpan<byte> buffer) => FromBouncyCastle.Add(buffer.ToArray());

    public void Close() => Closed = true;
}

internal static class BcKeys
{
    /// <summary>One crypto provider for all peers; BouncyCastle's own (not .NET's), so the peer is independent of ours.</summary>
    public static BcTlsCrypto NewCrypto() => new(new SecureRandom());

    public static BcCertificate Certificate(TlsCrypto crypto, DtlsCertificate cert) =>
        new([crypto.CreateCertificate(cert.Der.ToArray())]);

    public static AsymmetricKeyParameter PrivateKey(DtlsCertificate cert)
    {
        using var key = System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions.GetECDsaPrivateKey(cert.Certificate)!;
        return PrivateKeyFactory.CreateKey(key.ExportPkcs8PrivateKey());
    }

    /// <summary>ECDSA P-256 with SHA-256 signer credentials over our test certificate (the only scheme the tests use).</summary>
    public static TlsCredentialedSigner Signer(TlsContext context, BcTlsCrypto crypto, DtlsCertificate cert) =>
        new BcDefaultTlsCredentialedSigner(new TlsCryptoParameters(context), crypto, PrivateKey(cert), Certificate(crypto, cert),
            SignatureAndHashAlgorithm.GetInstance(HashAlgorithm.sha256, SignatureAlgorithm.ecdsa));

    public static string Fingerprint(BcCertificate? certificate) =>
        certificate is null || certificate.IsEmpty ? "" : DtlsFingerprint.Compute(certificate.GetCertificateAt(0).GetEncoded(), DtlsFingerprint.Sha256);
}

/// <summary>
/// BouncyCastle DTLS 1.2 client offering use_srtp, with a client certificate. Pinned to DTLS 1.2 (our stack's version),
/// ECDHE-ECDSA AES-128-GCM and one key-exchange group (<paramref name="group"/>, a BouncyCastle NamedGroup code).
/// </summary>
internal sealed class BcSrtpClient(DtlsCertificate certificate, int[] profiles, int group, bool sendCertificate = true)
    : DefaultTlsClient(BcKeys.NewCrypto())
{
    private readonly bool _sendCertificate = sendCertificate;
    private readonly DtlsCertificate _certificate = certificate;
    public string ServerFingerprint { get; private set; } = "";
    public int SelectedProfile { get; private set; } = -1;
    public byte[]? KeyingMaterial { get; private set; }

    protected override ProtocolVersion[] GetSupportedVersions() => ProtocolVersion.DTLSv12.Only();
    protected override int[] GetSupportedCipherSuites() => [CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256];
    protected override IList<int> GetSupportedGroups(IList<int> namedGroupRoles) => [group];

    public override IDictionary<int, byte[]> GetClientExtensions()
    {
        var ext = TlsExtensionsUtilities.EnsureExtensionsInitialised(base.GetClientExtensions());
        TlsSrtpUtilities.AddUseSrtpExtension(ext, new UseSrtpData(profiles, []));
        return ext;
    }

    public override void ProcessServerExtensions(IDictionary<int, byte[]> serverExtensions)
    {
        base.ProcessServerExtensions(serverExtensions);
        var srtp = TlsSrtpUtilities.GetUseSrtpExtension(serverExtensions);
        if (srtp is not null) SelectedProfile = srtp.ProtectionProfiles[0];
    }

    public override TlsAuthentication GetAuthentication() => new Auth(this);

    public override void NotifyHandshakeComplete()
    {
        base.NotifyHandshakeComplete();
        // RFC 5764 4.2: the DTLS-SRTP keying material, 2 * (16 + 14) bytes for the 128-bit profiles.
        KeyingMaterial = m_context.ExportKeyingMaterial(ExporterLabel.dtls_srtp, null, 60);
    }

    private sealed class Auth(BcSrtpClient owner) : TlsAuthentication
    {
        public void NotifyServerCertificate(TlsServerCertificate serverCertificate) =>
            owner.ServerFingerprint = BcKeys.Fingerprint(serverCertificate.Certificate);

        public TlsCredentials GetClientCredentials(CertificateRequest certificateRequest) => !owner._sendCertificate ? null! :
            BcKeys.Signer(owner.m_context, (BcTlsCrypto)owner.Crypto, owner._certificate);
    }
}

/// <summary>
/// BouncyCastle DTLS 1.2 server with use_srtp that requires a client certificate. Pinned to DTLS 1.2, ECDHE-ECDSA
/// AES-128-GCM and one key-exchange group (<paramref name="group"/>, a BouncyCastle NamedGroup code).
/// </summary>
internal sealed class BcSrtpServer(DtlsCertificate certificate, int profile, int group) : DefaultTlsServer(BcKeys.NewCrypto())
{
    public string ClientFingerprint { get; private set; } = "";
    public byte[]? KeyingMaterial { get; private set; }
    private bool _clientOfferedProfile;

    protected override ProtocolVersion[] GetSupportedVersions() => ProtocolVersion.DTLSv12.Only();
    protected override int[] GetSupportedCipherSuites() => [CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256];

    /// <summary>
    /// RFC 8422 5.4: the server picks a group the client offered; BouncyCastle would take the client's first. We take
    /// only the pinned one (none if the client did not offer it), so the test knows which group it exercises.
    /// </summary>
    protected override int SelectECDH(int minimumCurveBits) =>
        m_context.SecurityParameters.ClientSupportedGroups is { } offered && Array.IndexOf(offered, group) >= 0 ? group : -1;

    public override void ProcessClientExtensions(IDictionary<int, byte[]> clientExtensions)
    {
        base.ProcessClientExtensions(clientExtensions);
        var srtp = TlsSrtpUtilities.GetUseSrtpExtension(clientExtensions);
        _clientOfferedProfile = srtp is not null && Array.IndexOf(srtp.ProtectionProfiles, profile) >= 0;
    }

    public override IDictionary<int, byte[]> GetServerExtensions()
    {
        var ext = TlsExtensionsUtilities.EnsureExtensionsInitialised(base.GetServerExtensions());
        if (_clientOfferedProfile) TlsSrtpUtilities.AddUseSrtpExtension(ext, new UseSrtpData([profile], []));
        return ext;
    }

    protected override TlsCredentialedSigner GetECDsaSignerCredentials() => BcKeys.Signer(m_context, (BcTlsCrypto)Crypto, certificate);

    public override CertificateRequest GetCertificateRequest() =>
        new([ClientCertificateType.ecdsa_sign], [SignatureAndHashAlgorithm.GetInstance(HashAlgorithm.sha256, SignatureAlgorithm.ecdsa)], null);

    public override void NotifyClientCertificate(BcCertificate clientCertificate) => ClientFingerprint = BcKeys.Fingerprint(clientCertificate);

    public override void NotifyHandshakeComplete()
    {
        base.NotifyHandshakeComplete();
        KeyingMaterial = m_context.ExportKeyingMaterial(ExporterLabel.dtls_srtp, null, 60);
    }
}
