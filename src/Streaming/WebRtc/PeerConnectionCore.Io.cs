using System.Buffers;
using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Rtp.Srtp;
using Transport.Sctp;
using Transport.Streaming.Io;

namespace Transport.Streaming.WebRtc;

public sealed partial class PeerConnectionCore : ITransmitSources
{
    // RFC 7983 demultiplexing of what comes in, and the order of what goes out: types of their own, with their own state.
    private readonly InputDemultiplexer _input = new();
    private readonly TransmitScheduler _transmit = new();

    // SCTP packets are at most MaxPacketSize (1163) bytes; one scratch buffer serves every hop of a call. It is rented
    // from ArrayPool.Shared for the call and returned at its end, so an idle connection holds none (three
    // 2 KiB arrays per connection before).
    private const int ScratchSize = 2048;

    /// <summary>
    /// Every local ICE username fragment this connection answered to: the first, and one more per ICE restart (the
    /// driver routes a first STUN request by it, so a restart's fragment is registered before its description goes
    /// out; the old ones stay, the old generation answers consent checks until the new pair is selected).
    /// </summary>
    public IReadOnlyCollection<string> LocalUsernameFragments => _localUsernameFragments;

    private readonly Queue<IPEndPoint> _releasedRemotes = new();

    /// <summary>A remote address ICE released (the driver forgets its route); see <see cref="IDatagramPeer.TryPollReleasedRemote"/>.</summary>
    public bool TryPollReleasedRemote(out IPEndPoint remote) => _releasedRemotes.TryDequeue(out remote!);

    private readonly List<string> _localUsernameFragments = new(2);

    /// <summary>A datagram from the 5-tuple: STUN to ICE; DTLS (20-63) and SRTP (128-191) only from a valid pair.</summary>
    public void HandleDatagram(ReadOnlySpan<byte> datagram, IPEndPoint local, IPEndPoint remote, TimeSpan now) =>
        HandleInput(datagram, local, remote, iceTcp: false, now, _input.Classify(datagram));

    /// <summary>
    /// A datagram the driver already classified (RFC 7983, <paramref name="kind"/>): the class is read once per
    /// datagram, by the driver, and handed down to ICE and to the layer the data goes to.
    /// </summary>
    public void HandleDatagram(ReadOnlySpan<byte> datagram, DatagramKind kind, IPEndPoint local, IPEndPoint remote, TimeSpan now) =>
        HandleInput(datagram, local, remote, iceTcp: false, now, kind);

    /// <summary>
    /// A frame from an ICE-TCP connection (RFC 6544) the peer opened to our passive TCP candidate: handled like a
    /// datagram; DTLS, SCTP and SRTP run over it unchanged.
    /// </summary>
    public void HandleIceTcpFrame(ReadOnlySpan<byte> frame, IPEndPoint local, IPEndPoint remote, TimeSpan now) =>
        HandleInput(frame, local, remote, iceTcp: true, now, _input.Classify(frame));

    /// <summary>
    /// An ICE-TCP frame the driver already classified (see <see cref="HandleDatagram(ReadOnlySpan{byte}, DatagramKind, IPEndPoint, IPEndPoint, TimeSpan)"/>).
    /// </summary>
    public void HandleIceTcpFrame(ReadOnlySpan<byte> frame, DatagramKind kind, IPEndPoint local, IPEndPoint remote, TimeSpan now) =>
        HandleInput(frame, local, remote, iceTcp: true, now, kind);

    /// <summary>
    /// A frame read from the TCP or TLS connection to a TURN server (<paramref name="server"/>) that our transmits from
    /// <paramref name="local"/> opened: what the server relays is handled as if it had come on the relayed address.
    /// </summary>
    public void HandleTurnStreamFrame(ReadOnlySpan<byte> frame, IPEndPoint local, IPEndPoint server, TimeSpan now) =>
        HandleInput(frame, local, server, iceTcp: false, now, _input.Classify(frame), turnStream: true);

    /// <summary>
    /// A frame from a TURN server's connection that the driver already classified (see
    /// <see cref="HandleDatagram(ReadOnlySpan{byte}, DatagramKind, IPEndPoint, IPEndPoint, TimeSpan)"/>).
    /// </summary>
    public void HandleTurnStreamFrame(ReadOnlySpan<byte> frame, DatagramKind kind, IPEndPoint local, IPEndPoint server, TimeSpan now) =>
        HandleInput(frame, local, server, iceTcp: false, now, kind, turnStream: true);

