using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Transport.Samples.EchoServer;
using Transport.Streaming.Hosting;
using Transport.Streaming.Sessions;

namespace Transport.Streaming.Tests.Hosting;

/// <summary>
/// Offers in the data channel form before RFC 8841 (aiortc 1.4's, a captured fixture) are accepted over WHIP and
/// answered in the same form; offers with nothing we can accept are refused with the reason, over WHIP (422) and over
/// the signaling socket, holding no session slot.
/// </summary>
public sealed class WhipOfferFormTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));

    // The aiortc offer without its a=sctpmap: a DTLS/SCTP section that names no application, so nothing to accept.
    private static string UnacceptableOffer() =>
        Fixture("aiortc-1.4-datachannel-offer.sdp").Replace("a=sctpmap:5000 webrtc-datachannel 65535\r\n", "", StringComparison.Ordinal);

    private static StringContent Sdp(string text)
    {
        var content = new StringContent(text);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/sdp");
        return content;
    }

    [Fact]
    public async Task WhipAnswersTheAiortcOfferInItsOwnSctpmapForm()
    {
        await using var host = await EchoTestHost.StartAsync();
        using var http = new HttpClient();
        using var created = await http.PostAsync(host.Whip, Sdp(Fixture("aiortc-1.4-datachannel-offer.sdp")));
        var answer = await created.Content.ReadAsStringAsync();
        Assert.True(created.StatusCode == HttpStatusCode.Created, $"{created.StatusCode}: {answer}");
        Assert.Contains($"m=application {host.Instance.UdpEndPoint.Port} DTLS/SCTP 5000\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("a=sctpmap:5000 webrtc-datachannel ", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("a=sctp-port", answer, StringComparison.Ordinal);
        Assert.Contains("a=ice-ufrag:", answer, StringComparison.Ordinal);
        Assert.Contains("a=group:BUNDLE 0", answer, StringComparison.Ordinal);
        Assert.Equal(1, host.Server.Reserved);
        Assert.Equal(HttpStatusCode.OK, (await http.DeleteAsync(new Uri(host.Whip, created.Headers.Location!))).StatusCode);
        Assert.Equal(0, host.Server.Reserved);
    }

    [Fact]
    public async Task WhipRefusesAnOfferWithNothingAcceptableWith422AndTheReasonHoldingNoSlot()
    {
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { Limits = new() { MaxSessions = 1 } } });
        using var http = new HttpClient();
        using var refused = await http.PostAsync(host.Whip, Sdp(UnacceptableOffer()));
        var body = await refused.Content.ReadAsStringAsync();
        Assert.True(refused.StatusCode == HttpStatusCode.UnprocessableEntity, $"{refused.StatusCode}: {body}");
        Assert.Equal("application/json", refused.Content.Headers.ContentType!.MediaType);
        using var json = JsonDocument.Parse(body);
        var meta = json.RootElement.GetProperty("meta");
        Assert.Equal("failed", json.RootElement.GetProperty("status").GetString());
        Assert.Equal("offer_rejected", meta.GetProperty("error").GetString());
        var reason = Assert.Single(meta.GetProperty("reasons").EnumerateArray()).GetString();
        Assert.Contains("m=application mid 0", reason, StringComparison.Ordinal);
        Assert.Contains("a=sctpmap", reason, StringComparison.Ordinal);
        Assert.Equal(0, host.Server.Reserved);
        Assert.Empty(host.Server.Sessions);

        // The one place of this server is free: a client connects at once and its messages echo.
        await using var client = await WebRtcStreamClient.ConnectAsync(WebRtcStreamClient.WhipAsync(http, host.Whip)).WaitAsync(Patience);
        await client.SendTextAsync("after the refusal");
        Assert.Equal("after the refusal", (await client.NextAsync(Patience)).Text);
    }

    [Fact]
    public async Task TheSignalingSocketAnswersAnOfferWithNothingAcceptableWithAnErrorAndHoldsNoSlot()
    {
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { Limits = new() { MaxSessions = 1 } } });
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(host.Signal, default);
        await ws.SendAsync(JsonSerializer.SerializeToUtf8Bytes(new { type = "offer", sdp = UnacceptableOffer() }), WebSocketMessageType.Text, true, default);
        var buffer = new byte[64 * 1024];
        JsonElement reply;
        do
        {
            using var bound = new CancellationTokenSource(Patience);
            var r = await ws.ReceiveAsync(buffer, bound.Token);
            Assert.Equal(WebSocketMessageType.Text, r.MessageType);
            reply = JsonDocument.Parse(buffer.AsMemory(0, r.Count)).RootElement.Clone();
        } while (reply.GetProperty("type").GetString() == "ping");
        Assert.Equal("error", reply.GetProperty("type").GetString());
        Assert.Equal("offer_rejected", reply.GetProperty("error").GetString());
        Assert.Contains("a=sctpmap", reply.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Single(reply.GetProperty("reasons").EnumerateArray());
        Assert.Equal(WebSocketState.Open, ws.State);
        Assert.Equal(0, host.Server.Reserved);
        Assert.Empty(host.Server.Sessions);
        await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", default);
    }
}
