using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Transport.Ice;
using Transport.Ice.Turn;
using Transport.Streaming.Io;
using Transport.TestKit;

namespace Transport.Streaming.Tests.Io;

/// <summary>
/// The driver's connections to TURN servers (RFC 8656 section 3.1): opened by a peer's first stream transmit, frames
/// both ways (split with System.IO.Pipelines), the peer told when the connection closes and why, a bounded send queue,
/// and the certificate checks of <c>turns:</c> against coturn with a certificate the test makes.
/// </summary>
public sealed class TurnTcpDriverTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task FramesGoOnOneConnectionBothWaysAndThePeerIsToldWhenTheServerCloses()
    {
        using var listener = Listen();
        await using var driver = new UdpDriver();
        var local = driver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var peer = new StreamPeer(local, (IPEndPoint)listener.LocalEndPoint!);
        await using var handle = driver.Register(peer);
        await handle.InvokeAsync(_ => { for (byte i = 1; i <= 3; i++) peer.Queue(Stun(i)); });

        using var accepted = await listener.AcceptAsync().WaitAsync(Patience);
        var received = new byte[60];
        await ReadExactly(accepted, received);
        for (var i = 0; i < 3; i++) Assert.Equal((byte)(i + 1), received[20 * i + 8]);   // in order, one after the other

        // A STUN message and a ChannelData message (3 bytes of data, padded to 4 over a stream), split mid-frame.
        var back = Stun(9).Concat(new byte[] { 0x40, 0x00, 0x00, 0x03, 1, 2, 3, 0 }).ToArray();
        await accepted.SendAsync(back.AsMemory(0, 13));
        await Task.Delay(50);
        await accepted.SendAsync(back.AsMemory(13));
        await WaitUntil(() => peer.Frames.Count == 2);
        Assert.True(peer.Frames.TryDequeue(out var first));
        Assert.Equal(20, first.Length);
        Assert.Equal(9, first[8]);
        Assert.True(peer.Frames.TryDequeue(out var second));
        Assert.Equal(8, second.Length);
        Assert.Equal(1, driver.TurnConnectionCount);

        accepted.Shutdown(SocketShutdown.Both);
        accepted.Close();
        var closed = await peer.Closed.Task.WaitAsync(Patience);
        Assert.Equal("the server closed the connection", closed);
        await WaitUntil(() => driver.TurnConnectionCount == 0);
        Assert.Equal(1, driver.Counters.TurnTcpOpened);
        Assert.Equal(1, driver.Counters.TurnTcpClosed);
        Assert.Equal(3, driver.Counters.TurnTcpFramesSent);
        Assert.Equal(2, driver.Counters.TurnTcpFramesReceived);

        // A transmit after the close opens a new connection (a new allocation's).
        await handle.InvokeAsync(_ => peer.Queue(Stun(4)));
        using var again = await listener.AcceptAsync().WaitAsync(Patience);
        await ReadExactly(again, received.AsMemory(0, 20));
        Assert.Equal(4, received[8]);
    }

    [Fact]
    public async Task BytesThatAreNeitherStunNorChannelDataCloseTheConnectionWithTheReason()
    {
        using var listener = Listen();
        await using var driver = new UdpDriver();
        var local = driver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var peer = new StreamPeer(local, (IPEndPoint)listener.LocalEndPoint!);
        await using var handle = driver.Register(peer);
        await handle.InvokeAsync(_ => peer.Queue(Stun(1)));
        using var accepted = await listener.AcceptAsync().WaitAsync(Patience);
        await accepted.SendAsync(new byte[] { 0xC0, 0, 0, 4, 1, 2, 3, 4 });   // first two bits 11: no TURN frame

        var reason = await peer.Closed.Task.WaitAsync(Patience);
        Assert.Contains("neither STUN nor ChannelData", reason, StringComparison.Ordinal);
        Assert.Equal(1, driver.Counters.TurnTcpClosedInvalid);
        Assert.Empty(peer.Frames);
    }

    [Fact]
    public async Task AServerThatRefusesTheConnectionIsReportedToThePeer()
    {
        IPEndPoint nobody;
        using (var probe = Listen()) nobody = (IPEndPoint)probe.LocalEndPoint!;   // closed again: connecting there is refused
        await using var driver = new UdpDriver();
        var local = driver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var peer = new StreamPeer(local, nobody);
        await using var handle = driver.Register(peer);
        await handle.InvokeAsync(_ => peer.Queue(Stun(1)));

        var reason = await peer.Closed.Task.WaitAsync(Patience);
        Assert.Contains("ConnectionRefused", reason, StringComparison.Ordinal);
        Assert.Equal(1, driver.Counters.TurnTcpConnectFailed);
        Assert.Equal(0, driver.Counters.TurnTcpOpened);
        await WaitUntil(() => driver.TurnConnectionCount == 0);
    }

    [Fact]
    public async Task TransmitsPastTheSendQueueBoundAreDroppedAndCountedWhileTheServerDoesNotRead()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4);
        const int bound = 64 * 1024;
        await using var driver = new UdpDriver(options: new UdpDriverOptions { TurnTcp = new TurnTcpOptions { MaxSendQueueBytes = bound } });
        var local = driver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var peer = new StreamPeer(local, (IPEndPoint)listener.LocalEndPoint!);
        await using var handle = driver.Register(peer);
        var frame = ChannelData(1200);
        await handle.InvokeAsync(_ => peer.Queue(frame));
        using var accepted = await listener.AcceptAsync().WaitAsync(Patience);   // and never read from
        await WaitUntil(() => driver.Counters.TurnTcpOpened == 1);

        // 48 KB per round, less than the bound: nothing is dropped while the socket takes it; the kernel's buffers fill
        // within a few MB, then the queue, then transmits are dropped.
        const int perRound = 40;
        var rounds = 0;
        // While the socket takes the frames the queue drains between rounds; once it does not within a second the
        // kernel's buffers are full, and the rounds go on without waiting.
        var blocked = false;
        while (driver.Counters.TurnTcpDroppedQueueFull == 0 && rounds++ < 1000)
        {
            await handle.InvokeAsync(_ => { for (var i = 0; i < perRound; i++) peer.Queue(frame); });
            var total = (long)rounds * perRound + 1;
            var drained = DateTime.UtcNow + TimeSpan.FromSeconds(1);
            while (!blocked && driver.Counters.TurnTcpFramesSent < total)
            {
                if (DateTime.UtcNow > drained) blocked = true;
                else await Task.Delay(5);
            }
        }
        Assert.True(blocked, "the socket never stopped taking frames");
        Assert.True(driver.Counters.TurnTcpDroppedQueueFull > 0, $"nothing dropped after {rounds} rounds");
        var sent = driver.Counters.TurnTcpFramesSent;
        var dropped = driver.Counters.TurnTcpDroppedQueueFull;
        Assert.True(sent * frame.Length > bound, $"only {sent} frames went to the socket before the first drop");
        // What is held is the bound at most: everything beyond was either written to the socket or dropped.
        var queued = (long)rounds * perRound + 1 - sent - dropped;
        Assert.InRange(queued * frame.Length, 0, bound);
        Assert.False(peer.Closed.Task.IsCompleted);   // backpressure drops, it does not close
        Assert.Equal(1, driver.Counters.TurnTcpOpened);
    }

    [Fact]
    public async Task TurnsAcceptsTheServerOnlyWhenItsCertificateChecksOut()
    {
        using var certificate = OpenSslCertificate.Create("turn.test", "DNS:turn.test", "IP:127.0.0.1");
        using var coturn = CoturnServer.StartTls(certificate.CertificatePath, certificate.KeyPath);
        var turns = TurnServerConfig.Parse($"turns:127.0.0.1:{coturn.TlsPort}", CoturnServer.User, CoturnServer.Password);
        var roots = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection(certificate.Certificate);
        var pin = Convert.ToHexString(SHA256.HashData(certificate.Certificate.RawData));

        // The system's roots do not know a self-signed certificate: refused, and the reason says so.
        var (e1, d1) = await GatherAsync(turns, new TurnTlsOptions());
        var refused = Assert.IsType<IceRelayErrorEvent>(e1);
        Assert.Contains("certificate was refused", refused.Reason, StringComparison.Ordinal);
        Assert.Contains("RemoteCertificateChainErrors", refused.Reason, StringComparison.Ordinal);
        Assert.Equal(1, d1.TurnTlsCertificateRefused);

        // Trusted as a root, and the URI's address is in the certificate: allocated over TLS.
        var (e2, d2) = await GatherAsync(turns, new TurnTlsOptions { TrustedRoots = roots });
        var relayed = Assert.IsType<IceCandidateGatheredEvent>(e2);
        Assert.Equal(IceCandidateType.Relayed, relayed.Candidate.Type);
        Assert.InRange(relayed.Candidate.Address.Port, coturn.MinRelayPort, coturn.MaxRelayPort);
        Assert.Equal(1, d2.TurnTcpOpened);

        // Trusted, but the name checked (a server name the certificate does not carry) does not match: refused.
        var (e3, _) = await GatherAsync(turns with { ServerName = "other.test" }, new TurnTlsOptions { TrustedRoots = roots });
        Assert.Contains("RemoteCertificateNameMismatch", Assert.IsType<IceRelayErrorEvent>(e3).Reason, StringComparison.Ordinal);

        // Pinned: accepted as it is, whatever the name; a wrong pin is refused.
        var (e4, _) = await GatherAsync(turns with { ServerName = "other.test" }, new TurnTlsOptions { PinnedCertificateSha256 = [pin] });
        Assert.Equal(IceCandidateType.Relayed, Assert.IsType<IceCandidateGatheredEvent>(e4).Candidate.Type);
        var (e5, _) = await GatherAsync(turns, new TurnTlsOptions { PinnedCertificateSha256 = [new string('0', 64)] });
        Assert.Contains("is not pinned", Assert.IsType<IceRelayErrorEvent>(e5).Reason, StringComparison.Ordinal);

        // An application callback that throws refuses the certificate with the reason; nothing escapes.
        var (e6, d6) = await GatherAsync(turns,
            new TurnTlsOptions { RemoteCertificateValidation = (_, _, _, _) => throw new InvalidOperationException("boom") });
        Assert.Contains("the validation callback threw InvalidOperationException: boom", Assert.IsType<IceRelayErrorEvent>(e6).Reason,
            StringComparison.Ordinal);
        Assert.Equal(1, d6.TurnTlsCertificateRefused);
    }

    // Relay-only gathering over turns: the relayed candidate or the relay's error, whichever comes first.
    private static async Task<(IceEvent Outcome, UdpDriverCounters Counters)> GatherAsync(TurnServerConfig turns, TurnTlsOptions tls)
    {
        await using var driver = new UdpDriver(options: new UdpDriverOptions { TurnTcp = new TurnTcpOptions { Tls = tls } });
        var local = driver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var agent = new IceAgent(new IceAgentOptions { TurnServers = [turns], TransportPolicy = IceTransportPolicy.Relay });
        agent.AddHostCandidate(local);
        var peer = new IceAgentPeer(agent);
        await using var handle = driver.Register(peer);
        await handle.InvokeAsync(now => agent.StartGathering(now));
        using var cts = new CancellationTokenSource(Patience);
        await foreach (var e in peer.Events.ReadAllAsync(cts.Token))
            if (e is IceRelayErrorEvent or IceCandidateGatheredEvent { Candidate.Type: IceCandidateType.Relayed }) return (e, driver.Counters);
        throw new InvalidOperationException("the agent's events ended without an outcome");
    }

    private static Socket Listen()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4);
        return listener;
    }

    private static async Task ReadExactly(Socket socket, Memory<byte> buffer)
    {
        using var cts = new CancellationTokenSource(Patience);
        for (var read = 0; read < buffer.Length;)
        {
            var n = await socket.ReceiveAsync(buffer[read..], SocketFlags.None, cts.Token);
            if (n == 0) throw new IOException("closed early");
            read += n;
        }
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("condition not met in time");
            await Task.Delay(20);
        }
    }

    // A 20-byte STUN Binding indication with a marker in its transaction id.
    private static byte[] Stun(byte marker)
    {
        var m = new byte[20];
        BinaryPrimitives.WriteUInt16BigEndian(m, 0x0011);
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(4), 0x2112A442);
        m[8] = marker;
        return m;
    }

    private static byte[] ChannelData(int length)
    {
        var m = new byte[4 + length];
        BinaryPrimitives.WriteUInt16BigEndian(m, 0x4000);
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(2), (ushort)length);
        return m;
    }

    /// <summary>A peer that sends its queued frames as TURN stream transmits to one server and records what comes back.</summary>
    private sealed class StreamPeer(IPEndPoint local, IPEndPoint server) : IDatagramPeer
    {
        private readonly Queue<byte[]> _out = new();
        public ConcurrentQueue<byte[]> Frames { get; } = new();
        public TaskCompletionSource<string> Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public IReadOnlyCollection<string> LocalUsernameFragments { get; } = [];

        public void Queue(byte[] frame) => _out.Enqueue(frame);

        public void HandleDatagram(ReadOnlySpan<byte> datagram, IPEndPoint l, IPEndPoint remote, TimeSpan now) { }

        public void HandleTurnStreamFrame(ReadOnlySpan<byte> frame, IPEndPoint l, IPEndPoint s, TimeSpan now)
        {
            Assert.Equal(local, l);
            Assert.Equal(server, s);
            Frames.Enqueue(frame.ToArray());
        }

        public void OnTurnConnectionClosed(IPEndPoint l, IPEndPoint s, string reason, TimeSpan now) => Closed.TrySetResult(reason);

        public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? l, out IPEndPoint remote, out TransmitKind kind)
        {
            kind = TransmitKind.TurnStream;
            l = local;
            remote = server;
            if (!_out.TryDequeue(out var frame)) { written = 0; return false; }
            frame.CopyTo(destination);
            written = frame.Length;
            return true;
        }

        public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? l, out IPEndPoint remote) =>
            TryPollTransmit(destination, out written, out l, out remote, out TransmitKind _);

        public void HandleTimeout(TimeSpan now) { }

        public TimeSpan? PollTimeout() => null;

        public void AfterInput(TimeSpan now) { }
    }
}
