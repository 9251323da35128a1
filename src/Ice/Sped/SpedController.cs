using Transport.Ice.Stun;

namespace Transport.Ice;

/// <summary>Where SPED stands (the states of Chromium's DtlsStunPiggybackController).</summary>
public enum SpedState
{
    /// <summary>We carry our DTLS records in checks but do not know yet whether the peer takes them.</summary>
    Tentative,
    /// <summary>The peer carries SPED attributes too: the handshake goes on in the checks.</summary>
    Confirmed,
    /// <summary>Our side of the handshake is complete; we wait for the peer's acknowledgement of our last records.</summary>
    Pending,
    /// <summary>The handshake completed with SPED; the checks carry nothing more.</summary>
    Complete,
    /// <summary>Not used: the peer lacks SPED or stopped carrying it, or DTLS failed. DTLS goes the normal path.</summary>
    Off,
}

/// <summary>A DTLS datagram that arrived in a STUN message, for the DTLS layer.</summary>
public delegate void SpedDatagramHandler(ReadOnlySpan<byte> datagram);

/// <summary>SPED counters.</summary>
public sealed class SpedCounters
{
    /// <summary>DTLS datagrams we carried in STUN messages (each copy counts).</summary>
    public long DatagramsSent { get; internal set; }
    /// <summary>DTLS datagrams received in STUN and handed to DTLS ("records received in STUN").</summary>
    public long DatagramsReceived { get; internal set; }
    /// <summary>ACK attributes received (well formed).</summary>
    public long AcksReceived { get; internal set; }
    /// <summary>Our datagrams the peer acknowledged.</summary>
    public long DatagramsAcknowledged { get; internal set; }
    /// <summary>ACK attributes whose length is not a multiple of four (dropped).</summary>
    public long MalformedAcks { get; internal set; }
    /// <summary>META-DTLS-IN-STUN values that are not DTLS (dropped).</summary>
    public long NotDtls { get; internal set; }
    /// <summary>Datagrams of a flight beyond <see cref="SpedController.MaxPendingDatagrams"/> (they go the normal path only).</summary>
    public long PendingOverflow { get; internal set; }
    /// <summary>Datagrams that did not fit the size cap of the message they were to go in (left for the next one).</summary>
    public long TooLarge { get; internal set; }
    /// <summary>Requests sent because the peer's answer to ours carried no DTLS yet (<see cref="SpedController.MaxProbes"/>).</summary>
    public long ProbesSent { get; internal set; }
}

/// <summary>
/// SPED (draft-hancke-webrtc-sped): the DTLS handshake carried in the ICE connectivity checks, as a sans-IO part of
/// the ICE agent (<see cref="IceAgent.Sped"/>). Our current DTLS flight waits here (<see cref="CaptureFlight"/>); each
/// Binding request and response carries one of its datagrams in META-DTLS-IN-STUN (in turn, within the 1200-byte cap)
/// and the CRC-32s of the last four DTLS datagrams we received in META-DTLS-IN-STUN-ACK. Acknowledged datagrams leave
/// the flight. A datagram the peer carries goes to <see cref="DatagramReceived"/> (the DTLS layer). A peer whose STUN
/// message carries neither attribute while we are <see cref="SpedState.Tentative"/> lacks SPED: <see cref="SpedState.Off"/>,
/// and DTLS goes the normal path (the owner resumes its retransmission). Not thread-safe: the agent's thread.
/// </summary>
public sealed class SpedController
{
    /// <summary>At most this many datagrams of one flight wait to be carried.</summary>
    public const int MaxPendingDatagrams = 8;

    /// <summary>
    /// At most this many probes: requests sent at once when the answer to a SPED request of ours carried no DTLS datagram,
    /// the peer has sent none yet and we have none to send (we are the DTLS server and its DTLS client had not started:
    /// our check reached it before our answer did). The
    /// peer's answer to the next one carries its first flight as soon as it has one, instead of waiting for its own next
    /// check (a peer that carries one datagram a message, as Chromium does, sends the rest of a two-datagram ClientHello
    /// only in its next message). One a round trip (each on the answer to the last), so four cover an answer up to four
    /// round trips behind our first check.
    /// </summary>
    public const int MaxProbes = 4;

    private int _probesSent;

    private sealed class Pending(byte[] datagram, uint crc)
    {
        public byte[] Datagram { get; } = datagram;
        public uint Crc { get; } = crc;
        public int Carried { get; set; }
    }

    private readonly List<Pending> _pending = new();
    private readonly List<uint> _received = new(SpedAttributes.MaxAcks);
    private int _next;

    /// <summary>The state.</summary>
    public SpedState State { get; private set; } = SpedState.Tentative;

    /// <summary>Whether SPED still carries anything (not <see cref="SpedState.Complete"/> nor <see cref="SpedState.Off"/>).</summary>
    public bool IsActive => State is SpedState.Tentative or SpedState.Confirmed or SpedState.Pending;

