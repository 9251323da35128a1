using Transport.Ice;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.WebRtc;

// Offer/answer (RFC 8829): the initial exchange, then any number of subsequent ones on the same connection, offered
// by either side. A subsequent exchange keeps the DTLS association and role (RFC 8842 section 5.5), the SCTP
// association and every negotiated section; one whose ICE credentials change is an ICE restart (RFC 8445 section 9,
// RFC 8839 section 4.4.1.1.2): a new check list while data keeps flowing on the old selected pair.
public sealed partial class PeerConnectionCore
{
    private readonly ulong _sessionId = (ulong)Random.Shared.NextInt64(1, long.MaxValue) >> 1;
    private ulong _sessionVersion = 1;
    private SignalingState _signaling = SignalingState.Stable;
    // True once one offer/answer exchange completed: later descriptions are subsequent ones.
    private bool _negotiated;
    // Our local description of the last completed exchange (the template of a subsequent offer).
    private SessionDescription? _currentLocal;
    // Whether our pending offer restarts ICE.
    private bool _offerRestartsIce;
    // Who offered the last completed exchange, restored when our pending offer is rolled back.
    private bool _weOfferedBefore;
    // The running restart: when it began and the local ufrag of its generation (cleared when its pair is selected).
    private (TimeSpan Started, string Ufrag)? _restart;
    // Remote ufrags of earlier generations: trickled candidates carrying one of them are stale (RFC 8838 section 4.2).
    private readonly HashSet<string> _oldRemoteUfrags = new(StringComparer.Ordinal);
    // Candidates whose ufrag names a generation not signalled yet (they raced ahead of the description): bounded.
    private const int MaxEarlyCandidates = 32;
    private readonly List<SdpCandidate> _earlyCandidates = new();

    /// <summary>Where the offer/answer exchange stands.</summary>
    public SignalingState SignalingState => _signaling;

    /// <summary>The pair data goes on, with the credentials of the ICE generation it belongs to; null before one is selected.</summary>
    public SelectedIcePair? SelectedPair { get; private set; }

    /// <summary>Completed ICE restarts.</summary>
    public int IceRestarts { get; private set; }

    /// <summary>Trickled candidates ignored because they belong to an earlier ICE generation.</summary>
    public long StaleCandidates { get; private set; }

    /// <summary>
    /// Our offer, set as our local description (we wait for its answer in <see cref="SignalingState.HaveLocalOffer"/>).
    /// The first offer says a=setup:actpass; a subsequent one keeps every negotiated section and our DTLS role, and with
    /// <see cref="OfferOptions.IceRestart"/> carries new ICE credentials (RFC 8829 section 5.2.1): the ICE agent starts
    /// a new generation at once, so the peer's checks on it are answered as soon as it has the offer.
    /// </summary>
    /// <exception cref="InvalidOperationException">An offer of ours already waits for its answer.</exception>
    public SessionDescription CreateOffer(TimeSpan now, OfferOptions? options = null)
    {
        Advance(now);
        ThrowIfEnded();
        if (_signaling != SignalingState.Stable)
            throw new InvalidOperationException($"Cannot create an offer in signaling state {_signaling}: our previous offer waits for its " +
                "answer (SetRemoteDescription).");
        SessionDescription offer;
        _progress.OfferExchanged(now);
        _weOfferedBefore = _weOffered;
        if (!_negotiated)
        {
            _weOffered = true;
            StartGathering();
            PrepareSped(null);
            offer = JsepNegotiator.CreateOffer(LocalParameters(endOfCandidates: false, SnapInitForOffer()));
            _offerRestartsIce = false;
        }
        else
        {
            _offerRestartsIce = options?.IceRestart == true;
            if (_offerRestartsIce) BeginIceRestart(byUs: true, now);
            offer = JsepNegotiator.CreateSubsequentOffer(_currentLocal!, LocalParameters(endOfCandidates: false));
            _weOffered = true;
        }
        Stamp(offer);
        _localOffer = offer;
        _signaling = SignalingState.HaveLocalOffer;
        return offer;
    }

