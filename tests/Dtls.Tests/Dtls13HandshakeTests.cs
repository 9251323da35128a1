using Transport.TestKit;

namespace Transport.Dtls.Tests;

internal static class Pairs13
{
    public static DtlsOptions V13(DtlsOptions o) => o with { MaxVersion = DtlsVersion.Dtls13 };

    public static (DtlsPeer Client, DtlsPeer Server, TwoPeerDriver Driver) Create(
        Func<DtlsOptions, DtlsOptions>? client = null, Func<DtlsOptions, DtlsOptions>? server = null, VirtualLink? link = null)
    {
        var c = new DtlsPeer(DtlsConnection.CreateClient((client ?? V13)(Pairs.ClientOptions())));
        var s = new DtlsPeer(DtlsConnection.CreateServer((server ?? V13)(Pairs.ServerOptions())));
        var driver = new TwoPeerDriver(c, s, link);
        c.Connection.Start(driver.Now);
        return (c, s, driver);
    }

    public static string Describe(DtlsPeer c, DtlsPeer s) =>
        $"client {c.Connection.State} server {s.Connection.State}: " + string.Join(", ", c.Events.Concat(s.Events));
}

/// <summary>DTLS 1.3 ours with ours on virtual time (RFC 9147).</summary>
public sealed class Dtls13HandshakeTests
{
    [Fact]
    public void HybridHandshakeConnectsWithSrtpKeysAndData()
    {
        var (client, server, driver) = Pairs13.Create();
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)), Pairs13.Describe(client, server));
        foreach (var p in new[] { client, server })
        {
            Assert.Equal(DtlsVersion.Dtls13, p.Connection.Version);
            Assert.Equal(DtlsNamedGroup.X25519MLKEM768, p.Connection.Group);
            Assert.Equal(DtlsCipherSuite.TlsAes128GcmSha256, p.Connection.CipherSuite);
            Assert.Equal(SrtpProtectionProfile.AeadAes128Gcm, p.Connection.SrtpProfile);
        }
        var c = client.Event<DtlsConnected>()!;
        var s = server.Event<DtlsConnected>()!;
        Assert.Equal(TestCertificates.Server.Sha256Fingerprint, c.RemoteFingerprint);
        Assert.Equal(TestCertificates.Client.Sha256Fingerprint, s.RemoteFingerprint);
        Assert.Equal(c.SrtpKeys!.LocalKey, s.SrtpKeys!.RemoteKey);
        Assert.Equal(c.SrtpKeys.RemoteSalt, s.SrtpKeys.LocalSalt);
        Assert.NotEqual(c.SrtpKeys.LocalKey, c.SrtpKeys.RemoteKey);
        Assert.Equal(client.Connection.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60), server.Connection.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 60));
        client.Connection.Send("hello server"u8);
        server.Connection.Send("hello client"u8);
        Assert.True(driver.RunUntil(() => client.Received.Count == 1 && server.Received.Count == 1, TimeSpan.FromSeconds(1)));
        Assert.Equal("hello server"u8.ToArray(), server.Received.Single());
        Assert.Equal("hello client"u8.ToArray(), client.Received.Single());
        // The server acknowledged the client's last flight: no timer left on either side.
        driver.RunUntil(() => false, TimeSpan.FromMilliseconds(100));
        Assert.False(client.Connection.AwaitingAck);
        Assert.Null(client.Connection.PollTimeout());
        Assert.Null(server.Connection.PollTimeout());
    }
}
