using System.Buffers;
using System.Buffers.Binary;
using Transport.Dtls.Handshake;
using Transport.Dtls.Records;
using Transport.Dtls.Tls13;

namespace Transport.Dtls;

// DTLS 1.3 (RFC 9147) on the same machine: unified-header records per epoch, ACKs, the 1.3 timers.
public sealed partial class DtlsConnection
{
    // Read ciphers by the epoch's low two bits (the unified header carries only those); write ciphers by epoch.
    private readonly Dtls13RecordCipher?[] _read13 = new Dtls13RecordCipher?[4];
    private readonly Dictionary<ulong, Dtls13RecordCipher> _write13 = new();
    private readonly List<Dtls13RecordCipher> _retired13 = new();
    private Dtls13RecordCipher? _currentWrite13;
    private List<byte[]>? _early13;
    // DTLS 1.3 server: the client's application data that came before its Finished (delivered once connected).
    private List<byte[]>? _earlyApplicationData;

    /// <summary>Delivers the application data kept while the handshake completed (after the DtlsConnected event).</summary>
    private void DeliverEarlyApplicationData()
    {
        if (_earlyApplicationData is not { } early) return;
        _earlyApplicationData = null;
        foreach (var content in early) DeliverApplicationData(content);
    }
    // Record numbers (epoch, sequence) of the peer's handshake records not yet acknowledged.
    private readonly List<(ulong Epoch, ulong Sequence)> _ackable = new();
    // Record numbers of each transmission of our current flight (RFC 9147 7: an ACK naming all of one copy ends it).
    private readonly List<List<(ulong Epoch, ulong Sequence)>> _flightTransmissions = new();
    private List<(ulong Epoch, ulong Sequence)>? _recordingTransmission;
    private bool _awaitingAck;
    // Per-record state of the current flight (RFC 9147 7.2): the fragment each record carried and whether the peer
    // acknowledged it; record numbers of every transmission map to their fragment.
    private sealed class Fragment13(int message, ushort epoch, int offset, int length)
    {
        public readonly int Message = message, Offset = offset, Length = length;
        public readonly ushort Epoch = epoch;
        public bool Acked;
    }
    private readonly List<Fragment13> _fragments13 = new();
    private readonly Dictionary<(ulong Epoch, ulong Sequence), int> _recordFragment13 = new();
    /// <summary>Most record numbers an ACK we send or accept may carry (bounds work per ACK).</summary>
    internal const int MaxAckEntries = 64;
    /// <summary>Records of ours acknowledged one by one, and ACKs sent because the peer's flight came incomplete.</summary>
    internal int RecordsAcknowledged, PartialFlightAcksSent;
    /// <summary>Handshake fragments sent again in a selective (unacknowledged-only) retransmission.</summary>
    internal int SelectiveRetransmittedRecords;

    /// <summary>The negotiated protocol version (known once the ServerHello was sent or received).</summary>
    public DtlsVersion? Version { get; internal set; }

    /// <summary>The DTLS 1.3 key schedule once the handshake secret exists.</summary>
    internal Tls13KeySchedule? Schedule13 { get; set; }

    internal bool Is13 => Version == DtlsVersion.Dtls13;

    /// <summary>True while the 1.3 machine reads records (also before the version is known, when we offered 1.3).</summary>
    private bool Uses13Handshake => _role is Handshake13Role;

    /// <summary>ACKs sent (DTLS 1.3) and received.</summary>
    internal int AcksSent, AcksReceived;

    internal void ReplaceRole(HandshakeRole role)
    {
        _role = role;
    }

    internal void InstallRead13(Dtls13RecordCipher cipher)
    {
        var slot = (int)(cipher.Epoch & 3);
        if (_read13[slot] is { } old) _retired13.Add(old);
        _read13[slot] = cipher;
        // Records of this epoch that came early are processed after the current message, not inside it.
        _replay13Pending = _early13 is { Count: > 0 };
    }

