using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Transport.Streaming.Io;
using Transport.Streaming.Sdp;
using Transport.Streaming.Sessions;

namespace Transport.Streaming.Hosting;

/// <summary>Options of WebSocket signaling for WebRTC sessions.</summary>
public sealed record SignalingOptions
{
    /// <summary>The server sends <c>{"type":"ping"}</c> this often. Default 10 s.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>No <c>pong</c> (or any message) within this after a ping: closed with 1008 and the reason. Default 5 s.</summary>
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// When the signaling socket is lost after the media is up, the session goes on (the client may reconnect to it
    /// by id) unless this is true. Lost before the connection is up, the session ends at once. Default false.
    /// </summary>
    public bool EndSessionWhenSignalingLost { get; set; }
}

/// <summary>
/// WebSocket signaling at <c>/signal</c>: JSON messages <c>offer</c> -> <c>answer</c> (with the session id),
/// <c>candidate</c> (trickle, null for end-of-candidates), <c>bye</c> either way, <c>reconnect</c> to a running session
/// by id and the resume token that only its creator got in the <c>answer</c>, and <c>ping</c>/<c>pong</c> keepalive.
/// A message over <see cref="WebRtcServerLimits.MaxSignalingMessageSize"/> closes the socket with 1009. A close with 1000 is a normal end, logged as
/// information.
/// An offer that would create a session is counted against the client's offer rate
/// (<see cref="WebRtcServerLimits.OffersPerSecond"/>) and the session limits: over either, the refusal's JSON
/// (<c>rate_limit_reached</c> with <c>retryAfterSeconds</c>, <c>concurrency_limit_reached</c>, ...) and a close with 1008.
/// </summary>
public static partial class SignalingEndpoint
{
    /// <summary>Maps WebSocket signaling at <paramref name="pattern"/>; needs <c>AddWebRtcSessions</c>, no <c>UseWebSockets</c>.</summary>
    public static IEndpointConventionBuilder MapSignaling(this IEndpointRouteBuilder endpoints, string pattern = "/signal")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var host = WebRtcHostingExtensions.GetHost(endpoints.ServiceProvider);
        var options = host.Options;
        var resumeTokens = new SessionSecrets();
        // Sized by the clients connected at once: gives its storage back once drained (ShrinkingDictionary).
        var socketsPerClient = new ShrinkingDictionary<string, int>(StringComparer.Ordinal);
        return endpoints.Map(pattern, StreamEndpoints.WebSocketPipeline(endpoints, async context =>
        {
            if (!EdgeChecks.OriginAllowed(context.Request, options.AllowedOrigins))
            {
                await EdgeChecks.RefuseOriginAsync(context).ConfigureAwait(false);
                return;
            }
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                await context.Response.WriteAsync("a WebSocket upgrade is expected here", context.RequestAborted).ConfigureAwait(false);
                return;
            }
            var logger = context.RequestServices.GetService(typeof(ILoggerFactory)) is ILoggerFactory f ? f.CreateLogger("Signaling")
                : Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
            // Signaling sockets per client: counted before the upgrade, released when the socket ends.
            var client = ClientKey.For(context);
            var max = host.Limits.MaxSignalingSocketsPerClient;
            var counted = max > 0 && client is not null;
            if (counted && socketsPerClient.AddOrUpdate(client!, 1, (_, n) => n + 1) > max)
            {
                Release(socketsPerClient, client!);
                await EdgeChecks.RefuseAsync(context, SignalingLimitJson(max), host.Limits.RetryAfter).ConfigureAwait(false);
                return;
            }
            try
            {
                using var socket = await context.WebSockets.AcceptWebSocketAsync().ConfigureAwait(false);
                await new SignalingConnection(socket, host, logger, resumeTokens, client).RunAsync().ConfigureAwait(false);
            }
            finally
            {
                if (counted) Release(socketsPerClient, client!);
            }
        }));
    }

    /// <summary>The 429 body for one signaling socket too many: <c>{"error":"signaling_limit_reached","message":"..."}</c>.</summary>
    internal static byte[] SignalingLimitJson(int max) => JsonSerializer.SerializeToUtf8Bytes(new
    {
        error = "signaling_limit_reached",
        message = $"this client has {max} signaling sockets open already (WebRtc:Limits:MaxSignalingSocketsPerClient)",
    });

    private static void Release(ShrinkingDictionary<string, int> counts, string client)
    {
        while (counts.TryGetValue(client, out var n))
        {
            if (n <= 1 ? counts.TryRemove(new KeyValuePair<string, int>(client, n)) : counts.TryUpdate(client, n - 1, n)) return;
        }
    }

    private sealed partial class SignalingConnection(WebSocket socket, WebRtcSessionsHost host, ILogger logger, SessionSecrets resumeTokens, string? client)
    {
        private readonly StreamServer server = host.Server;
        private readonly WebRtcSessions webRtc = host.Sessions;
        private readonly SignalingOptions options = host.Options.Signaling;
        private static readonly TimeSpan CloseGrace = TimeSpan.FromSeconds(1);
        private readonly SemaphoreSlim _sendLock = new(1, 1);
        private readonly CancellationTokenSource _stop = new();
        private StreamSession? _session;
        private long _lastHeard = Environment.TickCount64;
        // Since when the socket has had no live session (opened, or its session ended); 0 while one runs.
        private long _noSessionSince = Environment.TickCount64;

        public async Task RunAsync()
        {
            var keepAlive = Task.Run(KeepAliveAsync);
            string outcome;
            try { outcome = await ReceiveLoopAsync().ConfigureAwait(false); }
            catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException) { outcome = "lost: " + e.Message; }
            await _stop.CancelAsync().ConfigureAwait(false);
            try { await keepAlive.ConfigureAwait(false); } catch (OperationCanceledException) { }
            if (_session is { } s && s.State != SessionState.Ended)
            {
                var connected = s.State is SessionState.Running || s.Transport.Connected.IsCompleted;
                if (!connected || options.EndSessionWhenSignalingLost)
                    s.RequestEnd(new SessionEndReason(SessionEndKind.ClientClosed, "signaling " + outcome));
                else LogSignalingLostSessionKept(s.Id, outcome);
            }
        }

        private async Task<string> ReceiveLoopAsync()
        {
            var max = host.Limits.MaxSignalingMessageSize;
            var buffer = new byte[Math.Min(max, 16 * 1024)];
            while (true)
            {
                var length = 0;
                ValueWebSocketReceiveResult r;
                do
                {
                    if (length == buffer.Length)
                    {
                        // RFC 6455 section 7.4.1: 1009, a message too big to process. The buffer never grows past the limit.
                        if (length >= max)
                        {
                            var reason = $"message over {max} bytes";
                            LogKeepAliveTimeout(reason);
                            await CloseAsync(WebSocketCloseStatus.MessageTooBig, reason).ConfigureAwait(false);
                            _stop.CancelAfter(CloseGrace);
                            return "closed: " + reason;
                        }
                        Array.Resize(ref buffer, Math.Min(buffer.Length * 2, max));
                    }
                    r = await socket.ReceiveAsync(buffer.AsMemory(length), _stop.Token).ConfigureAwait(false);
                    length += r.Count;
                } while (!r.EndOfMessage);
                Interlocked.Exchange(ref _lastHeard, Environment.TickCount64);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    var status = socket.CloseStatus ?? WebSocketCloseStatus.Empty;
                    if (status is WebSocketCloseStatus.NormalClosure or WebSocketCloseStatus.EndpointUnavailable)
                        LogNormalClose((int)status, socket.CloseStatusDescription);
                    else LogAbnormalClose((int)status, socket.CloseStatusDescription);
                    await CloseAsync(WebSocketCloseStatus.NormalClosure, "bye").ConfigureAwait(false);
                    return $"closed by the client with {(int)status}";
                }
                await HandleAsync(buffer.AsMemory(0, length)).ConfigureAwait(false);
            }
        }

        private async Task HandleAsync(ReadOnlyMemory<byte> message)
        {
            JsonDocument doc;
            try { doc = JsonDocument.Parse(message); }
            catch (JsonException) { await SendAsync(new { type = "error", error = "malformed_json" }).ConfigureAwait(false); return; }
            using (doc)
            {
                var root = doc.RootElement;
                // A "type" that is no string is no message we know (GetString would throw on it).
                var type = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("type", out var t)
                    && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
                switch (type)
                {
                    case "pong":
                        break;
                    case "offer" when _session is null && root.TryGetProperty("sdp", out var sdp) && sdp.ValueKind == JsonValueKind.String:
                        if (EdgeChecks.TakeOffer(host, client) is { } rate)
                        {
                            await SendRawAsync(rate.Json).ConfigureAwait(false);
                            await CloseAsync(WebSocketCloseStatus.PolicyViolation, "rate_limit_reached").ConfigureAwait(false);
                            return;
                        }
                        if (!server.TryReserve(client, out var slot, out var refusal))
                        {
                            await SendRawAsync(refusal!.ToJson()).ConfigureAwait(false);
                            await CloseAsync(WebSocketCloseStatus.PolicyViolation, refusal.Error).ConfigureAwait(false);
                            return;
                        }
                        try
                        {
                            var accepted = await webRtc.AcceptOfferAsync(slot!, sdp.GetString() ?? "", null, _stop.Token).ConfigureAwait(false);
                            Attach(accepted.Session);
                            // The resume token: only this client gets it, and a reconnect must show it.
                            await SendAsync(new
                            {
                                type = "answer",
                                sdp = accepted.Answer,
                                session = accepted.Session.Id,
                                resume = resumeTokens.Issue(accepted.Session)
                            }).ConfigureAwait(false);
                        }
                        catch (SdpParseException e)
                        {
                            await SendAsync(new { type = "error", error = "malformed_offer", message = e.Message }).ConfigureAwait(false);
                        }
                        // Nothing in the offer can be accepted: say why; the slot was given back, so another offer may follow.
                        catch (Transport.Streaming.Jsep.OfferRejectedException e)
                        {
                            await SendAsync(new { type = "error", error = "offer_rejected", message = e.Message, reasons = e.Reasons }).ConfigureAwait(false);
                        }
                        break;
                    case "offer" when _session is not null && root.TryGetProperty("sdp", out var reoffer) && reoffer.ValueKind == JsonValueKind.String:
                        // A subsequent offer on a running session: renegotiation, and with new credentials an ICE restart.
                        try
                        {
                            var answer = await webRtc.AnswerSubsequentOfferAsync(_session.Id, reoffer.GetString() ?? "", _stop.Token).ConfigureAwait(false);
                            if (answer is null) await SendAsync(new { type = "error", error = "unknown_session" }).ConfigureAwait(false);
                            else await SendAsync(new { type = "answer", sdp = answer, session = _session.Id }).ConfigureAwait(false);
                        }
                        catch (SdpParseException e)
                        {
                            await SendAsync(new { type = "error", error = "malformed_offer", message = e.Message }).ConfigureAwait(false);
                        }
                        catch (InvalidOperationException e)
                        {
                            await SendAsync(new { type = "error", error = "offer_refused", message = e.Message }).ConfigureAwait(false);
                        }
                        break;
                    case "candidate" when _session is not null:
                        var candidate = root.TryGetProperty("candidate", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
                        // sdpMid / sdpMLineIndex say which section the candidate is for: only the BUNDLE tag's is used.
                        var sdpMid = root.TryGetProperty("sdpMid", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
                        int? sdpMLineIndex = root.TryGetProperty("sdpMLineIndex", out var ix) && ix.ValueKind == JsonValueKind.Number
                            && ix.TryGetInt32(out var i) ? i : null;
                        try
                        {
                            await webRtc.AddRemoteCandidateAsync(_session.Id, string.IsNullOrEmpty(candidate) ? null : candidate, sdpMid,
                                sdpMLineIndex, _stop.Token).ConfigureAwait(false);
                        }
                        catch (SdpParseException e)
                        {
                            await SendAsync(new { type = "error", error = "malformed_candidate", message = e.Message }).ConfigureAwait(false);
                        }
                        break;
                    case "reconnect" when _session is null && root.TryGetProperty("session", out var id):
                        // A wrong or missing resume token is answered as an unknown session: nothing tells whether the id exists.
                        var resume = root.TryGetProperty("resume", out var rt) && rt.ValueKind == JsonValueKind.String ? rt.GetString() : null;
                        if (id.ValueKind == JsonValueKind.String && resumeTokens.Verify(id.GetString()!, resume) &&
                            server.Find(id.GetString()!) is { State: not SessionState.Ended } existing)
                        {
                            Attach(existing);
                            await SendAsync(new { type = "reconnected", session = existing.Id }).ConfigureAwait(false);
                        }
                        else await SendAsync(new { type = "error", error = "unknown_session" }).ConfigureAwait(false);
                        break;
                    case "bye" when _session is not null:
                        _session.RequestEnd(new SessionEndReason(SessionEndKind.ClientClosed, "bye on the signaling socket"));
                        break;
                    default:
                        await SendAsync(new { type = "error", error = "unexpected_message", received = type }).ConfigureAwait(false);
                        break;
                }
            }
        }

        private void Attach(StreamSession session)
        {
            _session = session;
            Interlocked.Exchange(ref _noSessionSince, 0);
            _ = session.Completion.ContinueWith(_ => Interlocked.Exchange(ref _noSessionSince, Environment.TickCount64), TaskScheduler.Default);
            _ = session.Completion.ContinueWith(async ended =>
            {
                // The session ended (any reason): say so, then a normal close.
                await SendAsync(new { type = "bye", reason = ended.Result.ToString() }).ConfigureAwait(false);
                await CloseAsync(WebSocketCloseStatus.NormalClosure, "session ended").ConfigureAwait(false);
            }, TaskScheduler.Default).Unwrap();
        }

        private async Task KeepAliveAsync()
        {
            using var timer = new PeriodicTimer(options.KeepAliveInterval);
            try
            {
                while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
                {
                    // A socket with no live session for SignalingIdleLimit goes, pings answered or not: it holds a
                    // connection and a task, and an idle crowd of them would hold the server's sockets.
                    var since = Interlocked.Read(ref _noSessionSince);
                    if (host.Limits.SignalingIdleLimit is { } idle && since != 0 && Environment.TickCount64 - since >= (long)idle.TotalMilliseconds)
                    {
                        var reason = $"no session for {idle.TotalSeconds:0.###} s";
                        LogKeepAliveTimeout(reason);
                        await CloseAsync(WebSocketCloseStatus.PolicyViolation, reason).ConfigureAwait(false);
                        _stop.CancelAfter(CloseGrace);
                        return;
                    }
                    var pingAt = Environment.TickCount64;
                    await SendAsync(new { type = "ping" }).ConfigureAwait(false);
                    await Task.Delay(options.KeepAliveTimeout, _stop.Token).ConfigureAwait(false);
                    if (Interlocked.Read(ref _lastHeard) < pingAt)
                    {
                        var reason = $"keepalive: no pong within {options.KeepAliveTimeout.TotalSeconds:0.###} s";
                        LogKeepAliveTimeout(reason);
                        await CloseAsync(WebSocketCloseStatus.PolicyViolation, reason).ConfigureAwait(false);
                        // Give the peer a moment to read our close frame and answer it (RFC 6455 section 7.1.1): dropping
                        // the TCP connection at once can discard the close frame, and with it the reason, unread.
                        _stop.CancelAfter(CloseGrace);
                        return;
                    }
                }
            }
            catch (OperationCanceledException) { }
        }

        private Task SendAsync<T>(T value) => SendRawAsync(JsonSerializer.SerializeToUtf8Bytes(value));

        private async Task SendRawAsync(byte[] json)
        {
            await _sendLock.WaitAsync().ConfigureAwait(false);
            try
            {
                if (socket.State == WebSocketState.Open)
                    await socket.SendAsync(json, WebSocketMessageType.Text, true, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is WebSocketException or ObjectDisposedException) { }
            finally { _sendLock.Release(); }
        }

        private async Task CloseAsync(WebSocketCloseStatus status, string reason)
        {
            await _sendLock.WaitAsync().ConfigureAwait(false);
            try
            {
                if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                {
                    using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                    await socket.CloseOutputAsync(status, reason, bound.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is WebSocketException or ObjectDisposedException or OperationCanceledException) { }
            finally { _sendLock.Release(); }
        }

        [LoggerMessage(Level = LogLevel.Information, Message = "Signaling closed normally by the client ({Status} {Description})")]
        private partial void LogNormalClose(int status, string? description);

        [LoggerMessage(Level = LogLevel.Warning, Message = "Signaling closed abnormally by the client ({Status} {Description})")]
        private partial void LogAbnormalClose(int status, string? description);

        [LoggerMessage(Level = LogLevel.Information, Message = "Signaling closed: {Reason}")]
        private partial void LogKeepAliveTimeout(string reason);

        [LoggerMessage(Level = LogLevel.Information, Message = "Session {SessionId}: signaling {Outcome}; the media session goes on (reconnect by id)")]
        private partial void LogSignalingLostSessionKept(string sessionId, string outcome);
    }
}
