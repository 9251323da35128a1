using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace Transport.Ice.Stun;

/// <summary>
/// HMAC-SHA1 (RFC 2104 over FIPS 180-4 SHA-1) with the key's inner and outer pads hashed once per key, so that a
/// MESSAGE-INTEGRITY of an ICE check costs three SHA-1 blocks and no call into native code. The platform's
/// HMAC is a P/Invoke chain costing several times more for these ~100-byte messages. The tests check it
/// against <see cref="HMACSHA1"/> on random keys and inputs. SHA-1 has no data-dependent branches or tables,
/// so this runs in time independent of the key and data.
/// </summary>
internal sealed class HmacSha1
{
    private const int BlockSize = 64;
    private readonly State _inner;
    private readonly State _outer;

    public HmacSha1(ReadOnlySpan<byte> key)
    {
        Span<byte> k = stackalloc byte[BlockSize];
        k.Clear();
        if (key.Length > BlockSize) SHA1.HashData(key, k);
        else key.CopyTo(k);
        Span<byte> pad = stackalloc byte[BlockSize];
        for (var i = 0; i < BlockSize; i++) pad[i] = (byte)(k[i] ^ 0x36);
        _inner = State.Initial;
        Compress(ref _inner, pad);
        for (var i = 0; i < BlockSize; i++) pad[i] = (byte)(k[i] ^ 0x5C);
        _outer = State.Initial;
        Compress(ref _outer, pad);
        CryptographicOperations.ZeroMemory(k);
        CryptographicOperations.ZeroMemory(pad);
    }

    /// <summary>HMAC-SHA1 of <paramref name="first"/> followed by <paramref name="second"/> into 20 bytes.</summary>
    public void Compute(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second, Span<byte> destination)
    {
        var s = _inner;
        Span<byte> block = stackalloc byte[BlockSize];
        var filled = 0;
        Absorb(ref s, block, ref filled, first);
        Absorb(ref s, block, ref filled, second);
        Finish(ref s, block, filled, BlockSize + (long)first.Length + second.Length);

        // The inner digest is the outer message: 20 bytes, padding, and the length (64 + 20 bytes) in one block.
        s.WriteTo(block);
        block[20] = 0x80;
        block.Slice(21, BlockSize - 21 - 8).Clear();
        BinaryPrimitives.WriteUInt64BigEndian(block.Slice(BlockSize - 8), (BlockSize + 20) * 8UL);
        var o = _outer;
        Compress(ref o, block);
        o.WriteTo(destination);
        block.Clear();
    }

    private static void Absorb(ref State s, Span<byte> block, ref int filled, ReadOnlySpan<byte> data)
    {
        if (filled > 0)
        {
            var take = Math.Min(BlockSize - filled, data.Length);
            data.Slice(0, take).CopyTo(block.Slice(filled));
            filled += take;
            data = data.Slice(take);
            if (filled < BlockSize) return;
            Compress(ref s, block);
            filled = 0;
        }
        while (data.Length >= BlockSize)
        {
            Compress(ref s, data.Slice(0, BlockSize));
            data = data.Slice(BlockSize);
        }
        data.CopyTo(block);
        filled = data.Length;
    }

    private static void Finish(ref State s, Span<byte> block, int filled, long totalBytes)
    {
        block[filled++] = 0x80;
        if (filled > BlockSize - 8)
        {
            block.Slice(filled).Clear();
            Compress(ref s, block);
            filled = 0;
        }
        block.Slice(filled, BlockSize - 8 - filled).Clear();
        BinaryPrimitives.WriteUInt64BigEndian(block.Slice(BlockSize - 8), (ulong)totalBytes * 8);
        Compress(ref s, block);
    }

    // Five rounds per step with the variables' roles rotated instead of moved (the usual unrolling of SHA-1).
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    private static unsafe void Compress(ref State s, ReadOnlySpan<byte> block)
    {
        uint* w = stackalloc uint[80];
        fixed (byte* p = block)
        {
            for (var i = 0; i < 16; i++) w[i] = BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(p + 4 * i));
        }
        for (var i = 16; i < 80; i++) w[i] = BitOperations.RotateLeft(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);

