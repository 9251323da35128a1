using Transport.Dtls;
using Transport.TestKit;

namespace Transport.Fuzz;

/// <summary>DTLS: a fresh server (with its cookie responder), both roles mid-handshake, and a connected pair.</summary>
public static class DtlsTargets
{
    private static readonly DateTimeOffset NotBefore = new(2020, 1, 1, 0, 0, 0, TimeSpan.Zero);
    internal static readonly DtlsCertificate ClientCertificate = DtlsCertificate.CreateSelfSigned(NotBefore, NotBefore.AddYears(50), "CN=client");
    internal static readonly DtlsCertificate ServerCertificate = DtlsCertificate.CreateSelfSigned(NotBefore, NotBefore.AddYears(50), "CN=server");
    private static readonly byte[] CookieSecret = new byte[32];
    private static readonly byte[] ClientAddress = [10, 0, 0, 1, 0x03, 0xE8];

    /// <summary>The targets.</summary>
    public static IEnumerable<FuzzTarget> All =>
    [
        new("dtls-server-fresh", ServerFresh, "the stateless cookie responder, then a new server connection, receive the datagrams"),
        new("dtls-handshake", MidHandshake,
            "a real handshake interrupted after N steps (byte 0 & 15) with the datagrams injected into the client (byte 0 bit 7 clear) or the server; it " +
            "must end Connected or Failed with an event, never hang"),
        new("dtls-connected", Connected, "a connected pair; the server receives the datagrams; then application data must still flow both ways"),
    ];

    internal static DtlsOptions ClientOptions =>
        new() { Certificate = ClientCertificate, RemoteFingerprint = ServerCertificate.Sha256Fingerprint, HandshakeTimeout = TimeSpan.FromSeconds(20) };
    internal static DtlsOptions ServerOptions =>
        new() { Certificate = ServerCertificate, RemoteFingerprint = ClientCertificate.Sha256Fingerprint, HandshakeTimeout = TimeSpan.FromSeconds(20) };

    internal sealed class Peer(DtlsConnection connection) : IVirtualPeer
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
            for (var i = 0; i < 10_000 && Connection.TryPollEvent(out var e); i++)
            {
                if (Events.Count < 1000) Events.Add(e);
                if (e is DtlsApplicationData d && Received.Count < 1000) Received.Add(d.Data.ToArray());
            }
        }
    }

    /// <summary>What a server endpoint does with datagrams from a new address: the cookie exchange, then a connection.</summary>
    public static void ServerFresh(ReadOnlySpan<byte> data)
    {
        var cookies = new DtlsCookieResponder(CookieSecret);
        var buffer = new byte[2048];
        using var server = DtlsConnection.CreateServer(ServerOptions, cookies, ClientAddress);
        var peer = new Peer(server);
        var now = TimeSpan.Zero;
        foreach (var (offset, length) in FuzzRecords.Split(data))
        {
            var d = data.Slice(offset, length);
            cookies.Process(ClientAddress, d, buffer, out _);
            peer.HandleDatagram(d, now);
            for (var i = 0; i < 1000 && server.TryPollTransmit(buffer, out _); i++) { }
            now += TimeSpan.FromMilliseconds(10);
            if (server.PollTimeout() is { } t && t <= now) peer.HandleTimeout(now);
        }
        peer.HandleTimeout(now + TimeSpan.FromSeconds(60));
        for (var i = 0; i < 1000 && server.TryPollTransmit(buffer, out _); i++) { }
    }

    private static (Peer Client, Peer Server, TwoPeerDriver Driver) Pair()
    {
        var c = new Peer(DtlsConnection.CreateClient(ClientOptions));
        var s = new Peer(DtlsConnection.CreateServer(ServerOptions, new DtlsCookieResponder(CookieSecret), ClientAddress));
        var driver = new TwoPeerDriver(c, s);
        c.Connection.Start(driver.Now);
        return (c, s, driver);
    }

    /// <summary>
    /// A handshake cut after N driver steps (N = byte 0 &amp; 15: each step delivers what is due at one instant); the datagrams go to the client or
    /// the server (byte 0 bit 7); then the handshake runs on. Garbage may make it fail (epoch-0 records are not
    /// authenticated), but it must end: Connected, or Failed with a reason, within the handshake timeout.
    /// </summary>
    public static void MidHandshake(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        var flags = data[0];
        var (c, s, driver) = Pair();
        using var _c = c.Connection;
        using var _s = s.Connection;
        var steps = flags & 15;
        for (var i = 0; i < steps && driver.Progress(driver.Now + TimeSpan.FromSeconds(5)); i++) { }
        var target = (flags & 0x80) != 0 ? s : c;
        var body = data[1..];
        foreach (var (offset, length) in FuzzRecords.Split(body)) target.HandleDatagram(body.Slice(offset, length), driver.Now);
        driver.RunUntil(() => Done(c) && Done(s), TimeSpan.FromSeconds(60));
        foreach (var p in new[] { c, s })
        {
            if (p.Connection.State == DtlsState.Handshaking)
                throw new FuzzPropertyException($"{(p == c ? "client" : "server")} still handshaking 60 s after the input");
            if (p.Connection.State == DtlsState.Failed && !p.Events.OfType<DtlsFailed>().Any())
                throw new FuzzPropertyException("failed without a DtlsFailed event");
        }
    }

    private static bool Done(Peer p) => p.Connection.State is not (DtlsState.Handshaking or DtlsState.New);

    /// <summary>A connected pair; the server receives the datagrams; then application data must flow both ways.</summary>
    public static void Connected(ReadOnlySpan<byte> data)
    {
        var datagrams = new List<byte[]>();
        foreach (var (offset, length) in FuzzRecords.Split(data)) datagrams.Add(data.Slice(offset, length).ToArray());
        ConnectedWith(datagrams, stepEvery: int.MaxValue);
    }

    /// <summary>
    /// The connected target over any number of datagrams (the soak test sends 100,000); time advances 5 ms every <paramref name="stepEvery"/>.
    /// </summary>
    public static void ConnectedWith(IEnumerable<byte[]> datagrams, int stepEvery)
    {
        var (c, s, driver) = Pair();
        using var _c = c.Connection;
        using var _s = s.Connection;
        if (!driver.RunUntil(() => c.Connection.State == DtlsState.Connected && s.Connection.State == DtlsState.Connected, TimeSpan.FromSeconds(10)))
            throw new FuzzPropertyException("the pair did not connect before the input");
        var n = 0;
        foreach (var d in datagrams)
        {
            s.HandleDatagram(d, driver.Now);
            if (++n % stepEvery == 0) driver.RunFor(TimeSpan.FromMilliseconds(5));
        }
        driver.RunFor(TimeSpan.FromMilliseconds(200));
        if (c.Connection.State != DtlsState.Connected || s.Connection.State != DtlsState.Connected)
            throw new FuzzPropertyException($"garbage took the connection down: client {c.Connection.State}, server {s.Connection.State} " +
                $"({string.Join(", ", s.Events.OfType<DtlsFailed>())})");
        c.Received.Clear();
        s.Received.Clear();
        c.Connection.Send("ping"u8);
        s.Connection.Send("pong"u8);
        driver.RunFor(TimeSpan.FromMilliseconds(100));
        if (!s.Received.Any(r => r.AsSpan().SequenceEqual("ping"u8)) || !c.Received.Any(r => r.AsSpan().SequenceEqual("pong"u8)))
            throw new FuzzPropertyException("application data no longer flows after the input");
    }
}
