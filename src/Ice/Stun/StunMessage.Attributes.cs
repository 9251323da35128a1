using System.Buffers.Binary;

namespace Transport.Ice.Stun;

/// <summary>Typed accessors of the attributes of RFC 8489, RFC 8445 (ICE) and RFC 8656 (TURN).</summary>
public readonly ref partial struct StunMessage
{
    // ---- RFC 8489 section 14 ----

    /// <summary>USERNAME (RFC 8489 section 14.3), UTF-8 bytes.</summary>
    public bool TryGetUsername(out ReadOnlySpan<byte> username) => TryGetAttribute(StunAttributeType.Username, out username);

    /// <summary>USERHASH (RFC 8489 section 14.4): 32 bytes.</summary>
    public bool TryGetUserHash(out ReadOnlySpan<byte> userHash) =>
        TryGetAttribute(StunAttributeType.UserHash, out userHash) && userHash.Length == 32 || Fail(out userHash);

    /// <summary>REALM (RFC 8489 section 14.9), UTF-8 bytes.</summary>
    public bool TryGetRealm(out ReadOnlySpan<byte> realm) => TryGetAttribute(StunAttributeType.Realm, out realm);

    /// <summary>NONCE (RFC 8489 section 14.10), bytes.</summary>
    public bool TryGetNonce(out ReadOnlySpan<byte> nonce) => TryGetAttribute(StunAttributeType.Nonce, out nonce);

    /// <summary>SOFTWARE (RFC 8489 section 14.14), UTF-8 bytes.</summary>
    public bool TryGetSoftware(out ReadOnlySpan<byte> software) => TryGetAttribute(StunAttributeType.Software, out software);

    /// <summary>MAPPED-ADDRESS (RFC 8489 section 14.1).</summary>
    public bool TryGetMappedAddress(out StunAddress address) => TryGetAddress(StunAttributeType.MappedAddress, out address);

    /// <summary>XOR-MAPPED-ADDRESS (RFC 8489 section 14.2).</summary>
    public bool TryGetXorMappedAddress(out StunAddress address) => TryGetXorAddress(StunAttributeType.XorMappedAddress, out address);

    /// <summary>ALTERNATE-SERVER (RFC 8489 section 14.15).</summary>
    public bool TryGetAlternateServer(out StunAddress address) => TryGetAddress(StunAttributeType.AlternateServer, out address);

    /// <summary>ALTERNATE-DOMAIN (RFC 8489 section 14.16), bytes.</summary>
    public bool TryGetAlternateDomain(out ReadOnlySpan<byte> domain) => TryGetAttribute(StunAttributeType.AlternateDomain, out domain);

    /// <summary>ERROR-CODE (RFC 8489 section 14.8): code 300..699 and the UTF-8 reason phrase.</summary>
    public bool TryGetErrorCode(out int code, out ReadOnlySpan<byte> reason)
    {
        code = 0;
        reason = default;
        if (!TryGetAttribute(StunAttributeType.ErrorCode, out var v) || v.Length < 4) return false;
        int @class = v[2] & 0x07, number = v[3];
        if (@class < 3 || @class > 6 || number > 99) return false;
        code = @class * 100 + number;
        reason = v.Slice(4);
        return true;
    }

    /// <summary>UNKNOWN-ATTRIBUTES (RFC 8489 section 14.13): writes the listed types; returns how many there are.</summary>
    public int GetUnknownAttributes(Span<ushort> types)
    {
        if (!TryGetAttribute(StunAttributeType.UnknownAttributes, out var v)) return 0;
        var count = v.Length / 2;
        for (var i = 0; i < count && i < types.Length; i++) types[i] = BinaryPrimitives.ReadUInt16BigEndian(v.Slice(2 * i));
        return count;
    }

    /// <summary>PASSWORD-ALGORITHM (RFC 8489 section 14.12): the algorithm and its parameters.</summary>
    public bool TryGetPasswordAlgorithm(out StunPasswordAlgorithm algorithm, out ReadOnlySpan<byte> parameters)
    {
        algorithm = default;
        parameters = default;
        if (!TryGetAttribute(StunAttributeType.PasswordAlgorithm, out var v) || v.Length < 4) return false;
        int paramLength = BinaryPrimitives.ReadUInt16BigEndian(v.Slice(2));
        if (4 + paramLength > v.Length) return false;
        algorithm = (StunPasswordAlgorithm)BinaryPrimitives.ReadUInt16BigEndian(v);
        parameters = v.Slice(4, paramLength);
        return true;
    }

    /// <summary>
    /// PASSWORD-ALGORITHMS (RFC 8489 section 14.11): writes the algorithms in order (as many as fit) and returns
    /// how many there are, or -1 when the attribute is malformed. 0 when absent.
    /// </summary>
    public int GetPasswordAlgorithms(Span<StunPasswordAlgorithm> algorithms)
    {
        if (!TryGetAttribute(StunAttributeType.PasswordAlgorithms, out var v)) return 0;
        var count = 0;
        while (!v.IsEmpty)
        {
            if (v.Length < 4) return -1;
            int paramLength = BinaryPrimitives.ReadUInt16BigEndian(v.Slice(2));
            var size = 4 + ((paramLength + 3) & ~3);
            if (size > v.Length) return -1;
            if (count < algorithms.Length) algorithms[count] = (StunPasswordAlgorithm)BinaryPrimitives.ReadUInt16BigEndian(v);
            count++;
            v = v.Slice(size);
        }
        return count;
    }

    // ---- ICE, RFC 8445 section 7.1.1 and 16.1 ----

    /// <summary>PRIORITY.</summary>
    public bool TryGetPriority(out uint priority) => TryGetUInt32(StunAttributeType.Priority, out priority);

    /// <summary>True when USE-CANDIDATE is present.</summary>
    public bool HasUseCandidate => Contains(StunAttributeType.UseCandidate);

    /// <summary>ICE-CONTROLLING: the tie-breaker.</summary>
    public bool TryGetIceControlling(out ulong tieBreaker) => TryGetUInt64(StunAttributeType.IceControlling, out tieBreaker);

    /// <summary>ICE-CONTROLLED: the tie-breaker.</summary>
    public bool TryGetIceControlled(out ulong tieBreaker) => TryGetUInt64(StunAttributeType.IceControlled, out tieBreaker);

    // ---- TURN, RFC 8656 section 18 ----

    /// <summary>CHANNEL-NUMBER (RFC 8656 section 18.1).</summary>
    public bool TryGetChannelNumber(out ushort channel)
    {
        channel = 0;
        if (!TryGetAttribute(StunAttributeType.ChannelNumber, out var v) || v.Length != 4) return false;
        channel = BinaryPrimitives.ReadUInt16BigEndian(v);
        return true;
    }

    /// <summary>LIFETIME in seconds (RFC 8656 section 18.2).</summary>
    public bool TryGetLifetime(out uint seconds) => TryGetUInt32(StunAttributeType.Lifetime, out seconds);

    /// <summary>The first XOR-PEER-ADDRESS (RFC 8656 section 18.3).</summary>
    public bool TryGetXorPeerAddress(out StunAddress address) => TryGetXorAddress(StunAttributeType.XorPeerAddress, out address);

    /// <summary>Every XOR-PEER-ADDRESS (CreatePermission may carry several); returns how many there are.</summary>
    public int GetXorPeerAddresses(Span<StunAddress> addresses) => GetXorAddresses(StunAttributeType.XorPeerAddress, addresses);

    /// <summary>DATA (RFC 8656 section 18.4).</summary>
    public bool TryGetData(out ReadOnlySpan<byte> data) => TryGetAttribute(StunAttributeType.Data, out data);

    /// <summary>The first XOR-RELAYED-ADDRESS (RFC 8656 section 18.5).</summary>
    public bool TryGetXorRelayedAddress(out StunAddress address) => TryGetXorAddress(StunAttributeType.XorRelayedAddress, out address);

    /// <summary>Every XOR-RELAYED-ADDRESS (two for a dual-stack allocation); returns how many there are.</summary>
    public int GetXorRelayedAddresses(Span<StunAddress> addresses) => GetXorAddresses(StunAttributeType.XorRelayedAddress, addresses);

    /// <summary>REQUESTED-ADDRESS-FAMILY (RFC 8656 section 18.6): 1 IPv4, 2 IPv6.</summary>
    public bool TryGetRequestedAddressFamily(out byte family) => TryGetFirstByte(StunAttributeType.RequestedAddressFamily, out family);

    /// <summary>EVEN-PORT (RFC 8656 section 18.7): whether the R bit asks to reserve the next port.</summary>
    public bool TryGetEvenPort(out bool reserveNext)
    {
        reserveNext = false;
        if (!TryGetAttribute(StunAttributeType.EvenPort, out var v) || v.Length < 1) return false;
        reserveNext = (v[0] & 0x80) != 0;
        return true;
    }

    /// <summary>REQUESTED-TRANSPORT (RFC 8656 section 18.8): the IP protocol number (17 for UDP).</summary>
    public bool TryGetRequestedTransport(out byte protocol) => TryGetFirstByte(StunAttributeType.RequestedTransport, out protocol);

    /// <summary>True when DONT-FRAGMENT (RFC 8656 section 18.9) is present.</summary>
    public bool HasDontFragment => Contains(StunAttributeType.DontFragment);

    /// <summary>RESERVATION-TOKEN (RFC 8656 section 18.10): 8 bytes.</summary>
    public bool TryGetReservationToken(out ulong token) => TryGetUInt64(StunAttributeType.ReservationToken, out token);

    /// <summary>ADDITIONAL-ADDRESS-FAMILY (RFC 8656 section 18.11): 2 (IPv6).</summary>
    public bool TryGetAdditionalAddressFamily(out byte family) => TryGetFirstByte(StunAttributeType.AdditionalAddressFamily, out family);

    /// <summary>ADDRESS-ERROR-CODE (RFC 8656 section 18.12): the family that failed, the code and the reason.</summary>
    public bool TryGetAddressErrorCode(out byte family, out int code, out ReadOnlySpan<byte> reason)
    {
        family = 0;
        code = 0;
        reason = default;
        if (!TryGetAttribute(StunAttributeType.AddressErrorCode, out var v) || v.Length < 4) return false;
        int @class = v[2] & 0x07, number = v[3];
        if (@class < 3 || @class > 6 || number > 99) return false;
        family = v[0];
        code = @class * 100 + number;
        reason = v.Slice(4);
        return true;
    }

    /// <summary>ICMP (RFC 8656 section 18.13): ICMP type, code and error data.</summary>
    public bool TryGetIcmp(out byte icmpType, out byte icmpCode, out uint errorData)
    {
        icmpType = icmpCode = 0;
        errorData = 0;
        if (!TryGetAttribute(StunAttributeType.Icmp, out var v) || v.Length != 8) return false;
        icmpType = (byte)(v[2] & 0x7F);
        icmpCode = v[3];
        errorData = BinaryPrimitives.ReadUInt32BigEndian(v.Slice(4));
        return true;
    }

    // ---- helpers ----

    /// <summary>Reads a 32-bit attribute.</summary>
    public bool TryGetUInt32(ushort type, out uint value)
    {
        value = 0;
        if (!TryGetAttribute(type, out var v) || v.Length != 4) return false;
        value = BinaryPrimitives.ReadUInt32BigEndian(v);
        return true;
    }

    /// <summary>Reads a 64-bit attribute.</summary>
    public bool TryGetUInt64(ushort type, out ulong value)
    {
        value = 0;
        if (!TryGetAttribute(type, out var v) || v.Length != 8) return false;
        value = BinaryPrimitives.ReadUInt64BigEndian(v);
        return true;
    }

    private bool TryGetFirstByte(ushort type, out byte value)
    {
        value = 0;
        if (!TryGetAttribute(type, out var v) || v.Length != 4) return false;
        value = v[0];
        return true;
    }

    private static bool Fail(out ReadOnlySpan<byte> value) { value = default; return false; }

    /// <summary>Reads a plain address attribute (MAPPED-ADDRESS layout).</summary>
    public bool TryGetAddress(ushort type, out StunAddress address)
    {
        address = default;
        return TryGetAttribute(type, out var v) && TryDecodeAddress(v, default, out address);
    }

    /// <summary>Reads an XOR'ed address attribute (XOR-MAPPED-ADDRESS layout, RFC 8489 section 14.2).</summary>
    public bool TryGetXorAddress(ushort type, out StunAddress address)
    {
        address = default;
        return TryGetAttribute(type, out var v) && TryDecodeAddress(v, _buffer.Slice(4, 16), out address);
    }

    private int GetXorAddresses(ushort type, Span<StunAddress> addresses)
    {
        var count = 0;
        foreach (var attribute in Attributes)
        {
            if (attribute.Type != type || !TryDecodeAddress(attribute.Value, _buffer.Slice(4, 16), out var a)) continue;
            if (count < addresses.Length) addresses[count] = a;
            count++;
        }
        return count;
    }

    // xorKey: empty for plain addresses, else magic cookie followed by the transaction ID.
    private static bool TryDecodeAddress(ReadOnlySpan<byte> v, ReadOnlySpan<byte> xorKey, out StunAddress address)
    {
        address = default;
        if (v.Length < 4) return false;
        var family = v[1];
        var addressLength = family == StunAddress.FamilyIPv4 ? 4 : family == StunAddress.FamilyIPv6 ? 16 : 0;
        if (addressLength == 0 || v.Length != 4 + addressLength) return false;
        var port = BinaryPrimitives.ReadUInt16BigEndian(v.Slice(2));
        Span<byte> bytes = stackalloc byte[16];
        v.Slice(4, addressLength).CopyTo(bytes);
        if (!xorKey.IsEmpty)
        {
            port ^= (ushort)(StunHeader.MagicCookie >> 16);
            for (var i = 0; i < addressLength; i++) bytes[i] ^= xorKey[i];
        }
        address = StunAddress.FromBytes(bytes.Slice(0, addressLength), port);
        return true;
    }
}
