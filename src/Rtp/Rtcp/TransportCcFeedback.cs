using System.Buffers.Binary;

namespace Transport.Rtp.Rtcp;

//  Transport-wide CC feedback FCI (draft-holmer-rmcat-transport-wide-cc-extensions-01 section 3.1):
//  |      base sequence number     |      packet status count      |
//  |                 reference time                | fb pkt. count |
//  |          packet chunk         |         packet chunk          |  ...
//  |         recv delta            |  recv delta   | zero padding  |
//  Reference time: signed 24 bits in 64 ms units. Receive deltas: 250 us units, one octet (unsigned, "small") or
//  two octets (signed, "large"). Chunks: run length (0 | symbol:2 | length:13) or status vector
//  (1 | S | 14 one-bit or 7 two-bit symbols). Symbols: 0 not received, 1 small delta, 2 large delta.

/// <summary>Status of one packet in transport-wide CC feedback.</summary>
/// <param name="Sequence">Transport-wide sequence number.</param>
/// <param name="Received">Whether the packet arrived.</param>
/// <param name="ArrivalMicroseconds">Arrival time in microseconds on the feedback sender's clock (reference time base).</param>
public readonly record struct TransportCcPacketStatus(ushort Sequence, bool Received, long ArrivalMicroseconds);

/// <summary>Reads and writes transport-wide congestion control feedback.</summary>
public static class TransportCcFeedback
{
    private const int DeltaUnitMicroseconds = 250;
    private const int ReferenceUnitMicroseconds = 64_000;

    /// <summary>
    /// Decodes the FCI into <paramref name="destination"/> (one entry per reported packet). False when the FCI is
    /// malformed or the destination is shorter than the packet status count.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> fci, Span<TransportCcPacketStatus> destination, out int count, out byte feedbackCount)
    {
        count = 0;
        feedbackCount = 0;
        if (fci.Length < 8)
        {
            return false;
        }

        ushort baseSequence = BinaryPrimitives.ReadUInt16BigEndian(fci);
        int statusCount = BinaryPrimitives.ReadUInt16BigEndian(fci.Slice(2));
        int reference = (fci[4] << 16) | (fci[5] << 8) | fci[6];
        if ((reference & 0x80_0000) != 0)
        {
            reference -= 0x100_0000;
        }

        feedbackCount = fci[7];
        if (statusCount > destination.Length)
        {
            return false;
        }

        // First pass: the status symbols from the chunks.
        Span<byte> symbols = statusCount <= 1024 ? stackalloc byte[statusCount] : new byte[statusCount];
        int offset = 8;
        int filled = 0;
        while (filled < statusCount)
        {
            if (offset + 2 > fci.Length)
            {
                return false;
            }

            ushort chunk = BinaryPrimitives.ReadUInt16BigEndian(fci.Slice(offset));
            offset += 2;
            if ((chunk & 0x8000) == 0)
            {
                byte symbol = (byte)((chunk >> 13) & 0x03);
                int run = chunk & 0x1FFF;
                for (int i = 0; i < run && filled < statusCount; i++)
                {
                    symbols[filled++] = symbol;
                }
            }
            else if ((chunk & 0x4000) == 0)
            {
                for (int i = 13; i >= 0 && filled < statusCount; i--)
                {
                    symbols[filled++] = (byte)((chunk >> i) & 0x01);
                }
            }
            else
            {
                for (int i = 6; i >= 0 && filled < statusCount; i--)
                {
                    symbols[filled++] = (byte)((chunk >> (2 * i)) & 0x03);
                }
            }
        }

        // Second pass: receive deltas, in order, for every received packet.
        long arrival = (long)reference * ReferenceUnitMicroseconds;
        for (int i = 0; i < statusCount; i++)
        {
            ushort sequence = (ushort)(baseSequence + i);
            switch (symbols[i])
            {
                case 0:
                    destination[i] = new TransportCcPacketStatus(sequence, false, 0);
                    break;
                case 1:
                    if (offset + 1 > fci.Length)
                    {
                        return false;
                    }

                    arrival += fci[offset++] * DeltaUnitMicroseconds;
                    destination[i] = new TransportCcPacketStatus(sequence, true, arrival);
                    break;
                case 2:
                    if (offset + 2 > fci.Length)
                    {
                        return false;
                    }

                    arrival += BinaryPrimitives.ReadInt16BigEndian(fci.Slice(offset)) * DeltaUnitMicroseconds;
                    offset += 2;
                    destination[i] = new TransportCcPacketStatus(sequence, true, arrival);
                    break;
                default:
                    return false;
            }
        }

        count = statusCount;
        return true;
    }

