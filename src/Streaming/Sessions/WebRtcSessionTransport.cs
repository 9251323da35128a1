using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Transport.Sctp;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Sessions;

/// <summary>
/// A session transport whose client is a WebRTC peer connection: media frames on the negotiated audio and video
/// tracks (see the Media part), data messages on data channels, JSON control
/// messages on the control channel (<see cref="WebRtcTransportOptions.ControlChannelLabel"/>). A flush waits until
/// SCTP has nothing unacknowledged, so everything yielded before <see cref="EndStream"/> has reached the client
/// before <c>end_stream</c> goes out, and <c>end_stream</c> has reached it before the close (SCTP ABORT and DTLS
/// close_notify). The client ends the session by closing its peer connection (close_notify, ABORT or SHUTDOWN act
/// at once) or with <c>{"type":"bye"}</c> on the control channel.
/// </summary>
public sealed partial class WebRtcSessionTransport : ISessionTransport, IMediaSessionTransport
{
    private readonly PeerConnection _pc;
    private readonly WebRtcTransportOptions _options;
    private readonly TimeProvider _time;
    private readonly Channel<StreamInput> _inputs;
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<SessionEndReason> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<DataChannel> _control = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentDictionary<string, DataChannel> _channels = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _openingDefault = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _events, _health, _tracks;
    private readonly InputReader _inputReader;
    private readonly SemaphoreSlim _inputRoom = new(0, 1);
    private volatile DataChannel? _defaultData;
    private long _queuedInputBytes, _peakInputBytes;
    private int _disposed;

    /// <summary>Runs a session over <paramref name="peerConnection"/>, which the transport owns from now on (it closes and disposes it).</summary>
    public WebRtcSessionTransport(PeerConnection peerConnection, WebRtcTransportOptions? options = null, TimeProvider? time = null)
    {
        _pc = peerConnection ?? throw new ArgumentNullException(nameof(peerConnection));
        _options = options ?? new WebRtcTransportOptions();
        _time = time ?? TimeProvider.System;
        _created = _lastSent = _time.GetTimestamp();
        if (_options.InputQueueMaxBytes < 1) throw new ArgumentOutOfRangeException(nameof(options), "InputQueueMaxBytes must be at least 1.");
        _inputs = Channel.CreateBounded<StreamInput>(new BoundedChannelOptions(_options.InputQueueCapacity) { SingleReader = true });
        _inputReader = new InputReader(this, _inputs.Reader);
        _events = Task.Run(EventLoopAsync);
        _health = Task.Run(HealthLoopAsync);
        _tracks = Task.Run(RemoteTracksLoopAsync);
    }

    /// <summary>The peer connection (to add trickled candidates; do not close it directly).</summary>
    public PeerConnection PeerConnection => _pc;

    /// <summary>The client's last offer this transport's connection answered, parsed once (the template of a restart by fragment; never changed).</summary>
    internal Sdp.SessionDescription? RemoteOffer { get; private set; }

    /// <summary>The ICE username fragment of <see cref="RemoteOffer"/>, read once when it was answered.</summary>
    internal string? RemoteIceUfrag { get; private set; }

    /// <summary>The ICE username fragment of our answer to it, read once.</summary>
    internal string? LocalIceUfrag { get; private set; }

    /// <summary>Our offer when the server offered (WHEP's server-offer variant): the session waits for the client's answer.</summary>
    internal string? LocalOffer { get; init; }

    /// <summary>Records an offer and our answer to it (a WHIP PATCH reads these and parses nothing again).</summary>
    internal void SetNegotiated(Sdp.SessionDescription offer, string answer)
    {
        RemoteOffer = offer;
        RemoteIceUfrag = Jsep.IceSdpFragment.UfragOf(offer);
        LocalIceUfrag = Jsep.IceSdpFragment.Parse(answer).Ufrag;
    }

    public string Kind => "webrtc";
    public ChannelReader<StreamInput> Inputs => _inputReader;
    public Task Connected => _connected.Task;
    public Task<SessionEndReason> Ended => _ended.Task;

    /// <summary>Completes when the control channel is open, with it.</summary>
    public Task<DataChannel> ControlChannel => _control.Task;

    /// <summary>Control messages from the client that were not understood (dropped).</summary>
    public int MalformedControl => Volatile.Read(ref _malformedControl);
    private int _malformedControl;

