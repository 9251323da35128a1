namespace Transport.Streaming.Io;

/// <summary>What the <see cref="UdpDriver"/> counted, read at any time from any thread.</summary>
public sealed class UdpDriverCounters
{
    internal long _received, _sent, _sendErrors, _droppedUnknownPeer, _droppedUnknownKind, _droppedInboxFull, _peerErrors, _timeouts, _wakeups, _inline,
        _handoffs, _sendCalls, _receiveCalls, _droppedOversize, _unroutedRequests, _transactionsNotNoted, _routesForgotten, _fiveTupleConflicts;
    internal long _deadlineWakeups;
    internal long _tcpAccepted, _tcpRefused, _tcpClosedBadLength, _tcpClosedGarbage, _tcpClosedSlow, _tcpFramesReceived, _tcpFramesSent, _tcpDroppedMedia,
        _tcpDroppedQueueFull, _tcpSendNoConnection, _tcpClosed, _tcpClosedNotified;
    internal long _turnTcpOpened, _turnTcpConnectFailed, _turnTlsRefused, _turnTcpClosed, _turnTcpFramesSent, _turnTcpFramesReceived, _turnTcpDroppedQueueFull,
        _turnTcpDroppedClosed, _turnTcpClosedInvalid, _turnTcpDroppedOversize, _turnTcpRefused;

    /// <summary>Datagrams received on all sockets.</summary>
    public long Received => Interlocked.Read(ref _received);
    /// <summary>Datagrams sent.</summary>
    public long Sent => Interlocked.Read(ref _sent);
    /// <summary>System calls that sent datagrams (fewer than <see cref="Sent"/> when sends are batched and segmented).</summary>
    public long SendCalls => Interlocked.Read(ref _sendCalls);
    /// <summary>System calls that received datagrams (fewer than <see cref="Received"/> when receives are batched or coalesced).</summary>
    public long ReceiveCalls => Interlocked.Read(ref _receiveCalls);
    /// <summary>Datagrams larger than <see cref="UdpDriverOptions.MaxDatagramSize"/>, dropped on arrival.</summary>
    public long DroppedOversize => Interlocked.Read(ref _droppedOversize);
    /// <summary>Sends that the socket refused (e.g. no route, buffer full); the datagram is lost like on the network.</summary>
    public long SendErrors => Interlocked.Read(ref _sendErrors);
    /// <summary>Datagrams from a remote address that no peer knows, and that were not a routable first STUN request.</summary>
    public long DroppedUnknownPeer => Interlocked.Read(ref _droppedUnknownPeer);
    /// <summary>
    /// STUN requests from an unknown remote address handed to the peer named by their USERNAME without learning a route:
    /// the route comes only when the peer answers, that is when the request's MESSAGE-INTEGRITY checked out.
    /// </summary>
    public long UnroutedRequests => Interlocked.Read(ref _unroutedRequests);
    /// <summary>
    /// STUN requests to a server whose route another peer holds (many connections gathering from one STUN server) whose
    /// transaction could not be noted for routing the answer, because <c>4096</c> were already waiting: that answer goes
    /// to the route's owner and is lost, as if the network had dropped it (the request is retransmitted).
    /// </summary>
    public long TransactionsNotNoted => Interlocked.Read(ref _transactionsNotNoted);

    /// <summary>
    /// Routes forgotten because ICE released their remote address while the peer went on (its pairs there failed, or an ICE restart dropped it).
    /// </summary>
    public long RoutesForgotten => Interlocked.Read(ref _routesForgotten);
    /// <summary>
    /// ICE connectivity checks not sent because another peer on the same socket already owns the route to their remote
    /// address and port (the same 5-tuple twice: the answer would reach that peer); the peer is told
    /// (<see cref="IDatagramPeer.OnFiveTupleInUse"/>) and a peer connection fails with the reason.
    /// </summary>
    public long FiveTupleConflicts => Interlocked.Read(ref _fiveTupleConflicts);
    /// <summary>Datagrams whose first byte is in no RFC 7983 range used by WebRTC.</summary>
    public long DroppedUnknownKind => Interlocked.Read(ref _droppedUnknownKind);
    /// <summary>Datagrams dropped because their peer's inbox was full.</summary>
    public long DroppedInboxFull => Interlocked.Read(ref _droppedInboxFull);
    /// <summary>Deadlines handed to peers (HandleTimeout calls).</summary>
    public long Timeouts => Interlocked.Read(ref _timeouts);
    /// <summary>Timer wake-ups of peer actors (some find their deadline moved and handle nothing).</summary>
    public long Wakeups => Interlocked.Read(ref _wakeups);
    /// <summary>
    /// Times a deadline thread woke (its sleep ended by time or by a sooner deadline armed) with the system clock: each
    /// costs a thread wake-up on top of the work of the deadlines it serves.
    /// </summary>
    public long DeadlineWakeups => Interlocked.Read(ref _deadlineWakeups);
    /// <summary>Inputs (STUN datagrams, timer expiries) an idle peer handled right on the driver's I/O thread.</summary>
    public long Inline => Interlocked.Read(ref _inline);
    /// <summary>Runs of a peer handed to the thread pool (queued inputs, or inputs that found the peer busy).</summary>
    public long Handoffs => Interlocked.Read(ref _handoffs);
    /// <summary>Exceptions thrown by a peer while handling an input (a bug in the peer: logged, never fatal to the driver).</summary>
    public long PeerErrors => Interlocked.Read(ref _peerErrors);

