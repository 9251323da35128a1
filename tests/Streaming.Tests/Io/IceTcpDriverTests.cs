using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Transport.Ice;
using Transport.Ice.Stun;
using Transport.Streaming.Io;

namespace Transport.Streaming.Tests.Io;

/// <summary>
/// ICE-TCP (RFC 6544) on the driver over loopback TCP: a client (our sans-IO agent, its datagrams carried as RFC 4571
/// frames on a raw TCP socket, as an active TCP candidate's would be) connects to the driver's listening socket; and
/// the bad inputs (a bad length prefix, garbage, a slow loris, too many connections from one address).
/// </summary>
public sealed class IceTcpDriverTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    private sealed class Server(UdpDriver driver, IceAgent agent, ConcurrentQueue<byte[]> received) : IAsyncDisposable
    {
        public UdpDriver Driver { get; } = driver;
        public IceAgent Agent { get; } = agent;
        public IceAgentPeer Peer { get; set; } = null!;
        public PeerHandle Handle { get; set; } = null!;
        public IPEndPoint Tcp { get; set; } = null!;
        public ConcurrentQueue<byte[]> Received { get; } = received;

        public async ValueTask DisposeAsync()
        {
            await Handle.DisposeAsync();
            await Driver.DisposeAsync();
            Agent.Dispose();
        }
    }

    private static Server StartServer(IceCredentials client, IceTcpOptions? tcp = null)
    {
        var driver = new UdpDriver(options: new UdpDriverOptions { IceTcp = tcp ?? new IceTcpOptions() });
        var udp = driver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var tcpEnd = Assert.Single(driver.IceTcpEndPoints);
        Assert.Equal(udp.Port, tcpEnd.Port);   // the same port number by default
        var agent = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled });
        agent.AddHostCandidate(udp);
        agent.AddTcpHostCandidate(tcpEnd);
        agent.SetRemoteCredentials(client, TimeSpan.Zero);
        var received = new ConcurrentQueue<byte[]>();
        var server = new Server(driver, agent, received) { Tcp = tcpEnd };
        server.Peer = new IceAgentPeer(agent, (d, _) => received.Enqueue(d.ToArray()));
        server.Handle = driver.Register(server.Peer);
        return server;
    }

    /// <summary>Our agent as the active side: its transmits go as frames on <paramref name="socket"/>, frames read from it come in as datagrams.</summary>
    private sealed class Client : IDisposable
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly byte[] _in = new byte[1 << 16];
        private int _inLength;

        public Client(Socket socket, IPEndPoint server, IceCredentials serverCredentials, IceCredentials own)
        {
            Socket = socket;
            Local = (IPEndPoint)socket.LocalEndPoint!;
            Remote = server;
            Agent = new IceAgent(new IceAgentOptions { Role = IceRole.Controlling, LocalCredentials = own });
            Agent.AddHostCandidate(Local);
            Agent.SetRemoteCredentials(serverCredentials, Now);
            Agent.AddRemoteCandidate(new IceCandidate(IceCandidateType.Host, server, IceCandidate.ComputeTcpHostPriority(IceTcpType.Passive, 8191), "1"), Now);
        }

        public Socket Socket { get; }
        public IPEndPoint Local { get; }
        public IPEndPoint Remote { get; }
        public IceAgent Agent { get; }
        public List<byte[]> ApplicationData { get; } = new();
        public TimeSpan Now => _clock.Elapsed;

        public static byte[] Frame(ReadOnlySpan<byte> payload)
        {
            var f = new byte[payload.Length + 2];
            BinaryPrimitives.WriteUInt16BigEndian(f, (ushort)payload.Length);
            payload.CopyTo(f.AsSpan(2));
            return f;
        }

        /// <summary>One round: due timers, transmits out, frames in.</summary>
        public void Step()
        {
            var now = Now;
            if (Agent.PollTimeout() is { } due && due <= now) Agent.HandleTimeout(now);
            var buffer = new byte[2048];
            while (Agent.TryPollTransmit(buffer, out var sent, out var t)) Socket.Send(Frame(buffer.AsSpan(0, sent)));
            while (Socket.Poll(TimeSpan.FromMilliseconds(5), SelectMode.SelectRead))
            {
                var n = Socket.Receive(_in.AsSpan(_inLength));
                if (n == 0) throw new IOException("the server closed the connection");
                _inLength += n;
                var offset = 0;
                while (_inLength - offset >= 2)
                {
                    int length = BinaryPrimitives.ReadUInt16BigEndian(_in.AsSpan(offset));
                    if (_inLength - offset - 2 < length) break;
                    var frame = _in.AsSpan(offset + 2, length);
                    if (Agent.HandleDatagram(frame, Local, Remote, Now) == IceReceiveResult.ApplicationData) ApplicationData.Add(frame.ToArray());
                    offset += 2 + length;
                }
                _in.AsSpan(offset, _inLength - offset).CopyTo(_in);
                _inLength -= offset;
            }
            while (Agent.TryPollEvent(out _)) { }
        }

        public void Dispose()
        {
            Agent.Dispose();
            Socket.Dispose();
        }
    }

    private static async Task<Socket> ConnectAsync(IPEndPoint server)
    {
        var s = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await s.ConnectAsync(server);
        return s;
    }

    // Reads until the server closes the connection (0 bytes or a reset); false if it stays open for the limit.
    private static async Task<bool> ServerClosesAsync(Socket s, TimeSpan limit)
    {
        using var cts = new CancellationTokenSource(limit);
        var buffer = new byte[4096];
        try
        {
            while (true)
                if (await s.ReceiveAsync(buffer, SocketFlags.None, cts.Token) == 0) return true;
        }
        catch (SocketException) { return true; }
        catch (OperationCanceledException) { return false; }
    }

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > Limit) throw new TimeoutException(what);
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task AClientConnectsOverLoopbackTcpChecksAndExchangesDataBothWays()
    {
        var clientCredentials = IceCredentials.Generate();
        await using var server = StartServer(clientCredentials);
        using var client = new Client(await ConnectAsync(server.Tcp), server.Tcp, server.Agent.LocalCredentials, clientCredentials);
        // The agents' credentials: the client knows the server's; the server was given the client's.
        var sw = Stopwatch.StartNew();
        IceConnectionState serverState = IceConnectionState.New;
        while (sw.Elapsed < Limit && !(client.Agent.State == IceConnectionState.Connected && serverState == IceConnectionState.Connected))
        {
            client.Step();
            serverState = await server.Handle.InvokeAsync(_ => server.Agent.State);
        }
        Assert.Equal(IceConnectionState.Connected, client.Agent.State);
        Assert.Equal(IceConnectionState.Connected, serverState);
        var (local, remote) = await server.Handle.InvokeAsync(_ => (server.Agent.SelectedLocal!, server.Agent.SelectedRemote!));
        Assert.True(local.IsTcp);
        Assert.Equal(server.Tcp, local.Address);
        Assert.Equal((IceProtocol.Tcp, IceTcpType.Active, client.Local), (remote.Protocol, remote.TcpType, remote.Address));

        // Client to server: a DTLS-looking frame is application data of the TCP pair.
        var buffer = new byte[2048];
        Assert.True(client.Agent.TrySend([0x17, 0xFE, 0xFD, 7, 7], buffer, client.Now, out var sent, out _).CanSend);
        client.Socket.Send(Client.Frame(buffer.AsSpan(0, sent)));
        await WaitForAsync(() => !server.Received.IsEmpty, "the server's peer got no data");
        Assert.Equal(new byte[] { 0x17, 0xFE, 0xFD, 7, 7 }, Assert.Single(server.Received));

        // Server to client: the peer's send goes on the connection.
        var send = await server.Handle.InvokeAsync(now => server.Peer.Send([0x17, 0xFE, 0xFD, 9], now));
        Assert.True(send.CanSend);
        Assert.True(send.IceTcp);
        sw.Restart();
        while (sw.Elapsed < Limit && client.ApplicationData.Count == 0) client.Step();
        Assert.Equal(new byte[] { 0x17, 0xFE, 0xFD, 9 }, Assert.Single(client.ApplicationData));

        var c = server.Driver.Counters;
        Assert.Equal(1, c.IceTcpAccepted);
        Assert.True(c.IceTcpFramesReceived >= 2 && c.IceTcpFramesSent >= 2, $"{c.IceTcpFramesReceived} in, {c.IceTcpFramesSent} out");
        Assert.Equal(0, c.IceTcpClosedBadLength + c.IceTcpClosedGarbage + c.IceTcpClosedSlow + c.IceTcpSendNoConnection);
        Assert.Equal(1, server.Driver.IceTcpConnectionCount);

        // The peer stops: its connection closes with it.
        await server.Handle.DisposeAsync();
        Assert.True(await ServerClosesAsync(client.Socket, Limit));
        await WaitForAsync(() => server.Driver.IceTcpConnectionCount == 0, "the connection was not released");
    }

    [Fact]
    public async Task TheClientClosingItsConnectionDisconnectsTheServersAgentAtOnceNotByConsent()
    {
        var clientCredentials = IceCredentials.Generate();
        await using var server = StartServer(clientCredentials);
        using var client = new Client(await ConnectAsync(server.Tcp), server.Tcp, server.Agent.LocalCredentials, clientCredentials);
        var sw = Stopwatch.StartNew();
        var serverState = IceConnectionState.New;
        while (sw.Elapsed < Limit && !(client.Agent.State == IceConnectionState.Connected && serverState == IceConnectionState.Connected))
        {
            client.Step();
            serverState = await server.Handle.InvokeAsync(_ => server.Agent.State);
        }
        Assert.Equal(IceConnectionState.Connected, serverState);
        Assert.True(await server.Handle.InvokeAsync(_ => server.Agent.SelectedLocal!.IsTcp));

        // The client goes away (its socket closed, as a browser's tab closing or a NAT dropping it would).
        client.Socket.Close();
        var closed = Stopwatch.StartNew();
        IceStateChangedEvent? change = null;
        using (var cts = new CancellationTokenSource(Limit))
        {
            await foreach (var e in server.Peer.Events.ReadAllAsync(cts.Token))
                if (e is IceStateChangedEvent { State: IceConnectionState.Disconnected or IceConnectionState.Failed } s) { change = s; break; }
        }
        var after = closed.Elapsed;
        Assert.NotNull(change);
        // At once with the transport's reason: not NoTraffic (5 s) nor ConsentExpired (30 s).
        Assert.Equal((IceConnectionState.Disconnected, IceStateReason.TransportClosed), (change.State, change.Reason));
        Assert.True(after < Limit, $"noticed after {after.TotalMilliseconds:F0} ms");
        Assert.Equal(1, server.Driver.Counters.IceTcpClosedNotified);
        await WaitForAsync(() => server.Driver.IceTcpConnectionCount == 0, "the connection was not released");
    }

    [Theory]
    [InlineData(new byte[] { 0, 0 })]                 // a zero length
    [InlineData(new byte[] { 0xFF, 0xFF, 0, 1 })]     // above the frame limit (the driver's datagram size)
    public async Task ABadLengthPrefixClosesTheConnectionAndIsCounted(byte[] bytes)
    {
        await using var server = StartServer(IceCredentials.Generate());
        using var s = await ConnectAsync(server.Tcp);
        s.Send(bytes);
        Assert.True(await ServerClosesAsync(s, Limit));
        await WaitForAsync(() => server.Driver.Counters.IceTcpClosedBadLength == 1, "not counted");
        await WaitForAsync(() => server.Driver.IceTcpConnectionCount == 0, "not released");
        Assert.Equal(0, server.Driver.Counters.IceTcpFramesReceived);
    }

    [Fact]
    public async Task GarbageOrARequestForNoPeerClosesTheConnectionAndIsCounted()
    {
        await using var server = StartServer(IceCredentials.Generate());
        using (var s = await ConnectAsync(server.Tcp))
        {
            s.Send(Client.Frame([0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF]));
            Assert.True(await ServerClosesAsync(s, Limit));
        }
        using (var s = await ConnectAsync(server.Tcp))
        {
            // A well-formed Binding request whose USERNAME names a fragment no peer has.
            var request = new byte[256];
            Span<byte> tid = stackalloc byte[StunHeader.TransactionIdSize];
            StunTransactionId.NewRandom().WriteTo(tid);
            var w = new StunMessageWriter(request, StunMessageType.BindingRequest, tid);
            w.AddString(StunAttributeType.Username, "nobodyhere:someone");
            w.AddFingerprint();
            s.Send(Client.Frame(request.AsSpan(0, w.Length)));
            Assert.True(await ServerClosesAsync(s, Limit));
        }
        await WaitForAsync(() => server.Driver.Counters.IceTcpClosedGarbage == 2, $"counted {server.Driver.Counters.IceTcpClosedGarbage}");
        await WaitForAsync(() => server.Driver.IceTcpConnectionCount == 0, "not released");
    }

    [Fact]
    public async Task ASlowLorisThatNeverCompletesAFrameIsDroppedAfterTheTimeout()
    {
        await using var server = StartServer(IceCredentials.Generate(), new IceTcpOptions { FirstFrameTimeout = TimeSpan.FromMilliseconds(300) });
        // The server's timer starts when it accepts, which is after the connect starts (and under load, well before
        // the client's first bytes are sent): time from before the connect.
        var sw = Stopwatch.StartNew();
        using var s = await ConnectAsync(server.Tcp);
        s.Send([0, 100, 1, 2, 3]);   // 3 bytes of a 100-byte frame, and then nothing
        Assert.True(await ServerClosesAsync(s, Limit));
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(290), $"closed after {sw.Elapsed}");
        await WaitForAsync(() => server.Driver.Counters.IceTcpClosedSlow == 1, "not counted");
        await WaitForAsync(() => server.Driver.IceTcpConnectionCount == 0, "not released");
    }

    [Fact]
    public async Task ConnectionsFromOneAddressAreBounded()
    {
        await using var server = StartServer(IceCredentials.Generate(), new IceTcpOptions { MaxConnectionsPerAddress = 2 });
        using var a = await ConnectAsync(server.Tcp);
        using var b = await ConnectAsync(server.Tcp);
        await WaitForAsync(() => server.Driver.Counters.IceTcpAccepted == 2, "the first two were not accepted");
        // The third is accepted by the kernel and closed by the driver at once (the reset may even fail the connect).
        Socket? c = null;
        try
        {
            c = await ConnectAsync(server.Tcp);
            Assert.True(await ServerClosesAsync(c, Limit));
        }
        catch (SocketException) { }
        finally { c?.Dispose(); }
        await WaitForAsync(() => server.Driver.Counters.IceTcpRefused == 1, "the third was not refused");
        Assert.Equal(1, server.Driver.Counters.IceTcpRefused);
        Assert.Equal(2, server.Driver.IceTcpConnectionCount);
        // One goes: a new one is accepted again.
        a.Dispose();
        await WaitForAsync(() => server.Driver.IceTcpConnectionCount == 1, "the closed one was not released");
        using var d = await ConnectAsync(server.Tcp);
        await WaitForAsync(() => server.Driver.Counters.IceTcpAccepted == 3, "no room after a close");
    }

    [Fact]
    public async Task TheListenerCanBeTurnedOffOrGivenAPort()
    {
        await using (var off = new UdpDriver(options: new UdpDriverOptions { IceTcp = new IceTcpOptions { Enabled = false } }))
        {
            off.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            Assert.Empty(off.IceTcpEndPoints);
        }
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var free = ((IPEndPoint)probe.LocalEndPoint!).Port;
        probe.Dispose();
        await using var on = new UdpDriver(options: new UdpDriverOptions { IceTcp = new IceTcpOptions { Port = free } });
        var udp = on.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, free), Assert.Single(on.IceTcpEndPoints));
        Assert.NotNull(udp);
    }

    [Fact]
    public async Task ASlowReaderMakesMediaDropWhileTheQueueStaysBounded()
    {
        var clientCredentials = IceCredentials.Generate();
        var options = new IceTcpOptions { SendQueueBytes = 64 * 1024, MaxSendQueueBytes = 128 * 1024 };
        await using var server = StartServer(clientCredentials, options);
        var socket = await ConnectAsync(server.Tcp);
        socket.ReceiveBufferSize = 4096;
        using var client = new Client(socket, server.Tcp, server.Agent.LocalCredentials, clientCredentials);
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < Limit && (await server.Handle.InvokeAsync(_ => server.Agent.State)) != IceConnectionState.Connected) client.Step();
        // The client stops reading; the server sends 40 MB of "RTP" (first byte 0x80) in 1200-byte frames.
        var packet = new byte[1200];
        packet[0] = 0x80;
        for (var batch = 0; batch < 350 && server.Driver.Counters.IceTcpDroppedMedia == 0; batch++)
            await server.Handle.InvokeAsync(now => { for (var i = 0; i < 100; i++) server.Peer.Send(packet, now); });
        var c = server.Driver.Counters;
        Assert.True(c.IceTcpDroppedMedia > 0, "no media was dropped");
        // A DTLS record still finds room between the soft and the hard bound.
        var before = c.IceTcpFramesSent;
        await server.Handle.InvokeAsync(now => server.Peer.Send([0x17, 0xFE, 0xFD, 1], now));
        Assert.Equal(before + 1, c.IceTcpFramesSent);
        Assert.Equal(0, c.IceTcpDroppedQueueFull);
    }
}
