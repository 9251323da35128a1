using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Jsep;

namespace Transport.Streaming.WebRtc;

// SPED (draft-hancke-webrtc-sped): the DTLS handshake carried in the ICE checks. The DTLS client starts as soon as the
// descriptions are exchanged, before any check, and its ClientHello goes in the first check; the server starts on the
// ClientHello a check brought and answers in the Binding response. Our flights wait in the SpedController (each check
// and answer carries one datagram, in turn) and DTLS's own retransmission timer is paused meanwhile: ICE's pacing
// resends them. Once ICE has a pair to send on, the waiting flight also goes the normal path and DTLS's timer resumes
// (RTT-based); a peer that lacks SPED or stops carrying it turns it off and DTLS goes on the normal path alone.
public sealed partial class PeerConnectionCore
{
    private SpedController? _sped;
    private IReadOnlyList<string> _spedIceOptions = [];
    private readonly List<byte[]> _spedFlight = new();
    // Datagrams to send the normal path (the flight SPED carries, once ICE can send data), bounded.
    private readonly Queue<byte[]> _spedDirect = new();
    private const int MaxSpedDirect = 16;
    // DTLS datagrams a check carried before DTLS could start (the answer with the fingerprint is still on its way).
    private readonly List<byte[]> _spedEarly = new();
    private const int MaxSpedEarly = 4;
    private bool _spedFlushed, _spedEnded;
    private const int LitePeerExtraRequests = 3;

    /// <summary>SPED's state and counters when it was offered or answered (null: not in use on this connection).</summary>
    public SpedController? Sped => _sped;

    /// <summary>Whether SPED carried the DTLS handshake (our side completed while the checks carried it).</summary>
    public bool DtlsCompletedBySped => _sped is { CompletedBySped: true };

    // Before our first description: the ice-options to write, and the controller, so the peer's checks are answered
    // with SPED attributes even before its answer reaches us.
    private void PrepareSped(RemoteDescription? offer)
    {
        if (!_options.Sped) return;
        if (offer is null) _spedIceOptions = SpedAttributes.IceOptions;
        else
        {
            // Answer with the spellings the offer used (each names the same mechanism).
            var offered = offer.IceOptions.Where(SpedAttributes.IsIceOption).Distinct(StringComparer.Ordinal).ToList();
            if (offered.Count == 0) return;
            _spedIceOptions = offered;
        }
        _sped = new SpedController { DatagramReceived = OnSpedDatagram };
        Ice.Sped = _sped;
    }

    // The initial exchange is complete: SPED is on when both descriptions carry it. A DTLS client starts now, so its
    // first flight rides on the first check.
    private void StartSped(RemoteDescription remote, TimeSpan now)
    {
        if (_sped is null) return;
        if (!remote.IceOptions.Any(SpedAttributes.IsIceOption))
        {
            _sped.TurnOff();
            return;
        }
        // An ICE-lite peer answers only: a few extra requests give its first flight responses to ride in.
        _sped.ExtraRequestsForLitePeer = remote.Ice.Lite ? LitePeerExtraRequests : 0;
        if (_sped.IsActive && _dtlsClient == true && _dtls is null && !_closing) StartDtls(true, now);
        FeedEarlySped();
    }

    private void OnSpedDatagram(ReadOnlySpan<byte> datagram)
    {
        if (_closing) return;
        if (_dtls is null)
        {
            // Not before the descriptions say who the server is and give the peer's fingerprint.
            if (_remote is null || _dtlsClient is null || _dtlsClient == true)
            {
                if (_spedEarly.Count < MaxSpedEarly) _spedEarly.Add(datagram.ToArray());
                else DroppedDatagrams++;
                return;
            }
            StartDtls(false, _now, replayEarly: false);
        }
        _dtls!.HandleDatagram(datagram, _now);
        CaptureSpedFlight();
    }

