using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Transport.TestKit;

/// <summary>
/// A coturn process on 127.0.0.1 for one test (../shared/INTEROP.md): free ports, its own temp directory and
/// pid file, output captured for failure messages, and killed by process id on Dispose whatever happened.
/// Fails (never skips) when turnserver is missing: test.sh installs the Debian package coturn. The one coturn
/// runner of the test projects: UDP only by default, TCP on the same port number with <c>tcp: true</c>, TLS on a port
/// of its own with <see cref="StartTls"/>, a restart on the same ports (<see cref="Restart"/>), and any further
/// turnserver arguments (<c>--max-allocate-lifetime=3</c>, <c>--alternate-server=...</c>).
/// </summary>
public sealed class CoturnServer : IDisposable
{
    public const string User = "test";
    public const string Password = "secret";
    public const string Realm = "example.test";

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly string _directory;

    private CoturnServer(Process process, string directory, int port, int minRelayPort, int maxRelayPort, (string, string)? tls = null, bool tcp = false,
        Placement? placement = null)
    {
        _tls = tls;
        _tcp = tcp;
        _placement = placement;
        _process = process;
        _directory = directory;
        EndPoint = new IPEndPoint(placement?.Address ?? IPAddress.Loopback, port);
        MinRelayPort = minRelayPort;
        MaxRelayPort = maxRelayPort;
    }

    public IPEndPoint EndPoint { get; }
    /// <summary>The listening port (UDP, and TCP when started with <c>tcp: true</c>).</summary>
    public int Port => EndPoint.Port;
    public int MinRelayPort { get; }
    public int MaxRelayPort { get; }

    public string Output { get { lock (_output) return _output.ToString(); } }