    /// <summary>The connection to a TURN server closed (<paramref name="reason"/>): its allocation is gone, ICE drops the relayed candidate.</summary>
    public void OnTurnConnectionClosed(IPEndPoint local, IPEndPoint server, string reason, TimeSpan now)
    {
        Advance(now);
        Ice.TurnConnectionClosed(local, server, now, reason);
        Pump(now);
    }

    /// <summary>
    /// The ICE-TCP connection between our passive candidate <paramref name="local"/> and <paramref name="remote"/>
    /// closed: its pairs fail at once (ICE moves to another valid pair, or goes Disconnected).
    /// </summary>
    public void OnIceTcpConnectionClosed(IPEndPoint local, IPEndPoint remote, TimeSpan now)
    {
        Advance(now);
        Ice.IceTcpConnectionClosed(local, remote, now);
        Pump(now);
    }

    /// <summary>
    /// The configured TURN server of the stream transmits from <paramref name="local"/> to <paramref name="server"/> (TLS and its server name).
    /// </summary>
    public Transport.Ice.Turn.TurnServerConfig? FindTurnServer(IPEndPoint local, IPEndPoint server) => Ice.FindTurnServer(local, server);

    // `kind` is the datagram's RFC 7983 class, read once (by the driver, or by the public entry without it).
    private void HandleInput(ReadOnlySpan<byte> datagram, IPEndPoint local, IPEndPoint remote, bool iceTcp, TimeSpan now,
        DatagramKind kind, bool turnStream = false)
    {
        Advance(now);
        // What a TURN server relayed arrives unwrapped (a slice of the datagram) in `data`.
        var iceKind = kind == DatagramKind.Stun ? IceInputKind.Stun : IceInputKind.NotStun;
        var iceResult = turnStream ? Ice.HandleStreamFrame(datagram, local, remote, now, out var data)
            : iceTcp ? Ice.HandleIceTcpFrame(datagram, local, remote, now, out data, iceKind)
            : Ice.HandleDatagram(datagram, local, remote, now, out data, iceKind);
        if (iceResult == IceReceiveResult.Stun && ConnectionProgress.IsBindingRequest(datagram))
        {
            if (!_progress.Has(ConnectionMilestone.FirstCheckReceived))
                Reach(ConnectionMilestone.FirstCheckReceived, now, ConnectionProgress.Pair(remote, local));
            OnPeerCheck(now);
        }
        var layers = new InputLayers(_dtls is not null, _dtls is null && _dtlsClient == false && _remote is not null && !_closing, _closing, HasSrtp);
        switch (_input.Route(iceResult, kind, data, data == datagram, layers))
        {
            case InputRoute.Dtls:
                // The peer's first flight may come before our own check on the pair succeeded: be ready for it.
                if (_dtls is null) StartDtls(false, now);
                _dtls!.HandleDatagram(data, now);
                SpedAfterDirectDtls(data);
                break;
            case InputRoute.EarlyDtls:
                _input.KeepEarlyDtls(datagram, local, remote, PathOf(iceTcp, turnStream));   // kept as it came: replayed through ICE
                break;
            case InputRoute.Media:
                HandleMedia(data, now);
                break;
            case InputRoute.MediaBeforeKeys:
                DroppedMedia++;
                MediaCounters.UnprotectFailures++;
                break;
        }
        Pump(now);
    }

    // Whether a check from the peer arrived (before DTLS started, or since), and whether its readiness was signalled.
    private bool _peerChecked, _peerCheckedBeforeDtls, _peerReadySignalled;

    // A peer checks us only once it has our description (it needs our ICE password), and its DTLS is set up by then.
    // When we are the DTLS client and our first flight left before any check of the peer arrived (our check on a
    // pair succeeded first: the peer answers checks before it has our answer), that flight most likely reached a peer
    // that dropped it; its first check tells us it is ready now, so the flight goes again at once, not after a timer.
    private void OnPeerCheck(TimeSpan now)
    {
        if (_dtls is { IsClient: true } dtls && _sped is not { IsActive: true } && !_peerCheckedBeforeDtls && !_peerReadySignalled)
        {
            _peerReadySignalled = true;
            dtls.HandlePeerReady(now);
        }
        _peerChecked = true;
    }