    /// <summary>
    /// Our answer to the remote <paramref name="offer"/>, applied at once (the exchange completes). On a negotiated
    /// connection the answer keeps our DTLS role; when the offer carries new ICE credentials (the peer restarts ICE),
    /// we restart too and answer with new credentials of our own (RFC 8829 section 5.3.1).
    /// </summary>
    /// <exception cref="InvalidOperationException">Our own offer waits for its answer (glare: <see cref="Rollback"/> it first), or the offer changes the DTLS
    /// fingerprint or role.</exception>
    public SessionDescription CreateAnswer(SessionDescription offer, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(offer);
        Advance(now);
        ThrowIfEnded();
        if (_signaling != SignalingState.Stable)
            throw new InvalidOperationException($"Cannot answer a remote offer in signaling state {_signaling}: our own offer waits for its " +
                "answer (glare: roll it back first).");
        var remote = RemoteDescription.Read(offer);
        _progress.OfferExchanged(now);
        if (_negotiated)
        {
            CheckSameDtlsAssociation(remote);
            if (CredentialsChanged(remote)) BeginIceRestart(byUs: false, now);
        }
        _weOffered = false;
        StartGathering();
        if (!_negotiated) PrepareSped(remote);
        var answer = JsepNegotiator.CreateAnswer(offer, LocalParameters(endOfCandidates: false, SnapInitForAnswer(remote)));
        Stamp(answer);
        if (answer.BundleGroup is [var tag, ..] && tag != remote.BundleTag) remote = remote.WithBundleTag(offer, tag);
        SetRemote(remote, now);
        ApplyMedia(answer, offer, answer, now);
        Complete(answer);
        return answer;
    }

    /// <summary>
    /// Withdraws our pending offer (JSEP rollback, RFC 8829 section 5.7 and 4.1.10): the signaling state returns to
    /// Stable with everything as the last completed exchange left it, so a remote offer that crossed ours (glare) can
    /// be answered. The offer's session version stays used. An initial offer can be rolled back too: the gathered
    /// candidates and the ICE credentials stay, and our answer then carries them.
    /// </summary>
    /// <exception cref="InvalidOperationException">No offer of ours is pending, or it restarted ICE: the new ICE
    /// generation it began is already running (its credentials may be in use by the peer's checks), so it cannot be
    /// withdrawn; complete the exchange instead (the peer answers, or the impolite side waits for our answer).</exception>
    public void Rollback(TimeSpan now)
    {
        Advance(now);
        ThrowIfEnded();
        if (_signaling != SignalingState.HaveLocalOffer)
            throw new InvalidOperationException($"Nothing to roll back in signaling state {_signaling}: rollback withdraws an offer of " +
                "ours that waits for its answer.");
        if (_offerRestartsIce)
            throw new InvalidOperationException("Our pending offer restarted ICE and its new ICE generation is already running: it cannot be rolled back; " +
                "complete the exchange with the peer's answer.");
        _localOffer = null;
        _weOffered = _negotiated && _weOfferedBefore;
        if (!_negotiated) _offeredMids.Clear();
        _signaling = SignalingState.Stable;
    }

    /// <summary>Applies the remote answer to our offer; the exchange completes.</summary>
    /// <exception cref="InvalidOperationException">No offer of ours waits for an answer, or the answer changes the DTLS fingerprint or role, or changes the ICE
    /// credentials although our offer did not restart ICE.</exception>
    public void SetRemoteDescription(SessionDescription answer, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(answer);
        Advance(now);
        ThrowIfEnded();
        if (_signaling != SignalingState.HaveLocalOffer)
            throw new InvalidOperationException("SetRemoteDescription takes the answer to our offer, and no offer of ours is pending (signaling state " +
                $"{_signaling}); use CreateAnswer for a remote offer.");
        var remote = RemoteDescription.Read(answer);
        if (_negotiated)
        {
            CheckSameDtlsAssociation(remote);
            if (!_offerRestartsIce && CredentialsChanged(remote))
                throw new InvalidOperationException("The answer changes the ICE credentials although our offer did not restart " +
                    "ICE (RFC 8839 section 4.4.1.1.2).");
        }
        if (!_negotiated) OnSnapAnswer(remote);
        SetRemote(remote, now);
        if (_localOffer is not null) ApplyMedia(_localOffer, answer, answer, now);
        Complete(_localOffer!);
    }

