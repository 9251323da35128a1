using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Transport.Ice.Stun;

/// <summary>
/// CRC-32 of ISO 3309 / ITU-T V.42 (the one of zlib and Ethernet: reflected polynomial 0xEDB88320), which
/// FINGERPRINT uses (RFC 8489 section 14.7). Slice-by-8 tables: eight bytes per step, no allocation.
/// </summary>
public static class StunCrc32
{
    private const uint Polynomial = 0xEDB88320;
    private static readonly uint[] Table = BuildTable();

    private static uint[] BuildTable()
    {
        var t = new uint[8 * 256];
        for (uint i = 0; i < 256; i++)
        {
            var c = i;
            for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? Polynomial ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        for (var i = 0; i < 256; i++)
            for (var s = 1; s < 8; s++)
                t[s * 256 + i] = (t[(s - 1) * 256 + i] >> 8) ^ t[t[(s - 1) * 256 + i] & 0xFF];
        return t;
    }

    /// <summary>The CRC-32 of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(0xFFFFFFFF, data);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        // Every index below is masked to 0..255 plus a fixed slice offset inside the 2048-entry table.
        ref var t = ref MemoryMarshal.GetArrayDataReference(Table);
        ref var p = ref MemoryMarshal.GetReference(data);
        var remaining = data.Length;
        while (remaining >= 8)
        {
            var one = BinaryPrimitives.ReadUInt32LittleEndian(MemoryMarshal.CreateReadOnlySpan(ref p, 4)) ^ crc;
            var two = BinaryPrimitives.ReadUInt32LittleEndian(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref p, 4), 4));
            crc = Unsafe.Add(ref t, 7 * 256 + (int)(one & 0xFF)) ^ Unsafe.Add(ref t, 6 * 256 + (int)((one >> 8) & 0xFF))
                ^ Unsafe.Add(ref t, 5 * 256 + (int)((one >> 16) & 0xFF)) ^ Unsafe.Add(ref t, 4 * 256 + (int)(one >> 24))
                ^ Unsafe.Add(ref t, 3 * 256 + (int)(two & 0xFF)) ^ Unsafe.Add(ref t, 2 * 256 + (int)((two >> 8) & 0xFF))
                ^ Unsafe.Add(ref t, 1 * 256 + (int)((two >> 16) & 0xFF)) ^ Unsafe.Add(ref t, (int)(two >> 24));
            p = ref Unsafe.Add(ref p, 8);
            remaining -= 8;
        }
        for (var i = 0; i < remaining; i++) crc = Unsafe.Add(ref t, (int)((crc ^ Unsafe.Add(ref p, i)) & 0xFF)) ^ (crc >> 8);
        return crc;
    }
}