    // The answerer's first DTLS flight can arrive before we have its answer (its checks reach us first, it finds
    // a valid pair and, per RFC 8445 section 12.1, starts DTLS at once). ICE cannot vouch for the sender yet, so
    // the datagrams wait in the demultiplexer, bounded, and go through ICE again when DTLS starts: without this the peer
    // would wait a whole retransmission timeout (1 s by default).
    private static TransmitKind PathOf(bool iceTcp, bool turnStream) => turnStream ? TransmitKind.TurnStream : iceTcp ? TransmitKind.IceTcp : TransmitKind.Udp;

    private void ReplayEarlyDtls(TimeSpan now)
    {
        var early = _input.EarlyDtls;
        for (var i = 0; i < early.Count; i++)
        {
            var (data, local, remote, path) = early[i];
            ReadOnlySpan<byte> payload;
            IceReceiveResult result;
            if (path == TransmitKind.TurnStream) result = Ice.HandleStreamFrame(data, local, remote, now, out payload);
            else if (path == TransmitKind.IceTcp) result = Ice.HandleIceTcpFrame(data, local, remote, now, out payload);
            else result = Ice.HandleDatagram(data, local, remote, now, out payload);
            if (result == IceReceiveResult.ApplicationData) _dtls?.HandleDatagram(payload, now);
            else _input.OnEarlyDtlsReplayRefused();
        }
        _input.ClearEarlyDtls();
    }

    /// <summary>Application datagrams that fit no layer (counted, dropped).</summary>
    public long DroppedDatagrams => _input.Dropped + _transmit.Dropped + _spedDropped;

    /// <summary>The input side's counters: datagrams routed, first bytes read in the core, drops by class (RFC 7983).</summary>
    internal InputDemultiplexer Input => _input;

    /// <summary>The transmit side's counters: what each layer sent, what could not go.</summary>
    internal TransmitScheduler Transmits => _transmit;

    /// <summary>SRTP/SRTCP packets that failed authentication or replay checks (counted, dropped).</summary>
    public long DroppedMedia { get; private set; }

    public void HandleTimeout(TimeSpan now)
    {
        Advance(now);
        // The earliest deadline that is due names the timer that fired (LastTimerFired); media's is read inside HandleMediaTimeout.
        TimeSpan? firstDue = null;
        var fired = default(PeerConnectionDeadline);
        void Due(TimeSpan at, PeerConnectionDeadline which)
        {
            if (firstDue is null || at < firstDue) { firstDue = at; fired = which; }
        }
        if (Ice.PollTimeout(out var iceTimer) is { } i && i <= now) { Due(i, new(PeerConnectionLayer.Ice, Ice: iceTimer)); Ice.HandleTimeout(now); }
        if (_dtls?.PollTimeout(out var dtlsTimer) is { } d && d <= now)
        {
            Due(d, new(PeerConnectionLayer.Dtls, Dtls: dtlsTimer));
            _dtls.HandleTimeout(now);
            CaptureSpedFlight();
        }
        if (_sctp?.PollTimeout(out var sctpTimer) is { } s && s <= now) { Due(s, new(PeerConnectionLayer.Sctp, Sctp: sctpTimer)); _sctp.HandleTimeout(now); }
        // SCTP heartbeats are off (ICE consent watches the path), so an idle association's buffers go back at the
        // timer runs it has no deadline in (consent checks, keepalives: every few seconds while idle).
        else if (_sctp is { } quiet && quiet.PollTimeout() is null) quiet.TrimIdle();
        if (MediaTimeout(out var mediaTimer) is { } m && m <= now) Due(m, new(PeerConnectionLayer.Media, Media: mediaTimer));
        if (firstDue is not null)
        {
            LastTimerFired = fired;
            TimersFired++;
        }
        HandleMediaTimeout(now);
        Pump(now);
    }

