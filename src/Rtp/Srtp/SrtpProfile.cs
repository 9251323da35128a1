namespace Transport.Rtp.Srtp;

/// <summary>
/// SRTP protection profiles. The numeric values are the DTLS-SRTP protection profile identifiers
/// (RFC 5764 section 4.1.2, RFC 7714 section 14.2), so a negotiated profile id casts directly.
/// </summary>
public enum SrtpProfile
{
    /// <summary>SRTP_AES128_CM_HMAC_SHA1_80: AES-128 counter mode, HMAC-SHA1 with an 80-bit tag.</summary>
    AesCm128HmacSha1_80 = 0x0001,

    /// <summary>SRTP_AES128_CM_HMAC_SHA1_32: as above with a 32-bit SRTP tag (SRTCP keeps 80 bits, RFC 5764 4.1.2).</summary>
    AesCm128HmacSha1_32 = 0x0002,

    /// <summary>SRTP_AEAD_AES_128_GCM (RFC 7714): AES-128-GCM with a 16-byte tag and a 12-byte salt.</summary>
    AeadAes128Gcm = 0x0007,

    /// <summary>SRTP_AEAD_AES_256_GCM (RFC 7714): AES-256-GCM with a 16-byte tag and a 12-byte salt.</summary>
    AeadAes256Gcm = 0x0008,
}

/// <summary>The lengths each profile uses (RFC 5764 section 4.1.2, RFC 7714 section 14.2).</summary>
public static class SrtpProfileInfo
{
    /// <summary>Master key length in bytes.</summary>
    public static int MasterKeyLength(SrtpProfile profile) => profile switch
    {
        SrtpProfile.AesCm128HmacSha1_80 or SrtpProfile.AesCm128HmacSha1_32 or SrtpProfile.AeadAes128Gcm => 16,
        SrtpProfile.AeadAes256Gcm => 32,
        _ => throw new ArgumentOutOfRangeException(nameof(profile), profile, "Unknown SRTP profile."),
    };

    /// <summary>Master salt length in bytes: 112 bits for AES-CM, 96 bits for GCM.</summary>
    public static int MasterSaltLength(SrtpProfile profile) => IsAead(profile) ? 12 : 14;

    /// <summary>True for the AEAD (GCM) profiles of RFC 7714.</summary>
    public static bool IsAead(SrtpProfile profile) => profile switch
    {
        SrtpProfile.AesCm128HmacSha1_80 or SrtpProfile.AesCm128HmacSha1_32 => false,
        SrtpProfile.AeadAes128Gcm or SrtpProfile.AeadAes256Gcm => true,
        _ => throw new ArgumentOutOfRangeException(nameof(profile), profile, "Unknown SRTP profile."),
    };

    /// <summary>Authentication tag length appended to SRTP packets.</summary>
    public static int RtpTagLength(SrtpProfile profile) => profile switch
    {
        SrtpProfile.AesCm128HmacSha1_80 => 10,
        SrtpProfile.AesCm128HmacSha1_32 => 4,
        _ => 16,
    };

    /// <summary>Authentication tag length appended to SRTCP packets (80 bits for both SHA1 profiles).</summary>
    public static int RtcpTagLength(SrtpProfile profile) => IsAead(profile) ? 16 : 10;

    /// <summary>Length of the DTLS-SRTP keying material to export: 2 * (key + salt) (RFC 5764 section 4.2).</summary>
    public static int KeyingMaterialLength(SrtpProfile profile) =>
        2 * (MasterKeyLength(profile) + MasterSaltLength(profile));

    /// <summary>Largest number of bytes protect adds to an RTP packet (tag plus configured MKI).</summary>
    public static int RtpOverhead(SrtpProfile profile, int mkiLength = 0) => RtpTagLength(profile) + mkiLength;

    /// <summary>Bytes protect adds to an RTCP packet: SRTCP index word, tag and MKI.</summary>
    public static int RtcpOverhead(SrtpProfile profile, int mkiLength = 0) => 4 + RtcpTagLength(profile) + mkiLength;
}
