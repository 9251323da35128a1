using System.Net;
using System.Net.Http.Headers;
using Transport.Samples.EchoServer;
using Transport.Streaming.Hosting;

namespace Transport.Streaming.Tests.Hosting;

/// <summary>
/// CORS on the WHIP endpoint and its resources (RFC 9725; the Fetch standard's CORS protocol): the OPTIONS preflight a
/// browser sends before a cross-origin <c>application/sdp</c> POST, and the headers on the answers, for the allowed
/// origins only (default: none but our own).
/// </summary>
public sealed class WhipCorsTests
{
    private const string App = "https://app.example:8443";

    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));

    private static HttpRequestMessage Preflight(Uri to, string origin, string method)
    {
        var r = new HttpRequestMessage(HttpMethod.Options, to);
        r.Headers.TryAddWithoutValidation("Origin", origin);
        r.Headers.TryAddWithoutValidation("Access-Control-Request-Method", method);
        r.Headers.TryAddWithoutValidation("Access-Control-Request-Headers", "authorization, content-type, if-match");
        return r;
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(", ", values)
        : response.Content.Headers.TryGetValues(name, out var content) ? string.Join(", ", content) : null;

    [Fact]
    public async Task APreflightFromAnAllowedOriginIsAnsweredWithoutTheTokenAndWithTheCorsHeaders()
    {
        await using var host =
            await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { AllowedOrigins = [App], Whip = new() { BearerToken = "t0ken" } } });
        using var http = new HttpClient();

        using var endpoint = await http.SendAsync(Preflight(host.Whip, App, "POST"));
        Assert.Equal(HttpStatusCode.NoContent, endpoint.StatusCode);
        Assert.Equal(App, Header(endpoint, "Access-Control-Allow-Origin"));
        Assert.Contains("POST", Header(endpoint, "Access-Control-Allow-Methods"), StringComparison.Ordinal);
        var allowed = Header(endpoint, "Access-Control-Allow-Headers")!;
        foreach (var h in new[] { "Authorization", "Content-Type", "If-Match" }) Assert.Contains(h, allowed, StringComparison.Ordinal);
        Assert.Equal("600", Header(endpoint, "Access-Control-Max-Age"));
        Assert.Equal("Origin", Header(endpoint, "Vary"));

        using var resource = await http.SendAsync(Preflight(new Uri(host.Whip, "/whip/some-session"), App, "PATCH"));
        Assert.Equal(HttpStatusCode.NoContent, resource.StatusCode);
        Assert.Equal(App, Header(resource, "Access-Control-Allow-Origin"));
        var methods = Header(resource, "Access-Control-Allow-Methods")!;
        Assert.Contains("PATCH", methods, StringComparison.Ordinal);
        Assert.Contains("DELETE", methods, StringComparison.Ordinal);
        Assert.Equal(0, host.Server.Reserved);
    }

    [Fact]
    public async Task ACrossOriginPostAndDeleteFromAnAllowedOriginExposeLocationAndETag()
    {
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { AllowedOrigins = ["https://other.example", App] } });
        using var http = new HttpClient();
        using var post = new HttpRequestMessage(HttpMethod.Post, host.Whip) { Content = new StringContent(Fixture("aiortc-1.4-datachannel-offer.sdp")) };
        post.Content.Headers.ContentType = new MediaTypeHeaderValue("application/sdp");
        post.Headers.TryAddWithoutValidation("Origin", App);
        using var created = await http.SendAsync(post);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(App, Header(created, "Access-Control-Allow-Origin"));
        var exposed = Header(created, "Access-Control-Expose-Headers")!;
        foreach (var h in new[] { "Location", "ETag", "Link" }) Assert.Contains(h, exposed, StringComparison.Ordinal);

        using var delete = new HttpRequestMessage(HttpMethod.Delete, new Uri(host.Whip, created.Headers.Location!));
        delete.Headers.TryAddWithoutValidation("Origin", App);
        using var deleted = await http.SendAsync(delete);
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        Assert.Equal(App, Header(deleted, "Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task ByDefaultOnlyOurOwnOriginIsAllowed()
    {
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { Whip = new() { BearerToken = "t0ken" } } });
        using var http = new HttpClient();
        using (var foreign = await http.SendAsync(Preflight(host.Whip, App, "POST")))
        {
            Assert.Equal(HttpStatusCode.NoContent, foreign.StatusCode);
            Assert.Null(Header(foreign, "Access-Control-Allow-Origin"));
            Assert.Null(Header(foreign, "Access-Control-Allow-Methods"));
        }
        // A request from another origin is not read by its page (no Access-Control-Allow-Origin), the 401 included.
        using (var post = new HttpRequestMessage(HttpMethod.Post, host.Whip) { Content = new StringContent("v=0\r\n") })
        {
            post.Content.Headers.ContentType = new MediaTypeHeaderValue("application/sdp");
            post.Headers.TryAddWithoutValidation("Origin", App);
            using var refused = await http.SendAsync(post);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Null(Header(refused, "Access-Control-Allow-Origin"));
        }
        // Our own origin (a page the server itself served) is always allowed, the 401 readable.
        var own = $"http://{host.Http.Authority}";
        using (var ours = await http.SendAsync(Preflight(host.Whip, own, "POST")))
            Assert.Equal(own, Header(ours, "Access-Control-Allow-Origin"));
        using (var post = new HttpRequestMessage(HttpMethod.Post, host.Whip) { Content = new StringContent("v=0\r\n") })
        {
            post.Content.Headers.ContentType = new MediaTypeHeaderValue("application/sdp");
            post.Headers.TryAddWithoutValidation("Origin", own);
            using var refused = await http.SendAsync(post);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Equal(own, Header(refused, "Access-Control-Allow-Origin"));
        }
    }

    [Fact]
    public async Task AStarAllowsEveryOriginAndTheOptionIsOnTheCommandLine()
    {
        Assert.Equal(["*"], EchoServerSettings.Parse(["--allow-origin", "*"]).Sessions.AllowedOrigins);
        Assert.Equal([App, "https://b.example"],
            EchoServerSettings.Parse(["--allow-origin", App, "--allow-origin", "https://b.example"]).Sessions.AllowedOrigins);
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { AllowedOrigins = ["*"] } });
        using var http = new HttpClient();
        using var preflight = await http.SendAsync(Preflight(host.Whip, "https://anyone.example", "POST"));
        Assert.Equal("*", Header(preflight, "Access-Control-Allow-Origin"));
    }
}
