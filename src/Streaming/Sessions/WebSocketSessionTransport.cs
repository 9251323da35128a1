using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace Transport.Streaming.Sessions;

/// <summary>Options of the WebSocket stream transport.</summary>
public sealed record WebSocketTransportOptions
{
    /// <summary>Largest message accepted from the client; a larger one closes with 1009 (message too big). Default 1 MiB.</summary>
    public int MaxMessageSize { get; init; } = 1 << 20;

    /// <summary>Inputs queued for the handler before the transport stops reading (back-pressure on the client). Default 256.</summary>
    public int InputQueueCapacity { get; init; } = 256;

    /// <summary>Outputs queued before <see cref="ISessionTransport.SendAsync"/> waits. Default 256.</summary>
    public int OutputQueueCapacity { get; init; } = 256;

    /// <summary>
    /// After our close frame, how long to wait for the client's (RFC 6455 section 7.1.1: the server should not drop
    /// the TCP connection first, or the close frame may be lost). Short, so teardown stays fast. Default 50 ms.
    /// </summary>
    public TimeSpan CloseHandshakeTimeout { get; init; } = TimeSpan.FromMilliseconds(50);
}

/// <summary>
/// A session transport over a WebSocket (no WebRTC): the same handlers run on it. Keepalive (ping every
/// interval, close when no pong within the timeout) is the WebSocket's own, configured where the socket is
/// accepted (<c>WebSocketAcceptContext.KeepAliveInterval</c> / <c>KeepAliveTimeout</c>); a keepalive failure ends
/// the session as TransportFailed with that reason. A close with 1000 (normal) is a normal end, reason ClientClosed.
/// </summary>
public sealed class WebSocketSessionTransport : ISessionTransport
{
    private readonly WebSocket _socket;
    private readonly WebSocketTransportOptions _options;
    private readonly Channel<StreamInput> _inputs;
    private readonly Channel<(byte[] Buffer, int Length, WebSocketMessageType Type, TaskCompletionSource? Flushed)> _outputs;
    private readonly TaskCompletionSource<SessionEndReason> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _receive, _send;
    private readonly TimeProvider _time;
    private long _lastReceived, _lastSent, _bytesIn, _bytesOut;
    private readonly long _created;

    public WebSocketSessionTransport(WebSocket socket, WebSocketTransportOptions? options = null, TimeProvider? time = null)
    {
        _socket = socket ?? throw new ArgumentNullException(nameof(socket));
        _options = options ?? new WebSocketTransportOptions();
        _time = time ?? TimeProvider.System;
        _created = _lastReceived = _lastSent = _time.GetTimestamp();
        _inputs = Channel.CreateBounded<StreamInput>(
            new BoundedChannelOptions(_options.InputQueueCapacity) { SingleWriter = true, SingleReader = true });
        _outputs = Channel.CreateBounded<(byte[], int, WebSocketMessageType, TaskCompletionSource?)>(
            new BoundedChannelOptions(_options.OutputQueueCapacity) { SingleReader = true });
        _receive = Task.Run(ReceiveLoopAsync);
        _send = Task.Run(SendLoopAsync);
    }

    public string Kind => "websocket";
    public ChannelReader<StreamInput> Inputs => _inputs.Reader;
    public Task Connected => Task.CompletedTask; // an accepted WebSocket is connected
    public Task<SessionEndReason> Ended => _ended.Task;

    public async ValueTask SendAsync(StreamOutput output, CancellationToken cancellationToken)
    {
        switch (output)
        {
            case DataOutput { IsText: true } text:
                await EnqueueJsonAsync(new { type = "data", text = Encoding.UTF8.GetString(text.Data.Span) }, cancellationToken).ConfigureAwait(false);
                break;
            case DataOutput binary:
            {
                var buffer = ArrayPool<byte>.Shared.Rent(binary.Data.Length + 1);
                buffer[0] = WebSocketFrames.BinaryData;
                binary.Data.Span.CopyTo(buffer.AsSpan(1));
                await EnqueueAsync(buffer, binary.Data.Length + 1, WebSocketMessageType.Binary, null, cancellationToken).ConfigureAwait(false);
                break;
            }
            case MediaOutput media:
            {
                var length = WebSocketFrames.MediaHeaderLength(media.Frame.Track, media.Frame.Codec) + media.Frame.Payload.Length;
                var buffer = ArrayPool<byte>.Shared.Rent(length);
                WebSocketFrames.WriteMedia(media.Frame, buffer);
                await EnqueueAsync(buffer, length, WebSocketMessageType.Binary, null, cancellationToken).ConfigureAwait(false);
                break;
            }
            default:
                throw new ArgumentException($"The WebSocket transport does not send {output?.GetType().Name ?? "null"}.", nameof(output));
        }
    }

