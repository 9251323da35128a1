namespace Transport.Dtls;

/// <summary>TLS record content types (RFC 5246 section 6.2.1).</summary>
public enum DtlsContentType : byte
{
    ChangeCipherSpec = 20,
    Alert = 21,
    Handshake = 22,
    ApplicationData = 23,
    /// <summary>DTLS 1.3 ACK (RFC 9147 section 7).</summary>
    Ack = 26,
}

/// <summary>Handshake message types (RFC 5246 section 7.4, RFC 6347 section 4.3.2).</summary>
public enum DtlsHandshakeType : byte
{
    HelloRequest = 0,
    ClientHello = 1,
    ServerHello = 2,
    HelloVerifyRequest = 3,
    Certificate = 11,
    ServerKeyExchange = 12,
    CertificateRequest = 13,
    ServerHelloDone = 14,
    CertificateVerify = 15,
    ClientKeyExchange = 16,
    Finished = 20,
    /// <summary>TLS 1.3 (RFC 8446 4).</summary>
    NewSessionTicket = 4,
    EndOfEarlyData = 5,
    EncryptedExtensions = 8,
    KeyUpdate = 24,
    /// <summary>The synthetic message replacing ClientHello1 in the transcript after a HelloRetryRequest (RFC 8446 4.4.1).</summary>
    MessageHash = 254,
}

/// <summary>Alert descriptions (RFC 5246 section 7.2).</summary>
public enum DtlsAlertDescription : byte
{
    CloseNotify = 0,
    UnexpectedMessage = 10,
    BadRecordMac = 20,
    RecordOverflow = 22,
    HandshakeFailure = 40,
    BadCertificate = 42,
    UnsupportedCertificate = 43,
    CertificateExpired = 45,
    CertificateUnknown = 46,
    IllegalParameter = 47,
    DecodeError = 50,
    DecryptError = 51,
    ProtocolVersion = 70,
    InsufficientSecurity = 71,
    InternalError = 80,
    UserCanceled = 90,
    NoRenegotiation = 100,
    MissingExtension = 109,
    UnsupportedExtension = 110,
}

/// <summary>The cipher suites this implementation negotiates (IANA TLS cipher suite registry).</summary>
public enum DtlsCipherSuite : ushort
{
    /// <summary>RFC 5289.</summary>
    EcdheEcdsaWithAes128GcmSha256 = 0xC02B,
    /// <summary>RFC 5289.</summary>
    EcdheEcdsaWithAes256GcmSha384 = 0xC02C,
    /// <summary>RFC 5289.</summary>
    EcdheRsaWithAes128GcmSha256 = 0xC02F,
    /// <summary>RFC 7905; offered only where <c>ChaCha20Poly1305.IsSupported</c>.</summary>
    EcdheEcdsaWithChaCha20Poly1305Sha256 = 0xCCA9,
    /// <summary>TLS_AES_128_GCM_SHA256 (RFC 8446 B.4), DTLS 1.3 only.</summary>
    TlsAes128GcmSha256 = 0x1301,
    /// <summary>TLS_AES_256_GCM_SHA384 (RFC 8446 B.4), DTLS 1.3 only.</summary>
    TlsAes256GcmSha384 = 0x1302,
}

/// <summary>Named groups for ECDHE (RFC 8422 section 5.1.1).</summary>
public enum DtlsNamedGroup : ushort
{
    Secp256r1 = 23,
    Secp384r1 = 24,
    X25519 = 29,
    /// <summary>X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem): ML-KEM-768 + X25519 hybrid, DTLS 1.3 only.</summary>
    X25519MLKEM768 = 0x11EC,
}

/// <summary>Protocol versions (on the wire DTLS 1.2 is 0xFEFD, DTLS 1.3 0xFEFC).</summary>
public enum DtlsVersion : ushort
{
    /// <summary>DTLS 1.2 (RFC 6347).</summary>
    Dtls12 = 0xFEFD,
    /// <summary>DTLS 1.3 (RFC 9147).</summary>
    Dtls13 = 0xFEFC,
}

/// <summary>Signature schemes (RFC 5246 SignatureAndHashAlgorithm, RFC 8446 code points).</summary>
public enum DtlsSignatureScheme : ushort
{
    RsaPkcs1Sha256 = 0x0401,
    RsaPkcs1Sha384 = 0x0501,
    EcdsaSecp256r1Sha256 = 0x0403,
    EcdsaSecp384r1Sha384 = 0x0503,
    RsaPssRsaeSha256 = 0x0804,
}

/// <summary>DTLS-SRTP protection profiles (RFC 5764 section 4.1.2, RFC 7714 section 14.2).</summary>
public enum SrtpProtectionProfile : ushort
{
    Aes128CmHmacSha1_80 = 0x0001,
    Aes128CmHmacSha1_32 = 0x0002,
    AeadAes128Gcm = 0x0007,
    AeadAes256Gcm = 0x0008,
}

/// <summary>Where a connection is in its life.</summary>
public enum DtlsState
{
    /// <summary>Created; the client has not been started, the server has seen no valid ClientHello.</summary>
    New,
    /// <summary>Flights are being exchanged.</summary>
    Handshaking,
    /// <summary>Both Finished messages verified; application data flows.</summary>
    Connected,
    /// <summary>Closed by close_notify (ours or the peer's).</summary>
    Closed,
    /// <summary>Handshake or connection failed; see <see cref="DtlsFailed"/>.</summary>
    Failed,
}

/// <summary>Why the state changed (<see cref="DtlsStateChanged.Reason"/>): to Handshaking, Connected, Closed, or Failed.</summary>
public enum DtlsStateReason
{
    /// <summary>Connected: both Finished messages verified.</summary>
    HandshakeComplete,
    /// <summary>Closed: the application called Close.</summary>
    LocalClose,
    /// <summary>Closed: the peer sent close_notify.</summary>
    PeerClosed,
    /// <summary>The total handshake timeout passed.</summary>
    HandshakeTimeout,
    /// <summary>The peer sent a fatal alert (see the alert code).</summary>
    PeerAlert,
    /// <summary>The peer certificate's fingerprint is not the expected one.</summary>
    FingerprintMismatch,
    /// <summary>The peer sent no certificate or an unusable one.</summary>
    BadCertificate,
    /// <summary>No common cipher suite, group, signature scheme or SRTP profile.</summary>
    NoCommonParameters,
    /// <summary>A signature or Finished message did not verify.</summary>
    VerificationFailed,
    /// <summary>The peer broke the protocol (unexpected or malformed handshake message).</summary>
    ProtocolViolation,
    /// <summary>Handshaking: the client sent its first flight (<see cref="DtlsConnection.Start"/>).</summary>
    HandshakeStarted,
    /// <summary>Handshaking: the server accepted a ClientHello (with a valid cookie when it asks for one).</summary>
    ClientHelloReceived,
}

/// <summary>Why an incoming record or datagram was dropped.</summary>
public enum DtlsDropReason
{
    /// <summary>Too short, bad length, unknown version or content type.</summary>
    Malformed,
    /// <summary>Already seen (anti-replay window, RFC 6347 section 4.1.2.6) or too old.</summary>
    Replayed,
    /// <summary>AEAD authentication failed.</summary>
    BadTag,
    /// <summary>An epoch we hold no keys for (yet).</summary>
    UnknownEpoch,
    /// <summary>Arrived in a state where it means nothing (e.g. application data before Finished).</summary>
    UnexpectedInState,
    /// <summary>A handshake message that did not parse or was out of place.</summary>
    BadHandshake,
}
