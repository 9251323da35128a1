using Transport.Sctp;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.WebRtc;

// SNAP (draft-hancke-tsvwg-snap): both SCTP INITs travel in the offer and the answer (a=sctp-init), and the
// association starts ESTABLISHED when DTLS is up. The INITs and the decision are SnapInitExchange's; the core hands it
// the descriptions' values and starts the association.
public sealed partial class PeerConnectionCore
{
    private readonly SnapInitExchange _snap;

    /// <summary>True when both descriptions carried a valid a=sctp-init: the association skips the SCTP handshake.</summary>
    public bool SnapInUse => _snap.InUse;

    /// <summary>
    /// Why SNAP is not in use although <see cref="PeerConnectionOptions.Snap"/> is on (the peer sent no a=sctp-init,
    /// or an invalid one: the reason names what is wrong), or null. The four-way handshake runs then.
    /// </summary>
    public string? SnapRefusal => _snap.Refusal;

    private string? SnapInitForOffer() => _snap.InitForOffer(_negotiated);

    private string? SnapInitForAnswer(RemoteDescription offer) => _snap.InitForAnswer(offer.SctpInit, offer.SctpPort is not null, _negotiated);

    private void OnSnapAnswer(RemoteDescription answer) => _snap.OnAnswer(answer.SctpInit, answer.SctpPort is not null);

    // When DTLS is up: with both INITs the association is ESTABLISHED at once, and channels created before it open now
    // (a negotiated one, with no DCEP, before the peer's first DATA can arrive); without, the DTLS client sends INIT.
    // Either way its first retransmission timeout comes from ICE's round trip (SctpAssociation.SeedRoundTripTime).
    private void StartSctp(SctpAssociation sctp, TimeSpan now)
    {
        foreach (var (label, options) in _pendingChannels) sctp.CreateDataChannel(label, options, now);
        _pendingChannels.Clear();
        // The checks measured the path's round trip: a lost first DATA (SNAP) or INIT goes again after about 3 RTT
        // (RTO.Min 200 ms at least), not after RTO.Initial (1 s), which the association would wait without it.
        if ((Ice.RoundTripTime ?? _validPairRtt) is { } rtt) sctp.SeedRoundTripTime(rtt);
        if (!_snap.TryStart(sctp, now) && _dtlsClient == true) sctp.Connect(now);
    }

    private SessionDescription WithoutUnusedSctpInit(SessionDescription local) => _snap.WithoutUnusedInit(local);
}
