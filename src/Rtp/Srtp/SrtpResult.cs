namespace Transport.Rtp.Srtp;

/// <summary>Outcome of a protect or unprotect call. Only <see cref="Ok"/> leaves a usable packet.</summary>
public enum SrtpResult
{
    /// <summary>The packet was protected or verified and decrypted.</summary>
    Ok = 0,

    /// <summary>Too short or not an RTP/RTCP version 2 packet; dropped.</summary>
    Malformed,

    /// <summary>The authentication tag did not verify; dropped.</summary>
    AuthenticationFailed,

    /// <summary>The packet index was already received (RFC 3711 section 3.3.2); dropped.</summary>
    Replayed,

    /// <summary>The packet index is behind the replay window; dropped.</summary>
    TooOld,

    /// <summary>The MKI does not match the configured one; dropped.</summary>
    MkiMismatch,

    /// <summary>The destination cannot hold the protected packet (tag and trailer).</summary>
    BufferTooSmall,

    /// <summary>The stream limit (<see cref="SrtpOptions.MaxStreams"/>) is reached; a new SSRC is dropped.</summary>
    TooManyStreams,

    /// <summary>The SRTCP index space (2^31) is exhausted; the master key must be replaced.</summary>
    KeyExhausted,
}

/// <summary>Counters of one <see cref="SrtpContext"/>: packets processed and packets dropped, by reason.</summary>
public sealed class SrtpCounters
{
    /// <summary>SRTP packets protected.</summary>
    public long RtpProtected { get; internal set; }

    /// <summary>SRTP packets verified and decrypted.</summary>
    public long RtpUnprotected { get; internal set; }

    /// <summary>SRTCP packets protected.</summary>
    public long RtcpProtected { get; internal set; }

    /// <summary>SRTCP packets verified and decrypted.</summary>
    public long RtcpUnprotected { get; internal set; }

    /// <summary>Packets dropped because the tag did not verify.</summary>
    public long AuthenticationFailures { get; internal set; }

    /// <summary>Packets dropped as replays (duplicate index or behind the window).</summary>
    public long Replays { get; internal set; }

    /// <summary>Packets dropped as malformed, with a foreign MKI, or because of the stream limit.</summary>
    public long Malformed { get; internal set; }

    internal SrtpResult Count(SrtpResult result)
    {
        switch (result)
        {
            case SrtpResult.AuthenticationFailed:
                AuthenticationFailures++;
                break;
            case SrtpResult.Replayed:
            case SrtpResult.TooOld:
                Replays++;
                break;
            case SrtpResult.Malformed:
            case SrtpResult.MkiMismatch:
            case SrtpResult.TooManyStreams:
                Malformed++;
                break;
        }

        return result;
    }
}
