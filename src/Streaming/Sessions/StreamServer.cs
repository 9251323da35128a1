using System.Diagnostics.Metrics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Transport.Streaming.Io;

namespace Transport.Streaming.Sessions;

/// <summary>A reserved place for one session. Dispose it if the session is never started (e.g. the offer was bad).</summary>
public sealed class SessionSlot : IDisposable
{
    private readonly StreamServer _server;
    private int _released, _connected;

    internal SessionSlot(StreamServer server, string? client) => (_server, Client) = (server, client);

    internal bool Started { get; set; }

    /// <summary>The client address this place is counted against, or null.</summary>
    internal string? Client { get; }

    /// <summary>The session connected: the place no longer counts as pending.</summary>
    internal void MarkConnected()
    {
        // Whoever flips _connected first (this or Dispose) takes the place off the pending count, exactly once.
        if (Interlocked.Exchange(ref _connected, 1) == 0) _server.ReleasePending();
    }

    /// <summary>Gives the place back (the server does it itself when the session ends).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        _server.Release(this, pending: Interlocked.Exchange(ref _connected, 1) == 0);
    }
}

/// <summary>
/// Runs sessions: admission under a concurrency limit, one handler instance per session, a health policy that
/// closes zombies, and metrics. Free of ASP.NET Core; the hosting layer maps HTTP and WebSocket endpoints onto it.
/// </summary>
public sealed partial class StreamServer : IAsyncDisposable
{
    private readonly Func<IStreamHandler> _factory;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    // Sized by the sessions held at once: gives its storage back once drained (ShrinkingDictionary; docs/driver.md).
    private readonly ShrinkingDictionary<string, (StreamSession Session, SessionSlot Slot)> _sessions = new();
    private readonly CancellationTokenSource _shutdown = new();
    private readonly Task _healthLoop;
    private readonly Meter _meter;
    private readonly Counter<long> _ended;
    private readonly Dictionary<string, int> _perClient = new(StringComparer.Ordinal);
    private readonly Lock _admission = new();
    private int _reserved, _pending;
    private int _perClientHighWater;   // the most clients _perClient held since its last trim (under _admission)

    public StreamServer(Func<IStreamHandler> handlerFactory, StreamServerOptions? options = null, TimeProvider? time = null, ILoggerFactory? loggers = null)
    {
        _factory = handlerFactory ?? throw new ArgumentNullException(nameof(handlerFactory));
        Options = options ?? new StreamServerOptions();
        Options.Validate();
        Time = time ?? TimeProvider.System;
        _loggers = loggers ?? NullLoggerFactory.Instance;
        _logger = _loggers.CreateLogger<StreamServer>();
        _meter = new Meter("Transport.Streaming.Sessions");
        _meter.CreateObservableGauge("transport.sessions.active", () => _sessions.Count, description: "Sessions running now");
        _ended = _meter.CreateCounter<long>("transport.sessions.ended", description: "Sessions ended, by reason");
        _meter.CreateObservableGauge("transport.session.since_last_received", () => Measure(h => h.Connection.SinceLastReceived), "s",
            "Time since the last packet from the client, per session");
        _meter.CreateObservableGauge("transport.session.since_last_sent", () => Measure(h => h.Connection.SinceLastSent), "s",
            "Time since the last packet to the client, per session");
        _meter.CreateObservableGauge("transport.session.rtt", () => Measure(h => h.Connection.RoundTripTime), "s", "Round-trip time, per session");
        _meter.CreateObservableGauge("transport.session.consent_age", () => Measure(h => h.Connection.ConsentAge), "s",
            "Age of the last ICE consent, per session");
        _meter.CreateObservableGauge("transport.session.handler_idle",
            () => Measure(h => h.SinceHandlerTookInput < h.SinceHandlerProducedOutput ? h.SinceHandlerTookInput : h.SinceHandlerProducedOutput), "s",
            "Time since the handler last took input or produced output, per session");
        _healthChanges = _meter.CreateCounter<long>("transport.session.health_changes", description: "Graded health level changes, by from and to level");
        _meter.CreateObservableGauge("transport.sessions.health", CountLevels, description: "Sessions at each graded health level");
        _healthLoop = Task.Run(HealthLoopAsync);
    }

