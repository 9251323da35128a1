using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;
using X86Aes = System.Runtime.Intrinsics.X86.Aes;

namespace Transport.Crypto;

/// <summary>
/// AES-GCM with a 96-bit nonce and 16-byte tag (NIST SP 800-38D) on AES-NI and PCLMULQDQ: a forged packet is
/// rejected by a constant-time tag comparison instead of an exception from <see cref="AesGcm"/>, and no P/Invoke
/// is paid per packet. Used only when the CPU has AES-NI, PCLMULQDQ and SSSE3 (<see cref="IsSupported"/>);
/// otherwise callers use <see cref="AesGcm"/>. GHASH runs on the widest kernel the CPU has (<see cref="GcmKernel"/>):
/// VPCLMULQDQ on 512-bit vectors (16 blocks per reduction), on 256-bit vectors (8), else PCLMULQDQ (4). AES-CTR is
/// AES-NI with eight blocks in flight (.NET has no VAES API). No table is indexed by secret data and no branch
/// depends on it. Checked against <see cref="AesGcm"/> by the tests on every kernel. Shared source (src/Shared),
/// linked into Transport.Rtp (SRTP AEAD, RFC 7714) and Transport.Dtls (AES-GCM records, RFC 5288).
/// </summary>
internal sealed class GcmCipher : IDisposable
{
    private const int BlockSize = 16;
    private const int TableEntries = 32; // H^16..H^1, then 16 zero entries (see _powers)
    private readonly AesCounterMode _aes;
    private readonly Vector128<byte> _hashKey; // H = AES(K, 0^128), byte-reflected
    private readonly Vector128<byte> _hashKey2, _hashKey3, _hashKey4; // H^2, H^3, H^4 for four blocks per step

    // The wide kernels' key table, byte-reflected like _hashKey: entry m (16 bytes at m * 16) is H^(16 - m) for
    // m < 16 and zero for m >= 16. k blocks are hashed in one step by loading the keys from entry 16 - k: block i
    // gets H^(k - i), and lanes past the last block get a zero key (their product vanishes). Which entry is read
    // depends on the length only, never on secret data.
    private readonly byte[]? _powers;

    public GcmCipher(ReadOnlySpan<byte> key)
        : this(key, GcmKernel.Auto)
    {
    }

    /// <summary>Creates the cipher on a chosen GHASH kernel (tests and benchmarks force each one).</summary>
    /// <exception cref="PlatformNotSupportedException">The CPU lacks the instructions of <paramref name="kernel"/>.</exception>
    internal GcmCipher(ReadOnlySpan<byte> key, GcmKernel kernel)
    {
        Kernel = kernel switch
        {
            GcmKernel.Auto => Vector512Supported ? GcmKernel.Vector512 : Vector256Supported ? GcmKernel.Vector256 : GcmKernel.Vector128,
            GcmKernel.Vector512 when !Vector512Supported => throw new PlatformNotSupportedException("VPCLMULQDQ with AVX-512BW is not available."),
            GcmKernel.Vector256 when !Vector256Supported => throw new PlatformNotSupportedException("VPCLMULQDQ with AVX2 is not available."),
            _ => kernel,
        };
        if (!IsSupported)
        {
            throw new PlatformNotSupportedException("AES-NI, PCLMULQDQ and SSSE3 are not available.");
        }

        _aes = new AesCounterMode(key);
        Span<byte> h = stackalloc byte[BlockSize];
        h.Clear();
        _aes.Keystream(h, h); // counter block 0^128 encrypted: H
        _hashKey = Reflect(Vector128.Create((ReadOnlySpan<byte>)h));
        CryptographicOperations.ZeroMemory(h);
        _hashKey2 = Multiply(_hashKey, _hashKey);
        _hashKey3 = Multiply(_hashKey2, _hashKey);
        _hashKey4 = Multiply(_hashKey3, _hashKey);
        if (Kernel != GcmKernel.Vector128)
        {
            _powers = new byte[TableEntries * BlockSize];
            Vector128<byte> power = _hashKey;
            for (int m = 15; m >= 0; m--)
            {
                power.CopyTo(_powers, m * BlockSize);
                power = Multiply(power, _hashKey);
            }
        }
    }

