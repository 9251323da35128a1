using System.Net;
using Transport.Ice.Stun;

namespace Transport.Ice;

/// <summary>Incoming datagrams: classification, Binding requests (RFC 8445 section 7.3), application data.</summary>
public sealed partial class IceAgent
{
    /// <summary>
    /// A datagram arrived on <paramref name="local"/> from <paramref name="remote"/>. STUN is consumed; anything else
    /// from a valid pair is returned as <see cref="IceReceiveResult.ApplicationData"/> for the layer above (DTLS,
    /// SRTP). Bad or unauthenticated input is dropped and counted, never thrown, never answered.
    /// </summary>
    /// <remarks>
    /// With TURN servers configured, use the overload that gives the application data: what arrives from a TURN
    /// server is unwrapped, and the data is then a slice of the datagram.
    /// </remarks>
    public IceReceiveResult HandleDatagram(ReadOnlySpan<byte> datagram, IPEndPoint local, IPEndPoint remote, TimeSpan now) =>
        HandleDatagram(datagram, local, remote, now, out _);

    /// <summary>
    /// A datagram arrived on <paramref name="local"/> from <paramref name="remote"/>. Like
    /// <see cref="HandleDatagram(ReadOnlySpan{byte}, IPEndPoint, IPEndPoint, TimeSpan)"/>, and on
    /// <see cref="IceReceiveResult.ApplicationData"/> <paramref name="applicationData"/> holds the bytes for the layer
    /// above: the datagram itself, or the payload a TURN server relayed (a slice of the datagram, copy-free, valid
    /// during the call).
    /// </summary>
    /// <param name="datagram">The datagram as it arrived.</param>
    /// <param name="local">The local address it arrived on.</param>
    /// <param name="remote">The address it came from.</param>
    /// <param name="now">The current time.</param>
    /// <param name="applicationData">On <see cref="IceReceiveResult.ApplicationData"/>, the bytes for the layer above.</param>
    /// <param name="kind">
    /// Whether the datagram is STUN, when the caller already read its first byte (RFC 7983: a driver demultiplexing
    /// one port does); <see cref="IceInputKind.Unclassified"/>, the default, makes the agent read it.
    /// </param>
    public IceReceiveResult HandleDatagram(ReadOnlySpan<byte> datagram, IPEndPoint local, IPEndPoint remote, TimeSpan now,
        out ReadOnlySpan<byte> applicationData,
        IceInputKind kind = IceInputKind.Unclassified)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(remote);
        applicationData = default;
        now = Clamp(now);
        if (_disposed || State is IceConnectionState.Failed or IceConnectionState.Closed) { Drop(IceDropReason.NotRunning); return IceReceiveResult.Dropped; }
        // Datagrams from a TURN server on the socket of one of our relays: control messages or relayed data. The
        // same server may answer our server-reflexive Binding requests on that socket too: those stay here.
        if (_relays.Count > 0 && FindRelayByServer(local, remote, tcp: false) is { } relay && !IsResponseToOurRequest(datagram))
            return HandleFromRelay(relay, datagram, now, out applicationData);
        var result = HandleDirect(datagram, local, remote, false, now, kind);
        if (result == IceReceiveResult.ApplicationData) applicationData = datagram;
        return result;
    }

    /// <summary>
    /// One RFC 4571 frame (the bytes after the 2-byte length, split with <see cref="IceTcpFraming"/>) read from an
    /// ICE-TCP connection (RFC 6544) that a peer opened to our passive TCP candidate <paramref name="local"/> from
    /// <paramref name="remote"/>. Like a datagram otherwise: checks are answered on the same connection
    /// (<see cref="IceTransmitPath.IceTcp"/>), the first authenticated one makes a peer-reflexive TCP pair, and non-STUN
    /// from a valid pair is application data (<paramref name="applicationData"/> is then the frame).
    /// </summary>
    public IceReceiveResult HandleIceTcpFrame(ReadOnlySpan<byte> frame, IPEndPoint local, IPEndPoint remote, TimeSpan now,
        out ReadOnlySpan<byte> applicationData,
        IceInputKind kind = IceInputKind.Unclassified)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(remote);
        applicationData = default;
        now = Clamp(now);
        if (_disposed || State is IceConnectionState.Failed or IceConnectionState.Closed) { Drop(IceDropReason.NotRunning); return IceReceiveResult.Dropped; }
        var result = HandleDirect(frame, local, remote, true, now, kind);
        if (result == IceReceiveResult.ApplicationData) applicationData = frame;
        return result;
    }

    private bool IsResponseToOurRequest(ReadOnlySpan<byte> datagram)
    {
        // A STUN response (class bit C1 set, RFC 8489 section 5) whose transaction ID is one of the agent's.
        if (datagram.Length < StunHeader.Size || datagram[0] > 3 || (datagram[0] & 0x01) == 0) return false;
        var id = datagram.Slice(8, StunHeader.TransactionIdSize);
        return _transactions.Find(id) is not null;
    }

    // A datagram as it arrived on 'local' (a host socket, or the relayed address for what a TURN server relayed).
    private IceReceiveResult HandleDirect(ReadOnlySpan<byte> datagram, IPEndPoint local, IPEndPoint remote, bool iceTcp, TimeSpan now,
        IceInputKind kind = IceInputKind.Unclassified)
    {

        // RFC 7983: a first byte of 0..3 is STUN.
        // (read here only when the caller did not classify it: entered without a driver, or a TURN payload).
        var stun = kind == IceInputKind.Unclassified ? !datagram.IsEmpty && datagram[0] <= 3 : kind == IceInputKind.Stun;
        if (!stun) return HandleApplicationData(local, remote, iceTcp, now);
        if (!StunMessage.TryRead(datagram, out var message)) { Drop(IceDropReason.Malformed); return IceReceiveResult.Dropped; }
        var result = message.Class switch
        {
            StunClass.Request => HandleRequest(message, local, remote, iceTcp, now),
            StunClass.Indication => HandleIndication(message, local, remote, iceTcp, now),
            _ => HandleResponse(message, local, remote, iceTcp, now),
        };
        AfterInput(now);
        return result;
    }

    private IceReceiveResult HandleApplicationData(IPEndPoint local, IPEndPoint remote, bool iceTcp, TimeSpan now)
    {
        if (Selected is { } s && s.Matches(local, remote, iceTcp))
        {
            OnApplicationDataReceived(now);
            return IceReceiveResult.ApplicationData;
        }
        // Data may precede our own selection (the peer selected first and starts DTLS at once): accept it on any
        // valid pair, and on a pair the peer has checked with our password, even while our own check on it is still
        // in flight (else the peer's first DTLS flight is lost and costs it a retransmission timeout).
        // One lookup in the pair index, not a walk of the check list per datagram.
        if (FindPair(_current, local, remote, iceTcp) is { } p && (p.Valid || p.State == IceCandidatePairState.Succeeded || p.PeerChecked))
        {
            if (PeerMoved(p, now))
            {
                Select(p, now, IceStateReason.PeerMoved);
                OnApplicationDataReceived(now);
                return IceReceiveResult.ApplicationData;
            }
            RecheckMovedPeer(p, now);
            return EarlyData(p, now);
        }
        // Restarted before any nomination: the previous generation's valid pairs still carry the data (see Restart).
        if (Selected is null && _previous is { } previous && FindPair(previous, local, remote, iceTcp) is { } old
            && (old.Valid || old.State == IceCandidatePairState.Succeeded || old.PeerChecked))
            return EarlyData(old, now);
        Drop(IceDropReason.UnknownPeer);
        return IceReceiveResult.Dropped;
    }

    // NAT rebinding (IceAgentOptions.PeerMoveSilence): the peer's data comes on a valid pair of the current generation
    // other than the selected one, and the selected pair has been silent for a while. Valid: our own check on it was
    // answered with the peer's password, so the new address is the peer's and not a replay from elsewhere.
    private bool PeerMoved(IcePair pair, TimeSpan now) =>
        Options.PeerMoveSilence > TimeSpan.Zero && Selected is { } s && s != pair && s.Generation == _current && pair.Generation == _current
        && pair.Valid && pair.State == IceCandidatePairState.Succeeded && now - _liveness.LastReceived >= Options.PeerMoveSilence;

    // NAT rebinding, the step before PeerMoved: the peer's data arrives on a pair its authenticated check made, our own
    // check on that pair has not succeeded yet, and the selected pair has been silent for PeerMoveSilence. Our check's
    // retransmissions back off (0.5, 1, 1.6 s, ...): at 30 % loss each way a lost check or answer cost seconds (found by
    // the chaos suite: 8-9 s to follow). So the peer's data on the pair triggers a new check on it at most once per
    // initial RTO, replacing the one in progress (RFC 8445 section 7.3.1.4). Consent (RFC 7675) is unchanged: we send
    // data there only once our own check on the pair is answered.
    private void RecheckMovedPeer(IcePair pair, TimeSpan now)
    {
        if (Options.PeerMoveSilence <= TimeSpan.Zero || !Mode.SendsChecks || Selected is not { } s || s == pair
            || pair.Generation != _current || s.Generation != _current || pair.Valid || !pair.PeerChecked
            || pair.State == IceCandidatePairState.Succeeded || now - _liveness.LastReceived < Options.PeerMoveSilence) return;
        if (pair.LastCheckSentAt is { } last && now - last < Options.CheckRetransmission.InitialRto) return;
        if (pair.InTriggeredQueue && pair.State == IceCandidatePairState.Waiting) return;
        pair.State = IceCandidatePairState.Waiting;
        EnqueueTriggered(pair, front: true);
    }

    private IceReceiveResult EarlyData(IcePair pair, TimeSpan now)
    {
        if (CountsForLiveness(pair)) OnApplicationDataReceived(now);
        return IceReceiveResult.ApplicationData;
    }

    private IceReceiveResult HandleIndication(in StunMessage message, IPEndPoint local, IPEndPoint remote, bool iceTcp, TimeSpan now)
    {
        // Keepalives (RFC 8445 section 11) are Binding indications; they prove the path is alive.
        if (message.Method != StunMethod.Binding || (message.HasFingerprint && !message.CheckFingerprint()))
        {
            Drop(IceDropReason.Malformed);
            return IceReceiveResult.Dropped;
        }
        if (CountsForLiveness(Selected is { } s ? (s.Matches(local, remote, iceTcp) ? s : null) : FindPair(_current, local, remote, iceTcp)))
            OnTrafficReceived(now);
        return IceReceiveResult.Stun;
    }

    private IceReceiveResult HandleRequest(in StunMessage request, IPEndPoint local, IPEndPoint remote, bool iceTcp, TimeSpan now)
    {
        if (request.Method != StunMethod.Binding) { Drop(IceDropReason.BadRequest); return IceReceiveResult.Dropped; }
        // ICE requires FINGERPRINT on checks (RFC 8445 section 7.2.2).
        if (!request.CheckFingerprint()) { Drop(IceDropReason.BadFingerprint); return IceReceiveResult.Dropped; }
        if (!request.TryGetUsername(out var username)) { Drop(IceDropReason.Unauthenticated); return IceReceiveResult.Dropped; }
        IceGeneration? g = null;
        if (_current.IsAddressedToUs(username)) g = _current;
        else if (_previous is { } previous && previous.IsAddressedToUs(username)) g = previous;
        // RFC 8445 section 7.3 with RFC 8489 section 9.1.3: no answer to requests we cannot authenticate (no amplification).
        if (g is null || !request.CheckMessageIntegrity(g.LocalKey)) { Drop(IceDropReason.Unauthenticated); return IceReceiveResult.Dropped; }
        if (!request.TryGetPriority(out var priority)) { Drop(IceDropReason.BadRequest); return IceReceiveResult.Dropped; }
        // After a restart libwebrtc's new candidates check our previous credentials until our answer arrives, and keep
        // that pairing afterwards (it prunes the equal pair with our new ufrag): a request to our previous generation
        // signed as from the peer's current ufrag belongs to the current check list; our checks back on that pair say
        // "theirUfrag:ourPreviousUfrag", and the previous local credentials stay valid while it carries data.
        var bridged = g == _previous && _current.IsFromRemote(username) && !g.IsFromRemote(username);
        var checkList = bridged ? _current : g;

        Span<ushort> unknown = stackalloc ushort[8];
        var unknownCount = request.GetUnknownComprehensionRequired(unknown);
        if (unknownCount > 0)
        {
            SendError(request, g, local, remote, iceTcp, StunErrorCode.UnknownAttribute, unknown.Slice(0, Math.Min(unknownCount, unknown.Length)));
            return IceReceiveResult.Stun;
        }

        IceCandidate? localCandidate = null;
        foreach (var c in _localCandidates)
            if ((c.Type is IceCandidateType.Host or IceCandidateType.Relayed) && c.IsTcp == iceTcp && c.Address.Equals(local)) { localCandidate = c; break; }
        if (localCandidate is null) { Drop(IceDropReason.UnknownLocalAddress); return IceReceiveResult.Dropped; }

        if (checkList == _current)
        {
            switch (Role.ResolveConflict(request, TieBreaker))
            {
                case RoleConflictOutcome.Respond487:
                    SendError(request, g, local, remote, iceTcp, StunErrorCode.RoleConflict, default);
                    return IceReceiveResult.Stun;
                case RoleConflictOutcome.Switch:
                    SwitchRole(now);
                    break;
            }
        }

        // SPED: the DTLS datagram the peer carried reaches DTLS first, so the answer can carry our reply to it.
        ReadSped(request, null);
        SendSuccess(request, g, local, remote, iceTcp);

        var pair = FindPair(checkList, local, remote, iceTcp);
        if (pair is null)
        {
            if (checkList != _current) return IceReceiveResult.Stun;
            g = checkList;
            // Answered above (the peer holds our password), but a source the limits refuse, or one over them, leaves
            // no candidate and no pair behind (counted).
            if (!AdmitRemoteCandidate(g, remote)) return IceReceiveResult.Stun;
            // RFC 8445 section 7.3.1.3: a peer-reflexive remote candidate with the request's PRIORITY.
            // Over ICE-TCP the source is the peer's end of the connection it opened: an active TCP candidate (RFC 6544 section 7.2).
            var candidate = new IceCandidate(IceCandidateType.PeerReflexive, remote, priority,
                "prflx" + (g.RemoteCandidates.Count + 1).ToString(System.Globalization.CultureInfo.InvariantCulture))
            {
                Protocol = iceTcp ? IceProtocol.Tcp : IceProtocol.Udp,
                TcpType = iceTcp ? IceTcpType.Active : IceTcpType.None,
            };
            pair = FindOrAddPair(g, localCandidate, candidate);
            if (pair is null) return IceReceiveResult.Stun;
            g.RemoteCandidates.Add(candidate);
            Emit(new IceRemoteCandidateLearnedEvent(now, candidate));
            StartChecksIfReady(now);
        }
        // Our checks on the pair use the credentials the peer's last request on it used.
        if (checkList == _current) pair.BridgeUsername = bridged ? pair.BridgeUsername ?? _current.Remote!.Ufrag + ":" + _previous!.Local.Ufrag : null;
        pair.PeerChecked = true;
        checkList.PeerCheckSeen = true;
        // The peer restarted and checks this pair with its new ufrag before we have it (its offer is still on the
        // way): remembered, so the pair joins the new check list as soon as the new remote credentials are set.
        if (checkList.Remote is not null && !bridged)
        {
            var foreign = !checkList.IsFromRemote(username);
            pair.ForeignPeerUfrag = foreign ? IceGeneration.SenderUfrag(username) : null;
            pair.ForeignPeerNominated = foreign && request.HasUseCandidate;
        }
        if (CountsForLiveness(pair)) OnTrafficReceived(now);
        if (checkList == _current) Mode.OnRequest(this, pair, request.HasUseCandidate, now);
        if (checkList == _current)
        {
            SpedRecheck(pair, now);
            // The request completed the peer's flight and our reply is larger than the response could carry.
            if (Mode.SendsChecks) SendSpedCarriers(checkList, pair, now);
        }
        return IceReceiveResult.Stun;
    }

    private static IcePair? FindPair(IceGeneration g, IPEndPoint local, IPEndPoint remote, bool iceTcp = false)
    {
        return g.CheckList.Find(local, remote, iceTcp);
    }

    /// <summary>Success response: XOR-MAPPED-ADDRESS of the source, integrity with our password, FINGERPRINT (RFC 8445 section 7.3.1.2).</summary>
    private void SendSuccess(in StunMessage request, IceGeneration g, IPEndPoint local, IPEndPoint remote, bool iceTcp)
    {
        var span = RentTransmit(out var buffer);
        var w = new StunMessageWriter(span, StunMessageType.BindingSuccess, request.TransactionId);
        w.AddXorAddress(StunAttributeType.XorMappedAddress, remote);
        WriteSped(ref w, out _);
        w.AddMessageIntegrity(g.LocalKey);
        w.AddFingerprint();
        QueueTransmit(buffer, w.Length, local, remote, iceTcp);
    }

    private void SendError(in StunMessage request, IceGeneration g, IPEndPoint local, IPEndPoint remote, bool iceTcp, int code, ReadOnlySpan<ushort> unknown)
    {
        var span = RentTransmit(out var buffer);
        var w = new StunMessageWriter(span, StunMessageType.BindingError, request.TransactionId);
        w.AddErrorCode(code, code == StunErrorCode.RoleConflict ? "Role Conflict" : "Unknown Attribute");
        if (!unknown.IsEmpty) w.AddUnknownAttributes(unknown);
        w.AddMessageIntegrity(g.LocalKey);
        w.AddFingerprint();
        QueueTransmit(buffer, w.Length, local, remote, iceTcp);
    }
}
