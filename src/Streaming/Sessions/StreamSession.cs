using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Transport.Streaming.Sessions;

/// <summary>
/// One client's session: runs its handler over its transport until something ends it, then tears everything
/// down and reports why. Created by
/// <see cref="StreamServer.Start(SessionSlot, ISessionTransport, IReadOnlyDictionary{string, string}?, string?, IStreamHandler?)"/>.
/// </summary>
public sealed partial class StreamSession
{
    private readonly StreamServer _server;
    private readonly ISessionTransport _transport;
    private readonly IStreamHandler _handler;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource<SessionEndReason> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly long _startedAt;
    private long _lastInputTaken, _lastOutput;
    private SessionEndReason? _endRequest;
    private int _state;

    internal StreamSession(StreamServer server, string id, ISessionTransport transport, IStreamHandler handler,
        IReadOnlyDictionary<string, string> arguments, ILogger logger)
    {
        _server = server;
        Id = id;
        _transport = transport;
        _handler = handler;
        _logger = logger;
        _startedAt = _lastInputTaken = _lastOutput = server.Time.GetTimestamp();
        Context = new StreamContext(this, transport.Inputs, arguments);
    }

    /// <summary>The session id.</summary>
    public string Id { get; }

    /// <summary>The connection to the client (e.g. a <see cref="WebRtcSessionTransport"/>, to add trickled candidates).</summary>
    public ISessionTransport Transport => _transport;

    /// <summary>The handler's view of the session.</summary>
    public StreamContext Context { get; }

    /// <summary>Where the session is.</summary>
    public SessionState State => (SessionState)Volatile.Read(ref _state);

    /// <summary>Completes when the session has ended and released everything, with the reason.</summary>
    public Task<SessionEndReason> Completion => _ended.Task;

    /// <summary>How long teardown took: from the moment the end was decided to everything released.</summary>
    public TimeSpan? TeardownDuration { get; private set; }

    internal CancellationToken Stopping => _stop.Token;

    internal StreamServer Server => _server;

    internal void MarkInputTaken() => Interlocked.Exchange(ref _lastInputTaken, _server.Time.GetTimestamp());

    /// <summary>Asks the session to end (health policy, time limit, server shutdown, WHIP DELETE). Idempotent.</summary>
    public void RequestEnd(SessionEndReason reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        Interlocked.CompareExchange(ref _endRequest, reason, null);
        // A request that races with the end (server shutdown while the session finishes) finds nothing left to stop.
        try { _stop.Cancel(); }
        catch (ObjectDisposedException) { }
    }

    /// <summary>The health snapshot now.</summary>
    public SessionHealth GetHealth()
    {
        var time = _server.Time;
        TransportHealth connection;
        try { connection = _transport.GetHealth(); }
        catch (ObjectDisposedException) { connection = new TransportHealth("closed"); }
        TimeSpan? releaseIn = _server.Options.DisconnectedLimit is { } limit && connection.DisconnectedFor is { } gone
            ? (limit > gone ? limit - gone : TimeSpan.Zero) : null;
        var health = new SessionHealth(Id, _transport.Kind, State, time.GetElapsedTime(_startedAt), connection,
            time.GetElapsedTime(Interlocked.Read(ref _lastInputTaken)), time.GetElapsedTime(Interlocked.Read(ref _lastOutput)),
            _transport.Inputs.CanCount ? _transport.Inputs.Count : 0,
            _ended.Task.IsCompleted ? _ended.Task.Result : null)
        { ReleaseIn = releaseIn };
        return health with { Grade = HealthGrader.Grade(health, _server.Options.Health) };
    }

    /// <summary>The level the health policy last saw (it acts on changes).</summary>
    public HealthLevel HealthLevel => HealthGrade.Level;

    /// <summary>The grade the health policy last saw (every <see cref="StreamServerOptions.HealthCheckInterval"/>).</summary>
    public HealthGrade HealthGrade
    {
        get { lock (_healthGate) return _grade; }
    }

