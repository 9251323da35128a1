namespace Transport.Dtls;

/// <summary>
/// What a <see cref="DtlsConnection"/> reports; drained with <see cref="DtlsConnection.TryPollEvent"/>. A closed
/// hierarchy: <see cref="Kind"/> names the event, <see cref="At"/> is the time of the call that caused it, and every
/// state change is a <see cref="DtlsStateChanged"/> (one of its three sealed forms) with its reason (docs/cores.md).
/// </summary>
public abstract record DtlsEvent
{
    private protected DtlsEvent() { }

    /// <summary>When it happened: the <c>now</c> of the call that caused it.</summary>
    public TimeSpan At { get; internal set; }

    /// <summary>Which event this is.</summary>
    public abstract DtlsEventKind Kind { get; }
}

/// <summary>The kinds of <see cref="DtlsEvent"/>.</summary>
public enum DtlsEventKind
{
    /// <summary>
    /// A <see cref="DtlsStateChanged"/>: <see cref="DtlsHandshaking"/>, <see cref="DtlsConnected"/>, <see cref="DtlsClosed"/>
    /// or <see cref="DtlsFailed"/>.
    /// </summary>
    StateChanged,
    /// <summary>A <see cref="DtlsApplicationData"/> (only with <see cref="DtlsOptions.DeliverApplicationDataAsEvents"/>).</summary>
    ApplicationData,
}

/// <summary>
/// The connection's state changed: <see cref="Previous"/> to <see cref="State"/> for <see cref="Reason"/>. Every state
/// after New is reported when entered, each by a sealed form that carries what that state brings: New, Handshaking,
/// Connected, then Closed or Failed (Failed may come from New or Handshaking too).
/// </summary>
public abstract record DtlsStateChanged : DtlsEvent
{
    private protected DtlsStateChanged(DtlsState state, DtlsStateReason reason)
    {
        State = state;
        Reason = reason;
    }

    /// <summary>The state before.</summary>
    public DtlsState Previous { get; internal set; }

    /// <summary>The state now.</summary>
    public DtlsState State { get; }

    /// <summary>Why.</summary>
    public DtlsStateReason Reason { get; }

    /// <inheritdoc/>
    public override DtlsEventKind Kind => DtlsEventKind.StateChanged;
}

/// <summary>
/// The handshake started (<see cref="DtlsState.Handshaking"/>): the client sent its first flight
/// (<see cref="DtlsStateReason.HandshakeStarted"/>, by <see cref="DtlsConnection.Start"/>), or the server accepted a
/// ClientHello (<see cref="DtlsStateReason.ClientHelloReceived"/>; after the cookie exchange when there is one, RFC 6347
/// section 4.2.1: a ClientHello answered by a stateless HelloVerifyRequest starts nothing).
/// </summary>
public sealed record DtlsHandshaking : DtlsStateChanged
{
    /// <summary>
    /// Handshaking for <paramref name="reason"/> (<see cref="DtlsStateReason.HandshakeStarted"/> or
    /// <see cref="DtlsStateReason.ClientHelloReceived"/>).
    /// </summary>
    public DtlsHandshaking(DtlsStateReason reason) : base(DtlsState.Handshaking, reason) { }
}

/// <summary>
/// The handshake completed (<see cref="DtlsState.Connected"/>, reason <see cref="DtlsStateReason.HandshakeComplete"/>):
/// both Finished messages verified. Keying material (<see cref="DtlsConnection.GetSrtpKeyingMaterial"/>,
/// <see cref="DtlsConnection.ExportKeyingMaterial"/>) is available from now on.
/// </summary>
/// <param name="CipherSuite">The negotiated suite.</param>
/// <param name="SrtpProfile">The SRTP profile agreed through use_srtp, or null when none was.</param>
/// <param name="RemoteFingerprint">SHA-256 fingerprint of the peer certificate (SDP form).</param>
/// <param name="SrtpKeys">The RFC 5764 4.2 keys for <paramref name="SrtpProfile"/>, or null without use_srtp.</param>
public sealed record DtlsConnected(DtlsCipherSuite CipherSuite, SrtpProtectionProfile? SrtpProfile, string RemoteFingerprint, SrtpKeyingMaterial? SrtpKeys)
    : DtlsStateChanged(DtlsState.Connected, DtlsStateReason.HandshakeComplete);

/// <summary>The connection closed with close_notify (<see cref="DtlsState.Closed"/>; reason LocalClose or PeerClosed).</summary>
public sealed record DtlsClosed : DtlsStateChanged
{
    /// <summary>Closed for <paramref name="reason"/> (<see cref="DtlsStateReason.LocalClose"/> or <see cref="DtlsStateReason.PeerClosed"/>).</summary>
    public DtlsClosed(DtlsStateReason reason) : base(DtlsState.Closed, reason) { }
}

/// <summary>The connection failed (<see cref="DtlsState.Failed"/>).</summary>
public sealed record DtlsFailed : DtlsStateChanged
{
    /// <summary>Failed for <paramref name="reason"/>, with the alert sent or received and a sentence for logs.</summary>
    public DtlsFailed(DtlsStateReason reason, DtlsAlertDescription? alert, string message) : base(DtlsState.Failed, reason)
    {
        Alert = alert;
        Message = message;
    }

    /// <summary>The alert code sent or received, if any.</summary>
    public DtlsAlertDescription? Alert { get; }

    /// <summary>A sentence for logs.</summary>
    public string Message { get; }
}

/// <summary>Application data from the peer (only ever after the handshake completed).</summary>
public sealed record DtlsApplicationData(ReadOnlyMemory<byte> Data) : DtlsEvent
{
    /// <inheritdoc/>
    public override DtlsEventKind Kind => DtlsEventKind.ApplicationData;
}

/// <summary>Which deadline <see cref="DtlsConnection.PollTimeout(out DtlsTimer)"/> returned.</summary>
public enum DtlsTimer
{
    /// <summary>No deadline.</summary>
    None,
    /// <summary>The flight is sent again (RFC 6347 section 4.2.4, RFC 9147 section 5.8): doubling from the first timeout.</summary>
    Retransmission,
    /// <summary>
    /// <see cref="DtlsOptions.HandshakeTimeout"/>: the handshake fails (or, for a DTLS 1.3 client already connected,
    /// the last flight stops waiting for its ACK).
    /// </summary>
    HandshakeTimeout,
}

/// <summary>Thrown by <see cref="DtlsConnection.Send"/> when the connection is not connected; names the state.</summary>
public sealed class DtlsNotConnectedException(DtlsState state)
    : InvalidOperationException($"DTLS connection is {state}; application data can be sent only when Connected.")
{
    /// <summary>The state the connection was in.</summary>
    public DtlsState State { get; } = state;
}
