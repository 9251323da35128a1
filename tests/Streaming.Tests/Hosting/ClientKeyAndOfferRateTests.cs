using System.Net;
using System.Net.WebSockets;
using Transport.Samples.EchoServer;
using Transport.Streaming.Hosting;
using Transport.TestKit;
using static Transport.Streaming.Tests.Hosting.EdgeTestSupport;

namespace Transport.Streaming.Tests.Hosting;

/// <summary>
/// The per-client key (IPv4 address, IPv6 /64, IPv4-mapped as IPv4) and the offer rate limit per client
/// (token bucket on virtual time, bounded table; 429 with the JSON body and Retry-After on WHIP, the refusal and a
/// close on signaling).
/// </summary>
public sealed class ClientKeyAndOfferRateTests
{
    [Fact]
    public void AClientIsAnIPv4AddressOrAnIPv6Slash64AndAMappedAddressIsItsIPv4()
    {
        Assert.Equal("192.0.2.7", ClientKey.For(IPAddress.Parse("192.0.2.7")));
        Assert.Equal("192.0.2.7", ClientKey.For(IPAddress.Parse("::ffff:192.0.2.7")));
        Assert.NotEqual(ClientKey.For(IPAddress.Parse("192.0.2.7")), ClientKey.For(IPAddress.Parse("192.0.2.8")));
        // Every address of one /64 is one client; the next /64 is another.
        Assert.Equal("2001:db8:1:2::/64", ClientKey.For(IPAddress.Parse("2001:db8:1:2::1")));
        Assert.Equal(ClientKey.For(IPAddress.Parse("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), ClientKey.For(IPAddress.Parse("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        Assert.NotEqual(ClientKey.For(IPAddress.Parse("2001:db8:1:2::1")), ClientKey.For(IPAddress.Parse("2001:db8:1:3::1")));
        Assert.Equal("::/64", ClientKey.For(IPAddress.IPv6Loopback));
        Assert.Null(ClientKey.For((IPAddress?)null));
    }

    [Fact]
    public void ABurstOfOffersIsAllowedThenOnePerSecondOnVirtualTime()
    {
        var clock = new ManualClock();
        var limiter = new OfferRateLimiter(new WebRtcServerLimits { OfferBurst = 5, OffersPerSecond = 1 }, clock);
        for (var i = 0; i < 5; i++) Assert.True(limiter.TryAcquire("a", out _));
        Assert.False(limiter.TryAcquire("a", out var retry));
        Assert.Equal(TimeSpan.FromSeconds(1), retry);
        // Another client has its own bucket; no address is never limited.
        Assert.True(limiter.TryAcquire("b", out _));
        for (var i = 0; i < 20; i++) Assert.True(limiter.TryAcquire(null, out _));

        clock.Advance(TimeSpan.FromMilliseconds(400));
        Assert.False(limiter.TryAcquire("a", out retry));
        Assert.Equal(TimeSpan.FromMilliseconds(600), retry);
        clock.Advance(TimeSpan.FromMilliseconds(600));
        Assert.True(limiter.TryAcquire("a", out _));
        Assert.False(limiter.TryAcquire("a", out _));
        // Refills up to the burst and no further.
        clock.Advance(TimeSpan.FromMinutes(10));
        for (var i = 0; i < 5; i++) Assert.True(limiter.TryAcquire("a", out _));
        Assert.False(limiter.TryAcquire("a", out _));

        var off = new OfferRateLimiter(new WebRtcServerLimits { OffersPerSecond = 0 }, clock);
        for (var i = 0; i < 100; i++) Assert.True(off.TryAcquire("a", out _));
    }

    [Fact]
    public void TheBucketTableStaysBoundedForgettingIdleClientsFirst()
    {
        var clock = new ManualClock();
        var limiter = new OfferRateLimiter(new WebRtcServerLimits { OfferBurst = 2, OffersPerSecond = 1, MaxRateLimitedClients = 100 }, clock);
        // A flood from 10,000 keys in one instant: the table never holds more than 100.
        for (var i = 0; i < 10_000; i++)
        {
            limiter.TryAcquire("flood" + i, out _);
            Assert.True(limiter.Count <= 100);
        }
        Assert.Equal(100, limiter.Count);
        Assert.Equal(9_900, limiter.Evicted);

        // A client that has spent its burst is kept while others are evicted before it (it was seen last)...
        Assert.True(limiter.TryAcquire("busy", out _));
        Assert.True(limiter.TryAcquire("busy", out _));
        Assert.False(limiter.TryAcquire("busy", out _));
        // ...and once every bucket is full again (2 s later), the idle ones go in one pass and it is forgotten too: a
        // full bucket is what an unknown client gets, so nothing is lost.
        clock.Advance(TimeSpan.FromSeconds(2));
        limiter.TryAcquire("new", out _);
        Assert.Equal(1, limiter.Count);
    }

    [Fact]
    public async Task WhipOffersOverTheRateGet429WithTheJsonBodyAndRetryAfter()
    {
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings
        {
            Sessions = new() { Limits = new() { OfferBurst = 2, OffersPerSecond = 0.1 } },
        }, keepOfferRate: true);
        using var http = new HttpClient();
        for (var i = 0; i < 2; i++)
        {
            using var ok = await http.SendAsync(WhipPost(host.Whip));
            Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
        }
        using var refused = await http.SendAsync(WhipPost(host.Whip));
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("application/json", refused.Content.Headers.ContentType?.MediaType);
        var retry = int.Parse(Header(refused, "Retry-After")!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(retry, 9, 10); // one offer per 10 s
        using var json = System.Text.Json.JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
        var meta = json.RootElement.GetProperty("meta");
        Assert.Equal("failed", json.RootElement.GetProperty("status").GetString());
        Assert.Equal("rate_limit_reached", meta.GetProperty("error").GetString());
        Assert.Equal(2, meta.GetProperty("limit").GetInt32());
        Assert.Equal(2, host.Server.Reserved); // the refused offer holds no place

        // The signaling socket's first offer counts against the same client: the refusal, then a close with 1008.
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(host.Signal, default);
        await SendJsonAsync(ws, new { type = "offer", sdp = Offer });
        var answer = await ReceiveJsonAsync(ws);
        Assert.Equal("rate_limit_reached", answer.GetProperty("meta").GetProperty("error").GetString());
        var close = await ReceiveJsonAsync(ws);
        Assert.Equal((int)WebSocketCloseStatus.PolicyViolation, close.GetProperty("status").GetInt32());

        // And a /ws upgrade: 429 before any place is taken.
        var (socket, status) = await TryConnectAsync(host.Ws);
        socket.Dispose();
        Assert.Equal(429, status);
        Assert.Equal(2, host.Server.Reserved);
    }
}
