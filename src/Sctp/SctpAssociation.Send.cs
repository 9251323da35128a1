using System.Buffers;
using System.Buffers.Binary;
using Transport.Sctp.Wire;

namespace Transport.Sctp;

// Sending: the message queue, fragmentation into DATA chunks (RFC 9260 section 6.9), bundling of control
// and data chunks into packets up to the MTU (section 6.10), and the retransmission ring.
public sealed partial class SctpAssociation
{
    private readonly Queue<OutboundMessage> _sendQueue = new();
    private readonly Stack<OutboundMessage> _messagePool = new();
    private OutboundMessage? _sending;
    // The retransmission ring: chunks sent and not yet acknowledged cumulatively, flight size, advanced peer ack point.
    private readonly OutstandingData _out;
    private long _outboundBuffered;
    private ushort[] _outSsn = new ushort[16];
    private bool _sendAbort;
    private string? _abortReason;
    private readonly int _mtu;

    /// <summary>
    /// Queues a message on <paramref name="streamId"/> with payload protocol id <paramref name="ppid"/>.
    /// <paramref name="maxRetransmits"/> (-1: no limit) and <paramref name="lifetime"/> (null: none) make it
    /// partially reliable (RFC 3758); the lifetime counts from <paramref name="now"/> (default: the latest time
    /// the association saw). Throws when the association cannot send or the message is too large.
    /// </summary>
    public void SendMessage(ushort streamId, uint ppid, ReadOnlySpan<byte> data, bool unordered = false,
        int maxRetransmits = -1, TimeSpan? lifetime = null, TimeSpan? now = null) =>
        Enqueue(streamId, ppid, data, unordered, maxRetransmits, lifetime, null, now);

    /// <summary>
    /// As <see cref="SendMessage(ushort, uint, ReadOnlySpan{byte}, bool, int, TimeSpan?, TimeSpan?)"/> without a copy: the
    /// association keeps <paramref name="data"/> until no chunk of it can be sent again (acknowledged by the peer,
    /// abandoned by partial reliability, or the association ended) and then disposes <paramref name="owner"/>; until then
    /// the caller must not change or reuse the memory. When this throws, nothing was queued and the owner stays the
    /// caller's.
    /// </summary>
    public void SendMessage(ushort streamId, uint ppid, ReadOnlyMemory<byte> data, IDisposable owner, bool unordered = false,
        int maxRetransmits = -1, TimeSpan? lifetime = null, TimeSpan? now = null)
    {
        ArgumentNullException.ThrowIfNull(owner);
        Enqueue(streamId, ppid, data, owner, unordered, maxRetransmits, lifetime, null, now);
    }

    internal void Enqueue(ushort streamId, uint ppid, ReadOnlySpan<byte> data, bool unordered, int maxRetransmits,
        TimeSpan? lifetime, DataChannel? channel, TimeSpan? now = null)
    {
        CheckEnqueue(streamId, data.Length, now);
        var buffer = _pool.Rent(data.Length);
        data.CopyTo(buffer);
        Queue(buffer, new ReadOnlyMemory<byte>(buffer, 0, data.Length), null, streamId, ppid, unordered, maxRetransmits, lifetime, channel);
    }

    /// <summary>Queues the caller's memory without a copy; <paramref name="owner"/> is disposed when the association is done with it.</summary>
    internal void Enqueue(ushort streamId, uint ppid, ReadOnlyMemory<byte> data, IDisposable owner, bool unordered, int maxRetransmits,
        TimeSpan? lifetime, DataChannel? channel, TimeSpan? now = null)
    {
        CheckEnqueue(streamId, data.Length, now);
        Queue([], data, owner, streamId, ppid, unordered, maxRetransmits, lifetime, channel);
    }

    private void CheckEnqueue(ushort streamId, int length, TimeSpan? now)
    {
        if (now is { } t) Clock(t);
        if (State is not (SctpState.Established or SctpState.CookieWait or SctpState.CookieEchoed or SctpState.Closed))
            throw new InvalidOperationException($"Cannot send: the association is {State}.");
        if (length > _o.MaxMessageSize)
            throw new ArgumentException($"The message is {length} bytes; the maximum message size is {_o.MaxMessageSize} bytes.", "data");
        if (length == 0) throw new ArgumentException("SCTP cannot send an empty message (RFC 9260 section 6.2); use the empty PPIDs.", "data");
        if (State == SctpState.Established && streamId >= _outboundStreams)
            throw new ArgumentOutOfRangeException(nameof(streamId), $"Stream {streamId} is beyond the {_outboundStreams} negotiated outbound streams.");
    }

