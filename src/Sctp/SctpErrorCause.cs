namespace Transport.Sctp;

/// <summary>Error cause codes, RFC 9260 section 3.3.10, as carried by ABORT and ERROR.</summary>
public enum SctpErrorCause : ushort
{
    /// <summary>No cause was given.</summary>
    None = 0,
    InvalidStreamIdentifier = 1,
    MissingMandatoryParameter = 2,
    StaleCookie = 3,
    OutOfResource = 4,
    UnresolvableAddress = 5,
    UnrecognizedChunkType = 6,
    InvalidMandatoryParameter = 7,
    UnrecognizedParameters = 8,
    NoUserData = 9,
    CookieReceivedWhileShuttingDown = 10,
    RestartWithNewAddresses = 11,
    UserInitiatedAbort = 12,
    ProtocolViolation = 13,
}
