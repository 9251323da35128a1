using System.Buffers.Binary;

namespace Transport.Dtls.Handshake;

/// <summary>A forward-only reader over handshake bytes: every read is checked, nothing throws.</summary>
internal ref struct WireReader(ReadOnlySpan<byte> data)
{
    private ReadOnlySpan<byte> _rest = data;

    public readonly int Remaining => _rest.Length;
    public readonly bool IsEmpty => _rest.IsEmpty;

    public bool TryU8(out byte value)
    {
        value = 0;
        if (_rest.Length < 1) return false;
        value = _rest[0];
        _rest = _rest[1..];
        return true;
    }

    public bool TryU16(out ushort value)
    {
        value = 0;
        if (_rest.Length < 2) return false;
        value = BinaryPrimitives.ReadUInt16BigEndian(_rest);
        _rest = _rest[2..];
        return true;
    }

    public bool TryU24(out int value)
    {
        value = 0;
        if (_rest.Length < 3) return false;
        value = (_rest[0] << 16) | (_rest[1] << 8) | _rest[2];
        _rest = _rest[3..];
        return true;
    }

    public bool TryBytes(int count, out ReadOnlySpan<byte> value)
    {
        value = default;
        if (count < 0 || _rest.Length < count) return false;
        value = _rest[..count];
        _rest = _rest[count..];
        return true;
    }

    public bool TryVector8(out ReadOnlySpan<byte> value)
    {
        value = default;
        return TryU8(out var n) && TryBytes(n, out value);
    }

    public bool TryVector16(out ReadOnlySpan<byte> value)
    {
        value = default;
        return TryU16(out var n) && TryBytes(n, out value);
    }

    public bool TryVector24(out ReadOnlySpan<byte> value)
    {
        value = default;
        return TryU24(out var n) && TryBytes(n, out value);
    }
}

/// <summary>Builds handshake messages (the handshake path may allocate; records do not).</summary>
internal sealed class WireWriter
{
    private byte[] _buffer = new byte[256];
    private int _length;

    public int Length => _length;
    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);
    public byte[] ToArray() => _buffer.AsSpan(0, _length).ToArray();

    private Span<byte> Grow(int n)
    {
        if (_length + n > _buffer.Length) Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + n));
        var s = _buffer.AsSpan(_length, n);
        _length += n;
        return s;
    }

    public void U8(int v) => Grow(1)[0] = (byte)v;
    public void U16(int v) => BinaryPrimitives.WriteUInt16BigEndian(Grow(2), (ushort)v);
    public void U24(int v)
    {
        var s = Grow(3);
        s[0] = (byte)(v >> 16);
        s[1] = (byte)(v >> 8);
        s[2] = (byte)v;
    }
    public void Bytes(ReadOnlySpan<byte> b) => b.CopyTo(Grow(b.Length));
    public void Vector8(ReadOnlySpan<byte> b) { U8(b.Length); Bytes(b); }
    public void Vector16(ReadOnlySpan<byte> b) { U16(b.Length); Bytes(b); }
    public void Vector24(ReadOnlySpan<byte> b) { U24(b.Length); Bytes(b); }

    /// <summary>Starts a length-prefixed block of <paramref name="lengthBytes"/>; close it with <see cref="EndBlock"/>.</summary>
    public int BeginBlock(int lengthBytes)
    {
        Grow(lengthBytes);
        return _length;
    }

    public void EndBlock(int start, int lengthBytes)
    {
        var n = _length - start;
        var s = _buffer.AsSpan(start - lengthBytes, lengthBytes);
        for (var i = lengthBytes - 1; i >= 0; i--) { s[i] = (byte)n; n >>= 8; }
    }
}