    public static string FindTurnServer()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(':').Append("/usr/bin"))
        {
            var candidate = Path.Combine(dir, "turnserver");
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException("turnserver (Debian package coturn) is not installed: run `apt-get install -y coturn` (test.sh does).");
    }

    /// <summary>Starts coturn (UDP only) and waits (bounded) until it answers a Binding request.</summary>
    public static CoturnServer Start() => Start(tcp: false);

    /// <summary>
    /// Starts coturn, listening on TCP too when <paramref name="tcp"/> (same port number), with
    /// <paramref name="extraArguments"/> appended, and waits (bounded) until it answers a Binding request.
    /// </summary>
    public static CoturnServer Start(bool tcp, params string[] extraArguments) => Start(tcp, tls: null, port: null, extraArguments);

    /// <summary>
    /// Starts coturn with TLS (<c>turns:</c>) on <see cref="TlsPort"/> with the PEM certificate and key given (UDP and
    /// TCP on <see cref="Port"/> as well), and waits (bounded) until it answers a Binding request.
    /// </summary>
    public static CoturnServer StartTls(string certificatePem, string keyPem, params string[] extraArguments) =>
        Start(tcp: true, tls: (certificatePem, keyPem), port: null, extraArguments);

    /// <summary>
    /// Starts coturn again on the ports of <paramref name="previous"/> (disposed first: a server restart), with the same
    /// listeners it had (TCP, TLS).
    /// </summary>
    public static CoturnServer Restart(CoturnServer previous, params string[] extraArguments)
    {
        ArgumentNullException.ThrowIfNull(previous);
        var tls = previous._tls;
        var tcp = previous._tcp;
        var ports = (previous.Port, previous.TlsPort);
        var placement = previous._placement;
        previous.Dispose();
        return Start(tcp, tls, ports, extraArguments, placement);
    }

    private readonly (string Certificate, string Key)? _tls;
    private readonly bool _tcp;
    private readonly Placement? _placement;

    /// <summary>
    /// Where a coturn runs that is not on the test process's loopback: inside the network namespace
    /// <paramref name="Namespace"/> (started with <c>ip netns exec</c>), listening and relaying on
    /// <paramref name="Address"/>; <paramref name="NewUdpSocketInside"/> makes a UDP socket inside that namespace for
    /// the readiness probe. The namespace is fresh, so the ports are fixed: 3478, TLS 5349, relays 49160-49175.
    /// </summary>
    public sealed record Placement(string Namespace, IPAddress Address, Func<Socket> NewUdpSocketInside);

    /// <summary>
    /// Starts coturn with TLS (<c>turns:</c>) inside a network namespace (<see cref="Placement"/>): TCP and UDP on
    /// port 3478 and TLS on 5349 of <see cref="Placement.Address"/>, relayed addresses on it too, with the PEM
    /// certificate and key given; waits (bounded) until it answers a Binding request there.
    /// </summary>
    public static CoturnServer StartTlsIn(Placement placement, string certificatePem, string keyPem, params string[] extraArguments)
    {
        ArgumentNullException.ThrowIfNull(placement);
        return Start(tcp: true, tls: (certificatePem, keyPem), port: (3478, 5349), extraArguments, placement);
    }

    /// <summary>
    /// Starts coturn inside a network namespace (<see cref="Placement"/>), UDP only, on port 3478 of
    /// <see cref="Placement.Address"/> with its relayed addresses there too; waits (bounded) until it answers a Binding
    /// request there.
    /// </summary>
    public static CoturnServer StartIn(Placement placement, params string[] extraArguments)
    {
        ArgumentNullException.ThrowIfNull(placement);
        return Start(tcp: false, tls: null, port: (3478, 0), extraArguments, placement);
    }

    /// <summary>The TLS listening port (<see cref="StartTls"/>), or 0.</summary>
    public int TlsPort { get; private init; }

    /// <summary>The TLS endpoint on 127.0.0.1 (<see cref="StartTls"/>).</summary>
    public IPEndPoint TlsEndPoint => new(EndPoint.Address, TlsPort);

    private static CoturnServer Start(bool tcp, (string Certificate, string Key)? tls, (int Port, int TlsPort)? port, string[] extraArguments,
        Placement? placement = null)
    {
        var exe = FindTurnServer();
        var listening = port?.Port ?? (tcp ? FreeUdpAndTcpPort() : FreeUdpPort());
        var tlsPort = tls is null ? 0 : port?.TlsPort ?? FreeTcpPort(listening);
        var (minRelay, maxRelay) = placement is null ? FreeUdpRange(16) : (49160, 49175);
        var ip = (placement?.Address ?? IPAddress.Loopback).ToString();
        var directory = Directory.CreateTempSubdirectory("coturn-").FullName;
        var psi = new ProcessStartInfo(placement is null ? exe : "ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (placement is not null) foreach (var a in new[] { "netns", "exec", placement.Namespace, exe }) psi.ArgumentList.Add(a);
        foreach (var a in new[]
        {
            "-n", $"--listening-ip={ip}", $"--relay-ip={ip}", $"--listening-port={listening}",
            $"--min-port={minRelay}", $"--max-port={maxRelay}", $"--user={User}:{Password}", $"--realm={Realm}",
            "--lt-cred-mech", "--no-dtls", "--no-cli", "--no-rfc5780", "--fingerprint",
            "--allow-loopback-peers", "--no-multicast-peers", "--log-file=stdout", "--simple-log",
            $"--pidfile={Path.Combine(directory, "turnserver.pid")}",
            $"--userdb={Path.Combine(directory, "turndb")}",
        }.Concat(tcp ? [] : ["--no-tcp"])
         .Concat(tls is { } t ? [$"--tls-listening-port={tlsPort}", $"--cert={t.Certificate}", $"--pkey={t.Key}"] : ["--no-tls"])
         .Concat(extraArguments)) psi.ArgumentList.Add(a);

        var process = Process.Start(psi) ?? throw new InvalidOperationException("turnserver did not start.");
        var server = new CoturnServer(process, directory, listening, minRelay, maxRelay, tls, tcp, placement) { TlsPort = tlsPort };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (server._output) server._output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (server._output) server._output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            server.WaitUntilAnswering(TimeSpan.FromSeconds(15));
            return server;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    private void WaitUntilAnswering(TimeSpan limit)
    {
        using var socket = _placement?.NewUdpSocketInside() ?? new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(_placement?.Address ?? IPAddress.Loopback, 0));
        socket.ReceiveTimeout = 200;
        var probe = new byte[] { 0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
        var buffer = new byte[1500];
        var deadline = DateTime.UtcNow + limit;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"turnserver exited with {_process.ExitCode}:\n{Output}");
            socket.SendTo(probe, EndPoint);
            try
            {
                if (socket.Receive(buffer) >= 20) return;
            }
            catch (SocketException) { /* not yet listening (timeout or ICMP port unreachable) */ }
            Thread.Sleep(50);
        }
        throw new TimeoutException($"turnserver did not answer on {EndPoint} within {limit}:\n{Output}");
    }

    private static int FreeUdpPort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    private static int FreeUdpAndTcpPort()
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var port = ((IPEndPoint)udp.LocalEndPoint!).Port;
            using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try { tcp.Bind(new IPEndPoint(IPAddress.Loopback, port)); return port; }
            catch (SocketException) { /* taken on TCP: another */ }
        }
        throw new InvalidOperationException("No free UDP+TCP port for coturn.");
    }

    private static int FreeTcpPort(int not)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            tcp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var port = ((IPEndPoint)tcp.LocalEndPoint!).Port;
            if (port != not) return port;
        }
        throw new InvalidOperationException("No free TCP port for coturn's TLS listener.");
    }

    private static (int Min, int Max) FreeUdpRange(int count)
    {
        var random = new Random();
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var start = random.Next(40000, 60000 - count) & ~1;
            var sockets = new List<Socket>();
            try
            {
                for (var p = start; p < start + count; p++)
                {
                    var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                    sockets.Add(s);
                    s.Bind(new IPEndPoint(IPAddress.Loopback, p));
                }
                return (start, start + count - 1);
            }
            catch (SocketException) { /* taken: try another range */ }
            finally
            {
                foreach (var s in sockets) s.Dispose();
            }
        }
        throw new InvalidOperationException("No free UDP port range for coturn relays.");
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException) { /* already gone */ }
        _process.Dispose();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
