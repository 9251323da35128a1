namespace Transport.Streaming.Sessions;

/// <summary>Options of a <see cref="StreamServer"/>, with their defaults.</summary>
public sealed record StreamServerOptions
{
    /// <summary>Sessions at once; a new one beyond is refused at once (HTTP 429). 0: no limit. Default 0.</summary>
    public int MaxConcurrentSessions { get; init; }

    /// <summary>From offer accepted to connected; past it the session ends with ConnectTimeout. Default 30 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Longest a session may run; null: no limit. Default null.</summary>
    public TimeSpan? SessionTimeLimit { get; init; }

    /// <summary>How often the health policy looks at every session. Default 1 s.</summary>
    public TimeSpan HealthCheckInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A session whose transport has been disconnected this long is closed (reason Disconnected). null: never
    /// (the transport's own failed timeout still applies). Default 15 s.
    /// </summary>
    public TimeSpan? DisconnectedLimit { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// A session whose handler has inputs waiting but has taken none and produced no output for this long is closed
    /// (reason HandlerStalled). A handler that waits for input that never comes is not stalled. null: never. Default 30 s.
    /// </summary>
    public TimeSpan? HandlerStallLimit { get; init; } = TimeSpan.FromSeconds(30);

    internal void Validate()
    {
        if (MaxConcurrentSessions < 0) throw new ArgumentOutOfRangeException(nameof(MaxConcurrentSessions));
        if (ConnectTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(ConnectTimeout));
        if (HealthCheckInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(HealthCheckInterval));
        if (SessionTimeLimit <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(SessionTimeLimit));
    }
}