    public ValueTask SendControlAsync(ReadOnlyMemory<byte> json, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(json.Length);
        json.Span.CopyTo(buffer);
        return EnqueueAsync(buffer, json.Length, WebSocketMessageType.Text, null, cancellationToken);
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        var flushed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await EnqueueAsync([], 0, WebSocketMessageType.Close, flushed, cancellationToken).ConfigureAwait(false);
        await Task.WhenAny(flushed.Task, _ended.Task).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private ValueTask EnqueueJsonAsync<T>(T value, CancellationToken cancellationToken)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value);
        return SendControlAsync(bytes, cancellationToken);
    }

    private async ValueTask EnqueueAsync(byte[] buffer, int length, WebSocketMessageType type, TaskCompletionSource? flushed,
        CancellationToken cancellationToken)
    {
        if (_ended.Task.IsCompleted || _socket.State != WebSocketState.Open)
        {
            if (buffer.Length > 0) ArrayPool<byte>.Shared.Return(buffer);
            var reason = _ended.Task.IsCompleted ? _ended.Task.Result.ToString() : "the socket is " + _socket.State;
            throw new TransportNotConnectedException(_socket.State.ToString().ToLowerInvariant(), reason);
        }
        try { await _outputs.Writer.WriteAsync((buffer, length, type, flushed), cancellationToken).ConfigureAwait(false); }
        catch (ChannelClosedException)
        {
            if (buffer.Length > 0) ArrayPool<byte>.Shared.Return(buffer);
            throw new TransportNotConnectedException("closed", _ended.Task.IsCompleted ? _ended.Task.Result.ToString() : "closing");
        }
    }

    private async Task SendLoopAsync()
    {
        try
        {
            await foreach (var (buffer, length, type, flushed) in _outputs.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                if (flushed is not null) { flushed.TrySetResult(); continue; } // a marker: everything before it is out
                try
                {
                    await _socket.SendAsync(buffer.AsMemory(0, length), type, true, _stop.Token).ConfigureAwait(false);
                    Interlocked.Exchange(ref _lastSent, _time.GetTimestamp());
                    Interlocked.Add(ref _bytesOut, length);
                }
                finally { ArrayPool<byte>.Shared.Return(buffer); }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
            End(new SessionEndReason(SessionEndKind.TransportFailed, "sending failed: " + e.Message));
        }
        finally
        {
            while (_outputs.Reader.TryRead(out var left))
            {
                if (left.Buffer.Length > 0) ArrayPool<byte>.Shared.Return(left.Buffer);
                left.Flushed?.TrySetResult();
            }
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(_options.MaxMessageSize, 64 * 1024));
        try
        {
            while (true)
            {
                var length = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (length == buffer.Length)
                    {
                        if (buffer.Length >= _options.MaxMessageSize)
                        {
                            await CloseQuietlyAsync(WebSocketCloseStatus.MessageTooBig, $"message over {_options.MaxMessageSize} bytes").ConfigureAwait(false);
                            End(new SessionEndReason(SessionEndKind.TransportFailed, $"the client sent a message over {_options.MaxMessageSize} bytes"));
                            return;
                        }
                        var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, _options.MaxMessageSize));
                        buffer.AsSpan(0, length).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }
                    result = await _socket.ReceiveAsync(buffer.AsMemory(length), _stop.Token).ConfigureAwait(false);
                    length += result.Count;
                } while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);

                Interlocked.Exchange(ref _lastReceived, _time.GetTimestamp());
                Interlocked.Add(ref _bytesIn, length);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    var status = _socket.CloseStatus ?? WebSocketCloseStatus.Empty;
                    var description = _socket.CloseStatusDescription;
                    End(new SessionEndReason(SessionEndKind.ClientClosed,
                        $"WebSocket closed by the client with {(int)status} ({status})" + (string.IsNullOrEmpty(description) ? "" : ": " + description)));
                    return;
                }
                StreamInput? input;
                if (result.MessageType == WebSocketMessageType.Text) input = ParseText(buffer.AsSpan(0, length));
                else WebSocketFrames.TryRead(buffer.AsSpan(0, length), out input);
                if (input is null)
                {
                    Malformed++;
                    continue;
                }
                await _inputs.Writer.WriteAsync(input, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) { }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or IOException)
        {
            End(new SessionEndReason(SessionEndKind.TransportFailed, "WebSocket failed: " + e.Message));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            _inputs.Writer.TryComplete();
        }
    }

    /// <summary>Client messages that were not understood (dropped).</summary>
    public int Malformed { get; private set; }

    internal static StreamInput? ParseText(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            using var doc = JsonDocument.ParseValue(ref reader);
            if (doc.RootElement.ValueKind == JsonValueKind.Object &&
                doc.RootElement.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.ValueEquals("data") &&
                doc.RootElement.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String)
                return new DataInput(Encoding.UTF8.GetBytes(text.GetString()!), true);
            return null;
        }
        // Found by fuzzing: ValueEquals on a non-string "type" and GetString on an escaped lone surrogate throw
        // InvalidOperationException, which ended the receive loop; such a message is malformed like any other.
        catch (Exception e) when (e is JsonException or InvalidOperationException) { return null; }
    }

    private void End(SessionEndReason reason)
    {
        if (_ended.TrySetResult(reason)) _outputs.Writer.TryComplete();
    }

    public async ValueTask CloseAsync(SessionEndReason reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        _outputs.Writer.TryComplete();
        try { await _send.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false); } catch (TimeoutException) { }
        var status = reason.Kind switch
        {
            SessionEndKind.EndStream or SessionEndKind.ClientClosed => WebSocketCloseStatus.NormalClosure,
            SessionEndKind.ServerShutdown => WebSocketCloseStatus.EndpointUnavailable,
            SessionEndKind.HandlerError => WebSocketCloseStatus.InternalServerError,
            _ => WebSocketCloseStatus.PolicyViolation,
        };
        var text = reason.Detail.Length > 100 ? reason.Detail[..100] : reason.Detail; // a close reason is at most 123 bytes
        await CloseQuietlyAsync(status, text).ConfigureAwait(false);
        End(reason);
        // The receive loop ends when the client's close frame arrives.
        try { await _receive.WaitAsync(_options.CloseHandshakeTimeout).ConfigureAwait(false); }
        catch (TimeoutException) { }
    }

    private async Task CloseQuietlyAsync(WebSocketCloseStatus status, string description)
    {
        if (_socket.State is not (WebSocketState.Open or WebSocketState.CloseReceived)) return;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _socket.CloseOutputAsync(status, description, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException) { }
    }

    public TransportHealth GetHealth() => new(
        _ended.Task.IsCompleted ? "closed" : _socket.State == WebSocketState.Open ? "connected" : _socket.State.ToString().ToLowerInvariant(),
        SinceLastReceived: _time.GetElapsedTime(Interlocked.Read(ref _lastReceived)),
        SinceLastSent: _time.GetElapsedTime(Interlocked.Read(ref _lastSent)),
        BitrateIn: Rate(Interlocked.Read(ref _bytesIn)),
        BitrateOut: Rate(Interlocked.Read(ref _bytesOut)));

    private long Rate(long bytes)
    {
        var seconds = _time.GetElapsedTime(_created).TotalSeconds;
        return seconds <= 0 ? 0 : (long)(bytes * 8 / seconds);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _outputs.Writer.TryComplete();
        try { await Task.WhenAll(_receive, _send).WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false); }
        catch (TimeoutException) { }
        _socket.Dispose();
        _stop.Dispose();
    }
}
