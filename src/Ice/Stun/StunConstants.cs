namespace Transport.Ice.Stun;

/// <summary>The class of a STUN message (RFC 8489 section 5: the C0 and C1 bits of the message type).</summary>
public enum StunClass : byte
{
    /// <summary>A request (expects a response).</summary>
    Request = 0,
    /// <summary>An indication (no response).</summary>
    Indication = 1,
    /// <summary>A success response.</summary>
    SuccessResponse = 2,
    /// <summary>An error response (carries ERROR-CODE).</summary>
    ErrorResponse = 3,
}

/// <summary>STUN and TURN method numbers (RFC 8489 section 18.2, RFC 8656 section 17).</summary>
public static class StunMethod
{
    /// <summary>Binding (RFC 8489).</summary>
    public const ushort Binding = 0x001;
    /// <summary>Allocate (RFC 8656).</summary>
    public const ushort Allocate = 0x003;
    /// <summary>Refresh (RFC 8656).</summary>
    public const ushort Refresh = 0x004;
    /// <summary>Send indication (RFC 8656).</summary>
    public const ushort Send = 0x006;
    /// <summary>Data indication (RFC 8656).</summary>
    public const ushort Data = 0x007;
    /// <summary>CreatePermission (RFC 8656).</summary>
    public const ushort CreatePermission = 0x008;
    /// <summary>ChannelBind (RFC 8656).</summary>
    public const ushort ChannelBind = 0x009;
}

/// <summary>
/// The 16-bit message type: a 12-bit method interleaved with the 2-bit class (RFC 8489 section 5):
/// <code>
///   0                 1
///   2  3  4 5 6 7 8 9 0 1 2 3 4 5
///  +--+--+-+-+-+-+-+-+-+-+-+-+-+-+
///  |M |M |M|M|M|C|M|M|M|C|M|M|M|M|
///  |11|10|9|8|7|1|6|5|4|0|3|2|1|0|
///  +--+--+-+-+-+-+-+-+-+-+-+-+-+-+
/// </code>
/// </summary>
public readonly record struct StunMessageType(ushort Method, StunClass Class)
{
    /// <summary>The Binding request type (0x0001).</summary>
    public static StunMessageType BindingRequest => new(StunMethod.Binding, StunClass.Request);
    /// <summary>The Binding success response type (0x0101).</summary>
    public static StunMessageType BindingSuccess => new(StunMethod.Binding, StunClass.SuccessResponse);
    /// <summary>The Binding error response type (0x0111).</summary>
    public static StunMessageType BindingError => new(StunMethod.Binding, StunClass.ErrorResponse);
    /// <summary>The Binding indication type (0x0011).</summary>
    public static StunMessageType BindingIndication => new(StunMethod.Binding, StunClass.Indication);

    /// <summary>The type as it appears on the wire (the two top bits are zero).</summary>
    public ushort Value =>
        (ushort)((Method & 0x000F) | ((Method & 0x0070) << 1) | ((Method & 0x0F80) << 2)
                 | (((int)Class & 1) << 4) | (((int)Class & 2) << 7));

    /// <summary>Splits a wire type into method and class.</summary>
    public static StunMessageType FromValue(ushort value) =>
        new((ushort)((value & 0x000F) | ((value >> 1) & 0x0070) | ((value >> 2) & 0x0F80)),
            (StunClass)(((value >> 4) & 1) | ((value >> 7) & 2)));
}

/// <summary>Attribute type numbers (RFC 8489 section 18.3, RFC 8445 section 16.1, RFC 8656 section 18).</summary>
public static class StunAttributeType
{
    // Comprehension-required range 0x0000-0x7FFF.
    /// <summary>MAPPED-ADDRESS.</summary>
    public const ushort MappedAddress = 0x0001;
    /// <summary>USERNAME.</summary>
    public const ushort Username = 0x0006;
    /// <summary>MESSAGE-INTEGRITY (HMAC-SHA1, 20 bytes).</summary>
    public const ushort MessageIntegrity = 0x0008;
    /// <summary>ERROR-CODE.</summary>
    public const ushort ErrorCode = 0x0009;
    /// <summary>UNKNOWN-ATTRIBUTES.</summary>
    public const ushort UnknownAttributes = 0x000A;
    /// <summary>CHANNEL-NUMBER (TURN).</summary>
    public const ushort ChannelNumber = 0x000C;
    /// <summary>LIFETIME (TURN).</summary>
    public const ushort Lifetime = 0x000D;
    /// <summary>XOR-PEER-ADDRESS (TURN).</summary>
    public const ushort XorPeerAddress = 0x0012;
    /// <summary>DATA (TURN).</summary>
    public const ushort Data = 0x0013;
    /// <summary>REALM.</summary>
    public const ushort Realm = 0x0014;
    /// <summary>NONCE.</summary>
    public const ushort Nonce = 0x0015;
    /// <summary>XOR-RELAYED-ADDRESS (TURN).</summary>
    public const ushort XorRelayedAddress = 0x0016;
    /// <summary>REQUESTED-ADDRESS-FAMILY (TURN).</summary>
    public const ushort RequestedAddressFamily = 0x0017;
    /// <summary>EVEN-PORT (TURN).</summary>
    public const ushort EvenPort = 0x0018;
    /// <summary>REQUESTED-TRANSPORT (TURN).</summary>
    public const ushort RequestedTransport = 0x0019;
    /// <summary>DONT-FRAGMENT (TURN).</summary>
    public const ushort DontFragment = 0x001A;
    /// <summary>MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256, 16 to 32 bytes).</summary>
    public const ushort MessageIntegritySha256 = 0x001C;
    /// <summary>PASSWORD-ALGORITHM.</summary>
    public const ushort PasswordAlgorithm = 0x001D;
    /// <summary>USERHASH.</summary>
    public const ushort UserHash = 0x001E;
    /// <summary>XOR-MAPPED-ADDRESS.</summary>
    public const ushort XorMappedAddress = 0x0020;
    /// <summary>RESERVATION-TOKEN (TURN).</summary>
    public const ushort ReservationToken = 0x0022;
    /// <summary>PRIORITY (ICE).</summary>
    public const ushort Priority = 0x0024;
    /// <summary>USE-CANDIDATE (ICE).</summary>
    public const ushort UseCandidate = 0x0025;

