using System.Diagnostics;
using System.Runtime.Versioning;
using System.Text.Json;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// aiortc 1.4 (Debian python3-aiortc: Python's own ICE, DTLS over OpenSSL and SCTP) as the WHIP client of the main
/// program, both inside a network namespace with only loopback. aiortc offers its data channel in the form before
/// RFC 8841 (<c>DTLS/SCTP 5000</c> with <c>a=sctpmap</c>); the answer must use that form too, or aiortc fails in
/// setRemoteDescription.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class AiortcInteropTests(ITestOutputHelper output)
{
    private const string Python = "/usr/bin/python3";

    [Fact]
    public async Task AiortcOffersTheOlderDataChannelFormOverWhipAndItsMessageEchoes()
    {
        var script = Path.Combine(AppContext.BaseDirectory, "Fixtures", "aiortc-whip-client.py");
        if (!File.Exists("/usr/lib/python3/dist-packages/aiortc/__init__.py"))
            throw new InvalidOperationException("aiortc is missing: ./test.sh installs Debian's python3-aiortc package.");
        using var ns = NetworkNamespace.Create("rtc-aiortc");
        using var server = await EchoServerProcess.StartAsync(ns);
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", ns.Name, Python, script, server.Url + "/whip", "hello from aiortc"]) start.ArgumentList.Add(a);
        using var client = Process.Start(start) ?? throw new InvalidOperationException("could not start python3");
        try
        {
            var stdout = client.StandardOutput.ReadToEndAsync();
            var stderr = client.StandardError.ReadToEndAsync();
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            await client.WaitForExitAsync(bound.Token);
            var text = (await stdout).Trim();
            output.WriteLine(text);
            output.WriteLine(await stderr);
            foreach (var line in server.Output.Where(l => l.Contains("Peer connection", StringComparison.Ordinal))) output.WriteLine("server: " + line);
            var r = JsonDocument.Parse(text.Split('\n')[^1]).RootElement;
            Assert.False(r.TryGetProperty("error", out var error), "aiortc: " + error);
            Assert.Equal("sctpmap", r.GetProperty("offer_form").GetString());
            Assert.Equal(201, r.GetProperty("post_status").GetInt32());
            Assert.Matches(@"^m=application \d+ DTLS/SCTP 5000$", r.GetProperty("answer_m_line").GetString());
            Assert.StartsWith("a=sctpmap:5000 webrtc-datachannel ", r.GetProperty("answer_sctpmap").GetString(), StringComparison.Ordinal);
            Assert.Equal("hello from aiortc", r.GetProperty("echo").GetString());
            Assert.Equal(200, r.GetProperty("delete_status").GetInt32());
        }
        finally
        {
            if (!client.HasExited) client.Kill(entireProcessTree: true);
        }
    }
}
