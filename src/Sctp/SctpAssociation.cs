using System.Buffers;
using System.Security.Cryptography;
using Transport.Sctp.Wire;

namespace Transport.Sctp;

/// <summary>
/// One SCTP association (RFC 9260) as a sans-IO state machine. It takes SCTP packets (the payload of DTLS
/// records, RFC 8261) with <see cref="HandleDatagram"/>, produces packets with <see cref="TryPollTransmit"/>,
/// reports what happened through <see cref="TryPollEvent"/>, and asks to be woken at <see cref="PollTimeout()"/>.
/// Time is always passed in; the association never reads a clock. Not thread-safe: one caller at a time.
/// </summary>
public sealed partial class SctpAssociation
{
    private readonly SctpOptions _o;
    private readonly EventQueue _events;
    private byte[]? _lastEventBuffer;
    private int _lastEventBufferSize;
    private TimeSpan _now;
    private readonly BufferPool _pool;
    private ushort _remotePort, _packetSourcePort;

    // Tags, initial TSNs and what the peer supports (RFC 9260 section 5).
    private uint _myTag, _peerTag, _myInitialTsn, _peerInitialTsn;
    private bool _peerAcceptsZeroChecksum, _peerForwardTsn, _peerReConfig;
    private ushort _outboundStreams, _inboundStreams;

    /// <summary>Creates an association; call <see cref="Connect"/> to start it actively, or feed it the peer's INIT.</summary>
    public SctpAssociation(SctpOptions? options = null)
    {
        _events = new EventQueue(this);
        _o = options ?? new SctpOptions();
        _o.Validate();
        _cookieSecret = _o.CookieSecret ?? RandomNumberGenerator.GetBytes(32);
        _rto = new RetransmissionTimeout(_o);
        _mtu = _o.MaxPacketSize;
        _cc = new CongestionControl(_mtu);
        _remotePort = _o.RemotePort;
        _pool = new BufferPool(2L * _o.ReceiveBufferSize + 8 * 1024 * 1024);
        _out = new OutstandingData(_messagePool, _pool, Counters);
        _reassembly = new ReassemblyQueue(_pool, Counters, _o.MaxMessageSize, Deliver, OnOversizeMessage);
        _resets = new StreamResetHandler(this, Counters);
    }

    /// <summary>The options in force.</summary>
    public SctpOptions Options => _o;
    /// <summary>The current state.</summary>
    public SctpState State { get; private set; } = SctpState.Closed;
    /// <summary>Why the association closed or failed, once it has: text for display and logs (decide on <see cref="CloseKind"/>).</summary>
    public string? CloseReason { get; private set; }
    /// <summary>How the association ended (None while it has not).</summary>
    public SctpCloseKind CloseKind { get; private set; }
    /// <summary>Drop and activity counters.</summary>
    public SctpCounters Counters { get; } = new();
    /// <summary>The current retransmission timeout (RFC 9260 section 6.3).</summary>
    public TimeSpan Rto => _rto.Value;
    /// <summary>
    /// The smoothed round-trip time SRTT (RFC 9260 section 6.3.1) from DATA acknowledged without retransmission, or
    /// null before the first measurement. A sample runs to the SACK, so it includes the peer's SACK delay when the
    /// peer held its acknowledgement back.
    /// </summary>
    public TimeSpan? SmoothedRoundTripTime => _rto.Srtt;
    /// <summary>The congestion window in bytes (RFC 9260 section 7.2).</summary>
    public int CongestionWindow => _cc.Cwnd;
    /// <summary>True when both sides agreed on RFC 9653 zero checksum, so our packets carry none.</summary>
    public bool ZeroChecksumInUse => _o.OfferZeroChecksum && _peerAcceptsZeroChecksum;
    /// <summary>Bytes held for the application (reassembly, ordering, undelivered events): bounded by the receive buffer.</summary>
    public int ReceiveBuffered => _reassembly.HeldBytes + _deliveredHeld;
    /// <summary>Bytes queued or in flight that the peer has not acknowledged.</summary>
    public long OutboundBuffered => _outboundBuffered;
    /// <summary>Our verification tag (packets to us carry it): the fuzz targets write it into injected packets.</summary>
    internal uint LocalVerificationTag => _myTag;
    /// <summary>True when nothing is queued, in flight or waiting for acknowledgement.</summary>
    public bool IsIdle => _sendQueue.Count == 0 && _sending is null && _out.NextTsn - _out.CumulativeAck == 1;

