using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Rtp.Srtp;
using Transport.Sctp;
using Transport.Streaming.Io;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.WebRtc;

/// <summary>
/// A WebRTC peer connection as one sans-IO machine (../shared/DESIGN.md): ICE, then DTLS on the selected pair,
/// then SCTP data channels over DTLS and SRTP keyed from DTLS, all on one 5-tuple (BUNDLE, rtcp-mux) with RFC 7983
/// demultiplexing. Datagram and timeout in, transmits and events out, the soonest deadline with its timer. The
/// <see cref="UdpDriver"/> runs it as an <see cref="IDatagramPeer"/>; every call must come from that one logical
/// thread (<see cref="PeerHandle.InvokeAsync{T}"/>).
/// </summary>
public sealed partial class PeerConnectionCore : IDatagramPeer, IDisposable
{
    private readonly PeerConnectionOptions _options;
    private readonly DtlsCertificate _certificate;
    private readonly bool _ownsCertificate;
    private readonly Queue<PeerConnectionEvent> _events = new();
    private readonly ConnectionProgress _progress = new();
    private readonly List<(string Label, DataChannelOptions? Options)> _pendingChannels = new();
    private DtlsConnection? _dtls;
    private SctpAssociation? _sctp;
    // The SRTP keys and the session made from them when media first needs it (a data-only connection never makes one).
    private readonly SrtpKeying _srtp;
    // The media send side: our tracks, the RTP session, the pacer, numbering and protecting what leaves.
    private readonly MediaSendPath _media;
    private RemoteDescription? _remote;
    private bool _weOffered;
    private bool? _dtlsClient;
    private ConnectionState _state = ConnectionState.New;
    private ConnectionReason? _reason;
    private TimeSpan _now;

