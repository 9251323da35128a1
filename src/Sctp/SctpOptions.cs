namespace Transport.Sctp;

/// <summary>
/// Settings of an <see cref="SctpAssociation"/>. The defaults are chosen for WebRTC data channels over
/// DTLS; docs/sctp.md explains each figure.
/// </summary>
public sealed record SctpOptions
{
    /// <summary>Our SCTP port; WebRTC uses 5000 (RFC 8841 sctp-port default).</summary>
    public ushort LocalPort { get; init; } = 5000;
    /// <summary>The peer's SCTP port; 0 lets a passive association take it from the peer's INIT.</summary>
    public ushort RemotePort { get; init; } = 5000;

    /// <summary>
    /// Largest SCTP packet we send: 1200 bytes of UDP payload (the WebRTC-safe size) minus 37 bytes of DTLS 1.2
    /// record overhead with AES-GCM (13 header + 8 explicit nonce + 16 tag).
    /// </summary>
    public int MaxPacketSize { get; init; } = 1200 - 37;

    /// <summary>Our receive buffer; the advertised receiver window (a_rwnd) is this minus what we hold.</summary>
    public int ReceiveBufferSize { get; init; } = 1024 * 1024;

    /// <summary>
    /// Backpressure (RFC 9260 section 6.2): when above 0, the bytes of a data channel message stay counted against the
    /// advertised window after the event was polled, until the application hands them back with
    /// <see cref="SctpAssociation.ReleaseReceived"/>; reassembly plus unread bytes then stay within this bound (plus one
    /// 64 KiB in-sequence reserve), the window closes as the application falls behind and reopens as it reads.
    /// Default 0: bytes are released when the next event is polled (the application copies what it keeps).
    /// </summary>
    public int MaxUnreadBytes { get; init; }

    /// <summary>Number of outbound and inbound streams we ask for (RFC 8831 section 6.2 asks for 65535).</summary>
    public ushort Streams { get; init; } = 65535;

    /// <summary>RFC 9260 section 6.3: RTO.Initial. 1 s as in the RFC.</summary>
    public TimeSpan RtoInitial { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>RTO.Min. 200 ms instead of the RFC's 1 s: WebRTC paths are interactive and DTLS-protected.</summary>
    public TimeSpan RtoMin { get; init; } = TimeSpan.FromMilliseconds(200);
    /// <summary>RTO.Max. 10 s instead of 60 s, so that a dead path fails in about a minute.</summary>
    public TimeSpan RtoMax { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>
    /// Cap on the backed-off RTO (RFC 9260 section 6.3.3 E2 doubles it at each T3-rtx expiry up to RTO.Max); null: RTO.Max.
    /// After a long outage or a run of losses the doubled timer otherwise keeps the next retransmission up to RTO.Max
    /// away once the path works again, and with no new RTT sample (Karn's rule) it stays there: at 30 % loss each way
    /// the chaos suite saw 10 s between retransmissions for minutes. libwebrtc caps it at 3 s for the same reason. A
    /// measured RTO above the cap is kept (the cap never shortens the timer below the path's own RTO).
    /// </summary>
    public TimeSpan? MaxTimerBackoff { get; init; }
    /// <summary>Association.Max.Retrans (RFC 9260 section 16): consecutive T3-rtx / heartbeat failures before Failed.</summary>
    public int MaxRetransmissions { get; init; } = 10;
    /// <summary>Max.Init.Retransmits (RFC 9260 section 16).</summary>
    public int MaxInitRetransmits { get; init; } = 8;
    /// <summary>Delayed SACK timeout (RFC 9260 section 6.2 allows up to 500 ms; 200 ms is the usual figure).</summary>
    public TimeSpan DelayedAckTimeout { get; init; } = TimeSpan.FromMilliseconds(200);
    /// <summary>Heartbeat interval (RFC 9260 section 8.3), or null for none (WebRTC watches the path with ICE consent).</summary>
    public TimeSpan? HeartbeatInterval { get; init; }
    /// <summary>Valid.Cookie.Life (RFC 9260 section 16).</summary>
    public TimeSpan CookieLifetime { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Offer RFC 9653 zero checksum (EDMID "SCTP over DTLS"). Packets we send carry no checksum only once the
    /// peer accepted it too. Turn off when SCTP does not run over DTLS.
    /// </summary>
    public bool OfferZeroChecksum { get; init; } = true;

    /// <summary>
    /// The SDP max-message-size (RFC 8841 section 6): the largest message we send and accept. Default 256 KiB.
    /// </summary>
    public int MaxMessageSize { get; init; } = 256 * 1024;

    /// <summary>True when our DTLS role is client: then our data channels use even stream ids (RFC 8832 section 6).</summary>
    public bool IsDtlsClient { get; init; } = true;

    /// <summary>Bounds on the data channels a peer can open (count, label and protocol lengths); see <see cref="SctpLimits"/>.</summary>
    public SctpLimits Limits { get; init; } = new();

    /// <summary>Key of the state cookie HMAC; null draws a random one per association.</summary>
    public byte[]? CookieSecret { get; init; }

    internal void Validate()
    {
        if (MaxPacketSize < 512 || MaxPacketSize > 65535)
            throw new ArgumentOutOfRangeException(nameof(MaxPacketSize), "MaxPacketSize must be in [512, 65535].");
        if (ReceiveBufferSize < 4 * MaxPacketSize)
            throw new ArgumentOutOfRangeException(nameof(ReceiveBufferSize), "ReceiveBufferSize must hold at least four packets.");
        if (MaxUnreadBytes != 0 && (MaxUnreadBytes < 4 * MaxPacketSize || MaxUnreadBytes < MaxMessageSize))
            throw new ArgumentOutOfRangeException(nameof(MaxUnreadBytes), "MaxUnreadBytes must be 0 or hold four packets and one message of MaxMessageSize.");
        if (MaxMessageSize < 1) throw new ArgumentOutOfRangeException(nameof(MaxMessageSize));
        if (RtoMin <= TimeSpan.Zero || RtoMax < RtoMin || RtoInitial < RtoMin || RtoInitial > RtoMax)
            throw new ArgumentOutOfRangeException(nameof(RtoInitial), "Need 0 < RtoMin <= RtoInitial <= RtoMax.");
        if (MaxTimerBackoff is { } cap && cap < RtoMin)
            throw new ArgumentOutOfRangeException(nameof(MaxTimerBackoff), "The backoff cap must not be below RtoMin.");
        if (Streams == 0) throw new ArgumentOutOfRangeException(nameof(Streams));
        ArgumentNullException.ThrowIfNull(Limits);
        Limits.Validate();
    }
}