    // RTO, SRTT and RTTVAR (RFC 9260 section 6.3).
    private readonly RetransmissionTimeout _rto;
    // cwnd, ssthresh, partial_bytes_acked, fast recovery (RFC 9260 section 7.2).
    private readonly CongestionControl _cc;

    /// <summary>
    /// A round trip measured on the same path before the association could measure one (the ICE check's, under DTLS):
    /// until its own first measurement the association's RTO (T1-init and T3-rtx) is computed from it as from a first
    /// measurement (RFC 9260 section 6.3.1 C2: SRTT + 4 RTTVAR with RTTVAR = R/2, so 3 R, within RTO.Min and RTO.Max)
    /// instead of RTO.Initial (1 s). What it saves: a lost INIT, or a lost first DATA when SNAP skipped the handshake,
    /// goes again after 3 R (at least RTO.Min, 200 ms), not 1 s. Ignored when not positive, or once the association
    /// measured a round trip itself; <see cref="SmoothedRoundTripTime"/> stays the association's own.
    /// </summary>
    public void SeedRoundTripTime(TimeSpan rtt)
    {
        if (!_rto.SeedPathRtt(rtt)) return;
        if (State != SctpState.Closed && _t3Deadline is null && _rto.Value == _o.RtoInitial) _rto.Restart();
    }

    private bool IsEstablishedLike => State is SctpState.Established or SctpState.ShutdownPending or SctpState.ShutdownReceived;

    /// <summary>Starts the association actively: sends INIT (RFC 9260 section 5.1).</summary>
    public void Connect(TimeSpan now)
    {
        Clock(now);
        if (State != SctpState.Closed) throw new InvalidOperationException($"Connect needs the Closed state; the association is {State}.");
        if (_remotePort == 0) throw new InvalidOperationException("Connect needs Options.RemotePort.");
        _myTag = RandomNonZero();
        _myInitialTsn = RandomUInt();
        _initRetransmits = 0;
        _t1Rto = _rto.FirstRto();
        _sendInit = true;
        _t1Deadline = _now + _t1Rto;
        Transition(SctpState.CookieWait, SctpStateReason.InitSent, "INIT sent");
    }

    /// <summary>
    /// Starts a graceful shutdown (RFC 9260 section 9.2): queued data is delivered first, then SHUTDOWN.
    /// </summary>
    public void Shutdown(TimeSpan now)
    {
        Clock(now);
        switch (State)
        {
            case SctpState.Established:
                Transition(SctpState.ShutdownPending, SctpStateReason.ShutdownRequested, "shutdown requested");
                TryProgressShutdown();
                break;
            case SctpState.Closed or SctpState.CookieWait or SctpState.CookieEchoed:
                Terminate(SctpState.Terminated, SctpCloseKind.ShutdownBeforeEstablished, "shut down before established", SctpErrorCause.None);
                break;
        }
    }

    /// <summary>Aborts at once (RFC 9260 section 9.1): sends ABORT with a User-Initiated Abort cause and closes.</summary>
    public void Abort(TimeSpan now, string reason = "aborted by the application")
    {
        Clock(now);
        if (State is SctpState.Terminated or SctpState.Failed) return;
        if (State != SctpState.Closed) { _sendAbort = true; _abortReason = reason; }
        Terminate(SctpState.Terminated, SctpCloseKind.AbortSent, "ABORT sent: " + reason, SctpErrorCause.UserInitiatedAbort);
    }

