using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Io;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// A minimal WHIP-like answerer inside a <see cref="NetworkNamespace"/>, for clients that no test driver controls
/// (Firefox, node-datachannel): <c>GET /page</c> serves <see cref="Page"/>, <c>POST /whip</c> answers an offer with a
/// new <see cref="PeerConnectionCore"/> on one UDP socket (every data channel message is echoed), <c>POST /result</c>
/// hands the client's JSON report to <see cref="Result"/>. One HTTP request per connection (Connection: close);
/// request bodies are capped at 64 KiB and at most <see cref="MaxSessions"/> answers are made.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class SetupTimingServer : IAsyncDisposable
{
    private const int MaxBody = 64 * 1024;
    private const int MaxSessions = 100;
    private readonly TcpListener _listener;
    private readonly UdpDriver _driver;
    private readonly IPEndPoint _udp;
    private readonly DtlsCertificate _certificate;
    private readonly Func<PeerConnectionOptions, PeerConnectionOptions> _configure;
    private readonly List<PeerHandle> _handles = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly TaskCompletionSource<string> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private SetupTimingServer(NetworkNamespace ns, string page, Func<PeerConnectionOptions, PeerConnectionOptions>? configure)
    {
        Page = page;
        _configure = configure ?? (o => o);
        _certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        _driver = new UdpDriver();
        _udp = ns.CreateInside(() => _driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
        _listener = ns.CreateInside(() => { var l = new TcpListener(IPAddress.Loopback, 0); l.Start(); return l; });
        _accepting = Task.Run(AcceptAsync);
    }

    /// <summary>The HTML served at <c>/page</c>.</summary>
    public string Page { get; }

    /// <summary>The base URL, http://127.0.0.1:port (inside the namespace).</summary>
    public string Url => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>The body of the first <c>POST /result</c>.</summary>
    public Task<string> Result => _result.Task;

    /// <summary>Offers answered so far.</summary>
    public int Answered { get { lock (_handles) return _handles.Count; } }

    /// <summary>The answers we sent, in order (for the test to check what the client was told).</summary>
    public List<string> Answers { get; } = new();

    public static SetupTimingServer Start(NetworkNamespace ns, string page, Func<PeerConnectionOptions, PeerConnectionOptions>? configure = null) =>
        new(ns, page, configure);

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException) { return; }
            _ = Task.Run(async () =>
            {
                using (client)
                {
                    try { await ServeAsync(client.GetStream()); }
                    catch (IOException) { }
                    catch (OperationCanceledException) { }
                }
            });
        }
    }

    private async Task ServeAsync(NetworkStream stream)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        var buffer = new byte[MaxBody + 8192];
        var length = 0;
        int headerEnd;
        while ((headerEnd = IndexOfHeaderEnd(buffer, length)) < 0)
        {
            if (length == buffer.Length) return;
            var n = await stream.ReadAsync(buffer.AsMemory(length), timeout.Token);
            if (n == 0) return;
            length += n;
        }
        var head = Encoding.ASCII.GetString(buffer, 0, headerEnd).Split("\r\n");
        var requestLine = head[0].Split(' ');
        if (requestLine.Length < 2) return;
        var contentLength = 0;
        foreach (var h in head.Skip(1))
            if (h.StartsWith("content-length:", StringComparison.OrdinalIgnoreCase)) int.TryParse(h["content-length:".Length..].Trim(), out contentLength);
        if (contentLength < 0 || contentLength > MaxBody) { await RespondAsync(stream, 413, "text/plain", "too large", timeout.Token); return; }
        var bodyStart = headerEnd + 4;
        while (length - bodyStart < contentLength)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(length), timeout.Token);
            if (n == 0) return;
            length += n;
        }
        var body = Encoding.UTF8.GetString(buffer, bodyStart, contentLength);
        var (method, path) = (requestLine[0], requestLine[1].Split('?')[0]);
        switch (method, path)
        {
            case ("GET", "/page"):
                await RespondAsync(stream, 200, "text/html; charset=utf-8", Page, timeout.Token);
                break;
            case ("POST", "/whip"):
                var answer = await AnswerAsync(body);
                await RespondAsync(stream, answer is null ? 429 : 201, "application/sdp", answer ?? "", timeout.Token);
                break;
            case ("POST", "/result"):
                _result.TrySetResult(body);
                await RespondAsync(stream, 204, "text/plain", "", timeout.Token);
                break;
            default:
                await RespondAsync(stream, 404, "text/plain", "not found", timeout.Token);
                break;
        }
    }

    private async Task<string?> AnswerAsync(string offerText)
    {
        lock (_handles) if (_handles.Count >= MaxSessions) return null;
        var offer = SessionDescription.Parse(offerText);
        // TRANSPORT_SETUP_DTLS=12 pins DTLS 1.2 (to compare set-up times with the DTLS 1.3 default).
        var max = Environment.GetEnvironmentVariable("TRANSPORT_SETUP_DTLS") == "12" ? Transport.Dtls.DtlsVersion.Dtls12 : Transport.Dtls.DtlsVersion.Dtls13;
        var core = new PeerConnectionCore(_configure(new PeerConnectionOptions
        {
            Certificate = _certificate,
            Ice = new IceAgentOptions { Role = IceRole.Controlled },
            DtlsMaxVersion = max
        }));
        core.AddHostCandidate(_udp);
        var handle = _driver.Register(new TimedEchoPeer(core));
        lock (_handles) _handles.Add(handle);
        var answer = await handle.InvokeAsync(now => core.CreateAnswer(offer, now).ToString());
        lock (Answers) Answers.Add(answer);
        return answer;
    }

    private static int IndexOfHeaderEnd(byte[] buffer, int length)
    {
        for (var i = 0; i + 3 < length; i++)
            if (buffer[i] == '\r' && buffer[i + 1] == '\n' && buffer[i + 2] == '\r' && buffer[i + 3] == '\n') return i;
        return -1;
    }

    private static async Task RespondAsync(NetworkStream stream, int status, string type, string body, CancellationToken token)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var head = $"HTTP/1.1 {status} X\r\nContent-Type: {type}\r\nContent-Length: {bytes.Length}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), token);
        await stream.WriteAsync(bytes, token);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try { await _accepting.WaitAsync(TimeSpan.FromSeconds(10)); } catch (TimeoutException) { }
        PeerHandle[] handles;
        lock (_handles) handles = _handles.ToArray();
        foreach (var h in handles) await h.DisposeAsync();
        await _driver.DisposeAsync();
        _certificate.Dispose();
        _stop.Dispose();
    }
}
