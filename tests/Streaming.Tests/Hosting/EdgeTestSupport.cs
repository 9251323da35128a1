using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Text.Json;

namespace Transport.Streaming.Tests.Hosting;

/// <summary>Requests the edge tests share: a WHIP POST of a captured offer, JSON over a WebSocket.</summary>
internal static class EdgeTestSupport
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    /// <summary>
    /// The captured offer, each time with a candidate port of its own: two sessions offering the same client 5-tuple
    /// are the "same 5-tuple twice" case, and the second would fail at once (FiveTupleInUse), as it should.
    /// </summary>
    public static string Offer =>
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "aiortc-1.4-datachannel-offer.sdp"))
            .Replace(" 127.0.0.1 53988 typ host", $" 127.0.0.1 {Interlocked.Increment(ref _port)} typ host", StringComparison.Ordinal);

    private static int _port = 40000;

    public static HttpRequestMessage WhipPost(Uri whip, HttpContent? content = null)
    {
        var post = new HttpRequestMessage(HttpMethod.Post, whip) { Content = content ?? new StringContent(Offer) };
        post.Content.Headers.ContentType = new MediaTypeHeaderValue("application/sdp");
        return post;
    }

    public static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(", ", values)
        : response.Content.Headers.TryGetValues(name, out var content) ? string.Join(", ", content) : null;

    public static async Task SendJsonAsync(ClientWebSocket ws, object value) =>
        await ws.SendAsync(JsonSerializer.SerializeToUtf8Bytes(value), WebSocketMessageType.Text, true, default);

    /// <summary>The next message that is not a ping, or <c>{"type":"close",...}</c> for the close frame.</summary>
    public static async Task<JsonElement> ReceiveJsonAsync(ClientWebSocket ws)
    {
        var buffer = new byte[256 * 1024];
        while (true)
        {
            using var cts = new CancellationTokenSource(Patience);
            var r = await ws.ReceiveAsync(buffer, cts.Token);
            if (r.MessageType == WebSocketMessageType.Close)
                return JsonSerializer.SerializeToElement(new { type = "close", status = (int?)ws.CloseStatus, reason = ws.CloseStatusDescription });
            var e = JsonDocument.Parse(buffer.AsMemory(0, r.Count)).RootElement.Clone();
            if (e.TryGetProperty("type", out var type) && type.GetString() == "ping") continue;
            return e;
        }
    }

    /// <summary>Opens a WebSocket, with an Origin header if given; the HTTP status of a refused upgrade is kept.</summary>
    public static async Task<(ClientWebSocket Socket, int Status)> TryConnectAsync(Uri uri, string? origin = null)
    {
        var ws = new ClientWebSocket();
        ws.Options.CollectHttpResponseDetails = true;
        if (origin is not null) ws.Options.SetRequestHeader("Origin", origin);
        try { await ws.ConnectAsync(uri, new CancellationTokenSource(Patience).Token); }
        catch (WebSocketException) { }
        return (ws, (int)ws.HttpStatusCode);
    }
}
