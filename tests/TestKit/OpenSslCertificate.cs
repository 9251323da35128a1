using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;

namespace Transport.TestKit;

/// <summary>
/// A self-signed P-256 certificate and its key made by the openssl command line (as an operator would make one for
/// coturn), as PEM files in a temporary directory of its own, deleted on Dispose. Fails (never skips) when openssl is
/// missing: test.sh installs it.
/// </summary>
public sealed class OpenSslCertificate : IDisposable
{
    private readonly string _directory;

    private OpenSslCertificate(string directory, X509Certificate2 certificate)
    {
        _directory = directory;
        Certificate = certificate;
    }

    /// <summary>The certificate file (PEM).</summary>
    public string CertificatePath => Path.Combine(_directory, "cert.pem");

    /// <summary>The private key file (PEM, unencrypted).</summary>
    public string KeyPath => Path.Combine(_directory, "key.pem");

    /// <summary>The certificate, loaded.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>
    /// Makes a certificate for <paramref name="commonName"/> with the subject alternative names given in openssl's
    /// syntax (<c>IP:127.0.0.1</c>, <c>DNS:turn.test</c>), valid from a day ago for two days.
    /// </summary>
    public static OpenSslCertificate Create(string commonName, params string[] subjectAltNames)
    {
        var directory = Directory.CreateTempSubdirectory("cert-").FullName;
        var psi = new ProcessStartInfo("openssl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[]
        {
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-keyout", Path.Combine(directory, "key.pem"), "-out", Path.Combine(directory, "cert.pem"),
            "-subj", "/CN=" + commonName,
        }) psi.ArgumentList.Add(a);
        if (subjectAltNames.Length > 0)
        {
            psi.ArgumentList.Add("-addext");
            psi.ArgumentList.Add("subjectAltName=" + string.Join(',', subjectAltNames));
        }
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("openssl did not start.");
        var errors = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(30_000)) { process.Kill(); throw new TimeoutException("openssl req did not finish in 30 s."); }
        if (process.ExitCode != 0) throw new InvalidOperationException($"openssl req failed ({process.ExitCode}): {errors.Result}");
        var certificate = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(directory, "cert.pem"));
        return new OpenSslCertificate(directory, certificate);
    }

    public void Dispose()
    {
        Certificate.Dispose();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
