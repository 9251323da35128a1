namespace Transport.Streaming.Sessions;

/// <summary>Options of a <see cref="StreamServer"/>, with their defaults.</summary>
public sealed record StreamServerOptions
{
    /// <summary>Sessions at once; a new one beyond is refused at once (HTTP 429). 0: no limit. Default 0.</summary>
    public int MaxConcurrentSessions { get; init; }

    /// <summary>
    /// Sessions at once per client address (the key given to <see cref="StreamServer.TryReserve(string?, out SessionSlot?, out AdmissionRefusal?)"/>);
    /// one more is refused at once (HTTP 429, error <c>client_limit_reached</c>). 0: no limit. Default 0.
    /// </summary>
    public int MaxSessionsPerClient { get; init; }

    /// <summary>
    /// Sessions reserved but not yet connected, in total; one more is refused at once (HTTP 429, error
    /// <c>pending_limit_reached</c>), so offers that never connect cannot fill the server. 0: no limit. Default 0.
    /// </summary>
    public int MaxPendingSessions { get; init; }

    /// <summary>
    /// From offer accepted to connected; past it the session ends with ConnectTimeout. Default 10 s: ICE over the
    /// loopback or a LAN takes well under a second, and RFC 8445 section 14.2 checks with a TURN relay a few seconds.
    /// </summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest a session may run; null: no limit. Default null.</summary>
    public TimeSpan? SessionTimeLimit { get; init; }

    /// <summary>How often the health policy looks at every session. Default 1 s.</summary>
    public TimeSpan HealthCheckInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A session whose transport has been disconnected this long is closed (reason Disconnected); the health snapshot
    /// counts it down (<see cref="SessionHealth.ReleaseIn"/>, <c>releaseInSeconds</c>). null: never (the transport's
    /// own failed timeout still applies). Default 4 s: with ICE's receive-silence timer (2.5 s while data flows) and
    /// the 1 s <see cref="HealthCheckInterval"/>, a client that vanishes mid-stream is released 6.5-7.5 s after its
    /// last packet; an idle one, disconnected after ICE's 5 s, 9-10 s after. This is also the grace a client has to
    /// come back with an ICE restart after a network change: raise it (15-30 s) where clients roam between networks. A
    /// restart the client starts while disconnected (WHIP PATCH, a signaled offer with new credentials) starts the
    /// countdown again, at most 3 times per disconnection.
    /// </summary>
    public TimeSpan? DisconnectedLimit { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>
    /// A session whose handler has inputs waiting but has taken none and produced no output for this long is closed
    /// (reason HandlerStalled). A handler that waits for input that never comes is not stalled. null: never. Default 30 s.
    /// </summary>
    public TimeSpan? HandlerStallLimit { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A running session whose handler has taken no input and produced no output for this long is closed (reason Idle),
    /// so that idle clients (a WebSocket that only answers pings) cannot hold a place forever. null: never. Default 5 min.
    /// </summary>
    public TimeSpan? IdleLimit { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The thresholds of the graded health (<see cref="HealthGrader"/>: healthy, degraded, unhealthy, dead, with
    /// reasons) and what the policy does on entering each level. See docs/sessions.md, "Graded health".
    /// </summary>
    public HealthThresholds Health { get; init; } = new();

    /// <summary>
    /// Whether each session's handler is told its graded health as an input: a <see cref="HealthInput"/> in
    /// <see cref="StreamContext.Inputs"/> when the level changes (ahead of client inputs still queued). Default false:
    /// handlers that expect only the client's data and media are not disturbed. Either way the handler can read
    /// <see cref="StreamContext.HealthGrade"/> and await <see cref="StreamContext.WaitForHealthChangeAsync"/>.
    /// </summary>
    public bool HealthInputs { get; init; }

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(Health);
        Health.Validate();
        if (MaxSessionsPerClient < 0) throw new ArgumentOutOfRangeException(nameof(MaxSessionsPerClient));
        if (MaxPendingSessions < 0) throw new ArgumentOutOfRangeException(nameof(MaxPendingSessions));
        if (IdleLimit <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(IdleLimit));
        if (MaxConcurrentSessions < 0) throw new ArgumentOutOfRangeException(nameof(MaxConcurrentSessions));
        if (ConnectTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(ConnectTimeout));
        if (HealthCheckInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(HealthCheckInterval));
        if (SessionTimeLimit <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(SessionTimeLimit));
    }
}
