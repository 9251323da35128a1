using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Transport.Dtls.Crypto;

/// <summary>The libcrypto .NET itself uses on Linux, for the few calls we make into it directly (X25519, EC key import).</summary>
internal static class RuntimeLibCrypto
{
    /// <summary>
    /// Loads the libcrypto of the OpenSSL version .NET reports (OPENSSL_VERSION_NUMBER 0xMNN00PP0L: major 3 ->
    /// libcrypto.so.3, 1 -> libcrypto.so.1.1), with that version. False off Linux, without OpenSSL, or when it cannot
    /// be loaded.
    /// </summary>
    public static bool TryLoad(out IntPtr library, out long version)
    {
        library = IntPtr.Zero;
        version = 0;
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            version = SafeEvpPKeyHandle.OpenSslVersion;
        }
        catch (Exception e) when (e is PlatformNotSupportedException or DllNotFoundException or TypeInitializationException)
        {
            return false;
        }
        var name = (version >> 28) switch
        {
            3 => "libcrypto.so.3",
            1 => "libcrypto.so.1.1",
            _ => null,
        };
        return name is not null && NativeLibrary.TryLoad(name, out library);
    }
}