    /// <summary>Trickled candidates ignored because they belong to a bundled section other than the BUNDLE tag's.</summary>
    public long OtherSectionCandidates { get; private set; }

    /// <summary>
    /// A trickled remote candidate (or <c>null</c> for end-of-candidates). A candidate whose <c>ufrag</c> extension
    /// names an earlier ICE generation is ignored (counted in <see cref="StaleCandidates"/>); one naming a generation
    /// whose description has not arrived yet is kept until it does. With <paramref name="sdpMid"/> (or, without it,
    /// <paramref name="sdpMLineIndex"/>) naming a section other than the BUNDLE tag's, it is ignored and counted in
    /// <see cref="OtherSectionCandidates"/>: every bundled section uses the tagged section's transport (RFC 9143
    /// section 7), and the peer drops the others' once BUNDLE is accepted.
    /// </summary>
    public void AddRemoteCandidate(SdpCandidate? candidate, TimeSpan now, string? sdpMid = null, int? sdpMLineIndex = null)
    {
        Advance(now);
        if (_remote is { } remote && NamesOtherSection(remote, sdpMid, sdpMLineIndex)) { OtherSectionCandidates++; return; }
        if (candidate is null) { Ice.AddRemoteEndOfCandidates(now); return; }
        if (candidate.Transport != "udp") return; // TCP candidates (RFC 6544) are not used
        if (candidate.GetExtension("ufrag") is { } ufrag && ufrag != _remote?.Ice.UsernameFragment)
        {
            if (_oldRemoteUfrags.Contains(ufrag)) StaleCandidates++;
            else if (_earlyCandidates.Count < MaxEarlyCandidates) _earlyCandidates.Add(candidate);
            return;
        }
        if (candidate.TryToIceCandidate(out var ice)) Ice.AddRemoteCandidate(ice, now);   // typed: no text in between
    }

    private static bool NamesOtherSection(RemoteDescription remote, string? sdpMid, int? sdpMLineIndex) =>
        sdpMid is not null ? remote.BundleTag is { } tag && !string.Equals(sdpMid, tag, StringComparison.Ordinal)
        : sdpMLineIndex is { } index && index != remote.BundleTagIndex;

    private void SetRemote(RemoteDescription remote, TimeSpan now)
    {
        if (remote.Fingerprints.Count == 0) throw new SdpParseException(0, "", "a=fingerprint is missing");
        var previous = _remote;
        _remote = remote;
        // The role is decided once; later exchanges keep it (checked by CheckSameDtlsAssociation): an offer's actpass
        // must not turn the DTLS server we are into a client.
        if (!_negotiated) _dtlsClient = JsepNegotiator.RoleFor(_weOffered, remote.Setup, _options.DtlsAnswerRole) == DtlsRole.Client;
        if (previous is null || CredentialsDiffer(previous.Ice, remote.Ice))
        {
            if (previous is not null) _oldRemoteUfrags.Add(previous.Ice.UsernameFragment);
            Ice.SetRemoteCredentials(new IceCredentials(remote.Ice.UsernameFragment, remote.Ice.Password), now);
        }
        foreach (var c in remote.Candidates) AddRemoteCandidate(c, now);
        if (_earlyCandidates.Count > 0)
        {
            var early = _earlyCandidates.ToArray();
            _earlyCandidates.Clear();
            foreach (var c in early) if (c.GetExtension("ufrag") == remote.Ice.UsernameFragment) AddRemoteCandidate(c, now);
        }
        if (remote.EndOfCandidates) Ice.AddRemoteEndOfCandidates(now);
        if (_state == ConnectionState.New) Transition(ConnectionState.Connecting, new ConnectionReason(ConnectionLayer.Ice, "checks started"));
        if (previous is null) StartSped(remote, now);
        Pump(now);
    }

    private void Complete(SessionDescription local)
    {
        _currentLocal = WithoutUnusedSctpInit(local);
        _negotiated = true;
        _signaling = SignalingState.Stable;
        _offerRestartsIce = false;
    }

