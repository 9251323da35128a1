using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;

namespace Transport.Streaming.Tests.Interop;

/// <summary>The browser test set-up itself: Chromium inside a namespace reaches our sockets made inside it, and nothing else.</summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class BrowserNamespaceTests
{
    [Fact]
    public async Task ChromiumInTheNamespaceReachesOurListenerOnItsLoopback()
    {
        using var ns = NetworkNamespace.Create();
        var listener = ns.CreateInside(() => { var l = new TcpListener(IPAddress.Loopback, 0); l.Start(); return l; });
        try
        {
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var server = Task.Run(async () =>
            {
                using var client = await listener.AcceptTcpClientAsync();
                var stream = client.GetStream();
                var buffer = new byte[4096];
                _ = await stream.ReadAsync(buffer);
                const string body = "inside";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(
                    $"HTTP/1.1 200 OK\r\nContent-Length: {body.Length}\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n{body}"));
            });
            await using var chromium = await HeadlessChromium.LaunchAsync(ns);
            var page = await chromium.Browser.NewPageAsync();
            Assert.Equal("inside", await page.EvaluateAsync<string>($"fetch('http://127.0.0.1:{port}/').then(r => r.text())"));
            await server.WaitAsync(TimeSpan.FromSeconds(10));

            // The same port in the host namespace is not the namespace's: nothing listens there for the browser.
            var hostListener = new TcpListener(IPAddress.Loopback, 0);
            hostListener.Start();
            try
            {
                var hostPort = ((IPEndPoint)hostListener.LocalEndpoint).Port;
                var outcome = await page.EvaluateAsync<string>(
                    $"fetch('http://127.0.0.1:{hostPort}/').then(() => 'reached', () => 'refused')");
                Assert.Equal("refused", outcome);
            }
            finally { hostListener.Stop(); }
        }
        finally { listener.Stop(); }
    }
}

/// <summary>Browser tests run one at a time: each starts a Chromium, and the machine has two cores.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class BrowserCollection
{
    public const string Name = "browser";
}
