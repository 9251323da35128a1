using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;
using SysAes = System.Security.Cryptography.Aes;
using X86Aes = System.Runtime.Intrinsics.X86.Aes;

namespace Transport.Crypto;

/// <summary>
/// AES in counter mode as SRTP uses it (RFC 3711 section 4.1.1): block i of the keystream is
/// AES(key, IV + i) where only the low 16 bits of the counter block are incremented (modulo 2^16).
/// Uses AES-NI when the CPU has it (eight blocks in flight); otherwise .NET's one-shot ECB encrypts a buffer of
/// counter blocks. (VAES, AES on 256/512-bit vectors, has no .NET API: <c>System.Runtime.Intrinsics.X86.Aes</c>
/// takes <c>Vector128</c> only, .NET 10.)
/// </summary>
internal sealed class AesCounterMode : IDisposable
{
    private const int BlockSize = 16;
    private readonly Vector128<byte>[]? _roundKeys;
    private readonly int _rounds;
    private readonly SysAes? _portable;
    private byte[] _counterBlocks = [];
    private byte[] _keystream = [];

    /// <summary>Creates a cipher for a 16- or 32-byte key.</summary>
    /// <param name="key">The AES key.</param>
    /// <param name="allowIntrinsics">False forces the portable path (used by tests to check both paths).</param>
    public AesCounterMode(ReadOnlySpan<byte> key, bool allowIntrinsics = true)
    {
        _rounds = AesKeySchedule.Rounds(key.Length);
        if (allowIntrinsics && X86Aes.IsSupported && Sse2.IsSupported)
        {
            byte[] expanded = AesKeySchedule.Expand(key);
            _roundKeys = new Vector128<byte>[_rounds + 1];
            for (int i = 0; i <= _rounds; i++)
            {
                _roundKeys[i] = Vector128.Create(expanded, i * BlockSize);
            }

            CryptographicOperations.ZeroMemory(expanded);
        }
        else
        {
            _portable = SysAes.Create();
            _portable.Key = key.ToArray();
        }
    }

    /// <summary>True when the AES-NI kernel is in use.</summary>
    public bool UsesIntrinsics => _roundKeys is not null;

    /// <summary>XORs the keystream that starts at counter block <paramref name="iv"/> into <paramref name="data"/>.</summary>
    public void Transform(ReadOnlySpan<byte> iv, Span<byte> data) => Transform(iv, data, data);

    /// <summary>
    /// Writes <paramref name="source"/> XOR the keystream that starts at counter block <paramref name="iv"/> into
    /// <paramref name="destination"/> (at least as long). The two are either the same memory (in place) or do not
    /// overlap.
    /// </summary>
    public void Transform(ReadOnlySpan<byte> iv, ReadOnlySpan<byte> source, Span<byte> destination)
    {
        if (iv.Length != BlockSize)
        {
            throw new ArgumentException("The counter block is 16 bytes.", nameof(iv));
        }

        if (destination.Length < source.Length)
        {
            throw new ArgumentException("The destination is shorter than the source.", nameof(destination));
        }

        if (source.IsEmpty)
        {
            return;
        }

        destination = destination.Slice(0, source.Length);
        if (_roundKeys is not null)
        {
            if (_rounds == 10)
            {
                TransformAes128(iv, source, destination);
            }
            else
            {
                TransformGeneric(iv, source, destination);
            }
        }
        else
        {
            source.CopyTo(destination);
            TransformPortable(iv, destination);
        }
    }

    /// <summary>Writes the raw keystream (used by key derivation, RFC 3711 section 4.3.3).</summary>
    public void Keystream(ReadOnlySpan<byte> iv, Span<byte> destination)
    {
        destination.Clear();
        Transform(iv, destination);
    }