    /// <summary>Takes one SCTP packet (a DTLS record's payload). Malformed or unauthenticated packets are dropped and counted.</summary>
    public void HandleDatagram(ReadOnlySpan<byte> packet, TimeSpan now)
    {
        Clock(now);
        if (!CommonHeader.TryRead(packet, out var header)) { Counters.Malformed++; return; }
        var first = header.Chunks[0];
        if (header.Checksum != 0 || !_o.OfferZeroChecksum || first == ChunkType.Init)
        {
            if (!CommonHeader.ChecksumValid(packet, header.Checksum)) { Counters.BadChecksum++; return; }
        }
        if (header.DestinationPort != _o.LocalPort) { Counters.Malformed++; return; }
        // RemotePort 0: a passive side learns the peer's port from its INIT / COOKIE ECHO.
        if (header.SourcePort != _remotePort && !(_remotePort == 0 && State == SctpState.Closed)) { Counters.Malformed++; return; }
        _packetSourcePort = header.SourcePort;
        if (!VerifyTag(header)) { Counters.BadVerificationTag++; return; }
        Counters.PacketsReceived++;
        if (State == SctpState.Terminated && first == ChunkType.ShutdownAck && CloseKind == SctpCloseKind.ShutdownComplete)
        {
            // RFC 9260 section 9.2: our SHUTDOWN COMPLETE was lost and the peer repeats its SHUTDOWN ACK.
            _sendShutdownComplete = true;
            return;
        }
        var chunks = header.Chunks;
        var hadData = false;
        var firstChunk = true;
        while (!chunks.IsEmpty && State is not (SctpState.Terminated or SctpState.Failed))
        {
            // VerifyTag checked the packet by its first chunk, whose own rules (INIT: tag 0; COOKIE ECHO: the cookie's
            // tag; ABORT/SHUTDOWN COMPLETE with the T bit: the peer's) may admit a tag other than ours. The chunks
            // bundled after it need our tag (found by fuzzing: a garbage COOKIE ECHO or INIT carried a SHUTDOWN past
            // the check; RFC 9260 section 6.10: INIT is never bundled, and after a COOKIE ECHO the tag is ours).
            if (!firstChunk && (State == SctpState.Closed || header.VerificationTag != _myTag)) { Counters.BadVerificationTag++; break; }
            firstChunk = false;
            if (!ChunkHeader.TryReadNext(ref chunks, out var chunk)) { Counters.Malformed++; break; }
            switch (chunk.Type)
            {
                case ChunkType.Data: hadData = true; HandleData(chunk); break;
                case ChunkType.Sack: HandleSack(chunk); break;
                case ChunkType.Init: HandleInit(chunk, header.VerificationTag); break;
                case ChunkType.InitAck: HandleInitAck(chunk); break;
                case ChunkType.CookieEcho: HandleCookieEcho(chunk, header.VerificationTag); break;
                case ChunkType.CookieAck: HandleCookieAck(); break;
                case ChunkType.Heartbeat: HandleHeartbeat(chunk); break;
                case ChunkType.HeartbeatAck: HandleHeartbeatAck(chunk); break;
                case ChunkType.Abort: HandleAbort(chunk); break;
                case ChunkType.Shutdown: HandleShutdown(chunk); break;
                case ChunkType.ShutdownAck: HandleShutdownAck(); break;
                case ChunkType.ShutdownComplete: HandleShutdownComplete(); break;
                case ChunkType.ForwardTsn: HandleForwardTsn(chunk); break;
                case ChunkType.ReConfig: HandleReConfig(chunk); break;
                case ChunkType.Error: break;
                default:
                    Counters.UnexpectedChunk++;
                    // RFC 9260 section 3.2: the two top bits of the type say whether to skip or stop.
                    if ((chunk.Type & 0x80) == 0) chunks = default;
                    break;
            }
        }
        if (hadData) AfterDataPacket();
    }

    private bool VerifyTag(CommonHeader header)
    {
        var chunks = header.Chunks;
        var type = chunks[0];
        var tBit = (chunks[1] & 0x01) != 0;
        switch (type)
        {
            case ChunkType.Init:
                // RFC 9260 section 8.5.1 (A): the tag of a packet with INIT is zero.
                return header.VerificationTag == 0;
            case ChunkType.CookieEcho:
                // Checked against the tag inside the cookie (we keep no state before COOKIE ECHO).
                return true;
            case ChunkType.Abort or ChunkType.ShutdownComplete:
                // RFC 9260 section 8.5.1 (B) and (C): with the T bit the tag is the peer's own.
                if (State == SctpState.Closed) return false;
                return tBit ? header.VerificationTag == _peerTag : header.VerificationTag == _myTag;
            default:
                return State != SctpState.Closed && header.VerificationTag == _myTag;
        }
    }

    /// <summary>The next event, if any. The bytes of the previous event's Data are returned to the pool now.</summary>
    public bool TryPollEvent(out SctpEvent evt)
    {
        ReleaseLastEventBuffer();
        if (!_events.TryDequeue(out evt)) return false;
        if (evt.Kind is SctpEventKind.ChannelMessage or SctpEventKind.StreamMessage
            && MemoryMarshalHelper.TryGetArray(evt.Data, out var array))
        {
            _lastEventBuffer = array;
            _lastEventBufferSize = evt.Accounted;
            // With backpressure the message's bytes stay counted as unread until the application releases them.
            _lastEventUnread = _o.MaxUnreadBytes > 0 && evt.Kind == SctpEventKind.ChannelMessage ? evt.Data.Length : 0;
        }
        return true;
    }