    /// <summary>The GHASH kernel in use.</summary>
    internal GcmKernel Kernel { get; }

    /// <summary>True when the 16-blocks-per-step GHASH (VPCLMULQDQ on 512-bit vectors) can run.</summary>
    internal static bool Vector512Supported => IsSupported && Pclmulqdq.V512.IsSupported && Avx512BW.IsSupported;

    /// <summary>True when the 8-blocks-per-step GHASH (VPCLMULQDQ on 256-bit vectors) can run.</summary>
    internal static bool Vector256Supported => IsSupported && Pclmulqdq.V256.IsSupported && Avx2.IsSupported;

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
        CheckSizes(nonce, plaintext.Length);
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
        CheckSizes(nonce, ciphertext.Length);
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

    // The counter kernel increments the low 16 bits of the counter block, which equals GCM's 32-bit increment from
    // inc32(J0) = nonce || 2 up to 65535: at most 65534 blocks of payload.
    private const int MaxLength = 65534 * BlockSize;

    private static void CheckSizes(ReadOnlySpan<byte> nonce, int length)
    {
        if (nonce.Length != 12)
        {
            throw new ArgumentException("The GCM nonce is 12 bytes.", nameof(nonce));
        }

        if (length > MaxLength)
        {
            throw new ArgumentException($"At most {MaxLength} bytes per message.", nameof(length));
        }
    }

    /// <summary>tag = GHASH(H, A, C) XOR AES(K, J0) with J0 = nonce || 0x00000001; <paramref name="counter"/> holds the nonce.</summary>
    private void ComputeTag(Span<byte> counter, ReadOnlySpan<byte> aad, ReadOnlySpan<byte> ciphertext, Span<byte> tag)
    {
        Vector128<byte> x = Vector128<byte>.Zero;
        Span<byte> block = stackalloc byte[BlockSize];
        BinaryPrimitives.WriteUInt64BigEndian(block, (ulong)aad.Length * 8);
        BinaryPrimitives.WriteUInt64BigEndian(block.Slice(8), (ulong)ciphertext.Length * 8);
        switch (Kernel)
        {
            case GcmKernel.Vector512:
                // The length block rides in the ciphertext's last step (one reduction fewer).
                x = Absorb512(x, aad, default);
                x = Absorb512(x, ciphertext, block);
                break;
            case GcmKernel.Vector256:
                x = Absorb256(x, aad, default);
                x = Absorb256(x, ciphertext, block);
                break;
            default:
                x = Absorb128(x, aad);
                x = Absorb128(x, ciphertext);
                x = Multiply(x ^ Reflect(Vector128.Create((ReadOnlySpan<byte>)block)), _hashKey);
                break;
        }

        Reflect(x).CopyTo(block);
        BinaryPrimitives.WriteUInt32BigEndian(counter.Slice(12), 1);
        _aes.Transform(counter, block);
        block.Slice(0, tag.Length).CopyTo(tag);
    }

