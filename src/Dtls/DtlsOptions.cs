namespace Transport.Dtls;

/// <summary>Settings of one DTLS endpoint. Defaults follow RFC 6347 and WebRTC practice.</summary>
public sealed record DtlsOptions
{
    /// <summary>Our certificate (required for both roles: WebRTC authenticates both ends).</summary>
    public required DtlsCertificate Certificate { get; init; }

    /// <summary>
    /// The peer certificate fingerprint we expect (from SDP), in <c>AB:CD:...</c> form; null accepts any
    /// certificate (the caller then checks <see cref="DtlsConnected.RemoteFingerprint"/>).
    /// </summary>
    public string? RemoteFingerprint { get; init; }

    /// <summary>Hash of <see cref="RemoteFingerprint"/>: sha-1, sha-256 (default), sha-384 or sha-512.</summary>
    public string RemoteFingerprintAlgorithm { get; init; } = DtlsFingerprint.Sha256;

    /// <summary>Initial retransmission timeout (RFC 6347 section 4.2.4.1: 1 s). Values down to 50 ms are honoured.</summary>
    public TimeSpan InitialRetransmitTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The path's round-trip time when it is known before the handshake (WebRTC: the ICE check that validated the
    /// pair); null (default) when not. When set, the first retransmission timeout of every flight is
    /// <c>max(MinRetransmitTimeout, 2 x RoundTripTime)</c>, at most <see cref="InitialRetransmitTimeout"/>: a lost
    /// flight is resent on the scale of the path instead of after RFC 6347's 1 s (RFC 9147 section 5.8.2 lets the
    /// initial value follow the RTT; Firefox starts at 50 ms). The doubling up to <see cref="MaxRetransmitTimeout"/>
    /// stays (RFC 6347 section 4.2.4.1).
    /// </summary>
    public TimeSpan? RoundTripTime { get; init; }

