using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Transport.Samples.EchoServer;
using Transport.Streaming.Hosting;
using Transport.Streaming.Sessions;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Hosting;

/// <summary>WHIP (RFC 9725) and WebSocket signaling of WebRTC sessions against the real Kestrel server, with our own client.</summary>
public sealed class WebRtcSignalingTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private static async Task<List<ClientObservation>> ReadUntilCloseAsync(WebRtcStreamClient client)
    {
        var seen = new List<ClientObservation>();
        while (seen.Count == 0 || seen[^1].Kind != "close") seen.Add(await client.NextAsync(Patience));
        return seen;
    }

    // The client's selected pair once there is one (and, with otherThan, once it belongs to another ICE generation).
    private static async Task<Transport.Streaming.WebRtc.SelectedIcePair> SelectedPairAsync(WebRtcStreamClient client, string? otherThan = null)
    {
        var waiting = Stopwatch.StartNew();
        Transport.Streaming.WebRtc.SelectedIcePair? pair;
        while (((pair = await client.PeerConnection.GetSelectedPairAsync()) is null || pair.LocalUsernameFragment == otherThan) && waiting.Elapsed < Patience)
            await Task.Delay(10);
        Assert.NotNull(pair);
        Assert.NotEqual(otherThan, pair!.LocalUsernameFragment);
        return pair;
    }

    [Fact]
    public async Task WhipPostAnswers201WithSdpAndLocationPatchTricklesAndDeleteEndsTheSession()
    {
        await using var host = await EchoTestHost.StartAsync();
        using var http = new HttpClient();
        HttpResponseMessage? created = null;
        await using var client = await WebRtcStreamClient.ConnectAsync(async (c, offer, ct) =>
        {
            using var content = new StringContent(offer);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/sdp");
            created = await http.PostAsync(host.Whip, content, ct);
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            Assert.Equal("application/sdp", created.Content.Headers.ContentType!.MediaType);
            Assert.NotNull(created.Headers.Location);
            var answer = await created.Content.ReadAsStringAsync(ct);
            Assert.StartsWith("v=0", answer, StringComparison.Ordinal);
            Assert.Contains("a=candidate:", answer, StringComparison.Ordinal);
            return answer;
        }).WaitAsync(Patience);
        var resource = new Uri(host.Whip, created!.Headers.Location!);
        var id = resource.Segments[^1];
        Assert.StartsWith("/whip/", resource.AbsolutePath, StringComparison.Ordinal);
        Assert.Equal("webrtc", host.Server.Find(id)!.Transport.Kind);

        // Trickle (RFC 8840 fragment): a candidate line and end-of-candidates -> 204; the wrong type -> 415; unknown -> 404.
        var fragment = "a=ice-ufrag:x\r\na=ice-pwd:y\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n" +
                       $"a=candidate:1 1 udp 2130706431 127.0.0.1 {host.Instance.UdpEndPoint.Port + 1} typ host\r\na=end-of-candidates\r\n";
        using (var patch = new HttpRequestMessage(HttpMethod.Patch, resource) { Content = new StringContent(fragment) })
        {
            patch.Content.Headers.ContentType = new MediaTypeHeaderValue("application/trickle-ice-sdpfrag");
            Assert.Equal(HttpStatusCode.NoContent, (await http.SendAsync(patch)).StatusCode);
        }
        using (var wrong = new HttpRequestMessage(HttpMethod.Patch, resource) { Content = new StringContent(fragment) })
            Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await http.SendAsync(wrong)).StatusCode);
        using (var unknown = new HttpRequestMessage(HttpMethod.Patch, new Uri(host.Whip, "/whip/nope")) { Content = new StringContent(fragment) })
        {
            unknown.Content.Headers.ContentType = new MediaTypeHeaderValue("application/trickle-ice-sdpfrag");
            Assert.Equal(HttpStatusCode.NotFound, (await http.SendAsync(unknown)).StatusCode);
        }

        await client.SendTextAsync("still echoing after the PATCH");
        Assert.Equal("still echoing after the PATCH", (await client.NextAsync(Patience)).Text);

        var deleting = Stopwatch.StartNew();
        Assert.Equal(HttpStatusCode.OK, (await http.DeleteAsync(resource)).StatusCode);
        var deleted = deleting.Elapsed;
        var closed = await client.Closed.WaitAsync(Patience);
        output.WriteLine($"DELETE answered after {deleted.TotalMilliseconds:0.0} ms (session released); client saw {closed.State} ({closed.Reason})");
        Assert.Null(host.Server.Find(id));
        Assert.Equal(0, host.Server.Reserved);
        Assert.Equal(HttpStatusCode.NotFound, (await http.DeleteAsync(resource)).StatusCode);
    }

    [Fact]
    public async Task WhipWithABearerTokenRefusesEveryRequestWithoutItAndServesThoseThatCarryIt()
    {
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { Whip = new() { BearerToken = "s3cret-token" } } });
        using var http = new HttpClient();
        static HttpRequestMessage Offer(Uri to, string? token)
        {
            var r = new HttpRequestMessage(HttpMethod.Post, to) { Content = new StringContent("v=0\r\n", Encoding.UTF8, "application/sdp") };
            if (token is not null) r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            return r;
        }

        using (var none = await http.SendAsync(Offer(host.Whip, null)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
            Assert.Equal("Bearer realm=\"whip\"", none.Headers.WwwAuthenticate.ToString());
        }
        using (var wrong = await http.SendAsync(Offer(host.Whip, "s3cret-tokeN")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
            Assert.Contains("invalid_token", wrong.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        }
        Assert.Equal(0, host.Server.Reserved);          // refused before a slot was taken or the offer read
        Assert.Empty(host.Server.Sessions);

        await using var client = await WebRtcStreamClient.ConnectAsync(WebRtcStreamClient.WhipAsync(http, host.Whip, "s3cret-token")).WaitAsync(Patience);
        await client.SendTextAsync("authorized");
        Assert.Equal("authorized", (await client.NextAsync(Patience)).Text);

        // The resource too: PATCH and DELETE without the token are refused and change nothing; with it, DELETE ends the session.
        var id = client.Resource!.Segments[^1];
        using (var patch = new HttpRequestMessage(HttpMethod.Patch, client.Resource)
        {
            Content = new StringContent("a=end-of-candidates\r\n", Encoding.UTF8, "application/trickle-ice-sdpfrag")
        })
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(patch)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.DeleteAsync(client.Resource)).StatusCode);
        Assert.NotNull(host.Server.Find(id));
        using var delete = new HttpRequestMessage(HttpMethod.Delete, client.Resource);
        delete.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret-token");
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(delete)).StatusCode);
        var gone = Stopwatch.StartNew();
        while (host.Server.Find(id) is not null && gone.Elapsed < Patience) await Task.Delay(10);
        Assert.Null(host.Server.Find(id));
    }

    [Fact]
    public async Task WhipAnswersCarryTheConfiguredIceServersAsLinkHeaders()
    {
        var servers = new[]
        {
            new WhipIceServer("stun:stun.example.net:3478"),
            new WhipIceServer("turn:turn.example.net:3478?transport=udp", "user", "pa\"ss"),
        };
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { Whip = new() { IceServers = servers } } });
        using var http = new HttpClient();
        await using var client = await WebRtcStreamClient.ConnectAsync(WebRtcStreamClient.WhipAsync(http, host.Whip)).WaitAsync(Patience);
        Assert.Equal(
        [
            "<stun:stun.example.net:3478>; rel=\"ice-server\"",
            "<turn:turn.example.net:3478?transport=udp>; rel=\"ice-server\"; username=\"user\"; credential=\"pa\\\"ss\"; credential-type=\"password\"",
        ], client.WhipIceServers);

        // What cannot be carried is refused when configured, not sent broken.
        Assert.Throws<ArgumentException>(() => new WhipIceServer("http://example.net"));
        Assert.Throws<ArgumentException>(() => new WhipIceServer("stun:host>evil"));
        Assert.Throws<ArgumentException>(() => new WhipIceServer("stun:host", "user", "pass"));
        Assert.Throws<ArgumentException>(() => new WhipIceServer("turn:host", "user", null));
        Assert.Equal(servers[1], WhipIceServer.Parse("turn:turn.example.net:3478?transport=udp|user|pa\"ss"));
        Assert.Equal("token", EchoServerSettings.Parse(["--whip-token", "token", "--ice-server", "stun:a"]).Sessions.Whip.BearerToken);
    }

    [Fact]
    public async Task WhipPatchWithIfMatchStarAndNewCredentialsRestartsIceAndTheSessionGoesOn()
    {
        await using var host = await EchoTestHost.StartAsync();
        using var http = new HttpClient();
        await using var client = await WebRtcStreamClient.ConnectAsync(WebRtcStreamClient.WhipAsync(http, host.Whip)).WaitAsync(Patience);
        var id = client.Resource!.Segments[^1];
        await client.SendTextAsync("before the restart");
        Assert.Equal("before the restart", (await client.NextAsync(Patience)).Text);
        // Data may flow before ICE nominated (RFC 8445 section 12.1): wait for the selected pair the restart replaces.
        var before = await SelectedPairAsync(client);
        var firstTag = client.WhipEntityTag;
        Assert.Matches($"^\"{id}\\.[A-Za-z0-9+/]{{4,}}\"$", firstTag);

        // The client's new credentials and candidates in a PATCH with If-Match: * -> 200 with the server's, applied as
        // the answer; the new generation's pair is then selected and the echo goes on.
        var clock = Stopwatch.StartNew();
        var selected = await client.RestartIceOverWhipAsync(http).WaitAsync(Patience);
        var answered = clock.Elapsed;
        var done = await selected.WaitAsync(Patience);
        output.WriteLine($"WHIP ICE restart: PATCH answered and applied after {answered.TotalMilliseconds:0.0} ms, new pair selected " +
            $"{clock.Elapsed.TotalMilliseconds:0.0} ms after the PATCH");
        var after = await client.PeerConnection.GetSelectedPairAsync();
        Assert.NotNull(after);
        Assert.NotEqual(before.LocalUsernameFragment, after!.LocalUsernameFragment);
        Assert.Equal(done.LocalUsernameFragment, after.LocalUsernameFragment);
        Assert.Equal($"\"{id}.{done.RemoteUsernameFragment}\"", client.WhipEntityTag);   // the new ICE session's entity tag
        Assert.NotEqual(firstTag, client.WhipEntityTag);
        await client.SendTextAsync("after the restart");
        Assert.Equal("after the restart", (await client.NextAsync(Patience)).Text);
        Assert.Equal(Transport.Streaming.WebRtc.ConnectionState.Connected, client.PeerConnection.State);
        Assert.NotNull(host.Server.Find(id));

        // Credentials that are not ICE credentials -> 400 and nothing changes; an unknown session -> 404.
        var bad = "a=ice-ufrag:ab\r\na=ice-pwd:short\r\n";
        using (var patch = new HttpRequestMessage(HttpMethod.Patch, client.Resource) { Content = new StringContent(bad) })
        {
            patch.Content.Headers.ContentType = new MediaTypeHeaderValue("application/trickle-ice-sdpfrag");
            patch.Headers.TryAddWithoutValidation("If-Match", "*");
            var response = await http.SendAsync(patch);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Contains("ice-ufrag", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        using (var patch = new HttpRequestMessage(HttpMethod.Patch, new Uri(host.Whip, "/whip/nope"))
        {
            Content = new StringContent("a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n")
        })
        {
            patch.Content.Headers.ContentType = new MediaTypeHeaderValue("application/trickle-ice-sdpfrag");
            patch.Headers.TryAddWithoutValidation("If-Match", "*");
            Assert.Equal(HttpStatusCode.NotFound, (await http.SendAsync(patch)).StatusCode);
        }
        // A trickle PATCH for the previous ICE session -> 412; for the current one -> 204.
        var trickle = "a=end-of-candidates\r\n";
        foreach (var (tag, expected) in new[] { (firstTag!, HttpStatusCode.PreconditionFailed), (client.WhipEntityTag!, HttpStatusCode.NoContent) })
        {
            using var patch = new HttpRequestMessage(HttpMethod.Patch, client.Resource) { Content = new StringContent(trickle) };
            patch.Content.Headers.ContentType = new MediaTypeHeaderValue("application/trickle-ice-sdpfrag");
            patch.Headers.TryAddWithoutValidation("If-Match", tag);
            Assert.Equal(expected, (await http.SendAsync(patch)).StatusCode);
        }
        await client.SendTextAsync("still there");
        Assert.Equal("still there", (await client.NextAsync(Patience)).Text);
    }

    [Fact]
    public async Task AFullServerAnswersWhip429WithTheExactJsonAndAdmitsAgainOnceTheSessionEnded()
    {
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { Limits = new() { MaxSessions = 1 } } });
        using var http = new HttpClient();
        for (var round = 0; round < 4; round++)
        {
            await using var first = await WebRtcStreamClient.ConnectAsync(WebRtcStreamClient.WhipAsync(http, host.Whip)).WaitAsync(Patience);
            var refused = await Assert.ThrowsAsync<WhipRefusedException>(() =>
                WebRtcStreamClient.ConnectAsync(WebRtcStreamClient.WhipAsync(http, host.Whip)).WaitAsync(Patience));
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.Status);
            Assert.Equal("{\"status\":\"failed\",\"meta\":{\"error\":\"concurrency_limit_reached\",\"limit\":1}}", refused.Body);
            await first.SendTextAsync("bye");
            var seen = await ReadUntilCloseAsync(first);
            Assert.Equal("goodbye", seen[0].Text);
            // The client saw the end: the next round's POST must be admitted at once.
        }
    }

    [Fact]
    public async Task MalformedOffersAndWrongContentTypesAreRefusedWithoutHoldingASlot()
    {
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { Limits = new() { MaxSessions = 1 } } });
        using var http = new HttpClient();
        using var bad = new StringContent("v=0\r\nthis is not sdp\r\n");
        bad.Headers.ContentType = new MediaTypeHeaderValue("application/sdp");
        var response = await http.PostAsync(host.Whip, bad);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        output.WriteLine("400: " + await response.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await http.PostAsync(host.Whip, new StringContent("v=0"))).StatusCode);
        Assert.Equal(0, host.Server.Reserved);
    }

    // ---------------- WebSocket signaling ----------------

    private static async Task SendJsonAsync(ClientWebSocket ws, object value) =>
        await ws.SendAsync(JsonSerializer.SerializeToUtf8Bytes(value), WebSocketMessageType.Text, true, default);

    private static async Task<JsonElement> ReceiveJsonAsync(ClientWebSocket ws, bool skipPings = true)
    {
        var buffer = new byte[256 * 1024];
        while (true)
        {
            using var cts = new CancellationTokenSource(Patience);
            var r = await ws.ReceiveAsync(buffer, cts.Token);
            if (r.MessageType == WebSocketMessageType.Close)
                return JsonSerializer.SerializeToElement(new { type = "close", status = (int?)ws.CloseStatus, reason = ws.CloseStatusDescription });
            var e = JsonDocument.Parse(buffer.AsMemory(0, r.Count)).RootElement.Clone();
            if (skipPings && e.TryGetProperty("type", out var type) && type.GetString() == "ping") { await SendJsonAsync(ws, new { type = "pong" }); continue; }
            return e;
        }
    }

    private static Func<WebRtcStreamClient, string, CancellationToken, Task<string>> OverWebSocket(ClientWebSocket ws, Action<string> sessionId,
        Action<string>? resume = null) => async (_, offer, _) =>
    {
        await SendJsonAsync(ws, new { type = "offer", sdp = offer });
        var answer = await ReceiveJsonAsync(ws);
        Assert.Equal("answer", answer.GetProperty("type").GetString());
        sessionId(answer.GetProperty("session").GetString()!);
        resume?.Invoke(answer.GetProperty("resume").GetString()!);
        return answer.GetProperty("sdp").GetString()!;
    };

    [Fact]
    public async Task WebSocketSignalingOffersAnswersTricklesAndSaysByeWhenTheSessionEnds()
    {
        await using var host = await EchoTestHost.StartAsync();
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(host.Signal, default);
        string? id = null;
        await using var client = await WebRtcStreamClient.ConnectAsync(OverWebSocket(ws, s => id = s)).WaitAsync(Patience);
        await SendJsonAsync(ws, new { type = "candidate", candidate = (string?)null }); // end-of-candidates
        await client.SendTextAsync("over signaling");
        Assert.Equal("over signaling", (await client.NextAsync(Patience)).Text);
        await client.SendTextAsync("bye");
        var bye = await ReceiveJsonAsync(ws);
        Assert.Equal("bye", bye.GetProperty("type").GetString());
        Assert.Contains("EndStream", bye.GetProperty("reason").GetString(), StringComparison.Ordinal);
        var close = await ReceiveJsonAsync(ws);
        Assert.Equal(1000, close.GetProperty("status").GetInt32());
        await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "ok", default);
        Assert.Null(host.Server.Find(id!));
    }

    [Fact]
    public async Task ASubsequentOfferOnTheSignalingSocketRestartsIceAndTheSessionGoesOn()
    {
        await using var host = await EchoTestHost.StartAsync();
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(host.Signal, default);
        string? id = null;
        await using var client = await WebRtcStreamClient.ConnectAsync(OverWebSocket(ws, s => id = s)).WaitAsync(Patience);
        await client.SendTextAsync("before");
        Assert.Equal("before", (await client.NextAsync(Patience)).Text);
        var before = await SelectedPairAsync(client);

        var restart = await client.PeerConnection.CreateOfferAsync(new Transport.Streaming.WebRtc.OfferOptions { IceRestart = true });
        await SendJsonAsync(ws, new { type = "offer", sdp = restart });
        var answer = await ReceiveJsonAsync(ws);
        Assert.Equal("answer", answer.GetProperty("type").GetString());
        Assert.Equal(id, answer.GetProperty("session").GetString());
        await client.PeerConnection.SetRemoteDescriptionAsync(answer.GetProperty("sdp").GetString()!);
        var waiting = Stopwatch.StartNew();
        var after = await SelectedPairAsync(client, otherThan: before.LocalUsernameFragment);
        output.WriteLine($"restart over the signaling socket: new pair {waiting.Elapsed.TotalMilliseconds:0} ms after the answer was applied");
        await client.SendTextAsync("after");
        Assert.Equal("after", (await client.NextAsync(Patience)).Text);

        // An offer that changes the DTLS association (another certificate's fingerprint) is refused with the reason,
        // and the session goes on.
        var fingerprint = System.Text.RegularExpressions.Regex.Match(restart, "a=fingerprint:sha-256 ([0-9A-F:]+)").Groups[1].Value;
        Assert.NotEmpty(fingerprint);
        var other = string.Concat(fingerprint.Select(ch => ch == ':' ? ':' : ch == '0' ? '1' : '0'));
        var foreign = restart.Replace(fingerprint, other, StringComparison.Ordinal);
        await SendJsonAsync(ws, new { type = "offer", sdp = foreign });
        var refused = await ReceiveJsonAsync(ws);
        Assert.True(refused.TryGetProperty("error", out var error), refused.ToString());
        Assert.Equal("offer_refused", error.GetString());
        Assert.Contains("fingerprint", refused.GetProperty("message").GetString(), StringComparison.OrdinalIgnoreCase);
        await client.SendTextAsync("still there");
        Assert.Equal("still there", (await client.NextAsync(Patience)).Text);
    }

    [Fact]
    public async Task LosingSignalingAfterTheMediaIsUpKeepsTheSessionAndTheClientReconnectsById()
    {
        await using var host = await EchoTestHost.StartAsync();
        string? id = null, resume = null;
        var first = new ClientWebSocket();
        await first.ConnectAsync(host.Signal, default);
        await using var client = await WebRtcStreamClient.ConnectAsync(OverWebSocket(first, s => id = s, r => resume = r)).WaitAsync(Patience);
        var up = Stopwatch.StartNew();
        while (host.Server.Find(id!)?.State != SessionState.Running && up.Elapsed < Patience) await Task.Delay(5); // the media is up on the server too
        first.Abort(); // the signaling connection is lost (no close frame)
        first.Dispose();
        await Task.Delay(300);
        Assert.NotNull(host.Server.Find(id!));
        await client.SendTextAsync("media still up");
        Assert.Equal("media still up", (await client.NextAsync(Patience)).Text);

        using var second = new ClientWebSocket();
        await second.ConnectAsync(host.Signal, default);
        await SendJsonAsync(second, new { type = "reconnect", session = id, resume });
        var ack = await ReceiveJsonAsync(second);
        Assert.Equal("reconnected", ack.GetProperty("type").GetString());
        await SendJsonAsync(second, new { type = "bye" });
        Assert.Equal("bye", (await ReceiveJsonAsync(second)).GetProperty("type").GetString());
        await client.Closed.WaitAsync(Patience);
        Assert.Null(host.Server.Find(id!));

        using var third = new ClientWebSocket();
        await third.ConnectAsync(host.Signal, default);
        await SendJsonAsync(third, new { type = "reconnect", session = id, resume });
        Assert.Equal("unknown_session", (await ReceiveJsonAsync(third)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task SignalingKeepaliveClosesASilentPeerWithAClearReasonAndANormalCloseIsNotAnError()
    {
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings
        {
            Sessions = new() { Signaling = new() { KeepAliveInterval = TimeSpan.FromMilliseconds(200), KeepAliveTimeout = TimeSpan.FromMilliseconds(300) } },
        });
        using var polite = new ClientWebSocket();
        await polite.ConnectAsync(host.Signal, default);
        var ping = await ReceiveJsonAsync(polite, skipPings: false);
        Assert.Equal("ping", ping.GetProperty("type").GetString());
        await SendJsonAsync(polite, new { type = "pong" });
        await polite.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", default);

        using var silent = new ClientWebSocket();
        var connected = Stopwatch.StartNew();
        await silent.ConnectAsync(host.Signal, default);
        JsonElement last;
        do last = await ReceiveJsonAsync(silent, skipPings: false); // reads, never answers
        while (last.GetProperty("type").GetString() != "close");
        var took = connected.Elapsed;
        output.WriteLine($"silent signaling peer closed after {took.TotalMilliseconds:0} ms (interval 200 + timeout 300): {last}");
        Assert.Equal((int)WebSocketCloseStatus.PolicyViolation, last.GetProperty("status").GetInt32());
        Assert.Equal("keepalive: no pong within 0.3 s", last.GetProperty("reason").GetString());
        Assert.InRange(took, TimeSpan.FromMilliseconds(450), TimeSpan.FromSeconds(5));   // not early; late only on a loaded machine
        Assert.Contains(host.Logs, l => l.Message.Contains("closed normally by the client (1000", StringComparison.Ordinal) && l.Level == LogLevel.Information);
        Assert.DoesNotContain(host.Logs, l => l.Level >= LogLevel.Error);
    }
    [Fact]
    public async Task AFullServerRefusesAnOfferOnTheSignalingSocketWithTheExactJson()
    {
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { Limits = new() { MaxSessions = 1 } } });
        using var first = new ClientWebSocket();
        await first.ConnectAsync(host.Signal, default);
        await using var client = await WebRtcStreamClient.ConnectAsync(OverWebSocket(first, _ => { })).WaitAsync(Patience);
        using var second = new ClientWebSocket();
        await second.ConnectAsync(host.Signal, default);
        await SendJsonAsync(second, new { type = "offer", sdp = "v=0" });
        var refusal = await ReceiveJsonAsync(second);
        Assert.Equal("{\"status\":\"failed\",\"meta\":{\"error\":\"concurrency_limit_reached\",\"limit\":1}}", refusal.GetRawText());
        var close = await ReceiveJsonAsync(second);
        Assert.Equal((int)WebSocketCloseStatus.PolicyViolation, close.GetProperty("status").GetInt32());
        Assert.Equal("concurrency_limit_reached", close.GetProperty("reason").GetString());
    }
}
