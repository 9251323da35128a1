using System.Runtime.InteropServices;
using System.Security.Cryptography;
using BcX25519 = Org.BouncyCastle.Math.EC.Rfc7748.X25519;

namespace Transport.Dtls.Crypto;

/// <summary>
/// X25519 (RFC 7748 section 5), which .NET's own API lacks: computed by the libcrypto .NET itself runs on (OpenSSL's
/// EVP X25519, its constant-time assembly), else by BouncyCastle. There was a ladder of ours here (51-bit limbs,
/// about 105 us per shared secret against BouncyCastle's 140-150 us); libcrypto's is faster than both (the figures
/// in docs/dtls.md, <c>X25519Benchmarks</c> in one run), so secret-dependent arithmetic of our own is no longer
/// kept. Checked against the RFC 7748 vectors and BouncyCastle by the tests.
/// </summary>
internal static class Curve25519
{
    /// <summary>Bytes of a scalar, a u-coordinate and a shared secret.</summary>
    public const int Size = 32;

    /// <summary>True when libcrypto computes X25519 in this process (else BouncyCastle does).</summary>
    public static bool UsesLibCrypto => LibCryptoX25519.IsAvailable;

    /// <summary>X25519(k, 9): the public key of private scalar <paramref name="scalar"/>.</summary>
    public static void ScalarMultBase(ReadOnlySpan<byte> scalar, Span<byte> publicKey)
    {
        if (scalar.Length != Size || publicKey.Length < Size) throw new ArgumentException("X25519 values are 32 bytes.");
        if (LibCryptoX25519.IsAvailable && LibCryptoX25519.PublicKey(scalar, publicKey)) return;
        var k = scalar.ToArray();
        var p = new byte[Size];
        BcX25519.ScalarMultBase(k, 0, p, 0);
        p.CopyTo(publicKey);
        CryptographicOperations.ZeroMemory(k);
    }

    /// <summary>
    /// X25519(k, u) into <paramref name="result"/> (RFC 7748 section 5). Returns false when the result is all
    /// zero (u of small order), which RFC 7748 section 6.1 lets a protocol reject and TLS does (RFC 8422 5.11).
    /// </summary>
    public static bool ScalarMult(ReadOnlySpan<byte> scalar, ReadOnlySpan<byte> u, Span<byte> result)
    {
        if (scalar.Length != Size || u.Length != Size || result.Length < Size) throw new ArgumentException("X25519 values are 32 bytes.");
        if (LibCryptoX25519.IsAvailable && LibCryptoX25519.Derive(scalar, u, result) is { } ok)
        {
            if (!ok) result[..Size].Clear();
            return ok;
        }

        var k = scalar.ToArray();
        var r = new byte[Size];
        try
        {
            var nonZero = BcX25519.CalculateAgreement(k, 0, u.ToArray(), 0, r, 0);
            r.CopyTo(result);
            return nonZero;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(k);
            CryptographicOperations.ZeroMemory(r);
        }
    }
}

/// <summary>
/// X25519 through OpenSSL's EVP API in the libcrypto .NET uses on Linux (<c>EVP_PKEY_new_raw_private_key</c>,
/// <c>EVP_PKEY_derive</c>), loaded the same way as <see cref="LibCryptoEcKey"/>: only that library, only when every
/// symbol is there; otherwise <see cref="IsAvailable"/> is false and BouncyCastle computes.
/// </summary>
internal static unsafe class LibCryptoX25519
{
    private const int NidX25519 = 1034; // EVP_PKEY_X25519

    private static readonly Functions s_functions = Load();

    public static bool IsAvailable => s_functions.IsValid;

    /// <summary>The public key of <paramref name="scalar"/>; false when libcrypto refused (the caller falls back).</summary>
    public static bool PublicKey(ReadOnlySpan<byte> scalar, Span<byte> publicKey)
    {
        var f = s_functions;
        fixed (byte* k = scalar)
        fixed (byte* p = publicKey)
        {
            var key = f.NewRawPrivateKey(NidX25519, IntPtr.Zero, k, (nuint)Curve25519.Size);
            if (key == IntPtr.Zero) { f.ErrClearError(); return false; }
            try
            {
                nuint length = Curve25519.Size;
                if (f.GetRawPublicKey(key, p, &length) == 1 && length == Curve25519.Size) return true;
                f.ErrClearError();
                return false;
            }
            finally
            {
                f.PKeyFree(key);
            }
        }
    }

