using System.Net;
using System.Net.Sockets;

namespace Transport.Dtls.Tests;

/// <summary>Handshakes against OpenSSL 3 on 127.0.0.1 in both roles, comparing the DTLS-SRTP keying material it prints.</summary>
public sealed class OpenSslInteropTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    // max: DTLS 1.2 pins the 1.2 machine; DTLS 1.3 (the default) offers both and must fall back to OpenSSL's 1.2.
    private static DtlsOptions Options(DtlsCertificate ours, DtlsCertificate theirs, DtlsVersion max = DtlsVersion.Dtls12) => new()
    {
        MaxVersion = max,
        Certificate = ours,
        RemoteFingerprint = theirs.Sha256Fingerprint,
        SrtpProfiles = [SrtpProtectionProfile.AeadAes128Gcm, SrtpProtectionProfile.Aes128CmHmacSha1_80],
        InitialRetransmitTimeout = TimeSpan.FromMilliseconds(200),
    };

    [Theory]
    [InlineData(DtlsVersion.Dtls12)]
    [InlineData(DtlsVersion.Dtls13)]
    public void OurClientCompletesHandshakeWithOpenSslServerAndKeysMatch(DtlsVersion max)
    {
        OpenSslPeer.RequireOpenSsl();
        var port = OpenSslPeer.FreeUdpPort();
        using var openssl = OpenSslPeer.StartServer(TestCertificates.Server, port);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        // With 1.3 offered, the hybrid ClientHello spans two datagrams: OpenSSL's 1.2 server reassembles it.
        var client = DtlsConnection.CreateClient(Options(TestCertificates.Client, TestCertificates.Server, max));
        var events = new List<DtlsEvent>();
        // s_server needs a moment to bind; our retransmissions cover a ClientHello sent too early.
        client.Start(TimeSpan.Zero);
        openssl.Drive(client, socket, new IPEndPoint(IPAddress.Loopback, port),
            () => client.State is DtlsState.Failed || (client.State == DtlsState.Connected && openssl.KeyingMaterial is not null), Limit, events);
        Assert.True(client.State == DtlsState.Connected, $"{string.Join(", ", events)}\n{openssl.Output}");
        Assert.Equal(DtlsVersion.Dtls12, client.Version);
        Assert.Equal(SrtpProtectionProfile.Aes128CmHmacSha1_80, client.SrtpProfile);
        Assert.Equal(openssl.KeyingMaterial, client.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60));
        var keys = client.GetSrtpKeyingMaterial();
        Assert.Equal(openssl.KeyingMaterial.AsSpan(0, 16).ToArray(), keys.LocalKey);
        Assert.Equal(openssl.KeyingMaterial.AsSpan(32, 14).ToArray(), keys.LocalSalt);
    }

    [Theory]
    [InlineData(DtlsVersion.Dtls12)]
    [InlineData(DtlsVersion.Dtls13)]
    public void OpenSslClientCompletesHandshakeWithOurServerAndKeysMatch(DtlsVersion max)
    {
        OpenSslPeer.RequireOpenSsl();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        using var openssl = OpenSslPeer.StartClient(TestCertificates.Client, port);
        var server = DtlsConnection.CreateServer(Options(TestCertificates.Server, TestCertificates.Client, max), new DtlsCookieResponder(), [127, 0, 0, 1]);
        var events = new List<DtlsEvent>();
        openssl.Drive(server, socket, null,
            () => server.State is DtlsState.Failed || (server.State == DtlsState.Connected && openssl.KeyingMaterial is not null), Limit, events);
        Assert.True(server.State == DtlsState.Connected, $"{string.Join(", ", events)}\n{openssl.Output}");
        // A 1.3-capable server skips the stateless HelloVerifyRequest (the ClientHello may span several datagrams)
        // and marks its 1.2 ServerHello random with the downgrade sentinel, which OpenSSL's 1.2 client ignores.
        Assert.Equal(max == DtlsVersion.Dtls12 ? 1 : 0, server.Counters.HelloVerifyRequestsSent);
        Assert.Equal(DtlsVersion.Dtls12, server.Version);
        Assert.Equal(SrtpProtectionProfile.Aes128CmHmacSha1_80, server.SrtpProfile);
        Assert.Equal(openssl.KeyingMaterial, server.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60));
        Assert.Equal(TestCertificates.Client.Sha256Fingerprint, server.Event<DtlsConnected>(events)?.RemoteFingerprint);
    }
}

