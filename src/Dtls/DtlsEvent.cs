namespace Transport.Dtls;

/// <summary>What a <see cref="DtlsConnection"/> reports; drained with <see cref="DtlsConnection.TryPollEvent"/>.</summary>
public abstract record DtlsEvent;

/// <summary>
/// The handshake completed: both Finished messages verified. Keying material (<see cref="DtlsConnection.GetSrtpKeyingMaterial"/>,
/// <see cref="DtlsConnection.ExportKeyingMaterial"/>) is available from now on.
/// </summary>
/// <param name="CipherSuite">The negotiated suite.</param>
/// <param name="SrtpProfile">The SRTP profile agreed through use_srtp, or null when none was.</param>
/// <param name="RemoteFingerprint">SHA-256 fingerprint of the peer certificate (SDP form).</param>
/// <param name="SrtpKeys">The RFC 5764 4.2 keys for <paramref name="SrtpProfile"/>, or null without use_srtp.</param>
public sealed record DtlsConnected(DtlsCipherSuite CipherSuite, SrtpProtectionProfile? SrtpProfile, string RemoteFingerprint, SrtpKeyingMaterial? SrtpKeys) : DtlsEvent;

/// <summary>Application data from the peer (only ever after the handshake completed).</summary>
public sealed record DtlsApplicationData(ReadOnlyMemory<byte> Data) : DtlsEvent;

/// <summary>The connection closed with close_notify.</summary>
public sealed record DtlsClosed(DtlsCloseReason Reason) : DtlsEvent;

/// <summary>The connection failed.</summary>
/// <param name="Reason">What went wrong.</param>
/// <param name="Alert">The alert code sent or received, if any.</param>
/// <param name="Message">A sentence for logs.</param>
public sealed record DtlsFailed(DtlsFailureReason Reason, DtlsAlertDescription? Alert, string Message) : DtlsEvent;

/// <summary>Thrown by <see cref="DtlsConnection.Send"/> when the connection is not connected; names the state.</summary>
public sealed class DtlsNotConnectedException(DtlsState state)
    : InvalidOperationException($"DTLS connection is {state}; application data can be sent only when Connected.")
{
    /// <summary>The state the connection was in.</summary>
    public DtlsState State { get; } = state;
}
