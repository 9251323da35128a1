using System.Collections;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text.Json;
using Transport.TestKit;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// Chromium on a network where only <c>turns:</c> gets through (issue 20): two namespaces joined by a veth pair
/// (10.81.N.1 the servers, 10.81.N.2 the browser). In the server's namespace run the echo server (the main program)
/// and coturn, with TLS on 5349 and a self-signed certificate the test makes with openssl. nftables in the browser's
/// namespace drops every UDP packet and every TCP segment except to the echo server's HTTP port (the page and its
/// WHIP signaling, as a firewall lets the web through) and to coturn's TLS port. Chromium, configured with
/// <c>iceServers: [{ urls: 'turns:10.81.N.1:5349?transport=tcp', ... }]</c> and <c>iceTransportPolicy: 'relay'</c>,
/// allocates over TLS, coturn relays to the server's UDP host candidate, the data channel echoes, and its getStats
/// selected pair is a relay candidate with <c>relayProtocol</c> 'tls'.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class TurnsBrowserTests(ITestOutputHelper output)
{
    private const string Script = """
        async ([turnUrl, user, password]) => {
          const out = { echoes: [] };
          const pc = new RTCPeerConnection({ iceServers: [{ urls: turnUrl, username: user, credential: password }], iceTransportPolicy: 'relay' });
          const control = pc.createDataChannel('control');
          const data = pc.createDataChannel('data');
          control.onmessage = e => { const m = JSON.parse(e.data); if (m.type === 'ping') control.send(JSON.stringify({ type: 'pong', id: m.id })); };
          data.onmessage = e => out.echoes.push(e.data);
          out.candidateErrors = [];
          pc.onicecandidateerror = e => out.candidateErrors.push(e.errorCode + ' ' + e.errorText + ' ' + e.url);
          const gathered = new Promise(ok => { pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') ok(); };
            setTimeout(ok, 15000); });
          const started = performance.now();
          await pc.setLocalDescription(await pc.createOffer());
          await gathered;
          out.offer = pc.localDescription.sdp;
          if (!/ typ relay/.test(out.offer)) { out.error = 'no relayed candidate gathered: ' + JSON.stringify(out.candidateErrors); pc.close();
            return JSON.stringify(out); }
          const r = await fetch('/whip', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
          out.status = r.status;
          out.answer = await r.text();
          await pc.setRemoteDescription({ type: 'answer', sdp: out.answer });
          try {
            await new Promise((ok, fail) => { data.onopen = ok;
              setTimeout(() => fail(new Error('the data channel did not open: ' + pc.connectionState + ' / ' + pc.iceConnectionState)), 30000); });
          } catch (e) { out.error = String(e); pc.close(); return JSON.stringify(out); }
          out.openMs = performance.now() - started;
          for (let i = 0; i < 50; i++) data.send('m' + i);
          await new Promise(ok => { const t = setInterval(() => { if (out.echoes.length >= 50) { clearInterval(t); ok(); } }, 20); setTimeout(ok, 15000); });
          const stats = await pc.getStats(); let pairId = null;
          stats.forEach(s => { if (s.type === 'transport') pairId = s.selectedCandidatePairId; });
          const pair = pairId ? stats.get(pairId) : null;
          if (pair) {
            const l = stats.get(pair.localCandidateId), rc = stats.get(pair.remoteCandidateId);
            out.localType = l.candidateType; out.localProtocol = l.protocol; out.relayProtocol = l.relayProtocol || null; out.local = l.address;
            out.url = l.url || null;
            out.remoteType = rc.candidateType; out.remoteProtocol = rc.protocol; out.remote = rc.address; out.remotePort = rc.port;
          }
          pc.close();
          return JSON.stringify(out);
        }
        """;

    /// <summary>How Chromium is made to trust coturn's self-signed certificate.</summary>
    public enum Trust
    {
        /// <summary>The certificate added to the NSS database of the browser's HOME (certutil, Debian libnss3-tools).</summary>
        NssDatabase,
        /// <summary>No trust at all: the TLS handshake to coturn must fail and no relayed candidate is gathered.</summary>
        None,
        /// <summary>No certificate in the database, Chromium started with <c>--ignore-certificate-errors</c>.</summary>
        IgnoreFlag,
    }

    [Fact]
    public Task ChromiumWithOnlyTurnsAllowedEchoesThroughCoturnOverTlsWhenTheCertificateIsInItsNssDatabase() => RunAsync(Trust.NssDatabase);

    /// <summary>
    /// The same browser and network without the certificate in its NSS database: Chromium validates the TURN server's
    /// certificate, so no relayed candidate comes (and nothing else can get through).
    /// </summary>
    [Fact]
    public Task ChromiumRefusesTheSelfSignedTurnsCertificateItDoesNotTrust() => RunAsync(Trust.None);

    /// <summary>
    /// The other way to make Chromium accept the self-signed certificate (checked: it works for TURN over TLS too, in
    /// Chromium 156): <c>--ignore-certificate-errors</c>, with nothing in its NSS database.
    /// </summary>
    [Fact]
    public Task ChromiumWithOnlyTurnsAllowedEchoesThroughCoturnOverTlsWithIgnoreCertificateErrors() => RunAsync(Trust.IgnoreFlag);

    private async Task RunAsync(Trust trust)
    {
        const string nft = "/usr/sbin/nft";
        if (!File.Exists(nft)) throw new InvalidOperationException($"{nft} is missing: install the Debian package 'nftables'.");
        var subnet = $"10.81.{Random.Shared.Next(1, 250)}";
        string serverAddress = subnet + ".1", browserAddress = subnet + ".2";
        using var serverNs = NetworkNamespace.Create("rtc-tls");
        using var browserNs = NetworkNamespace.Create("rtc-brw");
        serverNs.ConnectVeth(browserNs, serverAddress, browserAddress);
        browserNs.AddDefaultRoute(serverAddress);
        var rules = Path.Combine(Path.GetTempPath(), $"{browserNs.Name}.nft");
        File.WriteAllText(rules, $$"""
            table inet turnsonly {
              chain out { type filter hook output priority 0; policy accept; oifname "lo" accept; ip daddr {{serverAddress}} tcp dport { 8080, 5349 } accept;
                meta l4proto udp counter drop; meta l4proto tcp counter drop; }
              chain in { type filter hook input priority 0; policy accept; iifname "lo" accept; ip saddr {{serverAddress}} tcp sport { 8080, 5349 } accept;
                meta l4proto udp counter drop; meta l4proto tcp counter drop; }
            }
            """);
        try { browserNs.Exec(nft, "-f", rules); }
        finally { File.Delete(rules); }

        using var certificate = OpenSslCertificate.Create("turn.test", "IP:" + serverAddress);
        var home = Directory.CreateTempSubdirectory("chromium-home-").FullName;
        try
        {
            if (trust == Trust.NssDatabase) TrustInNssDatabase(home, certificate.CertificatePath);
            var address = IPAddress.Parse(serverAddress);
            using var coturn = CoturnServer.StartTlsIn(
                new CoturnServer.Placement(serverNs.Name, address,
                    () => serverNs.CreateInside(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))),
                certificate.CertificatePath, certificate.KeyPath);
            using var server = await EchoServerProcess.StartAtAsync(serverNs, $"http://{serverAddress}:8080", []);
            try
            {
                var environment = Environment.GetEnvironmentVariables().Cast<DictionaryEntry>()
                    .Where(e => (string)e.Key != "HOME")
                    .Select(e => new KeyValuePair<string, string>((string)e.Key, (string?)e.Value ?? ""))
                    .Append(new("HOME", home))
                    .ToList();
                await using var chromium = await HeadlessChromium.LaunchAsync(browserNs, environment, fakeMedia: false,
                    trust == Trust.IgnoreFlag ? ["--ignore-certificate-errors"] : []);
                var page = await chromium.Browser.NewPageAsync();
                await page.GotoAsync(server.Url + "/");
                var turnUrl = $"turns:{serverAddress}:{coturn.TlsPort}?transport=tcp";
                var json = await page.EvaluateAsync<string>(Script, new[] { turnUrl, CoturnServer.User, CoturnServer.Password });
                output.WriteLine(json);
                var r = JsonDocument.Parse(json).RootElement;
                if (trust == Trust.None)
                {
                    // No relayed candidate: the handshake to coturn failed on the certificate (and nothing else gets out).
                    Assert.DoesNotContain(" typ relay", r.GetProperty("offer").GetString()!, StringComparison.Ordinal);
                    Assert.StartsWith("no relayed candidate", r.GetProperty("error").GetString(), StringComparison.Ordinal);
                    return;
                }
                Assert.False(r.TryGetProperty("error", out var error), error.ToString());
                Assert.Equal(201, r.GetProperty("status").GetInt32());
                Assert.Contains(" typ relay", r.GetProperty("offer").GetString()!, StringComparison.Ordinal);
                Assert.Equal(Enumerable.Range(0, 50).Select(i => "m" + i), r.GetProperty("echoes").EnumerateArray().Select(e => e.GetString()));
                Assert.Equal("relay", r.GetProperty("localType").GetString());
                Assert.Equal("tls", r.GetProperty("relayProtocol").GetString());
                Assert.Equal(serverAddress, r.GetProperty("local").GetString());   // coturn's relayed address
                Assert.Equal(serverAddress, r.GetProperty("remote").GetString());
                Assert.Equal(50000, r.GetProperty("remotePort").GetInt32());       // our UDP host candidate, reached by coturn
                Assert.Equal("udp", r.GetProperty("remoteProtocol").GetString());
                output.WriteLine($"data channel open {r.GetProperty("openMs").GetDouble():F0} ms after createOffer (gathering over TLS included)");
                // The firewall's counters: what Chromium tried besides TLS to coturn and HTTP to the page was dropped.
                output.WriteLine(NftCounters(browserNs));
            }
            catch
            {
                output.WriteLine(string.Join("\n", server.Output));
                output.WriteLine(coturn.Output);
                throw;
            }
        }
        finally
        {
            try { Directory.Delete(home, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>
    /// An NSS database in <paramref name="home"/>/.pki/nssdb (where Chromium on Linux reads the certificates its user added) trusting
    /// <paramref name="certificatePem"/>.
    /// </summary>
    private static void TrustInNssDatabase(string home, string certificatePem)
    {
        const string certutil = "/usr/bin/certutil";
        if (!File.Exists(certutil)) throw new InvalidOperationException($"{certutil} is missing: install the Debian package 'libnss3-tools' (test.sh does).");
        var db = Path.Combine(home, ".pki", "nssdb");
        Directory.CreateDirectory(db);
        Run(certutil, "-N", "-d", "sql:" + db, "--empty-password");
        // P: a trusted peer (the self-signed server certificate itself), C: a trusted CA, for TLS servers.
        Run(certutil, "-A", "-d", "sql:" + db, "-n", "turn-test", "-t", "CP,,", "-i", certificatePem);
    }

    private static void Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + file);
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(30_000)) { p.Kill(); throw new TimeoutException(file + " hung"); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed: {stderr.Result}");
    }

    private static string NftCounters(NetworkNamespace ns)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "netns", "exec", ns.Name, "/usr/sbin/nft", "list", "table", "inet", "turnsonly" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var text = p.StandardOutput.ReadToEnd();
        p.WaitForExit(10_000);
        return text;
    }
}
