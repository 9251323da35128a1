using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Security.Cryptography;

namespace Transport.Dtls.Crypto;

/// <summary>
/// Imports a peer's EC public key (P-256, P-384, P-521) into an <see cref="ECDsaOpenSsl"/> through OpenSSL's
/// EC_KEY API, called directly in the libcrypto that .NET itself uses on Linux.
/// <para>
/// Why: every .NET import path (<c>ECDsa.Create(ECParameters)</c>, <c>ImportSubjectPublicKeyInfo</c>,
/// <c>X509Certificate2.GetECDsaPublicKey</c>) costs about 170 us per key on OpenSSL 3 here, more than two ECDSA
/// verifications: the import runs EC_KEY_check_key, whose "order times point is infinity" test is a full scalar
/// multiplication, and OpenSSL 3's decoders are slow. <c>o2i_ECPublicKey</c> decodes the uncompressed point and
/// checks that it lies on the curve (EC_POINT_oct2point), about 15 us. For these prime-order curves (cofactor 1)
/// a point on the curve that is not the point at infinity (an uncompressed 04||X||Y encoding never is) has
/// order n, so the skipped test adds no assurance. A WebRTC handshake imports one such key per side.
/// </para>
/// <para>
/// Only used on Linux when the loaded library is the one .NET runs on (same OpenSSL version number as
/// <see cref="SafeEvpPKeyHandle.OpenSslVersion"/>): an EVP_PKEY from another libcrypto must never be handed to
/// .NET. Otherwise, or when a symbol is missing, <see cref="IsAvailable"/> is false and callers import through
/// .NET.
/// </para>
/// </summary>
internal static unsafe class LibCryptoEcKey
{
    private const int NidP256 = 415;  // NID_X9_62_prime256v1
    private const int NidP384 = 715;  // NID_secp384r1
    private const int NidP521 = 716;  // NID_secp521r1

    private static readonly Functions s_functions = Load();

    /// <summary>True when the direct import can be used in this process.</summary>
    public static bool IsAvailable => s_functions.IsValid;

    /// <summary>
    /// Creates an ECDSA public key from an uncompressed point (04 || X || Y) on the curve named by
    /// <paramref name="curveOid"/>; null when the curve is unknown or the point is not on the curve.
    /// </summary>
    [SupportedOSPlatform("linux")]
    public static ECDsa? TryImport(string curveOid, ReadOnlySpan<byte> point)
    {
        if (!s_functions.IsValid) return null;
        var nid = curveOid switch
        {
            "1.2.840.10045.3.1.7" => NidP256,
            "1.3.132.0.34" => NidP384,
            "1.3.132.0.35" => NidP521,
            _ => 0,
        };
        if (nid == 0 || point.IsEmpty || point[0] != 4) return null;

        var f = s_functions;
        var ecKey = f.EcKeyNewByCurveName(nid);
        if (ecKey == IntPtr.Zero) return null;
        var pkey = IntPtr.Zero;
        try
        {
            fixed (byte* start = point)
            {
                var cursor = start;
                // o2i_ECPublicKey(EC_KEY **key, const unsigned char **in, long len): sets the public point of an
                // EC_KEY that already has its group; NULL when the encoding is bad or the point is off the curve.
                if (f.O2iEcPublicKey(&ecKey, &cursor, point.Length) == IntPtr.Zero || cursor != start + point.Length)
                {
                    f.ErrClearError(); // leave no error queued for the next OpenSSL call made by .NET
                    return null;
                }
            }

            pkey = f.EvpPKeyNew();
            if (pkey == IntPtr.Zero || f.EvpPKeySet1EcKey(pkey, ecKey) != 1) return null;
            using var handle = new SafeEvpPKeyHandle(pkey, ownsHandle: true);
            pkey = IntPtr.Zero; // owned by the handle now
            // The ECDsaOpenSsl takes its own reference (EVP_PKEY_up_ref); the handle is released here.
            return new ECDsaOpenSsl(handle);
        }
        catch (CryptographicException)
        {
            return null;
        }
        finally
        {
            f.EcKeyFree(ecKey); // EVP_PKEY_set1 took its own reference
            if (pkey != IntPtr.Zero) f.EvpPKeyFree(pkey);
        }
    }

    private static Functions Load()
    {
        if (!RuntimeLibCrypto.TryLoad(out var library, out var dotnetVersion)) return default;
        if (NativeLibrary.TryGetExport(library, "OpenSSL_version_num", out var versionNum) &&
            NativeLibrary.TryGetExport(library, "EC_KEY_new_by_curve_name", out var newByCurve) &&
            NativeLibrary.TryGetExport(library, "o2i_ECPublicKey", out var o2i) &&
            NativeLibrary.TryGetExport(library, "EC_KEY_free", out var ecFree) &&
            NativeLibrary.TryGetExport(library, "EVP_PKEY_new", out var pkeyNew) &&
            NativeLibrary.TryGetExport(library, "EVP_PKEY_set1_EC_KEY", out var set1) &&
            NativeLibrary.TryGetExport(library, "EVP_PKEY_free", out var pkeyFree) &&
            NativeLibrary.TryGetExport(library, "ERR_clear_error", out var clearError) &&
            (long)((delegate* unmanaged[Cdecl]<nuint>)versionNum)() == dotnetVersion)
        {
            return new Functions(newByCurve, o2i, ecFree, pkeyNew, set1, pkeyFree, clearError);
        }

        NativeLibrary.Free(library);
        return default;
    }

    private readonly struct Functions
    {
        public readonly delegate* unmanaged[Cdecl]<int, IntPtr> EcKeyNewByCurveName;
        public readonly delegate* unmanaged[Cdecl]<IntPtr*, byte**, nint, IntPtr> O2iEcPublicKey;
        public readonly delegate* unmanaged[Cdecl]<IntPtr, void> EcKeyFree;
        public readonly delegate* unmanaged[Cdecl]<IntPtr> EvpPKeyNew;
        public readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, int> EvpPKeySet1EcKey;
        public readonly delegate* unmanaged[Cdecl]<IntPtr, void> EvpPKeyFree;
        public readonly delegate* unmanaged[Cdecl]<void> ErrClearError;

        public Functions(IntPtr newByCurve, IntPtr o2i, IntPtr ecFree, IntPtr pkeyNew, IntPtr set1, IntPtr pkeyFree, IntPtr clearError)
        {
            ErrClearError = (delegate* unmanaged[Cdecl]<void>)clearError;
            EcKeyNewByCurveName = (delegate* unmanaged[Cdecl]<int, IntPtr>)newByCurve;
            O2iEcPublicKey = (delegate* unmanaged[Cdecl]<IntPtr*, byte**, nint, IntPtr>)o2i;
            EcKeyFree = (delegate* unmanaged[Cdecl]<IntPtr, void>)ecFree;
            EvpPKeyNew = (delegate* unmanaged[Cdecl]<IntPtr>)pkeyNew;
            EvpPKeySet1EcKey = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, int>)set1;
            EvpPKeyFree = (delegate* unmanaged[Cdecl]<IntPtr, void>)pkeyFree;
        }

        public bool IsValid => EcKeyNewByCurveName != null;
    }
}
