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
    // Record numbers (epoch, sequence) of the peer's handshake records not yet acknowledged.
    private readonly List<(ulong Epoch, ulong Sequence)> _ackable = new();
    // Record numbers of each transmission of our current flight (RFC 9147 7: an ACK naming all of one copy ends it).
    private readonly List<List<(ulong Epoch, ulong Sequence)>> _flightTransmissions = new();
    private List<(ulong Epoch, ulong Sequence)>? _recordingTransmission;
    private bool _awaitingAck;

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
            else Counters.Drop(DtlsDropReason.UnknownEpoch);
            return;
        }
        if (!cipher.Open(record, _plaintext, out var type, out var n, out var sequence))
        {
            Counters.Drop(DtlsDropReason.BadTag);
            return;
        }
        if (cipher.Window.IsReplay(sequence)) { Counters.Drop(DtlsDropReason.Replayed); return; }
        cipher.Window.Mark(sequence);
        if ((long)sequence > cipher.HighestReceived) cipher.HighestReceived = (long)sequence;
        Counters.RecordsReceived++;
        var content = _plaintext.AsSpan(0, n);
        switch (type)
        {
            case DtlsContentType.Handshake:
                HandleHandshakeRecord13(content, cipher.Epoch, sequence);
                break;
            case DtlsContentType.Alert:
                HandleAlert(content);
                break;
            case DtlsContentType.Ack:
                HandleAck(content);
                break;
            case DtlsContentType.ApplicationData:
                // Application data only in epoch 3 and later, and only once connected.
                if (State != DtlsState.Connected || cipher.Epoch < 3) { Counters.Drop(DtlsDropReason.UnexpectedInState); break; }
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
            _events.Enqueue(new DtlsApplicationData(content.ToArray()));
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

    /// <summary>Acknowledges the peer's handshake records received so far (RFC 9147 section 7) in the current epoch.</summary>
    internal void SendAck13()
    {
        if (_currentWrite13 is null || _ackable.Count == 0) return;
        var count = Math.Min(_ackable.Count, 64);
        var body = new byte[2 + 16 * count];
        BinaryPrimitives.WriteUInt16BigEndian(body, (ushort)(16 * count));
        for (var i = 0; i < count; i++)
        {
            var (e, s) = _ackable[_ackable.Count - count + i];
            BinaryPrimitives.WriteUInt64BigEndian(body.AsSpan(2 + 16 * i), e);
            BinaryPrimitives.WriteUInt64BigEndian(body.AsSpan(10 + 16 * i), s);
        }
        var buffer = ArrayPool<byte>.Shared.Rent(body.Length + Dtls13RecordCipher.Overhead);
        var n = _currentWrite13.Seal(DtlsContentType.Ack, _currentWrite13.NextSequence++, body, buffer);
        _transmits.Enqueue((buffer, n));
        AcksSent++;
    }

    internal void ClearAckable() => _ackable.Clear();

    private void HandleAck(ReadOnlySpan<byte> content)
    {
        if (content.Length < 2) { Counters.Drop(DtlsDropReason.Malformed); return; }
        var length = BinaryPrimitives.ReadUInt16BigEndian(content);
        if (length != content.Length - 2 || length % 16 != 0) { Counters.Drop(DtlsDropReason.Malformed); return; }
        AcksReceived++;
        if (!_awaitingAck) return;
        var acked = new HashSet<(ulong, ulong)>();
        for (var i = 2; i < content.Length; i += 16)
            acked.Add((BinaryPrimitives.ReadUInt64BigEndian(content[i..]), BinaryPrimitives.ReadUInt64BigEndian(content[(i + 8)..])));
        foreach (var copy in _flightTransmissions)
        {
            if (copy.Count == 0 || !copy.TrueForAll(acked.Contains)) continue;
            // The whole flight arrived: nothing more to retransmit.
            _awaitingAck = false;
            _retransmitAt = null;
            _handshakeDeadline = null;
            _flight = null;
            _flightTransmissions.Clear();
            if (_keyUpdatePending && _role is Handshake13Role role)
            {
                _keyUpdatePending = false;
                role.FinishKeyUpdate();
            }
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

    private void Dispose13()
    {
        foreach (var c in _read13) c?.Dispose();
        foreach (var c in _write13.Values) c.Dispose();
        foreach (var c in _retired13) c.Dispose();
    }
}
