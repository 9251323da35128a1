namespace Transport.Streaming.Sessions;

/// <summary>
/// The application's code for one session. One instance per session (made by the server's factory). The handler
/// reads <see cref="StreamContext.Inputs"/> and yields outputs; yielding <see cref="EndStream"/> ends the session
/// gracefully, and so does returning. Throwing sends the client an <c>error</c> control message and closes the
/// session; the server carries on.
/// </summary>
public interface IStreamHandler
{
    IAsyncEnumerable<StreamOutput> RunAsync(StreamContext context, CancellationToken cancellationToken);
}

/// <summary>Optional start-up and shutdown hooks of a handler.</summary>
public interface IStreamHandlerLifecycle
{
    /// <summary>Before <see cref="IStreamHandler.RunAsync"/>; an exception here fails the session like one in RunAsync.</summary>
    ValueTask OnStartAsync(StreamContext context, CancellationToken cancellationToken);

    /// <summary>After the session ended, whatever ended it; always called once, with the reason.</summary>
    ValueTask OnShutdownAsync(StreamContext context, SessionEndReason reason);
}

/// <summary>Why a session ended.</summary>
public enum SessionEndKind
{
    /// <summary>The handler yielded EndStream or returned.</summary>
    EndStream,
    /// <summary>The handler threw.</summary>
    HandlerError,
    /// <summary>The client closed (WebSocket close, DTLS close_notify, SCTP ABORT/SHUTDOWN, RTCP BYE, WHIP DELETE).</summary>
    ClientClosed,
    /// <summary>The transport failed (ICE consent expired, failed timeout, socket error).</summary>
    TransportFailed,
    /// <summary>Offer accepted, never connected within the connect timeout.</summary>
    ConnectTimeout,
    /// <summary>The per-session time limit passed.</summary>
    TimeLimit,
    /// <summary>The health policy found the transport disconnected too long.</summary>
    Disconnected,
    /// <summary>The health policy found the handler stalled too long.</summary>
    HandlerStalled,
    /// <summary>The server is shutting down.</summary>
    ServerShutdown,
    /// <summary>The health policy found the session idle (no input, no output) for the idle limit.</summary>
    Idle,
    /// <summary>The graded health policy ended it (<see cref="HealthAction.End"/> on its level), with the reasons.</summary>
    Unhealthy,
}

/// <summary>Why a session ended, with a human-readable detail.</summary>
public sealed record SessionEndReason(SessionEndKind Kind, string Detail)
{
    public override string ToString() => $"{Kind}: {Detail}";
}
