using System.Buffers;
using Transport.Dtls.Handshake;
using Transport.Dtls.Records;
using Transport.Dtls.Tls13;
using Transport.Crypto;

namespace Transport.Dtls;

/// <summary>A message of a flight: a whole handshake message (framed, offset 0) or ChangeCipherSpec, with its epoch.</summary>
internal readonly record struct OutgoingMessage(DtlsContentType Type, ushort Epoch, byte[] Data);

// The record layer: reading records, epochs, anti-replay, sending flights with fragmentation and retransmission.
public sealed partial class DtlsConnection
{
    internal const byte AlertLevelWarning = 1, AlertLevelFatal = 2;

    private readonly ReplayWindow[] _windows = [new(), new()];
    private readonly ulong[] _writeSequence = new ulong[2];
    private readonly HandshakeReassembler _reassembler = new();
    private RecordCipher? _readCipher, _writeCipher;
    private ushort _writeEpoch;

    private List<OutgoingMessage>? _flight;
    private TimeSpan? _retransmitAt;
    private TimeSpan? _handshakeDeadline;
    private TimeSpan _currentRto;
    // Whether HandlePeerReady already resent the current flight (once per flight).
    private bool _peerReadyUsed;
    private int _peerFlightEndSequence = -1;

    private bool AcceptFirstClientHello(ReadOnlySpan<byte> datagram)
    {
        if (_options.MaxVersion == DtlsVersion.Dtls13)
        {
            // DTLS 1.3 server: no stateless HelloVerifyRequest (RFC 9147 5.1 moves the cookie into HelloRetryRequest,
            // sent only when asked); the ClientHello may span several records and datagrams, so the version is decided
            // once it is reassembled.
            if (!DtlsRecordHeader.TryRead(datagram, out var r, out _) || r.Type != DtlsContentType.Handshake || r.Epoch != 0
                || !HandshakeHeader.TryRead(r.Fragment, out var h, out _) || h.Type != DtlsHandshakeType.ClientHello)
            {
                Counters.Drop(DtlsDropReason.Malformed);
                return false;
            }
            BeginHandshake(DtlsStateReason.ClientHelloReceived);
            _role = new Server13Handshake(this);
            return true;
        }
        if (_cookies is not null)
        {
            Span<byte> reply = stackalloc byte[128];
            switch (_cookies.Process(_remoteAddress, datagram, reply, out var n))
            {
                case DtlsCookieVerdict.SendHelloVerifyRequest:
                    var buffer = ArrayPool<byte>.Shared.Rent(n);
                    reply[..n].CopyTo(buffer);
                    _transmits.Enqueue((buffer, n));
                    Counters.HelloVerifyRequestsSent++;
                    return false;
                case DtlsCookieVerdict.Drop:
                    Counters.Drop(DtlsDropReason.Malformed);
                    return false;
            }
        }
        else if (!DtlsRecordHeader.TryRead(datagram, out var record, out _) || record.Type != DtlsContentType.Handshake || record.Epoch != 0
                 || !HandshakeHeader.TryRead(record.Fragment, out var hs, out _) || hs.Type != DtlsHandshakeType.ClientHello)
        {
            Counters.Drop(DtlsDropReason.Malformed);
            return false;
        }
        // Verified (or no cookie exchange): only now does per-client handshake state exist.
        DtlsRecordHeader.TryRead(datagram, out var first, out _);
        HandshakeHeader.TryRead(first.Fragment, out var hello, out _);
        // RFC 6347 4.2.1 / 4.2.2: continue the record and message sequence numbers from the verified ClientHello,
        // so the client's windows accept what follows the stateless HelloVerifyRequest.
        _writeSequence[0] = first.Sequence;
        _reassembler.NextSequence = hello.MessageSequence;
        _nextSendSequence = hello.MessageSequence;
        BeginHandshake(DtlsStateReason.ClientHelloReceived);
        _role = new ServerHandshake(this);
        return true;
    }