    private void TransformAes128(ReadOnlySpan<byte> iv, ReadOnlySpan<byte> source, Span<byte> data)
    {
        Vector128<byte>[] rk = _roundKeys!;
        Vector128<byte> k0 = rk[0], k1 = rk[1], k2 = rk[2], k3 = rk[3], k4 = rk[4], k5 = rk[5];
        Vector128<byte> k6 = rk[6], k7 = rk[7], k8 = rk[8], k9 = rk[9], k10 = rk[10];
        Vector128<ushort> counterBase = Vector128.Create(iv).AsUInt16();
        ushort counter = BinaryPrimitives.ReadUInt16BigEndian(iv.Slice(14));
        ref byte dataRef = ref MemoryMarshal.GetReference(data);
        ref byte sourceRef = ref MemoryMarshal.GetReference(source);
        nuint length = (nuint)data.Length;
        nuint offset = 0;

        // Eight independent blocks in flight: AESENC has a latency of about four cycles and the cores here issue
        // two a cycle, so eight blocks keep both AES units busy (four kept them half idle).
        while (length - offset >= 8 * BlockSize)
        {
            Vector128<byte> b0 = Sse2.Xor(CounterBlock(counterBase, counter), k0);
            Vector128<byte> b1 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 1)), k0);
            Vector128<byte> b2 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 2)), k0);
            Vector128<byte> b3 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 3)), k0);
            Vector128<byte> b4 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 4)), k0);
            Vector128<byte> b5 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 5)), k0);
            Vector128<byte> b6 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 6)), k0);
            Vector128<byte> b7 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 7)), k0);
            counter += 8;
            Round8(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k1);
            Round8(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k2);
            Round8(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k3);
            Round8(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k4);
            Round8(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k5);
            Round8(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k6);
            Round8(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k7);
            Round8(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k8);
            Round8(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, k9);
            Store8(ref sourceRef, ref dataRef, offset, b0, b1, b2, b3, b4, b5, b6, b7, k10);
            offset += 8 * BlockSize;
        }

        // Then four at a time, then one.
        while (length - offset >= 4 * BlockSize)
        {
            Vector128<byte> b0 = Sse2.Xor(CounterBlock(counterBase, counter), k0);
            Vector128<byte> b1 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 1)), k0);
            Vector128<byte> b2 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 2)), k0);
            Vector128<byte> b3 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 3)), k0);
            counter += 4;
            Round4(ref b0, ref b1, ref b2, ref b3, k1);
            Round4(ref b0, ref b1, ref b2, ref b3, k2);
            Round4(ref b0, ref b1, ref b2, ref b3, k3);
            Round4(ref b0, ref b1, ref b2, ref b3, k4);
            Round4(ref b0, ref b1, ref b2, ref b3, k5);
            Round4(ref b0, ref b1, ref b2, ref b3, k6);
            Round4(ref b0, ref b1, ref b2, ref b3, k7);
            Round4(ref b0, ref b1, ref b2, ref b3, k8);
            Round4(ref b0, ref b1, ref b2, ref b3, k9);
            b0 = X86Aes.EncryptLast(b0, k10);
            b1 = X86Aes.EncryptLast(b1, k10);
            b2 = X86Aes.EncryptLast(b2, k10);
            b3 = X86Aes.EncryptLast(b3, k10);
            ref byte p = ref Unsafe.Add(ref dataRef, offset);
            ref byte q = ref Unsafe.Add(ref sourceRef, offset);
            Vector128.StoreUnsafe(Sse2.Xor(b0, Vector128.LoadUnsafe(ref q)), ref p);
            Vector128.StoreUnsafe(Sse2.Xor(b1, Vector128.LoadUnsafe(ref q, 16)), ref p, 16);
            Vector128.StoreUnsafe(Sse2.Xor(b2, Vector128.LoadUnsafe(ref q, 32)), ref p, 32);
            Vector128.StoreUnsafe(Sse2.Xor(b3, Vector128.LoadUnsafe(ref q, 48)), ref p, 48);
            offset += 4 * BlockSize;
        }

        while (offset < length)
        {
            Vector128<byte> b = Sse2.Xor(CounterBlock(counterBase, counter), k0);
            counter++;
            b = X86Aes.Encrypt(b, k1);
            b = X86Aes.Encrypt(b, k2);
            b = X86Aes.Encrypt(b, k3);
            b = X86Aes.Encrypt(b, k4);
            b = X86Aes.Encrypt(b, k5);
            b = X86Aes.Encrypt(b, k6);
            b = X86Aes.Encrypt(b, k7);
            b = X86Aes.Encrypt(b, k8);
            b = X86Aes.Encrypt(b, k9);
            b = X86Aes.EncryptLast(b, k10);
            offset = XorBlock(ref sourceRef, ref dataRef, offset, length, b);
        }
    }

    private void TransformGeneric(ReadOnlySpan<byte> iv, ReadOnlySpan<byte> source, Span<byte> data)
    {
        Vector128<byte>[] rk = _roundKeys!;
        Vector128<ushort> counterBase = Vector128.Create(iv).AsUInt16();
        ushort counter = BinaryPrimitives.ReadUInt16BigEndian(iv.Slice(14));
        ref byte dataRef = ref MemoryMarshal.GetReference(data);
        ref byte sourceRef = ref MemoryMarshal.GetReference(source);
        nuint length = (nuint)data.Length;
        nuint offset = 0;
        int rounds = _rounds;
        while (length - offset >= 8 * BlockSize)
        {
            Vector128<byte> k = rk[0];
            Vector128<byte> b0 = Sse2.Xor(CounterBlock(counterBase, counter), k);
            Vector128<byte> b1 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 1)), k);
            Vector128<byte> b2 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 2)), k);
            Vector128<byte> b3 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 3)), k);
            Vector128<byte> b4 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 4)), k);
            Vector128<byte> b5 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 5)), k);
            Vector128<byte> b6 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 6)), k);
            Vector128<byte> b7 = Sse2.Xor(CounterBlock(counterBase, (ushort)(counter + 7)), k);
            counter += 8;
            for (int r = 1; r < rounds; r++)
            {
                Round8(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7, rk[r]);
            }

            Store8(ref sourceRef, ref dataRef, offset, b0, b1, b2, b3, b4, b5, b6, b7, rk[rounds]);
            offset += 8 * BlockSize;
        }

        while (offset < length)
        {
            Vector128<byte> b = Sse2.Xor(CounterBlock(counterBase, counter), rk[0]);
            counter++;
            for (int r = 1; r < _rounds; r++)
            {
                b = X86Aes.Encrypt(b, rk[r]);
            }

            b = X86Aes.EncryptLast(b, rk[_rounds]);
            offset = XorBlock(ref sourceRef, ref dataRef, offset, length, b);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nuint XorBlock(ref byte sourceRef, ref byte dataRef, nuint offset, nuint length, Vector128<byte> keystream)
    {
        ref byte p = ref Unsafe.Add(ref dataRef, offset);
        ref byte q = ref Unsafe.Add(ref sourceRef, offset);
        if (length - offset >= BlockSize)
        {
            Vector128.StoreUnsafe(Sse2.Xor(keystream, Vector128.LoadUnsafe(ref q)), ref p);
            return offset + BlockSize;
        }

        Span<byte> tail = stackalloc byte[BlockSize];
        keystream.CopyTo(tail);
        int remaining = (int)(length - offset);
        for (int i = 0; i < remaining; i++)
        {
            Unsafe.Add(ref p, i) = (byte)(Unsafe.Add(ref q, i) ^ tail[i]);
        }

        return length;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> CounterBlock(Vector128<ushort> counterBase, ushort counter) =>
        counterBase.WithElement(7, BinaryPrimitives.ReverseEndianness(counter)).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Round8(
        ref Vector128<byte> b0, ref Vector128<byte> b1, ref Vector128<byte> b2, ref Vector128<byte> b3,
        ref Vector128<byte> b4, ref Vector128<byte> b5, ref Vector128<byte> b6, ref Vector128<byte> b7,
        Vector128<byte> key)
    {
        b0 = X86Aes.Encrypt(b0, key);
        b1 = X86Aes.Encrypt(b1, key);
        b2 = X86Aes.Encrypt(b2, key);
        b3 = X86Aes.Encrypt(b3, key);
        b4 = X86Aes.Encrypt(b4, key);
        b5 = X86Aes.Encrypt(b5, key);
        b6 = X86Aes.Encrypt(b6, key);
        b7 = X86Aes.Encrypt(b7, key);
    }

    // The last round of eight blocks, XORed into 128 bytes of the source and written to the destination.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store8(
        ref byte sourceRef, ref byte dataRef, nuint offset,
        Vector128<byte> b0, Vector128<byte> b1, Vector128<byte> b2, Vector128<byte> b3,
        Vector128<byte> b4, Vector128<byte> b5, Vector128<byte> b6, Vector128<byte> b7, Vector128<byte> lastKey)
    {
        ref byte p = ref Unsafe.Add(ref dataRef, offset);
        ref byte q = ref Unsafe.Add(ref sourceRef, offset);
        Vector128.StoreUnsafe(Sse2.Xor(X86Aes.EncryptLast(b0, lastKey), Vector128.LoadUnsafe(ref q)), ref p);
        Vector128.StoreUnsafe(Sse2.Xor(X86Aes.EncryptLast(b1, lastKey), Vector128.LoadUnsafe(ref q, 16)), ref p, 16);
        Vector128.StoreUnsafe(Sse2.Xor(X86Aes.EncryptLast(b2, lastKey), Vector128.LoadUnsafe(ref q, 32)), ref p, 32);
        Vector128.StoreUnsafe(Sse2.Xor(X86Aes.EncryptLast(b3, lastKey), Vector128.LoadUnsafe(ref q, 48)), ref p, 48);
        Vector128.StoreUnsafe(Sse2.Xor(X86Aes.EncryptLast(b4, lastKey), Vector128.LoadUnsafe(ref q, 64)), ref p, 64);
        Vector128.StoreUnsafe(Sse2.Xor(X86Aes.EncryptLast(b5, lastKey), Vector128.LoadUnsafe(ref q, 80)), ref p, 80);
        Vector128.StoreUnsafe(Sse2.Xor(X86Aes.EncryptLast(b6, lastKey), Vector128.LoadUnsafe(ref q, 96)), ref p, 96);
        Vector128.StoreUnsafe(Sse2.Xor(X86Aes.EncryptLast(b7, lastKey), Vector128.LoadUnsafe(ref q, 112)), ref p, 112);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Round4(
        ref Vector128<byte> b0, ref Vector128<byte> b1, ref Vector128<byte> b2, ref Vector128<byte> b3,
        Vector128<byte> key)
    {
        b0 = X86Aes.Encrypt(b0, key);
        b1 = X86Aes.Encrypt(b1, key);
        b2 = X86Aes.Encrypt(b2, key);
        b3 = X86Aes.Encrypt(b3, key);
    }

    private void TransformPortable(ReadOnlySpan<byte> iv, Span<byte> data)
    {
        int blocks = (data.Length + BlockSize - 1) / BlockSize;
        int needed = blocks * BlockSize;
        if (_counterBlocks.Length < needed)
        {
            // Grows once to the largest packet seen; steady state does not allocate.
            _counterBlocks = new byte[Math.Max(needed, 2048)];
            _keystream = new byte[_counterBlocks.Length];
        }

        ushort counter = BinaryPrimitives.ReadUInt16BigEndian(iv.Slice(14));
        for (int i = 0; i < blocks; i++)
        {
            Span<byte> block = _counterBlocks.AsSpan(i * BlockSize, BlockSize);
            iv.CopyTo(block);
            BinaryPrimitives.WriteUInt16BigEndian(block.Slice(14), (ushort)(counter + i));
        }

        _portable!.EncryptEcb(_counterBlocks.AsSpan(0, needed), _keystream.AsSpan(0, needed), PaddingMode.None);
        ReadOnlySpan<byte> keystream = _keystream.AsSpan(0, data.Length);
        int offset = 0;
        if (Vector128.IsHardwareAccelerated)
        {
            for (; offset + BlockSize <= data.Length; offset += BlockSize)
            {
                Vector128<byte> x = Vector128.Create((ReadOnlySpan<byte>)data.Slice(offset)) ^ Vector128.Create(keystream.Slice(offset));
                x.CopyTo(data.Slice(offset));
            }
        }

        for (; offset < data.Length; offset++)
        {
            data[offset] ^= keystream[offset];
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _portable?.Dispose();
        if (_roundKeys is not null)
        {
            Array.Clear(_roundKeys);
        }
    }
}
