using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;
using X86Aes = System.Runtime.Intrinsics.X86.Aes;

namespace Transport.Crypto;

/// <summary>
/// AES-GCM with a 96-bit nonce and 16-byte tag (NIST SP 800-38D) on AES-NI and PCLMULQDQ: a forged packet is
/// rejected by a constant-time tag comparison instead of an exception from <see cref="AesGcm"/>, and no P/Invoke
/// is paid per packet. Used only when the CPU has AES-NI, PCLMULQDQ and SSSE3 (<see cref="IsSupported"/>);
/// otherwise callers use <see cref="AesGcm"/>. Checked against <see cref="AesGcm"/> by the tests. Shared source
/// (src/Shared), linked into Transport.Rtp (SRTP AEAD, RFC 7714) and Transport.Dtls (AES-GCM records, RFC 5288).
/// </summary>
internal sealed class GcmCipher : IDisposable
{
    private const int BlockSize = 16;
    private readonly AesCounterMode _aes;
    private readonly Vector128<byte> _hashKey; // H = AES(K, 0^128), byte-reflected
    private readonly Vector128<byte> _hashKey2, _hashKey3, _hashKey4; // H^2, H^3, H^4 for four blocks per step

    public GcmCipher(ReadOnlySpan<byte> key)
    {
        _aes = new AesCounterMode(key);
        Span<byte> h = stackalloc byte[BlockSize];
        h.Clear();
        _aes.Keystream(h, h); // counter block 0^128 encrypted: H
        _hashKey = Reflect(Vector128.Create((ReadOnlySpan<byte>)h));
        _hashKey2 = Multiply(_hashKey, _hashKey);
        _hashKey3 = Multiply(_hashKey2, _hashKey);
        _hashKey4 = Multiply(_hashKey3, _hashKey);
    }

    /// <summary>True when the intrinsics this class needs exist on the CPU.</summary>
    public static bool IsSupported => X86Aes.IsSupported && Pclmulqdq.IsSupported && Ssse3.IsSupported;

    /// <summary>Encrypts <paramref name="data"/> in place and writes the 16-byte tag.</summary>
    public void Encrypt(ReadOnlySpan<byte> nonce, Span<byte> data, Span<byte> tag, ReadOnlySpan<byte> aad) =>
        Encrypt(nonce, data, data, tag, aad);

