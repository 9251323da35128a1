using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

using Transport.Crypto;

namespace Transport.Rtp.Srtp;

/// <summary>
/// One direction of SRTP and SRTCP under one master key and salt (RFC 3711 section 3.2): session keys derived once,
/// per-SSRC state (ROC, replay windows, SRTCP index) created when an SSRC is first seen. Protect and unprotect work
/// in place; failures are returned and counted, never thrown. Not thread safe: one caller at a time.
/// </summary>
public sealed partial class SrtpContext : IDisposable
{
    private const int RtpHeaderLength = 12;
    private const int RtcpHeaderLength = 8;
    private const int HmacSha1Length = 20;
    private const int GcmTagLength = 16;

    private readonly SrtpOptions _options;
    private readonly bool _aead;
    private readonly int _rtpTagLength;
    private readonly int _rtcpTagLength;
    private readonly byte[] _mki;
    private readonly Dictionary<uint, SrtpStream> _streams = new();
    private SrtpStream? _lastStream;

    // AES-CM + HMAC-SHA1 transforms (RFC 3711 section 4).
    private readonly AesCounterMode? _rtpCipher;
    private readonly AesCounterMode? _rtcpCipher;
    private readonly AuthenticationMac? _rtpMac;
    private readonly AuthenticationMac? _rtcpMac;

    // AEAD transforms (RFC 7714); one AesGcm per key when our kernel below cannot run.
    private readonly AesGcm? _rtpGcm;
    private readonly AesGcm? _rtcpGcm;

    // Our AES-NI/PCLMULQDQ GCM when the CPU allows (null: AesGcm is used, its tag mismatch exception contained).
    private readonly GcmCipher? _rtpGcmCipher;
    private readonly GcmCipher? _rtcpGcmCipher;

    // Session salts: 14 bytes for AES-CM, 12 for GCM.
    private readonly byte[] _rtpSalt;
    private readonly byte[] _rtcpSalt;

    private SrtpContext(SrtpProfile profile, SrtpOptions options, SessionKeys rtp, SessionKeys rtcp, bool allowIntrinsics)
    {
        options.Validate();
        Profile = profile;
        _options = options;
        _aead = SrtpProfileInfo.IsAead(profile);
        _rtpTagLength = SrtpProfileInfo.RtpTagLength(profile);
        _rtcpTagLength = SrtpProfileInfo.RtcpTagLength(profile);
        _mki = options.Mki.ToArray();
        _rtpSalt = rtp.Salt;
        _rtcpSalt = rtcp.Salt;
        if (_aead)
        {
            // Either our kernel or AesGcm, not both: an AesGcm holds a native OpenSSL context, and a session made for every
            // connection (use_srtp is negotiated even with data channels only) would keep four of them idle.
            if (allowIntrinsics && GcmCipher.IsSupported)
            {
                _rtpGcmCipher = new GcmCipher(rtp.EncryptionKey);
                _rtcpGcmCipher = new GcmCipher(rtcp.EncryptionKey);
            }
            else
            {
                _rtpGcm = new AesGcm(rtp.EncryptionKey, GcmTagLength);
                _rtcpGcm = new AesGcm(rtcp.EncryptionKey, GcmTagLength);
            }
        }
        else
        {
            _rtpCipher = new AesCounterMode(rtp.EncryptionKey, allowIntrinsics);
            _rtcpCipher = new AesCounterMode(rtcp.EncryptionKey, allowIntrinsics);
            _rtpMac = new AuthenticationMac(rtp.AuthenticationKey, allowIntrinsics);
            _rtcpMac = new AuthenticationMac(rtcp.AuthenticationKey, allowIntrinsics);
        }

        rtp.Clear();
        rtcp.Clear();
    }

    /// <summary>The protection profile.</summary>
    public SrtpProfile Profile { get; }

    /// <summary>Packets processed and dropped, by reason.</summary>
    public SrtpCounters Counters { get; } = new();

    /// <summary>Number of SSRCs with state in this context.</summary>
    public int StreamCount => _streams.Count;

    /// <summary>True when GCM runs on our AES-NI/PCLMULQDQ kernel (constant-time tag check, no exception on forgeries).</summary>
    public bool UsesGcmIntrinsics => _rtpGcmCipher is not null;

    /// <summary>
    /// True when HMAC-SHA1 runs on libcrypto's SHA-1 directly (SHA-NI where the CPU has it) instead of the platform
    /// <see cref="IncrementalHash"/> (always false for GCM profiles).
    /// </summary>
    public bool UsesNativeSha1 => _rtpMac?.UsesNative ?? false;

