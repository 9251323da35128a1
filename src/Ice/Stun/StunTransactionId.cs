using System.Buffers.Binary;

namespace Transport.Ice.Stun;

/// <summary>
/// A 96-bit STUN transaction ID held by value (RFC 8489 section 5: uniformly random, from a cryptographically
/// strong source, so that off-path attackers cannot forge responses).
/// </summary>
public readonly struct StunTransactionId : IEquatable<StunTransactionId>
{
    private readonly ulong _high;
    private readonly uint _low;

    private StunTransactionId(ulong high, uint low) { _high = high; _low = low; }

    /// <summary>A new random ID (no allocation).</summary>
    public static StunTransactionId NewRandom()
    {
        Span<byte> bytes = stackalloc byte[StunHeader.TransactionIdSize];
        SecureRandomBytes.Fill(bytes);
        return FromBytes(bytes);
    }

    /// <summary>Reads 12 bytes.</summary>
    public static StunTransactionId FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != StunHeader.TransactionIdSize) throw new ArgumentException("A transaction ID has 12 bytes.", nameof(bytes));
        return new(BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(8)));
    }

    /// <summary>Writes the 12 bytes.</summary>
    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _high);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(8), _low);
    }

    /// <summary>True when <paramref name="bytes"/> hold this ID.</summary>
    public bool Matches(ReadOnlySpan<byte> bytes) =>
        bytes.Length == StunHeader.TransactionIdSize
        && BinaryPrimitives.ReadUInt64BigEndian(bytes) == _high
        && BinaryPrimitives.ReadUInt32BigEndian(bytes.Slice(8)) == _low;

    /// <inheritdoc />
    public bool Equals(StunTransactionId other) => _high == other._high && _low == other._low;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is StunTransactionId other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(_high, _low);

    /// <summary>Equality.</summary>
    public static bool operator ==(StunTransactionId left, StunTransactionId right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(StunTransactionId left, StunTransactionId right) => !left.Equals(right);

    /// <inheritdoc />
    public override string ToString() => $"{_high:x16}{_low:x8}";
}