    /// <summary>ICE-TCP connections accepted (within the bounds).</summary>
    public long IceTcpAccepted => Interlocked.Read(ref _tcpAccepted);
    /// <summary>
    /// ICE-TCP connections refused at accept: over <see cref="IceTcpOptions.MaxConnections"/> or <see cref="IceTcpOptions.MaxConnectionsPerAddress"/>.
    /// </summary>
    public long IceTcpRefused => Interlocked.Read(ref _tcpRefused);
    /// <summary>ICE-TCP connections closed for a length prefix of zero or above the frame limit.</summary>
    public long IceTcpClosedBadLength => Interlocked.Read(ref _tcpClosedBadLength);
    /// <summary>ICE-TCP connections closed for garbage: a first frame that is no STUN request naming a registered peer, or a frame of no WebRTC kind.</summary>
    public long IceTcpClosedGarbage => Interlocked.Read(ref _tcpClosedGarbage);
    /// <summary>
    /// ICE-TCP connections closed because the peer had not answered on them within <see cref="IceTcpOptions.FirstFrameTimeout"/> (slow loris).
    /// </summary>
    public long IceTcpClosedSlow => Interlocked.Read(ref _tcpClosedSlow);
    /// <summary>ICE-TCP connections closed, for any reason (the peer closed, an error, a bound, the driver or the peer stopped).</summary>
    public long IceTcpClosed => Interlocked.Read(ref _tcpClosed);
    /// <summary>
    /// ICE-TCP connections closed under a peer (by the remote end, an error or a bad frame) whose peer was told at once
    /// (<see cref="IDatagramPeer.OnIceTcpConnectionClosed"/>).
    /// </summary>
    public long IceTcpClosedNotified => Interlocked.Read(ref _tcpClosedNotified);
    /// <summary>Frames read from ICE-TCP connections and handed to peers.</summary>
    public long IceTcpFramesReceived => Interlocked.Read(ref _tcpFramesReceived);
    /// <summary>Frames queued to ICE-TCP connections.</summary>
    public long IceTcpFramesSent => Interlocked.Read(ref _tcpFramesSent);
    /// <summary>Media frames (RTP/RTCP) dropped because the connection's queue held <see cref="IceTcpOptions.SendQueueBytes"/>.</summary>
    public long IceTcpDroppedMedia => Interlocked.Read(ref _tcpDroppedMedia);
    /// <summary>Frames of any kind dropped because the connection's queue held <see cref="IceTcpOptions.MaxSendQueueBytes"/>.</summary>
    public long IceTcpDroppedQueueFull => Interlocked.Read(ref _tcpDroppedQueueFull);
    /// <summary>Frames a peer sent to an ICE-TCP connection that is gone (or not its own).</summary>
    public long IceTcpSendNoConnection => Interlocked.Read(ref _tcpSendNoConnection);

    /// <summary>Connections to TURN servers opened (TCP connected, TLS handshake done for <c>turns:</c>).</summary>
    public long TurnTcpOpened => Interlocked.Read(ref _turnTcpOpened);
    /// <summary>Connections to TURN servers that could not be opened: refused, unreachable, timed out, or the TLS handshake failed.</summary>
    public long TurnTcpConnectFailed => Interlocked.Read(ref _turnTcpConnectFailed);
    /// <summary>Of those, TLS handshakes given up because the server's certificate was refused (<see cref="TurnTlsOptions"/>).</summary>
    public long TurnTlsCertificateRefused => Interlocked.Read(ref _turnTlsRefused);
    /// <summary>Connections to TURN servers closed (by either side, or failed to open); each one's peer was told (its relay is gone).</summary>
    public long TurnTcpClosed => Interlocked.Read(ref _turnTcpClosed);
    /// <summary>Frames (STUN or ChannelData) written to TURN connections.</summary>
    public long TurnTcpFramesSent => Interlocked.Read(ref _turnTcpFramesSent);
    /// <summary>Frames read from TURN connections and handed to their peer.</summary>
    public long TurnTcpFramesReceived => Interlocked.Read(ref _turnTcpFramesReceived);
    /// <summary>Transmits dropped because their connection held <see cref="TurnTcpOptions.MaxSendQueueBytes"/> (backpressure).</summary>
    public long TurnTcpDroppedQueueFull => Interlocked.Read(ref _turnTcpDroppedQueueFull);
    /// <summary>Transmits to a TURN connection that had closed (before its peer learnt it).</summary>
    public long TurnTcpDroppedClosed => Interlocked.Read(ref _turnTcpDroppedClosed);
    /// <summary>Transmits that would have opened a connection past <see cref="TurnTcpOptions.MaxConnections"/>.</summary>
    public long TurnTcpRefused => Interlocked.Read(ref _turnTcpRefused);
    /// <summary>Connections closed because the server sent bytes that are neither STUN nor ChannelData.</summary>
    public long TurnTcpClosedInvalid => Interlocked.Read(ref _turnTcpClosedInvalid);
    /// <summary>Frames from a TURN server larger than <see cref="UdpDriverOptions.MaxDatagramSize"/>: skipped, the stream goes on.</summary>
    public long TurnTcpDroppedOversize => Interlocked.Read(ref _turnTcpDroppedOversize);
}