        uint a = s.A, b = s.B, c = s.C, d = s.D, e = s.E;
        for (var i = 0; i < 20; i += 5)
        {
            e += BitOperations.RotateLeft(a, 5) + (d ^ (b & (c ^ d))) + 0x5A827999 + w[i]; b = BitOperations.RotateLeft(b, 30);
            d += BitOperations.RotateLeft(e, 5) + (c ^ (a & (b ^ c))) + 0x5A827999 + w[i + 1]; a = BitOperations.RotateLeft(a, 30);
            c += BitOperations.RotateLeft(d, 5) + (b ^ (e & (a ^ b))) + 0x5A827999 + w[i + 2]; e = BitOperations.RotateLeft(e, 30);
            b += BitOperations.RotateLeft(c, 5) + (a ^ (d & (e ^ a))) + 0x5A827999 + w[i + 3]; d = BitOperations.RotateLeft(d, 30);
            a += BitOperations.RotateLeft(b, 5) + (e ^ (c & (d ^ e))) + 0x5A827999 + w[i + 4]; c = BitOperations.RotateLeft(c, 30);
        }
        for (var i = 20; i < 40; i += 5)
        {
            e += BitOperations.RotateLeft(a, 5) + (b ^ c ^ d) + 0x6ED9EBA1 + w[i]; b = BitOperations.RotateLeft(b, 30);
            d += BitOperations.RotateLeft(e, 5) + (a ^ b ^ c) + 0x6ED9EBA1 + w[i + 1]; a = BitOperations.RotateLeft(a, 30);
            c += BitOperations.RotateLeft(d, 5) + (e ^ a ^ b) + 0x6ED9EBA1 + w[i + 2]; e = BitOperations.RotateLeft(e, 30);
            b += BitOperations.RotateLeft(c, 5) + (d ^ e ^ a) + 0x6ED9EBA1 + w[i + 3]; d = BitOperations.RotateLeft(d, 30);
            a += BitOperations.RotateLeft(b, 5) + (c ^ d ^ e) + 0x6ED9EBA1 + w[i + 4]; c = BitOperations.RotateLeft(c, 30);
        }
        for (var i = 40; i < 60; i += 5)
        {
            e += BitOperations.RotateLeft(a, 5) + ((b & c) | (d & (b | c))) + 0x8F1BBCDC + w[i]; b = BitOperations.RotateLeft(b, 30);
            d += BitOperations.RotateLeft(e, 5) + ((a & b) | (c & (a | b))) + 0x8F1BBCDC + w[i + 1]; a = BitOperations.RotateLeft(a, 30);
            c += BitOperations.RotateLeft(d, 5) + ((e & a) | (b & (e | a))) + 0x8F1BBCDC + w[i + 2]; e = BitOperations.RotateLeft(e, 30);
            b += BitOperations.RotateLeft(c, 5) + ((d & e) | (a & (d | e))) + 0x8F1BBCDC + w[i + 3]; d = BitOperations.RotateLeft(d, 30);
            a += BitOperations.RotateLeft(b, 5) + ((c & d) | (e & (c | d))) + 0x8F1BBCDC + w[i + 4]; c = BitOperations.RotateLeft(c, 30);
        }
        for (var i = 60; i < 80; i += 5)
        {
            e += BitOperations.RotateLeft(a, 5) + (b ^ c ^ d) + 0xCA62C1D6 + w[i]; b = BitOperations.RotateLeft(b, 30);
            d += BitOperations.RotateLeft(e, 5) + (a ^ b ^ c) + 0xCA62C1D6 + w[i + 1]; a = BitOperations.RotateLeft(a, 30);
            c += BitOperations.RotateLeft(d, 5) + (e ^ a ^ b) + 0xCA62C1D6 + w[i + 2]; e = BitOperations.RotateLeft(e, 30);
            b += BitOperations.RotateLeft(c, 5) + (d ^ e ^ a) + 0xCA62C1D6 + w[i + 3]; d = BitOperations.RotateLeft(d, 30);
            a += BitOperations.RotateLeft(b, 5) + (c ^ d ^ e) + 0xCA62C1D6 + w[i + 4]; c = BitOperations.RotateLeft(c, 30);
        }
        s.A += a; s.B += b; s.C += c; s.D += d; s.E += e;
    }

    private struct State
    {
        public uint A, B, C, D, E;

        public static State Initial => new() { A = 0x67452301, B = 0xEFCDAB89, C = 0x98BADCFE, D = 0x10325476, E = 0xC3D2E1F0 };

        public readonly void WriteTo(Span<byte> destination)
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination, A);
            BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), B);
            BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(8), C);
            BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(12), D);
            BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(16), E);
        }
    }
}