    /// <summary>True when AES-CM runs on the AES-NI kernel (always false for GCM profiles).</summary>
    public bool UsesAesIntrinsics => _rtpCipher?.UsesIntrinsics ?? false;

    /// <summary>
    /// Creates a context from a master key and master salt, deriving the six session keys and salts
    /// (RFC 3711 section 4.3, labels 0 to 5).
    /// </summary>
    public static SrtpContext Create(SrtpProfile profile, ReadOnlySpan<byte> masterKey, ReadOnlySpan<byte> masterSalt, SrtpOptions? options = null) =>
        Create(profile, masterKey, masterSalt, options, allowIntrinsics: true);

    internal static SrtpContext Create(SrtpProfile profile, ReadOnlySpan<byte> masterKey, ReadOnlySpan<byte> masterSalt,
        SrtpOptions? options, bool allowIntrinsics)
    {
        if (masterKey.Length != SrtpProfileInfo.MasterKeyLength(profile))
        {
            throw new ArgumentException($"{profile} needs a {SrtpProfileInfo.MasterKeyLength(profile)}-byte master key.", nameof(masterKey));
        }

        if (masterSalt.Length != SrtpProfileInfo.MasterSaltLength(profile))
        {
            throw new ArgumentException($"{profile} needs a {SrtpProfileInfo.MasterSaltLength(profile)}-byte master salt.", nameof(masterSalt));
        }

        bool aead = SrtpProfileInfo.IsAead(profile);
        using var prf = new AesCounterMode(masterKey, allowIntrinsics);
        SessionKeys rtp = DeriveSessionKeys(prf, masterKey.Length, masterSalt, aead, SrtpKeyDerivation.LabelRtpEncryption,
            SrtpKeyDerivation.LabelRtpAuthentication, SrtpKeyDerivation.LabelRtpSalt);
        SessionKeys rtcp = DeriveSessionKeys(prf, masterKey.Length, masterSalt, aead, SrtpKeyDerivation.LabelRtcpEncryption,
            SrtpKeyDerivation.LabelRtcpAuthentication, SrtpKeyDerivation.LabelRtcpSalt);
        return new SrtpContext(profile, options ?? SrtpOptions.Default, rtp, rtcp, allowIntrinsics);
    }

    private static SessionKeys DeriveSessionKeys(AesCounterMode prf, int keyLength, ReadOnlySpan<byte> masterSalt, bool aead, byte encryptionLabel,
        byte authenticationLabel, byte saltLabel)
    {
        var keys = new SessionKeys(new byte[keyLength], new byte[masterSalt.Length], new byte[aead ? 0 : HmacSha1Length]);
        SrtpKeyDerivation.Derive(prf, masterSalt, encryptionLabel, keys.EncryptionKey);
        SrtpKeyDerivation.Derive(prf, masterSalt, saltLabel, keys.Salt);
        if (!aead)
        {
            SrtpKeyDerivation.Derive(prf, masterSalt, authenticationLabel, keys.AuthenticationKey);
        }

        return keys;
    }

    /// <summary>Creates a context from session keys directly (the form the RFC 7714 test vectors take).</summary>
    internal static SrtpContext CreateFromSessionKeys(SrtpProfile profile, SessionKeys rtp, SessionKeys rtcp, SrtpOptions? options = null,
        bool allowIntrinsics = true) =>
        new(profile, options ?? SrtpOptions.Default, rtp, rtcp, allowIntrinsics);

    /// <summary>Sets the next SRTCP index sent for <paramref name="ssrc"/> (tests and key-continuity cases).</summary>
    internal void SetNextSrtcpIndex(uint ssrc, uint index) => GetOrCreateStream(ssrc)!.NextSrtcpIndex = index;

    /// <summary>
    /// Forgets the RTP index state of <paramref name="ssrc"/> as if it had never been seen, without allocating
    /// (benchmarks replay a fixed set of packets; libsrtp's srtp_remove_stream is the counterpart).
    /// </summary>
    internal void ResetRtpState(uint ssrc)
    {
        if (_streams.TryGetValue(ssrc, out SrtpStream? stream))
        {
            stream.RtpStarted = false;
            stream.RtpHighestIndex = 0;
            stream.RtpReplay?.Reset();
        }
    }