    private readonly Lock _healthGate = new();
    private HealthGrade _grade = HealthGrade.Healthy;
    private HealthInput? _pendingHealth;
    private TaskCompletionSource _healthSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource<HealthGrade> _healthChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Records the grade of a health check; true when its level changed (the old one in from). A change wakes whoever
    // awaits one and, with HealthInputs, leaves the handler a HealthInput (merged with one it has not taken yet).
    internal bool NoteGrade(HealthGrade grade, out HealthLevel from)
    {
        TaskCompletionSource signal;
        TaskCompletionSource<HealthGrade> changed;
        lock (_healthGate)
        {
            from = _grade.Level;
            _grade = grade;
            if (from == grade.Level) return false;
            if (_server.Options.HealthInputs)
            {
                var told = _pendingHealth?.From ?? from;
                _pendingHealth = told == grade.Level ? null : new HealthInput(told, grade);
            }
            (signal, _healthSignal) = (_healthSignal, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            (changed, _healthChanged) = (_healthChanged, new TaskCompletionSource<HealthGrade>(TaskCreationOptions.RunContinuationsAsynchronously));
        }
        signal.TrySetResult();
        changed.TrySetResult(grade);
        return true;
    }

    // Completes at the next level change (take it before looking for a pending HealthInput: no change is missed).
    internal Task HealthSignal
    {
        get { lock (_healthGate) return _healthSignal.Task; }
    }

    internal Task<HealthGrade> NextHealthChange
    {
        get { lock (_healthGate) return _healthChanged.Task; }
    }

    internal HealthInput? TakeHealthInput()
    {
        lock (_healthGate)
        {
            var pending = _pendingHealth;
            _pendingHealth = null;
            return pending;
        }
    }

    internal async Task RunAsync()
    {
        SessionEndReason reason;
        try
        {
            reason = await RunCoreAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Nothing may escape a session: the server serves the others.
            LogUnexpected(e, Id);
            reason = new SessionEndReason(SessionEndKind.HandlerError, e.Message);
        }
        var decidedAt = _server.Time.GetTimestamp();
        Volatile.Write(ref _state, (int)SessionState.Ending);
        // The place is free the moment the end is decided: a client that saw its close and starts again at once
        // must be admitted, although this session's teardown (bounded to well under 100 ms) is still running.
        _server.ReleaseSlot(this);
        await _stop.CancelAsync().ConfigureAwait(false);
        try { await _transport.CloseAsync(reason).ConfigureAwait(false); }
        catch (Exception e) { LogCloseFailed(e, Id); }
        var closedAt = _server.Time.GetElapsedTime(decidedAt);
        try { await _transport.DisposeAsync().ConfigureAwait(false); }
        catch (Exception e) { LogCloseFailed(e, Id); }
        var disposedAt = _server.Time.GetElapsedTime(decidedAt);
        if (_handler is IStreamHandlerLifecycle lifecycle)
        {
            try { await lifecycle.OnShutdownAsync(Context, reason).ConfigureAwait(false); }
            catch (Exception e) { LogHookFailed(e, Id); }
        }
        if (_handler is IAsyncDisposable ad) { try { await ad.DisposeAsync().ConfigureAwait(false); } catch (Exception e) { LogHookFailed(e, Id); } }
        else if (_handler is IDisposable d) { try { d.Dispose(); } catch (Exception e) { LogHookFailed(e, Id); } }
        TeardownDuration = _server.Time.GetElapsedTime(decidedAt);
        Volatile.Write(ref _state, (int)SessionState.Ended);
        _server.OnSessionEnded(this, reason);
        _stop.Dispose();
        LogEnded(Id, reason.Kind, reason.Detail, TeardownDuration.Value.TotalMilliseconds, closedAt.TotalMilliseconds,
            (disposedAt - closedAt).TotalMilliseconds);
        _ended.TrySetResult(reason);
    }

    private async Task<SessionEndReason> RunCoreAsync()
    {
        var options = _server.Options;
        var stop = _stop.Token;

        // Connect, within the connect timeout.
        Task first;
        using (var connectWait = CancellationTokenSource.CreateLinkedTokenSource(stop))
        {
            var connectDeadline = Task.Delay(options.ConnectTimeout, _server.Time, connectWait.Token);
            first = await Task.WhenAny(_transport.Connected, _transport.Ended, connectDeadline).ConfigureAwait(false);
            await connectWait.CancelAsync().ConfigureAwait(false); // drop the connect timer once decided
        }
        if (first == _transport.Ended) return await _transport.Ended.ConfigureAwait(false);
        if (first != _transport.Connected)
            return _endRequest ?? new SessionEndReason(SessionEndKind.ConnectTimeout, $"not connected within {options.ConnectTimeout.TotalSeconds:0.###} s");
        Volatile.Write(ref _state, (int)SessionState.Running);
        _server.MarkConnected(this);

        using var limit = options.SessionTimeLimit is { } max ? new CancellationTokenSource(max, _server.Time) : null;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop, limit?.Token ?? CancellationToken.None);
        var token = linked.Token;

        if (_handler is IStreamHandlerLifecycle lifecycle)
        {
            try { await lifecycle.OnStartAsync(Context, token).ConfigureAwait(false); }
            catch (Exception e) when (!token.IsCancellationRequested) { return await FailAsync(e).ConfigureAwait(false); }
        }

        var handlerTask = PumpAsync(token);
        var done = await Task.WhenAny((Task)handlerTask, _transport.Ended).ConfigureAwait(false);
        if (done == _transport.Ended)
        {
            await linked.CancelAsync().ConfigureAwait(false);
            await ObserveAsync(handlerTask).ConfigureAwait(false);
            return await _transport.Ended.ConfigureAwait(false);
        }
        var outcome = await handlerTask.ConfigureAwait(false);
        if (outcome is not null) return outcome;
        if (_endRequest is { } requested) return requested;
        if (limit?.IsCancellationRequested == true)
            return new SessionEndReason(SessionEndKind.TimeLimit, $"session time limit of {options.SessionTimeLimit!.Value.TotalSeconds:0.###} s reached");
        return _transport.Ended.IsCompleted ? await _transport.Ended.ConfigureAwait(false) : new SessionEndReason(SessionEndKind.ServerShutdown, "stopped");
    }

