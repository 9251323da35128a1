using System.Buffers.Binary;

namespace Transport.Ice.Turn;

/// <summary>
/// A ChannelData message (RFC 8656 section 12.4): the compact data path between a TURN client and server once a
/// channel is bound, a 4-byte header instead of a 36-byte-plus Send or Data indication.
/// <code>
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Channel Number        |            Length             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// /                       Application Data                        /
/// /                                                               /
/// |                                                               |
/// |                               +-------------------------------+
/// |                               |
/// +-------------------------------+
/// </code>
/// Over UDP the padding to four bytes is optional (the datagram may end right after the data); over TCP it is
/// required so that the next message starts on a four-byte boundary (RFC 8656 section 12.5).
/// </summary>
public readonly ref struct ChannelData
{
    /// <summary>Size of the header (channel number and length).</summary>
    public const int HeaderSize = 4;

    /// <summary>Lowest channel number (RFC 8656 section 12: 0x4000 through 0x4FFF).</summary>
    public const ushort MinChannel = 0x4000;

    /// <summary>Highest channel number.</summary>
    public const ushort MaxChannel = 0x4FFF;

    private ChannelData(ushort channel, ReadOnlySpan<byte> data)
    {
        Channel = channel;
        Data = data;
    }

    /// <summary>The channel number.</summary>
    public ushort Channel { get; }

    /// <summary>The application data (without padding).</summary>
    public ReadOnlySpan<byte> Data { get; }

    /// <summary>True for a channel number a client may bind (0x4000..0x4FFF).</summary>
    public static bool IsValidChannel(ushort channel) => channel is >= MinChannel and <= MaxChannel;

    /// <summary>
    /// True when the first byte is in 64..79, the range RFC 7983 (as updated by RFC 8656 section 12) gives to
    /// ChannelData. A cheap pre-check for demultiplexing.
    /// </summary>
    public static bool LooksLikeChannelData(ReadOnlySpan<byte> datagram) => !datagram.IsEmpty && datagram[0] is >= 0x40 and <= 0x4F;

    /// <summary>
    /// Parses a ChannelData message. The datagram may carry up to three bytes of padding after the data (always
    /// there over TCP, optional over UDP); more than that, or less data than the length says, is refused.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> datagram, out ChannelData message)
    {
        message = default;
        if (datagram.Length < HeaderSize) return false;
        var channel = BinaryPrimitives.ReadUInt16BigEndian(datagram);
        if (!IsValidChannel(channel)) return false;
        int length = BinaryPrimitives.ReadUInt16BigEndian(datagram.Slice(2));
        var available = datagram.Length - HeaderSize;
        if (available < length || available > ((length + 3) & ~3)) return false;
        message = new ChannelData(channel, datagram.Slice(HeaderSize, length));
        return true;
    }

    /// <summary>The size of a ChannelData message carrying <paramref name="dataLength"/> bytes, padded or not.</summary>
    public static int GetSize(int dataLength, bool padded) => HeaderSize + (padded ? (dataLength + 3) & ~3 : dataLength);

    /// <summary>
    /// Writes a ChannelData message into <paramref name="destination"/> and returns its size. With
    /// <paramref name="padded"/> (required over TCP) zero bytes pad the data to a multiple of four.
    /// </summary>
    public static int Write(Span<byte> destination, ushort channel, ReadOnlySpan<byte> data, bool padded)
    {
        if (!IsValidChannel(channel)) throw new ArgumentOutOfRangeException(nameof(channel), "Channel numbers are 0x4000..0x4FFF.");
        if (data.Length > ushort.MaxValue) throw new ArgumentException("ChannelData carries at most 65535 bytes.", nameof(data));
        var size = GetSize(data.Length, padded);
        if (destination.Length < size) throw new ArgumentException("The destination cannot hold the ChannelData message.", nameof(destination));
        BinaryPrimitives.WriteUInt16BigEndian(destination, channel);
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), (ushort)data.Length);
        data.CopyTo(destination.Slice(HeaderSize));
        destination.Slice(HeaderSize + data.Length, size - HeaderSize - data.Length).Clear();
        return size;
    }
}
