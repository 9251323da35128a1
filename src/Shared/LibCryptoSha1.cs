using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Transport.Crypto;

/// <summary>
/// The SHA-1 functions of OpenSSL's libcrypto (SHA1_Init, SHA1_Update, SHA1_Final, SHA1_Transform), called
/// directly through function pointers. Why: .NET has no SHA-NI intrinsics on x86, so a managed SHA-1 costs about
/// 200 ns per 64-byte block, and the platform's <c>IncrementalHash</c>/<c>HMACSHA1</c> reach OpenSSL through
/// its EVP layer, whose per-call overhead (provider lookups, context copies) costs more than the hash of a
/// 100-byte STUN message. libcrypto's own block function uses SHA-NI when the CPU has it (about 40 ns per
/// block on the AMD EPYC this was measured on), and on Linux .NET has already loaded the very same library
/// for its own cryptography, so this adds no dependency.
/// <para>
/// The calls are <c>SuppressGCTransition</c>: they are short (at most about 1 us for a 1.2 KB packet), never
/// block and never call back into managed code, which is what that attribute requires; it saves the
/// cooperative-to-preemptive switch that would otherwise cost more than the hash of one block.
/// </para>
/// <para>
/// When the library or a symbol is missing (Windows, macOS, a libcrypto built without the legacy SHA1_*
/// API) or the self-test fails, <see cref="IsAvailable"/> is false and callers use their fallback.
/// </para>
/// </summary>
internal static unsafe class LibCryptoSha1
{
    /// <summary>Library names tried in order: OpenSSL 3 first, then 1.1 (same SHA_CTX layout).</summary>
    internal static readonly string[] LibraryNames = ["libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so"];

    private static readonly Functions s_functions = Load(LibraryNames);

    /// <summary>True when libcrypto's SHA-1 was found and passed its self-test.</summary>
    public static bool IsAvailable => s_functions.IsValid;

    /// <summary>The library the functions came from (diagnostics and docs), or null.</summary>
    public static string? LibraryName => s_functions.LibraryName;

    /// <summary>SHA1_Init: the initial state (FIPS 180-4 section 5.3.1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Init(Sha1Context* context) => s_functions.Init(context);

    /// <summary>SHA1_Update: absorbs <paramref name="length"/> bytes (full blocks hashed at once, the rest buffered).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Update(Sha1Context* context, byte* data, nuint length) => s_functions.Update(context, data, length);

    /// <summary>SHA1_Final: pads, hashes the last block(s) and writes the 20-byte digest.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Final(byte* digest, Sha1Context* context) => s_functions.Final(digest, context);

    /// <summary>SHA1_Transform: one compression of a 64-byte block into the chaining value (no length kept).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Transform(Sha1Context* context, byte* block) => s_functions.Transform(context, block);

    /// <summary>
    /// Copies a hash state. Not inlined on purpose: the JIT copies these 128 bytes with 256-bit AVX moves, and a
    /// method that used 256-bit registers ends with VZEROUPPER. Had the copy been inlined into the caller, the
    /// upper register halves would still be dirty when libcrypto's SHA-NI code (legacy SSE encoding) runs, and the
    /// SSE/AVX transition penalty measured about 250 ns per HMAC here (a SuppressGCTransition call gets no
    /// VZEROUPPER from a transition stub). Whatever a caller does, the native calls below therefore never follow
    /// 256-bit code in the same method.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Copy(in Sha1Context source, out Sha1Context destination) => destination = source;

    /// <summary>
    /// Loads the four functions from the first of <paramref name="names"/> that has them all and checks them on
    /// the FIPS 180-2 "abc" vector and on a two-block message through Transform; returns an invalid set otherwise.
    /// Internal so that tests can exercise the missing-library and missing-symbol paths.
    /// </summary>
    internal static Functions Load(IEnumerable<string> names)
    {
        foreach (string name in names)
        {
            if (!NativeLibrary.TryLoad(name, out IntPtr library))
            {
                continue;
            }

            if (NativeLibrary.TryGetExport(library, "SHA1_Init", out IntPtr init) &&
                NativeLibrary.TryGetExport(library, "SHA1_Update", out IntPtr update) &&
                NativeLibrary.TryGetExport(library, "SHA1_Final", out IntPtr final) &&
                NativeLibrary.TryGetExport(library, "SHA1_Transform", out IntPtr transform))
            {
                var functions = new Functions(name, init, update, final, transform);
                if (SelfTest(functions))
                {
                    // The library stays loaded for the life of the process (as .NET's own use of it does).
                    return functions;
                }
            }

            NativeLibrary.Free(library);
        }

        return default;
    }