    /// <summary>Runs the handler and sends what it yields. Returns the reason when the handler itself ended the session.</summary>
    private async Task<SessionEndReason?> PumpAsync(CancellationToken token)
    {
        try
        {
            await foreach (var output in _handler.RunAsync(Context, token).WithCancellation(token).ConfigureAwait(false))
            {
                Interlocked.Exchange(ref _lastOutput, _server.Time.GetTimestamp());
                switch (output)
                {
                    case EndStream end:
                        // Everything yielded before EndStream goes out first, then end_stream, then the close.
                        await _transport.FlushAsync(token).ConfigureAwait(false);
                        await _transport.SendControlAsync(Control("end_stream", "reason", end.Reason), token).ConfigureAwait(false);
                        await _transport.FlushAsync(token).ConfigureAwait(false);
                        return new SessionEndReason(SessionEndKind.EndStream, end.Reason);
                    case AdditionalOutput additional:
                        await _transport.SendControlAsync(JsonSerializer.SerializeToUtf8Bytes(new { type = "output", data = additional.Data }),
                            token).ConfigureAwait(false);
                        break;
                    case null:
                        break;
                    default:
                        await _transport.SendAsync(output, token).ConfigureAwait(false);
                        break;
                }
            }
            if (token.IsCancellationRequested) return null;
            await _transport.FlushAsync(token).ConfigureAwait(false);
            await _transport.SendControlAsync(Control("end_stream", "reason", "completed"), token).ConfigureAwait(false);
            await _transport.FlushAsync(token).ConfigureAwait(false);
            return new SessionEndReason(SessionEndKind.EndStream, "completed");
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            return null;
        }
        catch (TransportNotConnectedException e)
        {
            return _transport.Ended.IsCompleted ? await _transport.Ended.ConfigureAwait(false)
                : new SessionEndReason(SessionEndKind.TransportFailed, e.Message);
        }
        catch (Exception e)
        {
            return await FailAsync(e).ConfigureAwait(false);
        }
    }

    private async Task<SessionEndReason> FailAsync(Exception e)
    {
        LogHandlerFailed(e, Id);
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1), _server.Time);
            await _transport.SendControlAsync(Control("error", "message", e.Message), cts.Token).ConfigureAwait(false);
            await _transport.FlushAsync(cts.Token).ConfigureAwait(false);
        }
        catch (Exception sendError) when (sendError is OperationCanceledException or TransportNotConnectedException or ObjectDisposedException)
        {
            // The client is gone already; the close below still runs.
        }
        return new SessionEndReason(SessionEndKind.HandlerError, e.Message);
    }

    private static async Task ObserveAsync(Task task)
    {
        try { await task.ConfigureAwait(false); }
        catch (Exception) { /* the session is ending for another reason; the handler's own end is moot */ }
    }

    private static byte[] Control(string type, string key, string value) =>
        JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["type"] = type, [key] = value });

    [LoggerMessage(Level = LogLevel.Error, Message = "Session {SessionId}: the handler failed")]
    private partial void LogHandlerFailed(Exception exception, string sessionId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Session {SessionId}: unexpected failure")]
    private partial void LogUnexpected(Exception exception, string sessionId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Session {SessionId}: closing the transport failed")]
    private partial void LogCloseFailed(Exception exception, string sessionId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Session {SessionId}: a handler hook failed")]
    private partial void LogHookFailed(Exception exception, string sessionId);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Session {SessionId} ended ({Kind}: {Detail}); teardown took {TeardownMs} ms (transport close {CloseMs} ms, release {ReleaseMs} ms)")]
    private partial void LogEnded(string sessionId, SessionEndKind kind, string detail, double teardownMs, double closeMs, double releaseMs);
}