public sealed class OpenSslSuiteTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    public static TheoryData<string, string, DtlsCipherSuite, string, DtlsSignatureScheme> Suites => new()
    {
        { "ecdsa", "ECDHE-ECDSA-AES256-GCM-SHA384", DtlsCipherSuite.EcdheEcdsaWithAes256GcmSha384, "", DtlsSignatureScheme.EcdsaSecp256r1Sha256 },
        { "ecdsa", "ECDHE-ECDSA-CHACHA20-POLY1305", DtlsCipherSuite.EcdheEcdsaWithChaCha20Poly1305Sha256, "", DtlsSignatureScheme.EcdsaSecp256r1Sha256 },
        { "rsa", "ECDHE-RSA-AES128-GCM-SHA256", DtlsCipherSuite.EcdheRsaWithAes128GcmSha256, "", DtlsSignatureScheme.RsaPssRsaeSha256 },
        { "rsa", "ECDHE-RSA-AES128-GCM-SHA256", DtlsCipherSuite.EcdheRsaWithAes128GcmSha256, "-sigalgs RSA+SHA256:ECDSA+SHA256",
            DtlsSignatureScheme.RsaPkcs1Sha256 },
        { "p384", "ECDHE-ECDSA-AES128-GCM-SHA256", DtlsCipherSuite.EcdheEcdsaWithAes128GcmSha256, "-sigalgs ECDSA+SHA384",
            DtlsSignatureScheme.EcdsaSecp384r1Sha384 },
    };

    private static DtlsCertificate Cert(string kind) => kind switch
    {
        "rsa" => TestCertificates.Rsa.Value,
        "p384" => TestCertificates.P384.Value,
        _ => TestCertificates.Server,
    };

    /// <summary>OpenSSL signs RSA ServerKeyExchange with rsa_pss_rsae_sha256 when offered, so this also checks PSS verification.</summary>
    [Theory]
    [MemberData(nameof(Suites))]
    public void OurClientNegotiatesTheSuiteOpenSslServerIsLimitedTo(string certificate, string cipher, DtlsCipherSuite expected, string sigalgs,
        DtlsSignatureScheme scheme)
    {
        OpenSslPeer.RequireOpenSsl();
        var cert = Cert(certificate);
        var port = OpenSslPeer.FreeUdpPort();
        using var openssl = OpenSslPeer.StartServer(cert, port, $"-cipher {cipher} -groups X25519:P-256:P-384 {sigalgs}");
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var client = DtlsConnection.CreateClient(new DtlsOptions
        {
            MaxVersion = DtlsVersion.Dtls12,
            Certificate = TestCertificates.Client,
            RemoteFingerprint = cert.Sha256Fingerprint,
            InitialRetransmitTimeout = TimeSpan.FromMilliseconds(200),
        });
        var events = new List<DtlsEvent>();
        client.Start(TimeSpan.Zero);
        openssl.Drive(client, socket, new IPEndPoint(IPAddress.Loopback, port),
            () => client.State is DtlsState.Failed || (client.State == DtlsState.Connected && openssl.KeyingMaterial is not null), Limit, events);
        Assert.True(client.State == DtlsState.Connected, $"{string.Join(", ", events)}\n{openssl.Output}");
        Assert.Equal(expected, client.CipherSuite);
        Assert.Equal(scheme, client.PeerSignatureScheme);
        Assert.Equal(openssl.KeyingMaterial, client.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60));
    }

    [Theory]
    [InlineData("ECDHE-ECDSA-AES256-GCM-SHA384", "P-384", DtlsCipherSuite.EcdheEcdsaWithAes256GcmSha384, DtlsNamedGroup.Secp384r1)]
    [InlineData("ECDHE-ECDSA-CHACHA20-POLY1305", "X25519", DtlsCipherSuite.EcdheEcdsaWithChaCha20Poly1305Sha256, DtlsNamedGroup.X25519)]
    public void OpenSslClientLimitedToASuiteAndGroupConnectsToOurServer(string cipher, string group, DtlsCipherSuite suite, DtlsNamedGroup named)
    {
        OpenSslPeer.RequireOpenSsl();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        using var openssl = OpenSslPeer.StartClient(TestCertificates.Client, port, $"-cipher {cipher} -groups {group}:P-256");
        var server = DtlsConnection.CreateServer(new DtlsOptions
        {
            MaxVersion = DtlsVersion.Dtls12,
            Certificate = TestCertificates.Server,
            RemoteFingerprint = TestCertificates.Client.Sha256Fingerprint,
            // TLS 1.2 (RFC 8422 section 2): the client's supported_groups also bounds the curve of our P-256
            // certificate, so OpenSSL is given P-256 too, and our server prefers the group under test.
            Groups = [named],
        }, new DtlsCookieResponder(), [127, 0, 0, 1]);
        var events = new List<DtlsEvent>();
        openssl.Drive(server, socket, null,
            () => server.State is DtlsState.Failed || (server.State == DtlsState.Connected && openssl.KeyingMaterial is not null), Limit, events);
        Assert.True(server.State == DtlsState.Connected, $"{string.Join(", ", events)}\n{openssl.Output}");
        Assert.Equal(suite, server.CipherSuite);
        Assert.Equal(named, server.Group);
        Assert.Equal(openssl.KeyingMaterial, server.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60));
    }

    /// <summary>
    /// Our server at MTU 300 fragments flight 4 (certificate and key exchange) and OpenSSL reassembles it; OpenSSL
    /// runs at MTU 350 (its ClientHello must still fit: a stateless cookie check, ours as OpenSSL's own
    /// DTLSv1_listen, needs an unfragmented ClientHello).
    /// </summary>
    [Fact]
    public void OpenSslReassemblesOurFlightFragmentedToASmallMtu()
    {
        OpenSslPeer.RequireOpenSsl();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        using var openssl = OpenSslPeer.StartClient(TestCertificates.Client, port, "-mtu 350");
        var server = DtlsConnection.CreateServer(new DtlsOptions
        {
            MaxVersion = DtlsVersion.Dtls12,
            Certificate = TestCertificates.Server,
            RemoteFingerprint = TestCertificates.Client.Sha256Fingerprint,
            Mtu = 300,
        }, new DtlsCookieResponder(), [127, 0, 0, 1]);
        var events = new List<DtlsEvent>();
        var largest = 0;
        openssl.Drive(server, socket, null,
            () => server.State is DtlsState.Failed || (server.State == DtlsState.Connected && openssl.KeyingMaterial is not null), Limit, events,
            onSend: n => largest = Math.Max(largest, n));
        Assert.InRange(largest, 1, 300);
        Assert.True(server.State == DtlsState.Connected, $"{string.Join(", ", events)}\n{openssl.Output}");
        Assert.Equal(openssl.KeyingMaterial, server.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60));
    }

    [Theory]
    [InlineData(DtlsFingerprint.Sha1, "-sha1")]
    [InlineData(DtlsFingerprint.Sha256, "-sha256")]
    [InlineData(DtlsFingerprint.Sha384, "-sha384")]
    [InlineData(DtlsFingerprint.Sha512, "-sha512")]
    public void FingerprintEqualsOpenSslX509Fingerprint(string algorithm, string flag)
    {
        OpenSslPeer.RequireOpenSsl();
        var dir = Directory.CreateTempSubdirectory("dtls-fp-").FullName;
        try
        {
            var pem = Path.Combine(dir, "c.pem");
            File.WriteAllText(pem, TestCertificates.Client.Certificate.ExportCertificatePem());
            var output = OpenSslPeer.Run($"x509 -noout -fingerprint {flag} -in {pem}");
            var expected = output.Trim().Split('=', 2)[1];
            Assert.Equal(expected, DtlsFingerprint.Compute(TestCertificates.Client.Der.Span, algorithm));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

internal static class EventListExtensions
{
    public static T? Event<T>(this DtlsConnection _, List<DtlsEvent> events) where T : DtlsEvent => events.OfType<T>().FirstOrDefault();
}