    private readonly Counter<long> _healthChanges;

    /// <summary>The options in force.</summary>
    public StreamServerOptions Options { get; }

    /// <summary>The clock of every session timer.</summary>
    public TimeProvider Time { get; }

    /// <summary>The sessions running now.</summary>
    public IReadOnlyCollection<StreamSession> Sessions => _sessions.Values.Select(v => v.Session).ToArray();

    /// <summary>A session by id, or null.</summary>
    public StreamSession? Find(string id) => _sessions.TryGetValue(id, out var s) ? s.Session : null;

    /// <summary>Reserves a place for a new session, counted against no client address.</summary>
    public bool TryReserve(out SessionSlot? slot, out AdmissionRefusal? refusal) => TryReserve(null, out slot, out refusal);

    /// <summary>
    /// Reserves a place for a new session of <paramref name="client"/> (its IP address; null: not counted per client),
    /// or refuses at once when <see cref="StreamServerOptions.MaxConcurrentSessions"/> are running or reserved, when
    /// that client holds <see cref="StreamServerOptions.MaxSessionsPerClient"/>, or when
    /// <see cref="StreamServerOptions.MaxPendingSessions"/> have not connected yet. The refusal's
    /// <see cref="AdmissionRefusal.ToJson"/> is the HTTP 429 body.
    /// </summary>
    public bool TryReserve(string? client, out SessionSlot? slot, out AdmissionRefusal? refusal)
    {
        var o = Options;
        // One lock: admission is rare next to media, and the three counters must move together.
        lock (_admission)
        {
            var held = client is not null && _perClient.TryGetValue(client, out var n) ? n : 0;
            refusal =
                _shutdown.IsCancellationRequested ? new AdmissionRefusal("server_shutting_down", o.MaxConcurrentSessions)
                : o.MaxConcurrentSessions > 0 && _reserved >= o.MaxConcurrentSessions
                    ? new AdmissionRefusal("concurrency_limit_reached", o.MaxConcurrentSessions)
                : client is not null && o.MaxSessionsPerClient > 0 && held >= o.MaxSessionsPerClient
                    ? new AdmissionRefusal("client_limit_reached", o.MaxSessionsPerClient)
                : o.MaxPendingSessions > 0 && _pending >= o.MaxPendingSessions ? new AdmissionRefusal("pending_limit_reached", o.MaxPendingSessions)
                : null;
            if (refusal is not null)
            {
                slot = null;
                return false;
            }
            _reserved++;
            _pending++;
            if (client is not null)
            {
                _perClient[client] = held + 1;
                _perClientHighWater = Math.Max(_perClientHighWater, _perClient.Count);
            }
        }
        slot = new SessionSlot(this, client);
        return true;
    }

    internal void Release(SessionSlot slot, bool pending)
    {
        lock (_admission)
        {
            _reserved--;
            if (pending) _pending--;
            if (slot.Client is { } c && _perClient.TryGetValue(c, out var n))
            {
                // Forget a client with no place left: the table holds only clients with sessions. Once drained to an
                // eighth of the most clients it held, its arrays are trimmed to the clients left (ShrinkRule, O(count)).
                if (n <= 1)
                {
                    _perClient.Remove(c);
                    if (ShrinkRule.Drained(_perClient.Count, _perClientHighWater, ShrinkingDictionary<string, int>.DefaultFloor))
                    {
                        _perClient.TrimExcess();
                        _perClientHighWater = _perClient.Count;
                    }
                }
                else _perClient[c] = n - 1;
            }
        }
    }