    private void ProcessRecords(ReadOnlySpan<byte> datagram)
    {
        ProcessRecordsOfDatagram(datagram);
        AckAfterGap13();
    }

    private void ProcessRecordsOfDatagram(ReadOnlySpan<byte> datagram)
    {
        while (!datagram.IsEmpty)
        {
            if (Dtls13RecordHeader.IsUnified(datagram[0]))
            {
                // RFC 9147 4: a unified-header (protected) record; only meaningful once we speak or offer 1.3.
                if (!Uses13Handshake || !Dtls13RecordHeader.TryRead(datagram, out var r13, out var used))
                {
                    Counters.Drop(DtlsDropReason.Malformed);
                    return;
                }
                datagram = datagram[used..];
                Process13Record(r13);
                Continue13();
                RunPendingReplays();
                if (State is DtlsState.Closed or DtlsState.Failed) return;
                continue;
            }
            if (!DtlsRecordHeader.TryRead(datagram, out var record, out var consumed))
            {
                // RFC 6347 4.1.2.7: invalid records are silently discarded; a bad length poisons the rest.
                Counters.Drop(DtlsDropReason.Malformed);
                return;
            }
            datagram = datagram[consumed..];
            if (Uses13Handshake)
            {
                ProcessPlaintext13(record);
                Continue13();
                RunPendingReplays();
                if (State is DtlsState.Closed or DtlsState.Failed) return;
                continue;
            }
            ProcessRecord(record);
            // Handle complete messages before the next record: a flight's Finished (epoch 1) follows the
            // ClientKeyExchange that yields the keys to read it, often in the same datagram.
            ContinueHandshake();
            if (State is DtlsState.Closed or DtlsState.Failed) return;
            ReplayEarlyRecords();
        }
    }

    /// <summary>
    /// Epoch-1 records that arrived before we could compute the keys (reordering) are kept, a few, and processed
    /// once the keys exist, rather than waiting for a retransmission.
    /// </summary>
    private void ReplayEarlyRecords()
    {
        if (_readCipher is null || _earlyRecords is not { Count: > 0 }) return;
        var early = _earlyRecords;
        _earlyRecords = null;
        foreach (var bytes in early)
        {
            if (DtlsRecordHeader.TryRead(bytes, out var record, out _)) ProcessRecord(record);
            ContinueHandshake();
            if (State is DtlsState.Closed or DtlsState.Failed) return;
        }
    }

    private const int MaxEarlyRecords = 8;

    /// <summary>DTLS 1.3 DTLSPlaintext (epoch 0): hellos and alerts before keys exist (RFC 9147 4).</summary>
    private void ProcessPlaintext13(in DtlsRecordHeader record)
    {
        if (record.Epoch != 0) { Counters.Drop(DtlsDropReason.UnknownEpoch); return; }
        var window = _windows[0];
        if (window.IsReplay(record.Sequence)) { Counters.Drop(DtlsDropReason.Replayed); return; }
        switch (record.Type)
        {
            // Once connected no plaintext handshake message is due (the post-handshake messages are protected; a
            // retransmitted server flight is answered on its protected Finished): an unauthenticated hello with the
            // next message sequence would reach the post-handshake handler and fail the connection (found by the
            // dtls-connected fuzz target, fuzz/crashes/dtls-connected). Dropped and counted.
            case DtlsContentType.Handshake when State == DtlsState.Connected:
                Counters.Drop(DtlsDropReason.UnexpectedInState);
                break;
            case DtlsContentType.Handshake:
                window.Mark(record.Sequence);
                Counters.RecordsReceived++;
                HandleHandshakeRecord13(record.Fragment, 0, record.Sequence);
                break;
            case DtlsContentType.Alert when State != DtlsState.Connected:
                window.Mark(record.Sequence);
                Counters.RecordsReceived++;
                HandleAlert(record.Fragment);
                break;
            default:
                Counters.Drop(DtlsDropReason.UnexpectedInState);
                break;
        }
    }
    private List<byte[]>? _earlyRecords;