    private void FeedEarlySped()
    {
        if (_spedEarly.Count == 0) return;
        var early = _spedEarly.ToArray();
        _spedEarly.Clear();
        foreach (var d in early) OnSpedDatagram(d);
    }

    // Everything DTLS queued after one input is a flight: SPED carries it; once ICE can send, it goes directly too.
    private void CaptureSpedFlight()
    {
        if (_sped is not { IsActive: true } sped || _dtls is null || !_dtls.HasTransmits) return;
        // Application data (SCTP) is never carried: only what the handshake wrote before SCTP started.
        if (_sctp is not null) return;
        _spedFlight.Clear();
        _dtls.TakeTransmits(_spedFlight);
        sped.CaptureFlight(_spedFlight);
        if (Ice.CanSendData || !sped.IsActive) EnqueueSpedDirect(_spedFlight);
    }

    private void EnqueueSpedDirect(IEnumerable<byte[]> datagrams)
    {
        foreach (var d in datagrams)
            if (_spedDirect.Count < MaxSpedDirect) _spedDirect.Enqueue(d);
            else DroppedDatagrams++;
    }

    // A DTLS datagram that came the normal path: acknowledged in our next checks, and our reply is a flight.
    private void SpedAfterDirectDtls(ReadOnlySpan<byte> datagram)
    {
        if (_sped is not { IsActive: true } sped) return;
        // SPED stays active until the peer's next check without its attributes (seconds after the handshake): a CRC-32 of
        // every data channel datagram until then cost about 3 % of a bulk transfer's CPU. Application data is never a
        // datagram of a handshake flight, which is all SPED carries and acknowledges.
        if (!IsApplicationData(datagram)) sped.ReportDtlsDatagram(datagram);
        CaptureSpedFlight();
    }

    // A datagram whose first record is application data: DTLS 1.2's content type 23, or a DTLS 1.3 unified header
    // (RFC 9147 section 4: 001CSLEE) of epoch 3, the first application epoch (the header carries the epoch's low two
    // bits; the handshake's flights are in epochs 0 and 2).
    internal static bool IsApplicationData(ReadOnlySpan<byte> datagram) =>
        datagram.Length > 0 && (datagram[0] == 23 || (datagram[0] & 0xE0) == 0x20 && (datagram[0] & 0x03) == 3);

    private void SpedAfterInput(TimeSpan now)
    {
        if (_sped is null || _spedEnded) return;
        if (_sped.IsActive)
        {
            FeedEarlySped();
            if (_spedFlushed || !Ice.CanSendData) return;
            // ICE can send: what SPED carries goes the normal path too, and DTLS's own timer takes over the resends,
            // scaled by the round trip of the check that validated the pair (the selected pair's comes later): a lost
            // client Finished goes again after 2 RTT, not after the 1 s of an unknown round trip, nor ICE's 500 ms.
            _spedFlushed = true;
            EnqueueSpedDirect(_sped.PendingDatagrams);
            _dtls?.ResumeRetransmission(now, Ice.RoundTripTime ?? _validPairRtt);
            return;
        }
        // Complete, or off (the peer lacks SPED or stopped carrying it): the normal path alone from now on.
        _spedEnded = true;
        if (_sped.State == SpedState.Off && !_spedFlushed) EnqueueSpedDirect(_sped.PendingDatagrams);
        _dtls?.ResumeRetransmission(now, Ice.RoundTripTime ?? _validPairRtt);
    }

    private bool TryPollSpedDirect(Span<byte> destination, out int written)
    {
        written = 0;
        if (_spedDirect.Count == 0 || !Ice.CanSendData) return false;
        var d = _spedDirect.Dequeue();
        d.CopyTo(destination);
        written = d.Length;
        return true;
    }

    private string SpedMilestoneDetail() => _sped is null ? "" :
        $", SPED {_sped.State.ToString().ToLowerInvariant()} ({_sped.Counters.DatagramsReceived} datagrams received in STUN, {_sped.Counters.DatagramsSent} sent)";
}