    // GHASH 16 blocks per step on 512-bit vectors (four blocks each, one per 128-bit lane): X' = (X ^ B0)H^16 ^
    // B1 H^15 ^ ... ^ B15 H. VPCLMULQDQ multiplies lane by lane; the 16 unreduced products are summed, the four
    // lanes folded into one and reduced once. The last 1..255 bytes, and the final block (none, or the length
    // block hashed after the zero-padded data), go through one step of k <= 16 blocks (two when they need 17).
    [SkipLocalsInit] // the tail buffer is cleared as far as it is read
    private Vector128<byte> Absorb512(Vector128<byte> x, ReadOnlySpan<byte> data, ReadOnlySpan<byte> final)
    {
        ref byte table = ref MemoryMarshal.GetArrayDataReference(_powers!);
        ref byte source = ref MemoryMarshal.GetReference(data);
        Vector512<byte> reflect = Vector512.Create(Vector256.Create(ReflectMask, ReflectMask), Vector256.Create(ReflectMask, ReflectMask));
        nuint length = (nuint)data.Length;
        nuint offset = 0;
        if (length >= 16 * BlockSize)
        {
            Vector512<ulong> h0 = Vector512.LoadUnsafe(ref table).AsUInt64();
            Vector512<ulong> h1 = Vector512.LoadUnsafe(ref table, 64).AsUInt64();
            Vector512<ulong> h2 = Vector512.LoadUnsafe(ref table, 128).AsUInt64();
            Vector512<ulong> h3 = Vector512.LoadUnsafe(ref table, 192).AsUInt64();
            do
            {
                ref byte block = ref Unsafe.Add(ref source, offset);
                Vector512<ulong> b0 = Avx512BW.Shuffle(Vector512.LoadUnsafe(ref block), reflect).AsUInt64() ^ Lane0(x);
                Vector512<ulong> b1 = Avx512BW.Shuffle(Vector512.LoadUnsafe(ref block, 64), reflect).AsUInt64();
                Vector512<ulong> b2 = Avx512BW.Shuffle(Vector512.LoadUnsafe(ref block, 128), reflect).AsUInt64();
                Vector512<ulong> b3 = Avx512BW.Shuffle(Vector512.LoadUnsafe(ref block, 192), reflect).AsUInt64();
                Vector512<ulong> lo = default, mid = default, hi = default;
                MultiplyAccumulate(b0, h0, ref lo, ref mid, ref hi);
                MultiplyAccumulate(b1, h1, ref lo, ref mid, ref hi);
                MultiplyAccumulate(b2, h2, ref lo, ref mid, ref hi);
                MultiplyAccumulate(b3, h3, ref lo, ref mid, ref hi);
                x = Reduce(Fold(lo), Fold(mid), Fold(hi));
                offset += 16 * BlockSize;
            }
            while (length - offset >= 16 * BlockSize);
        }

        ReadOnlySpan<byte> rest = data.Slice((int)offset);
        if (rest.Length > 15 * BlockSize && !final.IsEmpty)
        {
            x = Absorb512(x, rest, default);
            rest = default;
        }

        if (!rest.IsEmpty || !final.IsEmpty)
        {
            // k blocks left (the last data block zero-padded, as GHASH pads, then the final block): keys H^k..H^1
            // from entry 16 - k, zero keys for the lanes past block k; only the vectors that hold a block are
            // multiplied.
            int restBlocks = (rest.Length + BlockSize - 1) / BlockSize;
            int k = restBlocks + final.Length / BlockSize;
            int vectors = (k + 3) / 4;
            Span<byte> tail = stackalloc byte[16 * BlockSize];
            tail.Slice(0, vectors * 64).Clear();
            rest.CopyTo(tail);
            final.CopyTo(tail.Slice(restBlocks * BlockSize));
            ref byte tailRef = ref MemoryMarshal.GetReference(tail);
            ref byte keys = ref Unsafe.Add(ref table, (16 - k) * BlockSize);
            Vector512<ulong> lo = default, mid = default, hi = default;
            Vector512<ulong> first = Avx512BW.Shuffle(Vector512.LoadUnsafe(ref tailRef), reflect).AsUInt64() ^ Lane0(x);
            MultiplyAccumulate(first, Vector512.LoadUnsafe(ref keys).AsUInt64(), ref lo, ref mid, ref hi);
            for (nuint j = 1; j < (nuint)vectors; j++)
            {
                Vector512<ulong> b = Avx512BW.Shuffle(Vector512.LoadUnsafe(ref tailRef, j * 64), reflect).AsUInt64();
                MultiplyAccumulate(b, Vector512.LoadUnsafe(ref keys, j * 64).AsUInt64(), ref lo, ref mid, ref hi);
            }

            x = Reduce(Fold(lo), Fold(mid), Fold(hi));
        }

        return x;
    }

