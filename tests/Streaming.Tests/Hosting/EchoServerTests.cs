using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Transport.Samples.EchoServer;
using Transport.Streaming.Hosting;
using Transport.Streaming.Sessions;

namespace Transport.Streaming.Tests.Hosting;

/// <summary>The main program's endpoints on a real Kestrel bound to 127.0.0.1.</summary>
public sealed class EchoServerTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private static async Task<string> ReceiveTextAsync(ClientWebSocket ws)
    {
        var buffer = new byte[64 * 1024];
        using var cts = new CancellationTokenSource(Patience);
        var r = await ws.ReceiveAsync(buffer, cts.Token);
        return r.MessageType == WebSocketMessageType.Close ? "<close " + (int?)ws.CloseStatus + ">" : Encoding.UTF8.GetString(buffer, 0, r.Count);
    }

    private static Task SendTextAsync(ClientWebSocket ws, string text) =>
        ws.SendAsync(Encoding.UTF8.GetBytes("{\"type\":\"data\",\"text\":\"" + text + "\"}"), WebSocketMessageType.Text, true, default);

    [Fact]
    public async Task EchoesOverTheWebSocketAndEndsTheStreamOnBye()
    {
        await using var host = await EchoTestHost.StartAsync();
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(host.Ws, default);
        await SendTextAsync(ws, "hello");
        Assert.Equal("{\"type\":\"data\",\"text\":\"hello\"}", await ReceiveTextAsync(ws));
        await SendTextAsync(ws, "bye");
        Assert.Equal("{\"type\":\"data\",\"text\":\"goodbye\"}", await ReceiveTextAsync(ws));
        Assert.Equal("{\"type\":\"end_stream\",\"reason\":\"the client said bye\"}", await ReceiveTextAsync(ws));
        Assert.Equal("<close 1000>", await ReceiveTextAsync(ws));
    }

    [Fact]
    public async Task AFullServerAnswers429WithTheLimitAndFreesTheSlotWhenASessionEnds()
    {
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { Limits = new() { MaxSessions = 1 } } });
        using var http = new HttpClient();
        for (var round = 0; round < 10; round++)
        {
            using var first = new ClientWebSocket();
            await first.ConnectAsync(host.Ws, default);

            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(host.Http, "/ws"));
            request.Headers.Connection.Add("Upgrade");
            request.Headers.Upgrade.Add(new System.Net.Http.Headers.ProductHeaderValue("websocket"));
            request.Headers.Add("Sec-WebSocket-Version", "13");
            request.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(Guid.NewGuid().ToByteArray()));
            using var refused = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Equal("{\"status\":\"failed\",\"meta\":{\"error\":\"concurrency_limit_reached\",\"limit\":1}}", await refused.Content.ReadAsStringAsync());

            await SendTextAsync(first, "bye");
            while (first.State == WebSocketState.Open) await ReceiveTextAsync(first);
            // The slot is free the moment the session ended: the next connect in the loop must be admitted.
            var end = DateTime.UtcNow + Patience;
            while (host.Server.Reserved != 0 && DateTime.UtcNow < end) await Task.Delay(1);
            Assert.Equal(0, host.Server.Reserved);
        }
    }

    [Fact]
    public async Task KeepaliveClosesASilentClientAndANormalCloseIsNotAnError()
    {
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings
        {
            Sessions = new()
            {
                Streams = new()
                {
                    WebSocketKeepAliveInterval = TimeSpan.FromMilliseconds(200),
                    WebSocketKeepAliveTimeout = TimeSpan.FromMilliseconds(300)
                }
            },
        });
        using var silent = new ClientWebSocket();
        silent.Options.KeepAliveInterval = TimeSpan.Zero;
        await silent.ConnectAsync(host.Ws, default);           // never reads: never answers a ping
        using var polite = new ClientWebSocket();
        await polite.ConnectAsync(host.Ws, default);
        await polite.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", default);

        var end = DateTime.UtcNow + Patience;
        while (host.Server.Sessions.Count > 0 && DateTime.UtcNow < end) await Task.Delay(10);
        Assert.Empty(host.Server.Sessions);
        Assert.Contains(host.Logs, l => l.Message.Contains("ended (ClientClosed: WebSocket closed by the client with 1000", StringComparison.Ordinal)
            && l.Level == LogLevel.Information);
        Assert.Contains(host.Logs, l => l.Message.Contains("ended (TransportFailed", StringComparison.Ordinal));
        Assert.DoesNotContain(host.Logs, l => l.Level >= LogLevel.Error);
    }

    [Fact]
    public async Task SessionsAreListedAsJson()
    {
        await using var host = await EchoTestHost.StartAsync(new EchoServerSettings { Sessions = new() { AdminToken = "adm1n" } });
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(new Uri(host.Ws + "?voice=alto"), default);
        await SendTextAsync(ws, "x");
        await ReceiveTextAsync(ws);
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "adm1n");
        var json = await http.GetStringAsync(new Uri(host.Http, "/sessions"));
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        var session = doc.RootElement.EnumerateArray().Single();
        Assert.Equal("websocket", session.GetProperty("transport").GetString());
        Assert.Equal("running", session.GetProperty("state").GetString());
        Assert.Equal("alto", host.Server.Sessions.Single().Context.Arguments["voice"]);
    }

    [Fact]
    public void UnknownCommandLineOptionsAreRefusedClearly()
    {
        var e = Assert.Throws<ArgumentException>(() => EchoServerSettings.Parse(["--bogus"]));
        Assert.Contains("--bogus", e.Message, StringComparison.Ordinal);
        Assert.Equal(9000, EchoServerSettings.Parse(["--udp-port", "9000"]).Sessions.UdpPort);
        Assert.Equal(3, EchoServerSettings.Parse(["--max-sessions", "3"]).Sessions.Limits.MaxSessions);
    }
}

/// <summary>Keeps every log line, to check levels.</summary>
internal sealed class CapturingLoggerProvider(ConcurrentQueue<(LogLevel, string)> sink) : ILoggerProvider
{
    private static readonly ConcurrentDictionary<ConcurrentQueue<(LogLevel, string)>, ConcurrentQueue<(LogLevel, string)>> Redirects = new();
    public static void Redirect(ConcurrentQueue<(LogLevel, string)> from, ConcurrentQueue<(LogLevel, string)> to) => Redirects[from] = to;
    public ILogger CreateLogger(string categoryName) => new Logger(sink);
    public void Dispose() { }

    private sealed class Logger(ConcurrentQueue<(LogLevel, string)> sink) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var target = Redirects.TryGetValue(sink, out var to) ? to : sink;
            target.Enqueue((logLevel, formatter(state, exception)));
        }
    }
}