    internal void ReleasePending()
    {
        lock (_admission) _pending--;
    }

    /// <summary>Places reserved (or running) whose session has not connected yet.</summary>
    public int Pending
    {
        get { lock (_admission) return _pending; }
    }

    /// <summary>The running sessions' table (tests: it gives its storage back once drained).</summary>
    internal ShrinkingDictionary<string, (StreamSession Session, SessionSlot Slot)> SessionTable => _sessions;

    /// <summary>Slots of the per-client counts' table (tests: trimmed once drained).</summary>
    internal int PerClientCapacity
    {
        get { lock (_admission) return _perClient.EnsureCapacity(0); }
    }

    /// <summary>The loggers of the server's sessions (and of their connections).</summary>
    internal ILoggerFactory Loggers => _loggers;

    /// <summary>Places reserved or running now.</summary>
    public int Reserved
    {
        get { lock (_admission) return _reserved; }
    }

    /// <summary>Starts a session on a reserved place. The place is released the moment the session ends, for any reason.</summary>
    public StreamSession Start(SessionSlot slot, ISessionTransport transport, IReadOnlyDictionary<string, string>? arguments = null, string? id = null) =>
        Start(slot, transport, arguments, id, handler: null);

    /// <summary>
    /// As <see cref="Start(SessionSlot, ISessionTransport, IReadOnlyDictionary{string, string}?, string?)"/>, with the
    /// session's own <paramref name="handler"/> instead of one from the server's factory (null: the factory's), e.g. a
    /// WHEP viewer's <see cref="BroadcastViewerHandler"/>.
    /// </summary>
    public StreamSession Start(SessionSlot slot, ISessionTransport transport, IReadOnlyDictionary<string, string>? arguments,
        string? id, IStreamHandler? handler)
    {
        ArgumentNullException.ThrowIfNull(slot);
        ArgumentNullException.ThrowIfNull(transport);
        if (slot.Started) throw new InvalidOperationException("This slot already started a session.");
        slot.Started = true;
        id ??= Guid.NewGuid().ToString("N");
        try { handler ??= _factory(); }
        catch { slot.Dispose(); throw; }
        var session = new StreamSession(this, id, transport, handler, arguments ?? new Dictionary<string, string>(), _loggers.CreateLogger<StreamSession>());
        if (!_sessions.TryAdd(id, (session, slot)))
        {
            slot.Dispose();
            throw new InvalidOperationException($"A session with id '{id}' is running already.");
        }
        _ = Task.Run(session.RunAsync);
        return session;
    }

    internal void ReleaseSlot(StreamSession session)
    {
        if (_sessions.TryGetValue(session.Id, out var entry)) entry.Slot.Dispose();
    }

    internal void MarkConnected(StreamSession session)
    {
        if (_sessions.TryGetValue(session.Id, out var entry)) entry.Slot.MarkConnected();
    }

    internal void OnSessionEnded(StreamSession session, SessionEndReason reason)
    {
        if (_sessions.TryRemove(session.Id, out var entry)) entry.Slot.Dispose();
        _ended.Add(1, new KeyValuePair<string, object?>("reason", reason.Kind.ToString()));
    }

