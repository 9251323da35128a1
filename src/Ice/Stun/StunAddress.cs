using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Transport.Ice.Stun;

/// <summary>
/// A transport address as STUN carries it (RFC 8489 section 14.1): family, port and 4 or 16 address bytes,
/// held by value so that decoding allocates nothing. Convert with <see cref="ToEndPoint"/> when an
/// <see cref="IPEndPoint"/> is needed.
/// </summary>
public readonly struct StunAddress : IEquatable<StunAddress>
{
    /// <summary>Wire value of the IPv4 family.</summary>
    public const byte FamilyIPv4 = 0x01;
    /// <summary>Wire value of the IPv6 family.</summary>
    public const byte FamilyIPv6 = 0x02;

    private readonly ulong _high; // IPv6 bytes 0-7 (IPv4: the four bytes in the low half of _low)
    private readonly ulong _low;

    private StunAddress(byte family, ushort port, ulong high, ulong low)
    {
        Family = family;
        Port = port;
        _high = high;
        _low = low;
    }

    /// <summary>1 for IPv4, 2 for IPv6 (the wire values).</summary>
    public byte Family { get; }

    /// <summary>The port.</summary>
    public ushort Port { get; }

    /// <summary>True for IPv6.</summary>
    public bool IsIPv6 => Family == FamilyIPv6;

    /// <summary>Address length in bytes: 4 or 16.</summary>
    public int AddressLength => IsIPv6 ? 16 : 4;

    /// <summary>Builds an address from its raw bytes (4 or 16) and a port.</summary>
    public static StunAddress FromBytes(ReadOnlySpan<byte> address, ushort port)
    {
        if (address.Length == 4)
            return new StunAddress(FamilyIPv4, port, 0, BinaryPrimitives.ReadUInt32BigEndian(address));
        if (address.Length == 16)
            return new StunAddress(FamilyIPv6, port, BinaryPrimitives.ReadUInt64BigEndian(address), BinaryPrimitives.ReadUInt64BigEndian(address.Slice(8)));
        throw new ArgumentException("An address has 4 or 16 bytes.", nameof(address));
    }

    /// <summary>Converts an <see cref="IPEndPoint"/> without allocating.</summary>
    public static StunAddress FromEndPoint(IPEndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        Span<byte> bytes = stackalloc byte[16];
        var address = endPoint.Address;
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (!address.TryWriteBytes(bytes, out var written))
            throw new ArgumentException("Unsupported address.", nameof(endPoint));
        return FromBytes(bytes.Slice(0, written), (ushort)endPoint.Port);
    }

    /// <summary>Writes the 4 or 16 address bytes; returns how many.</summary>
    public int WriteAddress(Span<byte> destination)
    {
        if (IsIPv6)
        {
            BinaryPrimitives.WriteUInt64BigEndian(destination, _high);
            BinaryPrimitives.WriteUInt64BigEndian(destination.Slice(8), _low);
            return 16;
        }
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)_low);
        return 4;
    }

    /// <summary>The address as an <see cref="IPAddress"/> (allocates).</summary>
    public IPAddress ToIPAddress()
    {
        Span<byte> bytes = stackalloc byte[16];
        var n = WriteAddress(bytes);
        return new IPAddress(bytes.Slice(0, n));
    }

    /// <summary>The address as an <see cref="IPEndPoint"/> (allocates).</summary>
    public IPEndPoint ToEndPoint() => new(ToIPAddress(), Port);

    /// <summary>True when this is the same address and port as <paramref name="endPoint"/> (IPv4-mapped IPv6 counts as IPv4).</summary>
    public bool Matches(IPEndPoint endPoint) => endPoint is not null && Equals(FromEndPoint(endPoint));

    /// <summary>The address family as .NET names it.</summary>
    public AddressFamily AddressFamily => IsIPv6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;

    /// <inheritdoc />
    public bool Equals(StunAddress other) =>
        Family == other.Family && Port == other.Port && _high == other._high && _low == other._low;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is StunAddress other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Family, Port, _high, _low);

    /// <summary>Equality.</summary>
    public static bool operator ==(StunAddress left, StunAddress right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(StunAddress left, StunAddress right) => !left.Equals(right);

    /// <inheritdoc />
    public override string ToString() => Family == 0 ? "(none)" : ToEndPoint().ToString();
}
