namespace Transport.Dtls;

/// <summary>SRTP key and salt lengths per profile (RFC 5764 section 4.1.2, RFC 7714 section 12).</summary>
public static class SrtpProfileInfo
{
    /// <summary>Master key length in bytes.</summary>
    public static int KeyLength(SrtpProtectionProfile profile) => profile == SrtpProtectionProfile.AeadAes256Gcm ? 32 : 16;

    /// <summary>Master salt length in bytes.</summary>
    public static int SaltLength(SrtpProtectionProfile profile) =>
        profile is SrtpProtectionProfile.AeadAes128Gcm or SrtpProtectionProfile.AeadAes256Gcm ? 12 : 14;

    /// <summary>True for the four profiles this implementation knows.</summary>
    public static bool IsKnown(SrtpProtectionProfile profile) => profile is SrtpProtectionProfile.Aes128CmHmacSha1_80
        or SrtpProtectionProfile.Aes128CmHmacSha1_32 or SrtpProtectionProfile.AeadAes128Gcm or SrtpProtectionProfile.AeadAes256Gcm;
}

/// <summary>
/// SRTP master keys and salts split from the exporter output (RFC 5764 section 4.2):
/// client_write_key | server_write_key | client_write_salt | server_write_salt. "Local" is what this endpoint
/// protects its outgoing SRTP with, "Remote" is what it unprotects with.
/// </summary>
public sealed record SrtpKeyingMaterial(SrtpProtectionProfile Profile, byte[] LocalKey, byte[] LocalSalt, byte[] RemoteKey, byte[] RemoteSalt)
{
    /// <summary>Splits the <c>EXTRACTOR-dtls_srtp</c> output as RFC 5764 section 4.2 lays it out.</summary>
    public static SrtpKeyingMaterial Split(SrtpProtectionProfile profile, ReadOnlySpan<byte> material, bool isClient)
    {
        int k = SrtpProfileInfo.KeyLength(profile), s = SrtpProfileInfo.SaltLength(profile);
        if (material.Length < 2 * (k + s)) throw new ArgumentException("Keying material too short for the profile.", nameof(material));
        var clientKey = material[..k].ToArray();
        var serverKey = material.Slice(k, k).ToArray();
        var clientSalt = material.Slice(2 * k, s).ToArray();
        var serverSalt = material.Slice(2 * k + s, s).ToArray();
        return isClient
            ? new SrtpKeyingMaterial(profile, clientKey, clientSalt, serverKey, serverSalt)
            : new SrtpKeyingMaterial(profile, serverKey, serverSalt, clientKey, clientSalt);
    }
}