    /// <summary>Every session's health, as <c>GET /sessions</c> returns it.</summary>
    public byte[] SessionsJson() => JsonSerializer.SerializeToUtf8Bytes(
        Sessions.Select(s => s.GetHealth()).Select(h => new
        {
            id = h.SessionId,
            transport = h.Transport,
            state = h.State.ToString().ToLowerInvariant(),
            ageSeconds = h.Age.TotalSeconds,
            connection = new
            {
                state = h.Connection.State,
                stateReason = h.Connection.StateReason,
                selectedCandidatePair = h.Connection.SelectedCandidatePair,
                nominated = h.Connection.PairNominated,
                rttMs = h.Connection.RoundTripTime?.TotalMilliseconds,
                consentAgeSeconds = h.Connection.ConsentAge?.TotalSeconds,
                sinceLastReceivedSeconds = h.Connection.SinceLastReceived?.TotalSeconds,
                sinceLastSentSeconds = h.Connection.SinceLastSent?.TotalSeconds,
                loss = h.Connection.LossFraction,
                bitrateIn = h.Connection.BitrateIn,
                bitrateOut = h.Connection.BitrateOut,
                disconnectedSeconds = h.Connection.DisconnectedFor?.TotalSeconds,
                jitterMs = h.Connection.Jitter?.TotalMilliseconds,
                mediaLoss = h.Connection.MediaLossFraction,
                mediaDeliveryRate = h.Connection.MediaDeliveryRate,
                sendBacklogBytes = h.Connection.SendBacklogBytes,
            },
            health = new
            {
                level = h.Grade.LevelName,
                reasons = h.Grade.Reasons.Select(r =>
                    new { metric = r.Metric, level = HealthGrade.Name(r.Level), value = r.Value, threshold = r.Threshold, text = r.Text }),
            },
            releaseInSeconds = h.ReleaseIn?.TotalSeconds,
            handler = new
            {
                sinceTookInputSeconds = h.SinceHandlerTookInput.TotalSeconds,
                sinceProducedOutputSeconds = h.SinceHandlerProducedOutput.TotalSeconds,
                pendingInputs = h.PendingInputs,
            },
        }));

    /// <summary>
    /// A session's graded health changed level (<see cref="HealthGrader"/>), seen by the health check: raised on the
    /// health loop, after the policy's actions for the new level were started. Keep handlers quick.
    /// </summary>
    public event Action<SessionHealthChange>? HealthChanged;

    /// <summary>Applies the health policy once (the loop calls it every <see cref="StreamServerOptions.HealthCheckInterval"/>).</summary>
    public void CheckHealth()
    {
        foreach (var session in Sessions)
        {
            if (session.State != SessionState.Running) continue;
            var h = session.GetHealth();
            if (session.NoteGrade(h.Grade, out var from)) OnHealthChanged(session, from, h);
            if (Options.DisconnectedLimit is { } d && h.Connection.DisconnectedFor is { } gone && gone >= d)
                session.RequestEnd(new SessionEndReason(SessionEndKind.Disconnected,
                    $"transport disconnected for {gone.TotalSeconds:0.###} s (limit {d.TotalSeconds:0.###} s)"));
            else if (Options.HandlerStallLimit is { } stall && h.PendingInputs > 0 && h.SinceHandlerTookInput >= stall && h.SinceHandlerProducedOutput >= stall)
                session.RequestEnd(new SessionEndReason(SessionEndKind.HandlerStalled,
                    $"handler took no input and produced no output for {stall.TotalSeconds:0.###} s with {h.PendingInputs} inputs waiting"));
            else if (Options.IdleLimit is { } idle && h.SinceHandlerTookInput >= idle && h.SinceHandlerProducedOutput >= idle)
                session.RequestEnd(new SessionEndReason(SessionEndKind.Idle, $"no input and no output for {idle.TotalSeconds:0.###} s (idle limit)"));
        }
    }

    private void OnHealthChanged(StreamSession session, HealthLevel from, SessionHealth h)
    {
        var grade = h.Grade;
        _healthChanges.Add(1, new KeyValuePair<string, object?>("from", HealthGrade.Name(from)), new KeyValuePair<string, object?>("to", grade.LevelName));
        var reasons = string.Join("; ", grade.Reasons.Select(r => r.Text));
        if (grade.Level > from) LogHealthWorse(session.Id, HealthGrade.Name(from), grade.LevelName, reasons);
        else LogHealthBetter(session.Id, HealthGrade.Name(from), grade.LevelName);
        var actions = Options.Health.ActionsFor(grade.Level);
        if (actions.HasFlag(HealthAction.End))
            session.RequestEnd(new SessionEndReason(SessionEndKind.Unhealthy, $"health {grade.LevelName}: {reasons}"));
        else
        {
            if (actions.HasFlag(HealthAction.Notify)) TellClient(session, "health", grade);
            if (actions.HasFlag(HealthAction.LowerRate)) TellClient(session, "lower_rate", grade);
            if (actions.HasFlag(HealthAction.RestartIce)) TellClient(session, "restart_ice", grade);
        }
        HealthChanged?.Invoke(new SessionHealthChange(session.Id, from, grade, h.Age));
    }