    /// <summary>
    /// Writes a complete RTPFB FMT=15 packet reporting <paramref name="packets"/> (consecutive sequence numbers from
    /// the first). The reference time is the first received packet's arrival rounded down to 64 ms. Returns the
    /// length or -1 when it does not fit; arrivals must not go back more than 8.19 s between received packets.
    /// </summary>
    public static int Write(Span<byte> destination, uint senderSsrc, uint mediaSsrc, byte feedbackCount, ReadOnlySpan<TransportCcPacketStatus> packets)
    {
        if (packets.IsEmpty || packets.Length > 0xFFFF)
        {
            throw new ArgumentException("Between 1 and 65535 packets.", nameof(packets));
        }

        long referenceUnits = 0;
        foreach (TransportCcPacketStatus p in packets)
        {
            if (p.Received)
            {
                referenceUnits = FloorDiv(p.ArrivalMicroseconds, ReferenceUnitMicroseconds);
                break;
            }
        }

        Span<byte> symbols = packets.Length <= 1024 ? stackalloc byte[packets.Length] : new byte[packets.Length];
        Span<short> deltas = packets.Length <= 1024 ? stackalloc short[packets.Length] : new short[packets.Length];
        long previous = referenceUnits * ReferenceUnitMicroseconds;
        int deltaBytes = 0;
        for (int i = 0; i < packets.Length; i++)
        {
            if (!packets[i].Received)
            {
                continue;
            }

            long delta = FloorDiv(packets[i].ArrivalMicroseconds - previous, DeltaUnitMicroseconds);
            if (delta is < short.MinValue or > short.MaxValue)
            {
                throw new ArgumentException("Receive delta out of range.", nameof(packets));
            }

            // Keep the running time exact in 250 us steps so rounding does not accumulate.
            previous += delta * DeltaUnitMicroseconds;
            deltas[i] = (short)delta;
            symbols[i] = delta is >= 0 and <= 255 ? (byte)1 : (byte)2;
            deltaBytes += symbols[i];
        }

        int chunkBytes = 0;
        for (int i = 0; i < packets.Length;)
        {
            i += ChunkSpan(symbols, i, out _);
            chunkBytes += 2;
        }

        int fciLength = (8 + chunkBytes + deltaBytes + 3) & ~3;
        int length = 12 + fciLength;
        if (length > destination.Length)
        {
            return -1;
        }

        RtcpPacket.WriteHeader(destination, RtcpFeedbackFormat.TransportCc, RtcpPacketType.TransportFeedback, length);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), senderSsrc);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(8), mediaSsrc);
        Span<byte> fci = destination.Slice(12, fciLength);
        fci.Clear();
        BinaryPrimitives.WriteUInt16BigEndian(fci, packets[0].Sequence);
        BinaryPrimitives.WriteUInt16BigEndian(fci.Slice(2), (ushort)packets.Length);
        int reference = (int)referenceUnits & 0xFF_FFFF;
        fci[4] = (byte)(reference >> 16);
        fci[5] = (byte)(reference >> 8);
        fci[6] = (byte)reference;
        fci[7] = feedbackCount;
        int offset = 8;
        for (int i = 0; i < packets.Length;)
        {
            int span = ChunkSpan(symbols, i, out bool runLength);
            ushort chunk;
            if (runLength)
            {
                chunk = (ushort)((symbols[i] << 13) | span);
            }
            else
            {
                chunk = 0xC000;
                for (int j = 0; j < span; j++)
                {
                    chunk |= (ushort)(symbols[i + j] << (2 * (6 - j)));
                }
            }

            BinaryPrimitives.WriteUInt16BigEndian(fci.Slice(offset), chunk);
            offset += 2;
            i += span;
        }

        for (int i = 0; i < packets.Length; i++)
        {
            if (symbols[i] == 1)
            {
                fci[offset++] = (byte)deltas[i];
            }
            else if (symbols[i] == 2)
            {
                BinaryPrimitives.WriteInt16BigEndian(fci.Slice(offset), deltas[i]);
                offset += 2;
            }
        }

        return length;
    }

    // A run of 7 or more equal symbols becomes a run-length chunk; otherwise up to 7 two-bit symbols go in a
    // status vector chunk.
    private static int ChunkSpan(ReadOnlySpan<byte> symbols, int start, out bool runLength)
    {
        int run = 1;
        while (start + run < symbols.Length && symbols[start + run] == symbols[start] && run < 0x1FFF)
        {
            run++;
        }

        runLength = run >= 7;
        return runLength ? run : Math.Min(7, symbols.Length - start);
    }

    private static long FloorDiv(long value, long divisor) => value >= 0 ? value / divisor : -((-value + divisor - 1) / divisor);
}
