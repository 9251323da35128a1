using Transport.TestKit;

namespace Transport.Dtls.Tests;

/// <summary>Certificates generated once per test run: generation is slow and reuse is the intended use.</summary>
internal static class TestCertificates
{
    private static readonly DateTimeOffset NotBefore = DateTimeOffset.UtcNow.AddDays(-1);
    public static readonly DtlsCertificate Client = DtlsCertificate.CreateSelfSigned(NotBefore, NotBefore.AddDays(30), "CN=client");
    public static readonly DtlsCertificate Server = DtlsCertificate.CreateSelfSigned(NotBefore, NotBefore.AddDays(30), "CN=server");
    public static readonly Lazy<DtlsCertificate> Rsa = new(() => DtlsCertificate.CreateSelfSignedRsa(NotBefore, NotBefore.AddDays(30)));
    public static readonly Lazy<DtlsCertificate> P384 = new(() =>
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP384);
        return DtlsCertificate.CreateSelfSigned(key, NotBefore, NotBefore.AddDays(30), "CN=p384");
    });
}

/// <summary>A DTLS connection as the two-peer driver sees it, collecting its events.</summary>
internal sealed class DtlsPeer(DtlsConnection connection) : IVirtualPeer
{
    public DtlsConnection Connection { get; } = connection;
    public List<DtlsEvent> Events { get; } = new();
    public List<byte[]> Received { get; } = new();

    public void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now) { Connection.HandleDatagram(datagram, now); Drain(); }
    public void HandleTimeout(TimeSpan now) { Connection.HandleTimeout(now); Drain(); }
    public bool TryPollTransmit(Span<byte> destination, out int written) => Connection.TryPollTransmit(destination, out written);
    public TimeSpan? PollTimeout() => Connection.PollTimeout();

    public void Drain()
    {
        while (Connection.TryPollEvent(out var e))
        {
            Events.Add(e);
            if (e is DtlsApplicationData d) Received.Add(d.Data.ToArray());
        }
    }

    public T? Event<T>() where T : DtlsEvent => Events.OfType<T>().FirstOrDefault();
}

internal static class Pairs
{
    public static DtlsOptions ClientOptions(Func<DtlsOptions, DtlsOptions>? tweak = null)
    {
        // The DTLS 1.2 tests pin 1.2 (DTLS 1.3 is the default; its tests say MaxVersion = Dtls13 themselves).
        var o = new DtlsOptions
        {
            Certificate = TestCertificates.Client,
            RemoteFingerprint = TestCertificates.Server.Sha256Fingerprint,
            MaxVersion = DtlsVersion.Dtls12
        };
        return tweak is null ? o : tweak(o);
    }

    public static DtlsOptions ServerOptions(Func<DtlsOptions, DtlsOptions>? tweak = null)
    {
        var o = new DtlsOptions
        {
            Certificate = TestCertificates.Server,
            RemoteFingerprint = TestCertificates.Client.Sha256Fingerprint,
            MaxVersion = DtlsVersion.Dtls12
        };
        return tweak is null ? o : tweak(o);
    }

    /// <summary>Client is A, server is B (with a cookie responder).</summary>
    public static (DtlsPeer Client, DtlsPeer Server, TwoPeerDriver Driver) Create(DtlsOptions? client = null, DtlsOptions? server = null,
        VirtualLink? link = null)
    {
        var c = new DtlsPeer(DtlsConnection.CreateClient(client ?? ClientOptions()));
        var s = new DtlsPeer(DtlsConnection.CreateServer(server ?? ServerOptions(), new DtlsCookieResponder(), [127, 0, 0, 1, 0x13, 0x88]));
        var driver = new TwoPeerDriver(c, s, link);
        c.Connection.Start(driver.Now);
        return (c, s, driver);
    }

    public static bool BothConnected(DtlsPeer a, DtlsPeer b) =>
        a.Connection.State == DtlsState.Connected && b.Connection.State == DtlsState.Connected;
}
