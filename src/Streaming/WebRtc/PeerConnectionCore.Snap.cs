using Transport.Sctp;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.WebRtc;

// SNAP (draft-hancke-tsvwg-snap): both SCTP INITs travel in the offer and the answer (a=sctp-init), and the
// association starts ESTABLISHED when DTLS is up. Decided once, by the initial exchange; later exchanges keep the
// decision (a re-offer repeats our INIT when SNAP is in use, an answer to a re-offer carries it only then).
public sealed partial class PeerConnectionCore
{
    private SctpInitParameters? _snapLocal, _snapRemote;

    /// <summary>True when both descriptions carried a valid a=sctp-init: the association skips the SCTP handshake.</summary>
    public bool SnapInUse => _snapLocal is not null && _snapRemote is not null;

    /// <summary>
    /// Why SNAP is not in use although <see cref="PeerConnectionOptions.Snap"/> is on (the peer sent no a=sctp-init,
    /// or an invalid one: the reason names what is wrong), or null. The four-way handshake runs then.
    /// </summary>
    public string? SnapRefusal { get; private set; }

    private SctpInitParameters LocalSnapInit() => _snapLocal ??= SctpInitParameters.CreateLocal(_options.Sctp);

    // The initial offer carries our INIT; a subsequent one is made from the current description, which keeps it only
    // when SNAP is in use (WithoutUnusedSctpInit).
    private string? SnapInitForOffer() => _options.Snap && !_negotiated ? LocalSnapInit().ToBase64() : null;

    // The answer carries OUR INIT, and only when the offer's is valid: echoing the offer's value back (as
    // libdatachannel did) makes the offerer start an association with its own tag and TSN on both ends.
    private string? SnapInitForAnswer(RemoteDescription offer)
    {
        if (!_options.Snap || offer.SctpPort is null) return null;
        if (_negotiated) return SnapInUse ? _snapLocal!.ToBase64() : null;
        if (!TryReadRemoteInit(offer, "offer")) return null;
        return LocalSnapInit().ToBase64();
    }

    // Our initial offer carried our INIT: SNAP runs when the answer carries a valid one of its own.
    private void OnSnapAnswer(RemoteDescription answer)
    {
        if (!_options.Snap || _snapLocal is null || answer.SctpPort is null) return;
        TryReadRemoteInit(answer, "answer");
    }

    private bool TryReadRemoteInit(RemoteDescription remote, string what)
    {
        if (remote.SctpInit is not { } value) { SnapRefusal = $"the {what} carries no a=sctp-init"; return false; }
        if (!SctpInitParameters.TryParseBase64(value, out var init, out var error)) { SnapRefusal = $"the {what}'s a=sctp-init is invalid: {error}"; return false; }
        if (_snapLocal is { } ours && init!.InitiateTag == ours.InitiateTag && init.InitialTsn == ours.InitialTsn)
        {
            SnapRefusal = $"the {what}'s a=sctp-init is our own INIT echoed back";
            return false;
        }
        _snapRemote = init;
        SnapRefusal = null;
        return true;
    }

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
        if (SnapInUse) sctp.StartWithPeerInit(_snapLocal!, _snapRemote!, now);
        else if (_dtlsClient == true) sctp.Connect(now);
    }

    private static SessionDescription WithoutUnusedSctpInit(SessionDescription local, bool snapInUse)
    {
        if (snapInUse || !local.Media.Exists(m => m.HasAttribute(JsepNegotiator.SctpInitAttribute))) return local;
        var copy = local.Clone();
        foreach (var m in copy.Media) m.RemoveAttributes(JsepNegotiator.SctpInitAttribute);
        return copy;
    }

    private SessionDescription WithoutUnusedSctpInit(SessionDescription local) => WithoutUnusedSctpInit(local, SnapInUse);
}
