using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Transport.Ice.Stun;

/// <summary>
/// A read-only view of one STUN message (RFC 8489 section 5) over the bytes it arrived in. Nothing is copied
/// or allocated: <see cref="TryRead(ReadOnlySpan{byte}, out StunMessage, out StunParseError)"/> walks the
/// attributes once to check the framing and to note where MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and
/// FINGERPRINT are; the accessors then scan the (short) attribute list again.
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |0 0|     STUN Message Type     |         Message Length        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         Magic Cookie                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Transaction ID (96 bits)                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// </code>
/// Attributes after MESSAGE-INTEGRITY other than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT (and after
/// MESSAGE-INTEGRITY-SHA256 other than FINGERPRINT) are ignored, as RFC 8489 sections 14.5 and 14.6 require:
/// the accessors do not see them.
/// </summary>
public readonly ref partial struct StunMessage
{
    private readonly ReadOnlySpan<byte> _buffer;
    private readonly int _visibleEnd;
    private readonly int _integrityOffset;
    private readonly int _integritySha256Offset;
    private readonly int _fingerprintOffset;
    // Offsets of the attributes every ICE check reads, found in TryRead's single pass so the accessors need no
    // second walk over the attributes (-1: absent).
    private readonly IceOffsets _ice;

    private StunMessage(ReadOnlySpan<byte> buffer, int visibleEnd, int integrity, int integritySha256, int fingerprint, IceOffsets ice)
    {
        _buffer = buffer;
        _visibleEnd = visibleEnd;
        _integrityOffset = integrity;
        _integritySha256Offset = integritySha256;
        _fingerprintOffset = fingerprint;
        _ice = ice;
    }

    private struct IceOffsets
    {
        public int Username, Priority, UseCandidate, Controlling, Controlled;

        public static IceOffsets None => new() { Username = -1, Priority = -1, UseCandidate = -1, Controlling = -1, Controlled = -1 };

        public void Record(ushort type, int offset)
        {
            switch (type)
            {
                case StunAttributeType.Username: if (Username < 0) Username = offset; break;
                case StunAttributeType.Priority: if (Priority < 0) Priority = offset; break;
                case StunAttributeType.UseCandidate: if (UseCandidate < 0) UseCandidate = offset; break;
                case StunAttributeType.IceControlling: if (Controlling < 0) Controlling = offset; break;
                case StunAttributeType.IceControlled: if (Controlled < 0) Controlled = offset; break;
            }
        }

        /// <summary>The recorded offset of <paramref name="type"/>, -1 when absent, -2 when not a recorded type.</summary>
        public readonly int Find(ushort type) => type switch
        {
            StunAttributeType.Username => Username,
            StunAttributeType.Priority => Priority,
            StunAttributeType.UseCandidate => UseCandidate,
            StunAttributeType.IceControlling => Controlling,
            StunAttributeType.IceControlled => Controlled,
            _ => -2,
        };
    }

    /// <summary>The whole message (header and attributes).</summary>
    public ReadOnlySpan<byte> Buffer => _buffer;

    /// <summary>The raw message type.</summary>
    public ushort RawType => BinaryPrimitives.ReadUInt16BigEndian(_buffer);

    /// <summary>Method and class.</summary>
    public StunMessageType Type => StunMessageType.FromValue(RawType);

    /// <summary>The method (<see cref="StunMethod"/>).</summary>
    public ushort Method => Type.Method;

    /// <summary>The class.</summary>
    public StunClass Class => Type.Class;

    /// <summary>The length of the attributes, from the header.</summary>
    public int Length => BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(2));

    /// <summary>The 96-bit transaction ID.</summary>
    public ReadOnlySpan<byte> TransactionId => _buffer.Slice(8, StunHeader.TransactionIdSize);

    /// <summary>True when the message carries MESSAGE-INTEGRITY.</summary>
    public bool HasMessageIntegrity => _integrityOffset >= 0;

    /// <summary>True when the message carries MESSAGE-INTEGRITY-SHA256.</summary>
    public bool HasMessageIntegritySha256 => _integritySha256Offset >= 0;

    /// <summary>True when the message carries FINGERPRINT.</summary>
    public bool HasFingerprint => _fingerprintOffset >= 0;

    /// <summary>Parses <paramref name="datagram"/>, which must hold exactly one message.</summary>
    public static bool TryRead(ReadOnlySpan<byte> datagram, out StunMessage message) => TryRead(datagram, out message, out _);

    /// <summary>Parses <paramref name="datagram"/>, which must hold exactly one message; says why not.</summary>
    public static bool TryRead(ReadOnlySpan<byte> datagram, out StunMessage message, out StunParseError error)
    {
        message = default;
        if (datagram.Length < StunHeader.Size) { error = StunParseError.Truncated; return false; }
        if ((datagram[0] & 0xC0) != 0) { error = StunParseError.NotStun; return false; }
        if (BinaryPrimitives.ReadUInt32BigEndian(datagram.Slice(4)) != StunHeader.MagicCookie) { error = StunParseError.BadMagicCookie; return false; }
        int length = BinaryPrimitives.ReadUInt16BigEndian(datagram.Slice(2));
        if ((length & 3) != 0) { error = StunParseError.BadLength; return false; }
        var end = StunHeader.Size + length;
        if (datagram.Length < end) { error = StunParseError.Truncated; return false; }
        if (datagram.Length > end) { error = StunParseError.BadLength; return false; }

        int integrity = -1, integritySha256 = -1, fingerprint = -1, visibleEnd = -1;
        var ice = IceOffsets.None;
        ref var start = ref MemoryMarshal.GetReference(datagram);
        var offset = StunHeader.Size;
        while (offset < end)
        {
            if (end - offset < 4) { error = StunParseError.AttributeOverrun; return false; }
            // Bounds: offset + 4 <= end <= datagram.Length was checked just above.
            var type = ReadUInt16(ref start, offset);
            int valueLength = ReadUInt16(ref start, offset + 2);
            var next = offset + 4 + ((valueLength + 3) & ~3);
            if (next > end) { error = StunParseError.AttributeOverrun; return false; }
            if (fingerprint >= 0) { error = StunParseError.AttributeAfterFingerprint; return false; }

            if (type == StunAttributeType.Fingerprint)
            {
                if (valueLength != 4) { error = StunParseError.BadSecurityAttribute; return false; }
                fingerprint = offset;
            }
            else if (integritySha256 >= 0 || (integrity >= 0 && type != StunAttributeType.MessageIntegritySha256))
            {
                // RFC 8489 sections 14.5 and 14.6: ignored, and hidden from the accessors.
                if (visibleEnd < 0) visibleEnd = offset;
            }
            else if (type == StunAttributeType.MessageIntegrity)
            {
                if (valueLength != StunHeader.MessageIntegritySize) { error = StunParseError.BadSecurityAttribute; return false; }
                integrity = offset;
            }
            else if (type == StunAttributeType.MessageIntegritySha256)
            {
                // RFC 8489 section 14.6: 16 to 32 bytes, a multiple of four.
                if (valueLength < 16 || valueLength > 32 || (valueLength & 3) != 0) { error = StunParseError.BadSecurityAttribute; return false; }
                integritySha256 = offset;
            }
            else
            {
                ice.Record(type, offset);
            }
            offset = next;
        }
        if (visibleEnd < 0) visibleEnd = end;
        message = new StunMessage(datagram.Slice(0, end), visibleEnd, integrity, integritySha256, fingerprint, ice);
        error = StunParseError.None;
        return true;
    }

    /// <summary>The attributes in order (those ignored after integrity excluded).</summary>
    public AttributeEnumerator Attributes => new(_buffer.Slice(0, _visibleEnd));

    /// <summary>Finds the first attribute of <paramref name="type"/>.</summary>
    public bool TryGetAttribute(ushort type, out ReadOnlySpan<byte> value)
    {
        // TryRead validated the framing up to _visibleEnd, so the reads below stay inside the buffer.
        ref var start = ref MemoryMarshal.GetReference(_buffer);
        var known = _ice.Find(type);
        if (known != -2)
        {
            if (known < 0) { value = default; return false; }
            value = MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref start, known + 4), ReadUInt16(ref start, known + 2));
            return true;
        }
        var offset = StunHeader.Size;
        while (offset < _visibleEnd)
        {
            int len = ReadUInt16(ref start, offset + 2);
            if (ReadUInt16(ref start, offset) == type)
            {
                value = MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref start, offset + 4), len);
                return true;
            }
            offset += 4 + ((len + 3) & ~3);
        }
        value = default;
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ushort ReadUInt16(ref byte start, int offset) =>
        BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref start, offset)));

    /// <summary>True when an attribute of <paramref name="type"/> is present.</summary>
    public bool Contains(ushort type) => TryGetAttribute(type, out _);

    /// <summary>
    /// Writes the comprehension-required attribute types this library does not understand into
    /// <paramref name="unknown"/> (as many as fit) and returns how many there are. A server answers a request
    /// that has any with 420 and UNKNOWN-ATTRIBUTES; a client treats such a response as a failed transaction
    /// (RFC 8489 sections 6.3.1 and 6.3.3).
    /// </summary>
    public int GetUnknownComprehensionRequired(Span<ushort> unknown)
    {
        var count = 0;
        foreach (var attribute in Attributes)
        {
            if (!StunAttributeType.IsComprehensionRequired(attribute.Type) || StunAttributeType.IsKnownComprehensionRequired(attribute.Type)) continue;
            if (count < unknown.Length) unknown[count] = attribute.Type;
            count++;
        }
        return count;
    }

    /// <summary>
    /// Checks FINGERPRINT (RFC 8489 section 14.7): the CRC-32 of the message up to the attribute, XOR 0x5354554E.
    /// False when absent.
    /// </summary>
    public bool CheckFingerprint()
    {
        if (_fingerprintOffset < 0) return false;
        var expected = StunCrc32.Compute(_buffer.Slice(0, _fingerprintOffset)) ^ StunHeader.FingerprintXor;
        return BinaryPrimitives.ReadUInt32BigEndian(_buffer.Slice(_fingerprintOffset + 4)) == expected;
    }

    /// <summary>
    /// Checks MESSAGE-INTEGRITY (RFC 8489 section 14.5): HMAC-SHA1 with <paramref name="key"/> over the message
    /// up to the attribute, with the header length counting the attribute as the last one. Compared in
    /// constant time. False when absent.
    /// </summary>
    public bool CheckMessageIntegrity(StunKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (_integrityOffset < 0) return false;
        Span<byte> header = stackalloc byte[StunHeader.Size];
        AdjustedHeader(header, _integrityOffset + 4 + StunHeader.MessageIntegritySize);
        Span<byte> mac = stackalloc byte[20];
        key.ComputeHmacSha1(header, _buffer.Slice(StunHeader.Size, _integrityOffset - StunHeader.Size), mac);
        return CryptographicOperations.FixedTimeEquals(mac, _buffer.Slice(_integrityOffset + 4, StunHeader.MessageIntegritySize));
    }

    /// <summary>
    /// Checks MESSAGE-INTEGRITY-SHA256 (RFC 8489 section 14.6), also when truncated to 16..28 bytes.
    /// Compared in constant time. False when absent.
    /// </summary>
    public bool CheckMessageIntegritySha256(StunKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (_integritySha256Offset < 0) return false;
        int length = BinaryPrimitives.ReadUInt16BigEndian(_buffer.Slice(_integritySha256Offset + 2));
        Span<byte> header = stackalloc byte[StunHeader.Size];
        AdjustedHeader(header, _integritySha256Offset + 4 + length);
        Span<byte> mac = stackalloc byte[32];
        key.ComputeHmacSha256(header, _buffer.Slice(StunHeader.Size, _integritySha256Offset - StunHeader.Size), mac);
        return CryptographicOperations.FixedTimeEquals(mac.Slice(0, length), _buffer.Slice(_integritySha256Offset + 4, length));
    }

    /// <summary>
    /// Checks whichever integrity the message carries, the stronger first: MESSAGE-INTEGRITY-SHA256 when present
    /// (RFC 8489 section 9.1.4 lets a receiver prefer it), else MESSAGE-INTEGRITY. False when neither is present.
    /// </summary>
    public bool CheckIntegrity(StunKey key) =>
        _integritySha256Offset >= 0 ? CheckMessageIntegritySha256(key) : CheckMessageIntegrity(key);

    private void AdjustedHeader(Span<byte> header, int messageEnd)
    {
        _buffer.Slice(0, StunHeader.Size).CopyTo(header);
        BinaryPrimitives.WriteUInt16BigEndian(header.Slice(2), (ushort)(messageEnd - StunHeader.Size));
    }

    /// <summary>True when <paramref name="transactionId"/> equals this message's transaction ID.</summary>
    public bool HasTransactionId(ReadOnlySpan<byte> transactionId) => TransactionId.SequenceEqual(transactionId);

    /// <summary>One attribute: type and value (without padding).</summary>
    public readonly ref struct StunAttribute
    {
        internal StunAttribute(ushort type, ReadOnlySpan<byte> value) { Type = type; Value = value; }

        /// <summary>The attribute type.</summary>
        public ushort Type { get; }

        /// <summary>The value, without padding.</summary>
        public ReadOnlySpan<byte> Value { get; }
    }

    /// <summary>Walks the attributes of a message that <see cref="TryRead(ReadOnlySpan{byte}, out StunMessage)"/> accepted.</summary>
    public ref struct AttributeEnumerator
    {
        private readonly ReadOnlySpan<byte> _message;
        private int _next;
        private StunAttribute _current;

        internal AttributeEnumerator(ReadOnlySpan<byte> message)
        {
            _message = message;
            _next = StunHeader.Size;
            _current = default;
        }

        /// <summary>The current attribute.</summary>
        public readonly StunAttribute Current => _current;

        /// <summary>For foreach.</summary>
        public readonly AttributeEnumerator GetEnumerator() => this;

        /// <summary>Moves to the next attribute.</summary>
        public bool MoveNext()
        {
            if (_next + 4 > _message.Length) return false;
            var type = BinaryPrimitives.ReadUInt16BigEndian(_message.Slice(_next));
            int len = BinaryPrimitives.ReadUInt16BigEndian(_message.Slice(_next + 2));
            _current = new StunAttribute(type, _message.Slice(_next + 4, len));
            _next += 4 + ((len + 3) & ~3);
            return true;
        }
    }
}