    public PeerConnectionCore(PeerConnectionOptions? options = null)
    {
        _options = options ?? new PeerConnectionOptions();
        // Checked here, not when DTLS starts in the middle of the traffic (DtlsOptions.Validate would throw there).
        if (_options.DtlsMinRetransmitTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(options), "DtlsMinRetransmitTimeout must be positive.");
        _ownsCertificate = _options.Certificate is null;
        _certificate = _options.Certificate ?? DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50), DateTimeOffset.UnixEpoch.AddYears(80));
        Ice = new IceAgent(_options.Ice);
        _snap = new SnapInitExchange(_options.Snap, _options.Sctp);
        _remoteTracks = new RemoteTrackSet(_events);
        _srtp = new SrtpKeying(_options.Srtp);
        _media = new MediaSendPath(_options.Media, _srtp, _events, MediaCounters);
        _localUsernameFragments.Add(Ice.LocalCredentials.Ufrag);
    }

    /// <summary>The ICE agent (read its counters and pairs; do not drive it directly).</summary>
    public IceAgent Ice { get; }

    /// <summary>The DTLS connection once ICE connected, else null.</summary>
    public DtlsConnection? Dtls => _dtls;

    /// <summary>The SCTP association once DTLS connected (when a data channel was negotiated), else null.</summary>
    public SctpAssociation? Sctp => _sctp;

    /// <summary>The SRTP session once DTLS connected with use_srtp, else null (made on first use).</summary>
    public SrtpSession? Srtp => _srtp.Session;

    /// <summary>True once DTLS connected with use_srtp (whether or not the session was made yet).</summary>
    private bool HasSrtp => _srtp.HasKeys;

    /// <summary>True when the SRTP session exists (media used it); false for a data-only connection.</summary>
    internal bool SrtpSessionMade => _srtp.SessionMade;

    /// <summary>The aggregated state.</summary>
    public ConnectionState State => _state;

    /// <summary>Why the connection is in <see cref="State"/>.</summary>
    public ConnectionReason? Reason => _reason;

    /// <summary>Our certificate's SHA-256 fingerprint, as a=fingerprint carries it.</summary>
    public SdpFingerprint Fingerprint => new("sha-256", _certificate.Sha256Fingerprint);

    /// <summary>Whether we are the DTLS client, once the descriptions decided it.</summary>
    public bool? IsDtlsClient => _dtlsClient;

    /// <summary>Adds a local address (a socket the driver bound) as a host candidate.</summary>
    public IceCandidate AddHostCandidate(IPEndPoint local)
    {
        var host = Ice.AddHostCandidate(local);
        // A 1:1 NAT's public address for this host address (PeerConnectionOptions.PublicAddresses): same port.
        foreach (var p in _options.PublicAddresses)
            if (p.Public.AddressFamily == local.AddressFamily && (p.Local is null || p.Local.Equals(local.Address)))
                Ice.AddServerReflexiveCandidate(new IPEndPoint(p.Public, local.Port), host.Address);
        return host;
    }

    private LocalSessionParameters LocalParameters(bool endOfCandidates, string? sctpInit = null) =>
        new(new IceParameters(Ice.LocalCredentials.Ufrag, Ice.LocalCredentials.Password, Ice.IsLite), Fingerprint)
        {
            SessionId = _sessionId,
            EstablishedRole = !_negotiated ? null : _dtlsClient switch { true => DtlsRole.Client, false => DtlsRole.Server, null => null },
            AnswerRole = _options.DtlsAnswerRole,
            Candidates = Ice.LocalCandidates.Select(SdpCandidate.From).ToList(),
            EndOfCandidates = endOfCandidates,
            MaxMessageSize = _options.MaxMessageSize,
            SctpInit = sctpInit,
            SctpStreams = _options.Sctp.Streams,
            Media = LocalMediaSections(),
            UseRtx = _options.Media.UseRtx,
            TransportCc = _options.Media.TransportCc,
            ExtraIceOptions = _sped?.IceOptions ?? Array.Empty<string>(),
        };

    /// <summary>
    /// Creates a data channel. Before SCTP is up it is opened as soon as the association is established; the
    /// returned channel is then null and a <see cref="DataChannelOpened"/> event reports it. A negotiated channel
    /// (<see cref="DataChannelOptions.Negotiated"/> with an <see cref="DataChannelOptions.Id"/> both sides use, RFC 8832
    /// section 6) sends no DCEP OPEN and waits for no ACK: it is open on each side as soon as that side's association is
    /// (with SNAP, when DTLS is up).
    /// </summary>
    /// <exception cref="ArgumentException">A negotiated channel without an id, an id already used by another channel
    /// (created or waiting), 65535, or an in-band channel's id of the other DTLS role's parity.</exception>
    public DataChannel? CreateDataChannel(string label, DataChannelOptions? options, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(label);
        Advance(now);
        ThrowIfEnded();
        if (_sctp is { State: SctpState.Established }) return _sctp.CreateDataChannel(label, options, now);
        CheckPendingChannelId(options);
        if (_sctp is { State: SctpState.Closed or SctpState.CookieWait or SctpState.CookieEchoed })
        {
            _sctp.CreateDataChannel(label, options, now);   // opened by the association when it is established
            return null;
        }
        _pendingChannels.Add((label, options));
        return null;
    }

    // The checks SctpAssociation.ValidateChannelId makes, for a channel that waits for the association.
    private void CheckPendingChannelId(DataChannelOptions? options)
    {
        if (options is null) return;
        if (options.Negotiated && options.Id is null)
            throw new ArgumentException("A negotiated data channel needs an Id that both sides use (RFC 8832 section 6).", nameof(options));
        if (options.Id is not { } id) return;
        if (id == ushort.MaxValue)
            throw new ArgumentException("Stream id 65535 is reserved (W3C createDataChannel: ids run from 0 to 65534).", nameof(options));
        if (id >= _options.Sctp.Streams)
            throw new ArgumentException($"Stream id {id} is beyond the {_options.Sctp.Streams} outbound streams we ask for.", nameof(options));
        foreach (var (other, o) in _pendingChannels)
            if (o?.Id == id) throw new ArgumentException($"Stream id {id} is already taken by data channel '{other}'.", nameof(options));
        if (_sctp?.Channels.TryGetValue(id, out var existing) == true)
            throw new ArgumentException($"Stream id {id} already carries data channel '{existing.Label}'.", nameof(options));
        if (!options.Negotiated && _dtlsClient is { } client && (id % 2 == 0) != client)
            throw new ArgumentException($"Stream id {id} is {(id % 2 == 0 ? "even" : "odd")}; as the DTLS {(client ? "client" : "server")} we open in-band " +
                $"channels on {(client ? "even" : "odd")} ids (RFC 8832 section 6). Leave Id unset, or use Negotiated with an id agreed with the peer.",
                nameof(options));
    }

    private void StartGathering()
    {
        if (Ice.State == IceConnectionState.New && !_gatheringStarted)
        {
            _gatheringStarted = true;
            Ice.StartGathering(_now);
        }
    }

    private bool _gatheringStarted;

    /// <summary>Closes: RTCP BYE for our tracks, SCTP ABORT, DTLS close_notify, then ICE stops. State Closed at once.</summary>
    public void Close(TimeSpan now, string reason = "closed by the application")
    {
        Advance(now);
        if (_state is ConnectionState.Closed) return;
        SendByeNow(reason);
        if (_sctp is { State: SctpState.Established }) _sctp.Abort(now, reason);
        PumpSctpToDtls(now);
        if (_dtls is { State: DtlsState.Connected }) _dtls.Close(now);
        Transition(ConnectionState.Closed, new ConnectionReason(ConnectionLayer.Application, reason));
        _closing = true;
    }

    private bool _closing;

    private void ThrowIfEnded()
    {
        if (_state is ConnectionState.Closed or ConnectionState.Failed)
            throw new TransportNotConnectedException(_state.ToString().ToLowerInvariant(), _reason?.ToString() ?? "ended");
    }

    private void Advance(TimeSpan now)
    {
        if (now > _now) _now = now;
    }

    private void Transition(ConnectionState next, ConnectionReason reason)
    {
        if (_state == next || _state is ConnectionState.Closed or ConnectionState.Failed) return;
        var previous = _state;
        _state = next;
        _reason = reason;
        _events.Enqueue(new ConnectionStateChanged(_now, previous, next, reason));
        if (next is ConnectionState.Closed or ConnectionState.Failed) _closing = true;
        if (next is ConnectionState.Closed or ConnectionState.Failed) _remoteTracks.EndAll($"connection {next.ToString().ToLowerInvariant()} ({reason})", _now);
    }

    // A milestone is queued the first time it is reached (ConnectionProgress.Reach), with its time since the offer.
    private void Reach(ConnectionMilestone milestone, TimeSpan now, string detail)
    {
        Advance(now);   // never earlier than what the core has seen (a core does not go back in time)
        if (_progress.Reach(milestone, _now, detail) is { } reached) _events.Enqueue(reached);
    }

    /// <summary>When our first offer was made or the peer's first offer answered (the origin of the milestones' times); null before.</summary>
    internal TimeSpan? OfferAt => _progress.OfferAt;

    /// <summary>Takes the next event.</summary>
    public bool TryPollEvent(out PeerConnectionEvent evt)
    {
        if (!_events.TryDequeue(out evt!)) return false;
        // Backpressure (PeerConnectionOptions.MaxUnreadBytes): a message polled here is read, unless the owner
        // hands events on and releases them when its application reads them.
        if (!DefersReceiveRelease && evt is DataChannelMessageReceived m) ReleaseReceived(m.Data.Length);
        return true;
    }

    /// <summary>True when the owner calls <see cref="ReleaseReceived"/> itself once the application read a message.</summary>
    internal bool DefersReceiveRelease { get; set; }

    /// <summary>The application read <paramref name="bytes"/> of data channel messages: the SCTP window reopens by as much.</summary>
    internal void ReleaseReceived(int bytes) => _sctp?.ReleaseReceived(bytes);

    // Where leases (PeerConnectionOptions.LeasedMessages) give their buffers back from any thread; drained on every turn.
    private ReceiveBufferReturns _leaseReturns => _leaseReturnsField ??= new ReceiveBufferReturns
    {
        WakeThreshold = _options.MaxUnreadBytes > 0 ? Math.Max(1, _options.MaxUnreadBytes / 4) : long.MaxValue,
    };
    private ReceiveBufferReturns? _leaseReturnsField;

    /// <summary>
    /// Called from a thread that disposes a <see cref="DataChannelMessageLease"/> once the leases returned since the core's
    /// last turn hold a quarter of <see cref="PeerConnectionOptions.MaxUnreadBytes"/>: the owner should give the core a
    /// turn soon (<see cref="AfterInput"/>), which moves the returned buffers into SCTP's pool and reopens the window by
    /// their bytes. Smaller returns are picked up on the next call into the core (every datagram is one).
    /// </summary>
    public Action? LeaseReturned { get => _leaseReturns.Wake; set => _leaseReturns.Wake = value; }

    /// <summary>Leases handed out by this connection and not yet disposed.</summary>
    public long OutstandingLeases => _leaseReturnsField?.Outstanding ?? 0;

    /// <summary>Bytes of delivered data channel messages not yet read (0 before SCTP starts).</summary>
    public int UnreadBytes => _sctp?.UnreadBytes ?? 0;

    public void Dispose()
    {
        _dtls?.Dispose();
        _srtp.Dispose();
        Ice.Dispose();
        if (_ownsCertificate) _certificate.Dispose();
    }
}
