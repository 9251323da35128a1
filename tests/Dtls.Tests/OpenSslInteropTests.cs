using System.Net;
using System.Net.Sockets;

namespace Transport.Dtls.Tests;

/// <summary>Handshakes against OpenSSL 3 on 127.0.0.1 in both roles, comparing the DTLS-SRTP keying material it prints.</summary>
public sealed class OpenSslInteropTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    private static DtlsOptions Options(DtlsCertificate ours, DtlsCertificate theirs) => new()
    {
        Certificate = ours,
        RemoteFingerprint = theirs.Sha256Fingerprint,
        SrtpProfiles = [SrtpProtectionProfile.AeadAes128Gcm, SrtpProtectionProfile.Aes128CmHmacSha1_80],
        InitialRetransmitTimeout = TimeSpan.FromMilliseconds(200),
    };

    [Fact]
    public void OurClientCompletesHandshakeWithOpenSslServerAndKeysMatch()
    {
        OpenSslPeer.RequireOpenSsl();
        var port = OpenSslPeer.FreeUdpPort();
        using var openssl = OpenSslPeer.StartServer(TestCertificates.Server, port);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var client = DtlsConnection.CreateClient(Options(TestCertificates.Client, TestCertificates.Server));
        var events = new List<DtlsEvent>();
        // s_server needs a moment to bind; our retransmissions cover a ClientHello sent too early.
        client.Start(TimeSpan.Zero);
        openssl.Drive(client, socket, new IPEndPoint(IPAddress.Loopback, port),
            () => client.State is DtlsState.Failed || (client.State == DtlsState.Connected && openssl.KeyingMaterial is not null), Limit, events);
        Assert.True(client.State == DtlsState.Connected, $"{string.Join(", ", events)}\n{openssl.Output}");
        Assert.Equal(SrtpProtectionProfile.Aes128CmHmacSha1_80, client.SrtpProfile);
        Assert.Equal(openssl.KeyingMaterial, client.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60));
        var keys = client.GetSrtpKeyingMaterial();
        Assert.Equal(openssl.KeyingMaterial.AsSpan(0, 16).ToArray(), keys.LocalKey);
        Assert.Equal(openssl.KeyingMaterial.AsSpan(32, 14).ToArray(), keys.LocalSalt);
    }

    [Fact]
    public void OpenSslClientCompletesHandshakeWithOurServerAndKeysMatch()
    {
        OpenSslPeer.RequireOpenSsl();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        using var openssl = OpenSslPeer.StartClient(TestCertificates.Client, port);
        var server = DtlsConnection.CreateServer(Options(TestCertificates.Server, TestCertificates.Client), new DtlsCookieResponder(), [127, 0, 0, 1]);
        var events = new List<DtlsEvent>();
        openssl.Drive(server, socket, null,
            () => server.State is DtlsState.Failed || (server.State == DtlsState.Connected && openssl.KeyingMaterial is not null), Limit, events);
        Assert.True(server.State == DtlsState.Connected, $"{string.Join(", ", events)}\n{openssl.Output}");
        Assert.Equal(1, server.Counters.HelloVerifyRequestsSent);
        Assert.Equal(SrtpProtectionProfile.Aes128CmHmacSha1_80, server.SrtpProfile);
        Assert.Equal(openssl.KeyingMaterial, server.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60));
        Assert.Equal(TestCertificates.Client.Sha256Fingerprint, server.Event<DtlsConnected>(events)?.RemoteFingerprint);
    }
}

internal static class EventListExtensions
{
    public static T? Event<T>(this DtlsConnection _, List<DtlsEvent> events) where T : DtlsEvent => events.OfType<T>().FirstOrDefault();
}