    private void Queue(byte[] buffer, ReadOnlyMemory<byte> data, IDisposable? owner, ushort streamId, uint ppid, bool unordered,
        int maxRetransmits, TimeSpan? lifetime, DataChannel? channel)
    {
        var m = _messagePool.Count > 0 ? _messagePool.Pop() : new OutboundMessage();
        m.Buffer = buffer;
        m.Data = data;
        m.Owner = owner;
        m.Length = data.Length;
        m.Stream = streamId;
        m.Ppid = ppid;
        m.Unordered = unordered;
        m.SsnAssigned = false;
        m.MaxRetransmits = maxRetransmits;
        m.Expiry = lifetime is { } l ? _now + l : TimeSpan.MaxValue;
        m.Fragmented = 0;
        m.References = 1;
        m.Abandoned = false;
        m.Channel = channel;
        _sendQueue.Enqueue(m);
        _outboundBuffered += data.Length;
    }

    private void InitSendState(uint initialTsn, uint peerWindow)
    {
        _out.Start(initialTsn);
        _cc.Start(peerWindow); // RFC 9260 section 7.2.1
        _peerRwnd = _cc.Ssthresh;
        _rto.Restart();
    }

    /// <summary>
    /// Writes the next packet into <paramref name="destination"/>; false when there is nothing to send. Timers
    /// started by this packet count from the latest time passed to a Handle call (<see cref="HandleTimeout"/> moves it
    /// without input).
    /// </summary>
    public bool TryPollTransmit(Span<byte> destination, out int written)
    {
        written = 0;
        var limit = Math.Min(destination.Length, _mtu);
        if (limit < 64) throw new ArgumentException("The destination must hold at least 64 bytes.", nameof(destination));
        var d = destination[..limit];
        if (_sendAbort) return WriteAbortPacket(d, out written);
        if (_sendInit)
        {
            _sendInit = false;
            CommonHeader.Write(d, _o.LocalPort, _remotePort, 0);
            var n = CommonHeader.Length + WriteInit(d[CommonHeader.Length..]);
            return Finish(d, n, false, out written);
        }
        if (_sendInitAck)
        {
            _sendInitAck = false;
            CommonHeader.Write(d, _o.LocalPort, _initAckPeerPort, _initAckPeerTag);
            var n = CommonHeader.Length + WriteInitAck(d[CommonHeader.Length..]);
            return Finish(d, n, false, out written);
        }
        if (State == SctpState.Closed) return false;
        CommonHeader.Write(d, _o.LocalPort, _remotePort, _peerTag);
        var p = CommonHeader.Length;
        if (_sendCookieEcho && _peerCookie is { } cookie && p + 4 + cookie.Length <= d.Length)
        {
            _sendCookieEcho = false;
            ChunkHeader.Write(d[p..], ChunkType.CookieEcho, 0, 4 + cookie.Length);
            cookie.CopyTo(d[(p + 4)..]);
            var len = ChunkHeader.Padded(4 + cookie.Length);
            d[(p + 4 + cookie.Length)..(p + len)].Clear();
            p += len;
        }
        if (_sendCookieAck && p + 4 <= d.Length) { _sendCookieAck = false; p += ChunkHeader.Write(d[p..], ChunkType.CookieAck, 0, 4); }
        if (_sendShutdownComplete && p + 4 <= d.Length)
        {
            _sendShutdownComplete = false;
            p += ChunkHeader.Write(d[p..], ChunkType.ShutdownComplete, 0, 4);
            return Finish(d, p, ZeroChecksumInUse, out written);
        }
        if (State is SctpState.Terminated or SctpState.Failed) return p > CommonHeader.Length && Finish(d, p, ZeroChecksumInUse, out written);

        var dataReady = IsEstablishedLike && HasDataToSend();
        if (_tsns.SackPending && (_tsns.SackImmediate || dataReady || State != SctpState.Established)) p += WriteSack(d[p..]);
        if (_heartbeatAckLength > 0 && p + 4 + _heartbeatAckLength <= d.Length) p += WriteHeartbeatAck(d[p..]);
        if (_sendHeartbeat && p + 16 <= d.Length) p += WriteHeartbeat(d[p..]);
        if (_sendShutdown && p + 8 <= d.Length) { _sendShutdown = false; p += WriteShutdown(d[p..]); }
        if (_sendShutdownAck && p + 4 <= d.Length) { _sendShutdownAck = false; p += ChunkHeader.Write(d[p..], ChunkType.ShutdownAck, 0, 4); }
        if (_sendForwardTsn && _peerForwardTsn && p + 8 <= d.Length) p += WriteForwardTsn(d[p..]);
        if (_peerReConfig && (_resets.ResponseCount > 0 || _resets.RequestDue) && p + 16 <= d.Length) p += WriteReConfig(d[p..]);
        if (dataReady) p += WriteData(d[p..]);
        if (p == CommonHeader.Length) return false;
        return Finish(d, p, ZeroChecksumInUse, out written);
    }