    private static bool SelfTest(in Functions f)
    {
        // FIPS 180-2 appendix A.1: SHA-1("abc") = a9993e36 4706816a ba3e2571 7850c26c 9cd0d89d.
        ReadOnlySpan<byte> expected = [0xA9, 0x99, 0x3E, 0x36, 0x47, 0x06, 0x81, 0x6A, 0xBA, 0x3E, 0x25, 0x71, 0x78, 0x50, 0xC2, 0x6C, 0x9C, 0xD0, 0xD8, 0x9D];
        Sha1Context context;
        byte* digest = stackalloc byte[20];
        byte* abc = stackalloc byte[] { (byte)'a', (byte)'b', (byte)'c' };
        f.Init(&context);
        f.Update(&context, abc, 3);
        f.Final(digest, &context);
        if (!new ReadOnlySpan<byte>(digest, 20).SequenceEqual(expected))
        {
            return false;
        }

        // The same digest through Transform on a block padded by hand, read back from h0..h4: this is the
        // layout assumption (chaining value in the first five words of SHA_CTX) that HMAC relies on.
        byte* block = stackalloc byte[64];
        new Span<byte>(block, 64).Clear();
        block[0] = (byte)'a';
        block[1] = (byte)'b';
        block[2] = (byte)'c';
        block[3] = 0x80;
        block[63] = 24;
        f.Init(&context);
        f.Transform(&context, block);
        Span<byte> fromState = stackalloc byte[20];
        context.WriteChainingValue(fromState);
        return fromState.SequenceEqual(expected);
    }

    /// <summary>
    /// OpenSSL's SHA_CTX (include/openssl/sha.h, 1.1 and 3.x): h0..h4, Nl, Nh, data[16], num: 24 words, 96
    /// bytes, reserved here as 128 bytes so that a larger future layout cannot write past it. Plain data: copying
    /// it copies the hash state, which is how the HMAC pads are reused per message. Declared as ordinary fields,
    /// not a fixed buffer: the JIT treats structs with fixed buffers as unsafe buffers (stack cookies, no
    /// enregistration), which measured about 100 ns per copy against a few ns for this form.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Sha1Context
    {
        private ulong _w0, _w1, _w2, _w3, _w4, _w5, _w6, _w7, _w8, _w9, _w10, _w11, _w12, _w13, _w14, _w15;

        /// <summary>Writes h0..h4 big-endian: the digest when the state is at a block boundary.</summary>
        public readonly void WriteChainingValue(Span<byte> destination)
        {
            // h0..h4 are the first five 32-bit words (host order) of the structure.
            ReadOnlySpan<uint> h = MemoryMarshal.Cast<ulong, uint>(MemoryMarshal.CreateReadOnlySpan(in _w0, 3));
            for (int i = 0; i < 5; i++)
            {
                BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4 * i), h[i]);
            }
        }
    }

    /// <summary>The four entry points of one library (default: none).</summary>
    internal readonly struct Functions
    {
        public readonly string? LibraryName;
        public readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<Sha1Context*, int> Init;
        public readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<Sha1Context*, byte*, nuint, int> Update;
        public readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<byte*, Sha1Context*, int> Final;
        public readonly delegate* unmanaged[Cdecl, SuppressGCTransition]<Sha1Context*, byte*, void> Transform;

        public Functions(string name, IntPtr init, IntPtr update, IntPtr final, IntPtr transform)
        {
            LibraryName = name;
            Init = (delegate* unmanaged[Cdecl, SuppressGCTransition]<Sha1Context*, int>)init;
            Update = (delegate* unmanaged[Cdecl, SuppressGCTransition]<Sha1Context*, byte*, nuint, int>)update;
            Final = (delegate* unmanaged[Cdecl, SuppressGCTransition]<byte*, Sha1Context*, int>)final;
            Transform = (delegate* unmanaged[Cdecl, SuppressGCTransition]<Sha1Context*, byte*, void>)transform;
        }

        public bool IsValid => LibraryName is not null;
    }
}
