using System.Buffers.Binary;

namespace Transport.Rtp;

/// <summary>One RFC 8285 header extension element.</summary>
public readonly ref struct RtpHeaderExtension
{
    internal RtpHeaderExtension(int id, ReadOnlySpan<byte> value)
    {
        Id = id;
        Value = value;
    }

    /// <summary>Local identifier (1-14 in the one-byte form, 1-255 in the two-byte form).</summary>
    public int Id { get; }

    /// <summary>Element data.</summary>
    public ReadOnlySpan<byte> Value { get; }
}

/// <summary>
/// Enumerates the elements of an RFC 8285 header extension block. One-byte form (profile 0xBEDE, section 4.2):
/// ID (4 bits) and length-1 (4 bits), ID 0 is padding, ID 15 stops parsing. Two-byte form (profile 0x100X,
/// section 4.3): ID and length octets, ID 0 is padding. Other profiles yield nothing.
/// </summary>
public ref struct RtpHeaderExtensionEnumerator
{
    /// <summary>RFC 8285 one-byte header profile value.</summary>
    public const ushort OneByteProfile = 0xBEDE;

    private readonly ReadOnlySpan<byte> _data;
    private readonly int _form; // 1, 2 or 0 (unknown)
    private int _offset;
    private RtpHeaderExtension _current;

    internal RtpHeaderExtensionEnumerator(ushort profile, ReadOnlySpan<byte> data)
    {
        _data = data;
        _form = profile == OneByteProfile ? 1 : (profile & 0xFFF0) == 0x1000 ? 2 : 0;
        _offset = 0;
        _current = default;
    }

    /// <summary>The current element.</summary>
    public readonly RtpHeaderExtension Current => _current;

    /// <summary>Enables foreach.</summary>
    public readonly RtpHeaderExtensionEnumerator GetEnumerator() => this;

    /// <summary>Advances to the next element; stops at the end or at malformed data.</summary>
    public bool MoveNext()
    {
        while (_offset < _data.Length)
        {
            byte first = _data[_offset];
            if (_form == 1)
            {
                if (first == 0)
                {
                    _offset++;
                    continue;
                }

                int id = first >> 4;
                if (id == 15)
                {
                    _offset = _data.Length;
                    return false;
                }

                int length = (first & 0x0F) + 1;
                if (_offset + 1 + length > _data.Length)
                {
                    _offset = _data.Length;
                    return false;
                }

                _current = new RtpHeaderExtension(id, _data.Slice(_offset + 1, length));
                _offset += 1 + length;
                return true;
            }

            if (_form == 2)
            {
                if (first == 0)
                {
                    _offset++;
                    continue;
                }

                if (_offset + 2 > _data.Length || _offset + 2 + _data[_offset + 1] > _data.Length)
                {
                    _offset = _data.Length;
                    return false;
                }

                int length = _data[_offset + 1];
                _current = new RtpHeaderExtension(first, _data.Slice(_offset + 2, length));
                _offset += 2 + length;
                return true;
            }

            return false;
        }

        return false;
    }
}

/// <summary>
/// Writes an RFC 8285 header extension block (its 4-byte header included) into a span. Uses the one-byte form
/// unless two-byte is requested; adding an element that does not fit the one-byte form throws.
/// </summary>
public ref struct RtpHeaderExtensionWriter
{
    private readonly Span<byte> _destination;
    private readonly bool _twoByte;
    private int _offset;

    /// <summary>Starts a block at the beginning of <paramref name="destination"/>.</summary>
    public RtpHeaderExtensionWriter(Span<byte> destination, bool twoByte = false)
    {
        _destination = destination;
        _twoByte = twoByte;
        BinaryPrimitives.WriteUInt16BigEndian(destination, twoByte ? (ushort)0x1000 : RtpHeaderExtensionEnumerator.OneByteProfile);
        _offset = 4;
    }

    /// <summary>Appends one element.</summary>
    public void Add(int id, ReadOnlySpan<byte> value)
    {
        if (_twoByte)
        {
            if (id is < 1 or > 255 || value.Length > 255)
            {
                throw new ArgumentOutOfRangeException(nameof(id), "Two-byte elements have IDs 1-255 and up to 255 bytes.");
            }

            _destination[_offset] = (byte)id;
            _destination[_offset + 1] = (byte)value.Length;
            value.CopyTo(_destination.Slice(_offset + 2));
            _offset += 2 + value.Length;
        }
        else
        {
            if (id is < 1 or > 14 || value.Length is < 1 or > 16)
            {
                throw new ArgumentOutOfRangeException(nameof(id), "One-byte elements have IDs 1-14 and 1 to 16 bytes.");
            }

            _destination[_offset] = (byte)((id << 4) | (value.Length - 1));
            value.CopyTo(_destination.Slice(_offset + 1));
            _offset += 1 + value.Length;
        }
    }

    /// <summary>Pads to a 32-bit boundary, writes the length field and returns the block length in bytes.</summary>
    public int Finish()
    {
        while ((_offset & 3) != 0)
        {
            _destination[_offset++] = 0;
        }

        BinaryPrimitives.WriteUInt16BigEndian(_destination.Slice(2), (ushort)((_offset - 4) / 4));
        return _offset;
    }
}
