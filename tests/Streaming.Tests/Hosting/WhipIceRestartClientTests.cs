using System.Collections.Concurrent;
using System.Net;
using Transport.Ice.Turn;
using Transport.Samples.EchoServer;
using Transport.Streaming.Hosting;
using Transport.TestKit;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Hosting;

/// <summary>
/// Our WHIP client's ICE restarts (<see cref="WebRtcStreamClient"/>, <see cref="WhipIceRestartOptions"/>): the bound on
/// automatic restarts, and a restart the server refuses (it authenticates the PATCH with the bearer token and the
/// resource's secret) reported as <see cref="WhipIceRestartRefusedException"/>, the connection going on, and the same
/// restart offer sent again once the request is right. The restart onto a relay when the direct path dies, end to
/// end in network namespaces with coturn: <c>WhipRestartOntoRelayTests</c>.
/// </summary>
public sealed class WhipIceRestartClientTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public void TheBudgetAllowsAtMostMaxRestartsInAnyWindow()
    {
        var budget = new IceRestartBudget(3, TimeSpan.FromSeconds(60));
        Assert.True(budget.TryTake(TimeSpan.FromSeconds(0)));
        Assert.True(budget.TryTake(TimeSpan.FromSeconds(1)));
        Assert.True(budget.TryTake(TimeSpan.FromSeconds(2)));
        Assert.False(budget.TryTake(TimeSpan.FromSeconds(3)));
        Assert.False(budget.TryTake(TimeSpan.FromSeconds(59.9)));
        Assert.True(budget.TryTake(TimeSpan.FromSeconds(60)));      // the one at 0 s left the window
        Assert.False(budget.TryTake(TimeSpan.FromSeconds(60.5)));
        Assert.True(budget.TryTake(TimeSpan.FromSeconds(61)));
        Assert.False(budget.TryTake(TimeSpan.FromSeconds(61)));
        var never = new IceRestartBudget(0, TimeSpan.FromSeconds(60));
        Assert.False(never.TryTake(TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WhipIceRestartOptions { MaxPerMinute = -1 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new WhipIceRestartOptions { Timeout = TimeSpan.Zero });
        var defaults = new WhipIceRestartOptions();
        Assert.Equal((true, 3, TimeSpan.FromSeconds(10)), (defaults.Automatic, defaults.MaxPerMinute, defaults.Timeout));
    }

    [Fact]
    public async Task ARestartTheServerRefusesIsATypedErrorTheConnectionGoesOnAndTheSameOfferIsSentAgain()
    {
        var settings = new EchoServerSettings { Sessions = new WebRtcSessionsOptions { Whip = new WhipOptions { BearerToken = "t0ken" } } };
        await using var host = await EchoTestHost.StartAsync(settings);
        using var http = new HttpClient();
        await using var client = await WebRtcStreamClient.ConnectAsync(WebRtcStreamClient.WhipAsync(http, host.Whip, "t0ken")).WaitAsync(Patience);
        var id = client.Resource!.Segments[^1];
        await client.SendTextAsync("before");
        Assert.Equal("before", (await client.NextAsync(Patience)).Text);
        var tag = client.WhipEntityTag;

        // The PATCH without the token: 401; with another resource secret: 404 (as for no session).
        using (var noToken = new HttpClient(new Tamper(r => r.Headers.Authorization = null) { InnerHandler = new HttpClientHandler() }))
        {
            var e = await Assert.ThrowsAsync<WhipIceRestartRefusedException>(() => client.RestartIceOverWhipAsync(noToken).WaitAsync(Patience));
            Assert.Equal(HttpStatusCode.Unauthorized, e.Status);
        }
        using (var otherSecret = new HttpClient(new Tamper(r => r.RequestUri = new Uri(r.RequestUri!.GetLeftPart(UriPartial.Path) + "?secret=guessed"))
        { InnerHandler = new HttpClientHandler() }))
        {
            var e = await Assert.ThrowsAsync<WhipIceRestartRefusedException>(() => client.RestartIceOverWhipAsync(otherSecret).WaitAsync(Patience));
            Assert.Equal(HttpStatusCode.NotFound, e.Status);
        }
        // Nothing changed on the server; data goes on on the pair in use.
        Assert.Equal(tag, client.WhipEntityTag);
        await client.SendTextAsync("between");
        Assert.Equal("between", (await client.NextAsync(Patience)).Text);

        // The right request: the pending restart offer (it cannot be rolled back) is sent again and completes.
        var selected = await client.RestartIceOverWhipAsync(http).WaitAsync(Patience);
        var done = await selected.WaitAsync(Patience);
        Assert.NotEqual(tag, client.WhipEntityTag);
        Assert.Equal($"\"{id}.{done.RemoteUsernameFragment}\"", client.WhipEntityTag);
        await client.SendTextAsync("after");
        Assert.Equal("after", (await client.NextAsync(Patience)).Text);
        Assert.Single(client.IceRestartsCompleted);
        Assert.Empty(client.IceRestartAttempts);   // none automatic: no TURN server, the direct pair never died
        output.WriteLine($"refused 401 and 404, then restarted: new pair selected {done.Elapsed.TotalMilliseconds:0} ms after the restart began " +
            "(the refused PATCHes included)");
    }

    [Fact]
    public async Task ARelayGatheredAfterTheOfferIsTrickledToTheServerByPatch()
    {
        using var coturn = CoturnServer.Start();
        await using var host = await EchoTestHost.StartAsync();
        var seen = new ConcurrentQueue<(HttpMethod Method, HttpStatusCode Status, string Body, string? IfMatch)>();
        using var http = new HttpClient(new Recorder(seen) { InnerHandler = new HttpClientHandler() });
        var turn = TurnServerConfig.Parse($"turn:127.0.0.1:{coturn.Port}?transport=udp", CoturnServer.User, CoturnServer.Password);
        await using var client = await WebRtcStreamClient.ConnectAsync(WebRtcStreamClient.WhipAsync(http, host.Whip),
            new WebRtcStreamClientOptions { TurnServers = [turn] }).WaitAsync(Patience);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (client.CandidatesTrickled + client.TrickleFailures == 0 && clock.Elapsed < Patience) await Task.Delay(20);

        // The offer had the host candidate only (the allocation takes round trips to coturn); the relayed one followed
        // in a PATCH with the offer's credentials, its m= line and mid, and If-Match naming the ICE session: 204.
        var post = Assert.Single(seen, s => s.Method == HttpMethod.Post);
        Assert.DoesNotContain(" typ relay", post.Body, StringComparison.Ordinal);
        var patch = Assert.Single(seen, s => s.Method == HttpMethod.Patch);
        Assert.Equal(HttpStatusCode.NoContent, patch.Status);
        Assert.Equal(client.WhipEntityTag, patch.IfMatch);
        var fragment = Transport.Streaming.Jsep.IceSdpFragment.Parse(patch.Body);
        Assert.Equal(Transport.Streaming.Jsep.IceSdpFragment.Parse(post.Body).Ufrag, fragment.Ufrag);
        var candidate = Assert.Single(fragment.Candidates);
        Assert.Contains(" typ relay", candidate, StringComparison.Ordinal);
        Assert.NotNull(Assert.Single(fragment.CandidateMids));   // under its section's mid
        Assert.Equal((1, 0), (client.CandidatesTrickled, client.TrickleFailures));
        await client.SendTextAsync("still direct");
        Assert.Equal("still direct", (await client.NextAsync(Patience)).Text);
        output.WriteLine($"trickled {candidate}");
    }

    private sealed class Recorder(ConcurrentQueue<(HttpMethod, HttpStatusCode, string, string?)> seen) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var body = request.Content is null ? "" : await request.Content.ReadAsStringAsync(cancellationToken);
            var response = await base.SendAsync(request, cancellationToken);
            seen.Enqueue((request.Method, response.StatusCode, body, request.Headers.IfMatch.ToString() is { Length: > 0 } m ? m : null));
            return response;
        }
    }

    private sealed class Tamper(Action<HttpRequestMessage> change) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Method == HttpMethod.Patch) change(request);
            return base.SendAsync(request, cancellationToken);
        }
    }
}