    /// <summary>
    /// A libcrypto key for <paramref name="scalar"/> (its public key computed once, when it is made) for
    /// <see cref="DeriveWithKey"/>; null when libcrypto refused. Dispose it.
    /// </summary>
    public static Key? NewKey(ReadOnlySpan<byte> scalar, Span<byte> publicKey)
    {
        var f = s_functions;
        fixed (byte* k = scalar)
        fixed (byte* p = publicKey)
        {
            var key = f.NewRawPrivateKey(NidX25519, IntPtr.Zero, k, (nuint)Curve25519.Size);
            nuint length = Curve25519.Size;
            if (key != IntPtr.Zero && f.GetRawPublicKey(key, p, &length) == 1 && length == Curve25519.Size) return new Key(key);
            if (key != IntPtr.Zero) f.PKeyFree(key);
            f.ErrClearError();
            return null;
        }
    }

    /// <summary>An EVP_PKEY of ours, freed when disposed (or finalized: a handshake abandoned undisposed leaks nothing).</summary>
    internal sealed class Key : SafeHandle
    {
        public Key(IntPtr key) : base(IntPtr.Zero, ownsHandle: true) => SetHandle(key);

        public override bool IsInvalid => handle == IntPtr.Zero;

        protected override bool ReleaseHandle()
        {
            s_functions.PKeyFree(handle);
            return true;
        }
    }

    /// <summary>The shared secret of a key of <see cref="NewKey"/> with <paramref name="u"/>; as <see cref="Derive"/>.</summary>
    public static bool? DeriveWithKey(Key key, ReadOnlySpan<byte> u, Span<byte> result)
    {
        var f = s_functions;
        IntPtr peer = IntPtr.Zero, ctx = IntPtr.Zero;
        var added = false;
        fixed (byte* pu = u)
        fixed (byte* r = result)
        {
            try
            {
                peer = f.NewRawPublicKey(NidX25519, IntPtr.Zero, pu, (nuint)Curve25519.Size);
                if (peer == IntPtr.Zero) return null;
                key.DangerousAddRef(ref added);
                ctx = f.CtxNew(key.DangerousGetHandle(), IntPtr.Zero);
                if (ctx == IntPtr.Zero || f.DeriveInit(ctx) != 1 || f.DeriveSetPeer(ctx, peer) != 1) return null;
                nuint length = Curve25519.Size;
                if (f.Derive(ctx, r, &length) != 1) return false;
                return length == Curve25519.Size ? true : null;
            }
            finally
            {
                if (ctx != IntPtr.Zero) f.CtxFree(ctx);
                if (peer != IntPtr.Zero) f.PKeyFree(peer);
                if (added) key.DangerousRelease();
                f.ErrClearError();
            }
        }
    }

    /// <summary>
    /// The shared secret: true, false when it is all zero (libcrypto refuses a low-order u), null when libcrypto could
    /// not be used for another reason (the caller falls back).
    /// </summary>
    public static bool? Derive(ReadOnlySpan<byte> scalar, ReadOnlySpan<byte> u, Span<byte> result) => DeriveWith(s_functions, scalar, u, result);

