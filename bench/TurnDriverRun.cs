using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Transport.Dtls;
using Transport.Ice;
using Transport.Ice.Turn;
using Transport.Sctp;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Bench;

/// <summary>
/// A measured run (not BenchmarkDotNet) of two of our peer connections on 127.0.0.1, each on its own UDP driver: a
/// client and a server (host candidates), the client direct over UDP, or relay-only through coturn over UDP, over TCP
/// and over TLS (<c>turns:</c>, a certificate made with openssl and trusted as a root), the TCP and TLS connections
/// carried by the driver. Per path, in the same run: set-up time (offer created -> data channel open at the client,
/// relayed candidates trickled; median and p90 over N runs after 2 warm-up ones) and data channel throughput (1 KiB
/// messages, at most 4 MiB buffered, client to server).
/// ICE-TCP (RFC 6544, <c>ice-tcp</c>): the server's passive TCP candidate on its driver, the client's checks and data
/// carried to it as RFC 4571 frames on one TCP connection by <see cref="TcpBridge"/> (our client has no active TCP
/// candidate: the bridge plays that part, one extra user-space hop on loopback); no UDP between client and server.
/// <c>dotnet run -c Release --project bench -- turn-driver [setup-runs=10] [megabytes=32] [paths=udp-direct,ice-tcp,turn-udp,turn-tcp,turn-tls]</c>
/// Needs turnserver (Debian package coturn) and openssl; it starts coturn and kills it by process id.
/// </summary>
public static class TurnDriverRun
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private static readonly string[] Paths = ["udp-direct", "ice-tcp", "turn-udp", "turn-tcp", "turn-tls"];

    public static async Task<int> RunAsync(string[] args)
    {
        var runs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10;
        var megabytes = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 32;
        var paths = args.Length > 3 ? args[3].Split(',') : Paths;
        using var certificate = OpenSslCertificate.Create("turn.test", "DNS:turn.test", "IP:127.0.0.1");
        using var coturn = CoturnServer.StartTls(certificate.CertificatePath, certificate.KeyPath);
        var dtls = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        Console.WriteLine($"coturn 127.0.0.1:{coturn.Port} (UDP, TCP), TLS :{coturn.TlsPort}; {runs} set-ups and {megabytes} MiB of 1 KiB messages per " +
            $"path; load average {LoadAverage()}");
        Console.WriteLine();
        Console.WriteLine("| Path | Set-up median ms | Set-up p90 ms | Throughput MB/s | Client datagrams / TURN frames sent / server ICE-TCP frames in |");
        Console.WriteLine("|---|---:|---:|---:|---|");
        foreach (var path in paths)
        {
            var clientOptions = new UdpDriverOptions
            {
                TurnTcp = new TurnTcpOptions { Tls = new TurnTlsOptions { TrustedRoots = new X509Certificate2Collection(certificate.Certificate) } }
            };
            // A client driver (a UDP port) per connection, as a client is: over UDP the server knows an allocation by
            // its 5-tuple, and the one of a closed connection may still be there (437 Allocation Mismatch).
            async Task<UdpDriver> NewClient()
            {
                var d = new UdpDriver(options: clientOptions);
                d.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                return d;
            }
            await using var d2 = new UdpDriver();
            d2.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var serverTcp = path == "ice-tcp" ? d2.IceTcpEndPoints.Single() : null;
            var ice = Ice(path, coturn);
            var times = new List<double>();
            for (var i = 0; i < runs + 2; i++)
            {
                await using var d = await NewClient();
                var ms = await SetUpOnceAsync(d, d2, dtls, ice, serverTcp);
                if (i >= 2) times.Add(ms);   // two warm-up runs
            }
            times.Sort();
            await using var d1 = await NewClient();
            var mbps = await ThroughputAsync(d1, d2, dtls, ice, megabytes, serverTcp);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {path} | {Percentile(times, 0.5):0.0} | {Percentile(times, 0.9):0.0} | {mbps:0.0} | {d1.Counters.Sent} / {d1.Counters.TurnTcpFramesSent} " +
                $"(dropped {d1.Counters.TurnTcpDroppedQueueFull}) / {d2.Counters.IceTcpFramesReceived} |"));
        }
        return 0;
    }

    private static IceAgentOptions Ice(string path, CoturnServer coturn) => path switch
    {
        "udp-direct" or "ice-tcp" => new IceAgentOptions { Role = IceRole.Controlling },
        _ => new IceAgentOptions
        {
            Role = IceRole.Controlling,
            TransportPolicy = IceTransportPolicy.Relay,
            TurnServers = [TurnServerConfig.Parse(path switch
            {
                "turn-udp" => $"turn:127.0.0.1:{coturn.Port}?transport=udp",
                "turn-tcp" => $"turn:127.0.0.1:{coturn.Port}?transport=tcp",
                _ => $"turns:127.0.0.1:{coturn.TlsPort}",
            }, CoturnServer.User, CoturnServer.Password)],
        },
    };

    // Offer created -> data channel open at the client; the client's candidates trickled to the server.
    // With serverTcp (ICE-TCP): no candidate is signalled either way; the client is given the bridge's UDP address as
    // the server's only candidate, and the server learns the client's end of the TCP connection from its first check.
    private static async Task<(PeerConnection Client, PeerConnection Server, DataChannel Channel, double Milliseconds, TcpBridge? Bridge)> ConnectAsync(
        UdpDriver d1, UdpDriver d2, DtlsCertificate certificate, IceAgentOptions ice, IPEndPoint? serverTcp)
    {
        var client = new PeerConnection(d1, new PeerConnectionOptions { Certificate = certificate, Ice = ice },
            Environment.GetEnvironmentVariable("TURN_DRIVER_TRACE") is null ? null : new ConsoleLog("client"));
        var server = new PeerConnection(d2, new PeerConnectionOptions { Certificate = certificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });
        var clock = Stopwatch.StartNew();
        using var cts = new CancellationTokenSource(Patience);
        var bridge = serverTcp is null ? null : TcpBridge.Start(serverTcp);
        var trickle = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in client.Events.ReadAllAsync(cts.Token))
                    if (e is LocalCandidateGathered g && bridge is null) await server.AddRemoteCandidateAsync(g.Candidate.ToSdp());
                    else if (e is DataChannelOpened) return;
            }
            catch (OperationCanceledException) { }
        });
        var offer = await client.CreateOfferAsync();
        if (bridge is null) await client.SetRemoteDescriptionAsync(await server.CreateAnswerAsync(offer));
        else
        {
            await client.SetRemoteDescriptionAsync(WithoutCandidates(await server.CreateAnswerAsync(WithoutCandidates(offer))));
            await client.AddRemoteCandidateAsync($"candidate:1 1 udp 2130706431 {bridge.EndPoint.Address} {bridge.EndPoint.Port} typ host", "0", 0);
        }
        DataChannel channel;
        try { channel = await client.CreateDataChannelAsync("bench").WaitAsync(Patience); }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no data channel within {Patience.TotalSeconds} s: client {client.State}, server {server.State}; client " +
                $"driver: UDP sent {d1.Counters.Sent}, " +
                $"received {d1.Counters.Received}, TURN frames {d1.Counters.TurnTcpFramesSent}/{d1.Counters.TurnTcpFramesReceived}; server " +
                $"received {d2.Counters.Received}");
        }
        var ms = clock.Elapsed.TotalMilliseconds;
        await cts.CancelAsync();
        await trickle;
        return (client, server, channel, ms, bridge);
    }

    private static string WithoutCandidates(string sdp) =>
        string.Join("\r\n", sdp.Split("\r\n").Where(l => !l.StartsWith("a=candidate:", StringComparison.Ordinal)));

    private static async Task<double> SetUpOnceAsync(UdpDriver d1, UdpDriver d2, DtlsCertificate certificate, IceAgentOptions ice, IPEndPoint? serverTcp)
    {
        var (client, server, _, ms, bridge) = await ConnectAsync(d1, d2, certificate, ice, serverTcp);
        await client.DisposeAsync();
        await server.DisposeAsync();
        if (bridge is not null) await bridge.DisposeAsync();
        return ms;
    }

    private static async Task<double> ThroughputAsync(UdpDriver d1, UdpDriver d2, DtlsCertificate certificate, IceAgentOptions ice,
        int megabytes, IPEndPoint? serverTcp)
    {
        var (client, server, channel, _, bridge) = await ConnectAsync(d1, d2, certificate, ice, serverTcp);
        await using var _bridge = bridge;
        await using var a = client;
        await using var b = server;
        const int size = 1024;
        var total = megabytes * 1024;
        var payload = new byte[size];
        var receiving = Task.Run(async () =>
        {
            long bytes = 0;
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            await foreach (var e in b.Events.ReadAllAsync(cts.Token))
                if (e is DataChannelMessageReceived m && (bytes += m.Data.Length) >= (long)total * size) return bytes;
            throw new InvalidOperationException($"the events ended after {bytes} bytes");
        });
        var clock = Stopwatch.StartNew();
        var pending = new Queue<Task>();
        for (var i = 0; i < total; i++)
        {
            while (channel.BufferedAmount > 4 << 20) await Task.Delay(1);
            pending.Enqueue(a.SendAsync(channel, payload));
            if (pending.Count >= 256) await pending.Dequeue();
        }
        while (pending.Count > 0) await pending.Dequeue();
        var received = await receiving.WaitAsync(TimeSpan.FromSeconds(120));
        return received / clock.Elapsed.TotalSeconds / 1e6;
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; } catch (IOException) { return "?"; }
    }

    /// <summary>TURN_DRIVER_TRACE=1: the client's log lines on the console (to see where a set-up stalls).</summary>
    private sealed class ConsoleLog(string name) : Microsoft.Extensions.Logging.ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;
        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state,
            Exception? exception, Func<TState, Exception?, string> formatter) =>
            Console.WriteLine($"{name} {logLevel}: {formatter(state, exception)}");
    }

    /// <summary>
    /// The active side of ICE-TCP for a client that has only UDP: a UDP socket on 127.0.0.1 (the address the client is
    /// given as the server's candidate) whose datagrams go as RFC 4571 frames on one TCP connection to the server's
    /// passive candidate, opened on the first datagram; frames read from it go back to the client as datagrams.
    /// </summary>
    private sealed class TcpBridge : IAsyncDisposable
    {
        private readonly System.Net.Sockets.Socket _udp = new(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram,
            System.Net.Sockets.ProtocolType.Udp);
        private readonly System.Net.Sockets.Socket _tcp =
            new(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
        private readonly CancellationTokenSource _stop = new();
        private readonly IPEndPoint _server;
        private Task _up = Task.CompletedTask, _down = Task.CompletedTask;
        private IPEndPoint? _client;
        private System.Net.Sockets.NetworkStream? _stream;

        private TcpBridge(IPEndPoint server) => _server = server;

        public IPEndPoint EndPoint => (IPEndPoint)_udp.LocalEndPoint!;

        public static TcpBridge Start(IPEndPoint server)
        {
            var b = new TcpBridge(server);
            b._udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            b._up = Task.Run(b.UpAsync);
            return b;
        }

        private async Task UpAsync()
        {
            var buffer = new byte[65536];
            var token = _stop.Token;
            try
            {
                while (!token.IsCancellationRequested)
                {
                    var r = await _udp.ReceiveFromAsync(buffer.AsMemory(2), System.Net.Sockets.SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), token);
                    if (_client is null)
                    {
                        _client = (IPEndPoint)r.RemoteEndPoint;
                        await _tcp.ConnectAsync(_server, token);
                        _stream = new System.Net.Sockets.NetworkStream(_tcp, ownsSocket: false);
                        _down = Task.Run(DownAsync);
                    }
                    buffer[0] = (byte)(r.ReceivedBytes >> 8);
                    buffer[1] = (byte)r.ReceivedBytes;
                    await _stream!.WriteAsync(buffer.AsMemory(0, r.ReceivedBytes + 2), token);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or System.Net.Sockets.SocketException or IOException or ObjectDisposedException) { }
        }

        private async Task DownAsync()
        {
            var buffer = new byte[1 << 17];
            int have = 0;
            var token = _stop.Token;
            try
            {
                while (!token.IsCancellationRequested)
                {
                    var n = await _stream!.ReadAsync(buffer.AsMemory(have), token);
                    if (n == 0) return;
                    have += n;
                    var offset = 0;
                    while (have - offset >= 2)
                    {
                        var length = (buffer[offset] << 8) | buffer[offset + 1];
                        if (have - offset - 2 < length) break;
                        await _udp.SendToAsync(buffer.AsMemory(offset + 2, length), System.Net.Sockets.SocketFlags.None, _client!, token);
                        offset += 2 + length;
                    }
                    buffer.AsSpan(offset, have - offset).CopyTo(buffer);
                    have -= offset;
                }
            }
            catch (Exception e) when (e is OperationCanceledException or System.Net.Sockets.SocketException or IOException or ObjectDisposedException) { }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _udp.Dispose();
            _tcp.Dispose();
            await _up;
            await _down;
            _stop.Dispose();
        }
    }
}