    /// <summary>
    /// Encrypts <paramref name="plaintext"/> into <paramref name="ciphertext"/> (the same memory or not overlapping)
    /// and writes the tag (16 bytes, or fewer for a truncated tag).
    /// </summary>
    public void Encrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag, ReadOnlySpan<byte> aad)
    {
        Span<byte> counter = stackalloc byte[BlockSize];
        nonce.CopyTo(counter);
        BinaryPrimitives.WriteUInt32BigEndian(counter.Slice(12), 2);
        ciphertext = ciphertext.Slice(0, plaintext.Length);
        _aes.Transform(counter, plaintext, ciphertext);
        ComputeTag(counter, aad, ciphertext, tag);
    }

    /// <summary>
    /// Verifies <paramref name="tag"/> over <paramref name="aad"/> and <paramref name="ciphertext"/> in constant
    /// time and, when it matches, decrypts <paramref name="ciphertext"/> in place. False leaves the data unchanged.
    /// </summary>
    public bool TryDecrypt(ReadOnlySpan<byte> nonce, Span<byte> ciphertext, ReadOnlySpan<byte> tag, ReadOnlySpan<byte> aad) =>
        TryDecrypt(nonce, ciphertext, tag, ciphertext, aad);

    /// <summary>
    /// Verifies <paramref name="tag"/> in constant time and, when it matches, decrypts <paramref name="ciphertext"/>
    /// into <paramref name="plaintext"/> (the same memory or not overlapping). False writes nothing: no
    /// unauthenticated plaintext is ever released, and nothing is thrown.
    /// </summary>
    public bool TryDecrypt(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext, ReadOnlySpan<byte> aad)
    {
        Span<byte> counter = stackalloc byte[BlockSize];
        nonce.CopyTo(counter);
        Span<byte> expected = stackalloc byte[BlockSize];
        ComputeTag(counter, aad, ciphertext, expected);
        if (tag.Length == 0 || tag.Length > BlockSize || !CryptographicOperations.FixedTimeEquals(expected.Slice(0, tag.Length), tag))
        {
            return false;
        }

        // Payload keystream starts at inc32(J0). The counter kernel increments the low 16 bits, which equals the
        // 32-bit increment as long as a message stays below 65534 blocks (1 MiB), far beyond any datagram.
        BinaryPrimitives.WriteUInt32BigEndian(counter.Slice(12), 2);
        _aes.Transform(counter, ciphertext, plaintext);
        return true;
    }

    /// <summary>tag = GHASH(H, A, C) XOR AES(K, J0) with J0 = nonce || 0x00000001; <paramref name="counter"/> holds the nonce.</summary>
    private void ComputeTag(Span<byte> counter, ReadOnlySpan<byte> aad, ReadOnlySpan<byte> ciphertext, Span<byte> tag)
    {
        Vector128<byte> x = Vector128<byte>.Zero;
        x = Absorb(x, aad);
        x = Absorb(x, ciphertext);
        Span<byte> block = stackalloc byte[BlockSize];
        BinaryPrimitives.WriteUInt64BigEndian(block, (ulong)aad.Length * 8);
        BinaryPrimitives.WriteUInt64BigEndian(block.Slice(8), (ulong)ciphertext.Length * 8);
        x = Multiply(x ^ Reflect(Vector128.Create((ReadOnlySpan<byte>)block)), _hashKey);
        Reflect(x).CopyTo(block);
        BinaryPrimitives.WriteUInt32BigEndian(counter.Slice(12), 1);
        _aes.Transform(counter, block);
        block.Slice(0, tag.Length).CopyTo(tag);
    }

    private Vector128<byte> Absorb(Vector128<byte> x, ReadOnlySpan<byte> data)
    {
        Vector128<byte> h = _hashKey;
        int offset = 0;

        // Four blocks per step: X' = (X ^ B0)H^4 ^ B1 H^3 ^ B2 H^2 ^ B3 H. The four products are independent, so
        // the multiplier latency overlaps instead of chaining block after block.
        Vector128<byte> h2 = _hashKey2, h3 = _hashKey3, h4 = _hashKey4;
        for (; offset + 4 * BlockSize <= data.Length; offset += 4 * BlockSize)
        {
            Vector128<byte> b0 = Reflect(Vector128.Create(data.Slice(offset, BlockSize)));
            Vector128<byte> b1 = Reflect(Vector128.Create(data.Slice(offset + 16, BlockSize)));
            Vector128<byte> b2 = Reflect(Vector128.Create(data.Slice(offset + 32, BlockSize)));
            Vector128<byte> b3 = Reflect(Vector128.Create(data.Slice(offset + 48, BlockSize)));
            // Reduction is linear: the four 256-bit products are summed first and reduced once.
            Vector128<ulong> lo = default, mid = default, hi = default;
            MultiplyAccumulate(x ^ b0, h4, ref lo, ref mid, ref hi);
            MultiplyAccumulate(b1, h3, ref lo, ref mid, ref hi);
            MultiplyAccumulate(b2, h2, ref lo, ref mid, ref hi);
            MultiplyAccumulate(b3, h, ref lo, ref mid, ref hi);
            x = Reduce(lo, mid, hi);
        }

        for (; offset + BlockSize <= data.Length; offset += BlockSize)
        {
            x = Multiply(x ^ Reflect(Vector128.Create(data.Slice(offset, BlockSize))), h);
        }

        if (offset < data.Length)
        {
            Span<byte> last = stackalloc byte[BlockSize];
            last.Clear();
            data.Slice(offset).CopyTo(last);
            x = Multiply(x ^ Reflect(Vector128.Create((ReadOnlySpan<byte>)last)), h);
        }

        return x;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> Reflect(Vector128<byte> value) =>
        Ssse3.Shuffle(value, Vector128.Create((byte)15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));

    // Carry-less multiplication in GF(2^128) with the GCM polynomial on byte-reflected operands, followed by the
    // shift-left-by-one and reduction of Gueron and Kounavis ("Intel Carry-Less Multiplication Instruction and its
    // Usage for Computing the GCM Mode", algorithm 1 and 5).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> Multiply(Vector128<byte> a, Vector128<byte> b)
    {
        Vector128<ulong> lo = default, mid = default, hi = default;
        MultiplyAccumulate(a, b, ref lo, ref mid, ref hi);
        return Reduce(lo, mid, hi);
    }

    // The unreduced 256-bit carry-less product a * b, added (XOR) into lo, mid (the two cross terms) and hi.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAccumulate(Vector128<byte> a, Vector128<byte> b, ref Vector128<ulong> lo, ref Vector128<ulong> mid, ref Vector128<ulong> hi)
    {
        Vector128<ulong> a64 = a.AsUInt64(), b64 = b.AsUInt64();
        lo ^= Pclmulqdq.CarrylessMultiply(a64, b64, 0x00);
        mid ^= Pclmulqdq.CarrylessMultiply(a64, b64, 0x10) ^ Pclmulqdq.CarrylessMultiply(a64, b64, 0x01);
        hi ^= Pclmulqdq.CarrylessMultiply(a64, b64, 0x11);
    }

    // Folds the cross terms into the 256-bit product, shifts it left by one bit and reduces it modulo the GCM polynomial.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> Reduce(Vector128<ulong> lo, Vector128<ulong> mid, Vector128<ulong> hi)
    {
        lo ^= Sse2.ShiftLeftLogical128BitLane(mid.AsByte(), 8).AsUInt64();
        hi ^= Sse2.ShiftRightLogical128BitLane(mid.AsByte(), 8).AsUInt64();

        // Shift the 256-bit product hi:lo left by one bit.
        Vector128<uint> lo32 = lo.AsUInt32(), hi32 = hi.AsUInt32();
        Vector128<uint> carryLo = Sse2.ShiftRightLogical(lo32, 31);
        Vector128<uint> carryHi = Sse2.ShiftRightLogical(hi32, 31);
        lo32 = Sse2.ShiftLeftLogical(lo32, 1);
        hi32 = Sse2.ShiftLeftLogical(hi32, 1);
        Vector128<uint> crossing = Sse2.ShiftRightLogical128BitLane(carryLo.AsByte(), 12).AsUInt32();
        carryHi = Sse2.ShiftLeftLogical128BitLane(carryHi.AsByte(), 4).AsUInt32();
        carryLo = Sse2.ShiftLeftLogical128BitLane(carryLo.AsByte(), 4).AsUInt32();
        lo32 |= carryLo;
        hi32 |= carryHi | crossing;

        // Reduction modulo x^128 + x^7 + x^2 + x + 1.
        Vector128<uint> t = Sse2.ShiftLeftLogical(lo32, 31) ^ Sse2.ShiftLeftLogical(lo32, 30) ^ Sse2.ShiftLeftLogical(lo32, 25);
        Vector128<uint> tHigh = Sse2.ShiftRightLogical128BitLane(t.AsByte(), 4).AsUInt32();
        t = Sse2.ShiftLeftLogical128BitLane(t.AsByte(), 12).AsUInt32();
        lo32 ^= t;
        Vector128<uint> u = Sse2.ShiftRightLogical(lo32, 1) ^ Sse2.ShiftRightLogical(lo32, 2) ^ Sse2.ShiftRightLogical(lo32, 7) ^ tHigh;
        lo32 ^= u;
        return (hi32 ^ lo32).AsByte();
    }

    public void Dispose() => _aes.Dispose();
}