    /// <summary>The rollover counter of <paramref name="ssrc"/>, or null when the SSRC has no RTP state yet.</summary>
    public uint? GetRolloverCounter(uint ssrc) =>
        _streams.TryGetValue(ssrc, out SrtpStream? s) && s.RtpStarted ? (uint)(s.RtpHighestIndex >> 16) : null;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private SrtpStream? FindStream(uint ssrc)
    {
        SrtpStream? last = _lastStream;
        if (last is not null && last.Ssrc == ssrc)
        {
            return last;
        }

        if (_streams.TryGetValue(ssrc, out SrtpStream? stream))
        {
            _lastStream = stream;
        }

        return stream;
    }

    private SrtpStream? GetOrCreateStream(uint ssrc)
    {
        SrtpStream? stream = FindStream(ssrc);
        if (stream is null)
        {
            if (_streams.Count >= _options.MaxStreams)
            {
                return null;
            }

            stream = new SrtpStream(ssrc);
            _streams.Add(ssrc, stream);
            _lastStream = stream;
        }

        return stream;
    }

    /// <summary>HMAC-SHA1 over <paramref name="data"/>, truncated into <paramref name="tag"/>.</summary>
    private static void ComputeHmac(AuthenticationMac mac, ReadOnlySpan<byte> data, Span<byte> tag) => mac.Compute(data, tag);

    /// <summary>Length of the RTP header (fixed part, CSRCs, extension), or -1 when the packet is malformed.</summary>
    internal static int RtpHeaderSize(ReadOnlySpan<byte> packet)
    {
        if (packet.Length < RtpHeaderLength || (packet[0] >> 6) != 2)
        {
            return -1;
        }

        int length = RtpHeaderLength + 4 * (packet[0] & 0x0F);
        if ((packet[0] & 0x10) != 0)
        {
            if (packet.Length < length + 4)
            {
                return -1;
            }

            length += 4 + 4 * BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(length + 2));
        }

        return length <= packet.Length ? length : -1;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _rtpCipher?.Dispose();
        _rtcpCipher?.Dispose();
        _rtpMac?.Dispose();
        _rtcpMac?.Dispose();
        _rtpGcm?.Dispose();
        _rtcpGcm?.Dispose();
        _rtpGcmCipher?.Dispose();
        _rtcpGcmCipher?.Dispose();
    }

    /// <summary>
    /// HMAC-SHA1 under one session authentication key (RFC 3711 section 4.2.1). Preferred: our HMAC over libcrypto's
    /// SHA-1 block function (<see cref="HmacSha1"/>, keyed pad states copied per packet), which skips OpenSSL's EVP
    /// layer and costs about half of <see cref="IncrementalHash"/> for a 1.2 KB packet. Fallback (no libcrypto, or
    /// <c>allowIntrinsics</c> false in tests): the platform <see cref="IncrementalHash"/>, which on Windows and macOS
    /// is the OS's native SHA-1 and beats a managed SHA-1 at packet sizes.
    /// </summary>
    private sealed class AuthenticationMac : IDisposable
    {
        private readonly HmacSha1? _direct;
        private readonly IncrementalHash? _platform;

        public AuthenticationMac(byte[] key, bool allowNative)
        {
            if (allowNative && LibCryptoSha1.IsAvailable)
            {
                _direct = new HmacSha1(key);
            }
            else
            {
                _platform = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA1, key);
            }
        }

        public bool UsesNative => _direct is not null;

        /// <summary>HMAC-SHA1 of <paramref name="data"/>, truncated to <paramref name="tag"/>.Length bytes.</summary>
        public void Compute(ReadOnlySpan<byte> data, Span<byte> tag)
        {
            if (_direct is not null)
            {
                _direct.Compute(data, default, tag);
                return;
            }

            Span<byte> digest = stackalloc byte[HmacSha1Length];
            _platform!.AppendData(data);
            _platform.GetHashAndReset(digest);
            digest.Slice(0, tag.Length).CopyTo(tag);
        }

        public void Dispose() => _platform?.Dispose();
    }

    /// <summary>Session keys for one of RTP or RTCP.</summary>
    internal sealed record SessionKeys(byte[] EncryptionKey, byte[] Salt, byte[] AuthenticationKey)
    {
        public void Clear()
        {
            CryptographicOperations.ZeroMemory(EncryptionKey);
            CryptographicOperations.ZeroMemory(AuthenticationKey);
        }
    }

    private static SrtpResult ToResult(ReplayCheck check) => check switch
    {
        ReplayCheck.Replayed => SrtpResult.Replayed,
        ReplayCheck.TooOld => SrtpResult.TooOld,
        _ => SrtpResult.Ok,
    };
}
