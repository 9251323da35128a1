namespace Transport.Streaming.Sessions;

/// <summary>
/// A minimal VP8 encoder (RFC 6386) for test patterns: every frame is a key frame of flat 16x16 macroblocks, each
/// with one colour (Y, U, V). Each macroblock is predicted from its neighbours (DC prediction, section 12.2) and
/// carries only the DC of its residual: the luma through the second-order (Y2) block, the chroma through the DC of
/// each 4x4 block, all at quantizer index 0, where a coefficient of 8 d (luma) or 2 d (chroma) reconstructs a
/// difference of exactly d (sections 14.3 and 14.4), so the decoded frame is the colours asked for. No loop filter, no
/// probability updates, one DCT partition. Small and exact, not efficient: every frame is a key frame.
/// </summary>
public static class Vp8FlatEncoder
{
    /// <summary>
    /// Encodes one key frame of <paramref name="width"/> x <paramref name="height"/> (1-16383) whose macroblock
    /// (x, y) has the colour <paramref name="colour"/>(x, y) = (Y, U, V), for x &lt; ceil(width / 16) and
    /// y &lt; ceil(height / 16). Returns the VP8 frame (what an RTP VP8 payload carries, RFC 7741).
    /// </summary>
    public static byte[] Encode(int width, int height, Func<int, int, (byte Y, byte U, byte V)> colour)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(width, 16383);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(height, 16383);
        ArgumentNullException.ThrowIfNull(colour);
        int columns = (width + 15) / 16, rows = (height + 15) / 16;
        var header = new BoolWriter(64 + columns * rows);
        var tokens = new BoolWriter(16 * columns * rows);
        // Frame header (section 9.2-9.11, 19.2): colour space 0, clamping required, no segmentation, normal loop
        // filter at level 0 (off), no filter deltas, one partition, quantizer index 0 without deltas.
        header.Literal(0, 2);
        header.Literal(0, 1);
        header.Literal(0, 1 + 6 + 3);
        header.Literal(0, 1);
        header.Literal(0, 2);
        header.Literal(0, 7);
        header.Literal(0, 5);
        header.Literal(0, 1); // refresh_entropy_probs: 0, the defaults are kept
        for (var i = 0; i < UpdateProbabilities.Length; i++) header.Bool(false, UpdateProbabilities[i]); // no token probability update
        header.Literal(0, 1); // mb_no_coeff_skip: every macroblock codes its tokens