    internal void InstallWrite13(Dtls13RecordCipher cipher, bool current = true)
    {
        _write13[cipher.Epoch] = cipher;
        if (current)
        {
            _currentWrite13 = cipher;
            _writeEpoch = (ushort)cipher.Epoch;
        }
    }

    /// <summary>Uses the write epoch that already exists (e.g. 3 after our Finished).</summary>
    internal void UseWriteEpoch13(ulong epoch)
    {
        _currentWrite13 = _write13[epoch];
        _writeEpoch = (ushort)epoch;
    }

    internal ulong CurrentWriteEpoch13 => _currentWrite13?.Epoch ?? 0;

    private bool _replay13Pending;
    // A record after a gap in the peer's record numbers arrived during the handshake (RFC 9147 7.1).
    private bool _gap13;
    private TimeSpan? _lastFlightTransmit;

    /// <summary>Processes kept early records once their keys exist (called between records).</summary>
    private void RunPendingReplays()
    {
        for (var i = 0; i < 4 && _replay13Pending && State is not (DtlsState.Closed or DtlsState.Failed); i++)
        {
            _replay13Pending = false;
            Replay13();
        }
    }

    private void Replay13()
    {
        if (_early13 is not { Count: > 0 }) return;
        var early = _early13;
        _early13 = null;
        foreach (var bytes in early)
        {
            if (Dtls13RecordHeader.TryRead(bytes, out var r, out _)) Process13Record(r);
            Continue13();
            if (State is DtlsState.Closed or DtlsState.Failed) return;
        }
    }

    private void Process13Record(in Dtls13RecordHeader record)
    {
        var plaintext = ArrayPool<byte>.Shared.Rent(PlaintextCapacity);
        try { Process13Record(record, plaintext); }
        finally { ArrayPool<byte>.Shared.Return(plaintext); }
    }

    private void Process13Record(in Dtls13RecordHeader record, byte[] plaintext)
    {
        var cipher = _read13[record.EpochBits];
        if (cipher is null)
        {
            if (State == DtlsState.Handshaking && (_early13?.Count ?? 0) < MaxEarlyRecords)
            {
                var whole = new byte[record.Header.Length + record.Ciphertext.Length];
                record.Header.CopyTo(whole);
                record.Ciphertext.CopyTo(whole.AsSpan(record.Header.Length));
                (_early13 ??= new()).Add(whole);
            }
            else
            {
                Counters.Drop(DtlsDropReason.UnknownEpoch);
                // Server: a record of the handshake epoch after its keys went is the client's last flight resent, as
                // our ACK of it was lost. Acknowledge again from the record numbers kept (the record itself cannot be
                // read any more); a bounded number of times, so unauthenticated records cannot make us send more.
                if (record.EpochBits == 2 && HandshakeEpochDropped && !IsClient && State == DtlsState.Connected
                    && _reAcks13 < MaxReAcks13 && _reAckedAt != _now)
                {
                    _reAcks13++;
                    _reAckedAt = _now;   // once per instant: a resent flight's records come in one datagram
                    SendAck13();
                }
            }
            return;
        }
        if (!cipher.Open(record, plaintext, out var type, out var n, out var sequence))
        {
            Counters.Drop(DtlsDropReason.BadTag);
            return;
        }
        if (cipher.Window.IsReplay(sequence)) { Counters.Drop(DtlsDropReason.Replayed); return; }
        cipher.Window.Mark(sequence);
        // A gap in the peer's record numbers after some of its flight came: acknowledge what came (RFC 9147 7.1). The
        // first record of an epoch is no gap (a resent flight starts at a later number when the first copy was lost).
        var gap = type == DtlsContentType.Handshake && State == DtlsState.Handshaking && cipher.Epoch != 0
            && cipher.HighestReceived >= 0 && (long)sequence > cipher.HighestReceived + 1;
        if ((long)sequence > cipher.HighestReceived) cipher.HighestReceived = (long)sequence;
        Counters.RecordsReceived++;
        var content = plaintext.AsSpan(0, n);
        switch (type)
        {
            case DtlsContentType.Handshake:
                HandleHandshakeRecord13(content, cipher.Epoch, sequence);
                _gap13 |= gap;
                break;
            case DtlsContentType.Alert:
                HandleAlert(content);
                break;
            case DtlsContentType.Ack:
                HandleAck(content);
                break;
            case DtlsContentType.ApplicationData:
                // Application data only in epoch 3 and later, and only once connected. A server may get the client's
                // first data before the client's Finished (reordered, or the Finished's copy was lost: WebRTC with SNAP
                // sends both in the same instant): a few such records are kept, bounded, and delivered when the
                // Finished completes the handshake, never before (the Finished authenticates it).
                if (cipher.Epoch < 3) { Counters.Drop(DtlsDropReason.UnexpectedInState); break; }
                if (State != DtlsState.Connected)
                {
                    if (State == DtlsState.Handshaking && !IsClient && (_earlyApplicationData?.Count ?? 0) < MaxEarlyRecords)
                        (_earlyApplicationData ??= new()).Add(content.ToArray());
                    else Counters.Drop(DtlsDropReason.UnexpectedInState);
                    break;
                }
                DeliverApplicationData(content);
                break;
            default:
                Counters.Drop(DtlsDropReason.Malformed);
                break;
        }
    }

