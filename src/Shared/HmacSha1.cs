using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace Transport.Crypto;

/// <summary>
/// HMAC-SHA1 (RFC 2104 over FIPS 180-4 SHA-1) with the key's inner and outer pads hashed once per key, so that a
/// message costs only its own blocks plus one outer block. Two engines behind one API:
/// <list type="bullet">
/// <item>libcrypto's SHA-1 block function (SHA-NI where the CPU has it) called directly, see
/// <see cref="LibCryptoSha1"/>: the keyed ipad/opad states are OpenSSL SHA_CTX values copied per message, so
/// nothing is allocated and nothing goes through the EVP layer;</item>
/// <item>a managed SHA-1 (unrolled, no tables, no data-dependent branches) when libcrypto is not there or the
/// caller asks for it (tests keep both covered).</item>
/// </list>
/// The tests check both against <see cref="System.Security.Cryptography.HMACSHA1"/> on random keys and inputs.
/// Shared source: linked into Transport.Ice (STUN MESSAGE-INTEGRITY) and Transport.Rtp (SRTP authentication).
/// Immutable after construction: one instance may serve several callers at once.
/// </summary>
internal sealed unsafe class HmacSha1
{
    /// <summary>Length of the full MAC.</summary>
    public const int MacLength = 20;
    private const int BlockSize = 64;
    private readonly State _inner;
    private readonly State _outer;
    private readonly LibCryptoSha1.Sha1Context _nativeInner;
    private readonly LibCryptoSha1.Sha1Context _nativeOuter;
    private readonly bool _native;

    /// <summary>Keys the HMAC (keys longer than a block are hashed first, RFC 2104 section 2).</summary>
    /// <param name="key">The key.</param>
    /// <param name="allowNative">False forces the managed SHA-1 even when libcrypto is available.</param>
    public HmacSha1(ReadOnlySpan<byte> key, bool allowNative = true)
    {
        Span<byte> k = stackalloc byte[BlockSize];
        k.Clear();
        if (key.Length > BlockSize) SHA1.HashData(key, k);
        else key.CopyTo(k);
        Span<byte> ipad = stackalloc byte[BlockSize];
        Span<byte> opad = stackalloc byte[BlockSize];
        for (var i = 0; i < BlockSize; i++)
        {
            ipad[i] = (byte)(k[i] ^ 0x36);
            opad[i] = (byte)(k[i] ^ 0x5C);
        }

        _native = allowNative && LibCryptoSha1.IsAvailable;
        if (_native)
        {
            LibCryptoSha1.Sha1Context inner, outer;
            fixed (byte* pi = ipad)
            fixed (byte* po = opad)
            {
                LibCryptoSha1.Init(&inner);
                LibCryptoSha1.Update(&inner, pi, BlockSize);
                LibCryptoSha1.Init(&outer);
                LibCryptoSha1.Update(&outer, po, BlockSize);
            }

            _nativeInner = inner;
            _nativeOuter = outer;
        }
        else
        {
            _inner = State.Initial;
            Compress(ref _inner, ipad);
            _outer = State.Initial;
            Compress(ref _outer, opad);
        }

        CryptographicOperations.ZeroMemory(k);
        CryptographicOperations.ZeroMemory(ipad);
        CryptographicOperations.ZeroMemory(opad);
    }

    /// <summary>True when the MAC runs on libcrypto's SHA-1.</summary>
    public bool UsesNative => _native;

    /// <summary>
    /// HMAC-SHA1 of <paramref name="first"/> followed by <paramref name="second"/>; writes the first
    /// <paramref name="destination"/>.Length bytes (at most 20: a truncated MAC as SRTP uses, or the full one).
    /// </summary>
    public void Compute(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second, Span<byte> destination)
    {
        if (destination.Length > MacLength) destination = destination.Slice(0, MacLength);
        if (_native)
        {
            ComputeNative(first, second, destination);
            return;
        }

        var s = _inner;
        Span<byte> block = stackalloc byte[BlockSize];
        var filled = 0;
        Absorb(ref s, block, ref filled, first);
        Absorb(ref s, block, ref filled, second);
        Finish(ref s, block, filled, BlockSize + (long)first.Length + second.Length);

        // The inner digest is the outer message: 20 bytes, padding, and the length (64 + 20 bytes) in one block.
        s.WriteTo(block);
        PadOuterBlock(block);
        var o = _outer;
        Compress(ref o, block);
        if (destination.Length == MacLength)
        {
            o.WriteTo(destination);
        }
        else
        {
            o.WriteTo(block);
            block.Slice(0, destination.Length).CopyTo(destination);
        }

        block.Clear();
    }