    public async ValueTask SendAsync(StreamOutput output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        ThrowIfEnded();
        if (output is MediaOutput media)
        {
            await SendMediaAsync(media, cancellationToken).ConfigureAwait(false);
            return;
        }
        if (output is not DataOutput data)
            throw new ArgumentException($"The WebRTC transport does not send {output.GetType().Name}.", nameof(output));
        var channel = await DataChannelForAsync(data.Channel, cancellationToken).ConfigureAwait(false);
        await WaitForRoomAsync(channel, cancellationToken).ConfigureAwait(false);
        await SendOnAsync(channel, data.Data, !data.IsText, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask SendControlAsync(ReadOnlyMemory<byte> json, CancellationToken cancellationToken)
    {
        ThrowIfEnded();
        var control = await WhileConnectedAsync(_control.Task, cancellationToken).ConfigureAwait(false);
        await SendOnAsync(control, json, binary: false, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Waits until SCTP has nothing queued, in flight or unacknowledged, the transport ended, or <see cref="WebRtcTransportOptions.FlushTimeout"/>.
    /// </summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        while (!_ended.Task.IsCompleted)
        {
            PeerConnectionHealth health;
            try { health = await _pc.GetHealthAsync(cancellationToken).ConfigureAwait(false); }
            catch (ObjectDisposedException) { return; }
            Publish(health);
            if (health.SendIdle || health.State is not (ConnectionState.Connected or ConnectionState.Disconnected)) return;
            if (_time.GetElapsedTime(started) >= _options.FlushTimeout) return;
            await Task.Delay(TimeSpan.FromMilliseconds(1), _time, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task SendOnAsync(DataChannel channel, ReadOnlyMemory<byte> data, bool binary, CancellationToken cancellationToken)
    {
        try { await _pc.SendAsync(channel, data, binary, cancellationToken).ConfigureAwait(false); }
        catch (DataChannelNotOpenException e)
        {
            throw new TransportNotConnectedException("closed", e.Message);
        }
        catch (ObjectDisposedException)
        {
            throw new TransportNotConnectedException("closed", EndedDetail());
        }
        Interlocked.Exchange(ref _lastSent, _time.GetTimestamp());
        Interlocked.Add(ref _bytesOut, data.Length);
    }

    private async Task WaitForRoomAsync(DataChannel channel, CancellationToken cancellationToken)
    {
        // BufferedAmount is written on the connection's thread; a slightly stale read only shifts when we wait.
        while (channel.BufferedAmount > _options.SendHighWaterMark)
        {
            ThrowIfEnded();
            await Task.Delay(TimeSpan.FromMilliseconds(1), _time, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<DataChannel> DataChannelForAsync(string label, CancellationToken cancellationToken)
    {
        if (label.Length > 0 && label != _options.ControlChannelLabel && _channels.TryGetValue(label, out var named)) return named;
        if (_defaultData is { } current) return current;
        await _openingDefault.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_defaultData is { } raced) return raced;
            // The client opened no data channel: open the default one ourselves.
            var opened = await WhileConnectedAsync(
                _pc.CreateDataChannelAsync(_options.DefaultDataChannelLabel, null, cancellationToken), cancellationToken).ConfigureAwait(false);
            OnOpened(opened);
            return _defaultData ?? opened;
        }
        catch (ObjectDisposedException) { throw new TransportNotConnectedException("closed", EndedDetail()); }
        finally { _openingDefault.Release(); }
    }

    private async Task<T> WhileConnectedAsync<T>(Task<T> task, CancellationToken cancellationToken)
    {
        var done = await Task.WhenAny(task, _ended.Task).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (done != task) throw new TransportNotConnectedException("closed", EndedDetail());
        return await task.ConfigureAwait(false);
    }

    private void ThrowIfEnded()
    {
        if (_ended.Task.IsCompleted) throw new TransportNotConnectedException(_pc.State.ToString().ToLowerInvariant(), EndedDetail());
    }

    private string EndedDetail() => _ended.Task.IsCompleted ? _ended.Task.Result.ToString() : _pc.Reason?.ToString() ?? "closed";

    private async Task EventLoopAsync()
    {
        try
        {
            var events = _pc.Events;
            while (await events.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
            {
                // A data message is taken from the connection only when the input queue has room for its bytes:
                // until then it stays unread there, counted against MaxUnreadBytes, and the SCTP window closes.
                if (events.TryPeek(out var next) && next is DataChannelMessageReceived pending && pending.Channel.Label != _options.ControlChannelLabel)
                    await WaitForInputRoomAsync(pending.Data.Length).ConfigureAwait(false);
                if (!events.TryRead(out var e)) continue;
                switch (e)
                {
                    case ConnectionStateChanged s:
                        OnStateChanged(s);
                        break;
                    case IceRestartStarted { ByUs: false }:
                        RenewDisconnectedGrace();
                        break;
                    case DataChannelOpened o:
                        OnOpened(o.Channel);
                        break;
                    case KeyFrameRequestReceived k when _options.ForwardKeyFrameRequests:
                        _ = OnKeyFrameRequestAsync(k.Track);
                        break;
                    case DataChannelMessageReceived m:
                        Interlocked.Add(ref _bytesIn, m.Data.Length);
                        if (m.Channel.Label == _options.ControlChannelLabel) OnControl(m.Data);
                        else
                        {
                            Interlocked.Add(ref _queuedInputBytes, m.Data.Length);
                            try { await _inputs.Writer.WriteAsync(new DataInput(m.Data, !m.IsBinary, m.Channel.Label), _stop.Token).ConfigureAwait(false); }
                            catch { Interlocked.Add(ref _queuedInputBytes, -m.Data.Length); throw; }
                            NotePeakInput();
                        }
                        break;
                }
            }
            // The events end when the connection closed or failed; the state change before it said why.
            End(new SessionEndReason(SessionEndKind.TransportFailed, "the peer connection ended: " + (_pc.Reason?.ToString() ?? "unknown")));
        }
        catch (OperationCanceledException) { }
        catch (ChannelClosedException) { }
        finally { _inputs.Writer.TryComplete(); }
    }

    private void OnStateChanged(ConnectionStateChanged s)
    {
        switch (s.State)
        {
            case ConnectionState.Connected:
                Interlocked.Exchange(ref _disconnectedSince, 0);
                _graceRenewals = 0;
                if (_connected.TrySetResult()) _ = OpenControlIfMissingAsync();
                break;
            case ConnectionState.Disconnected:
                Interlocked.CompareExchange(ref _disconnectedSince, _time.GetTimestamp(), 0);
                break;
            case ConnectionState.Closed when s.Reason.Layer != ConnectionLayer.Application:
                End(new SessionEndReason(SessionEndKind.ClientClosed, "the client closed the peer connection (" + s.Reason + ")"));
                break;
            case ConnectionState.Failed:
                End(new SessionEndReason(SessionEndKind.TransportFailed, s.Reason.ToString()));
                break;
        }
    }

    // A client that restarts ICE while disconnected (onto a relay, or from a new network) is alive and coming back: its
    // session's StreamServerOptions.DisconnectedLimit counts again from the restart, at most MaxGraceRenewals times per
    // disconnection (a client that restarts again and again without ever connecting is still released).
    private const int MaxGraceRenewals = 3;
    private int _graceRenewals;

    private void RenewDisconnectedGrace()
    {
        if (Interlocked.Read(ref _disconnectedSince) == 0 || _graceRenewals >= MaxGraceRenewals) return;
        _graceRenewals++;
        Interlocked.Exchange(ref _disconnectedSince, _time.GetTimestamp());
    }

    private async Task OpenControlIfMissingAsync()
    {
        try
        {
            await Task.Delay(_options.ControlChannelWait, _time, _stop.Token).ConfigureAwait(false);
            if (_control.Task.IsCompleted || _ended.Task.IsCompleted) return;
            OnOpened(await _pc.CreateDataChannelAsync(_options.ControlChannelLabel, null, _stop.Token).ConfigureAwait(false));
        }
        catch (Exception e) when (e is OperationCanceledException or TransportNotConnectedException or ObjectDisposedException) { }
    }

    private void OnOpened(DataChannel channel)
    {
        if (channel.Label == _options.ControlChannelLabel)
        {
            _control.TrySetResult(channel);
            return;
        }
        _channels.TryAdd(channel.Label, channel);
        if (_defaultData is null) Interlocked.CompareExchange(ref _defaultData, channel, null);
    }

    private void OnControl(byte[] json)
    {
        var (kind, pongId) = ReadControl(json);
        if (kind == ControlMessage.Pong) OnPong(pongId);
        else if (kind == ControlMessage.Bye) End(new SessionEndReason(SessionEndKind.ClientClosed, "the client said bye on the control channel"));
        else if (kind == ControlMessage.Relay && Relay is { } relay) relay.Receive(json);
        else Interlocked.Increment(ref _malformedControl);
    }

    /// <summary>The session's place in the signaling relay (<see cref="SignalingRelay"/>), when the server has one.</summary>
    public RelayConnection? Relay { get; internal set; }

    internal enum ControlMessage { Malformed, Pong, Bye, Relay }

    /// <summary>Reads a control-channel message from the client: a pong with its id, a bye, a relay message, or anything else (malformed).</summary>
    internal static (ControlMessage Kind, long PongId) ReadControl(ReadOnlyMemory<byte> json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                return (ControlMessage.Malformed, 0);
            if (type.ValueEquals("pong") && root.TryGetProperty("id", out var id) && id.TryGetInt64(out var n)) return (ControlMessage.Pong, n);
            if (type.ValueEquals("bye")) return (ControlMessage.Bye, 0);
            if (SignalingRelay.IsRelayType(type)) return (ControlMessage.Relay, 0);
            return (ControlMessage.Malformed, 0);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { return (ControlMessage.Malformed, 0); }
    }

    private void End(SessionEndReason reason)
    {
        if (_ended.TrySetResult(reason)) _inputs.Writer.TryComplete();
        SignalInputRoom();
    }

    /// <summary>
    /// Bytes of data messages queued for the handler now (at most <see cref="WebRtcTransportOptions.InputQueueMaxBytes"/>, or one larger message).
    /// </summary>
    public long QueuedInputBytes => Interlocked.Read(ref _queuedInputBytes);

    /// <summary>The most <see cref="QueuedInputBytes"/> ever was.</summary>
    public long PeakQueuedInputBytes => Interlocked.Read(ref _peakInputBytes);

    /// <summary>Waits until <paramref name="bytes"/> more fit the input queue (or it is empty), or the session ended.</summary>
    private async ValueTask WaitForInputRoomAsync(int bytes)
    {
        while (!_ended.Task.IsCompleted)
        {
            var queued = Interlocked.Read(ref _queuedInputBytes);
            if (queued == 0 || queued + bytes <= _options.InputQueueMaxBytes) return;
            await _inputRoom.WaitAsync(_stop.Token).ConfigureAwait(false);
        }
    }

    private void SignalInputRoom()
    {
        try { if (_inputRoom.CurrentCount == 0) _inputRoom.Release(); }
        catch (SemaphoreFullException) { }
        catch (ObjectDisposedException) { }
    }

    private void NotePeakInput()
    {
        var queued = Interlocked.Read(ref _queuedInputBytes);
        for (var peak = Interlocked.Read(ref _peakInputBytes); queued > peak; peak = Interlocked.Read(ref _peakInputBytes))
            if (Interlocked.CompareExchange(ref _peakInputBytes, queued, peak) == peak) break;
    }

    /// <summary>The handler's reader: each data message taken gives its bytes back to the input queue's bound.</summary>
    private sealed class InputReader(WebRtcSessionTransport owner, ChannelReader<StreamInput> inner) : ChannelReader<StreamInput>
    {
        public override bool TryRead(out StreamInput item)
        {
            if (!inner.TryRead(out item!)) return false;
            if (item is DataInput d)
            {
                Interlocked.Add(ref owner._queuedInputBytes, -d.Data.Length);
                owner.SignalInputRoom();
            }
            return true;
        }

        public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) => inner.WaitToReadAsync(cancellationToken);
        public override Task Completion => inner.Completion;
        public override bool CanCount => inner.CanCount;
        public override int Count => inner.Count;
        public override bool CanPeek => inner.CanPeek;
        public override bool TryPeek(out StreamInput item) => inner.TryPeek(out item!);
    }

    /// <summary>Closes the peer connection: SCTP ABORT and DTLS close_notify go out (the client learns at once).</summary>
    public async ValueTask CloseAsync(SessionEndReason reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        End(reason);
        try
        {
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(1), _time);
            await _pc.CloseAsync(reason.ToString(), bound.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) { }
        catch (ObjectDisposedException) { }
    }

    /// <summary>Releases the driver registration, timers and buffers; the event and health loops stop.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        End(new SessionEndReason(SessionEndKind.ServerShutdown, "transport disposed"));
        await _stop.CancelAsync().ConfigureAwait(false);
        await _pc.DisposeAsync().ConfigureAwait(false);
        Task[] readers;
        lock (_trackReaders) readers = [.. _trackReaders];
        try { await Task.WhenAll([_events, _health, _tracks, .. readers]).WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false); }
        catch (TimeoutException) { }
        _control.TrySetCanceled();
        _stop.Dispose();
        _openingDefault.Dispose();
    }

    /// <summary>True once <see cref="DisposeAsync"/> released everything.</summary>
    public bool IsDisposed
    {
        get
        {
            lock (_trackReaders)
                return Volatile.Read(ref _disposed) != 0 && _events.IsCompleted && _health.IsCompleted && _tracks.IsCompleted
                    && _trackReaders.TrueForAll(t => t.IsCompleted);
        }
    }
}