    private void DeliverApplicationData(ReadOnlySpan<byte> content)
    {
        if (_options.DeliverApplicationDataAsEvents)
        {
            EnqueueEvent(new DtlsApplicationData(content.ToArray()));
        }
        else
        {
            var copy = ArrayPool<byte>.Shared.Rent(Math.Max(content.Length, 1));
            content.CopyTo(copy);
            _received.Enqueue((copy, content.Length));
        }
    }

    /// <summary>Handshake fragments under DTLS 1.3 rules: hellos in epoch 0, the rest protected.</summary>
    private void HandleHandshakeRecord13(ReadOnlySpan<byte> content, ulong epoch, ulong recordSequence)
    {
        if (_role is null) { Counters.Drop(DtlsDropReason.UnexpectedInState); return; }
        var any = false;
        while (!content.IsEmpty)
        {
            if (!HandshakeHeader.TryRead(content, out var fragment, out var consumed))
            {
                Counters.Drop(DtlsDropReason.BadHandshake);
                return;
            }
            content = content[consumed..];
            var hello = fragment.Type is DtlsHandshakeType.ClientHello or DtlsHandshakeType.ServerHello or DtlsHandshakeType.HelloVerifyRequest;
            if (hello != (epoch == 0))
            {
                Counters.Drop(DtlsDropReason.BadHandshake);
                continue;
            }
            switch (_reassembler.Add(fragment))
            {
                case FragmentOutcome.Old:
                    if (epoch != 0) any = true;
                    if (fragment.MessageSequence == _peerFlightEndSequence && fragment.FragmentOffset + fragment.Fragment.Length == fragment.MessageLength)
                    {
                        if (State == DtlsState.Connected && !IsClient)
                        {
                            // Our ACK of the client's last flight was lost: acknowledge again (RFC 9147 7).
                            _ackable.Add((epoch, recordSequence));
                            SendAck13();
                            any = false;
                        }
                        else if (_flight is not null && (State == DtlsState.Handshaking || _awaitingAck) && _lastFlightTransmit != _now)
                        {
                            Counters.Retransmissions++;
                            TransmitFlight();
                        }
                    }
                    break;
                case FragmentOutcome.Rejected:
                    Counters.Drop(DtlsDropReason.BadHandshake);
                    break;
                default:
                    if (epoch != 0) any = true;
                    break;
            }
        }
        if (any) _ackable.Add((epoch, recordSequence));
    }

