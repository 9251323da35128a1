using System.Security.Cryptography;
using Transport.Rtp.Srtp;

namespace Transport.Streaming.WebRtc;

/// <summary>
/// The SRTP keys DTLS exported (RFC 5764 section 4.2) and the session made from them when media first needs it (a
/// packet to protect or unprotect): a data-only connection never makes one (its four contexts' key schedules and
/// counters are about 2.3 KiB). The keying material is wiped once the session is made, or at <see cref="Dispose"/>.
/// Shared by the peer connection (it sets the keys, unprotects) and its <see cref="MediaSendPath"/> (it protects).
/// </summary>
internal sealed class SrtpKeying(SrtpOptions? options) : IDisposable
{
    private SrtpSession? _session;
    private (SrtpProfile Profile, byte[] Material, bool Client)? _keys;

    /// <summary>True once DTLS connected with use_srtp (whether or not the session was made yet).</summary>
    public bool HasKeys => _session is not null || _keys is not null;

    /// <summary>True when the session exists (media used it).</summary>
    public bool SessionMade => _session is not null;

    /// <summary>The session, made on first use; null before the keys.</summary>
    public SrtpSession? Session => _session ?? Create();

    /// <summary>The keys DTLS exported: <paramref name="material"/> is kept (and later wiped), not copied.</summary>
    public void SetKeys(SrtpProfile profile, byte[] material, bool client) => _keys = (profile, material, client);

    private SrtpSession? Create()
    {
        if (_keys is not { } keys) return null;
        _session = SrtpSession.Create(keys.Profile, keys.Material, keys.Client, options);
        CryptographicOperations.ZeroMemory(keys.Material);
        _keys = null;
        return _session;
    }

    public void Dispose()
    {
        _session?.Dispose();
        if (_keys is { } keys) CryptographicOperations.ZeroMemory(keys.Material);
        _keys = null;
    }
}
