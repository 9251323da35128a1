using Transport.Sctp;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.WebRtc;

/// <summary>
/// SNAP's state in the offer/answer (draft-hancke-tsvwg-snap): our SCTP INIT (made once, when a description first
/// carries it), the peer's INIT read from its a=sctp-init, whether both are there (the association then starts
/// ESTABLISHED when DTLS is up, with no four-way handshake) and, when not, why. Decided by the initial exchange; later
/// exchanges keep the decision: a re-offer repeats our INIT only when SNAP is in use, and so does an answer to one.
/// The peer connection owns the exchange and the association; this type sees only the a=sctp-init values.
/// </summary>
internal sealed class SnapInitExchange(bool enabled, SctpOptions sctp)
{
    private SctpInitParameters? _local, _remote;

    /// <summary>True when both descriptions carried a valid a=sctp-init.</summary>
    public bool InUse => _local is not null && _remote is not null;

    /// <summary>Why SNAP is not in use although it is enabled (what the peer's description lacks or got wrong), or null.</summary>
    public string? Refusal { get; private set; }

    /// <summary>Our INIT, once a description carried it.</summary>
    public SctpInitParameters? Local => _local;

    /// <summary>The peer's INIT, once a valid one arrived.</summary>
    public SctpInitParameters? Remote => _remote;

    private SctpInitParameters LocalInit() => _local ??= SctpInitParameters.CreateLocal(sctp);

    /// <summary>
    /// The a=sctp-init of our offer: our INIT in the initial offer; none in a subsequent one (it is made from the current
    /// description, which keeps our INIT only when SNAP is in use: <see cref="WithoutUnusedInit"/>).
    /// </summary>
    public string? InitForOffer(bool negotiated) => enabled && !negotiated ? LocalInit().ToBase64() : null;

    /// <summary>
    /// The a=sctp-init of our answer: OUR INIT, and only when the offer's is valid (echoing the offer's value back, as
    /// libdatachannel did, makes the offerer start an association with its own tag and TSN on both ends). To a
    /// subsequent offer: our INIT again when SNAP is in use, else none.
    /// </summary>
    public string? InitForAnswer(string? offeredInit, bool offerHasSctp, bool negotiated)
    {
        if (!enabled || !offerHasSctp) return null;
        if (negotiated) return InUse ? _local!.ToBase64() : null;
        if (!TryReadRemote(offeredInit, "offer")) return null;
        return LocalInit().ToBase64();
    }

    /// <summary>The answer to our initial offer (which carried our INIT): SNAP runs when it carries a valid INIT of its own.</summary>
    public void OnAnswer(string? answeredInit, bool answerHasSctp)
    {
        if (!enabled || _local is null || !answerHasSctp) return;
        TryReadRemote(answeredInit, "answer");
    }

    private bool TryReadRemote(string? value, string what)
    {
        if (value is null) { Refusal = $"the {what} carries no a=sctp-init"; return false; }
        if (!SctpInitParameters.TryParseBase64(value, out var init, out var error)) { Refusal = $"the {what}'s a=sctp-init is invalid: {error}"; return false; }
        if (_local is { } ours && init!.InitiateTag == ours.InitiateTag && init.InitialTsn == ours.InitialTsn)
        {
            Refusal = $"the {what}'s a=sctp-init is our own INIT echoed back";
            return false;
        }
        _remote = init;
        Refusal = null;
        return true;
    }

    /// <summary>With both INITs, starts <paramref name="association"/> ESTABLISHED from them and returns true; else false.</summary>
    public bool TryStart(SctpAssociation association, TimeSpan now)
    {
        if (!InUse) return false;
        association.StartWithPeerInit(_local!, _remote!, now);
        return true;
    }

    /// <summary>Our description as the template of a later offer: without a=sctp-init when SNAP is not in use.</summary>
    public SessionDescription WithoutUnusedInit(SessionDescription local)
    {
        if (InUse || !local.Media.Exists(m => m.HasAttribute(JsepNegotiator.SctpInitAttribute))) return local;
        var copy = local.Clone();
        foreach (var m in copy.Media) m.RemoveAttributes(JsepNegotiator.SctpInitAttribute);
        return copy;
    }
}