    // The plaintext of a record lives in a buffer rented for the record's processing (everything that keeps any of it
    // copies it): an idle connection holds no 18 KiB decryption buffer of its own (memory per connection).
    internal const int PlaintextCapacity = 16384 + 2048;

    private void ProcessRecord(in DtlsRecordHeader record)
    {
        var plaintext = System.Buffers.ArrayPool<byte>.Shared.Rent(PlaintextCapacity);
        try { ProcessRecord(record, plaintext); }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(plaintext); }
    }

    private void ProcessRecord(in DtlsRecordHeader record, byte[] plaintext)
    {
        if (record.Epoch > 1) { Counters.Drop(DtlsDropReason.UnknownEpoch); return; }
        var window = _windows[record.Epoch];
        if (window.IsReplay(record.Sequence)) { Counters.Drop(DtlsDropReason.Replayed); return; }
        ReadOnlySpan<byte> content;
        if (record.Epoch == 0)
        {
            if (record.Type == DtlsContentType.ApplicationData || (State == DtlsState.Connected && record.Type == DtlsContentType.Alert))
            {
                Counters.Drop(DtlsDropReason.UnexpectedInState);
                return;
            }
            content = record.Fragment;
        }
        else
        {
            if (_readCipher is null)
            {
                if (State == DtlsState.Handshaking && (_earlyRecords?.Count ?? 0) < MaxEarlyRecords)
                    (_earlyRecords ??= new()).Add(record.Whole.ToArray());
                else
                    Counters.Drop(DtlsDropReason.UnknownEpoch);
                return;
            }
            if (!_readCipher.Open(record, plaintext, out var n)) { Counters.Drop(DtlsDropReason.BadTag); return; }
            content = plaintext.AsSpan(0, n);
        }
        window.Mark(record.Sequence);
        Counters.RecordsReceived++;
        switch (record.Type)
        {
            case DtlsContentType.Handshake:
                HandleHandshakeRecord(content, record.Epoch);
                break;
            case DtlsContentType.ChangeCipherSpec:
                // Our read epoch switches by record epoch, not by this message, so reordering cannot confuse it.
                if (content.Length != 1 || content[0] != 1) Counters.Drop(DtlsDropReason.Malformed);
                break;
            case DtlsContentType.Alert:
                HandleAlert(content);
                break;
            case DtlsContentType.ApplicationData:
                // Only after Finished verified (State Connected implies it) may data flow up.
                if (State != DtlsState.Connected) { Counters.Drop(DtlsDropReason.UnexpectedInState); break; }
                DeliverApplicationData(content);
                break;
        }
    }

    private void HandleAlert(ReadOnlySpan<byte> content)
    {
        if (content.Length != 2) { Counters.Drop(DtlsDropReason.Malformed); return; }
        var description = (DtlsAlertDescription)content[1];
        if (description == DtlsAlertDescription.CloseNotify)
        {
            // RFC 5246 7.2.1: answer close_notify with close_notify and close at once.
            SendAlert(AlertLevelWarning, DtlsAlertDescription.CloseNotify);
            Transition(DtlsState.Closed, new DtlsClosed(DtlsStateReason.PeerClosed));
            return;
        }
        if (content[0] == AlertLevelFatal)
            Transition(DtlsState.Failed, new DtlsFailed(DtlsStateReason.PeerAlert, description, $"Peer sent fatal alert {description} ({(byte)description})."));
        // Warning alerts other than close_notify (e.g. no_renegotiation) need no action.
    }

    private void HandleHandshakeRecord(ReadOnlySpan<byte> content, ushort epoch)
    {
        if (_role is null) { Counters.Drop(DtlsDropReason.UnexpectedInState); return; }
        while (!content.IsEmpty)
        {
            if (!HandshakeHeader.TryRead(content, out var fragment, out var consumed))
            {
                Counters.Drop(DtlsDropReason.BadHandshake);
                return;
            }
            content = content[consumed..];
            // Finished is the only handshake message of epoch 1 in a handshake without renegotiation, and it must be
            // protected: a plaintext Finished, or any other message under epoch 1, is dropped.
            if (epoch == 1 && State == DtlsState.Connected && fragment.Type is DtlsHandshakeType.HelloRequest or DtlsHandshakeType.ClientHello)
            {
                // RFC 5746 section 4.5 / RFC 5246 7.2.2: we refuse renegotiation with a warning, the connection goes on.
                SendAlert(AlertLevelWarning, DtlsAlertDescription.NoRenegotiation);
                Counters.Drop(DtlsDropReason.UnexpectedInState);
                continue;
            }
            if ((fragment.Type == DtlsHandshakeType.Finished) != (epoch == 1))
            {
                Counters.Drop(DtlsDropReason.BadHandshake);
                continue;
            }
            switch (_reassembler.Add(fragment))
            {
                case FragmentOutcome.Old:
                    // RFC 6347 4.2.4: the peer retransmits its last flight because ours was lost: resend ours, once per
                    // copy of that flight (on its last fragment of its last message).
                    if (fragment.MessageSequence == _peerFlightEndSequence && fragment.FragmentOffset + fragment.Fragment.Length == fragment.MessageLength)
                    {
                        Counters.Retransmissions++;
                        TransmitFlight();
                    }
                    break;
                case FragmentOutcome.Rejected:
                    Counters.Drop(DtlsDropReason.BadHandshake);
                    break;
            }
        }
    }

    private void ContinueHandshake()
    {
        while (_role is not null && State == DtlsState.Handshaking && _reassembler.TryTake(out var message))
            _role.HandleMessage(message);
    }

    /// <summary>The role tells that the peer's flight ended with message <paramref name="sequence"/>.</summary>
    internal void PeerFlightEnded(int sequence) => _peerFlightEndSequence = sequence;

    internal void ResetEpochZeroReadWindow() => _windows[0].Reset();

    internal ulong NextWriteSequence(ushort epoch) => _writeSequence[epoch]++;

    internal void InstallKeys(RecordCipher read, RecordCipher write)
    {
        _readCipher = read;
        _writeCipher = write;
    }

    /// <summary>Sends a new flight; with <paramref name="expectReply"/> the retransmission timer is armed (RFC 6347 4.2.4).</summary>
    internal void SendFlight(List<OutgoingMessage> flight, bool expectReply)
    {
        _flight = flight;
        _peerReadyUsed = false;
        _flightTransmissions.Clear();
        _fragments13.Clear();
        _recordFragment13.Clear();
        _awaitingAck = false;
        TransmitFlight();
        _currentRto = _options.FirstRetransmitTimeout;
        _retransmitAt = expectReply ? _now + _currentRto : null;
    }

    /// <summary>The handshake is over for our side: nothing more to retransmit on a timer.</summary>
    internal void StopRetransmitting(bool forgetFlight)
    {
        _retransmitAt = null;
        if (forgetFlight)
        {
            _flight = null;
            ForgetFlightRecords();
        }
    }

    // The last flight's bookkeeping (record numbers, fragments, transmissions) goes with the flight, capacity included:
    // an idle connection keeps none of it.
    private void ForgetFlightRecords()
    {
        _flightTransmissions.Clear();
        _flightTransmissions.TrimExcess();
        _fragments13.Clear();
        _fragments13.TrimExcess();
        _recordFragment13.Clear();
        _recordFragment13.TrimExcess();
    }

    /// <summary>Writes the current flight into datagrams of at most MTU bytes, fragmenting handshake messages.</summary>
    private void TransmitFlight()
    {
        if (_flight is null) return;
        if (Uses13Handshake)
        {
            _lastFlightTransmit = _now;
            _recordingTransmission = new();
            _flightTransmissions.Add(_recordingTransmission);
            // RFC 9147 7.2: once part of the flight is acknowledged, resend only the records not acknowledged.
            if (_fragments13.Count > 0 && _fragments13.Exists(f => f.Acked))
            {
                TransmitUnacknowledged13();
                return;
            }
        }
        var fragmentIndex = 0;
        var firstTransmission = _fragments13.Count == 0;
        var mtu = _options.Mtu;
        var datagram = ArrayPool<byte>.Shared.Rent(mtu);
        var used = 0;
        var scratch = ArrayPool<byte>.Shared.Rent(mtu);
        try
        {
            foreach (var message in _flight)
            {
                var overhead = message.Epoch == 0 ? DtlsRecordHeader.Length
                    : Uses13Handshake ? Tls13.Dtls13RecordCipher.Overhead : DtlsRecordHeader.Length + _writeCipher!.Overhead;
                if (message.Type == DtlsContentType.ChangeCipherSpec)
                {
                    if (used + overhead + 1 > mtu) Flush(ref datagram, ref used, mtu);
                    used += WriteRecord(DtlsContentType.ChangeCipherSpec, message.Epoch, message.Data, datagram.AsSpan(used));
                    continue;
                }
                var body = message.Data.AsSpan(HandshakeHeader.Length);
                var offset = 0;
                do
                {
                    var room = mtu - used - overhead - HandshakeHeader.Length;
                    // Start a new datagram rather than send slivers.
                    if (room < Math.Min(64, body.Length - offset) || room <= 0)
                    {
                        if (used == 0) throw new InvalidOperationException("MTU too small for a handshake fragment.");
                        Flush(ref datagram, ref used, mtu);
                        continue;
                    }
                    var n = Math.Min(room, body.Length - offset);
                    HandshakeHeader.Write(scratch, (DtlsHandshakeType)message.Data[0], body.Length,
                        (message.Data[4] << 8) | message.Data[5], offset, n);
                    body.Slice(offset, n).CopyTo(scratch.AsSpan(HandshakeHeader.Length));
                    used += WriteRecord(DtlsContentType.Handshake, message.Epoch, scratch.AsSpan(0, HandshakeHeader.Length + n), datagram.AsSpan(used));
                    if (Uses13Handshake) NoteFragment13(firstTransmission, fragmentIndex++, _flight.IndexOf(message), message.Epoch, offset, n);
                    offset += n;
                }
                while (offset < body.Length);
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

    private void Flush(ref byte[] datagram, ref int used, int mtu)
    {
        _transmits.Enqueue((datagram, used));
        datagram = ArrayPool<byte>.Shared.Rent(mtu);
        used = 0;
    }

    private int WriteRecord(DtlsContentType type, ushort epoch, ReadOnlySpan<byte> plaintext, Span<byte> destination)
    {
        if (epoch != 0 && Uses13Handshake) return Write13Record(type, epoch, plaintext, destination);
        var sequence = NextWriteSequence(epoch);
        if (epoch == 0)
        {
            DtlsRecordHeader.Write(destination, type, 0, sequence, plaintext.Length);
            plaintext.CopyTo(destination[DtlsRecordHeader.Length..]);
            return DtlsRecordHeader.Length + plaintext.Length;
        }
        return _writeCipher!.Seal(type, epoch, sequence, plaintext, destination);
    }

    /// <summary>Sends an alert in its own datagram under the current write epoch (protected once keys are active).</summary>
    internal void SendAlert(byte level, DtlsAlertDescription description)
    {
        Span<byte> alert = [level, (byte)description];
        var epoch = _writeEpoch;
        var buffer = ArrayPool<byte>.Shared.Rent(64);
        var n = WriteRecord(DtlsContentType.Alert, epoch, alert, buffer);
        _transmits.Enqueue((buffer, n));
    }

    /// <summary>From now on our records are protected (we sent ChangeCipherSpec).</summary>
    internal void ActivateWriteEpoch() => _writeEpoch = 1;
}