    // Every description of ours carries the same session id and a growing version (RFC 3264 section 5 and 8).
    private void Stamp(SessionDescription description) =>
        description.Origin = description.Origin with { SessionId = _sessionId, SessionVersion = ++_sessionVersion };

    private bool CredentialsChanged(RemoteDescription remote) => _remote is { } current && CredentialsDiffer(current.Ice, remote.Ice);

    private static bool CredentialsDiffer(IceParameters a, IceParameters b) =>
        !string.Equals(a.UsernameFragment, b.UsernameFragment, StringComparison.Ordinal) || !string.Equals(a.Password, b.Password, StringComparison.Ordinal);

    // One DTLS association for the connection's life: its certificate and our role stay (RFC 8842 section 5.5).
    private void CheckSameDtlsAssociation(RemoteDescription remote)
    {
        var known = _remote!.Fingerprints;
        var same = false;
        foreach (var f in remote.Fingerprints)
            foreach (var k in known)
                if (string.Equals(f.Algorithm, k.Algorithm, StringComparison.OrdinalIgnoreCase)
                    && string.Equals(f.Value, k.Value, StringComparison.OrdinalIgnoreCase))
                    same = true;
        if (!same)
            throw new InvalidOperationException("The remote description changes the DTLS fingerprint: a new DTLS association is not " +
                "supported on an existing connection.");
        if (_dtlsClient is not { } client) return;
        var offered = remote.Setup;
        var conflict = _signaling == SignalingState.HaveLocalOffer
            ? (JsepNegotiator.RoleFor(weOffered: true, offered) == DtlsRole.Client) != client
            : (client && offered == SdpSetup.Active) || (!client && offered == SdpSetup.Passive);
        if (conflict)
            throw new InvalidOperationException($"The remote a=setup:{offered.ToSdp()} would change our DTLS role (we are the " +
                $"{(client ? "client" : "server")}); a new DTLS association is not supported.");
    }

    private void BeginIceRestart(bool byUs, TimeSpan now)
    {
        var previous = Ice.LocalCredentials.Ufrag;
        var fresh = Ice.Restart(now);
        _localUsernameFragments.Add(fresh.Ufrag);
        _restart = (now, fresh.Ufrag);
        _events.Enqueue(new IceRestartStarted(now, byUs, fresh.Ufrag, previous));
    }

    // The pair the agent selects after a restart belongs to the newest generation (it selects only current pairs).
    private void OnSelectedPairChanged(IceSelectedPairChangedEvent e, TimeSpan now)
    {
        SelectedPair = new SelectedIcePair(e.Local, e.Remote, Ice.LocalCredentials.Ufrag, _remote?.Ice.UsernameFragment ?? "", now);
        if (_restart is not { } r || Ice.LocalCredentials.Ufrag != r.Ufrag) return;
        _restart = null;
        IceRestarts++;
        _events.Enqueue(new IceRestartCompleted(now, r.Ufrag, _remote?.Ice.UsernameFragment ?? "", e.Local, e.Remote, now - r.Started));
    }

    /// <summary>A human-readable account of ICE: state, role, credentials, check list, selected pair, drops.</summary>
    public string DescribeIce()
    {
        var sb = new System.Text.StringBuilder();
        sb.Append($"ice {Ice.State} {Ice.CurrentRole}, local ufrag {Ice.LocalCredentials.Ufrag}, remote ufrag {_remote?.Ice.UsernameFragment}, signaling " +
            $"{_signaling}, restarts {IceRestarts}");
        if (_restart is { } r) sb.Append($", restart to {r.Ufrag} running since {r.Started.TotalMilliseconds:0} ms");
        sb.Append($"; selected {SelectedPair?.Local.Address}->{SelectedPair?.Remote.Address} ({SelectedPair?.LocalUsernameFragment})");
        foreach (var p in Ice.CandidatePairs)
            sb.Append($"; pair {p.Local.Address}->{p.Remote.Address} {p.Remote.Type} {p.State}{(p.Nominated ? " nominated" : "")}");
        foreach (var reason in Enum.GetValues<IceDropReason>())
            if (Ice.DroppedCount(reason) is > 0 and var n) sb.Append($"; dropped {reason} {n}");
        return sb.ToString();
    }
}
