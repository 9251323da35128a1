using Transport.Ice;

namespace Transport.Streaming.WebRtc;

/// <summary>
/// SPED's state on the peer connection's side (draft-hancke-webrtc-sped: the DTLS handshake carried in the ICE
/// checks): the controller the ICE agent carries our flights with, the ice-options our descriptions write, our current
/// DTLS flight, the datagrams that go the normal path too (bounded: <see cref="MaxDirect"/>), the DTLS datagrams a
/// check brought before DTLS could start (bounded: <see cref="MaxEarly"/>), and two one-way steps: flushed (ICE could
/// send: the waiting flight went the normal path too, DTLS's own retransmission timer took over) and ended (complete
/// or off: the normal path alone). It sees neither DTLS nor ICE: the peer connection starts DTLS, hands it the
/// datagrams and tells this type what ICE can do. What does not fit a bound is refused here and counted by the caller.
/// </summary>
internal sealed class SpedCarriage
{
    /// <summary>Datagrams waiting to go the normal path.</summary>
    public const int MaxDirect = 16;

    /// <summary>DTLS datagrams a check carried before DTLS could start (the answer with the fingerprint is on its way).</summary>
    public const int MaxEarly = 4;

    /// <summary>Extra Binding requests towards an ICE-lite peer, which only answers: its first flight rides in their responses.</summary>
    public const int LitePeerExtraRequests = 3;

    private readonly List<byte[]> _flight = new();
    private readonly Queue<byte[]> _direct = new();
    private readonly List<byte[]> _early = new();
    private bool _flushed;

    private SpedCarriage(SpedController controller, IReadOnlyList<string> iceOptions)
    {
        Controller = controller;
        IceOptions = iceOptions;
    }

    /// <summary>
    /// Before our first description: the carriage for our offer (<paramref name="offeredIceOptions"/> null: every spelling
    /// of the ice-option), or for our answer to an offer that carries one (its spellings: each names the same mechanism).
    /// Null when the offer lacks it. The controller exists now, so the peer's checks are answered with SPED attributes
    /// even before its answer reaches us.
    /// </summary>
    public static SpedCarriage? Prepare(IReadOnlyList<string>? offeredIceOptions, SpedDatagramHandler datagramReceived)
    {
        IReadOnlyList<string> iceOptions = SpedAttributes.IceOptions;
        if (offeredIceOptions is not null)
        {
            var offered = offeredIceOptions.Where(SpedAttributes.IsIceOption).Distinct(StringComparer.Ordinal).ToList();
            if (offered.Count == 0) return null;
            iceOptions = offered;
        }
        return new SpedCarriage(new SpedController { DatagramReceived = datagramReceived }, iceOptions);
    }

    /// <summary>The controller the ICE agent carries our flights with (<see cref="IceAgent.Sped"/>).</summary>
    public SpedController Controller { get; }

    /// <summary>The ice-options our descriptions carry.</summary>
    public IReadOnlyList<string> IceOptions { get; }

    /// <summary>Whether the checks carry the handshake now.</summary>
    public bool IsActive => Controller.IsActive;

    /// <summary>Complete or off, and the normal path alone from then on: nothing more to do after an input.</summary>
    public bool Ended { get; private set; }

    /// <summary>Datagrams waiting to go the normal path.</summary>
    public int DirectCount => _direct.Count;

    /// <summary>DTLS datagrams waiting for DTLS to start.</summary>
    public int EarlyCount => _early.Count;

    /// <summary>
    /// The initial exchange is complete: SPED stays on when the peer's description carries it too (and a few extra
    /// requests go to an ICE-lite peer), else it turns off. False when it turned off (or was never prepared).
    /// </summary>
    public bool Start(IReadOnlyList<string> remoteIceOptions, bool remoteLite)
    {
        if (!remoteIceOptions.Any(SpedAttributes.IsIceOption))
        {
            Controller.TurnOff();
            return false;
        }
        Controller.ExtraRequestsForLitePeer = remoteLite ? LitePeerExtraRequests : 0;
        return true;
    }

    /// <summary>Keeps a DTLS datagram a check carried before DTLS could start; false (refused) when <see cref="MaxEarly"/> wait already.</summary>
    public bool KeepEarly(ReadOnlySpan<byte> datagram)
    {
        if (_early.Count >= MaxEarly) return false;
        _early.Add(datagram.ToArray());
        return true;
    }

