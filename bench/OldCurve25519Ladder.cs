using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Transport.Bench;

/// <summary>
/// X25519 (RFC 7748 section 5): the Montgomery ladder over GF(2^255 - 19) with field elements in five 51-bit limbs
/// and 64x64 -> 128-bit products (IMUL + MULX). Why our own: .NET has no X25519, and X25519 was the largest item
/// of a DTLS handshake's CPU time (BouncyCastle's X25519Field Mul/Sqr alone were about 40 % of a profiled
/// handshake). This ladder measured about 105 us per shared secret against BouncyCastle's 140-150 us in the same
/// run; it is used for the shared secret, while key generation keeps BouncyCastle's fixed-base multiplication,
/// which precomputed tables make faster than any ladder. Constant time: all 255 steps run, with a masked
/// conditional swap, and no branch or memory index depends on secret data. Checked against the RFC 7748 vectors
/// and against BouncyCastle on random inputs by the tests.
/// </summary>
internal static class OldCurve25519Ladder
{
    /// <summary>Bytes of a scalar, a u-coordinate and a shared secret.</summary>
    public const int Size = 32;

    private const ulong Mask51 = (1UL << 51) - 1;
    private const ulong A24 = 121665; // (486662 - 2) / 4, RFC 7748 section 5

    /// <summary>X25519(k, 9): the public key of private scalar <paramref name="scalar"/>.</summary>
    public static void ScalarMultBase(ReadOnlySpan<byte> scalar, Span<byte> publicKey)
    {
        Span<byte> nine = stackalloc byte[Size];
        nine.Clear();
        nine[0] = 9;
        ScalarMult(scalar, nine, publicKey);
    }

    /// <summary>
    /// X25519(k, u) into <paramref name="result"/> (RFC 7748 section 5). Returns false when the result is all
    /// zero (u of small order), which RFC 7748 section 6.1 lets a protocol reject and TLS does (RFC 8422 5.11).
    /// </summary>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // field arithmetic: optimized from the first handshake
    public static bool ScalarMult(ReadOnlySpan<byte> scalar, ReadOnlySpan<byte> u, Span<byte> result)
    {
        if (scalar.Length != Size || u.Length != Size || result.Length < Size) throw new ArgumentException("X25519 values are 32 bytes.");

        // decodeScalar25519: clear the 3 low bits, clear bit 255, set bit 254.
        Span<byte> k = stackalloc byte[Size];
        scalar.CopyTo(k);
        k[0] &= 248;
        k[31] &= 127;
        k[31] |= 64;

        Decode(u, out var x1);
        Fe x2 = One, z2 = default, x3 = x1, z3 = One;
        ulong swap = 0;
        for (var t = 254; t >= 0; t--)
        {
            ulong bit = (ulong)((k[t >> 3] >> (t & 7)) & 1);
            swap ^= bit;
            ConditionalSwap(ref x2, ref x3, swap);
            ConditionalSwap(ref z2, ref z3, swap);
            swap = bit;

            Add(in x2, in z2, out var a);
            Square(in a, out var aa);
            Sub(in x2, in z2, out var b);
            Square(in b, out var bb);
            Sub(in aa, in bb, out var e);
            Add(in x3, in z3, out var c);
            Sub(in x3, in z3, out var d);
            Mul(in d, in a, out var da);
            Mul(in c, in b, out var cb);
            Add(in da, in cb, out var sum);
            Square(in sum, out x3);
            Sub(in da, in cb, out var diff);
            Square(in diff, out var diff2);
            Mul(in x1, in diff2, out z3);
            Mul(in aa, in bb, out x2);
            MulA24(in e, out var a24e);
            Add(in aa, in a24e, out var t2);
            Mul(in e, in t2, out z2);
        }

        ConditionalSwap(ref x2, ref x3, swap);
        ConditionalSwap(ref z2, ref z3, swap);
        k.Clear();

        Invert(in z2, out var zInverse);
        Mul(in x2, in zInverse, out var x);
        Encode(in x, result);

        // Constant-time all-zero check.
        ulong acc = 0;
        for (var i = 0; i < Size; i++) acc |= result[i];
        return acc != 0;
    }

    private struct Fe
    {
        public ulong L0, L1, L2, L3, L4;
    }

    private static Fe One => new() { L0 = 1 };