    /// <summary>Floor of the RTT-based first retransmission timeout (see <see cref="RoundTripTime"/>); default 50 ms.</summary>
    public TimeSpan MinRetransmitTimeout { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Upper bound of the doubling retransmission timeout (RFC 6347: at least 60 s).</summary>
    public TimeSpan MaxRetransmitTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>The handshake fails with <see cref="DtlsStateReason.HandshakeTimeout"/> this long after it started.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Largest datagram we send during the handshake; handshake messages are fragmented to fit (default 1200).</summary>
    public int Mtu { get; init; } = 1200;

    /// <summary>Cipher suites in order of preference.</summary>
    public IReadOnlyList<DtlsCipherSuite> CipherSuites { get; init; } = DefaultCipherSuites;

    /// <summary>
    /// Key exchange groups in order of preference. <see cref="DtlsNamedGroup.X25519MLKEM768"/> is used by DTLS 1.3
    /// only (DTLS 1.2 skips it); the others serve both versions.
    /// </summary>
    public IReadOnlyList<DtlsNamedGroup> Groups { get; init; } =
        [DtlsNamedGroup.X25519MLKEM768, DtlsNamedGroup.X25519, DtlsNamedGroup.Secp256r1, DtlsNamedGroup.Secp384r1];

    /// <summary>Lowest version accepted (default DTLS 1.2).</summary>
    public DtlsVersion MinVersion { get; init; } = DtlsVersion.Dtls12;

    /// <summary>
    /// Highest version offered (client) or accepted (server). DTLS 1.3 (default) offers 1.3 and, when
    /// <see cref="MinVersion"/> allows it, 1.2 in the same ClientHello (supported_versions, RFC 9147 5.3), with
    /// downgrade protection; a 1.2-only peer gets the DTLS 1.2 machine. DTLS 1.2 runs the DTLS 1.2 machine alone
    /// (and lets a server use the stateless HelloVerifyRequest of <see cref="DtlsCookieResponder"/>).
    /// </summary>
    public DtlsVersion MaxVersion { get; init; } = DtlsVersion.Dtls13;

    /// <summary>DTLS 1.3 cipher suites in order of preference.</summary>
    public IReadOnlyList<DtlsCipherSuite> CipherSuites13 { get; init; } = [DtlsCipherSuite.TlsAes128GcmSha256, DtlsCipherSuite.TlsAes256GcmSha384];

    /// <summary>
    /// DTLS 1.3 client: key shares sent in the first ClientHello, for the first groups of <see cref="Groups"/>
    /// (default 2: X25519MLKEM768 and x25519); a server wanting another group asks with a HelloRetryRequest.
    /// </summary>
    public int KeyShareCount { get; init; } = 2;

    /// <summary>DTLS 1.3 server: put a cookie in every HelloRetryRequest (address validation; WebRTC leaves it to ICE).</summary>
    public bool HelloRetryCookie { get; init; }

    /// <summary>SRTP profiles offered (client) or accepted (server) in order of preference; empty: no use_srtp.</summary>
    public IReadOnlyList<SrtpProtectionProfile> SrtpProfiles { get; init; } =
    [
        SrtpProtectionProfile.AeadAes128Gcm, SrtpProtectionProfile.AeadAes256Gcm,
        SrtpProtectionProfile.Aes128CmHmacSha1_80, SrtpProtectionProfile.Aes128CmHmacSha1_32,
    ];

    /// <summary>
    /// True (default): each application record arrives as a <see cref="DtlsApplicationData"/> event (one array per record).
    /// False: records are queued in pooled buffers and read with <see cref="DtlsConnection.TryReceive"/>, which
    /// allocates nothing per record (the path for SCTP on top).
    /// </summary>
    public bool DeliverApplicationDataAsEvents { get; init; } = true;

    /// <summary>
    /// Bytes of incomplete handshake messages held at once while they are reassembled (default 64 KiB), before the
    /// peer is authenticated. A fragment of a message that would go over it is dropped and counted
    /// (<see cref="DtlsDropReason.BadHandshake"/>). A WebRTC flight is a few KiB (a self-signed certificate is under 1 KiB);
    /// raise it only for long certificate chains.
    /// </summary>
    public int MaxHandshakeBuffer { get; init; } = DefaultMaxHandshakeBuffer;

    /// <summary>The default of <see cref="MaxHandshakeBuffer"/>: 64 KiB.</summary>
    public const int DefaultMaxHandshakeBuffer = 64 * 1024;

    /// <summary>Server: ask for a client certificate and fail without one (WebRTC mutual authentication).</summary>
    public bool RequireClientCertificate { get; init; } = true;

    /// <summary>The suites every connection offers unless told otherwise; ChaCha20 only where the platform has it.</summary>
    public static IReadOnlyList<DtlsCipherSuite> DefaultCipherSuites { get; } = System.Security.Cryptography.ChaCha20Poly1305.IsSupported
        ? [DtlsCipherSuite.EcdheEcdsaWithAes128GcmSha256, DtlsCipherSuite.EcdheEcdsaWithAes256GcmSha384,
           DtlsCipherSuite.EcdheEcdsaWithChaCha20Poly1305Sha256, DtlsCipherSuite.EcdheRsaWithAes128GcmSha256]
        : [DtlsCipherSuite.EcdheEcdsaWithAes128GcmSha256, DtlsCipherSuite.EcdheEcdsaWithAes256GcmSha384,
           DtlsCipherSuite.EcdheRsaWithAes128GcmSha256];

    /// <summary>The first retransmission timeout of a flight: RTT-based when the RTT is known (see <see cref="RoundTripTime"/>).</summary>
    internal TimeSpan FirstRetransmitTimeout
    {
        get
        {
            if (RoundTripTime is not { } rtt) return InitialRetransmitTimeout;
            var twice = rtt + rtt;
            var rto = twice > MinRetransmitTimeout ? twice : MinRetransmitTimeout;
            return rto < InitialRetransmitTimeout ? rto : InitialRetransmitTimeout;
        }
    }

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(Certificate);
        if (InitialRetransmitTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(InitialRetransmitTimeout));
        if (MaxRetransmitTimeout < InitialRetransmitTimeout) throw new ArgumentOutOfRangeException(nameof(MaxRetransmitTimeout));
        if (MinRetransmitTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(MinRetransmitTimeout));
        if (RoundTripTime is { } rtt && rtt < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(RoundTripTime));
        if (Mtu < 256 || Mtu > 65000) throw new ArgumentOutOfRangeException(nameof(Mtu), "MTU must be in [256, 65000].");
        if (MaxHandshakeBuffer < 4096) throw new ArgumentOutOfRangeException(nameof(MaxHandshakeBuffer), "MaxHandshakeBuffer must be at least 4096 bytes.");
        if (CipherSuites.Count == 0) throw new ArgumentException("No cipher suite.", nameof(CipherSuites));
        if (Groups.Count == 0) throw new ArgumentException("No group.", nameof(Groups));
        if (MinVersion is not (DtlsVersion.Dtls12 or DtlsVersion.Dtls13) || MaxVersion is not (DtlsVersion.Dtls12 or DtlsVersion.Dtls13))
            throw new ArgumentOutOfRangeException(nameof(MaxVersion), "Versions are DTLS 1.2 and 1.3.");
        // Versions count down on the wire: 1.3 (0xFEFC) < 1.2 (0xFEFD).
        if ((ushort)MinVersion < (ushort)MaxVersion) throw new ArgumentException("MinVersion is above MaxVersion.", nameof(MinVersion));
        if (KeyShareCount < 1) throw new ArgumentOutOfRangeException(nameof(KeyShareCount));
        if (MaxVersion == DtlsVersion.Dtls13 && CipherSuites13.Count == 0) throw new ArgumentException("No DTLS 1.3 cipher suite.", nameof(CipherSuites13));
        foreach (var p in SrtpProfiles)
            if (!SrtpProfileInfo.IsKnown(p)) throw new ArgumentException($"Unknown SRTP profile {p}.", nameof(SrtpProfiles));
    }
}
