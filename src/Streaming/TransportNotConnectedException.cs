namespace Transport.Streaming;

/// <summary>
/// Sending on a connection that is not connected (a peer connection, a session transport): names the state and
/// why it is in it. Never a silent drop.
/// </summary>
public sealed class TransportNotConnectedException : InvalidOperationException
{
    public TransportNotConnectedException(string state, string reason)
        : base($"The transport is {state}: {reason}")
    {
        State = state;
        Reason = reason;
    }

    /// <summary>The state, lower case (e.g. "disconnected", "failed", "closed").</summary>
    public string State { get; }

    /// <summary>Why the transport is in that state.</summary>
    public string Reason { get; }
}
