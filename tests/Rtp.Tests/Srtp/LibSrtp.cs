using System.Runtime.InteropServices;
using Transport.Rtp.Srtp;

namespace Transport.Rtp.Tests.Srtp;

/// <summary>
/// Minimal P/Invoke binding of libsrtp 2.5 (Debian libsrtp2-1), the reference implementation the tests compare
/// against byte for byte. Struct layouts follow include/srtp.h of libsrtp v2.5.0 on LP64.
/// </summary>
internal sealed unsafe class LibSrtp : IDisposable
{
    private const string Library = "libsrtp2.so.1";
    private static readonly object InitLock = new();
    private static bool s_initialized;
    private IntPtr _session;

    [StructLayout(LayoutKind.Sequential)]
    private struct CryptoPolicy
    {
        public int CipherType;
        public int CipherKeyLength;
        public int AuthType;
        public int AuthKeyLength;
        public int AuthTagLength;
        public int SecurityServices;
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
    [DllImport(Library)] private static extern int srtp_protect_rtcp(IntPtr session, byte* packet, int* length);
    [DllImport(Library)] private static extern int srtp_unprotect_rtcp(IntPtr session, byte* packet, int* length);
    [DllImport(Library)] private static extern void srtp_crypto_policy_set_rtp_default(CryptoPolicy* policy);
    [DllImport(Library)] private static extern void srtp_crypto_policy_set_rtcp_default(CryptoPolicy* policy);
    [DllImport(Library)] private static extern void srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(CryptoPolicy* policy);
    [DllImport(Library)] private static extern void srtp_crypto_policy_set_aes_gcm_128_16_auth(CryptoPolicy* policy);
    [DllImport(Library)] private static extern void srtp_crypto_policy_set_aes_gcm_256_16_auth(CryptoPolicy* policy);

    /// <summary>Creates a libsrtp session for one direction (any outbound or any inbound SSRC).</summary>
    public LibSrtp(SrtpProfile profile, ReadOnlySpan<byte> masterKey, ReadOnlySpan<byte> masterSalt, bool outbound, int windowSize = 128)
    {
        lock (InitLock)
        {
            if (!s_initialized)
            {
                Check(srtp_init(), "srtp_init");
                s_initialized = true;
            }
        }

        Policy policy = default;
        policy.SsrcType = outbound ? 3 : 2; // ssrc_any_outbound / ssrc_any_inbound
        switch (profile)
        {
            case SrtpProfile.AesCm128HmacSha1_80:
                srtp_crypto_policy_set_rtp_default(&policy.Rtp);
                srtp_crypto_policy_set_rtcp_default(&policy.Rtcp);
                break;
            case SrtpProfile.AesCm128HmacSha1_32:
                srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.Rtp);
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
        }

        byte[] key = new byte[masterKey.Length + masterSalt.Length];
        masterKey.CopyTo(key);
        masterSalt.CopyTo(key.AsSpan(masterKey.Length));
        policy.WindowSize = (nuint)windowSize;
        fixed (byte* k = key)
        {
            policy.Key = k;
            Check(srtp_create(out _session, &policy), "srtp_create");
        }
    }

    public int RemoveStream(uint ssrc) => srtp_remove_stream(_session, System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(ssrc));

    public int ProtectRtp(byte[] buffer, int length) => Call(&srtp_protect, buffer, length);

    public int UnprotectRtp(byte[] buffer, int length) => Call(&srtp_unprotect, buffer, length);

    public int ProtectRtcp(byte[] buffer, int length) => Call(&srtp_protect_rtcp, buffer, length);

    public int UnprotectRtcp(byte[] buffer, int length) => Call(&srtp_unprotect_rtcp, buffer, length);

    /// <summary>Returns the new length, or minus the libsrtp error status.</summary>
    private int Call(delegate*<IntPtr, byte*, int*, int> function, byte[] buffer, int length)
    {
        fixed (byte* p = buffer)
        {
            int len = length;
            int status = function(_session, p, &len);
            return status == 0 ? len : -status;
        }
    }

    private static void Check(int status, string what)
    {
        if (status != 0)
        {
            throw new InvalidOperationException($"{what} failed with libsrtp status {status}.");
        }
    }

    public void Dispose()
    {
        if (_session != IntPtr.Zero)
        {
            srtp_dealloc(_session);
            _session = IntPtr.Zero;
        }
    }
}
