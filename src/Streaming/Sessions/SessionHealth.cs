namespace Transport.Streaming.Sessions;

/// <summary>What the session is doing now.</summary>
public enum SessionState { Connecting, Running, Ending, Ended }

/// <summary>
/// A session's health snapshot (zombie detection): the transport's liveness and the handler's. Published as an
/// object here, as <c>System.Diagnostics.Metrics</c> instruments by <see cref="StreamServer"/>, and as JSON by
/// <c>GET /sessions</c>.
/// </summary>
public sealed record SessionHealth(
    string SessionId,
    string Transport,
    SessionState State,
    TimeSpan Age,
    TransportHealth Connection,
    TimeSpan SinceHandlerTookInput,
    TimeSpan SinceHandlerProducedOutput,
    int PendingInputs,
    SessionEndReason? EndReason)
{
    /// <summary>
    /// While the transport is disconnected: how long until the health policy releases the session
    /// (<see cref="StreamServerOptions.DisconnectedLimit"/> less the time disconnected, at least 0, acted on at the next
    /// health check); null while connected or without a limit.
    /// </summary>
    public TimeSpan? ReleaseIn { get; init; }

    /// <summary>The graded health: level and reasons (<see cref="HealthGrader"/> with <see cref="StreamServerOptions.Health"/>).</summary>
    public HealthGrade Grade { get; init; } = HealthGrade.Healthy;
}
