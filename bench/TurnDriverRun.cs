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
/// <c>dotnet run -c Release --project bench -- turn-driver [setup-runs=10] [megabytes=32] [paths=udp-direct,turn-udp,turn-tcp,turn-tls]</c>
/// Needs turnserver (Debian package coturn) and openssl; it starts coturn and kills it by process id.
/// </summary>
public static class TurnDriverRun
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private static readonly string[] Paths = ["udp-direct", "turn-udp", "turn-tcp", "turn-tls"];

    public static async Task<int> RunAsync(string[] args)
    {
        var runs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10;
        var megabytes = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 32;
        var paths = args.Length > 3 ? args[3].Split(',') : Paths;
        using var certificate = OpenSslCertificate.Create("turn.test", "DNS:turn.test", "IP:127.0.0.1");
        using var coturn = CoturnServer.StartTls(certificate.CertificatePath, certificate.KeyPath);
        var dtls = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        Console.WriteLine($"coturn 127.0.0.1:{coturn.Port} (UDP, TCP), TLS :{coturn.TlsPort}; {runs} set-ups and {megabytes} MiB of 1 KiB messages per path; load average {LoadAverage()}");
        Console.WriteLine();
        Console.WriteLine("| Path | Set-up median ms | Set-up p90 ms | Throughput MB/s | Client datagrams / TURN frames sent |");
        Console.WriteLine("|---|---:|---:|---:|---|");
        foreach (var path in paths)
        {
            var clientOptions = new UdpDriverOptions { TurnTcp = new TurnTcpOptions { Tls = new TurnTlsOptions { TrustedRoots = new X509Certificate2Collection(certificate.Certificate) } } };
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
            var ice = Ice(path, coturn);
            var times = new List<double>();
            for (var i = 0; i < runs + 2; i++)
            {
                await using var d = await NewClient();
                var ms = await SetUpOnceAsync(d, d2, dtls, ice);
                if (i >= 2) times.Add(ms);   // two warm-up runs
            }
            times.Sort();
            await using var d1 = await NewClient();
            var mbps = await ThroughputAsync(d1, d2, dtls, ice, megabytes);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {path} | {Percentile(times, 0.5):0.0} | {Percentile(times, 0.9):0.0} | {mbps:0.0} | {d1.Counters.Sent} / {d1.Counters.TurnTcpFramesSent} (dropped {d1.Counters.TurnTcpDroppedQueueFull}) |"));
        }
        return 0;
    }

    private static IceAgentOptions Ice(string path, CoturnServer coturn) => path switch
    {
        "udp-direct" => new IceAgentOptions { Role = IceRole.Controlling },
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
    private static async Task<(PeerConnection Client, PeerConnection Server, DataChannel Channel, double Milliseconds)> ConnectAsync(
        UdpDriver d1, UdpDriver d2, DtlsCertificate certificate, IceAgentOptions ice)
    {
        var client = new PeerConnection(d1, new PeerConnectionOptions { Certificate = certificate, Ice = ice },
            Environment.GetEnvironmentVariable("TURN_DRIVER_TRACE") is null ? null : new ConsoleLog("client"));
        var server = new PeerConnection(d2, new PeerConnectionOptions { Certificate = certificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });
        var clock = Stopwatch.StartNew();
        using var cts = new CancellationTokenSource(Patience);
        var trickle = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in client.Events.ReadAllAsync(cts.Token))
                    if (e is LocalCandidateGathered g) await server.AddRemoteCandidateAsync(g.Candidate.ToSdp());
                    else if (e is DataChannelOpened) return;
            }
            catch (OperationCanceledException) { }
        });
        var offer = await client.CreateOfferAsync();
        await client.SetRemoteDescriptionAsync(await server.CreateAnswerAsync(offer));
        DataChannel channel;
        try { channel = await client.CreateDataChannelAsync("bench").WaitAsync(Patience); }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no data channel within {Patience.TotalSeconds} s: client {client.State}, server {server.State}; client driver: UDP sent {d1.Counters.Sent}, " +
                $"received {d1.Counters.Received}, TURN frames {d1.Counters.TurnTcpFramesSent}/{d1.Counters.TurnTcpFramesReceived}; server received {d2.Counters.Received}");
        }
        var ms = clock.Elapsed.TotalMilliseconds;
        await cts.CancelAsync();
        await trickle;
        return (client, server, channel, ms);
    }

    private static async Task<double> SetUpOnceAsync(UdpDriver d1, UdpDriver d2, DtlsCertificate certificate, IceAgentOptions ice)
    {
        var (client, server, _, ms) = await ConnectAsync(d1, d2, certificate, ice);
        await client.DisposeAsync();
        await server.DisposeAsync();
        return ms;
    }

    private static async Task<double> ThroughputAsync(UdpDriver d1, UdpDriver d2, DtlsCertificate certificate, IceAgentOptions ice, int megabytes)
    {
        var (client, server, channel, _) = await ConnectAsync(d1, d2, certificate, ice);
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
        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Console.WriteLine($"{name} {logLevel}: {formatter(state, exception)}");
    }
}
