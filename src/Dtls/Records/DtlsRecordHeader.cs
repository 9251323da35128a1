using System.Buffers.Binary;

namespace Transport.Dtls.Records;

/// <summary>
/// The DTLS record header (RFC 6347 section 4.1):
/// <code>
///  0               1               2               3
/// +---------------+---------------+---------------+---------------+
/// | content type  |    version (major, minor)     |    epoch ...  |
/// +---------------+---------------+---------------+---------------+
/// | ... epoch     |         sequence_number (48 bits) ...         |
/// +---------------+---------------+---------------+---------------+
/// |           ... sequence_number                 |    length ... |
/// +---------------+---------------+---------------+---------------+
/// | ... length    |   fragment (length bytes)
/// </code>
/// </summary>
internal readonly ref struct DtlsRecordHeader
{
    public const int Length = 13;
    /// <summary>DTLS 1.2 on the wire ({254, 253}).</summary>
    public const ushort Version12 = 0xFEFD;
    /// <summary>DTLS 1.0 ({254, 255}); allowed in the record of a ClientHello and HelloVerifyRequest (RFC 6347 4.2.1).</summary>
    public const ushort Version10 = 0xFEFF;
    public const ulong MaxSequence = (1UL << 48) - 1;

    public DtlsContentType Type { get; init; }
    public ushort Version { get; init; }
    public ushort Epoch { get; init; }
    public ulong Sequence { get; init; }
    public ReadOnlySpan<byte> Fragment { get; init; }
    /// <summary>The header and fragment together.</summary>
    public ReadOnlySpan<byte> Whole { get; init; }

    /// <summary>
    /// Reads the first record of <paramref name="datagram"/>; <paramref name="consumed"/> is the size of header and
    /// fragment. False when the header is short, the length overruns, or the type or version is not DTLS.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> datagram, out DtlsRecordHeader record, out int consumed)
    {
        record = default;
        consumed = 0;
        if (datagram.Length < Length) return false;
        var type = datagram[0];
        if (type < 20 || type > 23) return false;
        var version = BinaryPrimitives.ReadUInt16BigEndian(datagram[1..]);
        if (version != Version12 && version != Version10) return false;
        var length = BinaryPrimitives.ReadUInt16BigEndian(datagram[11..]);
        if (length > datagram.Length - Length || length > 16384 + 2048) return false;
        consumed = Length + length;
        record = new DtlsRecordHeader
        {
            Type = (DtlsContentType)type,
            Version = version,
            Epoch = BinaryPrimitives.ReadUInt16BigEndian(datagram[3..]),
            Sequence = ReadUInt48(datagram[5..]),
            Fragment = datagram.Slice(Length, length),
            Whole = datagram[..consumed],
        };
        return true;
    }

    /// <summary>Writes a header; returns <see cref="Length"/>.</summary>
    public static int Write(Span<byte> destination, DtlsContentType type, ushort epoch, ulong sequence, int length, ushort version = Version12)
    {
        destination[0] = (byte)type;
        BinaryPrimitives.WriteUInt16BigEndian(destination[1..], version);
        BinaryPrimitives.WriteUInt16BigEndian(destination[3..], epoch);
        WriteUInt48(destination[5..], sequence);
        BinaryPrimitives.WriteUInt16BigEndian(destination[11..], (ushort)length);
        return Length;
    }

    public static ulong ReadUInt48(ReadOnlySpan<byte> s) =>
        ((ulong)BinaryPrimitives.ReadUInt16BigEndian(s) << 32) | BinaryPrimitives.ReadUInt32BigEndian(s[2..]);

    public static void WriteUInt48(Span<byte> d, ulong value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(d, (ushort)(value >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(d[2..], (uint)value);
    }
}