    /// <summary>
    /// The timer behind the last <see cref="HandleTimeout"/> that found one due: its layer and that layer's own timer
    /// (the earliest one when several were due). <see cref="PeerConnectionLayer.None"/> before any.
    /// </summary>
    public PeerConnectionDeadline LastTimerFired { get; private set; }

    /// <summary>Calls of <see cref="HandleTimeout"/> that found a timer due.</summary>
    public long TimersFired { get; private set; }

    /// <summary>The soonest deadline of any layer.</summary>
    public TimeSpan? PollTimeout() => PollTimeout(out _);

    /// <summary>The soonest deadline of any layer, and whose it is: the layer and that layer's own timer.</summary>
    public TimeSpan? PollTimeout(out PeerConnectionDeadline deadline)
    {
        var which = default(PeerConnectionDeadline);
        TimeSpan? best = null;
        void Consider(TimeSpan? t, PeerConnectionDeadline owner)
        {
            if (t is { } v && (best is null || v < best)) { best = v; which = owner; }
        }
        Consider(Ice.PollTimeout(out var ice), new(PeerConnectionLayer.Ice, Ice: ice));
        if (_dtls is not null) Consider(_dtls.PollTimeout(out var dtls), new(PeerConnectionLayer.Dtls, Dtls: dtls));
        if (_sctp is not null) Consider(_sctp.PollTimeout(out var sctp), new(PeerConnectionLayer.Sctp, Sctp: sctp));
        Consider(MediaTimeout(out var media), new(PeerConnectionLayer.Media, Media: media));
        deadline = which;
        return best;
    }