    /// <summary>True once the handshake completed with SPED (<see cref="SpedState.Pending"/> or <see cref="SpedState.Complete"/>).</summary>
    public bool CompletedBySped => State is SpedState.Pending or SpedState.Complete;

    /// <summary>Counters.</summary>
    public SpedCounters Counters { get; } = new();

    /// <summary>
    /// For a peer that only answers (ICE-lite): each of its responses carries one datagram, so with our first carrying
    /// check we also send this many requests that carry only the acknowledgement, and the peer's whole reply to our
    /// first flight (a DTLS 1.3 server flight with a post-quantum key share is two or three datagrams at the SPED MTU)
    /// comes back in one round trip. 0 (the default) for a full peer, which sends requests of its own.
    /// </summary>
    public int ExtraRequestsForLitePeer { get; set; }

    /// <summary>
    /// True (the default): a flight larger than one STUN message goes at once in extra Binding requests with the check
    /// that carries its first datagram. False: one datagram per message, the rest waiting for the next check or
    /// response, as Chromium 156 does (its post-quantum ClientHello is two datagrams: the second leaves with its next
    /// check, about 50 ms later, or in its response to one of ours). Tests use it to stand for such a peer.
    /// </summary>
    public bool CarriesFlightAtOnce { get; set; } = true;

    private bool _extraRequestsSent;

    // Whether to send a probe now: SPED is active, we wait for the peer to speak first (we have carried no datagram of
    // our own: the DTLS server before the ClientHello), nothing came from the peer's DTLS yet (in STUN or directly), and
    // the bound is not reached. Counted when taken.
    internal bool TakeProbe()
    {
        if (!IsActive || Counters.DatagramsSent > 0 || _pending.Count > 0 || _received.Count > 0 || Counters.DatagramsReceived > 0
            || _probesSent >= MaxProbes) return false;
        _probesSent++;
        Counters.ProbesSent++;
        return true;
    }

    // How many ack-only requests to send now (once).
    internal int TakeExtraRequests()
    {
        if (_extraRequestsSent || !IsActive || ExtraRequestsForLitePeer <= 0) return 0;
        _extraRequestsSent = true;
        return Math.Min(ExtraRequestsForLitePeer, MaxPendingDatagrams);
    }

    /// <summary>Called with each DTLS datagram the peer carried (before the answer to its request is written).</summary>
    public SpedDatagramHandler? DatagramReceived { get; set; }

    /// <summary>The datagrams of our current flight not acknowledged yet.</summary>
    public IReadOnlyList<byte[]> PendingDatagrams => _pending.ConvertAll(p => p.Datagram);

    /// <summary>Datagrams of the current flight no STUN message carried yet (a flight larger than one message).</summary>
    public int Uncarried => IsActive ? _pending.Count(p => p.Carried == 0) : 0;

    /// <summary>
    /// Our DTLS layer wrote a new flight (every datagram it queued after one input): it replaces the previous one.
    /// Datagrams over the bound are counted and left out (the owner sends them the normal path anyway).
    /// </summary>
    public void CaptureFlight(IReadOnlyList<byte[]> datagrams)
    {
        ArgumentNullException.ThrowIfNull(datagrams);
        if (!IsActive || datagrams.Count == 0) return;
        _pending.Clear();
        _next = 0;
        foreach (var d in datagrams)
        {
            if (!SpedAttributes.LooksLikeDtls(d)) continue;
            if (_pending.Count >= MaxPendingDatagrams) { Counters.PendingOverflow++; continue; }
            _pending.Add(new Pending(d, SpedAttributes.Crc(d)));
        }
    }

    /// <summary>
    /// A DTLS datagram reached DTLS the normal path: it is acknowledged in our next messages like one carried in STUN.
    /// </summary>
    public void ReportDtlsDatagram(ReadOnlySpan<byte> datagram)
    {
        if (!IsActive) return;
        var crc = SpedAttributes.Crc(datagram);
        if (_received.Contains(crc)) return;
        while (_received.Count >= SpedAttributes.MaxAcks) _received.RemoveAt(0);
        _received.Add(crc);
    }

    /// <summary>
    /// Our side of the DTLS handshake is complete (we can send protected data). The side that sent the last flight
    /// (the server in DTLS 1.2, the client in DTLS 1.3) keeps it until the peer acknowledges it; the other side (a 1.2
    /// client got the server's Finished, a 1.3 server got the client's Finished) has nothing more to carry and only
    /// acknowledges until the end.
    /// </summary>
    public void OnHandshakeComplete(bool isClient, bool isDtls13)
    {
        if (!IsActive) return;
        if (isClient != isDtls13) { _pending.Clear(); _next = 0; }
        State = SpedState.Pending;
    }

    /// <summary>DTLS failed: stop carrying.</summary>
    public void OnDtlsFailed()
    {
        TurnOff();
        _pending.Clear();
    }

