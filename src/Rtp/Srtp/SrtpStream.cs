using Transport.Crypto;

namespace Transport.Rtp.Srtp;

/// <summary>Per-SSRC cryptographic state (RFC 3711 section 3.2.3): ROC, highest index, replay windows, SRTCP index.</summary>
internal sealed class SrtpStream
{
    public SrtpStream(uint ssrc) => Ssrc = ssrc;

    public uint Ssrc { get; }

    /// <summary>True once an RTP packet of this SSRC was protected or accepted.</summary>
    public bool RtpStarted;

    /// <summary>Highest 48-bit index: ROC in the upper 32 bits, s_l in the lower 16.</summary>
    public ulong RtpHighestIndex;

    public ReplayWindow? RtpReplay;

    /// <summary>Next SRTCP index to send (31 bits).</summary>
    public uint NextSrtcpIndex;

    public ReplayWindow? RtcpReplay;

    /// <summary>
    /// RFC 3711 section 3.3.1 and Appendix A: the index whose low 16 bits are <paramref name="sequence"/> and that is
    /// closest to the highest index seen. With ROC 0 the guess never goes below zero (libsrtp behaves the same).
    /// </summary>
    public ulong EstimateIndex(ushort sequence)
    {
        if (!RtpStarted)
        {
            return sequence;
        }

        uint roc = (uint)(RtpHighestIndex >> 16);
        int sl = (ushort)RtpHighestIndex;
        uint v = roc;
        if (sl < 32768)
        {
            if (sequence - sl > 32768 && roc > 0)
            {
                v = roc - 1;
            }
        }
        else if (sl - 32768 > sequence)
        {
            v = roc + 1;
        }

        return ((ulong)v << 16) | sequence;
    }

    public void AdvanceRtp(ulong index)
    {
        if (!RtpStarted || index > RtpHighestIndex)
        {
            RtpHighestIndex = index;
            RtpStarted = true;
        }
    }
}
