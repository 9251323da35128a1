using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography.X509Certificates;
using Transport.Dtls.Crypto;
using Transport.Dtls.Handshake;
using Transport.Dtls.Records;

namespace Transport.Dtls;

/// <summary>
/// One DTLS 1.2 association (RFC 6347) as a sans-IO state machine: datagrams in through <see cref="HandleDatagram"/>,
/// datagrams out through <see cref="TryPollTransmit"/>, state changes and data through <see cref="TryPollEvent"/>,
/// deadlines through <see cref="PollTimeout()"/> / <see cref="HandleTimeout"/>. It never reads a clock: every input
/// carries <c>now</c>. Not thread-safe: one logical thread drives it at a time.
/// </summary>
public sealed partial class DtlsConnection : IDisposable
{
    private readonly DtlsOptions _options;
    private readonly DtlsCookieResponder? _cookies;
    private readonly byte[] _remoteAddress;
    private readonly Queue<DtlsEvent> _events = new();
    private readonly Queue<(byte[] Buffer, int Length)> _transmits = new();
    private readonly Queue<(byte[] Buffer, int Length)> _received = new();
    private HandshakeRole? _role;
    private TimeSpan _now;

    private DtlsConnection(DtlsOptions options, bool isClient, DtlsCookieResponder? cookies, ReadOnlySpan<byte> remoteAddress)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _reassembler.MaxBufferedBytes = options.MaxHandshakeBuffer;
        IsClient = isClient;
        _cookies = cookies;
        _remoteAddress = remoteAddress.ToArray();
    }

    /// <summary>Creates the client side; call <see cref="Start"/> to send the first ClientHello.</summary>
    public static DtlsConnection CreateClient(DtlsOptions options) => new(options, true, null, default);

    /// <summary>
    /// Creates the server side. With <paramref name="cookies"/> the connection itself answers ClientHellos without a
    /// valid cookie statelessly (no handshake state exists until a cookie verifies). Without it, the caller has
    /// already run <see cref="DtlsCookieResponder.Process"/> (the usual listener design) or skips the cookie exchange.
    /// </summary>
    /// <param name="options">Settings.</param>
    /// <param name="cookies">Optional responder for the HelloVerifyRequest exchange.</param>
    /// <param name="remoteAddress">The client's transport address in any stable encoding (bound into the cookie).</param>
    public static DtlsConnection CreateServer(DtlsOptions options, DtlsCookieResponder? cookies = null, ReadOnlySpan<byte> remoteAddress = default) =>
        new(options, false, cookies, remoteAddress);

    /// <summary>True for the client role.</summary>
    public bool IsClient { get; }

    /// <summary>The current state.</summary>
    public DtlsState State { get; private set; } = DtlsState.New;

    /// <summary>Drop and traffic counters.</summary>
    public DtlsCounters Counters { get; } = new();

    /// <summary>The negotiated suite (valid once the ServerHello was sent or received).</summary>
    public DtlsCipherSuite? CipherSuite { get; internal set; }

    /// <summary>The negotiated SRTP profile, or null when use_srtp was not agreed.</summary>
    public SrtpProtectionProfile? SrtpProfile { get; internal set; }

    /// <summary>The negotiated ECDHE group.</summary>
    public DtlsNamedGroup? Group { get; internal set; }

    /// <summary>True when the extended master secret (RFC 7627) was used.</summary>
    public bool ExtendedMasterSecret { get; internal set; }

    /// <summary>The scheme of the peer's signature (ServerKeyExchange or CertificateVerify) once verified.</summary>
    public DtlsSignatureScheme? PeerSignatureScheme { get; internal set; }

    /// <summary>The peer's certificate (DER) once received.</summary>
    public ReadOnlyMemory<byte> RemoteCertificateDer { get; internal set; }

    /// <summary>The peer's certificate once received, loaded on first use (the handshake itself needs only its key).</summary>
    public X509Certificate2? RemoteCertificate =>
        _remoteCertificate ??= RemoteCertificateDer.IsEmpty ? null : X509CertificateLoader.LoadCertificate(RemoteCertificateDer.Span);

    private X509Certificate2? _remoteCertificate;

    internal Crypto.PeerPublicKey? RemoteKey { get; set; }

    /// <summary>The SHA-256 fingerprint of <see cref="RemoteCertificateDer"/> (SDP form), set with it; "" before.</summary>
    internal string RemoteSha256Fingerprint { get; set; } = "";

    /// <summary>True once handshake state exists (for the server: after a ClientHello with a valid cookie).</summary>
    internal bool HasHandshakeState => _role is not null;

    internal DtlsOptions Options => _options;

    /// <summary>Starts the client handshake (sends flight 1). Only for the client, only once.</summary>
    public void Start(TimeSpan now)
    {
        if (!IsClient) throw new InvalidOperationException("Only the client starts; the server waits for a ClientHello.");
        if (State != DtlsState.New) throw new InvalidOperationException($"Start was already called (state {State}).");
        Advance(now);
        BeginHandshake(DtlsStateReason.HandshakeStarted);
        _role = _options.MaxVersion == DtlsVersion.Dtls13 ? new Tls13.Client13Handshake(this) : new ClientHandshake(this);
        _role.Start();
    }

    /// <summary>Handles one received datagram (one or more records). Bad input is dropped and counted, never thrown.</summary>
    public void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now)
    {
        Advance(now);
        if (State is DtlsState.Closed or DtlsState.Failed)
        {
            Counters.Drop(DtlsDropReason.UnexpectedInState);
            return;
        }
        if (_role is null)
        {
            if (IsClient) { Counters.Drop(DtlsDropReason.UnexpectedInState); return; }
            if (!AcceptFirstClientHello(datagram)) return;
        }
        ProcessRecords(datagram);
    }

    /// <summary>Call when <see cref="PollTimeout()"/> has passed: retransmits the flight or fails the handshake.</summary>
    public void HandleTimeout(TimeSpan now)
    {
        Advance(now);
        if (State != DtlsState.Handshaking && !(State == DtlsState.Connected && _awaitingAck)) return;
        if (_handshakeDeadline is { } deadline && _now >= deadline)
        {
            if (State == DtlsState.Connected)
            {
                // DTLS 1.3 client: no ACK for the last flight in the whole handshake time; stop resending it.
                if (!_keyUpdatePending && Is13) DropHandshakeEpoch13();
                _awaitingAck = false;
                _keyUpdatePending = false;
                _retransmitAt = null;
                _handshakeDeadline = null;
                return;
            }
            Fail(DtlsStateReason.HandshakeTimeout, null, $"Handshake not complete after {_options.HandshakeTimeout}.", sendAlert: false);
            return;
        }
        if (_retransmitAt is { } at && _now >= at && !RetransmissionPaused)
        {
            // RFC 6347 4.2.4.1: double the timer on each retransmission, up to the maximum.
            Counters.Retransmissions++;
            // Our timer fired while the peer's flight is incomplete: tell it what came (RFC 9147 7.1).
            if (State == DtlsState.Handshaking && Uses13Handshake) SendPartialFlightAck13();
            // DTLS 1.3: not twice in one instant (the peer's retransmission arriving now already made us resend).
            if (!(Uses13Handshake && _lastFlightTransmit == _now)) TransmitFlight();
            var doubled = _currentRto + _currentRto;
            _currentRto = doubled > _options.MaxRetransmitTimeout ? _options.MaxRetransmitTimeout : doubled;
            _retransmitAt = _now + _currentRto;
        }
    }

    /// <summary>
    /// A hint from the layer below that the peer has just become able to take our flight (WebRTC: its first ICE
    /// check arrived after our flight left, so it now has our description and its DTLS is set up; before, our flight
    /// was likely dropped). While a flight of ours waits for its reply, it is sent again at once and its timer
    /// restarts at the first value, instead of waiting out the timer (RFC 6347 section 4.2.4 lets an implementation
    /// retransmit early). Acts once per flight; returns whether it resent.
    /// </summary>
    public bool HandlePeerReady(TimeSpan now)
    {
        Advance(now);
        if (State != DtlsState.Handshaking || _retransmitAt is null || _flight is null || _peerReadyUsed) return false;
        _peerReadyUsed = true;
        Counters.Retransmissions++;
        Counters.PeerReadyRetransmissions++;
        TransmitFlight();
        _currentRto = _options.FirstRetransmitTimeout;
        _retransmitAt = _now + _currentRto;
        return true;
    }

    /// <summary>The next deadline (retransmission or handshake timeout), or null when none is armed.</summary>
    public TimeSpan? PollTimeout() => PollTimeout(out _);

    /// <summary>The next deadline and which timer it is (<see cref="DtlsTimer"/>), or null (and None) when none is armed.</summary>
    public TimeSpan? PollTimeout(out DtlsTimer timer)
    {
        timer = DtlsTimer.None;
        if (State != DtlsState.Handshaking && !(State == DtlsState.Connected && _awaitingAck)) return null;
        TimeSpan? t = RetransmissionPaused ? null : _retransmitAt;
        if (t is not null) timer = DtlsTimer.Retransmission;
        if (_handshakeDeadline is { } d && (t is null || d < t)) { t = d; timer = DtlsTimer.HandshakeTimeout; }
        return t;
    }

    /// <summary>Copies the next datagram to send into <paramref name="destination"/>; false when none is queued.</summary>
    public bool TryPollTransmit(Span<byte> destination, out int written)
    {
        written = 0;
        if (!_transmits.TryPeek(out var next)) return false;
        if (destination.Length < next.Length)
            throw new ArgumentException($"Destination holds {destination.Length} bytes; the next datagram has {next.Length}.", nameof(destination));
        _transmits.Dequeue();
        next.Buffer.AsSpan(0, next.Length).CopyTo(destination);
        ArrayPool<byte>.Shared.Return(next.Buffer);
        written = next.Length;
        Counters.DatagramsSent++;
        return true;
    }

    /// <summary>
    /// Copies the next received application record into <paramref name="destination"/> when
    /// <see cref="DtlsOptions.DeliverApplicationDataAsEvents"/> is false; false when none is queued.
    /// </summary>
    /// <exception cref="ArgumentException">The destination is smaller than the record (it stays queued).</exception>
    public bool TryReceive(Span<byte> destination, out int written)
    {
        written = 0;
        if (!_received.TryPeek(out var next)) return false;
        if (destination.Length < next.Length)
            throw new ArgumentException($"Destination holds {destination.Length} bytes; the next record has {next.Length}.", nameof(destination));
        _received.Dequeue();
        next.Buffer.AsSpan(0, next.Length).CopyTo(destination);
        ArrayPool<byte>.Shared.Return(next.Buffer);
        written = next.Length;
        return true;
    }

    /// <summary>Takes the next event (<see cref="DtlsEvent.Kind"/>: a state change or, in that mode, application data).</summary>
    public bool TryPollEvent([MaybeNullWhen(false)] out DtlsEvent evt) => _events.TryDequeue(out evt);

    /// <summary>
    /// Protects <paramref name="data"/> as one application_data record and queues it.
    /// </summary>
    /// <exception cref="DtlsNotConnectedException">The connection is not <see cref="DtlsState.Connected"/>.</exception>
    /// <exception cref="ArgumentException">More than 16384 bytes (a TLS record's limit).</exception>
    public void Send(ReadOnlySpan<byte> data)
    {
        if (State != DtlsState.Connected) throw new DtlsNotConnectedException(State);
        if (data.Length > 16384) throw new ArgumentException("A record carries at most 16384 bytes.", nameof(data));
        if (_currentWrite13 is { } w13)
        {
            var b13 = ArrayPool<byte>.Shared.Rent(Tls13.Dtls13RecordCipher.Overhead + data.Length);
            _transmits.Enqueue((b13, w13.Seal(DtlsContentType.ApplicationData, w13.NextSequence++, data, b13)));
            return;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(DtlsRecordHeader.Length + _writeCipher!.Overhead + data.Length);
        var n = _writeCipher.Seal(DtlsContentType.ApplicationData, 1, NextWriteSequence(1), data, buffer);
        _transmits.Enqueue((buffer, n));
    }

    /// <summary>
    /// Protects <paramref name="data"/> as one application_data record written straight into
    /// <paramref name="destination"/> (no queue, no copy): for a caller that sends the datagram at once. Returns its
    /// length. Records are independent, so one sealed here may leave before datagrams still queued for
    /// <see cref="TryPollTransmit"/>; poll those first when their order matters.
    /// </summary>
    /// <exception cref="DtlsNotConnectedException">The connection is not <see cref="DtlsState.Connected"/>.</exception>
    /// <exception cref="ArgumentException">More than 16384 bytes, or a destination too small for the record.</exception>
    public int SealApplicationData(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        if (State != DtlsState.Connected) throw new DtlsNotConnectedException(State);
        if (data.Length > 16384) throw new ArgumentException("A record carries at most 16384 bytes.", nameof(data));
        if (destination.Length < ApplicationDataOverhead + data.Length)
            throw new ArgumentException($"Destination holds {destination.Length} bytes; the record needs {ApplicationDataOverhead + data.Length}.",
                nameof(destination));
        var n = _currentWrite13 is { } w13
            ? w13.Seal(DtlsContentType.ApplicationData, w13.NextSequence++, data, destination)
            : _writeCipher!.Seal(DtlsContentType.ApplicationData, 1, NextWriteSequence(1), data, destination);
        Counters.DatagramsSent++;
        return n;
    }

    /// <summary>Bytes a record adds to its application data (header and tag): what <see cref="SealApplicationData"/> needs beyond the data.</summary>
    public int ApplicationDataOverhead => _currentWrite13 is not null ? Tls13.Dtls13RecordCipher.Overhead
        : DtlsRecordHeader.Length + (_writeCipher?.Overhead ?? 0);

    /// <summary>Sends close_notify (RFC 5246 section 7.2.1) and moves to <see cref="DtlsState.Closed"/>.</summary>
    public void Close(TimeSpan now)
    {
        Advance(now);
        if (State is DtlsState.Closed or DtlsState.Failed) return;
        if (State != DtlsState.New) SendAlert(AlertLevelWarning, DtlsAlertDescription.CloseNotify);
        Transition(DtlsState.Closed, new DtlsClosed(DtlsStateReason.LocalClose));
    }

    /// <summary>
    /// The keying material exporter (RFC 5705 section 4): PRF(master_secret, label, client_random + server_random
    /// [+ context length + context]). Available once connected.
    /// </summary>
    public byte[] ExportKeyingMaterial(string label, int length, ReadOnlySpan<byte> context = default, bool useContext = false)
    {
        ArgumentNullException.ThrowIfNull(label);
        if (State == DtlsState.Connected && Is13 && Schedule13 is { } schedule)
            return schedule.Export(label, useContext ? context : default, length);
        if (State != DtlsState.Connected || _masterSecret is null) throw new DtlsNotConnectedException(State);
        var output = new byte[length];
        if (!useContext)
        {
            TlsPrf.Derive(_suite.Hash, _masterSecret, label, _clientRandom, _serverRandom, output);
        }
        else
        {
            var seed2 = new byte[_serverRandom.Length + 2 + context.Length];
            _serverRandom.CopyTo(seed2, 0);
            seed2[_serverRandom.Length] = (byte)(context.Length >> 8);
            seed2[_serverRandom.Length + 1] = (byte)context.Length;
            context.CopyTo(seed2.AsSpan(_serverRandom.Length + 2));
            TlsPrf.Derive(_suite.Hash, _masterSecret, label, _clientRandom, seed2, output);
        }
        return output;
    }

    /// <summary>
    /// The SRTP master keys and salts (RFC 5764 section 4.2): the <c>EXTRACTOR-dtls_srtp</c> export split into the
    /// client and server halves and mapped to local / remote for this endpoint.
    /// </summary>
    public SrtpKeyingMaterial GetSrtpKeyingMaterial()
    {
        if (State != DtlsState.Connected) throw new DtlsNotConnectedException(State);
        if (SrtpProfile is not { } profile) throw new InvalidOperationException("use_srtp was not negotiated.");
        var length = 2 * (SrtpProfileInfo.KeyLength(profile) + SrtpProfileInfo.SaltLength(profile));
        return SrtpKeyingMaterial.Split(profile, ExportKeyingMaterial("EXTRACTOR-dtls_srtp", length), IsClient);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _role?.Dispose();
        RemoteKey?.Dispose();
        _remoteCertificate?.Dispose();
        _readCipher?.Dispose();
        _writeCipher?.Dispose();
        Dispose13();
        while (_transmits.TryDequeue(out var t)) ArrayPool<byte>.Shared.Return(t.Buffer);
        while (_received.TryDequeue(out var r)) ArrayPool<byte>.Shared.Return(r.Buffer);
    }

    private void Advance(TimeSpan now)
    {
        // Time never goes back (DESIGN.md): clamp.
        if (now > _now) _now = now;
    }

    internal TimeSpan Now => _now;

    /// <summary>The one place the state changes; queues the event that tells about it.</summary>
    internal void Transition(DtlsState next, DtlsStateChanged evt)
    {
        if (State == next) return;
        var previous = State;
        State = next;
        if (next is DtlsState.Connected && _awaitingAck)
        {
            // DTLS 1.3 client: the last flight is retransmitted until the server's ACK (RFC 9147 5.8.4), at most
            // until the handshake deadline.
        }
        else if (next is DtlsState.Connected or DtlsState.Closed or DtlsState.Failed)
        {
            _retransmitAt = null;
            _handshakeDeadline = null;
        }
        evt.Previous = previous;
        EnqueueEvent(evt);
        if (next is DtlsState.Connected) DeliverEarlyApplicationData();
        else if (next is DtlsState.Closed or DtlsState.Failed) _earlyApplicationData = null;
    }

    private void BeginHandshake(DtlsStateReason reason)
    {
        _handshakeDeadline = _now + _options.HandshakeTimeout;
        Transition(DtlsState.Handshaking, new DtlsHandshaking(reason));
    }

    /// <summary>Fails the connection, sending a fatal alert first when asked (RFC 5246 section 7.2.2).</summary>
    internal void Fail(DtlsStateReason reason, DtlsAlertDescription? alert, string message, bool sendAlert = true)
    {
        if (State is DtlsState.Closed or DtlsState.Failed) return;
        if (sendAlert && alert is { } a) SendAlert(AlertLevelFatal, a);
        Transition(DtlsState.Failed, new DtlsFailed(reason, alert, message));
    }

    /// <summary>Queues an event stamped with the time of the call that caused it.</summary>
    internal void EnqueueEvent(DtlsEvent evt)
    {
        evt.At = _now;
        _events.Enqueue(evt);
    }
}