    private static void Decode(ReadOnlySpan<byte> u, out Fe h)
    {
        // Little-endian 255-bit value; the top bit is masked (RFC 7748 section 5). Values >= p are accepted and
        // reduced by the arithmetic, as the RFC requires.
        h.L0 = BinaryPrimitives.ReadUInt64LittleEndian(u) & Mask51;
        h.L1 = (BinaryPrimitives.ReadUInt64LittleEndian(u[6..]) >> 3) & Mask51;
        h.L2 = (BinaryPrimitives.ReadUInt64LittleEndian(u[12..]) >> 6) & Mask51;
        h.L3 = (BinaryPrimitives.ReadUInt64LittleEndian(u[19..]) >> 1) & Mask51;
        h.L4 = (BinaryPrimitives.ReadUInt64LittleEndian(u[24..]) >> 12) & Mask51;
    }

    private static void Encode(in Fe f, Span<byte> output)
    {
        // Carry twice so that every limb is below 2^51 (value below 2^255), then subtract p once if value >= p:
        // q = 1 exactly when value + 19 reaches 2^255.
        ulong h0 = f.L0, h1 = f.L1, h2 = f.L2, h3 = f.L3, h4 = f.L4;
        for (var pass = 0; pass < 2; pass++)
        {
            h1 += h0 >> 51; h0 &= Mask51;
            h2 += h1 >> 51; h1 &= Mask51;
            h3 += h2 >> 51; h2 &= Mask51;
            h4 += h3 >> 51; h3 &= Mask51;
            h0 += 19 * (h4 >> 51); h4 &= Mask51;
        }

        ulong q = (h0 + 19) >> 51;
        q = (h1 + q) >> 51;
        q = (h2 + q) >> 51;
        q = (h3 + q) >> 51;
        q = (h4 + q) >> 51;
        h0 += 19 * q;
        h1 += h0 >> 51; h0 &= Mask51;
        h2 += h1 >> 51; h1 &= Mask51;
        h3 += h2 >> 51; h2 &= Mask51;
        h4 += h3 >> 51; h3 &= Mask51;
        h4 &= Mask51; // drops 2^255: together with the 19 added, p subtracted

        BinaryPrimitives.WriteUInt64LittleEndian(output, h0 | (h1 << 51));
        BinaryPrimitives.WriteUInt64LittleEndian(output[8..], (h1 >> 13) | (h2 << 38));
        BinaryPrimitives.WriteUInt64LittleEndian(output[16..], (h2 >> 26) | (h3 << 25));
        BinaryPrimitives.WriteUInt64LittleEndian(output[24..], (h3 >> 39) | (h4 << 12));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ConditionalSwap(ref Fe a, ref Fe b, ulong swap)
    {
        ulong mask = 0UL - swap;
        ulong t;
        t = mask & (a.L0 ^ b.L0); a.L0 ^= t; b.L0 ^= t;
        t = mask & (a.L1 ^ b.L1); a.L1 ^= t; b.L1 ^= t;
        t = mask & (a.L2 ^ b.L2); a.L2 ^= t; b.L2 ^= t;
        t = mask & (a.L3 ^ b.L3); a.L3 ^= t; b.L3 ^= t;
        t = mask & (a.L4 ^ b.L4); a.L4 ^= t; b.L4 ^= t;
    }

    // Limb bounds: Mul, Square and MulA24 return limbs below 2^51 + 2^13; Add of two such is below 2^53; Sub adds
    // 2p (limbs 2^52 - 38 and 2^52 - 2) before subtracting one such, so it stays positive and below 2^53. Mul and
    // Square take limbs below 2^53: products below 2^106, the column sums (terms scaled by 19 or 38 included)
    // below 2^113, which fits 128 bits; the top carry is below 2^58, so 19 times it fits 64 bits.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Add(in Fe f, in Fe g, out Fe h)
    {
        h.L0 = f.L0 + g.L0;
        h.L1 = f.L1 + g.L1;
        h.L2 = f.L2 + g.L2;
        h.L3 = f.L3 + g.L3;
        h.L4 = f.L4 + g.L4;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Sub(in Fe f, in Fe g, out Fe h)
    {
        h.L0 = f.L0 + 0xFFFFFFFFFFFDAUL - g.L0;
        h.L1 = f.L1 + 0xFFFFFFFFFFFFEUL - g.L1;
        h.L2 = f.L2 + 0xFFFFFFFFFFFFEUL - g.L2;
        h.L3 = f.L3 + 0xFFFFFFFFFFFFEUL - g.L3;
        h.L4 = f.L4 + 0xFFFFFFFFFFFFEUL - g.L4;
    }

    // 128-bit column sums are kept as two ulongs (low product by IMUL, high by MULX) with a branch-free add-with-carry:
    // UInt128 and Math.BigMul(..., out low) made the JIT spill every product and measured two to three times slower.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MulAdd(ref ulong lo, ref ulong hi, ulong a, ulong b)
    {
        ulong l = a * b;
        ulong h = High(a, b);
        lo += l;
        hi += h + (lo < l ? 1UL : 0UL);
    }

    // The high half alone: MULX with no memory operand.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong High(ulong a, ulong b) => Bmi2.X64.IsSupported ? Bmi2.X64.MultiplyNoFlags(a, b) : Math.BigMul(a, b, out _);


    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Low51(ulong lo) => lo & Mask51;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Shift51(ulong lo, ulong hi) => (lo >> 51) | (hi << 13);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddCarry(ref ulong lo, ref ulong hi, ulong carry)
    {
        lo += carry;
        hi += lo < carry ? 1UL : 0UL;
    }

    // Columns are summed one at a time and carried into the next at once, so only one 128-bit accumulator and the
    // carry are live (ten accumulators at once made the JIT spill them all).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // field arithmetic: optimized from the first handshake
    private static void Mul(in Fe f, in Fe g, out Fe h)
    {
        ulong f0 = f.L0, f1 = f.L1, f2 = f.L2, f3 = f.L3, f4 = f.L4;
        ulong g0 = g.L0, g1 = g.L1, g2 = g.L2, g3 = g.L3, g4 = g.L4;

        // 2^255 = 19 (mod p): limb products that land at or above 2^255 wrap around multiplied by 19.
        ulong lo = f0 * g0, hi = High(f0, g0);
        MulAdd(ref lo, ref hi, f1, g4 * 19); MulAdd(ref lo, ref hi, f2, g3 * 19); MulAdd(ref lo, ref hi, f3, g2 * 19); MulAdd(ref lo, ref hi, f4, g1 * 19);
        ulong r0 = lo & Mask51;
        lo = Shift51(lo, hi); hi = 0;
        MulAdd(ref lo, ref hi, f0, g1); MulAdd(ref lo, ref hi, f1, g0); MulAdd(ref lo, ref hi, f2, g4 * 19); MulAdd(ref lo, ref hi, f3, g3 * 19);
        MulAdd(ref lo, ref hi, f4, g2 * 19);
        ulong r1 = lo & Mask51;
        lo = Shift51(lo, hi); hi = 0;
        MulAdd(ref lo, ref hi, f0, g2); MulAdd(ref lo, ref hi, f1, g1); MulAdd(ref lo, ref hi, f2, g0); MulAdd(ref lo, ref hi, f3, g4 * 19);
        MulAdd(ref lo, ref hi, f4, g3 * 19);
        ulong r2 = lo & Mask51;
        lo = Shift51(lo, hi); hi = 0;
        MulAdd(ref lo, ref hi, f0, g3); MulAdd(ref lo, ref hi, f1, g2); MulAdd(ref lo, ref hi, f2, g1); MulAdd(ref lo, ref hi, f3, g0);
        MulAdd(ref lo, ref hi, f4, g4 * 19);
        ulong r3 = lo & Mask51;
        lo = Shift51(lo, hi); hi = 0;
        MulAdd(ref lo, ref hi, f0, g4); MulAdd(ref lo, ref hi, f1, g3); MulAdd(ref lo, ref hi, f2, g2); MulAdd(ref lo, ref hi, f3, g1);
        MulAdd(ref lo, ref hi, f4, g0);
        Finish(r0, r1, r2, r3, lo, hi, out h);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // field arithmetic: optimized from the first handshake
    private static void Square(in Fe f, out Fe h)
    {
        ulong f0 = f.L0, f1 = f.L1, f2 = f.L2, f3 = f.L3, f4 = f.L4;
        ulong lo = f0 * f0, hi = High(f0, f0);
        MulAdd(ref lo, ref hi, f1, f4 * 38); MulAdd(ref lo, ref hi, f2, f3 * 38);
        ulong r0 = lo & Mask51;
        lo = Shift51(lo, hi); hi = 0;
        MulAdd(ref lo, ref hi, 2 * f0, f1); MulAdd(ref lo, ref hi, f2, f4 * 38); MulAdd(ref lo, ref hi, f3, f3 * 19);
        ulong r1 = lo & Mask51;
        lo = Shift51(lo, hi); hi = 0;
        MulAdd(ref lo, ref hi, 2 * f0, f2); MulAdd(ref lo, ref hi, f1, f1); MulAdd(ref lo, ref hi, f3, f4 * 38);
        ulong r2 = lo & Mask51;
        lo = Shift51(lo, hi); hi = 0;
        MulAdd(ref lo, ref hi, 2 * f0, f3); MulAdd(ref lo, ref hi, 2 * f1, f2); MulAdd(ref lo, ref hi, f4, f4 * 19);
        ulong r3 = lo & Mask51;
        lo = Shift51(lo, hi); hi = 0;
        MulAdd(ref lo, ref hi, 2 * f0, f4); MulAdd(ref lo, ref hi, 2 * f1, f3); MulAdd(ref lo, ref hi, f2, f2);
        Finish(r0, r1, r2, r3, lo, hi, out h);
    }

    /// <summary>Last column: its carry wraps to limb 0 times 19, and limb 0's carry goes into limb 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish(ulong r0, ulong r1, ulong r2, ulong r3, ulong lo, ulong hi, out Fe h)
    {
        ulong r4 = lo & Mask51;
        r0 += Shift51(lo, hi) * 19;
        r1 += r0 >> 51;
        h.L0 = r0 & Mask51;
        h.L1 = r1;
        h.L2 = r2;
        h.L3 = r3;
        h.L4 = r4;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Carry(ulong l0, ulong h0, ulong l1, ulong h1, ulong l2, ulong h2, ulong l3, ulong h3, ulong l4, ulong h4, out Fe h)
    {
        AddCarry(ref l1, ref h1, Shift51(l0, h0));
        ulong r0 = Low51(l0);
        AddCarry(ref l2, ref h2, Shift51(l1, h1));
        ulong r1 = Low51(l1);
        AddCarry(ref l3, ref h3, Shift51(l2, h2));
        ulong r2 = Low51(l2);
        AddCarry(ref l4, ref h4, Shift51(l3, h3));
        ulong r3 = Low51(l3);
        Finish(r0, r1, r2, r3, l4, h4, out h);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // field arithmetic: optimized from the first handshake
    private static void MulA24(in Fe f, out Fe h)
    {
        ulong l0 = f.L0 * A24, h0 = High(f.L0, A24), l1 = f.L1 * A24, h1 = High(f.L1, A24);
        ulong l2 = f.L2 * A24, h2 = High(f.L2, A24), l3 = f.L3 * A24, h3 = High(f.L3, A24);
        ulong l4 = f.L4 * A24, h4 = High(f.L4, A24);
        Carry(l0, h0, l1, h1, l2, h2, l3, h3, l4, h4, out h);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SquareTimes(in Fe f, int times, out Fe h)
    {
        Square(in f, out h);
        for (var i = 1; i < times; i++) Square(in h, out h);
    }

    /// <summary>z^(p-2) = z^(2^255 - 21) (Fermat), by the usual chain of 254 squarings and 11 multiplications.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // field arithmetic: optimized from the first handshake
    private static void Invert(in Fe z, out Fe result)
    {
        Square(in z, out var z2);                 // z^2
        SquareTimes(in z2, 2, out var t);         // z^8
        Mul(in t, in z, out var z9);              // z^9
        Mul(in z9, in z2, out var z11);           // z^11
        Square(in z11, out t);                    // z^22
        Mul(in t, in z9, out var z5);             // z^(2^5 - 1)
        SquareTimes(in z5, 5, out t);
        Mul(in t, in z5, out var z10);            // z^(2^10 - 1)
        SquareTimes(in z10, 10, out t);
        Mul(in t, in z10, out var z20);           // z^(2^20 - 1)
        SquareTimes(in z20, 20, out t);
        Mul(in t, in z20, out var z40);           // z^(2^40 - 1)
        SquareTimes(in z40, 10, out t);
        Mul(in t, in z10, out var z50);           // z^(2^50 - 1)
        SquareTimes(in z50, 50, out t);
        Mul(in t, in z50, out var z100);          // z^(2^100 - 1)
        SquareTimes(in z100, 100, out t);
        Mul(in t, in z100, out var z200);         // z^(2^200 - 1)
        SquareTimes(in z200, 50, out t);
        Mul(in t, in z50, out var z250);          // z^(2^250 - 1)
        SquareTimes(in z250, 5, out t);           // z^(2^255 - 32)
        Mul(in t, in z11, out result);            // z^(2^255 - 21)
    }
}