    private void Continue13()
    {
        while (_role is not null && State is DtlsState.Handshaking or DtlsState.Connected && _reassembler.TryTake(out var message))
        {
            if (State == DtlsState.Connected)
            {
                if (_role is Handshake13Role r13) r13.HandlePostHandshake(message);
                else Counters.Drop(DtlsDropReason.UnexpectedInState);
            }
            else _role.HandleMessage(message);
        }
    }

    /// <summary>After a datagram: acknowledge around a gap only if the peer's flight is still incomplete (RFC 9147 7.1).</summary>
    private void AckAfterGap13()
    {
        if (!_gap13) return;
        _gap13 = false;
        if (State == DtlsState.Handshaking) SendPartialFlightAck13();
    }

    /// <summary>Acknowledges the peer's handshake records received so far (RFC 9147 section 7) in the current epoch.</summary>
    internal void SendAck13()
    {
        if (_currentWrite13 is null || _ackable.Count == 0) return;
        var count = Math.Min(_ackable.Count, MaxAckEntries);
        var body = new byte[2 + 16 * count];
        BinaryPrimitives.WriteUInt16BigEndian(body, (ushort)(16 * count));
        for (var i = 0; i < count; i++)
        {
            var (e, s) = _ackable[_ackable.Count - count + i];
            BinaryPrimitives.WriteUInt64BigEndian(body.AsSpan(2 + 16 * i), e);
            BinaryPrimitives.WriteUInt64BigEndian(body.AsSpan(10 + 16 * i), s);
        }
        SealAck13(body);
    }

    /// <summary>Sends an ACK record with the given body under the current write epoch (tests use it for bad bodies).</summary>
    internal void SealAck13(ReadOnlySpan<byte> body)
    {
        if (_currentWrite13 is null) return;
        var buffer = ArrayPool<byte>.Shared.Rent(body.Length + Dtls13RecordCipher.Overhead);
        var n = _currentWrite13.Seal(DtlsContentType.Ack, _currentWrite13.NextSequence++, body, buffer);
        _transmits.Enqueue((buffer, n));
        AcksSent++;
    }

    /// <summary>Record numbers of every transmission of our current flight (tests).</summary>
    internal IReadOnlyCollection<(ulong Epoch, ulong Sequence)> FlightRecordNumbers13 => _recordFragment13.Keys;

    /// <summary>Whether every record of our current flight is acknowledged (tests).</summary>
    internal bool FlightAcknowledged13 => _fragments13.Count > 0 && _fragments13.TrueForAll(f => f.Acked);

    internal void ClearAckable() => _ackable.Clear();

    /// <summary>
    /// The peer's flight is incomplete (a gap in its records, or our timer fired meanwhile): ACK the records of it we
    /// hold so the peer resends only the rest (RFC 9147 7.1). Nothing when none of its protected records came.
    /// </summary>
    private void SendPartialFlightAck13()
    {
        if (_ackable.Count == 0 || _currentWrite13 is null) return;
        SendAck13();
        PartialFlightAcksSent++;
    }

    /// <summary>Records which fragment a record of the current flight carried (first transmission) and its record number.</summary>
    private void NoteFragment13(bool first, int index, int message, ushort epoch, int offset, int length)
    {
        if (first) _fragments13.Add(new Fragment13(message, epoch, offset, length));
        if (index >= _fragments13.Count) return;
        var sequence = epoch == 0 ? _writeSequence[0] - 1 : _write13[epoch].NextSequence - 1;
        _recordFragment13[(epoch, sequence)] = index;
    }

