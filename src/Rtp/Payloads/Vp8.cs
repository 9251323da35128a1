namespace Transport.Rtp.Payloads;

//  VP8 payload descriptor (RFC 7741 section 4.2):
//       0 1 2 3 4 5 6 7
//      +-+-+-+-+-+-+-+-+
//      |X|R|N|S|R| PID | (REQUIRED)
//      +-+-+-+-+-+-+-+-+
//  X:  |I|L|T|K| RSV   | (OPTIONAL)
//  I:  |M| PictureID   | (OPTIONAL, 15 bits when M)
//  L:  |   TL0PICIDX   | (OPTIONAL)
//  T/K:|TID|Y| KEYIDX  | (OPTIONAL)

/// <summary>
/// Splits one VP8 frame into RTP payloads (RFC 7741 section 4): each payload gets a descriptor with a 15-bit
/// picture ID; S=1 and PID=0 on the first. A ref struct over the frame: no allocation.
/// </summary>
public ref struct Vp8Packetizer
{
    private const int DescriptorLength = 4;
    private readonly ReadOnlySpan<byte> _frame;
    private readonly int _maxPayload;
    private readonly ushort _pictureId;
    private int _offset;

    /// <summary>Prepares to packetize <paramref name="frame"/> into payloads of at most <paramref name="maxPayloadSize"/> bytes.</summary>
    public Vp8Packetizer(ReadOnlySpan<byte> frame, int maxPayloadSize, ushort pictureId)
    {
        if (maxPayloadSize <= DescriptorLength || frame.IsEmpty)
        {
            throw new ArgumentOutOfRangeException(nameof(maxPayloadSize), "A non-empty frame and room for the descriptor are needed.");
        }

        _frame = frame;
        _maxPayload = maxPayloadSize;
        _pictureId = (ushort)(pictureId & 0x7FFF);
        _offset = 0;
    }

    /// <summary>Writes the next payload; <paramref name="marker"/> is set on the last one (RFC 7741 section 4.1).</summary>
    public bool TryWriteNext(Span<byte> destination, out int written, out bool marker)
    {
        written = 0;
        marker = false;
        if (_offset >= _frame.Length)
        {
            return false;
        }

        int chunk = Math.Min(_maxPayload - DescriptorLength, _frame.Length - _offset);
        if (destination.Length < DescriptorLength + chunk)
        {
            throw new ArgumentException("Destination smaller than the payload.", nameof(destination));
        }

        destination[0] = (byte)(0x80 | (_offset == 0 ? 0x10 : 0)); // X, S on the first partition start
        destination[1] = 0x80; // I: picture ID present
        destination[2] = (byte)(0x80 | (_pictureId >> 8)); // M: 15-bit picture ID
        destination[3] = (byte)_pictureId;
        _frame.Slice(_offset, chunk).CopyTo(destination.Slice(DescriptorLength));
        _offset += chunk;

        written = DescriptorLength + chunk;
        marker = _offset >= _frame.Length;
        return true;
    }
}

/// <summary>Reads VP8 payload descriptors (RFC 7741 section 4.2).</summary>
public sealed class Vp8Depacketizer : IRtpDepacketizer
{
    /// <summary>Length of the payload descriptor, or -1 when truncated.</summary>
    public static int DescriptorLength(ReadOnlySpan<byte> payload)
    {
        if (payload.IsEmpty)
        {
            return -1;
        }

        int length = 1;
        if ((payload[0] & 0x80) != 0)
        {
            if (payload.Length < 2)
            {
                return -1;
            }

            byte x = payload[1];
            length = 2;
            if ((x & 0x80) != 0)
            {
                if (payload.Length < 3)
                {
                    return -1;
                }

                length += (payload[2] & 0x80) != 0 ? 2 : 1;
            }

            if ((x & 0x40) != 0)
            {
                length++;
            }

            if ((x & 0x30) != 0)
            {
                length++;
            }
        }

        return length < payload.Length ? length : -1;
    }

    /// <summary>The picture ID, or -1 when absent.</summary>
    public static int PictureId(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 3 || (payload[0] & 0x80) == 0 || (payload[1] & 0x80) == 0)
        {
            return -1;
        }

        return (payload[2] & 0x80) != 0 ? (payload.Length < 4 ? -1 : ((payload[2] & 0x7F) << 8) | payload[3]) : payload[2] & 0x7F;
    }

    /// <inheritdoc />
    public bool IsFrameStart(ReadOnlySpan<byte> payload) => payload.Length > 0 && (payload[0] & 0x17) == 0x10; // S=1, PID=0

    /// <inheritdoc />
    public bool IsFrameEnd(ReadOnlySpan<byte> payload, bool marker) => marker;

    /// <inheritdoc />
    public bool IsKeyFrame(ReadOnlySpan<byte> firstPayload)
    {
        // RFC 7741 section 4.3: the P bit of the VP8 payload header is 0 for key frames.
        int d = DescriptorLength(firstPayload);
        return d > 0 && IsFrameStart(firstPayload) && (firstPayload[d] & 0x01) == 0;
    }

    /// <inheritdoc />
    public int MaxOutputLength(int payloadLength) => payloadLength;

    /// <inheritdoc />
    public int Depacketize(ReadOnlySpan<byte> payload, Span<byte> destination)
    {
        int d = DescriptorLength(payload);
        if (d < 0 || payload.Length - d > destination.Length)
        {
            return -1;
        }

        payload.Slice(d).CopyTo(destination);
        return payload.Length - d;
    }
}
