using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using Transport.Samples.EchoServer;
using Transport.Streaming.Hosting;
using static Transport.Streaming.Tests.Hosting.EdgeTestSupport;

namespace Transport.Streaming.Tests.Hosting;

/// <summary>
/// Authenticated control: every operation on an existing session needs a secret only its creator got; the
/// session list needs the admin token; WebSocket endpoints check Origin.
/// </summary>
public sealed class EdgeAuthTests
{
    private static async Task<(string Id, Uri Resource)> CreateWhipSessionAsync(EchoTestHost host, HttpClient http)
    {
        using var created = await http.SendAsync(WhipPost(host.Whip));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var resource = new Uri(host.Whip, created.Headers.Location!);
        return (resource.Segments[^1], resource);
    }

    [Fact]
    public async Task TheSessionListIsOffWithoutAnAdminTokenAndRevealsNothingWithoutTheToken()
    {
        await using (var off = await EchoTestHost.StartAsync())
        {
            using var http = new HttpClient();
            var (id, _) = await CreateWhipSessionAsync(off, http);
            using var listed = await http.GetAsync(new Uri(off.Http, "/sessions"));
            Assert.Equal(HttpStatusCode.NotFound, listed.StatusCode);
            Assert.DoesNotContain(id, await listed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { AdminToken = "adm1n" } });
        using (var http = new HttpClient())
        {
            var (id, _) = await CreateWhipSessionAsync(host, http);
            foreach (var given in new[] { null, "wrong", "adm1n2" })
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(host.Http, "/sessions"));
                if (given is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", given);
                using var refused = await http.SendAsync(request);
                Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
                Assert.DoesNotContain(id, await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
                Assert.DoesNotContain("127.0.0.1", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "adm1n");
            Assert.Contains(id, await http.GetStringAsync(new Uri(host.Http, "/sessions")), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AWhipResourceCannotBeReadPatchedOrDeletedWithoutItsSecret()
    {
        await using var host = await EchoTestHost.StartAsync();
        using var http = new HttpClient();
        var (id, resource) = await CreateWhipSessionAsync(host, http);
        var (otherId, otherResource) = await CreateWhipSessionAsync(host, http);
        Assert.Contains("secret=", resource.Query, StringComparison.Ordinal);

        var secretOfTheOther = System.Web.HttpUtility.ParseQueryString(otherResource.Query)["secret"];
        foreach (var guess in new[] { new Uri(host.Whip, "/whip/" + id), new Uri(host.Whip, $"/whip/{id}?secret=wrong"),
            new Uri(host.Whip, $"/whip/{id}?secret={secretOfTheOther}") })
        {
            using (var delete = await http.DeleteAsync(guess)) Assert.Equal(HttpStatusCode.NotFound, delete.StatusCode);
            using (var patch = new HttpRequestMessage(HttpMethod.Patch, guess) { Content = new StringContent("a=end-of-candidates\r\n") })
            {
                patch.Content.Headers.ContentType = new MediaTypeHeaderValue("application/trickle-ice-sdpfrag");
                using var patched = await http.SendAsync(patch);
                Assert.Equal(HttpStatusCode.NotFound, patched.StatusCode);
            }
            using (var get = await http.GetAsync(guess)) Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        }
        Assert.NotNull(host.Server.Find(id));

        // Its creator reads its health and ends it with the resource as it was given.
        var health = await http.GetStringAsync(resource);
        Assert.Contains(id, health, StringComparison.Ordinal);
        Assert.DoesNotContain(otherId, health, StringComparison.Ordinal);
        using (var deleted = await http.DeleteAsync(resource)) Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        Assert.Null(host.Server.Find(id));
        Assert.NotNull(host.Server.Find(otherId));
        using (var again = await http.DeleteAsync(resource)) Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
    }

    [Fact]
    public async Task ReconnectingToASignalingSessionNeedsItsResumeToken()
    {
        await using var host = await EchoTestHost.StartAsync();
        using var creator = new ClientWebSocket();
        await creator.ConnectAsync(host.Signal, default);
        await SendJsonAsync(creator, new { type = "offer", sdp = Offer });
        var answer = await ReceiveJsonAsync(creator);
        Assert.Equal("answer", answer.GetProperty("type").GetString());
        var id = answer.GetProperty("session").GetString()!;
        var resume = answer.GetProperty("resume").GetString()!;
        Assert.True(resume.Length >= 40, "the resume token is too short to be unguessable");

        using var intruder = new ClientWebSocket();
        await intruder.ConnectAsync(host.Signal, default);
        foreach (object attempt in new object[] { new { type = "reconnect", session = id }, new { type = "reconnect", session = id, resume = "wrong" },
            new { type = "reconnect", session = id, resume = resume[..^1] } })
        {
            await SendJsonAsync(intruder, attempt);
            var refused = await ReceiveJsonAsync(intruder);
            Assert.Equal("unknown_session", refused.GetProperty("error").GetString());
        }
        // Not attached: its bye is not for the session.
        await SendJsonAsync(intruder, new { type = "bye" });
        Assert.Equal("unexpected_message", (await ReceiveJsonAsync(intruder)).GetProperty("error").GetString());
        Assert.NotNull(host.Server.Find(id));

        using var owner = new ClientWebSocket();
        await owner.ConnectAsync(host.Signal, default);
        await SendJsonAsync(owner, new { type = "reconnect", session = id, resume });
        Assert.Equal("reconnected", (await ReceiveJsonAsync(owner)).GetProperty("type").GetString());
    }

    [Fact]
    public async Task AWebSocketFromAPageOfAnotherOriginIsRefusedUnlessAllowed()
    {
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { AllowedOrigins = ["https://app.example"] } });
        var ws = new Uri($"ws://{host.Http.Authority}/ws");
        foreach (var endpoint in new[] { host.Signal, ws })
        {
            var (refused, status) = await TryConnectAsync(endpoint, "https://evil.example");
            using (refused)
            {
                Assert.Equal(403, status);
                Assert.NotEqual(WebSocketState.Open, refused.State);
            }
            foreach (var origin in new[] { null, $"http://{host.Http.Authority}", "https://app.example" })
            {
                var (accepted, _) = await TryConnectAsync(endpoint, origin);
                using (accepted)
                {
                    Assert.Equal(WebSocketState.Open, accepted.State);
                    await accepted.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", new CancellationTokenSource(Patience).Token);
                }
            }
        }
    }
}