    private void ReleaseLastEventBuffer()
    {
        if (_lastEventBuffer is null) return;
        _deliveredHeld -= _lastEventBufferSize;
        _unread += _lastEventUnread;
        _pool.Return(_lastEventBuffer);
        _lastEventBuffer = null;
        _lastEventBufferSize = _lastEventUnread = 0;
        WindowOpened();
    }

    private int _lastEventUnread;

    /// <summary>
    /// Takes the array behind the Data of the message event <see cref="TryPollEvent"/> just returned (ChannelMessage or
    /// StreamMessage): the bytes are then the caller's, valid after the next poll, and the association no longer counts
    /// them in its receive buffer. With <see cref="SctpOptions.MaxUnreadBytes"/> they stay counted as unread until
    /// <see cref="ReleaseReceived"/>. Give the array back with <see cref="ReturnReceiveBuffer"/> (or drop it) when done.
    /// Null when the last event carried no pooled data (another kind, or it was already taken).
    /// </summary>
    public byte[]? TakeEventBuffer()
    {
        if (_lastEventBuffer is not { } array) return null;
        _deliveredHeld -= _lastEventBufferSize;
        _unread += _lastEventUnread;
        _lastEventBuffer = null;
        _lastEventBufferSize = _lastEventUnread = 0;
        WindowOpened();
        return array;
    }

    /// <summary>Gives back an array taken with <see cref="TakeEventBuffer"/>, for the next messages to reuse (the pool keeps a bounded amount).</summary>
    public void ReturnReceiveBuffer(byte[] array)
    {
        ArgumentNullException.ThrowIfNull(array);
        _pool.Return(array);
    }

    /// <summary>Bytes of delivered messages the application has not released yet (<see cref="SctpOptions.MaxUnreadBytes"/>).</summary>
    public int UnreadBytes => _unread;

    /// <summary>
    /// The application consumed <paramref name="bytes"/> of delivered messages (their Data lengths): with
    /// <see cref="SctpOptions.MaxUnreadBytes"/> they stop counting against the advertised window, and a window update
    /// goes to the peer when the window reopens. Releasing more than is unread (or after close) is clamped.
    /// </summary>
    public void ReleaseReceived(int bytes)
    {
        if (bytes <= 0 || _unread == 0) return;
        _unread = Math.Max(0, _unread - bytes);
        WindowOpened();
    }

    private void WindowOpened()
    {
        if (!IsEstablishedLike && State != SctpState.ShutdownSent) return;
        // RFC 9260 section 6.2: a SACK may update the offered window as the application consumes data. To avoid a
        // silly window (RFC 1122 section 4.2.3.3) we send one only when a closed window reopened by an MTU, or the
        // window grew by half its capacity since we last advertised it (with backpressure on, where reads are
        // what opens it).
        var w = AdvertisedWindow;
        if ((_windowWasClosed && w >= _mtu) || (_o.MaxUnreadBytes > 0 && w - _lastAdvertised >= WindowCapacity / 2))
        {
            _windowWasClosed = false;
            _tsns.SackPending = true;
            _tsns.SackImmediate = true;
        }
    }

    /// <summary>The earliest deadline, or null when no timer runs.</summary>
    public TimeSpan? PollTimeout() => PollTimeout(out _);

    /// <summary>The earliest deadline and which timer it belongs to, or null when no timer runs.</summary>
    public TimeSpan? PollTimeout(out SctpTimer timer)
    {
        TimeSpan? t = null;
        timer = SctpTimer.None;
        Min(ref t, ref timer, _t1Deadline, SctpTimer.T1Init);
        Min(ref t, ref timer, _t2Deadline, SctpTimer.T2Shutdown);
        Min(ref t, ref timer, _t3Deadline, SctpTimer.T3Rtx);
        Min(ref t, ref timer, _tsns.DelayedAckDeadline, SctpTimer.DelayedAck);
        Min(ref t, ref timer, _resets.Deadline, SctpTimer.Reconfig);
        Min(ref t, ref timer, _heartbeatDeadline, SctpTimer.Heartbeat);
        return t;

        static void Min(ref TimeSpan? acc, ref SctpTimer which, TimeSpan? v, SctpTimer name)
        {
            if (v is { } x && (acc is null || x < acc.Value)) { acc = x; which = name; }
        }
    }

