using System.Net;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Transport.Sctp;
using Transport.Streaming.Io;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.WebRtc;

/// <summary>
/// A peer connection running on a <see cref="UdpDriver"/>: the async face of <see cref="PeerConnectionCore"/>.
/// Every call runs on the connection's own logical thread; events arrive in order on <see cref="Events"/>.
/// Sending when the connection is not connected throws <see cref="TransportNotConnectedException"/> naming the
/// state and its reason (or <see cref="TrySend(DataChannel, ReadOnlySpan{byte}, bool)"/> returns it): never a silent drop. While Disconnected, messages
/// are queued (up to <see cref="PeerConnectionOptions.MaxBufferedAmount"/> per channel) and SCTP delivers them
/// when connectivity returns.
/// </summary>
public sealed partial class PeerConnection : IAsyncDisposable
{
    private readonly PeerConnectionCore _core;
    private readonly PeerConnectionOptions _options;
    private readonly ILogger _logger;
    private readonly PeerHandle _handle;
    private readonly Channel<PeerConnectionEvent> _events = Channel.CreateUnbounded<PeerConnectionEvent>(new UnboundedChannelOptions { SingleWriter = true });
    // Made when a remote track arrives or the application asks for the reader: a connection without media holds
    // none (an unbounded channel keeps a 32-slot queue segment). Guarded by _waiting's lock.
    private Channel<RemoteTrack>? _remoteTracks;
    private bool _remoteTracksDone;
    private volatile ConnectionState _state = ConnectionState.New;
    private ConnectionReason? _reason;
    private int _disposed;

    /// <summary>Creates a connection whose host candidates are the driver's bound sockets; state changes are logged to <paramref name="logger"/>.</summary>
    public PeerConnection(UdpDriver driver, PeerConnectionOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(driver);
        if (driver.LocalEndPoints.Count == 0) throw new InvalidOperationException("Bind at least one local address on the driver first.");
        _options = options ?? new PeerConnectionOptions();
        if (_options.MaxBufferedAmount < _options.MaxMessageSize)
            throw new ArgumentOutOfRangeException(nameof(options), "MaxBufferedAmount must hold at least one message of MaxMessageSize.");
        if (_options.MaxUnreadBytes != 0 && _options.MaxUnreadBytes < Math.Max(_options.MaxMessageSize, 4 * _options.Sctp.MaxPacketSize))
            throw new ArgumentOutOfRangeException(nameof(options), "MaxUnreadBytes must be 0 or hold at least one message of MaxMessageSize.");
        _logger = logger ?? NullLogger.Instance;
        _core = new PeerConnectionCore(_options) { DefersReceiveRelease = true };
        _eventReader = new EventReader(this, _events.Reader);
        _release = new ReleaseWork(this);
        // A disposed lease gives the connection a turn, which moves its buffer back into SCTP's pool and reopens the window.
        if (_options.LeasedMessages) _core.LeaseReturned = WakeForLeases;
        foreach (var local in driver.LocalEndPoints) _core.AddHostCandidate(local);
        // ICE-TCP (RFC 6544): a passive TCP host candidate per listening socket of the driver (UdpDriverOptions.IceTcp).
        foreach (var local in driver.IceTcpEndPoints) _core.Ice.AddTcpHostCandidate(local);
        _time = driver.Time;
        _handle = driver.Register(new Runner(this));
    }

    /// <summary>
    /// The name this connection's log lines carry (a session id, say); default a short random one. Set it before the
    /// offer is exchanged.
    /// </summary>
    public string Name { get; init; } = Guid.NewGuid().ToString("N")[..8];

    /// <summary>What the driver runs (tests read its <see cref="IDatagramPeer.InlineNow"/>).</summary>
    internal IDatagramPeer DriverPeer => _handle.Peer;

    /// <summary>The aggregated state (a snapshot; changes arrive as <see cref="ConnectionStateChanged"/> events).</summary>
    public ConnectionState State => _state;

    /// <summary>Why the connection is in <see cref="State"/>.</summary>
    public ConnectionReason? Reason => Volatile.Read(ref _reason);

    /// <summary>Every event in order; completes when the connection is closed or failed.</summary>
    /// <remarks>
    /// Reading a <see cref="DataChannelMessageReceived"/> here is what reopens the SCTP window
    /// (<see cref="PeerConnectionOptions.MaxUnreadBytes"/>): an application that stops reading makes the peer wait.
    /// </remarks>
    public ChannelReader<PeerConnectionEvent> Events => _eventReader;

