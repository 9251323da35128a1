using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Transport.Dtls.Tests;

/// <summary>
/// Runs <c>openssl s_server</c> / <c>s_client</c> on 127.0.0.1 (shared/INTEROP.md) and drives one of our connections
/// over a real UDP socket. The process is killed by id in Dispose, whatever happened.
/// </summary>
internal sealed partial class OpenSslPeer : IDisposable
{
    public const string OpenSsl = "/usr/bin/openssl";
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly string _directory;

    private OpenSslPeer(string arguments, string directory)
    {
        _directory = directory;
        var info = new ProcessStartInfo(OpenSsl, arguments)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = directory,
        };
        _process = Process.Start(info) ?? throw new InvalidOperationException("openssl did not start");
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        // stdin stays open: DTLS s_server / s_client end when it reaches EOF.
    }

    public string Output { get { lock (_output) return _output.ToString(); } }

    public bool HasExited => _process.HasExited;

    /// <summary>The keying material openssl printed (-keymatexport), or null so far.</summary>
    public byte[]? KeyingMaterial
    {
        get
        {
            var m = KeyingMaterialLine().Match(Output);
            return m.Success ? Convert.FromHexString(m.Groups[1].Value) : null;
        }
    }

    [GeneratedRegex(@"Keying material:\s*([0-9A-Fa-f]+)")]
    private static partial Regex KeyingMaterialLine();

    public static void RequireOpenSsl() =>
        Assert.True(File.Exists(OpenSsl), $"{OpenSsl} is missing: install the Debian package 'openssl' (test.sh does).");

    private static string WriteCredentials(DtlsCertificate certificate)
    {
        var dir = Directory.CreateTempSubdirectory("dtls-openssl-").FullName;
        File.WriteAllText(Path.Combine(dir, "cert.pem"), certificate.Certificate.ExportCertificatePem());
        using System.Security.Cryptography.AsymmetricAlgorithm key = certificate.IsRsa
            ? System.Security.Cryptography.X509Certificates.RSACertificateExtensions.GetRSAPrivateKey(certificate.Certificate)!
            : System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions.GetECDsaPrivateKey(certificate.Certificate)!;
        File.WriteAllText(Path.Combine(dir, "key.pem"), key.ExportPkcs8PrivateKeyPem());
        return dir;
    }

    private const string Srtp = "-use_srtp SRTP_AES128_CM_SHA1_80 -keymatexport EXTRACTOR-dtls_srtp -keymatexportlen 60";

    public static OpenSslPeer StartServer(DtlsCertificate certificate, int port, string extra = "") =>
        new($"s_server -dtls1_2 -accept {port} -cert cert.pem -key key.pem -verify 1 {Srtp} {extra}", WriteCredentials(certificate));

    public static OpenSslPeer StartClient(DtlsCertificate certificate, int port, string extra = "") =>
        new($"s_client -dtls1_2 -connect 127.0.0.1:{port} -cert cert.pem -key key.pem {Srtp} {extra}", WriteCredentials(certificate));

    /// <summary>Runs openssl to completion and returns what it printed (bounded wait).</summary>
    public static string Run(string arguments)
    {
        using var p = Process.Start(new ProcessStartInfo(OpenSsl, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false
        })!;
        try
        {
            var output = p.StandardOutput.ReadToEndAsync();
            Assert.True(p.WaitForExit(10_000), "openssl did not finish");
            return output.Result;
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
    }

    public static int FreeUdpPort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    /// <summary>
    /// Moves datagrams between <paramref name="ours"/> and the socket until <paramref name="done"/> holds or
    /// <paramref name="limit"/> passes (then fails with openssl's output).
    /// </summary>
    public void Drive(DtlsConnection ours, Socket socket, EndPoint? remote, Func<bool> done, TimeSpan limit, List<DtlsEvent> events, Action<int>? onSend = null)
    {
        var clock = Stopwatch.StartNew();
        var buffer = new byte[2048];
        EndPoint from = new IPEndPoint(IPAddress.Any, 0);
        while (!done())
        {
            Assert.False(_process.HasExited && !socket.Poll(0, SelectMode.SelectRead) && !done(),
                $"openssl exited early; our state {ours.State}; openssl said:\n{Output}");
            Assert.True(clock.Elapsed < limit,
                $"No result within {limit}; our state {ours.State}; events {string.Join(", ", events)}; openssl said:\n{Output}");
            if (socket.Poll(5_000, SelectMode.SelectRead))
            {
                var n = socket.ReceiveFrom(buffer, ref from);
                remote ??= from;
                ours.HandleDatagram(buffer.AsSpan(0, n), clock.Elapsed);
            }
            if (ours.PollTimeout() is { } t && t <= clock.Elapsed) ours.HandleTimeout(clock.Elapsed);
            while (remote is not null && ours.TryPollTransmit(buffer, out var m))
            {
                onSend?.Invoke(m);
                socket.SendTo(buffer.AsSpan(0, m), remote);
            }
            while (ours.TryPollEvent(out var e)) events.Add(e);
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
        _process.Dispose();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }
}