    /// <summary>Resends the fragments of the current flight not yet acknowledged, in new records (RFC 9147 5.8.1, 7.2).</summary>
    private void TransmitUnacknowledged13()
    {
        var mtu = _options.Mtu;
        var datagram = ArrayPool<byte>.Shared.Rent(mtu);
        var scratch = ArrayPool<byte>.Shared.Rent(mtu);
        var used = 0;
        try
        {
            for (var i = 0; i < _fragments13.Count; i++)
            {
                var f = _fragments13[i];
                if (f.Acked) continue;
                var message = _flight![f.Message];
                var overhead = f.Epoch == 0 ? DtlsRecordHeader.Length : Dtls13RecordCipher.Overhead;
                if (used > 0 && used + overhead + HandshakeHeader.Length + f.Length > mtu) Flush(ref datagram, ref used, mtu);
                var bodyLength = message.Data.Length - HandshakeHeader.Length;
                HandshakeHeader.Write(scratch, (DtlsHandshakeType)message.Data[0], bodyLength,
                    (message.Data[4] << 8) | message.Data[5], f.Offset, f.Length);
                message.Data.AsSpan(HandshakeHeader.Length + f.Offset, f.Length).CopyTo(scratch.AsSpan(HandshakeHeader.Length));
                used += WriteRecord(DtlsContentType.Handshake, f.Epoch, scratch.AsSpan(0, HandshakeHeader.Length + f.Length), datagram.AsSpan(used));
                NoteFragment13(false, i, f.Message, f.Epoch, f.Offset, f.Length);
                SelectiveRetransmittedRecords++;
            }
            if (used > 0) Flush(ref datagram, ref used, mtu);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(datagram);
            ArrayPool<byte>.Shared.Return(scratch);
            _recordingTransmission = null;
        }
    }

    /// <summary>
    /// Marks the records an ACK names as acknowledged. A protected record acknowledged implies the peer read our
    /// epoch-0 records of the flight (it could not decrypt otherwise), which are never ACKed themselves.
    /// Returns whether the whole flight is now acknowledged.
    /// </summary>
    private bool MarkAcknowledged13(HashSet<(ulong, ulong)> acked)
    {
        if (_flight is null || _fragments13.Count == 0) return false;
        var any = false;
        foreach (var number in acked)
        {
            if (!_recordFragment13.TryGetValue(number, out var i) || _fragments13[i].Acked) continue;
            _fragments13[i].Acked = true;
            RecordsAcknowledged++;
            any = true;
        }
        if (!any && !_fragments13.Exists(f => f.Acked)) return false;
        foreach (var f in _fragments13)
            if (f.Epoch == 0) f.Acked = true;
        return _fragments13.TrueForAll(f => f.Acked);
    }

    private void HandleAck(ReadOnlySpan<byte> content)
    {
        if (content.Length < 2) { Counters.Drop(DtlsDropReason.Malformed); return; }
        var length = BinaryPrimitives.ReadUInt16BigEndian(content);
        if (length != content.Length - 2 || length % 16 != 0 || length / 16 > MaxAckEntries) { Counters.Drop(DtlsDropReason.Malformed); return; }
        AcksReceived++;
        var acked = new HashSet<(ulong, ulong)>();
        for (var i = 2; i < content.Length; i += 16)
            acked.Add((BinaryPrimitives.ReadUInt64BigEndian(content[i..]), BinaryPrimitives.ReadUInt64BigEndian(content[(i + 8)..])));
        var whole = MarkAcknowledged13(acked);
        if (!_awaitingAck)
        {
            // During the handshake a flight acknowledged in full needs no more retransmission (RFC 9147 7.2); the
            // handshake deadline still applies.
            if (whole && State == DtlsState.Handshaking) _retransmitAt = null;
            return;
        }
        foreach (var copy in _flightTransmissions)
        {
            if (copy.Count == 0 || !copy.TrueForAll(acked.Contains)) continue;
            // The whole flight arrived: nothing more to retransmit.
            _awaitingAck = false;
            _retransmitAt = null;
            _handshakeDeadline = null;
            _flight = null;
            ForgetFlightRecords();
            if (_keyUpdatePending && _role is Handshake13Role role)
            {
                _keyUpdatePending = false;
                role.FinishKeyUpdate();
            }
            else if (State == DtlsState.Connected && IsClient) DropHandshakeEpoch13();   // our Finished is acknowledged
            return;
        }
    }