    // Comprehension-optional range 0x8000-0xFFFF.
    /// <summary>PASSWORD-ALGORITHMS.</summary>
    public const ushort PasswordAlgorithms = 0x8002;
    /// <summary>ALTERNATE-DOMAIN.</summary>
    public const ushort AlternateDomain = 0x8003;
    /// <summary>SOFTWARE.</summary>
    public const ushort Software = 0x8022;
    /// <summary>ALTERNATE-SERVER.</summary>
    public const ushort AlternateServer = 0x8023;
    /// <summary>FINGERPRINT.</summary>
    public const ushort Fingerprint = 0x8028;
    /// <summary>ICE-CONTROLLED (ICE).</summary>
    public const ushort IceControlled = 0x8029;
    /// <summary>ICE-CONTROLLING (ICE).</summary>
    public const ushort IceControlling = 0x802A;
    /// <summary>ADDITIONAL-ADDRESS-FAMILY (TURN).</summary>
    public const ushort AdditionalAddressFamily = 0x8000;
    /// <summary>ADDRESS-ERROR-CODE (TURN).</summary>
    public const ushort AddressErrorCode = 0x8001;
    /// <summary>ICMP (TURN).</summary>
    public const ushort Icmp = 0x8004;

    /// <summary>True for types in 0x0000-0x7FFF, which an agent must understand (RFC 8489 section 14).</summary>
    public static bool IsComprehensionRequired(ushort type) => type < 0x8000;

    /// <summary>True for the comprehension-required types this library understands.</summary>
    public static bool IsKnownComprehensionRequired(ushort type) => type switch
    {
        MappedAddress or Username or MessageIntegrity or ErrorCode or UnknownAttributes or ChannelNumber
            or Lifetime or XorPeerAddress or Data or Realm or Nonce or XorRelayedAddress or RequestedAddressFamily
            or EvenPort or RequestedTransport or DontFragment or MessageIntegritySha256 or PasswordAlgorithm
            or UserHash or XorMappedAddress or ReservationToken or Priority or UseCandidate => true,
        _ => false,
    };
}

/// <summary>Fixed numbers of the STUN header (RFC 8489 section 5).</summary>
public static class StunHeader
{
    /// <summary>The magic cookie 0x2112A442.</summary>
    public const uint MagicCookie = 0x2112A442;
    /// <summary>Header size in bytes.</summary>
    public const int Size = 20;
    /// <summary>Transaction ID size in bytes.</summary>
    public const int TransactionIdSize = 12;
    /// <summary>XOR constant of FINGERPRINT (RFC 8489 section 14.7): "STUN" in ASCII.</summary>
    public const uint FingerprintXor = 0x5354554E;
    /// <summary>Size of a MESSAGE-INTEGRITY value.</summary>
    public const int MessageIntegritySize = 20;
    /// <summary>Size of a full MESSAGE-INTEGRITY-SHA256 value.</summary>
    public const int MessageIntegritySha256Size = 32;

    /// <summary>
    /// True when <paramref name="datagram"/> looks like STUN: first two bits zero and the magic cookie in place
    /// (RFC 7983 demultiplexing plus RFC 8489 section 5). Cheap pre-check for drivers.
    /// </summary>
    public static bool IsStun(ReadOnlySpan<byte> datagram) =>
        datagram.Length >= Size && (datagram[0] & 0xC0) == 0
        && System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(datagram.Slice(4)) == MagicCookie;
}

/// <summary>Password algorithms of PASSWORD-ALGORITHM(S) (RFC 8489 section 18.5).</summary>
public enum StunPasswordAlgorithm : ushort
{
    /// <summary>MD5 of user:realm:password (RFC 8489 section 9.2.2, the classic long-term key).</summary>
    Md5 = 0x0001,
    /// <summary>SHA-256 of user:realm:password.</summary>
    Sha256 = 0x0002,
}

/// <summary>Why <see cref="StunMessage.TryRead(ReadOnlySpan{byte}, out StunMessage, out StunParseError)"/> refused a datagram.</summary>
public enum StunParseError
{
    /// <summary>Parsed.</summary>
    None,
    /// <summary>Shorter than the 20-byte header, or shorter than the header's length field says.</summary>
    Truncated,
    /// <summary>The first two bits are not zero.</summary>
    NotStun,
    /// <summary>The magic cookie is not 0x2112A442.</summary>
    BadMagicCookie,
    /// <summary>The message length is not a multiple of four (attributes are padded to four bytes), or the datagram is longer than the message.</summary>
    BadLength,
    /// <summary>An attribute (with its padding) runs past the end of the message.</summary>
    AttributeOverrun,
    /// <summary>An attribute follows FINGERPRINT, which must be the last attribute (RFC 8489 section 14.7).</summary>
    AttributeAfterFingerprint,
    /// <summary>MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 or FINGERPRINT has a wrong size.</summary>
    BadSecurityAttribute,
}
