namespace Transport.Sctp;

/// <summary>How an association ended (<see cref="SctpAssociation.CloseKind"/>); <see cref="SctpAssociation.CloseReason"/> has the text.</summary>
public enum SctpCloseKind
{
    /// <summary>Not ended.</summary>
    None,
    /// <summary>Graceful shutdown completed (RFC 9260 section 9.2): SHUTDOWN ACK or SHUTDOWN COMPLETE received.</summary>
    ShutdownComplete,
    /// <summary><see cref="SctpAssociation.Shutdown"/> before the association was established: nothing was sent.</summary>
    ShutdownBeforeEstablished,
    /// <summary>We sent ABORT: <see cref="SctpAssociation.Abort"/>, or a protocol violation by the peer (then the state is Failed).</summary>
    AbortSent,
    /// <summary>The peer sent ABORT (its cause is the Closed event's).</summary>
    AbortReceived,
    /// <summary>A timer ran past its retransmission limit (T1-init, T2-shutdown, T3-rtx, heartbeat, stream reset): the peer is unreachable.</summary>
    Failed,
}