    // GHASH 8 blocks per step on 256-bit vectors (two blocks each), as Absorb512 with H^8..H^1 (table entries 8..15).
    [SkipLocalsInit] // the tail buffer is cleared as far as it is read
    private Vector128<byte> Absorb256(Vector128<byte> x, ReadOnlySpan<byte> data, ReadOnlySpan<byte> final)
    {
        ref byte table = ref MemoryMarshal.GetArrayDataReference(_powers!);
        ref byte source = ref MemoryMarshal.GetReference(data);
        Vector256<byte> reflect = Vector256.Create(ReflectMask, ReflectMask);
        nuint length = (nuint)data.Length;
        nuint offset = 0;
        if (length >= 8 * BlockSize)
        {
            Vector256<ulong> h0 = Vector256.LoadUnsafe(ref table, 128).AsUInt64();
            Vector256<ulong> h1 = Vector256.LoadUnsafe(ref table, 160).AsUInt64();
            Vector256<ulong> h2 = Vector256.LoadUnsafe(ref table, 192).AsUInt64();
            Vector256<ulong> h3 = Vector256.LoadUnsafe(ref table, 224).AsUInt64();
            do
            {
                ref byte block = ref Unsafe.Add(ref source, offset);
                Vector256<ulong> b0 = Avx2.Shuffle(Vector256.LoadUnsafe(ref block), reflect).AsUInt64() ^ x.AsUInt64().ToVector256();
                Vector256<ulong> b1 = Avx2.Shuffle(Vector256.LoadUnsafe(ref block, 32), reflect).AsUInt64();
                Vector256<ulong> b2 = Avx2.Shuffle(Vector256.LoadUnsafe(ref block, 64), reflect).AsUInt64();
                Vector256<ulong> b3 = Avx2.Shuffle(Vector256.LoadUnsafe(ref block, 96), reflect).AsUInt64();
                Vector256<ulong> lo = default, mid = default, hi = default;
                MultiplyAccumulate(b0, h0, ref lo, ref mid, ref hi);
                MultiplyAccumulate(b1, h1, ref lo, ref mid, ref hi);
                MultiplyAccumulate(b2, h2, ref lo, ref mid, ref hi);
                MultiplyAccumulate(b3, h3, ref lo, ref mid, ref hi);
                x = Reduce(lo.GetLower() ^ lo.GetUpper(), mid.GetLower() ^ mid.GetUpper(), hi.GetLower() ^ hi.GetUpper());
                offset += 8 * BlockSize;
            }
            while (length - offset >= 8 * BlockSize);
        }

        ReadOnlySpan<byte> rest = data.Slice((int)offset);
        if (rest.Length > 7 * BlockSize && !final.IsEmpty)
        {
            x = Absorb256(x, rest, default);
            rest = default;
        }

        if (!rest.IsEmpty || !final.IsEmpty)
        {
            int restBlocks = (rest.Length + BlockSize - 1) / BlockSize;
            int k = restBlocks + final.Length / BlockSize;
            int vectors = (k + 1) / 2;
            Span<byte> tail = stackalloc byte[8 * BlockSize];
            tail.Slice(0, vectors * 32).Clear();
            rest.CopyTo(tail);
            final.CopyTo(tail.Slice(restBlocks * BlockSize));
            ref byte tailRef = ref MemoryMarshal.GetReference(tail);
            ref byte keys = ref Unsafe.Add(ref table, (16 - k) * BlockSize);
            Vector256<ulong> lo = default, mid = default, hi = default;
            Vector256<ulong> first = Avx2.Shuffle(Vector256.LoadUnsafe(ref tailRef), reflect).AsUInt64() ^ x.AsUInt64().ToVector256();
            MultiplyAccumulate(first, Vector256.LoadUnsafe(ref keys).AsUInt64(), ref lo, ref mid, ref hi);
            for (nuint j = 1; j < (nuint)vectors; j++)
            {
                Vector256<ulong> b = Avx2.Shuffle(Vector256.LoadUnsafe(ref tailRef, j * 32), reflect).AsUInt64();
                MultiplyAccumulate(b, Vector256.LoadUnsafe(ref keys, j * 32).AsUInt64(), ref lo, ref mid, ref hi);
            }

            x = Reduce(lo.GetLower() ^ lo.GetUpper(), mid.GetLower() ^ mid.GetUpper(), hi.GetLower() ^ hi.GetUpper());
        }

        return x;
    }