    [SkipLocalsInit]
    private void ComputeNative(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second, Span<byte> destination)
    {
        LibCryptoSha1.Sha1Context s;
        LibCryptoSha1.Copy(in _nativeInner, out s);
        byte* block = stackalloc byte[BlockSize];
        fixed (byte* a = first)
        fixed (byte* b = second)
        {
            if (!first.IsEmpty) LibCryptoSha1.Update(&s, a, (nuint)first.Length);
            if (!second.IsEmpty) LibCryptoSha1.Update(&s, b, (nuint)second.Length);
        }

        // Inner digest straight into the outer block, padded by hand: one Transform instead of Update + Final.
        LibCryptoSha1.Final(block, &s);
        var outerBlock = new Span<byte>(block, BlockSize);
        PadOuterBlock(outerBlock);
        LibCryptoSha1.Sha1Context o;
        LibCryptoSha1.Copy(in _nativeOuter, out o);
        LibCryptoSha1.Transform(&o, block);
        if (destination.Length == MacLength)
        {
            o.WriteChainingValue(destination);
        }
        else
        {
            o.WriteChainingValue(outerBlock);
            outerBlock.Slice(0, destination.Length).CopyTo(destination);
        }

        outerBlock.Clear();
    }

    /// <summary>Bytes 20..63 of the outer block: 0x80, zeros, and the bit length of ipad-block + digest.</summary>
    private static void PadOuterBlock(Span<byte> block)
    {
        block[MacLength] = 0x80;
        block.Slice(MacLength + 1, BlockSize - MacLength - 1 - 8).Clear();
        BinaryPrimitives.WriteUInt64BigEndian(block.Slice(BlockSize - 8), (BlockSize + MacLength) * 8UL);
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

    // Fully unrolled (generated): 80 rounds with the variables' roles rotated instead of moved and the message
    // schedule kept in a 16-word ring with constant indexes, so the JIT keeps a..e in registers.
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    private static unsafe void Compress(ref State s, ReadOnlySpan<byte> block)
    {
        uint* w = stackalloc uint[16];
        fixed (byte* p = block)
        {
            for (var i = 0; i < 16; i++) w[i] = BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(p + 4 * i));
        }
        uint a = s.A, b = s.B, c = s.C, d = s.D, e = s.E;
        e += BitOperations.RotateLeft(a, 5) + (d ^ (b & (c ^ d))) + 0x5A827999 + w[0]; b = BitOperations.RotateLeft(b, 30);
        d += BitOperations.RotateLeft(e, 5) + (c ^ (a & (b ^ c))) + 0x5A827999 + w[1]; a = BitOperations.RotateLeft(a, 30);
        c += BitOperations.RotateLeft(d, 5) + (b ^ (e & (a ^ b))) + 0x5A827999 + w[2]; e = BitOperations.RotateLeft(e, 30);
        b += BitOperations.RotateLeft(c, 5) + (a ^ (d & (e ^ a))) + 0x5A827999 + w[3]; d = BitOperations.RotateLeft(d, 30);
        a += BitOperations.RotateLeft(b, 5) + (e ^ (c & (d ^ e))) + 0x5A827999 + w[4]; c = BitOperations.RotateLeft(c, 30);
        e += BitOperations.RotateLeft(a, 5) + (d ^ (b & (c ^ d))) + 0x5A827999 + w[5]; b = BitOperations.RotateLeft(b, 30);
        d += BitOperations.RotateLeft(e, 5) + (c ^ (a & (b ^ c))) + 0x5A827999 + w[6]; a = BitOperations.RotateLeft(a, 30);
        c += BitOperations.RotateLeft(d, 5) + (b ^ (e & (a ^ b))) + 0x5A827999 + w[7]; e = BitOperations.RotateLeft(e, 30);
        b += BitOperations.RotateLeft(c, 5) + (a ^ (d & (e ^ a))) + 0x5A827999 + w[8]; d = BitOperations.RotateLeft(d, 30);
        a += BitOperations.RotateLeft(b, 5) + (e ^ (c & (d ^ e))) + 0x5A827999 + w[9]; c = BitOperations.RotateLeft(c, 30);
        e += BitOperations.RotateLeft(a, 5) + (d ^ (b & (c ^ d))) + 0x5A827999 + w[10]; b = BitOperations.RotateLeft(b, 30);
        d += BitOperations.RotateLeft(e, 5) + (c ^ (a & (b ^ c))) + 0x5A827999 + w[11]; a = BitOperations.RotateLeft(a, 30);
        c += BitOperations.RotateLeft(d, 5) + (b ^ (e & (a ^ b))) + 0x5A827999 + w[12]; e = BitOperations.RotateLeft(e, 30);
        b += BitOperations.RotateLeft(c, 5) + (a ^ (d & (e ^ a))) + 0x5A827999 + w[13]; d = BitOperations.RotateLeft(d, 30);
        a += BitOperations.RotateLeft(b, 5) + (e ^ (c & (d ^ e))) + 0x5A827999 + w[14]; c = BitOperations.RotateLeft(c, 30);
        e += BitOperations.RotateLeft(a, 5) + (d ^ (b & (c ^ d))) + 0x5A827999 + w[15]; b = BitOperations.RotateLeft(b, 30);
        w[0] = BitOperations.RotateLeft(w[13] ^ w[8] ^ w[2] ^ w[0], 1);
        d += BitOperations.RotateLeft(e, 5) + (c ^ (a & (b ^ c))) + 0x5A827999 + w[0]; a = BitOperations.RotateLeft(a, 30);
        w[1] = BitOperations.RotateLeft(w[14] ^ w[9] ^ w[3] ^ w[1], 1);
        c += BitOperations.RotateLeft(d, 5) + (b ^ (e & (a ^ b))) + 0x5A827999 + w[1]; e = BitOperations.RotateLeft(e, 30);
        w[2] = BitOperations.RotateLeft(w[15] ^ w[10] ^ w[4] ^ w[2], 1);
        b += BitOperations.RotateLeft(c, 5) + (a ^ (d & (e ^ a))) + 0x5A827999 + w[2]; d = BitOperations.RotateLeft(d, 30);
        w[3] = BitOperations.RotateLeft(w[0] ^ w[11] ^ w[5] ^ w[3], 1);
        a += BitOperations.RotateLeft(b, 5) + (e ^ (c & (d ^ e))) + 0x5A827999 + w[3]; c = BitOperations.RotateLeft(c, 30);
        w[4] = BitOperations.RotateLeft(w[1] ^ w[12] ^ w[6] ^ w[4], 1);
        e += BitOperations.RotateLeft(a, 5) + (b ^ c ^ d) + 0x6ED9EBA1 + w[4]; b = BitOperations.RotateLeft(b, 30);
        w[5] = BitOperations.RotateLeft(w[2] ^ w[13] ^ w[7] ^ w[5], 1);
        d += BitOperations.RotateLeft(e, 5) + (a ^ b ^ c) + 0x6ED9EBA1 + w[5]; a = BitOperations.RotateLeft(a, 30);
        w[6] = BitOperations.RotateLeft(w[3] ^ w[14] ^ w[8] ^ w[6], 1);
        c += BitOperations.RotateLeft(d, 5) + (e ^ a ^ b) + 0x6ED9EBA1 + w[6]; e = BitOperations.RotateLeft(e, 30);
        w[7] = BitOperations.RotateLeft(w[4] ^ w[15] ^ w[9] ^ w[7], 1);
        b += BitOperations.RotateLeft(c, 5) + (d ^ e ^ a) + 0x6ED9EBA1 + w[7]; d = BitOperations.RotateLeft(d, 30);
        w[8] = BitOperations.RotateLeft(w[5] ^ w[0] ^ w[10] ^ w[8], 1);
        a += BitOperations.RotateLeft(b, 5) + (c ^ d ^ e) + 0x6ED9EBA1 + w[8]; c = BitOperations.RotateLeft(c, 30);
        w[9] = BitOperations.RotateLeft(w[6] ^ w[1] ^ w[11] ^ w[9], 1);
        e += BitOperations.RotateLeft(a, 5) + (b ^ c ^ d) + 0x6ED9EBA1 + w[9]; b = BitOperations.RotateLeft(b, 30);
        w[10] = BitOperations.RotateLeft(w[7] ^ w[2] ^ w[12] ^ w[10], 1);
        d += BitOperations.RotateLeft(e, 5) + (a ^ b ^ c) + 0x6ED9EBA1 + w[10]; a = BitOperations.RotateLeft(a, 30);
        w[11] = BitOperations.RotateLeft(w[8] ^ w[3] ^ w[13] ^ w[11], 1);
        c += BitOperations.RotateLeft(d, 5) + (e ^ a ^ b) + 0x6ED9EBA1 + w[11]; e = BitOperations.RotateLeft(e, 30);
        w[12] = BitOperations.RotateLeft(w[9] ^ w[4] ^ w[14] ^ w[12], 1);
        b += BitOperations.RotateLeft(c, 5) + (d ^ e ^ a) + 0x6ED9EBA1 + w[12]; d = BitOperations.RotateLeft(d, 30);
        w[13] = BitOperations.RotateLeft(w[10] ^ w[5] ^ w[15] ^ w[13], 1);
        a += BitOperations.RotateLeft(b, 5) + (c ^ d ^ e) + 0x6ED9EBA1 + w[13]; c = BitOperations.RotateLeft(c, 30);
        w[14] = BitOperations.RotateLeft(w[11] ^ w[6] ^ w[0] ^ w[14], 1);
        e += BitOperations.RotateLeft(a, 5) + (b ^ c ^ d) + 0x6ED9EBA1 + w[14]; b = BitOperations.RotateLeft(b, 30);
        w[15] = BitOperations.RotateLeft(w[12] ^ w[7] ^ w[1] ^ w[15], 1);
        d += BitOperations.RotateLeft(e, 5) + (a ^ b ^ c) + 0x6ED9EBA1 + w[15]; a = BitOperations.RotateLeft(a, 30);
        w[0] = BitOperations.RotateLeft(w[13] ^ w[8] ^ w[2] ^ w[0], 1);
        c += BitOperations.RotateLeft(d, 5) + (e ^ a ^ b) + 0x6ED9EBA1 + w[0]; e = BitOperations.RotateLeft(e, 30);
        w[1] = BitOperations.RotateLeft(w[14] ^ w[9] ^ w[3] ^ w[1], 1);
        b += BitOperations.RotateLeft(c, 5) + (d ^ e ^ a) + 0x6ED9EBA1 + w[1]; d = BitOperations.RotateLeft(d, 30);
        w[2] = BitOperations.RotateLeft(w[15] ^ w[10] ^ w[4] ^ w[2], 1);
        a += BitOperations.RotateLeft(b, 5) + (c ^ d ^ e) + 0x6ED9EBA1 + w[2]; c = BitOperations.RotateLeft(c, 30);
        w[3] = BitOperations.RotateLeft(w[0] ^ w[11] ^ w[5] ^ w[3], 1);
        e += BitOperations.RotateLeft(a, 5) + (b ^ c ^ d) + 0x6ED9EBA1 + w[3]; b = BitOperations.RotateLeft(b, 30);
        w[4] = BitOperations.RotateLeft(w[1] ^ w[12] ^ w[6] ^ w[4], 1);
        d += BitOperations.RotateLeft(e, 5) + (a ^ b ^ c) + 0x6ED9EBA1 + w[4]; a = BitOperations.RotateLeft(a, 30);
        w[5] = BitOperations.RotateLeft(w[2] ^ w[13] ^ w[7] ^ w[5], 1);
        c += BitOperations.RotateLeft(d, 5) + (e ^ a ^ b) + 0x6ED9EBA1 + w[5]; e = BitOperations.RotateLeft(e, 30);
        w[6] = BitOperations.RotateLeft(w[3] ^ w[14] ^ w[8] ^ w[6], 1);
        b += BitOperations.RotateLeft(c, 5) + (d ^ e ^ a) + 0x6ED9EBA1 + w[6]; d = BitOperations.RotateLeft(d, 30);
        w[7] = BitOperations.RotateLeft(w[4] ^ w[15] ^ w[9] ^ w[7], 1);
        a += BitOperations.RotateLeft(b, 5) + (c ^ d ^ e) + 0x6ED9EBA1 + w[7]; c = BitOperations.RotateLeft(c, 30);
        w[8] = BitOperations.RotateLeft(w[5] ^ w[0] ^ w[10] ^ w[8], 1);
        e += BitOperations.RotateLeft(a, 5) + ((b & c) | (d & (b | c))) + 0x8F1BBCDC + w[8]; b = BitOperations.RotateLeft(b, 30);
        w[9] = BitOperations.RotateLeft(w[6] ^ w[1] ^ w[11] ^ w[9], 1);
        d += BitOperations.RotateLeft(e, 5) + ((a & b) | (c & (a | b))) + 0x8F1BBCDC + w[9]; a = BitOperations.RotateLeft(a, 30);
        w[10] = BitOperations.RotateLeft(w[7] ^ w[2] ^ w[12] ^ w[10], 1);
        c += BitOperations.RotateLeft(d, 5) + ((e & a) | (b & (e | a))) + 0x8F1BBCDC + w[10]; e = BitOperations.RotateLeft(e, 30);
        w[11] = BitOperations.RotateLeft(w[8] ^ w[3] ^ w[13] ^ w[11], 1);
        b += BitOperations.RotateLeft(c, 5) + ((d & e) | (a & (d | e))) + 0x8F1BBCDC + w[11]; d = BitOperations.RotateLeft(d, 30);
        w[12] = BitOperations.RotateLeft(w[9] ^ w[4] ^ w[14] ^ w[12], 1);
        a += BitOperations.RotateLeft(b, 5) + ((c & d) | (e & (c | d))) + 0x8F1BBCDC + w[12]; c = BitOperations.RotateLeft(c, 30);
        w[13] = BitOperations.RotateLeft(w[10] ^ w[5] ^ w[15] ^ w[13], 1);
        e += BitOperations.RotateLeft(a, 5) + ((b & c) | (d & (b | c))) + 0x8F1BBCDC + w[13]; b = BitOperations.RotateLeft(b, 30);
        w[14] = BitOperations.RotateLeft(w[11] ^ w[6] ^ w[0] ^ w[14], 1);
        d += BitOperations.RotateLeft(e, 5) + ((a & b) | (c & (a | b))) + 0x8F1BBCDC + w[14]; a = BitOperations.RotateLeft(a, 30);
        w[15] = BitOperations.RotateLeft(w[12] ^ w[7] ^ w[1] ^ w[15], 1);
        c += BitOperations.RotateLeft(d, 5) + ((e & a) | (b & (e | a))) + 0x8F1BBCDC + w[15]; e = BitOperations.RotateLeft(e, 30);
        w[0] = BitOperations.RotateLeft(w[13] ^ w[8] ^ w[2] ^ w[0], 1);
        b += BitOperations.RotateLeft(c, 5) + ((d & e) | (a & (d | e))) + 0x8F1BBCDC + w[0]; d = BitOperations.RotateLeft(d, 30);
        w[1] = BitOperations.RotateLeft(w[14] ^ w[9] ^ w[3] ^ w[1], 1);
        a += BitOperations.RotateLeft(b, 5) + ((c & d) | (e & (c | d))) + 0x8F1BBCDC + w[1]; c = BitOperations.RotateLeft(c, 30);
        w[2] = BitOperations.RotateLeft(w[15] ^ w[10] ^ w[4] ^ w[2], 1);
        e += BitOperations.RotateLeft(a, 5) + ((b & c) | (d & (b | c))) + 0x8F1BBCDC + w[2]; b = BitOperations.RotateLeft(b, 30);
        w[3] = BitOperations.RotateLeft(w[0] ^ w[11] ^ w[5] ^ w[3], 1);
        d += BitOperations.RotateLeft(e, 5) + ((a & b) | (c & (a | b))) + 0x8F1BBCDC + w[3]; a = BitOperations.RotateLeft(a, 30);
        w[4] = BitOperations.RotateLeft(w[1] ^ w[12] ^ w[6] ^ w[4], 1);
        c += BitOperations.RotateLeft(d, 5) + ((e & a) | (b & (e | a))) + 0x8F1BBCDC + w[4]; e = BitOperations.RotateLeft(e, 30);
        w[5] = BitOperations.RotateLeft(w[2] ^ w[13] ^ w[7] ^ w[5], 1);
        b += BitOperations.RotateLeft(c, 5) + ((d & e) | (a & (d | e))) + 0x8F1BBCDC + w[5]; d = BitOperations.RotateLeft(d, 30);
        w[6] = BitOperations.RotateLeft(w[3] ^ w[14] ^ w[8] ^ w[6], 1);
        a += BitOperations.RotateLeft(b, 5) + ((c & d) | (e & (c | d))) + 0x8F1BBCDC + w[6]; c = BitOperations.RotateLeft(c, 30);
        w[7] = BitOperations.RotateLeft(w[4] ^ w[15] ^ w[9] ^ w[7], 1);
        e += BitOperations.RotateLeft(a, 5) + ((b & c) | (d & (b | c))) + 0x8F1BBCDC + w[7]; b = BitOperations.RotateLeft(b, 30);
        w[8] = BitOperations.RotateLeft(w[5] ^ w[0] ^ w[10] ^ w[8], 1);
        d += BitOperations.RotateLeft(e, 5) + ((a & b) | (c & (a | b))) + 0x8F1BBCDC + w[8]; a = BitOperations.RotateLeft(a, 30);
        w[9] = BitOperations.RotateLeft(w[6] ^ w[1] ^ w[11] ^ w[9], 1);
        c += BitOperations.RotateLeft(d, 5) + ((e & a) | (b & (e | a))) + 0x8F1BBCDC + w[9]; e = BitOperations.RotateLeft(e, 30);
        w[10] = BitOperations.RotateLeft(w[7] ^ w[2] ^ w[12] ^ w[10], 1);
        b += BitOperations.RotateLeft(c, 5) + ((d & e) | (a & (d | e))) + 0x8F1BBCDC + w[10]; d = BitOperations.RotateLeft(d, 30);
        w[11] = BitOperations.RotateLeft(w[8] ^ w[3] ^ w[13] ^ w[11], 1);
        a += BitOperations.RotateLeft(b, 5) + ((c & d) | (e & (c | d))) + 0x8F1BBCDC + w[11]; c = BitOperations.RotateLeft(c, 30);
        w[12] = BitOperations.RotateLeft(w[9] ^ w[4] ^ w[14] ^ w[12], 1);
        e += BitOperations.RotateLeft(a, 5) + (b ^ c ^ d) + 0xCA62C1D6 + w[12]; b = BitOperations.RotateLeft(b, 30);
        w[13] = BitOperations.RotateLeft(w[10] ^ w[5] ^ w[15] ^ w[13], 1);
        d += BitOperations.RotateLeft(e, 5) + (a ^ b ^ c) + 0xCA62C1D6 + w[13]; a = BitOperations.RotateLeft(a, 30);
        w[14] = BitOperations.RotateLeft(w[11] ^ w[6] ^ w[0] ^ w[14], 1);
        c += BitOperations.RotateLeft(d, 5) + (e ^ a ^ b) + 0xCA62C1D6 + w[14]; e = BitOperations.RotateLeft(e, 30);
        w[15] = BitOperations.RotateLeft(w[12] ^ w[7] ^ w[1] ^ w[15], 1);
        b += BitOperations.RotateLeft(c, 5) + (d ^ e ^ a) + 0xCA62C1D6 + w[15]; d = BitOperations.RotateLeft(d, 30);
        w[0] = BitOperations.RotateLeft(w[13] ^ w[8] ^ w[2] ^ w[0], 1);
        a += BitOperations.RotateLeft(b, 5) + (c ^ d ^ e) + 0xCA62C1D6 + w[0]; c = BitOperations.RotateLeft(c, 30);
        w[1] = BitOperations.RotateLeft(w[14] ^ w[9] ^ w[3] ^ w[1], 1);
        e += BitOperations.RotateLeft(a, 5) + (b ^ c ^ d) + 0xCA62C1D6 + w[1]; b = BitOperations.RotateLeft(b, 30);
        w[2] = BitOperations.RotateLeft(w[15] ^ w[10] ^ w[4] ^ w[2], 1);
        d += BitOperations.RotateLeft(e, 5) + (a ^ b ^ c) + 0xCA62C1D6 + w[2]; a = BitOperations.RotateLeft(a, 30);
        w[3] = BitOperations.RotateLeft(w[0] ^ w[11] ^ w[5] ^ w[3], 1);
        c += BitOperations.RotateLeft(d, 5) + (e ^ a ^ b) + 0xCA62C1D6 + w[3]; e = BitOperations.RotateLeft(e, 30);
        w[4] = BitOperations.RotateLeft(w[1] ^ w[12] ^ w[6] ^ w[4], 1);
        b += BitOperations.RotateLeft(c, 5) + (d ^ e ^ a) + 0xCA62C1D6 + w[4]; d = BitOperations.RotateLeft(d, 30);
        w[5] = BitOperations.RotateLeft(w[2] ^ w[13] ^ w[7] ^ w[5], 1);
        a += BitOperations.RotateLeft(b, 5) + (c ^ d ^ e) + 0xCA62C1D6 + w[5]; c = BitOperations.RotateLeft(c, 30);
        w[6] = BitOperations.RotateLeft(w[3] ^ w[14] ^ w[8] ^ w[6], 1);
        e += BitOperations.RotateLeft(a, 5) + (b ^ c ^ d) + 0xCA62C1D6 + w[6]; b = BitOperations.RotateLeft(b, 30);
        w[7] = BitOperations.RotateLeft(w[4] ^ w[15] ^ w[9] ^ w[7], 1);
        d += BitOperations.RotateLeft(e, 5) + (a ^ b ^ c) + 0xCA62C1D6 + w[7]; a = BitOperations.RotateLeft(a, 30);
        w[8] = BitOperations.RotateLeft(w[5] ^ w[0] ^ w[10] ^ w[8], 1);
        c += BitOperations.RotateLeft(d, 5) + (e ^ a ^ b) + 0xCA62C1D6 + w[8]; e = BitOperations.RotateLeft(e, 30);
        w[9] = BitOperations.RotateLeft(w[6] ^ w[1] ^ w[11] ^ w[9], 1);
        b += BitOperations.RotateLeft(c, 5) + (d ^ e ^ a) + 0xCA62C1D6 + w[9]; d = BitOperations.RotateLeft(d, 30);
        w[10] = BitOperations.RotateLeft(w[7] ^ w[2] ^ w[12] ^ w[10], 1);
        a += BitOperations.RotateLeft(b, 5) + (c ^ d ^ e) + 0xCA62C1D6 + w[10]; c = BitOperations.RotateLeft(c, 30);
        w[11] = BitOperations.RotateLeft(w[8] ^ w[3] ^ w[13] ^ w[11], 1);
        e += BitOperations.RotateLeft(a, 5) + (b ^ c ^ d) + 0xCA62C1D6 + w[11]; b = BitOperations.RotateLeft(b, 30);
        w[12] = BitOperations.RotateLeft(w[9] ^ w[4] ^ w[14] ^ w[12], 1);
        d += BitOperations.RotateLeft(e, 5) + (a ^ b ^ c) + 0xCA62C1D6 + w[12]; a = BitOperations.RotateLeft(a, 30);
        w[13] = BitOperations.RotateLeft(w[10] ^ w[5] ^ w[15] ^ w[13], 1);
        c += BitOperations.RotateLeft(d, 5) + (e ^ a ^ b) + 0xCA62C1D6 + w[13]; e = BitOperations.RotateLeft(e, 30);
        w[14] = BitOperations.RotateLeft(w[11] ^ w[6] ^ w[0] ^ w[14], 1);
        b += BitOperations.RotateLeft(c, 5) + (d ^ e ^ a) + 0xCA62C1D6 + w[14]; d = BitOperations.RotateLeft(d, 30);
        w[15] = BitOperations.RotateLeft(w[12] ^ w[7] ^ w[1] ^ w[15], 1);
        a += BitOperations.RotateLeft(b, 5) + (c ^ d ^ e) + 0xCA62C1D6 + w[15]; c = BitOperations.RotateLeft(c, 30);
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