    private bool _keyUpdatePending;

    /// <summary>HelloRetryRequests sent (server) or received (client).</summary>
    public int HelloRetryRequests { get; internal set; }

    /// <summary>DTLS 1.3 KeyUpdates we completed (acknowledged by the peer) and received.</summary>
    public int KeyUpdatesSent { get; private set; }

    /// <summary>DTLS 1.3 KeyUpdates received from the peer.</summary>
    public int KeyUpdatesReceived { get; internal set; }

    /// <summary>The current DTLS 1.3 write epoch (3 after the handshake, one more per completed KeyUpdate); 0 for 1.2.</summary>
    public ulong WriteEpoch => _currentWrite13?.Epoch ?? _writeEpoch;

    /// <summary>
    /// DTLS 1.3: sends KeyUpdate asking the peer to update too (RFC 9147 section 8). Our records move to the next
    /// epoch once the peer has acknowledged it; until then it is retransmitted on the handshake timer. False when
    /// not a connected 1.3 association or an update is already under way.
    /// </summary>
    public bool UpdateKeys(TimeSpan now)
    {
        Advance(now);
        return UpdateKeys(requestPeer: true);
    }

    internal bool UpdateKeys(bool requestPeer)
    {
        if (!Is13 || State != DtlsState.Connected || _role is not Handshake13Role role || _keyUpdatePending || _awaitingAck) return false;
        var message = role.StartKeyUpdate(requestPeer);
        _keyUpdatePending = true;
        SendFlight([message], expectReply: true);
        _awaitingAck = true;
        _handshakeDeadline = _now + _options.HandshakeTimeout;
        KeyUpdatesSent++;
        return true;
    }

    /// <summary>The client's last flight waits for the server's ACK (RFC 9147 5.8.4), even once connected.</summary>
    internal void AwaitAck() => _awaitingAck = true;

    /// <summary>Whether the final flight is still unacknowledged (tests).</summary>
    internal bool AwaitingAck => _awaitingAck;

    private int Write13Record(DtlsContentType type, ushort epoch, ReadOnlySpan<byte> plaintext, Span<byte> destination)
    {
        var cipher = _write13[epoch];
        var sequence = cipher.NextSequence++;
        _recordingTransmission?.Add((epoch, sequence));
        return cipher.Seal(type, sequence, plaintext, destination);
    }

    /// <summary>Most ACKs sent again for records of a dropped handshake epoch (see <see cref="DropHandshakeEpoch13"/>).</summary>
    internal const int MaxReAcks13 = 16;
    private int _reAcks13;
    private TimeSpan? _reAckedAt;

    /// <summary>True once the handshake epoch's (2) ciphers were dropped after the handshake.</summary>
    internal bool HandshakeEpochDropped { get; private set; }

    /// <summary>
    /// The handshake epoch (2) is over: its read and write ciphers (AES key schedules, record-number ciphers, replay
    /// windows: about 1.5 KiB) go. The server calls it at the client's Finished (its own flight is acknowledged by
    /// it and its ACK goes in epoch 3); the client once the server acknowledged its last flight, or at the handshake
    /// deadline when no ACK came.
    /// </summary>
    internal void DropHandshakeEpoch13()
    {
        if (_read13[2] is { Epoch: 2 } read)
        {
            read.Dispose();
            _read13[2] = null;
        }
        if (_write13.Remove(2, out var write)) write.Dispose();
        HandshakeEpochDropped = true;
    }

    private void Dispose13()
    {
        foreach (var c in _read13) c?.Dispose();
        foreach (var c in _write13.Values) c.Dispose();
        foreach (var c in _retired13) c.Dispose();
    }
}