    // X in lane 0 of a 512-bit vector, the other lanes zero.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ulong> Lane0(Vector128<byte> x) => x.AsUInt64().ToVector256().ToVector512();

    // The XOR of the four 128-bit lanes (the sum of four unreduced partial products).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Fold(Vector512<ulong> v)
    {
        Vector256<ulong> half = v.GetLower() ^ v.GetUpper();
        return half.GetLower() ^ half.GetUpper();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAccumulate(Vector512<ulong> a, Vector512<ulong> b, ref Vector512<ulong> lo, ref Vector512<ulong> mid, ref Vector512<ulong> hi)
    {
        lo ^= Pclmulqdq.V512.CarrylessMultiply(a, b, 0x00);
        mid ^= Pclmulqdq.V512.CarrylessMultiply(a, b, 0x10) ^ Pclmulqdq.V512.CarrylessMultiply(a, b, 0x01);
        hi ^= Pclmulqdq.V512.CarrylessMultiply(a, b, 0x11);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAccumulate(Vector256<ulong> a, Vector256<ulong> b, ref Vector256<ulong> lo, ref Vector256<ulong> mid, ref Vector256<ulong> hi)
    {
        lo ^= Pclmulqdq.V256.CarrylessMultiply(a, b, 0x00);
        mid ^= Pclmulqdq.V256.CarrylessMultiply(a, b, 0x10) ^ Pclmulqdq.V256.CarrylessMultiply(a, b, 0x01);
        hi ^= Pclmulqdq.V256.CarrylessMultiply(a, b, 0x11);
    }

    // The 128-bit kernel: four blocks per step with H..H^4 (the fallback without VPCLMULQDQ).
    private Vector128<byte> Absorb128(Vector128<byte> x, ReadOnlySpan<byte> data)
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
    private static Vector128<byte> Reflect(Vector128<byte> value) => Ssse3.Shuffle(value, ReflectMask);

    // PSHUFB control that reverses the 16 bytes of a block (of each 128-bit lane for the wide forms).
    private static Vector128<byte> ReflectMask => Vector128.Create((byte)15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);

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

    public void Dispose()
    {
        _aes.Dispose();
        if (_powers is not null)
        {
            CryptographicOperations.ZeroMemory(_powers);
        }
    }
}

/// <summary>The GHASH kernel of a <see cref="GcmCipher"/>.</summary>
internal enum GcmKernel
{
    /// <summary>The widest the CPU has: <see cref="Vector512"/>, else <see cref="Vector256"/>, else <see cref="Vector128"/>.</summary>
    Auto,

    /// <summary>PCLMULQDQ on 128-bit vectors, 4 blocks per reduction (AES-NI, PCLMULQDQ, SSSE3).</summary>
    Vector128,

    /// <summary>VPCLMULQDQ on 256-bit vectors, 8 blocks per reduction (plus AVX2).</summary>
    Vector256,

    /// <summary>VPCLMULQDQ on 512-bit vectors, 16 blocks per reduction (plus AVX-512BW).</summary>
    Vector512,
}
