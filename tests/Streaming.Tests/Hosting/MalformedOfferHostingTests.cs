using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text.Json;
using Transport.Samples.EchoServer;
using Transport.Streaming.Hosting;
using Transport.Streaming.Sessions;

namespace Transport.Streaming.Tests.Hosting;

/// <summary>
/// The malformed offers that used to escape as untyped exceptions (HTTP 500 on WHIP, a dropped TCP connection on
/// /signal) are refused with the reason: 400 on WHIP, an error message on a signaling socket that stays open; no slot
/// is held afterwards.
/// </summary>
public sealed class MalformedOfferHostingTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private static string Offer() => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "chromium-offer.sdp"));

    public static TheoryData<string, string, string> Cases => new()
    {
        { "a=fmtp:97 apt=96\r\n", "a=fmtp:97 apt=96\r\na=fmtp:97 apt=102\r\n", "two a=fmtp lines" },
        { "a=ice-ufrag:clZf", "a=ice-ufrag:clZf\t", "ice-ufrag" },
        { "a=mid:1\r\n", "a=mid:1\rx\r\n", "CR or NUL" },
    };

    private static async Task<(EchoServerInstance Instance, Uri Http)> StartAsync()
    {
        var instance = EchoServerApp.Build(new EchoServerSettings
        {
            Urls = "http://127.0.0.1:0",
            Sessions = new() { UdpPort = 0, Limits = new() { MaxSessions = 1, OffersPerSecond = 0 } }
        });
        await instance.App.StartAsync();
        return (instance, new Uri(instance.App.Urls.First()));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task WhipAnswers400WithTheReason(string find, string replace, string reason)
    {
        var (instance, http) = await StartAsync();
        await using var app = instance.App;
        using var client = new HttpClient { Timeout = Patience };
        using var content = new StringContent(Offer().Replace(find, replace, StringComparison.Ordinal));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/sdp");
        var response = await client.PostAsync(new Uri(http, "/whip"), content);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(reason, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, instance.Server.Reserved);
    }

    [Fact]
    public async Task ASignalingSocketGetsAnErrorMessageAndStaysOpen()
    {
        var (instance, http) = await StartAsync();
        await using var app = instance.App;
        using var ws = new ClientWebSocket();
        using var cts = new CancellationTokenSource(Patience);
        await ws.ConnectAsync(new Uri($"ws://{http.Authority}/signal"), cts.Token);
        var buffer = new byte[64 * 1024];
        foreach (var (find, replace, _) in new[] { ("a=fmtp:97 apt=96\r\n", "a=fmtp:97 apt=96\r\na=fmtp:97 apt=102\r\n", ""),
            ("a=ice-ufrag:clZf", "a=ice-ufrag:clZf\t", ""), ("a=mid:1\r\n", "a=mid:1\rx\r\n", "") })
        {
            var offer = JsonSerializer.SerializeToUtf8Bytes(new { type = "offer", sdp = Offer().Replace(find, replace, StringComparison.Ordinal) });
            await ws.SendAsync(offer, WebSocketMessageType.Text, true, cts.Token);
            JsonElement message;
            do
            {
                var r = await ws.ReceiveAsync(buffer, cts.Token);
                Assert.Equal(WebSocketMessageType.Text, r.MessageType);
                message = JsonDocument.Parse(buffer.AsMemory(0, r.Count)).RootElement.Clone();
            }
            while (message.GetProperty("type").GetString() == "ping");
            Assert.Equal("error", message.GetProperty("type").GetString());
            Assert.Equal("malformed_offer", message.GetProperty("error").GetString());
            Assert.Equal(WebSocketState.Open, ws.State);
        }
        Assert.Equal(0, instance.Server.Reserved);
    }
}
