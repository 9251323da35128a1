using System.Diagnostics;
using Org.BouncyCastle.Tls;
using BcSrtp = Org.BouncyCastle.Tls.SrtpProtectionProfile;

namespace Transport.Dtls.Tests;

/// <summary>
/// Handshakes against BouncyCastle's DTLS 1.2 (an independent implementation) in both roles: ECDHE-ECDSA AES-128-GCM
/// over P-256 (the group the 1.8 line could negotiate) and over X25519 (BouncyCastle 2.x has it in its TLS layer).
/// </summary>
public sealed class BouncyCastleInteropTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    /// <summary>Moves datagrams between our machine (on real elapsed time) and BouncyCastle until <paramref name="done"/>.</summary>
    private static void Pump(DtlsConnection ours, QueueDatagramTransport bridge, Func<bool> done, List<DtlsEvent> events)
    {
        var clock = Stopwatch.StartNew();
        var buffer = new byte[2048];
        while (!done())
        {
            Assert.True(clock.Elapsed < Limit, $"No result within {Limit}; our state {ours.State}; events: {string.Join(", ", events)}");
            if (bridge.FromBouncyCastle.TryTake(out var d, 5)) ours.HandleDatagram(d, clock.Elapsed);
            if (ours.PollTimeout() is { } t && t <= clock.Elapsed) ours.HandleTimeout(clock.Elapsed);
            while (ours.TryPollTransmit(buffer, out var n)) bridge.ToBouncyCastle.Add(buffer.AsSpan(0, n).ToArray());
            while (ours.TryPollEvent(out var e)) events.Add(e);
        }
    }

    [Theory]
    [InlineData(DtlsNamedGroup.Secp256r1)]
    [InlineData(DtlsNamedGroup.X25519)]
    public void OurClientCompletesHandshakeWithBouncyCastleServerAndKeysMatch(DtlsNamedGroup group)
    {
        var bridge = new QueueDatagramTransport();
        // Our group code points are the IANA ones, as are BouncyCastle's NamedGroup constants.
        var bcServer = new BcSrtpServer(TestCertificates.Server, BcSrtp.SRTP_AES128_CM_HMAC_SHA1_80, (int)group);
        var client = DtlsConnection.CreateClient(new DtlsOptions
        {
            MaxVersion = DtlsVersion.Dtls12,
            Certificate = TestCertificates.Client,
            RemoteFingerprint = TestCertificates.Server.Sha256Fingerprint,
            SrtpProfiles = [Dtls.SrtpProtectionProfile.AeadAes128Gcm, Dtls.SrtpProtectionProfile.Aes128CmHmacSha1_80],
            InitialRetransmitTimeout = TimeSpan.FromMilliseconds(200),
        });
        DtlsTransport? bcTransport = null;
        var bcThread = Task.Run(() => bcTransport = new DtlsServerProtocol().Accept(bcServer, bridge));
        var events = new List<DtlsEvent>();
        try
        {
            client.Start(TimeSpan.Zero);
            Pump(client, bridge, () => client.State != DtlsState.Handshaking && client.State != DtlsState.New && bcThread.IsCompleted, events);
            Assert.True(bcThread.Wait(Limit));
            Assert.Equal(DtlsState.Connected, client.State);
            Assert.Equal(DtlsCipherSuite.EcdheEcdsaWithAes128GcmSha256, client.CipherSuite);
            Assert.Equal(group, client.Group);
            Assert.Equal(Dtls.SrtpProtectionProfile.Aes128CmHmacSha1_80, client.SrtpProfile);
            Assert.Equal(bcServer.KeyingMaterial, client.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60));
            Assert.Equal(TestCertificates.Client.Sha256Fingerprint, bcServer.ClientFingerprint);

            // Application data both ways.
            client.Send("to bc"u8);
            var buffer = new byte[2048];
            while (client.TryPollTransmit(buffer, out var n)) bridge.ToBouncyCastle.Add(buffer.AsSpan(0, n).ToArray());
            var received = new byte[100];
            var got = bcTransport!.Receive(received, 0, received.Length, 5000);
            Assert.Equal("to bc"u8.ToArray(), received.AsSpan(0, got).ToArray());
            bcTransport.Send("from bc"u8.ToArray(), 0, 7);
            Pump(client, bridge, () => events.OfType<DtlsApplicationData>().Any(), events);
            Assert.Equal("from bc"u8.ToArray(), events.OfType<DtlsApplicationData>().Single().Data.ToArray());
        }
        finally
        {
            bridge.Close();
            bcThread.Wait(Limit);
        }
    }

    [Theory]
    [InlineData(DtlsNamedGroup.Secp256r1)]
    [InlineData(DtlsNamedGroup.X25519)]
    public void BouncyCastleClientCompletesHandshakeWithOurServerAndKeysMatch(DtlsNamedGroup group)
    {
        var bridge = new QueueDatagramTransport();
        var bcClient = new BcSrtpClient(TestCertificates.Client, [BcSrtp.SRTP_AES128_CM_HMAC_SHA1_80, BcSrtp.SRTP_AES128_CM_HMAC_SHA1_32], (int)group);
        var server = DtlsConnection.CreateServer(new DtlsOptions
        {
            MaxVersion = DtlsVersion.Dtls12,
            Certificate = TestCertificates.Server,
            RemoteFingerprint = TestCertificates.Client.Sha256Fingerprint,
            InitialRetransmitTimeout = TimeSpan.FromMilliseconds(200),
        }, new DtlsCookieResponder(), [127, 0, 0, 1, 0x30, 0x39]);
        DtlsTransport? bcTransport = null;
        var bcThread = Task.Run(() => bcTransport = new DtlsClientProtocol().Connect(bcClient, bridge));
        var events = new List<DtlsEvent>();
        try
        {
            Pump(server, bridge, () => server.State is DtlsState.Connected or DtlsState.Failed or DtlsState.Closed && bcThread.IsCompleted, events);
            Assert.True(bcThread.Wait(Limit));
            Assert.Equal(DtlsState.Connected, server.State);
            Assert.Equal(DtlsCipherSuite.EcdheEcdsaWithAes128GcmSha256, server.CipherSuite);
            Assert.Equal(group, server.Group);
            Assert.Equal(1, server.Counters.HelloVerifyRequestsSent);
            Assert.Equal(BcSrtp.SRTP_AES128_CM_HMAC_SHA1_80, bcClient.SelectedProfile);
            Assert.Equal(bcClient.KeyingMaterial, server.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60));
            Assert.Equal(TestCertificates.Server.Sha256Fingerprint, bcClient.ServerFingerprint);
            var keys = server.GetSrtpKeyingMaterial();
            // RFC 5764 4.2: the server's local key is the second 16 bytes of the export.
            Assert.Equal(bcClient.KeyingMaterial.AsSpan(16, 16).ToArray(), keys.LocalKey);

            bcTransport!.Send("from bc"u8.ToArray(), 0, 7);
            Pump(server, bridge, () => events.OfType<DtlsApplicationData>().Any(), events);
            Assert.Equal("from bc"u8.ToArray(), events.OfType<DtlsApplicationData>().Single().Data.ToArray());
        }
        finally
        {
            bridge.Close();
            bcThread.Wait(Limit);
        }
    }

    [Fact]
    public void OurServerRejectsBouncyCastleClientWithoutCertificate()
    {
        var bridge = new QueueDatagramTransport();
        var bcClient = new BcSrtpClient(TestCertificates.Client, [BcSrtp.SRTP_AES128_CM_HMAC_SHA1_80], NamedGroup.secp256r1, sendCertificate: false);
        var server = DtlsConnection.CreateServer(new DtlsOptions
        {
            MaxVersion = DtlsVersion.Dtls12,
            Certificate = TestCertificates.Server,
            InitialRetransmitTimeout = TimeSpan.FromMilliseconds(200),
        }, new DtlsCookieResponder(), [127, 0, 0, 1, 0x30, 0x39]);
        var bcThread = Task.Run(() => new DtlsClientProtocol().Connect(bcClient, bridge));
        var events = new List<DtlsEvent>();
        try
        {
            Pump(server, bridge, () => server.State is DtlsState.Connected or DtlsState.Failed && bcThread.IsCompleted, events);
            Assert.Equal(DtlsState.Failed, server.State);
            var failed = events.OfType<DtlsFailed>().Single();
            Assert.Equal(DtlsStateReason.BadCertificate, failed.Reason);
            Assert.Equal(DtlsAlertDescription.HandshakeFailure, failed.Alert);
            // BouncyCastle 2.x reports an alert it received from the peer (ours) as TlsFatalAlertReceived with that code
            // (TlsFatalAlert is for one it raised itself), so this also shows the alert reached it.
            var error = Assert.IsType<TlsFatalAlertReceived>(bcThread.Exception?.InnerException);
            Assert.Equal(AlertDescription.handshake_failure, error.AlertDescription);
        }
        finally
        {
            bridge.Close();
            try { bcThread.Wait(Limit); } catch (AggregateException) { }
        }
    }
}