    private bool Finish(Span<byte> d, int length, bool zeroChecksum, out int written)
    {
        CommonHeader.Seal(d[..length], zeroChecksum);
        written = length;
        Counters.PacketsSent++;
        return true;
    }

    private bool WriteAbortPacket(Span<byte> d, out int written)
    {
        _sendAbort = false;
        CommonHeader.Write(d, _o.LocalPort, _remotePort, _peerTag);
        var p = CommonHeader.Length;
        // ABORT with a User-Initiated Abort cause (RFC 9260 section 3.3.10.12) carrying the reason.
        var reason = System.Text.Encoding.UTF8.GetBytes(_abortReason ?? "");
        var reasonLen = Math.Min(reason.Length, d.Length - p - 8 - 4);
        var causeLen = 4 + reasonLen;
        ChunkHeader.Write(d[p..], ChunkType.Abort, 0, 4 + causeLen);
        BinaryPrimitives.WriteUInt16BigEndian(d[(p + 4)..], (ushort)SctpErrorCause.UserInitiatedAbort);
        BinaryPrimitives.WriteUInt16BigEndian(d[(p + 6)..], (ushort)causeLen);
        reason.AsSpan(0, reasonLen).CopyTo(d[(p + 8)..]);
        var padded = ChunkHeader.Padded(4 + causeLen);
        d[(p + 4 + causeLen)..(p + padded)].Clear();
        return Finish(d, p + padded, false, out written);
    }

    private bool HasDataToSend()
    {
        if (_out.RetransmitCount > 0) return _out.FlightSize < _cc.Cwnd || _fastRetransmitBurst;
        if (_sending is null && _sendQueue.Count == 0) return false;
        if (_out.FlightSize >= _cc.Cwnd) return false;
        // RFC 9260 section 6.1 (A): with a zero window, one chunk may probe when nothing is in flight.
        return _peerRwnd > 0 || _out.FlightSize == 0;
    }

