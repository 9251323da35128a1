using Transport.Sctp.Wire;

namespace Transport.Sctp;

/// <summary>
/// The sender's congestion window (RFC 9260 section 7.2): slow start and congestion avoidance with partial_bytes_acked
/// (7.2.1, 7.2.2), the halving on loss found by fast retransmit with one reduction per fast recovery (7.2.4) or by a
/// T3-rtx expiry (7.2.3). It sees only byte counts and TSNs the sender reports; which chunks are outstanding, acked or
/// to retransmit is the sender's (<see cref="SctpAssociation"/>'s retransmission ring).
/// </summary>
internal sealed class CongestionControl
{
    private readonly int _mtu;

    public CongestionControl(int mtu) => _mtu = mtu;

    /// <summary>cwnd in bytes.</summary>
    public int Cwnd { get; private set; }
    /// <summary>ssthresh in bytes.</summary>
    public int Ssthresh { get; private set; }
    /// <summary>partial_bytes_acked (congestion avoidance).</summary>
    public int PartialBytesAcked { get; private set; }
    /// <summary>In fast recovery (7.2.4): no second reduction and no growth until the exit point is acknowledged.</summary>
    public bool InFastRecovery { get; private set; }
    /// <summary>The highest TSN outstanding when fast recovery began.</summary>
    public uint FastRecoveryExit { get; private set; }

    /// <summary>The initial window (7.2.1): min(4 MTU, max(2 MTU, 4380)); ssthresh = the peer's a_rwnd.</summary>
    public void Start(uint peerWindow)
    {
        Cwnd = Math.Min(4 * _mtu, Math.Max(2 * _mtu, 4380));
        Ssthresh = (int)Math.Min(peerWindow, int.MaxValue);
        PartialBytesAcked = 0;
        InFastRecovery = false;
    }

    /// <summary>
    /// A chunk is fast-retransmitted (7.2.4 (2)-(3)); <paramref name="highestOutstanding"/> is the highest TSN sent.
    /// Outside fast recovery: ssthresh = max(cwnd / 2, 4 MTU), cwnd = ssthresh, and fast recovery begins; true then
    /// (a reduction). Inside it: nothing, false.
    /// </summary>
    public bool OnFastRetransmit(uint highestOutstanding)
    {
        if (InFastRecovery) return false;
        InFastRecovery = true;
        FastRecoveryExit = highestOutstanding;
        Ssthresh = Math.Max(Cwnd / 2, 4 * _mtu);
        Cwnd = Ssthresh;
        PartialBytesAcked = 0;
        return true;
    }

    /// <summary>
    /// A SACK was processed. <paramref name="cumulativeAck"/>: its cumulative TSN ack; <paramref name="cumAdvanced"/>:
    /// it moved; <paramref name="flightBefore"/> / <paramref name="flightAfter"/>: bytes outstanding before and after;
    /// <paramref name="newlyAcked"/>: bytes it acknowledged for the first time (cumulatively or by gap blocks). Fast
    /// recovery ends once the exit point is acknowledged; the window grows only when the cumulative ack moved, outside
    /// fast recovery, and the window was in use (flight + MTU >= cwnd): by min(acked, MTU) in slow start (cwnd &lt;=
    /// ssthresh), by one MTU per cwnd of acknowledged bytes in congestion avoidance.
    /// </summary>
    public void OnSack(uint cumulativeAck, bool cumAdvanced, int flightBefore, long newlyAcked, int flightAfter)
    {
        if (InFastRecovery && Serial.Ge(cumulativeAck, FastRecoveryExit)) InFastRecovery = false;
        if (cumAdvanced && !InFastRecovery && flightBefore + _mtu >= Cwnd)
        {
            if (Cwnd <= Ssthresh) Cwnd += (int)Math.Min(newlyAcked, _mtu);
            else
            {
                PartialBytesAcked += (int)newlyAcked;
                if (PartialBytesAcked >= Cwnd) { PartialBytesAcked -= Cwnd; Cwnd += _mtu; }
            }
        }
        if (flightAfter == 0) PartialBytesAcked = 0;
    }

    /// <summary>T3-rtx expired (7.2.3): ssthresh = max(cwnd / 2, 4 MTU), cwnd = 1 MTU; fast recovery ends.</summary>
    public void OnRetransmissionTimeout()
    {
        Ssthresh = Math.Max(Cwnd / 2, 4 * _mtu);
        Cwnd = _mtu;
        PartialBytesAcked = 0;
        InFastRecovery = false;
    }
}