    /// <summary>Where the offer/answer exchange stands (a snapshot).</summary>
    public SignalingState SignalingState => _core.SignalingState;

    /// <summary>
    /// Our offer (SDP text), set as our local description. On a connected connection this is a subsequent offer: same
    /// sections, same DTLS role and association, same SCTP association. Throws <see cref="InvalidOperationException"/>
    /// when an offer of ours already waits for its answer.
    /// </summary>
    public Task<string> CreateOfferAsync(CancellationToken cancellationToken = default) => CreateOfferAsync(null, cancellationToken);

    /// <summary>
    /// Our offer with <paramref name="options"/>; <see cref="OfferOptions.IceRestart"/> (or an earlier
    /// <see cref="RestartIce"/>) restarts ICE: new ice-ufrag and ice-pwd, registered with the driver before the offer is
    /// returned so the peer's first checks of the new generation reach us. Data keeps flowing on the current pair until
    /// the new one is selected (<see cref="IceRestartCompleted"/>).
    /// </summary>
    public Task<string> CreateOfferAsync(OfferOptions? options, CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _restartRequested, 0) != 0) options = (options ?? new OfferOptions()) with { IceRestart = true };
        return _handle.InvokeAsync(now => RegisterFragments(_core.CreateOffer(now, options).ToString()), cancellationToken);
    }

    /// <summary>
    /// Marks the next <see cref="CreateOfferAsync(OfferOptions?, CancellationToken)"/> as an ICE restart, as
    /// <c>RTCPeerConnection.restartIce()</c> does (the application then negotiates as usual).
    /// </summary>
    public void RestartIce() => Interlocked.Exchange(ref _restartRequested, 1);

    private int _restartRequested;

    /// <summary>
    /// Our answer to <paramref name="offer"/> (SDP text); malformed SDP throws <see cref="SdpParseException"/>. A remote
    /// offer on a connected connection is a subsequent one: our DTLS role is kept, and when it carries new ICE
    /// credentials we restart ICE and answer with new ones. Throws <see cref="InvalidOperationException"/> when our own
    /// offer waits for its answer (rollback is not supported) or the offer would change the DTLS fingerprint or role.
    /// </summary>
    public Task<string> CreateAnswerAsync(string offer, CancellationToken cancellationToken = default) =>
        CreateAnswerAsync(SessionDescription.Parse(offer), cancellationToken);

    /// <summary>
    /// As <see cref="CreateAnswerAsync(string, CancellationToken)"/>, for an offer already parsed (the caller does not
    /// change it afterwards: the connection reads it on its own thread).
    /// </summary>
    public Task<string> CreateAnswerAsync(SessionDescription offer, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(offer);
        return _handle.InvokeAsync(now =>
        {
            var answer = RegisterFragments(_core.CreateAnswer(offer, now).ToString());
            ThrowIfFiveTupleInUse(now);
            return answer;
        }, cancellationToken);
    }

    // A remote candidate whose 5-tuple another connection on our socket already uses can never work (its datagrams
    // reach that connection): when every pair is such, the connection fails now, not after ICE's timeout.
    private void ThrowIfFiveTupleInUse(TimeSpan now)
    {
        if (_core.CheckFiveTuples(_handle.FiveTupleTakenByOther, now) is { } conflict) throw new FiveTupleInUseException(conflict);
    }

    /// <summary>
    /// Withdraws our pending offer (JSEP rollback, <see cref="PeerConnectionCore.Rollback"/>): after a glare the polite
    /// side rolls back and answers the peer's offer. <see cref="InvalidOperationException"/> when no offer is pending
    /// or it restarted ICE.
    /// </summary>
    public Task RollbackAsync(CancellationToken cancellationToken = default) =>
        _handle.InvokeAsync(now => _core.Rollback(now), cancellationToken);

    /// <summary>Applies the answer to our offer; <see cref="InvalidOperationException"/> when no offer of ours is pending.</summary>
    public Task SetRemoteDescriptionAsync(string answer, CancellationToken cancellationToken = default)
    {
        var parsed = SessionDescription.Parse(answer);
        return _handle.InvokeAsync(now =>
        {
            _core.SetRemoteDescription(parsed, now);
            ThrowIfFiveTupleInUse(now);
        }, cancellationToken);
    }

    /// <summary>The selected ICE pair with its generation's username fragments (read on the connection's thread), or null.</summary>
    public Task<SelectedIcePair?> GetSelectedPairAsync(CancellationToken cancellationToken = default) =>
        _handle.InvokeAsync(_ => _core.SelectedPair, cancellationToken);

    /// <summary>
    /// A human-readable account of ICE (for logs when something does not connect): state, role, the current
    /// generation's credentials, each pair of its check list with its state, the selected pair and the drop counts.
    /// </summary>
    public Task<string> DescribeIceAsync(CancellationToken cancellationToken = default) =>
        _handle.InvokeAsync(_ => _core.DescribeIce(), cancellationToken);

    // Runs on the connection's thread before the description leaves: a restart's new ufrag must route on the driver
    // before the peer can send its first check to it (RFC 8445 section 7.2.2 USERNAME is "ourUfrag:theirUfrag").
    private string RegisterFragments(string description)
    {
        foreach (var fragment in _core.LocalUsernameFragments) _handle.AddUsernameFragment(fragment);
        return description;
    }

    private readonly TimeProvider _time;
    private readonly TaskCompletionSource _gathered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Our local candidates (<c>candidate:...</c> lines without <c>a=</c>) once gathering has ended (the STUN
    /// and TURN servers of <see cref="PeerConnectionOptions.Ice"/> answered or gave up), or when
    /// <paramref name="timeout"/> has passed, whichever is first; <c>Complete</c> says which. Gathering starts with
    /// the first offer or answer: server-reflexive and relayed candidates come after it, and a peer that does not
    /// take trickled candidates needs them in the description (see <see cref="Sessions.WebRtcTransportOptions.GatheringTimeout"/>).
    /// </summary>
    public async Task<(IReadOnlyList<string> Candidates, bool Complete)> GatherCandidatesAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var complete = true;
        try { await _gathered.Task.WaitAsync(timeout, _time, cancellationToken).ConfigureAwait(false); }
        catch (TimeoutException) { complete = false; }
        var candidates = await _handle.InvokeAsync(_ => (IReadOnlyList<string>)_core.Ice.LocalCandidates.Select(c => c.ToSdp()).ToArray(),
            cancellationToken).ConfigureAwait(false);
        return (candidates, complete);
    }

    /// <summary>A trickled remote candidate (<c>candidate:...</c>), or null for end-of-candidates.</summary>
    public Task AddRemoteCandidateAsync(string? candidate, CancellationToken cancellationToken = default) =>
        AddRemoteCandidateAsync(candidate, null, null, cancellationToken);

    /// <summary>
    /// A trickled remote candidate with the section it belongs to (the browser's <c>sdpMid</c> and
    /// <c>sdpMLineIndex</c>); one of a bundled section other than the BUNDLE tag's is ignored
    /// (<see cref="PeerConnectionCore.AddRemoteCandidate"/>).
    /// </summary>
    public Task AddRemoteCandidateAsync(string? candidate, string? sdpMid, int? sdpMLineIndex, CancellationToken cancellationToken = default)
    {
        var parsed = candidate is null ? null : SdpCandidate.Parse(candidate);
        return _handle.InvokeAsync(now =>
        {
            _core.AddRemoteCandidate(parsed, now, sdpMid, sdpMLineIndex);
            ThrowIfFiveTupleInUse(now);
        }, cancellationToken);
    }

    /// <summary>
    /// Creates a data channel and waits until it is open: the SCTP association is established and our
    /// DATA_CHANNEL_OPEN is on its way (RFC 8832; as in browsers, the peer's ACK is not awaited, and messages sent
    /// before it go ordered so they cannot overtake the OPEN). Fails with <see cref="TransportNotConnectedException"/>
    /// when the connection ends first.
    /// </summary>
    public async Task<DataChannel> CreateDataChannelAsync(string label, DataChannelOptions? options = null, CancellationToken cancellationToken = default)
    {
        var opened = new TaskCompletionSource<DataChannel>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_waiting) _waiting.Add((label, opened));
        await _handle.InvokeAsync(now => _core.CreateDataChannel(label, options, now), cancellationToken).ConfigureAwait(false);
        return await opened.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private readonly List<(string Label, TaskCompletionSource<DataChannel> Opened)> _waiting = new();

    /// <summary>
    /// Sends a message on <paramref name="channel"/>: queued at once when Connected, and also while Disconnected
    /// (delivered when connectivity returns). Throws <see cref="TransportNotConnectedException"/> when the connection
    /// is New, Connecting, Failed or Closed, <see cref="ArgumentException"/> for a message over the maximum size, and
    /// <see cref="InvalidOperationException"/> when the channel is not open or already holds
    /// <see cref="PeerConnectionOptions.MaxBufferedAmount"/> bytes (wait for <see cref="DataChannelBufferedAmountLow"/>).
    /// </summary>
    /// <remarks>
    /// The task completes once the message is queued on the channel (or fails); <paramref name="data"/> must stay
    /// unchanged until then. The token cancels the wait for room in the connection's queue; a message already queued
    /// is sent. One small object per message: no closure, no thread hand-off unless the caller awaits an
    /// unfinished task.
    /// </remarks>
    public Task SendAsync(DataChannel channel, ReadOnlyMemory<byte> data, bool binary = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(channel);
        if (cancellationToken.IsCancellationRequested) return Task.FromCanceled(cancellationToken);
        return Post(new SendWork(this, channel, data, binary, reportAsEvent: false), cancellationToken);
    }

    /// <summary>Sends a text message; see <see cref="SendAsync(DataChannel, ReadOnlyMemory{byte}, bool, CancellationToken)"/>.</summary>
    public Task SendAsync(DataChannel channel, string text, CancellationToken cancellationToken = default) =>
        SendAsync(channel, System.Text.Encoding.UTF8.GetBytes(text), binary: false, cancellationToken);

    /// <summary>
    /// The peer's tracks, as each negotiated section it sends on is applied (also reported as
    /// <see cref="RemoteTrackAdded"/> on <see cref="Events"/>); completes when the connection ends.
    /// </summary>
    public ChannelReader<RemoteTrack> RemoteTracks => RemoteTrackChannel().Reader;

    private Channel<RemoteTrack> RemoteTrackChannel()
    {
        if (Volatile.Read(ref _remoteTracks) is { } made) return made;
        lock (_waiting)
        {
            if (_remoteTracks is null)
            {
                var channel = Channel.CreateUnbounded<RemoteTrack>(new UnboundedChannelOptions { SingleWriter = true });
                if (_remoteTracksDone) channel.Writer.TryComplete();
                Volatile.Write(ref _remoteTracks, channel);
            }
            return _remoteTracks;
        }
    }

    /// <summary>
    /// Adds an outgoing audio or video track; call before <see cref="CreateOfferAsync(CancellationToken)"/> or
    /// <see cref="CreateAnswerAsync(string, CancellationToken)"/> so the description carries it.
    /// </summary>
    public Task<LocalTrack> AddTrackAsync(Jsep.MediaKind kind, LocalTrackOptions? options = null, CancellationToken cancellationToken = default) =>
        _handle.InvokeAsync(now => _core.AddTrack(kind, options, now), cancellationToken);

    /// <summary>
    /// Sends a frame (Opus packet, VP8 frame, H.264 access unit in Annex B form) on <paramref name="track"/>,
    /// packetized with the negotiated codec and SRTP-protected. Throws <see cref="TransportNotConnectedException"/>
    /// when the connection is not connected and <see cref="InvalidOperationException"/> when the track was not
    /// negotiated; otherwise returns what happened (<see cref="MediaSendResult.QueueFull"/> is counted on the track).
    /// Allocates the work item of one call per frame, nothing per packet.
    /// </summary>
    public Task<MediaSendResult> SendFrameAsync(LocalTrack track, ReadOnlyMemory<byte> frame, uint rtpTimestamp,
        CancellationToken cancellationToken = default) =>
        _handle.InvokeAsync(now => Guard(_core.SendFrame(track, frame.Span, rtpTimestamp, now)), cancellationToken);

    /// <summary>Sends one RTP payload on <paramref name="track"/> under our header; errors as <see cref="SendFrameAsync"/>.</summary>
    public Task<MediaSendResult> SendRtpAsync(LocalTrack track, ReadOnlyMemory<byte> payload, uint rtpTimestamp, bool marker,
        CancellationToken cancellationToken = default) =>
        _handle.InvokeAsync(now => Guard(_core.SendRtp(track, payload.Span, rtpTimestamp, marker, now)), cancellationToken);

    /// <summary>Re-sends a whole RTP packet's payload, timestamp and marker on <paramref name="track"/> (echo, forwarding).</summary>
    public Task<MediaSendResult> SendRtpPacketAsync(LocalTrack track, ReadOnlyMemory<byte> rtpPacket, CancellationToken cancellationToken = default) =>
        _handle.InvokeAsync(now => Guard(_core.SendRtpPacket(track, rtpPacket.Span, now)), cancellationToken);

    /// <summary>Sends a PLI for <paramref name="track"/>: asks the peer for a key frame.</summary>
    public Task RequestKeyFrameAsync(RemoteTrack track, CancellationToken cancellationToken = default) =>
        _handle.InvokeAsync(now => _core.RequestKeyFrame(track, now), cancellationToken);

    private MediaSendResult Guard(MediaSendResult result) => result switch
    {
        MediaSendResult.NotConnected => throw new TransportNotConnectedException(_core.State.ToString().ToLowerInvariant(),
            _core.Reason?.ToString() ?? "not connected yet"),
        MediaSendResult.NotNegotiated => throw new InvalidOperationException("The track is not in a negotiated sending media section."),
        _ => result,
    };

    /// <summary>Closes: RTCP BYE, SCTP ABORT and DTLS close_notify go out, then the connection stops. Idempotent.</summary>
    public async Task CloseAsync(string reason = "closed by the application", CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        try { await _handle.InvokeAsync(now => _core.Close(now, reason), cancellationToken).ConfigureAwait(false); }
        catch (ObjectDisposedException) { }
    }

    /// <summary>Closes and releases the driver registration, timers and buffers.</summary>
    public async ValueTask DisposeAsync()
    {
        await CloseAsync().ConfigureAwait(false);
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _handle.DisposeAsync().ConfigureAwait(false);
        _core.Dispose();
        Complete();
    }

    private void Complete()
    {
        _events.Writer.TryComplete();
        Volatile.Read(ref _sendSpace)?.Release();
        List<(string, TaskCompletionSource<DataChannel>)> waiting;
        lock (_waiting)
        {
            _remoteTracksDone = true;
            _remoteTracks?.Writer.TryComplete();
            waiting = [.. _waiting];
            _waiting.Clear();
        }
        var error = new TransportNotConnectedException(_state.ToString().ToLowerInvariant(), Reason?.ToString() ?? "closed");
        foreach (var (_, tcs) in waiting) tcs.TrySetException(error);
    }

    private void OnEvent(PeerConnectionEvent e)
    {
        switch (e)
        {
            case ConnectionStateChanged s:
                Volatile.Write(ref _reason, s.Reason);
                _state = s.State;
                UpdateDrops();
                break;
            case DataChannelOpened o:
                OnChannelOpened(o.Channel);
                break;
            case RemoteTrackAdded t:
                RemoteTrackChannel().Writer.TryWrite(t.Track);
                break;
            case LocalCandidatesComplete:
                _gathered.TrySetResult();
                break;
            case IceRestartNeeded:
                RestartIce(); // the next offer restarts ICE (PeerConnectionOptions.IceRestartOnDirectPathLoss)
                break;
        }
        LogProgress(e);
        _events.Writer.TryWrite(e);
        if (e is ConnectionStateChanged { State: ConnectionState.Closed or ConnectionState.Failed }) Complete();
    }

    // Its own method: a lambda capturing a variable of OnEvent's switch made the closure at every event's entry (one
    // allocation per data channel message).
    private void OnChannelOpened(DataChannel channel)
    {
        TaskCompletionSource<DataChannel>? match = null;
        lock (_waiting)
        {
            var i = _waiting.FindIndex(w => w.Label == channel.Label);
            if (i >= 0) { match = _waiting[i].Opened; _waiting.RemoveAt(i); }
        }
        match?.TrySetResult(channel);
    }

    /// <summary>Adapts the core to the driver and publishes its events after every input.</summary>
    private sealed class Runner(PeerConnection owner) : IDatagramPeer
    {
        private PeerConnectionCore Core => owner._core;
        private int _inputs;
        public IReadOnlyCollection<string> LocalUsernameFragments => Core.LocalUsernameFragments;

        public void HandleDatagram(ReadOnlySpan<byte> datagram, IPEndPoint local, IPEndPoint remote, TimeSpan now)
        {
            owner.CountReceived(datagram.Length);
            Core.HandleDatagram(datagram, local, remote, now);
        }

        public void HandleIceTcpFrame(ReadOnlySpan<byte> frame, IPEndPoint local, IPEndPoint remote, TimeSpan now)
        {
            owner.CountReceived(frame.Length);
            Core.HandleIceTcpFrame(frame, local, remote, now);
        }

        public void HandleDatagram(ReadOnlySpan<byte> datagram, DatagramKind kind, IPEndPoint local, IPEndPoint remote, TimeSpan now)
        {
            owner.CountReceived(datagram.Length);
            Core.HandleDatagram(datagram, kind, local, remote, now);
        }

        public void HandleIceTcpFrame(ReadOnlySpan<byte> frame, DatagramKind kind, IPEndPoint local, IPEndPoint remote, TimeSpan now)
        {
            owner.CountReceived(frame.Length);
            Core.HandleIceTcpFrame(frame, kind, local, remote, now);
        }

        public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote, out bool iceTcp)
        {
            if (!Core.TryPollTransmit(destination, out written, out local, out remote, out iceTcp)) return false;
            owner.CountSent(written);
            return true;
        }

        public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote, out TransmitKind kind)
        {
            if (!Core.TryPollTransmit(destination, out written, out local, out remote, out kind)) return false;
            owner.CountSent(written);
            return true;
        }

        public void HandleTurnStreamFrame(ReadOnlySpan<byte> frame, IPEndPoint local, IPEndPoint server, TimeSpan now)
        {
            owner.CountReceived(frame.Length);
            Core.HandleTurnStreamFrame(frame, local, server, now);
        }

        public void HandleTurnStreamFrame(ReadOnlySpan<byte> frame, DatagramKind kind, IPEndPoint local, IPEndPoint server, TimeSpan now)
        {
            owner.CountReceived(frame.Length);
            Core.HandleTurnStreamFrame(frame, kind, local, server, now);
        }

        public void OnTurnConnectionClosed(IPEndPoint local, IPEndPoint server, string reason, TimeSpan now) =>
            Core.OnTurnConnectionClosed(local, server, reason, now);

        public void OnIceTcpConnectionClosed(IPEndPoint local, IPEndPoint remote, TimeSpan now) => Core.OnIceTcpConnectionClosed(local, remote, now);

        public Transport.Ice.Turn.TurnServerConfig? FindTurnServer(IPEndPoint local, IPEndPoint server) => Core.FindTurnServer(local, server);

        public void HandleTimeout(TimeSpan now)
        {
            var fired = Core.TimersFired;
            Core.HandleTimeout(now);
            if (Core.TimersFired != fired) owner.LogTimerFired(Core.LastTimerFired);
        }

        public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote)
        {
            if (!Core.TryPollTransmit(destination, out written, out local, out remote)) return false;
            owner.CountSent(written);
            return true;
        }

        public TimeSpan? PollTimeout() => Core.PollTimeout();

        public bool TryPollReleasedRemote(out IPEndPoint remote) => Core.TryPollReleasedRemote(out remote);

        public void OnFiveTupleInUse(IPEndPoint local, IPEndPoint remote, TimeSpan now) => Core.OnFiveTupleInUse(local, remote, now);

        /// <summary>
        /// The core is sans-IO and events go to unbounded channels and completion sources (continuations run asynchronously): it never blocks.
        /// </summary>
        public bool RunsInline => true;

        // Not while setting up: with SPED the peer's STUN checks carry the DTLS handshake (a ClientHello means an ML-KEM
        // encapsulation, a key exchange and a signature, about 0.5 ms), which on the driver's receive thread held every
        // other connection's datagrams meanwhile (the server's one receive thread did most handshakes' crypto: 0.78 ms of
        // its CPU per set-up in `scale 1000`, and its port dropped datagrams). Once Connected, or Disconnected after it,
        // the inputs are consent and keepalives again. Read from the driver's threads: _state is volatile.
        public bool InlineNow => owner._state is not (ConnectionState.New or ConnectionState.Connecting);

        public void AfterInput(TimeSpan now)
        {
            Core.AfterInput(now);
            while (Core.TryPollEvent(out var e)) owner.OnEvent(e);
            Volatile.Read(ref owner._sendSpace)?.Check();   // a TrySend sender waiting for room (WaitForSendSpaceAsync)
            if (++_inputs % 256 == 0) owner.UpdateDrops();
        }
    }
}
