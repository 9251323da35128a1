using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Transport.Ice.Stun;

/// <summary>
/// Writes one STUN message (RFC 8489 section 5) into a caller's span, attribute by attribute, keeping the header
/// length current. MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are computed over what was
/// written before them, so add them last, in that order. Nothing is allocated. A destination that is too
/// small is a caller error (<see cref="ArgumentException"/>).
/// </summary>
public ref struct StunMessageWriter
{
    private readonly Span<byte> _buffer;
    private int _length;

    /// <summary>Starts a message of <paramref name="type"/> with a 12-byte <paramref name="transactionId"/>.</summary>
    public StunMessageWriter(Span<byte> destination, StunMessageType type, ReadOnlySpan<byte> transactionId)
    {
        if (transactionId.Length != StunHeader.TransactionIdSize) throw new ArgumentException("A transaction ID has 12 bytes.", nameof(transactionId));
        if (destination.Length < StunHeader.Size) throw new ArgumentException("The destination cannot hold a STUN header.", nameof(destination));
        _buffer = destination;
        BinaryPrimitives.WriteUInt16BigEndian(destination, type.Value);
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), 0);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), StunHeader.MagicCookie);
        transactionId.CopyTo(destination.Slice(8));
        _length = StunHeader.Size;
        PaddingByte = 0;
    }

    /// <summary>The byte that pads values to four bytes (RFC 8489 allows any; RFC 5769 uses 0x20 in places). Default 0.</summary>
    public byte PaddingByte { get; set; }

    /// <summary>Bytes written so far: the message length to send.</summary>
    public readonly int Length => _length;

    /// <summary>The message written so far.</summary>
    public readonly ReadOnlySpan<byte> Written => _buffer.Slice(0, _length);

    /// <summary>The transaction ID in the header.</summary>
    public readonly ReadOnlySpan<byte> TransactionId => _buffer.Slice(8, StunHeader.TransactionIdSize);

    /// <summary>Reserves an attribute of <paramref name="valueLength"/> bytes and returns its value span (padding already written).</summary>
    public Span<byte> AddEmpty(ushort type, int valueLength)
    {
        if ((uint)valueLength > ushort.MaxValue) throw new ArgumentOutOfRangeException(nameof(valueLength));
        var padded = (valueLength + 3) & ~3;
        if (_length + 4 + padded > _buffer.Length) throw new ArgumentException("The destination is too small for this STUN message.");
        var at = _length;
        BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(at), type);
        BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(at + 2), (ushort)valueLength);
        _buffer.Slice(at + 4 + valueLength, padded - valueLength).Fill(PaddingByte);
        _length = at + 4 + padded;
        BinaryPrimitives.WriteUInt16BigEndian(_buffer.Slice(2), (ushort)(_length - StunHeader.Size));
        return _buffer.Slice(at + 4, valueLength);
    }

    /// <summary>Adds an attribute with a raw value.</summary>
    public void Add(ushort type, scoped ReadOnlySpan<byte> value) => value.CopyTo(AddEmpty(type, value.Length));

    /// <summary>Adds an attribute whose value is a UTF-8 string (USERNAME, REALM, NONCE, SOFTWARE).</summary>
    public void AddString(ushort type, scoped ReadOnlySpan<char> value)
    {
        var length = Encoding.UTF8.GetByteCount(value);
        Encoding.UTF8.GetBytes(value, AddEmpty(type, length));
    }

    /// <summary>Adds a 32-bit attribute (PRIORITY, LIFETIME).</summary>
    public void AddUInt32(ushort type, uint value) => BinaryPrimitives.WriteUInt32BigEndian(AddEmpty(type, 4), value);

    /// <summary>Adds a 64-bit attribute (ICE-CONTROLLING, ICE-CONTROLLED, RESERVATION-TOKEN).</summary>
    public void AddUInt64(ushort type, ulong value) => BinaryPrimitives.WriteUInt64BigEndian(AddEmpty(type, 8), value);

    /// <summary>Adds an attribute without value (USE-CANDIDATE, DONT-FRAGMENT).</summary>
    public void AddFlag(ushort type) => AddEmpty(type, 0);

    /// <summary>Adds an address in the MAPPED-ADDRESS layout (MAPPED-ADDRESS, ALTERNATE-SERVER).</summary>
    public void AddAddress(ushort type, StunAddress address) => WriteAddress(type, address, xor: false);

    /// <summary>Adds an address in the XOR-MAPPED-ADDRESS layout (XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS).</summary>
    public void AddXorAddress(ushort type, StunAddress address) => WriteAddress(type, address, xor: true);

    /// <summary>Adds an XOR'ed address from an <see cref="IPEndPoint"/> without allocating.</summary>
    public void AddXorAddress(ushort type, IPEndPoint endPoint) => WriteAddress(type, StunAddress.FromEndPoint(endPoint), xor: true);

    private void WriteAddress(ushort type, StunAddress address, bool xor)
    {
        var v = AddEmpty(type, 4 + address.AddressLength);
        v[0] = 0;
        v[1] = address.Family;
        var port = address.Port;
        address.WriteAddress(v.Slice(4));
        if (xor)
        {
            port ^= (ushort)(StunHeader.MagicCookie >> 16);
            // Cookie then transaction ID: header bytes 4..19 (RFC 8489 section 14.2).
            var key = _buffer.Slice(4, 16);
            for (var i = 0; i < address.AddressLength; i++) v[4 + i] ^= key[i];
        }
        BinaryPrimitives.WriteUInt16BigEndian(v.Slice(2), port);
    }

    /// <summary>Adds ERROR-CODE (RFC 8489 section 14.8) with a code in 300..699 and a reason phrase.</summary>
    public void AddErrorCode(int code, scoped ReadOnlySpan<char> reason)
    {
        if (code < 300 || code > 699) throw new ArgumentOutOfRangeException(nameof(code), "STUN error codes are 300..699.");
        var reasonLength = Encoding.UTF8.GetByteCount(reason);
        var v = AddEmpty(StunAttributeType.ErrorCode, 4 + reasonLength);
        v[0] = 0;
        v[1] = 0;
        v[2] = (byte)(code / 100);
        v[3] = (byte)(code % 100);
        Encoding.UTF8.GetBytes(reason, v.Slice(4));
    }

    /// <summary>Adds UNKNOWN-ATTRIBUTES (RFC 8489 section 14.13).</summary>
    public void AddUnknownAttributes(scoped ReadOnlySpan<ushort> types)
    {
        var v = AddEmpty(StunAttributeType.UnknownAttributes, 2 * types.Length);
        for (var i = 0; i < types.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(v.Slice(2 * i), types[i]);
    }

    /// <summary>Adds PASSWORD-ALGORITHM (RFC 8489 section 14.12) without parameters.</summary>
    public void AddPasswordAlgorithm(StunPasswordAlgorithm algorithm)
    {
        var v = AddEmpty(StunAttributeType.PasswordAlgorithm, 4);
        BinaryPrimitives.WriteUInt16BigEndian(v, (ushort)algorithm);
        BinaryPrimitives.WriteUInt16BigEndian(v.Slice(2), 0);
    }

    /// <summary>Adds PASSWORD-ALGORITHMS (RFC 8489 section 14.11), each without parameters.</summary>
    public void AddPasswordAlgorithms(scoped ReadOnlySpan<StunPasswordAlgorithm> algorithms)
    {
        var v = AddEmpty(StunAttributeType.PasswordAlgorithms, 4 * algorithms.Length);
        for (var i = 0; i < algorithms.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(v.Slice(4 * i), (ushort)algorithms[i]);
            BinaryPrimitives.WriteUInt16BigEndian(v.Slice(4 * i + 2), 0);
        }
    }

    // ---- TURN (RFC 8656 section 18) ----

    /// <summary>CHANNEL-NUMBER: the number then two reserved bytes.</summary>
    public void AddChannelNumber(ushort channel)
    {
        var v = AddEmpty(StunAttributeType.ChannelNumber, 4);
        BinaryPrimitives.WriteUInt16BigEndian(v, channel);
        BinaryPrimitives.WriteUInt16BigEndian(v.Slice(2), 0);
    }

    /// <summary>LIFETIME in seconds (0 deletes an allocation).</summary>
    public void AddLifetime(uint seconds) => AddUInt32(StunAttributeType.Lifetime, seconds);

    /// <summary>REQUESTED-TRANSPORT: protocol then three reserved bytes (17 for UDP).</summary>
    public void AddRequestedTransport(byte protocol) => AddFirstByte(StunAttributeType.RequestedTransport, protocol);

    /// <summary>REQUESTED-ADDRESS-FAMILY: 1 IPv4, 2 IPv6.</summary>
    public void AddRequestedAddressFamily(byte family) => AddFirstByte(StunAttributeType.RequestedAddressFamily, family);

    /// <summary>ADDITIONAL-ADDRESS-FAMILY: 2 (IPv6).</summary>
    public void AddAdditionalAddressFamily(byte family) => AddFirstByte(StunAttributeType.AdditionalAddressFamily, family);

    /// <summary>EVEN-PORT with the R bit.</summary>
    public void AddEvenPort(bool reserveNext)
    {
        var v = AddEmpty(StunAttributeType.EvenPort, 1);
        v[0] = reserveNext ? (byte)0x80 : (byte)0;
    }

    /// <summary>ADDRESS-ERROR-CODE: family, code, reason.</summary>
    public void AddAddressErrorCode(byte family, int code, scoped ReadOnlySpan<char> reason)
    {
        if (code < 300 || code > 699) throw new ArgumentOutOfRangeException(nameof(code), "STUN error codes are 300..699.");
        var reasonLength = Encoding.UTF8.GetByteCount(reason);
        var v = AddEmpty(StunAttributeType.AddressErrorCode, 4 + reasonLength);
        v[0] = family;
        v[1] = 0;
        v[2] = (byte)(code / 100);
        v[3] = (byte)(code % 100);
        Encoding.UTF8.GetBytes(reason, v.Slice(4));
    }

    /// <summary>ICMP: type, code and error data.</summary>
    public void AddIcmp(byte icmpType, byte icmpCode, uint errorData)
    {
        var v = AddEmpty(StunAttributeType.Icmp, 8);
        v[0] = 0;
        v[1] = 0;
        v[2] = (byte)(icmpType & 0x7F);
        v[3] = icmpCode;
        BinaryPrimitives.WriteUInt32BigEndian(v.Slice(4), errorData);
    }

    private void AddFirstByte(ushort type, byte value)
    {
        var v = AddEmpty(type, 4);
        v[0] = value;
        v[1] = v[2] = v[3] = 0;
    }

    // ---- security attributes (RFC 8489 sections 14.5 to 14.7) ----

    /// <summary>Adds MESSAGE-INTEGRITY: HMAC-SHA1 over everything written so far, with the length counting this attribute.</summary>
    public void AddMessageIntegrity(StunKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var start = _length;
        var v = AddEmpty(StunAttributeType.MessageIntegrity, StunHeader.MessageIntegritySize);
        key.ComputeHmacSha1(_buffer.Slice(0, start), default, v);
    }

    /// <summary>Adds MESSAGE-INTEGRITY-SHA256, optionally truncated to 16..32 bytes (a multiple of four).</summary>
    public void AddMessageIntegritySha256(StunKey key, int length = StunHeader.MessageIntegritySha256Size)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (length < 16 || length > 32 || (length & 3) != 0) throw new ArgumentOutOfRangeException(nameof(length), "16 to 32 bytes, a multiple of four.");
        var start = _length;
        var v = AddEmpty(StunAttributeType.MessageIntegritySha256, length);
        Span<byte> mac = stackalloc byte[32];
        key.ComputeHmacSha256(_buffer.Slice(0, start), default, mac);
        mac.Slice(0, length).CopyTo(v);
    }

    /// <summary>Adds FINGERPRINT: CRC-32 of everything written so far (length counting it) XOR 0x5354554E.</summary>
    public void AddFingerprint()
    {
        var start = _length;
        var v = AddEmpty(StunAttributeType.Fingerprint, 4);
        BinaryPrimitives.WriteUInt32BigEndian(v, StunCrc32.Compute(_buffer.Slice(0, start)) ^ StunHeader.FingerprintXor);
    }
}