    /// <summary>
    /// Runs every timer that is due at <paramref name="now"/>, and moves the association's time to it: call it before
    /// <see cref="TryPollTransmit"/> after an application call without a time (a send), so that the timers the
    /// packets start count from <paramref name="now"/> (nothing runs when nothing is due).
    /// </summary>
    public void HandleTimeout(TimeSpan now)
    {
        Clock(now);
        if (_t1Deadline is { } t1 && t1 <= _now) OnT1Expired();
        if (_t2Deadline is { } t2 && t2 <= _now) OnT2Expired();
        if (_t3Deadline is { } t3 && t3 <= _now) OnT3Expired();
        if (_tsns.DelayedAckDeadline is { } da && da <= _now) _tsns.OnDelayedAckTimeout();
        if (_resets.Deadline is { } rc && rc <= _now) OnReconfigExpired();
        if (_heartbeatDeadline is { } hb && hb <= _now)
        {
            OnHeartbeatDue();
            TrimIdle();   // a heartbeat is due only after a quiet interval
        }
    }

    /// <summary>
    /// With nothing in flight, queued or held for the application, the buffers kept for traffic go back (to the GC; the
    /// shared ArrayPool keeps what it can use), and the TSN bits when no gap is open, so an idle association holds
    /// none; traffic rents them again. Called at a heartbeat, and by an owner that watches the path otherwise (WebRTC,
    /// where heartbeats are off: at its timer runs while this association has no deadline of its own).
    /// </summary>
    public void TrimIdle()
    {
        if (_out.FlightSize != 0 || _sendQueue.Count != 0 || _sending is not null || ReceiveBuffered != 0) return;
        _pool.Trim();
        _messagePool.Clear();
        _tsns.TrimIdle();
    }

    /// <summary>Whether the receive side holds its TSN bits (made at the first out-of-order TSN; tests).</summary>
    internal bool TsnBitsHeld => _tsns.BitsHeld;

    private void Clock(TimeSpan now)
    {
        if (now > _now) _now = now;
    }

    /// <summary>The one place the state changes: every change is queued as a StateChanged event (RFC 9260 section 4).</summary>
    private void Transition(SctpState next, SctpStateReason why, string detail)
    {
        if (State == next) return;
        var previous = State;
        State = next;
        _events.Enqueue(new SctpEvent(SctpEventKind.StateChanged, Detail: detail, Cause: _closeCause)
        { Previous = previous, State = State, Reason = why });
        if (next == SctpState.Established)
        {
            OnEstablishedChannels();
            ArmHeartbeat();
        }
    }

    /// <summary>The association's events in order, each stamped with the time of the call that caused it.</summary>
    private sealed class EventQueue(SctpAssociation owner)
    {
        private readonly Queue<SctpEvent> _queue = new();

        public void Enqueue(in SctpEvent e) => _queue.Enqueue(e with { At = owner._now });

        public bool TryDequeue(out SctpEvent e) => _queue.TryDequeue(out e);
    }

    private SctpErrorCause _closeCause;

    /// <summary>Ends the association: stops every timer, frees the queues, closes every channel.</summary>
    private void Terminate(SctpState final, SctpCloseKind kind, string reason, SctpErrorCause cause)
    {
        if (State is SctpState.Terminated or SctpState.Failed) return;
        CloseKind = kind;
        CloseReason = reason;
        _closeCause = cause;
        _t1Deadline = _t2Deadline = _t3Deadline = _heartbeatDeadline = null;
        _resets.StopTimer();
        _sendInit = _sendCookieEcho = false;
        _tsns.Stop();
        CloseAllChannels();
        ReleaseSendState();
        ReleaseReceiveState();
        var why = kind switch
        {
            SctpCloseKind.ShutdownComplete => SctpStateReason.ShutdownComplete,
            SctpCloseKind.ShutdownBeforeEstablished => SctpStateReason.ShutdownBeforeEstablished,
            SctpCloseKind.AbortSent => SctpStateReason.AbortSent,
            SctpCloseKind.AbortReceived => SctpStateReason.AbortReceived,
            _ => SctpStateReason.RetransmissionLimit,
        };
        Transition(final, why, reason);
    }

    private void Fail(string reason) => Terminate(SctpState.Failed, SctpCloseKind.Failed, reason, SctpErrorCause.None);

    private static uint RandomUInt()
    {
        Span<byte> b = stackalloc byte[4];
        RandomNumberGenerator.Fill(b);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    private static uint RandomNonZero()
    {
        uint v;
        do v = RandomUInt(); while (v == 0);
        return v;
    }
}

internal static class MemoryMarshalHelper
{
    public static bool TryGetArray(ReadOnlyMemory<byte> memory, out byte[] array)
    {
        if (System.Runtime.InteropServices.MemoryMarshal.TryGetArray(memory, out var segment) && segment.Array is { } a)
        {
            array = a;
            return true;
        }
        array = null!;
        return false;
    }
}