    private int WriteData(Span<byte> d)
    {
        var p = 0;
        var sentAny = false;
        // Retransmissions first (RFC 9260 section 6.1 and 7.2.4).
        if (_out.RetransmitCount > 0)
        {
            for (var tsn = Serial.Gt(_out.RetransmitHint, _out.CumulativeAck) ? _out.RetransmitHint : _out.CumulativeAck + 1;
                 tsn != _out.NextTsn && _out.RetransmitCount > 0; tsn++)
            {
                ref var c = ref _out.At(tsn);
                if (c.State != ChunkState.Retransmit) continue;
                _out.RetransmitHint = tsn;
                if (_now >= c.Message.Expiry) { Abandon(c.Message); continue; }
                if (!_fastRetransmitBurst && _out.FlightSize >= _cc.Cwnd) break;
                var size = ChunkHeader.Padded(DataChunk.HeaderLength + c.Length);
                if (p + size > d.Length) break;
                p += DataChunk.Write(d[p..], c.Flags, tsn, c.Message.Stream, c.Message.Ssn, c.Message.Ppid,
                    c.Message.Data.Span.Slice(c.Offset, c.Length));
                _out.Retransmitted(ref c);
                DebugTrace?.Invoke($"{_now.TotalMilliseconds:0} rtx {tsn} s{c.Message.Stream} f{c.Flags} tx{c.Transmits} flight " +
                    $"{_out.FlightSize} cwnd {_cc.Cwnd}");
                Counters.Retransmissions++;
                Counters.DataChunksSent++;
                if (tsn == _rttTsn) _rttMeasuring = false; // Karn's rule (RFC 9260 section 6.3.1 C5)
                sentAny = true;
            }
            _fastRetransmitBurst = false;
            if (_out.RetransmitCount > 0) { if (sentAny) StartT3IfIdle(); return p; }
        }
        while (_out.FlightSize < _cc.Cwnd && (_peerRwnd > 0 || _out.FlightSize == 0))
        {
            var m = _sending;
            if (m is null)
            {
                if (!_sendQueue.TryDequeue(out m)) break;
                if (_now >= m.Expiry) { AbandonUnsent(m); continue; }
                _sending = m;
            }
            else if (_now >= m.Expiry && _peerForwardTsn)
            {
                // RFC 3758 section 3.5: a message past its lifetime is abandoned, also in the middle of its
                // fragmentation (sending the rest would deliver it after its lifetime; found by the chaos suite).
                Abandon(m);
                continue;
            }
            var room = ((d.Length - p) & ~3) - DataChunk.HeaderLength; // keep the padding inside the packet
            var remaining = m.Length - m.Fragmented;
            // Do not cut a tiny fragment at the end of a packet; start a fresh packet instead.
            if (room < Math.Min(remaining, 64)) break;
            var take = Math.Min(room, remaining);
            if (!m.SsnAssigned)
            {
                m.SsnAssigned = true;
                if (m.Stream >= _outSsn.Length)
                    Array.Resize(ref _outSsn, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)m.Stream + 1));
                m.Ssn = m.Unordered ? (ushort)0 : _outSsn[m.Stream]++;
            }
            byte flags = 0;
            if (m.Fragmented == 0) flags |= DataChunk.FlagBegin;
            if (take == remaining) flags |= DataChunk.FlagEnd;
            if (m.Unordered) flags |= DataChunk.FlagUnordered;
            var tsn = _out.Add(m, m.Fragmented, take, flags);
            DebugTrace?.Invoke($"{_now.TotalMilliseconds:0} new {tsn} s{m.Stream} len {take} off {m.Fragmented}/{m.Length} r{m.MaxRetransmits}");
            p += DataChunk.Write(d[p..], flags, tsn, m.Stream, m.Ssn, m.Ppid, m.Data.Span.Slice(m.Fragmented, take));
            Counters.DataChunksSent++;
            m.Fragmented += take;
            _peerRwnd = Math.Max(0, _peerRwnd - take);
            _outboundBuffered -= take;
            m.Channel?.OnBytesSent(take);
            if (!_rttMeasuring) { _rttMeasuring = true; _rttTsn = tsn; _rttSentAt = _now; }
            sentAny = true;
            if (m.Fragmented == m.Length)
            {
                _sending = null;
                m.Release(_messagePool, _pool, Counters);
            }
        }
        if (sentAny) StartT3IfIdle();
        // A reset waiting for this stream's data to get its TSNs can go now (RFC 6525 section 5.1.2).
        if (sentAny && _resets.Pending.Count > 0) TryStartReconfig();
        if (_state_shutdownCheck) TryProgressShutdown();
        return p;
    }

    private bool _state_shutdownCheck => State is SctpState.ShutdownPending or SctpState.ShutdownReceived;

    /// <summary>A message that expired before any of it was sent: it never got an SSN, so nothing to tell the peer.</summary>
    private void AbandonUnsent(OutboundMessage m)
    {
        Counters.AbandonedMessages++;
        _outboundBuffered -= m.Length;
        m.Channel?.OnBytesSent(m.Length);
        m.Release(_messagePool, _pool, Counters);
    }

    private void ReleaseSendState()
    {
        while (_sendQueue.TryDequeue(out var m)) Drop(m);
        if (_sending is { } s) { _sending = null; Drop(s); }
        _out.Clear(Drop);
        _outboundBuffered = 0;

        // The association is over: buffers go back to the pool, the message objects to the collector.
        void Drop(OutboundMessage m) => m.DropData(_pool, Counters);
    }
}
