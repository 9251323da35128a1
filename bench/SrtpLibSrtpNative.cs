using System.Runtime.InteropServices;
using Transport.Rtp.Srtp;

namespace Transport.Bench;

/// <summary>P/Invoke binding of libsrtp 2.5 (Debian libsrtp2-1) for the comparison benchmarks (layouts of srtp.h v2.5.0, LP64).</summary>
public sealed unsafe class SrtpLibSrtpNative : IDisposable
{
    private const string Library = "libsrtp2.so.1";
    private static bool s_initialized;
    private IntPtr _session;

    [StructLayout(LayoutKind.Sequential)]
    private struct CryptoPolicy
    {
        public int CipherType, CipherKeyLength, AuthType, AuthKeyLength, AuthTagLength, SecurityServices;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Policy
    {
        public int SsrcType;
        public uint SsrcValue;
        public CryptoPolicy Rtp;
        public CryptoPolicy Rtcp;
        public byte* Key;
        public IntPtr Keys;
        public nuint NumMasterKeys;
        public IntPtr DeprecatedEkt;
        public nuint WindowSize;
        public int AllowRepeatTx;
        public IntPtr EncryptedExtensionHeaders;
        public int EncryptedExtensionHeaderCount;
        public IntPtr Next;
    }

    [DllImport(Library)] private static extern int srtp_init();
    [DllImport(Library)] private static extern int srtp_create(out IntPtr session, Policy* policy);
    [DllImport(Library)] private static extern int srtp_dealloc(IntPtr session);
    [DllImport(Library)] private static extern int srtp_remove_stream(IntPtr session, uint ssrc);
    [DllImport(Library)] private static extern int srtp_protect(IntPtr session, byte* packet, int* length);
    [DllImport(Library)] private static extern int srtp_unprotect(IntPtr session, byte* packet, int* length);
    [DllImport(Library)] private static extern void srtp_crypto_policy_set_rtp_default(CryptoPolicy* policy);
    [DllImport(Library)] private static extern void srtp_crypto_policy_set_rtcp_default(CryptoPolicy* policy);
    [DllImport(Library)] private static extern void srtp_crypto_policy_set_aes_gcm_128_16_auth(CryptoPolicy* policy);
    [DllImport(Library)] private static extern void srtp_crypto_policy_set_aes_gcm_256_16_auth(CryptoPolicy* policy);

    public SrtpLibSrtpNative(SrtpProfile profile, ReadOnlySpan<byte> masterKey, ReadOnlySpan<byte> masterSalt, bool outbound)
    {
        if (!s_initialized)
        {
            if (srtp_init() != 0)
            {
                throw new InvalidOperationException("srtp_init failed");
            }

            s_initialized = true;
        }

        Policy policy = default;
        policy.SsrcType = outbound ? 3 : 2;
        switch (profile)
        {
            case SrtpProfile.AesCm128HmacSha1_80:
                srtp_crypto_policy_set_rtp_default(&policy.Rtp);
                srtp_crypto_policy_set_rtcp_default(&policy.Rtcp);
                break;
            case SrtpProfile.AeadAes128Gcm:
                srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.Rtp);
                srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.Rtcp);
                break;
            case SrtpProfile.AeadAes256Gcm:
                srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy.Rtp);
                srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy.Rtcp);
                break;
            default:
                throw new NotSupportedException(profile.ToString());
        }

        byte[] key = [.. masterKey, .. masterSalt];
        policy.WindowSize = 128;
        fixed (byte* k = key)
        {
            policy.Key = k;
            if (srtp_create(out _session, &policy) != 0)
            {
                throw new InvalidOperationException("srtp_create failed");
            }
        }
    }

    public int Protect(byte* packet, int length)
    {
        int len = length;
        return srtp_protect(_session, packet, &len) == 0 ? len : -1;
    }

    public int Unprotect(byte* packet, int length)
    {
        int len = length;
        return srtp_unprotect(_session, packet, &len) == 0 ? len : -1;
    }

    // libsrtp compares the SSRC as stored in the packet, i.e. in network byte order.
    public void RemoveStream(uint ssrc) => srtp_remove_stream(_session, System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(ssrc));

    public void Dispose()
    {
        if (_session != IntPtr.Zero)
        {
            srtp_dealloc(_session);
            _session = IntPtr.Zero;
        }
    }
}
