namespace Transport.Rtp.Srtp;

/// <summary>Options of an SRTP context. The defaults fit WebRTC (no MKI, 64-packet replay window).</summary>
public sealed class SrtpOptions
{
    /// <summary>Largest replay window accepted (RFC 3711 section 3.3.2 requires at least 64).</summary>
    public const int MaxReplayWindowSize = 32768;

    /// <summary>SRTP replay window in packets (64 to 32768). Default 64, the RFC 3711 minimum.</summary>
    public int ReplayWindowSize { get; init; } = 64;

    /// <summary>SRTCP replay window in packets (64 to 32768). Default 64.</summary>
    public int RtcpReplayWindowSize { get; init; } = 64;

    /// <summary>
    /// The master key identifier to send and to require (RFC 3711 section 3.1). Empty (the default) means no MKI:
    /// packets are then read without one, so a packet that carries an MKI fails authentication.
    /// </summary>
    public ReadOnlyMemory<byte> Mki { get; init; } = ReadOnlyMemory<byte>.Empty;

    /// <summary>Largest number of SSRCs one context tracks; packets of further SSRCs are dropped. Default 1024.</summary>
    public int MaxStreams { get; init; } = 1024;

    /// <summary>Whether outgoing SRTCP is encrypted (E bit set, RFC 3711 section 3.4). Default true.</summary>
    public bool EncryptRtcp { get; init; } = true;

    /// <summary>The defaults.</summary>
    public static SrtpOptions Default { get; } = new();

    internal void Validate()
    {
        if (ReplayWindowSize < 64 || ReplayWindowSize > MaxReplayWindowSize)
        {
            throw new ArgumentOutOfRangeException(nameof(ReplayWindowSize), ReplayWindowSize, "Replay window must be 64 to 32768.");
        }

        if (RtcpReplayWindowSize < 64 || RtcpReplayWindowSize > MaxReplayWindowSize)
        {
            throw new ArgumentOutOfRangeException(nameof(RtcpReplayWindowSize), RtcpReplayWindowSize, "Replay window must be 64 to 32768.");
        }

        if (Mki.Length > 128)
        {
            throw new ArgumentOutOfRangeException(nameof(Mki), Mki.Length, "MKI longer than 128 bytes.");
        }

        if (MaxStreams < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxStreams), MaxStreams, "At least one stream.");
        }
    }
}
