using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Runtime.CompilerServices;
using System.Text;
using Transport.Streaming.Sessions;

namespace Transport.Streaming.Tests.Sessions;

public sealed class WebSocketSessionTransportTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    /// <summary>A WebSocket pair over a real TCP connection on 127.0.0.1 (framing only; the HTTP upgrade is the host's job).</summary>
    private static async Task<(WebSocket Server, WebSocket Client, IDisposable Sockets)> PairAsync(TimeSpan? keepAlive = null,
        TimeSpan? keepAliveTimeout = null)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        var accepted = await listener.AcceptTcpClientAsync();
        listener.Stop();
        var server = WebSocket.CreateFromStream(accepted.GetStream(), new WebSocketCreationOptions
        {
            IsServer = true,
            KeepAliveInterval = keepAlive ?? TimeSpan.Zero,
            KeepAliveTimeout = keepAliveTimeout ?? Timeout.InfiniteTimeSpan,
        });
        var clientSocket = WebSocket.CreateFromStream(client.GetStream(), new WebSocketCreationOptions { IsServer = false, KeepAliveInterval = TimeSpan.Zero });
        return (server, clientSocket, new Disposer(client, accepted));
    }

    private sealed class Disposer(params IDisposable[] items) : IDisposable
    {
        public void Dispose() { foreach (var i in items) i.Dispose(); }
    }

    private static async Task<(WebSocketMessageType Type, byte[] Data)> ReceiveAsync(WebSocket socket)
    {
        var buffer = new byte[1 << 20];
        var length = 0;
        WebSocketReceiveResult r;
        using var cts = new CancellationTokenSource(Patience);
        do
        {
            r = await socket.ReceiveAsync(new ArraySegment<byte>(buffer, length, buffer.Length - length), cts.Token);
            length += r.Count;
        } while (!r.EndOfMessage);
        return (r.MessageType, buffer[..length]);
    }

    private static async IAsyncEnumerable<StreamOutput> Echo(StreamContext context, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var input in context.Inputs.WithCancellation(ct))
        {
            switch (input)
            {
                case DataInput { IsText: true } t when t.Text == "bye":
                    yield return DataOutput.FromText("goodbye");
                    yield return AdditionalOutput.From(new { spoken = 2 });
                    yield return new EndStream("done talking");
                    break;
                case DataInput d:
                    yield return new DataOutput(d.Data, d.IsText);
                    break;
                case MediaInput m:
                    yield return new MediaOutput(m.Frame);
                    break;
            }
        }
    }

    [Fact]
    public async Task GoodbyeThenEndStreamThenCloseArriveInThatOrder()
    {
        var (serverSocket, client, sockets) = await PairAsync();
        using var tcp = sockets;
        await using var server = new StreamServer(() => new LambdaHandler(Echo));
        server.TryReserve(out var slot, out _);
        var session = server.Start(slot!, new WebSocketSessionTransport(serverSocket));

        await client.SendAsync("{\"type\":\"data\",\"text\":\"hi\"}"u8.ToArray(), WebSocketMessageType.Text, true, default);
        Assert.Equal("{\"type\":\"data\",\"text\":\"hi\"}", Encoding.UTF8.GetString((await ReceiveAsync(client)).Data));
        await client.SendAsync("{\"type\":\"data\",\"text\":\"bye\"}"u8.ToArray(), WebSocketMessageType.Text, true, default);

        Assert.Equal("{\"type\":\"data\",\"text\":\"goodbye\"}", Encoding.UTF8.GetString((await ReceiveAsync(client)).Data));
        Assert.Equal("{\"type\":\"output\",\"data\":{\"spoken\":2}}", Encoding.UTF8.GetString((await ReceiveAsync(client)).Data));
        Assert.Equal("{\"type\":\"end_stream\",\"reason\":\"done talking\"}", Encoding.UTF8.GetString((await ReceiveAsync(client)).Data));
        var close = await ReceiveAsync(client);
        Assert.Equal(WebSocketMessageType.Close, close.Type);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, client.CloseStatus);
        Assert.Equal("done talking", client.CloseStatusDescription);
        Assert.Equal(SessionEndKind.EndStream, (await session.Completion.WaitAsync(Patience)).Kind);
    }

    [Fact]
    public async Task BinaryDataAndMediaFramesRoundTrip()
    {
        var (serverSocket, client, sockets) = await PairAsync();
        using var tcp = sockets;
        await using var server = new StreamServer(() => new LambdaHandler(Echo));
        server.TryReserve(out var slot, out _);
        server.Start(slot!, new WebSocketSessionTransport(serverSocket));

        await client.SendAsync(new byte[] { WebSocketFrames.BinaryData, 1, 2, 3 }, WebSocketMessageType.Binary, true, default);
        var echoed = await ReceiveAsync(client);
        Assert.Equal(WebSocketMessageType.Binary, echoed.Type);
        Assert.Equal(new byte[] { 0, 1, 2, 3 }, echoed.Data);

        var frame = new MediaFrame("audio", "opus", new byte[] { 9, 8, 7 }, TimeSpan.FromMilliseconds(20), KeyFrame: true);
        var wire = new byte[64];
        var n = WebSocketFrames.WriteMedia(frame, wire);
        await client.SendAsync(wire.AsMemory(0, n), WebSocketMessageType.Binary, true, default);
        var back = await ReceiveAsync(client);
        Assert.True(WebSocketFrames.TryRead(back.Data, out var input));
        var media = Assert.IsType<MediaInput>(input).Frame;
        Assert.Equal(("audio", "opus", TimeSpan.FromMilliseconds(20), true), (media.Track, media.Codec, media.Duration, media.KeyFrame));
        Assert.Equal(new byte[] { 9, 8, 7 }, media.Payload.ToArray());
    }

    [Fact]
    public async Task ANormalCloseByTheClientIsAClientCloseNotAnError()
    {
        var (serverSocket, client, sockets) = await PairAsync();
        using var tcp = sockets;
        await using var server = new StreamServer(() => new LambdaHandler(Echo));
        server.TryReserve(out var slot, out _);
        var session = server.Start(slot!, new WebSocketSessionTransport(serverSocket));
        await client.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "leaving", default);
        var reason = await session.Completion.WaitAsync(Patience);
        Assert.Equal(SessionEndKind.ClientClosed, reason.Kind);
        Assert.Contains("1000 (NormalClosure): leaving", reason.Detail, StringComparison.Ordinal);
        Assert.Equal(0, server.Reserved);
    }

    [Fact]
    public async Task KeepaliveClosesASilentClientAtTheConfiguredTime()
    {
        var (serverSocket, client, sockets) = await PairAsync(TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(300));
        using var tcp = sockets;
        await using var server = new StreamServer(() => new LambdaHandler(Echo));
        server.TryReserve(out var slot, out _);
        var started = Stopwatch.StartNew();
        var session = server.Start(slot!, new WebSocketSessionTransport(serverSocket));
        // The client never reads, so it never answers the server's pings.
        var reason = await session.Completion.WaitAsync(Patience);
        var took = started.Elapsed;
        Assert.Equal(SessionEndKind.TransportFailed, reason.Kind);
        Assert.InRange(took, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(5));
        GC.KeepAlive(client);
    }

    [Fact]
    public async Task AnOversizeMessageClosesWithMessageTooBig()
    {
        var (serverSocket, client, sockets) = await PairAsync();
        using var tcp = sockets;
        await using var server = new StreamServer(() => new LambdaHandler(Echo));
        server.TryReserve(out var slot, out _);
        var session = server.Start(slot!, new WebSocketSessionTransport(serverSocket, new WebSocketTransportOptions { MaxMessageSize = 1024 }));
        var big = new byte[4096];
        await client.SendAsync(big, WebSocketMessageType.Binary, true, default);
        var close = await ReceiveAsync(client);
        Assert.Equal(WebSocketMessageType.Close, close.Type);
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, client.CloseStatus);
        Assert.Contains("over 1024 bytes", (await session.Completion.WaitAsync(Patience)).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MalformedClientMessagesAreDroppedAndCounted()
    {
        var (serverSocket, client, sockets) = await PairAsync();
        using var tcp = sockets;
        var transport = new WebSocketSessionTransport(serverSocket);
        await using var server = new StreamServer(() => new LambdaHandler(Echo));
        server.TryReserve(out var slot, out _);
        server.Start(slot!, transport);
        await client.SendAsync("not json"u8.ToArray(), WebSocketMessageType.Text, true, default);
        await client.SendAsync(new byte[] { 0x01, 200 }, WebSocketMessageType.Binary, true, default);   // truncated media header
        await client.SendAsync(new byte[] { 0x7F }, WebSocketMessageType.Binary, true, default);        // unknown kind
        await client.SendAsync("{\"type\":\"data\",\"text\":\"still here\"}"u8.ToArray(), WebSocketMessageType.Text, true, default);
        Assert.Equal("{\"type\":\"data\",\"text\":\"still here\"}", Encoding.UTF8.GetString((await ReceiveAsync(client)).Data));
        Assert.Equal(3, transport.Malformed);
    }

    [Theory]
    [InlineData("""{"type":{},"text":"x"}""")]          // found by fuzzing: ValueEquals threw on a non-string type
    [InlineData("""{"type":7}""")]
    [InlineData("""{"type":"data","text":"\ud800"}""")] // found by fuzzing: GetString threw on a lone surrogate
    public void ClientJsonThatIsNoMessageIsMalformedNotAnException(string json)
    {
        Assert.Null(WebSocketSessionTransport.ParseText(Encoding.UTF8.GetBytes(json)));
        Assert.Equal(WebRtcSessionTransport.ControlMessage.Malformed, WebRtcSessionTransport.ReadControl(Encoding.UTF8.GetBytes(json)).Kind);
        Assert.NotNull(WebSocketSessionTransport.ParseText("""{"type":"data","text":"ok"}"""u8));
    }
}