    // A control message to the client about its health; a transport that cannot take it now is not waited for.
    private static void TellClient(StreamSession session, string type, HealthGrade grade)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(new
        {
            type,
            level = grade.LevelName,
            reasons = grade.Reasons.Select(r => new { metric = r.Metric, level = HealthGrade.Name(r.Level), text = r.Text }),
        });
        _ = SendQuietlyAsync(session, json);
    }

    private static async Task SendQuietlyAsync(StreamSession session, byte[] json)
    {
        try
        {
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await session.Transport.SendControlAsync(json, bound.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TransportNotConnectedException or OperationCanceledException or ObjectDisposedException or InvalidOperationException) { }
    }

    private IEnumerable<Measurement<int>> CountLevels()
    {
        Span<int> counts = stackalloc int[4];
        foreach (var s in Sessions) counts[(int)s.HealthLevel]++;
        var result = new Measurement<int>[4];
        for (var i = 0; i < 4; i++) result[i] = new Measurement<int>(counts[i], new KeyValuePair<string, object?>("level", HealthGrade.Name((HealthLevel)i)));
        return result;
    }

    private async Task HealthLoopAsync()
    {
        try
        {
            using var timer = new PeriodicTimer(Options.HealthCheckInterval, Time);
            while (await timer.WaitForNextTickAsync(_shutdown.Token).ConfigureAwait(false))
            {
                try { CheckHealth(); }
                catch (Exception e) { LogHealthFailed(e); }
            }
        }
        catch (OperationCanceledException) { }
    }

    private IEnumerable<Measurement<double>> Measure(Func<SessionHealth, TimeSpan?> pick)
    {
        foreach (var s in Sessions)
            if (pick(s.GetHealth()) is { } v)
                yield return new Measurement<double>(v.TotalSeconds, new KeyValuePair<string, object?>("session", s.Id));
    }

    /// <summary>Ends every session (reason ServerShutdown) and waits for their teardown; refuses new ones.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_shutdown.IsCancellationRequested) return;
        await _shutdown.CancelAsync().ConfigureAwait(false);
        var running = Sessions.ToArray();
        foreach (var s in running) s.RequestEnd(new SessionEndReason(SessionEndKind.ServerShutdown, "the server is stopping"));
        foreach (var s in running) await s.Completion.ConfigureAwait(false);
        await _healthLoop.ConfigureAwait(false);
        _meter.Dispose();
        _shutdown.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Session {SessionId} health {From} -> {To}: {Reasons}")]
    private partial void LogHealthWorse(string sessionId, string from, string to, string reasons);

    [LoggerMessage(Level = LogLevel.Information, Message = "Session {SessionId} health {From} -> {To}")]
    private partial void LogHealthBetter(string sessionId, string from, string to);

    [LoggerMessage(Level = LogLevel.Error, Message = "The health check failed")]
    private partial void LogHealthFailed(Exception exception);
}

/// <summary>Why a new session was refused; <see cref="ToJson"/> is the HTTP 429 body.</summary>
public sealed record AdmissionRefusal(string Error, int Limit)
{
    /// <summary><c>{"status":"failed","meta":{"error":"concurrency_limit_reached","limit":N}}</c></summary>
    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(new { status = "failed", meta = new { error = Error, limit = Limit } });
}
