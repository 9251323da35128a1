using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Transport.Ice.Stun;

namespace Transport.Ice.Tests.Turn;

/// <summary>
/// coturn (/usr/bin/turnserver, Debian package <c>coturn</c>) on 127.0.0.1 for interop tests: free listening and
/// relay ports, its own temp directory (pid file, user database), started and killed by process id (also when a
/// test fails), every wait bounded. A missing binary fails the test with a clear message.
/// </summary>
internal sealed class Coturn : IDisposable
{
    public const string Binary = "/usr/bin/turnserver";
    public const string User = "test";
    public const string Password = "test";
    public const string Realm = "example.test";

    private readonly Process _process;
    private readonly string _directory;
    private readonly StringBuilder _log = new();

    public Coturn(params string[] extraArguments)
    {
        if (!File.Exists(Binary))
            throw new InvalidOperationException($"{Binary} is missing: install the Debian package 'coturn' (apt-get install -y coturn).");
        _directory = Directory.CreateTempSubdirectory("coturn-test-").FullName;
        Port = FreeUdpAndTcpPort();
        var (min, max) = FreeRelayRange(16);
        var arguments = new List<string>
        {
            "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", $"--listening-port={Port}",
            $"--min-port={min}", $"--max-port={max}", $"--user={User}:{Password}", $"--realm={Realm}", "--lt-cred-mech",
            "--no-tls", "--no-dtls", "--no-cli", "--fingerprint", "--allow-loopback-peers", "--no-multicast-peers",
            "--log-file=stdout", "--simple-log", $"--pidfile={Path.Combine(_directory, "turnserver.pid")}",
            $"--userdb={Path.Combine(_directory, "turndb")}",
        };
        arguments.AddRange(extraArguments);
        var info = new ProcessStartInfo(Binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = _directory };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        _process = Process.Start(info) ?? throw new InvalidOperationException("turnserver did not start");
        _process.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        try { WaitUntilAnswering(TimeSpan.FromSeconds(10)); }
        catch { Dispose(); throw; }
    }

    public int Port { get; }

    public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);

    public StunAddress Address => StunAddress.FromEndPoint(EndPoint);

    public string Log { get { lock (_log) return _log.ToString(); } }

    private void WaitUntilAnswering(TimeSpan limit)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var request = new byte[28];
        var writer = new StunMessageWriter(request, StunMessageType.BindingRequest, new byte[12]);
        var length = writer.Length;
        var deadline = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
        var buffer = new byte[1500];
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"turnserver exited with {_process.ExitCode}:\n{Log}");
            socket.SendTo(request.AsSpan(0, length), EndPoint);
            if (socket.Poll(100_000, SelectMode.SelectRead) && socket.Receive(buffer) > 0) return;
        }
        throw new TimeoutException($"turnserver did not answer a Binding request within {limit.TotalSeconds} s:\n{Log}");
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
            catch (SocketException) { }
        }
        throw new InvalidOperationException("no free port for turnserver");
    }

    private static (int Min, int Max) FreeRelayRange(int count)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var min = Random.Shared.Next(20_000, 60_000);
            var sockets = new List<Socket>();
            try
            {
                for (var p = min; p < min + count; p++)
                {
                    var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                    sockets.Add(s);
                    s.Bind(new IPEndPoint(IPAddress.Loopback, p));
                }
                return (min, min + count - 1);
            }
            catch (SocketException) { }
            finally { foreach (var s in sockets) s.Dispose(); }
        }
        throw new InvalidOperationException("no free relay port range for turnserver");
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
        catch (InvalidOperationException) { }
        _process.Dispose();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
