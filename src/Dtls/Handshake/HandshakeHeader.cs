using System.Buffers.Binary;

namespace Transport.Dtls.Handshake;

/// <summary>
/// The DTLS handshake message header (RFC 6347 section 4.2.2):
/// <code>
/// msg_type(1) | length(3) | message_seq(2) | fragment_offset(3) | fragment_length(3) | fragment
/// </code>
/// </summary>
internal readonly ref struct HandshakeHeader
{
    public const int Length = 12;
    /// <summary>No handshake message of ours or of a sane peer comes near this; it bounds reassembly memory.</summary>
    public const int MaxMessageLength = 32 * 1024;

    public DtlsHandshakeType Type { get; init; }
    public int MessageLength { get; init; }
    public int MessageSequence { get; init; }
    public int FragmentOffset { get; init; }
    public ReadOnlySpan<byte> Fragment { get; init; }

    /// <summary>Reads one handshake fragment from the front of <paramref name="data"/>.</summary>
    public static bool TryRead(ReadOnlySpan<byte> data, out HandshakeHeader header, out int consumed)
    {
        header = default;
        consumed = 0;
        if (data.Length < Length) return false;
        var length = (data[1] << 16) | (data[2] << 8) | data[3];
        var offset = (data[6] << 16) | (data[7] << 8) | data[8];
        var fragmentLength = (data[9] << 16) | (data[10] << 8) | data[11];
        if (fragmentLength > data.Length - Length || length > MaxMessageLength || offset + fragmentLength > length) return false;
        consumed = Length + fragmentLength;
        header = new HandshakeHeader
        {
            Type = (DtlsHandshakeType)data[0],
            MessageLength = length,
            MessageSequence = BinaryPrimitives.ReadUInt16BigEndian(data[4..]),
            FragmentOffset = offset,
            Fragment = data.Slice(Length, fragmentLength),
        };
        return true;
    }

    public static void Write(Span<byte> d, DtlsHandshakeType type, int length, int sequence, int offset, int fragmentLength)
    {
        d[0] = (byte)type;
        WriteU24(d[1..], length);
        BinaryPrimitives.WriteUInt16BigEndian(d[4..], (ushort)sequence);
        WriteU24(d[6..], offset);
        WriteU24(d[9..], fragmentLength);
    }

    private static void WriteU24(Span<byte> d, int v)
    {
        d[0] = (byte)(v >> 16);
        d[1] = (byte)(v >> 8);
        d[2] = (byte)v;
    }

    /// <summary>A whole message (header with offset 0 and fragment_length = length, then body), as hashed into the transcript.</summary>
    public static byte[] Frame(DtlsHandshakeType type, int sequence, ReadOnlySpan<byte> body)
    {
        var message = new byte[Length + body.Length];
        Write(message, type, body.Length, sequence, 0, body.Length);
        body.CopyTo(message.AsSpan(Length));
        return message;
    }
}