    /// <summary>Takes the datagrams kept by <see cref="KeepEarly"/> (null when none), to be fed to DTLS in their order.</summary>
    public byte[][]? TakeEarly()
    {
        if (_early.Count == 0) return null;
        var early = _early.ToArray();
        _early.Clear();
        return early;
    }

    /// <summary>The list a new flight is taken into (<c>DtlsConnection.TakeTransmits</c>), emptied; then <see cref="CarryFlight"/>.</summary>
    public List<byte[]> NewFlight()
    {
        _flight.Clear();
        return _flight;
    }

    /// <summary>
    /// Everything DTLS queued after one input is a flight: the checks carry it; when ICE can already send data (or SPED
    /// is off) it goes the normal path too. Returns the datagrams refused because <see cref="MaxDirect"/> wait already.
    /// </summary>
    public int CarryFlight(bool iceCanSend)
    {
        Controller.CaptureFlight(_flight);
        return iceCanSend || !Controller.IsActive ? EnqueueDirect(_flight) : 0;
    }

    /// <summary>
    /// A DTLS datagram that came the normal path is acknowledged in our next checks, unless it is application data: SPED
    /// stays active until the peer's next check without its attributes (seconds after the handshake), and a CRC-32 of
    /// every data channel datagram until then cost about 3 % of a bulk transfer's CPU; application data is never part of
    /// a handshake flight, which is all SPED carries and acknowledges.
    /// </summary>
    public void OnDirectDatagram(ReadOnlySpan<byte> datagram)
    {
        if (IsActive && !IsApplicationData(datagram)) Controller.ReportDtlsDatagram(datagram);
    }

    /// <summary>
    /// After an input (the early datagrams already fed when <paramref name="wasActive"/>). While SPED is active: the
    /// first time ICE can send, what the checks carry goes the normal path too (flushed). Once complete or off: ended
    /// (off before a flush: the waiting flight goes the normal path). True when DTLS's own retransmission timer should
    /// take over the resends now; <paramref name="refused"/> counts datagrams over <see cref="MaxDirect"/>.
    /// </summary>
    public bool AfterInput(bool wasActive, bool iceCanSend, out int refused)
    {
        refused = 0;
        if (Ended) return false;
        if (wasActive)
        {
            if (_flushed || !iceCanSend) return false;
            _flushed = true;
            refused = EnqueueDirect(Controller.PendingDatagrams);
            return true;
        }
        Ended = true;
        if (Controller.State == SpedState.Off && !_flushed) refused = EnqueueDirect(Controller.PendingDatagrams);
        return true;
    }

    /// <summary>The next datagram for the normal path, copied into <paramref name="destination"/>.</summary>
    public bool TryPollDirect(Span<byte> destination, out int written)
    {
        written = 0;
        if (!_direct.TryDequeue(out var d)) return false;
        d.CopyTo(destination);
        written = d.Length;
        return true;
    }

    private int EnqueueDirect(IReadOnlyList<byte[]> datagrams)
    {
        var refused = 0;
        foreach (var d in datagrams)
            if (_direct.Count < MaxDirect) _direct.Enqueue(d);
            else refused++;
        return refused;
    }

    /// <summary>SPED's part of the DtlsConnected milestone's detail.</summary>
    public string MilestoneDetail =>
        $", SPED {Controller.State.ToString().ToLowerInvariant()} ({Controller.Counters.DatagramsReceived} datagrams received in STUN, " +
        $"{Controller.Counters.DatagramsSent} sent)";

    /// <summary>
    /// A datagram whose first record is application data: DTLS 1.2's content type 23, or a DTLS 1.3 unified header
    /// (RFC 9147 section 4: 001CSLEE) of epoch 3, the first application epoch (the header carries the epoch's low two
    /// bits; the handshake's flights are in epochs 0 and 2).
    /// </summary>
    internal static bool IsApplicationData(ReadOnlySpan<byte> datagram) =>
        datagram.Length > 0 && (datagram[0] == 23 || (datagram[0] & 0xE0) == 0x20 && (datagram[0] & 0x03) == 3);
}
