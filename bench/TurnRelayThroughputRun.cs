using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Transport.Dtls;
using Transport.Ice;
using Transport.Ice.Stun;
using Transport.Ice.Turn;
using Transport.Ice.Tests.Interop;
using Transport.Sctp;

namespace Transport.Bench;

/// <summary>
/// A measured run (not BenchmarkDotNet): the throughput of a data channel (our SCTP association,
/// stream 1, binary messages, ordered and reliable) over our DTLS connection (AES-GCM records; stack "dtls") or
/// directly (stack "sctp") over our ICE agent on real UDP sockets on 127.0.0.1, relayed through coturn (both
/// agents relay-only; over UDP and over TCP to the server) compared with the direct path (host candidates), in the
/// same run, with the same message size and count. Single thread, both peers in one loop.
/// <c>dotnet run -c Release --project bench -- turn-throughput [messages=20000] [size=1024] [rounds=3] [dtls|sctp]</c>
/// Needs /usr/bin/turnserver (Debian package coturn), which it starts and kills by process id.
/// </summary>
public static class TurnRelayThroughputRun
{
    private static readonly string[] Paths = ["direct", "relay-udp", "relay-tcp"];

    public static int Run(string[] args)
    {
        var messages = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 20000;
        var size = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 1024;
        var rounds = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 3;
        var dtls = args.Length <= 4 || args[4] == "dtls";
        using var coturn = new BenchCoturn();
        Console.WriteLine($"coturn on 127.0.0.1:{coturn.Port}; stack {(dtls ? "SCTP over DTLS over ICE" : "SCTP over ICE (no DTLS)")}; {messages} messages " +
            $"of {size} bytes per run; {rounds} rounds; load average {LoadAverage()}");
        var notBefore = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var certificates = dtls ? (DtlsCertificate.CreateSelfSigned(notBefore, notBefore.AddYears(1)),
            DtlsCertificate.CreateSelfSigned(notBefore, notBefore.AddYears(1))) : default;
        double Measure(string path, BenchCoturn coturn, int messages, int size) => MeasureOne(path, coturn, messages, size, certificates);

        // Warm-up (JIT, pools) on every path, not counted.
        foreach (var path in Paths) Measure(path, coturn, Math.Max(1000, messages / 10), size);
        var results = Paths.ToDictionary(p => p, _ => new List<double>());
        for (var round = 0; round < rounds; round++)
            foreach (var path in Paths)
            {
                var mbps = Measure(path, coturn, messages, size);
                results[path].Add(mbps);
                Console.WriteLine($"round {round + 1} {path,-10} {mbps,8:0.0} Mbit/s");
            }

        Console.WriteLine();
        Console.WriteLine("| Path | Median Mbit/s | Runs (Mbit/s) | Ratio to direct |");
        Console.WriteLine("|---|---:|---|---:|");
        var direct = Median(results["direct"]);
        foreach (var path in Paths)
        {
            var median = Median(results[path]);
            Console.WriteLine($"| {path} | {median:0.0} | " +
                $"{string.Join(", ", results[path].Select(r => r.ToString("0.0", CultureInfo.InvariantCulture)))} | {median / direct:0.00} |");
        }
        return 0;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; } catch (IOException) { return "?"; }
    }

    private static IceAgentOptions Options(string path, IceRole role, BenchCoturn coturn) => path switch
    {
        "direct" => new IceAgentOptions { Role = role },
        _ => new IceAgentOptions
        {
            Role = role,
            TransportPolicy = IceTransportPolicy.Relay,
            TurnServers = [TurnServerConfig.Parse($"turn:127.0.0.1:{coturn.Port}?transport={(path == "relay-tcp" ? "tcp" : "udp")}",
                BenchCoturn.User, BenchCoturn.Password)],
        },
    };

    /// <summary>Connects two agents on the path, opens an SCTP association over them and moves the messages; returns Mbit/s of payload.</summary>
    private static double MeasureOne(string path, BenchCoturn coturn, int messages, int size, (DtlsCertificate A, DtlsCertificate B) certificates)
    {
        var clock = Stopwatch.StartNew();
        using var a = new AgentSocketDriver("A", Options(path, IceRole.Controlling, coturn), clock: clock);
        using var b = new AgentSocketDriver("B", Options(path, IceRole.Controlled, coturn), clock: clock);
        foreach (var d in new[] { a, b }) { d.Udp.ReceiveBufferSize = 4 << 20; d.Udp.SendBufferSize = 4 << 20; }
        var drivers = new[] { a, b };
        a.Agent.StartGathering(a.Now);
        b.Agent.StartGathering(b.Now);
        AgentSocketDriver.RunUntil(() => a.EventsOf<IceGatheringCompleteEvent>().Any() && b.EventsOf<IceGatheringCompleteEvent>().Any(),
            TimeSpan.FromSeconds(10), "gathering", drivers);
        a.SignalTo(b);
        b.SignalTo(a);
        AgentSocketDriver.RunUntil(() => a.Agent.State == IceConnectionState.Connected && b.Agent.State == IceConnectionState.Connected,
            TimeSpan.FromSeconds(10), "ICE", drivers);
        if (path != "direct")
        {
            // The data goes as ChannelData once the selected pair's channel is bound.
            AgentSocketDriver.RunUntil(() => Bound(a) && Bound(b), TimeSpan.FromSeconds(10), "channels", drivers);
            if (a.Agent.SelectedLocal!.Type != IceCandidateType.Relayed) throw new InvalidOperationException("the relayed path is not relayed");
        }

        var sa = new SctpAssociation(new SctpOptions { IsDtlsClient = true, ReceiveBufferSize = 4 << 20 });
        var sb = new SctpAssociation(new SctpOptions { IsDtlsClient = false, ReceiveBufferSize = 4 << 20 });
        // DTLS (when asked): A is the client; records carry the SCTP packets (RFC 8261).
        DtlsConnection? da = null, db = null;
        if (certificates.A is not null)
        {
            da = DtlsConnection.CreateClient(new DtlsOptions
            {
                Certificate = certificates.A,
                RemoteFingerprint = certificates.B.Sha256Fingerprint,
                DeliverApplicationDataAsEvents = false,
                MaxVersion = DtlsVersion.Dtls12
            });
            db = DtlsConnection.CreateServer(new DtlsOptions
            {
                Certificate = certificates.B,
                RemoteFingerprint = certificates.A.Sha256Fingerprint,
                DeliverApplicationDataAsEvents = false,
                MaxVersion = DtlsVersion.Dtls12
            },
                new DtlsCookieResponder(), [127, 0, 0, 1]);
        }
        var packet = new byte[2048];
        var record = new byte[2048];
        var plain = new byte[2048];
        a.OnData = (data, now) => Up(da, sa, data, now);
        b.OnData = (data, now) => Up(db, sb, data, now);
        void Up(DtlsConnection? dtlsConnection, SctpAssociation s, ReadOnlySpan<byte> data, TimeSpan now)
        {
            if (dtlsConnection is null) { s.HandleDatagram(data, now); return; }
            dtlsConnection.HandleDatagram(data, now);
            while (dtlsConnection.TryReceive(plain, out var m)) s.HandleDatagram(plain.AsSpan(0, m), now);
        }
        long received = 0;
        void Pump()
        {
            foreach (var (d, s, t) in new[] { (a, sa, da), (b, sb, db) })
            {
                d.Step();
                if (t is not null)
                {
                    if (t.PollTimeout() is { } dtlsDue && dtlsDue <= d.Now) t.HandleTimeout(d.Now);
                    while (t.TryPollEvent(out _)) { }
                }
                if (t is null || t.State == DtlsState.Connected)
                {
                    if (s.PollTimeout() is { } due && due <= d.Now) s.HandleTimeout(d.Now);
                    s.HandleTimeout(d.Now);
                    while (s.TryPollTransmit(packet, out var n))
                    {
                        if (t is null) { Send(d, packet.AsSpan(0, n)); continue; }
                        t.Send(packet.AsSpan(0, n));
                    }
                    while (s.TryPollEvent(out var e))
                        if (e.Kind == SctpEventKind.StreamMessage) received += e.Data.Length;
                }
                if (t is not null)
                    while (t.TryPollTransmit(record, out var r)) Send(d, record.AsSpan(0, r));
            }
        }
        static void Send(AgentSocketDriver d, ReadOnlySpan<byte> datagram)
        {
            if (!d.Send(datagram).CanSend) throw new InvalidOperationException($"{d.Name}: ICE cannot send ({d.Agent.State})");
        }
        var scratch = new List<Socket>();
        var setup = Stopwatch.StartNew();
        da?.Start(a.Now);
        while (da is not null && (da.State != DtlsState.Connected || db!.State != DtlsState.Connected))
        {
            Pump();
            if (setup.Elapsed > TimeSpan.FromSeconds(10)) throw new TimeoutException($"DTLS did not connect ({da.State}, {db!.State})");
            AgentSocketDriver.WaitForInput(drivers, scratch, 1000);
        }
        sa.Connect(a.Now);
        while (sa.State != SctpState.Established || sb.State != SctpState.Established)
        {
            Pump();
            if (setup.Elapsed > TimeSpan.FromSeconds(10)) throw new TimeoutException("SCTP did not establish");
            AgentSocketDriver.WaitForInput(drivers, scratch, 1000);
        }

        var message = new byte[size];
        var total = (long)messages * size;
        var sent = 0;
        var timer = Stopwatch.StartNew();
        while (received < total)
        {
            while (sent < messages && sa.OutboundBuffered < 1 << 20)
            {
                sa.SendMessage(1, Ppid.Binary, message, now: a.Now);
                sent++;
            }
            var before = received + a.DatagramsIn + b.DatagramsIn + a.TcpFramesIn + b.TcpFramesIn;
            Pump();
            if (timer.Elapsed > TimeSpan.FromSeconds(120)) throw new TimeoutException($"{path}: {received} of {total} bytes after 120 s");
            if (received + a.DatagramsIn + b.DatagramsIn + a.TcpFramesIn + b.TcpFramesIn == before) AgentSocketDriver.WaitForInput(drivers, scratch, 1000);
        }
        var seconds = timer.Elapsed.TotalSeconds;
        // Losses (socket buffers overflowing) show up as SCTP retransmissions: printed so a figure can be explained.
        Console.WriteLine($"  {path}: {seconds:0.000} s, SCTP packets sent {sa.Counters.PacketsSent}, retransmissions {sa.Counters.Retransmissions} " +
                          $"(fast {sa.Counters.FastRetransmits}, T3 expiries {sa.Counters.T3Expirations}), ICE drops " +
                          $"{a.Agent.DroppedTotal + b.Agent.DroppedTotal}");
        return total * 8 / seconds / 1e6;
    }

    private static bool Bound(AgentSocketDriver d) =>
        d.Agent.TurnClients[0].GetBoundChannel(StunAddress.FromEndPoint(d.Agent.SelectedRemote!.Address)) != 0;

    /// <summary>coturn on 127.0.0.1 with free ports and its own temp directory, killed by process id on dispose (INTEROP.md recipe).</summary>
    private sealed class BenchCoturn : IDisposable
    {
        public const string User = "bench";
        public const string Password = "bench";
        private readonly Process _process;
        private readonly string _directory;
        private readonly StringBuilder _log = new();

        public BenchCoturn()
        {
            const string binary = "/usr/bin/turnserver";
            if (!File.Exists(binary)) throw new InvalidOperationException("install the Debian package 'coturn' (apt-get install -y coturn)");
            _directory = Directory.CreateTempSubdirectory("coturn-bench-").FullName;
            Port = FreePort();
            var min = FreePort();
            var info = new ProcessStartInfo(binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[]
            {
                "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", $"--listening-port={Port}", $"--min-port={min}",
                    $"--max-port={Math.Min(65535, min + 15)}",
                $"--user={User}:{Password}", "--realm=bench.test", "--lt-cred-mech", "--no-tls", "--no-dtls", "--no-cli", "--fingerprint",
                "--allow-loopback-peers", "--no-multicast-peers", "--log-file=stdout", "--simple-log",
                $"--pidfile={Path.Combine(_directory, "turnserver.pid")}", $"--userdb={Path.Combine(_directory, "turndb")}",
            }) info.ArgumentList.Add(a);
            _process = Process.Start(info) ?? throw new InvalidOperationException("turnserver did not start");
            _process.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
            _process.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
            try { WaitUntilAnswering(); } catch { Dispose(); throw; }
        }

        public int Port { get; }

        private void WaitUntilAnswering()
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var request = new byte[20];
            var length = new StunMessageWriter(request, StunMessageType.BindingRequest, new byte[12]).Length;
            var buffer = new byte[1500];
            var deadline = Stopwatch.GetTimestamp() + 10 * Stopwatch.Frequency;
            while (Stopwatch.GetTimestamp() < deadline)
            {
                if (_process.HasExited) throw new InvalidOperationException($"turnserver exited:\n{_log}");
                socket.SendTo(request.AsSpan(0, length), new IPEndPoint(IPAddress.Loopback, Port));
                if (socket.Poll(100_000, SelectMode.SelectRead) && socket.Receive(buffer) > 0) return;
            }
            throw new TimeoutException($"turnserver did not answer within 10 s:\n{_log}");
        }

        private static int FreePort()
        {
            for (var attempt = 0; attempt < 100; attempt++)
            {
                var port = Random.Shared.Next(20000, 60000);
                try
                {
                    using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                    udp.Bind(new IPEndPoint(IPAddress.Loopback, port));
                    using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    tcp.Bind(new IPEndPoint(IPAddress.Loopback, port));
                    return port;
                }
                catch (SocketException) { }
            }
            throw new InvalidOperationException("no free port");
        }

        public void Dispose()
        {
            try { if (!_process.HasExited) { _process.Kill(entireProcessTree: true); _process.WaitForExit(5000); } }
            catch (InvalidOperationException) { }
            _process.Dispose();
            try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
        }
    }
}
