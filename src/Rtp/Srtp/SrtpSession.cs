namespace Transport.Rtp.Srtp;

/// <summary>
/// Both directions of an SRTP session keyed from DTLS-SRTP (RFC 5764 section 4.2): the exported keying material
/// is client_write_key | server_write_key | client_write_salt | server_write_salt. The client protects with the
/// client half and unprotects with the server half; the server does the opposite.
/// </summary>
public sealed class SrtpSession : IDisposable
{
    private SrtpSession(SrtpContext outbound, SrtpContext inbound)
    {
        Outbound = outbound;
        Inbound = inbound;
    }

    /// <summary>Context used to protect what this endpoint sends.</summary>
    public SrtpContext Outbound { get; }

    /// <summary>Context used to unprotect what the peer sends.</summary>
    public SrtpContext Inbound { get; }

    /// <summary>The protection profile.</summary>
    public SrtpProfile Profile => Outbound.Profile;

    /// <summary>Creates a session from the DTLS-SRTP keying material (<see cref="SrtpProfileInfo.KeyingMaterialLength"/> bytes).</summary>
    /// <param name="profile">The negotiated protection profile.</param>
    /// <param name="keyingMaterial">The output of the exporter with label "EXTRACTOR-dtls_srtp".</param>
    /// <param name="isClient">True when this endpoint was the DTLS client.</param>
    /// <param name="options">Options for both directions.</param>
    public static SrtpSession Create(SrtpProfile profile, ReadOnlySpan<byte> keyingMaterial, bool isClient, SrtpOptions? options = null)
    {
        int keyLength = SrtpProfileInfo.MasterKeyLength(profile);
        int saltLength = SrtpProfileInfo.MasterSaltLength(profile);
        if (keyingMaterial.Length != SrtpProfileInfo.KeyingMaterialLength(profile))
        {
            throw new ArgumentException($"{profile} needs {SrtpProfileInfo.KeyingMaterialLength(profile)} bytes of keying material.", nameof(keyingMaterial));
        }

        ReadOnlySpan<byte> clientKey = keyingMaterial.Slice(0, keyLength);
        ReadOnlySpan<byte> serverKey = keyingMaterial.Slice(keyLength, keyLength);
        ReadOnlySpan<byte> clientSalt = keyingMaterial.Slice(2 * keyLength, saltLength);
        ReadOnlySpan<byte> serverSalt = keyingMaterial.Slice(2 * keyLength + saltLength, saltLength);
        SrtpContext client = SrtpContext.Create(profile, clientKey, clientSalt, options);
        SrtpContext server = SrtpContext.Create(profile, serverKey, serverSalt, options);
        return isClient ? new SrtpSession(client, server) : new SrtpSession(server, client);
    }

    /// <inheritdoc cref="SrtpContext.ProtectRtp(Span{byte}, int, out int)"/>
    public SrtpResult ProtectRtp(Span<byte> buffer, int length, out int protectedLength) => Outbound.ProtectRtp(buffer, length, out protectedLength);

    /// <inheritdoc cref="SrtpContext.UnprotectRtp(Span{byte}, out int)"/>
    public SrtpResult UnprotectRtp(Span<byte> packet, out int plainLength) => Inbound.UnprotectRtp(packet, out plainLength);

    /// <inheritdoc cref="SrtpContext.ProtectRtcp(Span{byte}, int, out int)"/>
    public SrtpResult ProtectRtcp(Span<byte> buffer, int length, out int protectedLength) => Outbound.ProtectRtcp(buffer, length, out protectedLength);

    /// <inheritdoc cref="SrtpContext.UnprotectRtcp(Span{byte}, out int)"/>
    public SrtpResult UnprotectRtcp(Span<byte> packet, out int plainLength) => Inbound.UnprotectRtcp(packet, out plainLength);

    /// <inheritdoc />
    public void Dispose()
    {
        Outbound.Dispose();
        Inbound.Dispose();
    }
}