    /// <summary>
    /// Stops SPED (the peer lacks it, or the owner falls back). <see cref="PendingDatagrams"/> keeps the flight that
    /// was waiting, for the owner to send the normal path.
    /// </summary>
    public void TurnOff()
    {
        if (State == SpedState.Complete) return;
        State = SpedState.Off;
        _received.Clear();
    }

    private void CompleteNow()
    {
        State = SpedState.Complete;
        _pending.Clear();
        _received.Clear();
    }

    /// <summary>
    /// Adds the SPED attributes to a Binding request or response being written (before MESSAGE-INTEGRITY), within the
    /// size cap. Returns the CRC-32 of the datagram carried, if any (a response to it acknowledges it implicitly).
    /// </summary>
    internal uint? Write(ref StunMessageWriter w, out bool wroteAny, bool carryData = true)
    {
        wroteAny = false;
        if (!IsActive) return null;
        var body = w.Length - StunHeader.Size;
        var ackLength = 4 * _received.Count;
        if (body + 4 + ackLength <= SpedAttributes.MaxStunBody)
        {
            Span<uint> acks = stackalloc uint[SpedAttributes.MaxAcks];
            for (var i = 0; i < _received.Count; i++) acks[i] = _received[i];
            SpedAttributes.WriteAck(acks[.._received.Count], w.AddEmpty(SpedAttributes.DtlsInStunAck, ackLength));
            wroteAny = true;
        }
        else if (body + 4 <= SpedAttributes.MaxStunBody)
        {
            w.AddEmpty(SpedAttributes.DtlsInStunAck, 0);
            wroteAny = true;
        }
        else return null;
        if (!carryData) return null;
        body = w.Length - StunHeader.Size;
        if (_pending.Count > 0)
        {
            // A datagram not carried yet first, else in turn: each message carries the next datagram of the flight.
            var first = _pending.FindIndex(p => p.Carried == 0);
            if (first >= 0) _next = first;
            for (var tries = 0; tries < _pending.Count; tries++)
            {
                var p = _pending[_next % _pending.Count];
                _next = (_next + 1) % _pending.Count;
                if (body + 4 + p.Datagram.Length > SpedAttributes.MaxStunBody) { Counters.TooLarge++; continue; }
                w.Add(SpedAttributes.DtlsInStun, p.Datagram);
                p.Carried++;
                Counters.DatagramsSent++;
                return p.Crc;
            }
            return null;
        }
        // Confirmed and nothing to send: an empty data attribute says we still take part (Chromium does the same).
        if (State == SpedState.Confirmed && body + 4 <= SpedAttributes.MaxStunBody) w.AddEmpty(SpedAttributes.DtlsInStun, 0);
        return null;
    }

    /// <summary>
    /// An authenticated Binding request, or the success response to a request of ours that carried SPED attributes
    /// (<paramref name="requestCrc"/>: the CRC-32 of the datagram that request carried, which a response with an ACK
    /// acknowledges implicitly). Malformed attributes are dropped and counted.
    /// </summary>
    internal void OnMessage(in StunMessage message, uint? requestCrc)
    {
        if (!IsActive) return;
        var hasData = message.TryGetAttribute(SpedAttributes.DtlsInStun, out var data);
        var hasAck = message.TryGetAttribute(SpedAttributes.DtlsInStunAck, out var ackValue);
        Span<uint> acks = stackalloc uint[SpedAttributes.MaxAcks + 1];
        var ackCount = 0;
        if (hasAck && !SpedAttributes.TryReadAck(ackValue, acks[..SpedAttributes.MaxAcks], out ackCount))
        {
            Counters.MalformedAcks++;
            hasAck = false;
        }
        if (hasAck && requestCrc is { } implicitAck) acks[ackCount++] = implicitAck;

        // A peer that answers or checks without either attribute while we try lacks SPED.
        if (!hasData && !hasAck)
        {
            if (State == SpedState.Tentative) TurnOff();
            // The peer completed and stopped carrying: so do we.
            else if (State == SpedState.Pending) CompleteNow();
            return;
        }
        if (State == SpedState.Tentative) State = SpedState.Confirmed;
        if (hasAck)
        {
            Counters.AcksReceived++;
            for (var i = 0; i < ackCount; i++)
            {
                var acked = acks[i];
                Counters.DatagramsAcknowledged += _pending.RemoveAll(p => p.Crc == acked);
            }
            if (_pending.Count == 0) _next = 0;
            else _next %= _pending.Count;
        }
        // The answer to our last flight carries only an acknowledgement: done.
        if (State == SpedState.Pending && !hasData && hasAck && _pending.Count == 0)
        {
            CompleteNow();
            return;
        }
        if (!hasData || data.IsEmpty) return;
        if (!SpedAttributes.LooksLikeDtls(data)) { Counters.NotDtls++; return; }
        Counters.DatagramsReceived++;
        ReportDtlsDatagram(data);
        DatagramReceived?.Invoke(data);
    }
}