    private static Functions Load()
    {
        if (!RuntimeLibCrypto.TryLoad(out var library, out _)) return default;
        string[] names =
        [
            "EVP_PKEY_new_raw_private_key", "EVP_PKEY_new_raw_public_key", "EVP_PKEY_get_raw_public_key", "EVP_PKEY_free",
            "EVP_PKEY_CTX_new", "EVP_PKEY_CTX_free", "EVP_PKEY_derive_init", "EVP_PKEY_derive_set_peer", "EVP_PKEY_derive",
            "ERR_clear_error",
        ];
        var exports = new IntPtr[names.Length];
        for (var i = 0; i < names.Length; i++)
        {
            if (!NativeLibrary.TryGetExport(library, names[i], out exports[i]))
            {
                NativeLibrary.Free(library);
                return default;
            }
        }

        var functions = new Functions(exports);
        // A self-test with the RFC 7748 section 6.1 values: any disagreement and libcrypto is not used.
        try
        {
            ReadOnlySpan<byte> alice = Convert.FromHexString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
            ReadOnlySpan<byte> bobPublic = Convert.FromHexString("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
            Span<byte> secret = stackalloc byte[Curve25519.Size];
            var ok = DeriveWith(functions, alice, bobPublic, secret) == true &&
                Convert.ToHexStringLower(secret) == "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
            return ok ? functions : default;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or AccessViolationException or SEHException)
        {
            return default;
        }
    }

    private static bool? DeriveWith(Functions f, ReadOnlySpan<byte> scalar, ReadOnlySpan<byte> u, Span<byte> result)
    {
        IntPtr key = IntPtr.Zero, peer = IntPtr.Zero, ctx = IntPtr.Zero;
        fixed (byte* k = scalar)
        fixed (byte* pu = u)
        fixed (byte* r = result)
        {
            try
            {
                key = f.NewRawPrivateKey(NidX25519, IntPtr.Zero, k, (nuint)Curve25519.Size);
                peer = f.NewRawPublicKey(NidX25519, IntPtr.Zero, pu, (nuint)Curve25519.Size);
                if (key == IntPtr.Zero || peer == IntPtr.Zero) return null;
                ctx = f.CtxNew(key, IntPtr.Zero);
                if (ctx == IntPtr.Zero || f.DeriveInit(ctx) != 1 || f.DeriveSetPeer(ctx, peer) != 1) return null;
                nuint length = Curve25519.Size;
                // OpenSSL's X25519 derive fails exactly when the result is all zero (a point of small order).
                if (f.Derive(ctx, r, &length) != 1) return false;
                return length == Curve25519.Size ? true : null;
            }
            finally
            {
                if (ctx != IntPtr.Zero) f.CtxFree(ctx);
                if (peer != IntPtr.Zero) f.PKeyFree(peer);
                if (key != IntPtr.Zero) f.PKeyFree(key);
                f.ErrClearError();
            }
        }
    }

    private readonly struct Functions
    {
        public readonly delegate* unmanaged[Cdecl]<int, IntPtr, byte*, nuint, IntPtr> NewRawPrivateKey;
        public readonly delegate* unmanaged[Cdecl]<int, IntPtr, byte*, nuint, IntPtr> NewRawPublicKey;
        public readonly delegate* unmanaged[Cdecl]<IntPtr, byte*, nuint*, int> GetRawPublicKey;
        public readonly delegate* unmanaged[Cdecl]<IntPtr, void> PKeyFree;
        public readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr> CtxNew;
        public readonly delegate* unmanaged[Cdecl]<IntPtr, void> CtxFree;
        public readonly delegate* unmanaged[Cdecl]<IntPtr, int> DeriveInit;
        public readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, int> DeriveSetPeer;
        public readonly delegate* unmanaged[Cdecl]<IntPtr, byte*, nuint*, int> Derive;
        public readonly delegate* unmanaged[Cdecl]<void> ErrClearError;

        public Functions(IntPtr[] e)
        {
            NewRawPrivateKey = (delegate* unmanaged[Cdecl]<int, IntPtr, byte*, nuint, IntPtr>)e[0];
            NewRawPublicKey = (delegate* unmanaged[Cdecl]<int, IntPtr, byte*, nuint, IntPtr>)e[1];
            GetRawPublicKey = (delegate* unmanaged[Cdecl]<IntPtr, byte*, nuint*, int>)e[2];
            PKeyFree = (delegate* unmanaged[Cdecl]<IntPtr, void>)e[3];
            CtxNew = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr>)e[4];
            CtxFree = (delegate* unmanaged[Cdecl]<IntPtr, void>)e[5];
            DeriveInit = (delegate* unmanaged[Cdecl]<IntPtr, int>)e[6];
            DeriveSetPeer = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, int>)e[7];
            Derive = (delegate* unmanaged[Cdecl]<IntPtr, byte*, nuint*, int>)e[8];
            ErrClearError = (delegate* unmanaged[Cdecl]<void>)e[9];
        }

        public bool IsValid => NewRawPrivateKey != null;
    }
}
