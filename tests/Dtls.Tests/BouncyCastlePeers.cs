using System.Collections;
using System.Collections.Concurrent;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Tls;
using Org.BouncyCastle.Security;
using BcCertificate = Org.BouncyCastle.Crypto.Tls.Certificate;

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

    public int Receive(byte[] buf, int off, int len, int waitMillis)
    {
        if (Closed) return -1;
        if (!ToBouncyCastle.TryTake(out var d, waitMillis)) return -1;
        var n = Math.Min(len, d.Length);
        Array.Copy(d, 0, buf, off, n);
        return n;
    }

    public void Send(byte[] buf, int off, int len) => FromBouncyCastle.Add(buf.AsSpan(off, len).ToArray());

    public void Close() => Closed = true;
}

internal static class BcKeys
{
    public static BcCertificate Certificate(DtlsCertificate cert) =>
        new([Org.BouncyCastle.Asn1.X509.X509CertificateStructure.GetInstance(cert.Der.ToArray())]);

    public static AsymmetricKeyParameter PrivateKey(DtlsCertificate cert)
    {
        using var key = System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions.GetECDsaPrivateKey(cert.Certificate)!;
        return PrivateKeyFactory.CreateKey(key.ExportPkcs8PrivateKey());
    }

    public static string Fingerprint(BcCertificate? certificate) =>
        certificate is null || certificate.IsEmpty ? "" : DtlsFingerprint.Compute(certificate.GetCertificateAt(0).GetEncoded(), DtlsFingerprint.Sha256);
}

/// <summary>BouncyCastle DTLS 1.2 client offering use_srtp, with a client certificate.</summary>
internal sealed class BcSrtpClient(DtlsCertificate certificate, int[] profiles, bool sendCertificate = true) : DefaultTlsClient
{
    private readonly bool _sendCertificate = sendCertificate;
    private readonly DtlsCertificate _certificate = certificate;
    public string ServerFingerprint { get; private set; } = "";
    public int SelectedProfile { get; private set; } = -1;
    public byte[]? KeyingMaterial { get; private set; }

    public override ProtocolVersion ClientVersion => ProtocolVersion.DTLSv12;
    public override ProtocolVersion MinimumVersion => ProtocolVersion.DTLSv12;
    public override int[] GetCipherSuites() => [CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256];

    public override IDictionary GetClientExtensions()
    {
        var ext = TlsExtensionsUtilities.EnsureExtensionsInitialised(base.GetClientExtensions());
        TlsSRTPUtils.AddUseSrtpExtension(ext, new UseSrtpData(profiles, []));
        return ext;
    }

    public override void ProcessServerExtensions(IDictionary serverExtensions)
    {
        base.ProcessServerExtensions(serverExtensions);
        var srtp = TlsSRTPUtils.GetUseSrtpExtension(serverExtensions);
        if (srtp is not null) SelectedProfile = srtp.ProtectionProfiles[0];
    }

    public override TlsAuthentication GetAuthentication() => new Auth(this);

    public override void NotifyHandshakeComplete()
    {
        base.NotifyHandshakeComplete();
        KeyingMaterial = mContext.ExportKeyingMaterial(ExporterLabel.dtls_srtp, null, 60);
    }

    private sealed class Auth(BcSrtpClient owner) : TlsAuthentication
    {
        public void NotifyServerCertificate(BcCertificate serverCertificate) => owner.ServerFingerprint = BcKeys.Fingerprint(serverCertificate);

        public TlsCredentials GetClientCredentials(CertificateRequest certificateRequest) => !owner._sendCertificate ? null! :
            new DefaultTlsSignerCredentials(owner.mContext, BcKeys.Certificate(owner._certificate), BcKeys.PrivateKey(owner._certificate),
                new SignatureAndHashAlgorithm(HashAlgorithm.sha256, SignatureAlgorithm.ecdsa));
    }
}

/// <summary>BouncyCastle DTLS 1.2 server with use_srtp that requires a client certificate.</summary>
internal sealed class BcSrtpServer(DtlsCertificate certificate, int profile) : DefaultTlsServer
{
    public string ClientFingerprint { get; private set; } = "";
    public byte[]? KeyingMaterial { get; private set; }
    private bool _clientOfferedProfile;

    protected override ProtocolVersion MaximumVersion => ProtocolVersion.DTLSv12;
    protected override ProtocolVersion MinimumVersion => ProtocolVersion.DTLSv12;
    protected override int[] GetCipherSuites() => [CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256];

    public override void ProcessClientExtensions(IDictionary clientExtensions)
    {
        base.ProcessClientExtensions(clientExtensions);
        var srtp = TlsSRTPUtils.GetUseSrtpExtension(clientExtensions);
        _clientOfferedProfile = srtp is not null && Array.IndexOf(srtp.ProtectionProfiles, profile) >= 0;
    }

    public override IDictionary GetServerExtensions()
    {
        var ext = TlsExtensionsUtilities.EnsureExtensionsInitialised(base.GetServerExtensions());
        if (_clientOfferedProfile) TlsSRTPUtils.AddUseSrtpExtension(ext, new UseSrtpData([profile], []));
        return ext;
    }

    protected override TlsSignerCredentials GetECDsaSignerCredentials() =>
        new DefaultTlsSignerCredentials(mContext, BcKeys.Certificate(certificate), BcKeys.PrivateKey(certificate),
            new SignatureAndHashAlgorithm(HashAlgorithm.sha256, SignatureAlgorithm.ecdsa));

    public override CertificateRequest GetCertificateRequest() =>
        new([ClientCertificateType.ecdsa_sign],
            new ArrayList { new SignatureAndHashAlgorithm(HashAlgorithm.sha256, SignatureAlgorithm.ecdsa) }, null);

    public override void NotifyClientCertificate(BcCertificate clientCertificate) => ClientFingerprint = BcKeys.Fingerprint(clientCertificate);

    public override void NotifyHandshakeComplete()
    {
        base.NotifyHandshakeComplete();
        KeyingMaterial = mContext.ExportKeyingMaterial(ExporterLabel.dtls_srtp, null, 60);
    }
}