        // What the decoder reconstructs so far: each macroblock's (flat) colour, for the next ones' prediction.
        var reconstructed = new (int Y, int U, int V)[columns * rows];
        // Whether the Y2 block, and the U and V blocks, of each macroblock coded a coefficient (token contexts, section 13.3).
        var y2NonZero = new bool[columns * rows];
        var uNonZero = new bool[columns * rows];
        var vNonZero = new bool[columns * rows];
        for (var y = 0; y < rows; y++)
        {
            for (var x = 0; x < columns; x++)
            {
                var i = y * columns + x;
                var (ty, tu, tv) = colour(x, y);
                // Modes (section 11.2, 16.1): 16x16 luma DC_PRED, chroma DC_PRED.
                header.Bool(true, 145);
                header.Bool(false, 156);
                header.Bool(false, 163);
                header.Bool(false, 142);
                int? left = x > 0 ? i - 1 : null, above = y > 0 ? i - columns : null;
                int Predict(Func<(int Y, int U, int V), int> plane) =>
                    left is { } l && above is { } a ? (plane(reconstructed[l]) + plane(reconstructed[a]) + 1) >> 1
                    : left is { } l2 ? plane(reconstructed[l2])
                    : above is { } a2 ? plane(reconstructed[a2])
                    : 128;
                int py = Predict(c => c.Y), pu = Predict(c => c.U), pv = Predict(c => c.V);
                int dy = ty - py, du = tu - pu, dv = tv - pv;
                reconstructed[i] = (py + dy, pu + du, pv + dv);

                // Y2: the luma DC, 8 d (dequantized by 8, then (c + 3) >> 3 by the inverse WHT and (c + 4) >> 3 by the IDCT).
                var context = (left is { } ly && y2NonZero[ly] ? 1 : 0) + (above is { } ay && y2NonZero[ay] ? 1 : 0);
                y2NonZero[i] = Block(tokens, PlaneY2, context, 8 * dy);
                // The 16 luma blocks have no coefficient beyond the DC the Y2 block gave them: end of block at once.
                for (var b = 0; b < 16; b++) tokens.Bool(false, Probability(PlaneYAfterY2, 1, 0, 0));
                // Chroma: 4 blocks of U, then 4 of V, each with the DC 2 d (dequantized by 4, then (c + 4) >> 3).
                Chroma(tokens, uNonZero, i, left, above, 2 * du);
                Chroma(tokens, vNonZero, i, left, above, 2 * dv);
            }
        }
        var first = header.Finish();
        var second = tokens.Finish();
        var frame = new byte[10 + first.Length + second.Length];
        // Frame tag (section 9.1): key frame, version 0, shown, the first partition's size.
        var tag = (1 << 4) | (first.Length << 5);
        frame[0] = (byte)tag;
        frame[1] = (byte)(tag >> 8);
        frame[2] = (byte)(tag >> 16);
        frame[3] = 0x9d;
        frame[4] = 0x01;
        frame[5] = 0x2a;
        frame[6] = (byte)width;
        frame[7] = (byte)(width >> 8);
        frame[8] = (byte)height;
        frame[9] = (byte)(height >> 8);
        first.CopyTo(frame, 10);
        second.CopyTo(frame, 10 + first.Length);
        return frame;
    }

    // One chroma plane of a macroblock: 4 blocks in raster order with the same DC; their contexts come from the block
    // on the left (in this macroblock or the one on the left) and above (in this one or the one above).
    private static void Chroma(BoolWriter tokens, bool[] nonZero, int i, int? left, int? above, int value)
    {
        var coded = value != 0;
        for (var b = 0; b < 4; b++)
        {
            var fromLeft = b % 2 == 1 ? coded : left is { } l && nonZero[l];
            var fromAbove = b >= 2 ? coded : above is { } a && nonZero[a];
            Block(tokens, PlaneChroma, (fromLeft ? 1 : 0) + (fromAbove ? 1 : 0), value);
        }
        nonZero[i] = coded;
    }

    // A block whose only coefficient is its first (position 0): the token for it, its sign, then end of block; or end
    // of block at once for 0. True when a coefficient was coded.
    private static bool Block(BoolWriter w, int plane, int context, int value)
    {
        if (value == 0)
        {
            w.Bool(false, Probability(plane, 0, context, 0));
            return false;
        }
        var magnitude = Math.Min(Math.Abs(value), MaxMagnitude);
        int P(int node) => Probability(plane, 0, context, node);
        w.Bool(true, P(0));  // not the end of block
        w.Bool(true, P(1));  // not a zero
        if (magnitude == 1) w.Bool(false, P(2));
        else
        {
            w.Bool(true, P(2));
            if (magnitude <= 4)
            {
                w.Bool(false, P(3));
                if (magnitude == 2) w.Bool(false, P(4));
                else
                {
                    w.Bool(true, P(4));
                    w.Bool(magnitude == 4, P(5));
                }
            }
            else if (magnitude <= 10)
            {
                w.Bool(true, P(3));
                w.Bool(false, P(6));
                if (magnitude <= 6)
                {
                    w.Bool(false, P(7));
                    w.Bool(magnitude == 6, 159); // DCT_CAT1: 5-6
                }
                else
                {
                    w.Bool(true, P(7));        // DCT_CAT2: 7-10
                    var extra = magnitude - 7;
                    w.Bool((extra & 2) != 0, 165);
                    w.Bool((extra & 1) != 0, 145);
                }
            }
            else
            {
                w.Bool(true, P(3));
                w.Bool(true, P(6));
                var category = magnitude <= 18 ? 0 : magnitude <= 34 ? 1 : magnitude <= 66 ? 2 : 3; // DCT_CAT3-6
                w.Bool(category >= 2, P(8));
                w.Bool((category & 1) != 0, P(9 + (category >> 1)));
                var extra = magnitude - (3 + (8 << category));
                var bits = CategoryProbabilities[category];
                for (var b = 0; b < bits.Length; b++) w.Bool(((extra >> (bits.Length - 1 - b)) & 1) != 0, bits[b]);
            }
        }
        w.Bool(value < 0, 128);
        // End of block at position 1 (band 1), in the context of the token just coded: one (1) or more (2).
        w.Bool(false, Probability(plane, 1, magnitude == 1 ? 1 : 2, 0));
        return true;
    }

    private const int PlaneYAfterY2 = 0, PlaneY2 = 1, PlaneChroma = 2;
    private const int MaxMagnitude = 67 + 2047;

    private static readonly byte[][] CategoryProbabilities =
    [
        [173, 148, 140],
        [176, 155, 140, 135],
        [180, 157, 141, 134, 130],
        [254, 254, 243, 230, 196, 177, 153, 140, 133, 130, 129],
    ];

    private static byte Probability(int plane, int band, int context, int node) => DefaultProbabilities[((plane * 8 + band) * 3 + context) * 11 + node];

    // The boolean entropy encoder of section 7.3 (our own: range, bottom, bit count; carries propagate back).
    private sealed class BoolWriter(int capacity)
    {
        private readonly List<byte> _out = new(capacity);
        private uint _range = 255, _bottom;
        private int _bitCount = 24;

        public void Bool(bool value, int probability)
        {
            var split = 1 + (((_range - 1) * (uint)probability) >> 8);
            if (value)
            {
                _bottom += split;
                _range -= split;
            }
            else _range = split;
            while (_range < 128)
            {
                _range <<= 1;
                if ((_bottom & (1u << 31)) != 0) Carry();
                _bottom <<= 1;
                if (--_bitCount == 0)
                {
                    _out.Add((byte)(_bottom >> 24));
                    _bottom &= (1 << 24) - 1;
                    _bitCount = 8;
                }
            }
        }

        public void Literal(int value, int bits)
        {
            for (var b = bits - 1; b >= 0; b--) Bool(((value >> b) & 1) != 0, 128);
        }

        public byte[] Finish()
        {
            var c = _bitCount;
            var v = _bottom;
            if ((v & (1u << (32 - c))) != 0) Carry();
            v <<= c & 7;
            c >>= 3;
            while (--c >= 0) v <<= 8;
            for (c = 0; c < 4; c++)
            {
                _out.Add((byte)(v >> 24));
                v <<= 8;
            }
            return _out.ToArray();
        }

        private void Carry()
        {
            var i = _out.Count - 1;
            while (i >= 0 && _out[i] == 255) _out[i--] = 0;
            if (i >= 0) _out[i]++;
        }
    }

    // Section 13.4: the probability that each token probability is updated (read for each of ours, which never is).
    private static ReadOnlySpan<byte> UpdateProbabilities =>
    [
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        176, 246, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        223, 241, 252, 255, 255, 255, 255, 255, 255, 255, 255,
        249, 253, 253, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 244, 252, 255, 255, 255, 255, 255, 255, 255, 255,
        234, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        253, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 246, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        239, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        254, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 248, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        251, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        251, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        254, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 254, 253, 255, 254, 255, 255, 255, 255, 255, 255,
        250, 255, 254, 255, 254, 255, 255, 255, 255, 255, 255,
        254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        217, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        225, 252, 241, 253, 255, 255, 254, 255, 255, 255, 255,
        234, 250, 241, 250, 253, 255, 253, 254, 255, 255, 255,
        255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        223, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        238, 253, 254, 254, 255, 255, 255, 255, 255, 255, 255,
        255, 248, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        249, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 253, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        247, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        252, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        253, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 254, 253, 255, 255, 255, 255, 255, 255, 255, 255,
        250, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        186, 251, 250, 255, 255, 255, 255, 255, 255, 255, 255,
        234, 251, 244, 254, 255, 255, 255, 255, 255, 255, 255,
        251, 251, 243, 253, 254, 255, 254, 255, 255, 255, 255,
        255, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        236, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        251, 253, 253, 254, 254, 255, 255, 255, 255, 255, 255,
        255, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        254, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        254, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        248, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        250, 254, 252, 254, 255, 255, 255, 255, 255, 255, 255,
        248, 254, 249, 253, 255, 255, 255, 255, 255, 255, 255,
        255, 253, 253, 255, 255, 255, 255, 255, 255, 255, 255,
        246, 253, 253, 255, 255, 255, 255, 255, 255, 255, 255,
        252, 254, 251, 254, 254, 255, 255, 255, 255, 255, 255,
        255, 254, 252, 255, 255, 255, 255, 255, 255, 255, 255,
        248, 254, 253, 255, 255, 255, 255, 255, 255, 255, 255,
        253, 255, 254, 254, 255, 255, 255, 255, 255, 255, 255,
        255, 251, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        245, 251, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        253, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 251, 253, 255, 255, 255, 255, 255, 255, 255, 255,
        252, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 252, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        249, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 253, 255, 255, 255, 255, 255, 255, 255, 255,
        250, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
    ];

    // Section 13.5: the default token probabilities, [plane][band][context][node].
    private static ReadOnlySpan<byte> DefaultProbabilities =>
    [
        128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
        128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
        128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
        253, 136, 254, 255, 228, 219, 128, 128, 128, 128, 128,
        189, 129, 242, 255, 227, 213, 255, 219, 128, 128, 128,
        106, 126, 227, 252, 214, 209, 255, 255, 128, 128, 128,
        1, 98, 248, 255, 236, 226, 255, 255, 128, 128, 128,
        181, 133, 238, 254, 221, 234, 255, 154, 128, 128, 128,
        78, 134, 202, 247, 198, 180, 255, 219, 128, 128, 128,
        1, 185, 249, 255, 243, 255, 128, 128, 128, 128, 128,
        184, 150, 247, 255, 236, 224, 128, 128, 128, 128, 128,
        77, 110, 216, 255, 236, 230, 128, 128, 128, 128, 128,
        1, 101, 251, 255, 241, 255, 128, 128, 128, 128, 128,
        170, 139, 241, 252, 236, 209, 255, 255, 128, 128, 128,
        37, 116, 196, 243, 228, 255, 255, 255, 128, 128, 128,
        1, 204, 254, 255, 245, 255, 128, 128, 128, 128, 128,
        207, 160, 250, 255, 238, 128, 128, 128, 128, 128, 128,
        102, 103, 231, 255, 211, 171, 128, 128, 128, 128, 128,
        1, 152, 252, 255, 240, 255, 128, 128, 128, 128, 128,
        177, 135, 243, 255, 234, 225, 128, 128, 128, 128, 128,
        80, 129, 211, 255, 194, 224, 128, 128, 128, 128, 128,
        1, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128,
        246, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128,
        255, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
        198, 35, 237, 223, 193, 187, 162, 160, 145, 155, 62,
        131, 45, 198, 221, 172, 176, 220, 157, 252, 221, 1,
        68, 47, 146, 208, 149, 167, 221, 162, 255, 223, 128,
        1, 149, 241, 255, 221, 224, 255, 255, 128, 128, 128,
        184, 141, 234, 253, 222, 220, 255, 199, 128, 128, 128,
        81, 99, 181, 242, 176, 190, 249, 202, 255, 255, 128,
        1, 129, 232, 253, 214, 197, 242, 196, 255, 255, 128,
        99, 121, 210, 250, 201, 198, 255, 202, 128, 128, 128,
        23, 91, 163, 242, 170, 187, 247, 210, 255, 255, 128,
        1, 200, 246, 255, 234, 255, 128, 128, 128, 128, 128,
        109, 178, 241, 255, 231, 245, 255, 255, 128, 128, 128,
        44, 130, 201, 253, 205, 192, 255, 255, 128, 128, 128,
        1, 132, 239, 251, 219, 209, 255, 165, 128, 128, 128,
        94, 136, 225, 251, 218, 190, 255, 255, 128, 128, 128,
        22, 100, 174, 245, 186, 161, 255, 199, 128, 128, 128,
        1, 182, 249, 255, 232, 235, 128, 128, 128, 128, 128,
        124, 143, 241, 255, 227, 234, 128, 128, 128, 128, 128,
        35, 77, 181, 251, 193, 211, 255, 205, 128, 128, 128,
        1, 157, 247, 255, 236, 231, 255, 255, 128, 128, 128,
        121, 141, 235, 255, 225, 227, 255, 255, 128, 128, 128,
        45, 99, 188, 251, 195, 217, 255, 224, 128, 128, 128,
        1, 1, 251, 255, 213, 255, 128, 128, 128, 128, 128,
        203, 1, 248, 255, 255, 128, 128, 128, 128, 128, 128,
        137, 1, 177, 255, 224, 255, 128, 128, 128, 128, 128,
        253, 9, 248, 251, 207, 208, 255, 192, 128, 128, 128,
        175, 13, 224, 243, 193, 185, 249, 198, 255, 255, 128,
        73, 17, 171, 221, 161, 179, 236, 167, 255, 234, 128,
        1, 95, 247, 253, 212, 183, 255, 255, 128, 128, 128,
        239, 90, 244, 250, 211, 209, 255, 255, 128, 128, 128,
        155, 77, 195, 248, 188, 195, 255, 255, 128, 128, 128,
        1, 24, 239, 251, 218, 219, 255, 205, 128, 128, 128,
        201, 51, 219, 255, 196, 186, 128, 128, 128, 128, 128,
        69, 46, 190, 239, 201, 218, 255, 228, 128, 128, 128,
        1, 191, 251, 255, 255, 128, 128, 128, 128, 128, 128,
        223, 165, 249, 255, 213, 255, 128, 128, 128, 128, 128,
        141, 124, 248, 255, 255, 128, 128, 128, 128, 128, 128,
        1, 16, 248, 255, 255, 128, 128, 128, 128, 128, 128,
        190, 36, 230, 255, 236, 255, 128, 128, 128, 128, 128,
        149, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128,
        1, 226, 255, 128, 128, 128, 128, 128, 128, 128, 128,
        247, 192, 255, 128, 128, 128, 128, 128, 128, 128, 128,
        240, 128, 255, 128, 128, 128, 128, 128, 128, 128, 128,
        1, 134, 252, 255, 255, 128, 128, 128, 128, 128, 128,
        213, 62, 250, 255, 255, 128, 128, 128, 128, 128, 128,
        55, 93, 255, 128, 128, 128, 128, 128, 128, 128, 128,
        128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
        128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
        128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128,
        202, 24, 213, 235, 186, 191, 220, 160, 240, 175, 255,
        126, 38, 182, 232, 169, 184, 228, 174, 255, 187, 128,
        61, 46, 138, 219, 151, 178, 240, 170, 255, 216, 128,
        1, 112, 230, 250, 199, 191, 247, 159, 255, 255, 128,
        166, 109, 228, 252, 211, 215, 255, 174, 128, 128, 128,
        39, 77, 162, 232, 172, 180, 245, 178, 255, 255, 128,
        1, 52, 220, 246, 198, 199, 249, 220, 255, 255, 128,
        124, 74, 191, 243, 183, 193, 250, 221, 255, 255, 128,
        24, 71, 130, 219, 154, 170, 243, 182, 255, 255, 128,
        1, 182, 225, 249, 219, 240, 255, 224, 128, 128, 128,
        149, 150, 226, 252, 216, 205, 255, 171, 128, 128, 128,
        28, 108, 170, 242, 183, 194, 254, 223, 255, 255, 128,
        1, 81, 230, 252, 204, 203, 255, 192, 128, 128, 128,
        123, 102, 209, 247, 188, 196, 255, 233, 128, 128, 128,
        20, 95, 153, 243, 164, 173, 255, 203, 128, 128, 128,
        1, 222, 248, 255, 216, 213, 128, 128, 128, 128, 128,
        168, 175, 246, 252, 235, 205, 255, 255, 128, 128, 128,
        47, 116, 215, 255, 211, 212, 255, 255, 128, 128, 128,
        1, 121, 236, 253, 212, 214, 255, 255, 128, 128, 128,
        141, 84, 213, 252, 201, 202, 255, 219, 128, 128, 128,
        42, 80, 160, 240, 162, 185, 255, 205, 128, 128, 128,
        1, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128,
        244, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128,
        238, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128,
    ];
}