    /// <summary>ICE's own packets first, then queued SRTP, DTLS records, then RTCP and retransmissions on the selected pair.</summary>
    public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote) =>
        TryPollTransmit(destination, out written, out local, out remote, out bool _);

    /// <summary>
    /// Like the UDP form; <paramref name="iceTcp"/> says the bytes go as one RFC 4571 frame on the ICE-TCP connection
    /// between the endpoints. Transmits to a TURN server over TCP or TLS cannot be told here: they are skipped and
    /// counted (the driver uses the <see cref="TransmitKind"/> form).
    /// </summary>
    public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote, out bool iceTcp) =>
        _transmit.TryPoll(this, destination, out written, out local, out remote, out iceTcp);

    /// <summary>
    /// Like the UDP form, with the path: a datagram, an RFC 4571 frame on an ICE-TCP connection, or bytes for the TCP or
    /// TLS connection to a TURN server (<see cref="TransmitKind.TurnStream"/>: the checks and data of a relayed pair
    /// over <c>turn:...?transport=tcp</c> or <c>turns:</c>, and the TURN client's own requests).
    /// </summary>
    public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote, out TransmitKind kind) =>
        _transmit.TryPoll(this, destination, out written, out local, out remote, out kind);

    // The sources TransmitScheduler takes from, in its order.
    bool ITransmitSources.TryPollIce(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote, out TransmitKind kind)
    {
        if (!Ice.TryPollTransmit(destination, out written, out var t))
        {
            local = null;
            remote = null!;
            kind = TransmitKind.Udp;
            return false;
        }
        if (!_progress.Has(ConnectionMilestone.FirstCheckSent) && ConnectionProgress.IsBindingRequest(destination[..written]))
            Reach(ConnectionMilestone.FirstCheckSent, _now, ConnectionProgress.Pair(t.Local, t.Remote));
        local = t.Local;
        remote = t.Remote;
        kind = t.Tcp ? TransmitKind.TurnStream : t.IceTcp ? TransmitKind.IceTcp : TransmitKind.Udp;
        return true;
    }

    bool ITransmitSources.TryPoll(TransmitSource source, Span<byte> destination, out int written)
    {
        switch (source)
        {
            case TransmitSource.SpedDirect: return TryPollSpedDirect(destination, out written);
            case TransmitSource.QueuedMedia: return TryPollQueuedMedia(destination, out written);
            case TransmitSource.Dtls: return TryPollDtls(destination, out written);
            // SCTP's packets are sealed straight into the datagram as they are sent (no queue in DTLS, no copy, no buffer
            // per packet); while ICE cannot send they stay in SCTP, whose timers run from when they leave.
            case TransmitSource.Sctp: return TryPollSctpDirect(destination, out written);
            case TransmitSource.Media: return TryPollMediaTransmit(destination, out written);
            default:
                written = 0;
                return false;
        }
    }

    // While ICE has no pair to send on yet (checks still running), DTLS keeps its datagrams: a server flight
    // answering an early ClientHello waits for our first valid pair instead of being lost.
    private bool TryPollDtls(Span<byte> destination, out int written)
    {
        written = 0;
        return _dtls is not null && (Ice.CanSendData || Ice.State is IceConnectionState.Failed or IceConnectionState.Closed)
            && _dtls.TryPollTransmit(destination, out written);
    }

    bool ITransmitSources.Route(Span<byte> destination, ref int written, out IPEndPoint? local, out IPEndPoint remote, out TransmitKind kind) =>
        Route(destination, ref written, out local, out remote, out kind);

    // Closed or failed, and the last words (RTCP BYE, SCTP ABORT, close_notify) are out: ICE stops too, so no
    // consent check, keepalive or retransmission timer outlives the connection.
    void ITransmitSources.OnDrained()
    {
        if (_closing && Ice.State is not (IceConnectionState.Closed or IceConnectionState.Failed)) Ice.Close(_now);
    }

    // A layer's datagram in destination[..written] goes on the pair ICE sends on: as it is on a direct pair (no copy),
    // wrapped for the TURN server (ChannelData or a Send indication) on a relayed one, to it over UDP or its TCP or TLS
    // connection. False when it cannot go (ICE failed or closed): counted by the scheduler.
    private bool Route(Span<byte> destination, ref int written, out IPEndPoint? local, out IPEndPoint remote, out TransmitKind kind)
    {
        var send = Ice.TrySend(_now);
        kind = send.IceTcp ? TransmitKind.IceTcp : TransmitKind.Udp;
        if (send.CanSend && !send.Relayed)
        {
            local = send.Local;
            remote = send.Remote!;
            return true;
        }
        kind = TransmitKind.Udp;
        if (send.CanSend)
        {
            var routeScratch = ArrayPool<byte>.Shared.Rent(Math.Max(written, 1));
            IceTransmitPath transmit;
            try
            {
                destination[..written].CopyTo(routeScratch);
                send = Ice.TrySend(routeScratch.AsSpan(0, written), destination, _now, out var wrapped, out transmit);
                written = wrapped;
            }
            finally { ArrayPool<byte>.Shared.Return(routeScratch); }
            if (send.CanSend)
            {
                kind = transmit.Tcp ? TransmitKind.TurnStream : TransmitKind.Udp;
                local = transmit.Local;
                remote = transmit.Remote;
                return true;
            }
        }
        local = null;
        remote = null!;
        return false;
    }

    public void AfterInput(TimeSpan now) => Pump(now);

    /// <summary>Moves everything between the layers after any input (the house rule of DESIGN.md).</summary>
    private void Pump(TimeSpan now)
    {
        _leaseReturnsField?.Drain(_sctp);
        while (Ice.TryPollEvent(out var e)) OnIceEvent(e, now);
        if (_dtls is not null)
        {
            while (_dtls.TryPollEvent(out var d)) OnDtlsEvent(d, now);
            if (_sctp is not null)
            {
                var scratch = ArrayPool<byte>.Shared.Rent(ScratchSize);
                try { while (_sctp is not null && _dtls.TryReceive(scratch, out var n)) _sctp.HandleDatagram(scratch.AsSpan(0, n), now); }
                finally { ArrayPool<byte>.Shared.Return(scratch); }
            }
        }
        while (_sctp is not null && _sctp.TryPollEvent(out var s)) OnSctpEvent(s, now);
        SpedAfterInput(now);
    }

    private bool TryPollSctpDirect(Span<byte> destination, out int written)
    {
        written = 0;
        if (_sctp is null || _dtls is not { State: DtlsState.Connected } dtls || !Ice.CanSendData) return false;
        if (_media.Pacer is { } pacer && !pacer.DataMayGo(_now)) return false;
        var overhead = dtls.ApplicationDataOverhead;
        if (destination.Length <= overhead + 64) return false;
        var scratch = ArrayPool<byte>.Shared.Rent(ScratchSize);
        try
        {
            // Time reaches the association through its Handle verbs only: the timers this packet starts count from now.
            _sctp.HandleTimeout(_now);
            if (!_sctp.TryPollTransmit(scratch.AsSpan(0, Math.Min(ScratchSize, destination.Length - overhead)), out var n)) return false;
            written = dtls.SealApplicationData(scratch.AsSpan(0, n), destination);
            _media.Pacer?.OnDataSent(n);
            return true;
        }
        finally { ArrayPool<byte>.Shared.Return(scratch); }
    }

    private void PumpSctpToDtls(TimeSpan now)
    {
        if (_sctp is null || _dtls is not { State: DtlsState.Connected }) return;
        // While media waits in the pacer, data channels get their share of the estimate (MediaPacer.DataMayGo).
        var scratch = ArrayPool<byte>.Shared.Rent(ScratchSize);
        try
        {
            _sctp.HandleTimeout(now);   // the timers the packets start count from now
            while ((_media.Pacer is not { } pacer || pacer.DataMayGo(now)) && _sctp.TryPollTransmit(scratch, out var n))
            {
                _dtls.Send(scratch.AsSpan(0, n));
                _media.Pacer?.OnDataSent(n);
            }
        }
        finally { ArrayPool<byte>.Shared.Return(scratch); }
    }

    // The round trip of the last check that validated a pair: the path's round trip before a pair is selected (ICE's
    // RoundTripTime is the selected pair's), for SCTP's first retransmission timeout (StartSctp).
    private TimeSpan? _validPairRtt;

    private void OnIceEvent(IceEvent e, TimeSpan now)
    {
        if (e is IceValidPairEvent v)
        {
            Reach(ConnectionMilestone.PairValid, now, ConnectionProgress.Pair(v.Local.Address, v.Remote.Address));
            if (v.RoundTripTime is { } rtt) _validPairRtt = rtt;
        }
        switch (e)
        {
            case IceSelectedPairChangedEvent p:
                Reach(ConnectionMilestone.PairSelected, now,
                    $"{ConnectionProgress.Pair(p.Local.Address, p.Remote.Address)} ({p.Local.Type} -> {p.Remote.Type})");
                OnSelectedPairChanged(p, now);
                break;
            case IceRemoteAddressReleasedEvent r:
                if (_releasedRemotes.Count < 4096) _releasedRemotes.Enqueue(r.Address);
                break;
            case IceCandidateGatheredEvent g:
                _events.Enqueue(new LocalCandidateGathered(now, g.Candidate));
                break;
            case IceGatheringCompleteEvent:
                _events.Enqueue(new LocalCandidatesComplete(now));
                break;
            case IceRelayErrorEvent r:
                _events.Enqueue(new LocalCandidateError(now, r.Server.ToString(), r.ErrorCode, $"{r.Error}: {r.Reason}"));
                break;
            // DTLS starts on the first valid pair (RFC 8445 section 12.1 lets data go there before nomination), or at
            // the latest once a pair is selected.
            case IceValidPairEvent or IceStateChangedEvent { State: IceConnectionState.Connected } when _dtls is null && _dtlsClient is { } client && !_closing:
                StartDtls(client, now, (e as IceValidPairEvent)?.RoundTripTime);
                break;
            // Back from Disconnected: traffic came back on the selected pair, or an ICE restart selected a new one
            // (after a network change the old pair stays silent; RFC 8445 section 9).
            case IceStateChangedEvent { State: IceConnectionState.Connected } c:
                _restartNeededAsked = false;
                if (_state == ConnectionState.Disconnected)
                    Transition(ConnectionState.Connected, new ConnectionReason(ConnectionLayer.Ice, c.Reason switch
                    {
                        IceStateReason.TrafficResumed => "traffic resumed",
                        IceStateReason.ValidPairInUse => "a valid pair carries data",
                        IceStateReason.PeerMoved => "the peer's data arrives from a new address (NAT rebinding)",
                        IceStateReason.RelayRecovered => "the lost TURN relay was allocated again (or another pair took over)",
                        _ => "ICE restart selected a new pair",
                    }));
                break;
            case IceStateChangedEvent { State: IceConnectionState.Disconnected } s:
                Transition(ConnectionState.Disconnected, new ConnectionReason(ConnectionLayer.Ice, s.Reason switch
                {
                    IceStateReason.ReceiveSilence => $"data stopped: nothing received for {s.LastReceivedAge?.TotalSeconds:0.###} s",
                    IceStateReason.TransportClosed => "the ICE-TCP connection under the selected pair closed",
                    IceStateReason.RelayLost => "the TURN relay under the selected pair was lost: allocating it again",
                    _ => $"nothing received for {s.LastReceivedAge?.TotalSeconds:0.###} s",
                }));
                AskRestartOntoRelay(s, now);
                break;
            case IceStateChangedEvent { State: IceConnectionState.Failed } s:
                Transition(ConnectionState.Failed, new ConnectionReason(ConnectionLayer.Ice, s.Reason.ToString()));
                break;
        }
    }

    // PeerConnectionOptions.IceRestartOnDirectPathLoss: once per disconnection of a direct pair, with relays configured.
    private bool _restartNeededAsked;

    private void AskRestartOntoRelay(IceStateChangedEvent s, TimeSpan now)
    {
        if (!_options.IceRestartOnDirectPathLoss || _restartNeededAsked || _options.Ice.TurnServers.Count == 0 || _closing) return;
        if (s.Reason is not (IceStateReason.NoTraffic or IceStateReason.ReceiveSilence) || Ice.ActiveLocal is not { } local
            || local.Type == IceCandidateType.Relayed)
            return;
        _restartNeededAsked = true;
        _events.Enqueue(new IceRestartNeeded(now,
            $"the direct pair {local.Address} -> {Ice.ActiveRemote?.Address} received nothing for " +
            $"{s.LastReceivedAge?.TotalSeconds:0.###} s; relays are configured"));
    }

    // rtt: the round trip of the check that validated the pair, when known; it scales DTLS's first retransmission
    // timeout (DtlsOptions.RoundTripTime) instead of RFC 6347's 1 s.
    private void StartDtls(bool client, TimeSpan now, TimeSpan? rtt = null, bool replayEarly = true)
    {
        _peerCheckedBeforeDtls = _peerChecked;
        var fingerprint = _remote!.Fingerprints[0];
        var options = new DtlsOptions
        {
            Certificate = _certificate,
            RemoteFingerprint = fingerprint.Value,
            RemoteFingerprintAlgorithm = fingerprint.Algorithm,
            InitialRetransmitTimeout = _options.DtlsInitialRetransmitTimeout,
            MinRetransmitTimeout = _options.DtlsMinRetransmitTimeout,
            RoundTripTime = rtt ?? Ice.RoundTripTime,
            HandshakeTimeout = _options.DtlsHandshakeTimeout,
            MaxHandshakeBuffer = _options.DtlsMaxHandshakeBuffer,
            DeliverApplicationDataAsEvents = false,
            MinVersion = _options.DtlsMinVersion,
            MaxVersion = _options.DtlsMaxVersion,
        };
        if (_options.DtlsGroups is { } groups) options = options with { Groups = groups };
        // SPED: datagrams small enough for a Binding message; the checks resend the flight while they carry it.
        if (_sped is { IsActive: true }) options = options with { Mtu = SpedAttributes.DtlsMtu };
        // ICE already proved the peer's address (RFC 8445), so the server needs no HelloVerifyRequest cookie round.
        _dtls = client ? DtlsConnection.CreateClient(options) : DtlsConnection.CreateServer(options);
        Reach(ConnectionMilestone.DtlsStarted, now, client ? "as client" : "as server");
        if (_sped is { IsActive: true } && !Ice.CanSendData) _dtls.PauseRetransmission();
        if (client) _dtls.Start(now);
        else if (replayEarly) ReplayEarlyDtls(now);
        CaptureSpedFlight();
    }

    private void OnDtlsEvent(DtlsEvent e, TimeSpan now)
    {
        switch (e)
        {
            case DtlsConnected c:
                _sped?.Controller.OnHandshakeComplete(_dtlsClient == true, _dtls!.Version == DtlsVersion.Dtls13);
                Reach(ConnectionMilestone.DtlsConnected, now,
                    $"as {(_dtlsClient == true ? "client" : "server")}, {_dtls!.Version}, {c.CipherSuite}, {_dtls.Group}, " +
                    $"{_dtls.Counters.Retransmissions} retransmissions, {_dtls.Counters.Dropped} records dropped" + SpedMilestoneDetail() +
                    (c.SrtpProfile is { } srtp ? $", SRTP {srtp}" : ", no SRTP"));
                if (c.SrtpKeys is { } keys && c.SrtpProfile is { } profile)
                    _srtp.SetKeys(MapProfile(profile),
                        _dtls!.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", 2 * (keys.LocalKey.Length + keys.LocalSalt.Length)), _dtlsClient == true);
                if (_remote!.SctpPort is not null)
                {
                    _sctp = new SctpAssociation(_options.Sctp with
                    {
                        IsDtlsClient = _dtlsClient == true,
                        MaxMessageSize = _options.MaxMessageSize,
                        MaxUnreadBytes = _options.MaxUnreadBytes,
                        RemotePort = (ushort)_remote.SctpPort.Value,
                    });
                    StartSctp(_sctp, now);
                }
                else Transition(ConnectionState.Connected, new ConnectionReason(ConnectionLayer.Dtls, "handshake complete"));
                break;
            case DtlsClosed:
                Transition(ConnectionState.Closed, new ConnectionReason(ConnectionLayer.Dtls, "close_notify from the peer"));
                break;
            case DtlsFailed f:
                _sped?.Controller.OnDtlsFailed();
                Transition(ConnectionState.Failed, new ConnectionReason(ConnectionLayer.Dtls, f.Message));
                break;
        }
    }

    private static SrtpProfile MapProfile(SrtpProtectionProfile p) => p switch
    {
        SrtpProtectionProfile.Aes128CmHmacSha1_80 => SrtpProfile.AesCm128HmacSha1_80,
        SrtpProtectionProfile.Aes128CmHmacSha1_32 => SrtpProfile.AesCm128HmacSha1_32,
        SrtpProtectionProfile.AeadAes128Gcm => SrtpProfile.AeadAes128Gcm,
        SrtpProtectionProfile.AeadAes256Gcm => SrtpProfile.AeadAes256Gcm,
        _ => throw new NotSupportedException($"SRTP profile {p}"),
    };

    private void OnSctpEvent(in SctpEvent e, TimeSpan now)
    {
        switch (e.Kind)
        {
            case SctpEventKind.StateChanged when e.State == SctpState.Established:
                Reach(ConnectionMilestone.SctpEstablished, now, $"port {_remote?.SctpPort}");
                Transition(ConnectionState.Connected, new ConnectionReason(ConnectionLayer.Sctp, "association established"));
                break;
            case SctpEventKind.StateChanged when e.State == SctpState.Terminated:
                Transition(ConnectionState.Closed, new ConnectionReason(ConnectionLayer.Sctp, e.Detail ?? "association closed"));
                break;
            case SctpEventKind.StateChanged when e.State == SctpState.Failed:
                Transition(ConnectionState.Failed, new ConnectionReason(ConnectionLayer.Sctp, e.Detail ?? "association failed"));
                break;
            case SctpEventKind.ChannelOpen:
                _events.Enqueue(new DataChannelOpened(now, e.Channel!));
                break;
            case SctpEventKind.ChannelMessage:
                if (_options.LeasedMessages && _sctp!.TakeEventBuffer() is { } buffer)
                {
                    // The reassembly buffer itself goes to the application; with backpressure its bytes stay unread
                    // until the lease is disposed (ReceiveBufferReturns.Drain releases them).
                    _leaseReturns.Lent();
                    _events.Enqueue(DataChannelMessageLease.Rent(now, e.Channel!, e.IsBinary, buffer, e.Data.Length,
                        _options.MaxUnreadBytes > 0 ? e.Data.Length : 0, _leaseReturns));
                }
                else _events.Enqueue(new DataChannelMessageReceived(now, e.Channel!, e.Data.ToArray(), e.IsBinary));
                break;
            case SctpEventKind.ChannelClosed:
                _events.Enqueue(new DataChannelClosed(now, e.Channel!));
                break;
            case SctpEventKind.BufferedAmountLow:
                _events.Enqueue(new DataChannelBufferedAmountLow(now, e.Channel!));
                break;
        }
    }
}
