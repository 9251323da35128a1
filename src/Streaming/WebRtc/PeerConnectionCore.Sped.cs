using Transport.Ice;
using Transport.Streaming.Jsep;

namespace Transport.Streaming.WebRtc;

// SPED (draft-hancke-webrtc-sped): the DTLS handshake carried in the ICE checks. The DTLS client starts as soon as the
// descriptions are exchanged, before any check, and its ClientHello goes in the first check; the server starts on the
// ClientHello a check brought and answers in the Binding response. Our flights wait in the SpedController (each check
// and answer carries one datagram, in turn) and DTLS's own retransmission timer is paused meanwhile: ICE's pacing
// resends them. Once ICE has a pair to send on, the waiting flight also goes the normal path and DTLS's timer resumes
// (RTT-based); a peer that lacks SPED or stops carrying it turns it off and DTLS goes on the normal path alone.
// The carriage's state (flight, queues, steps) is SpedCarriage's; the core starts DTLS and feeds it.
public sealed partial class PeerConnectionCore
{
    // Null unless SPED was offered or answered (PeerConnectionOptions.Sped).
    private SpedCarriage? _sped;

    /// <summary>SPED's state and counters when it was offered or answered (null: not in use on this connection).</summary>
    public SpedController? Sped => _sped?.Controller;

    /// <summary>Whether SPED carried the DTLS handshake (our side completed while the checks carried it).</summary>
    public bool DtlsCompletedBySped => _sped?.Controller is { CompletedBySped: true };

    // Before our first description: the ice-options to write, and the controller, so the peer's checks are answered
    // with SPED attributes even before its answer reaches us. An offer without SPED leaves what was prepared before
    // (an initial offer of ours rolled back) as it was.
    private void PrepareSped(RemoteDescription? offer)
    {
        if (!_options.Sped || SpedCarriage.Prepare(offer?.IceOptions, OnSpedDatagram) is not { } carriage) return;
        _sped = carriage;
        Ice.Sped = carriage.Controller;
    }

    // The initial exchange is complete: SPED is on when both descriptions carry it. A DTLS client starts now, so its
    // first flight rides on the first check.
    private void StartSped(RemoteDescription remote, TimeSpan now)
    {
        if (_sped is null || !_sped.Start(remote.IceOptions, remote.Ice.Lite)) return;
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
                if (_sped?.KeepEarly(datagram) != true) _spedDropped++;
                return;
            }
            StartDtls(false, _now, replayEarly: false);
        }
        _dtls!.HandleDatagram(datagram, _now);
        CaptureSpedFlight();
    }

    private void FeedEarlySped()
    {
        if (_sped?.TakeEarly() is not { } early) return;
        foreach (var d in early) OnSpedDatagram(d);
    }

    // Everything DTLS queued after one input is a flight: SPED carries it; once ICE can send, it goes directly too.
    private void CaptureSpedFlight()
    {
        if (_sped is not { IsActive: true } sped || _dtls is null || !_dtls.HasTransmits) return;
        // Application data (SCTP) is never carried: only what the handshake wrote before SCTP started.
        if (_sctp is not null) return;
        _dtls.TakeTransmits(sped.NewFlight());
        _spedDropped += sped.CarryFlight(Ice.CanSendData);
    }

    // A DTLS datagram that came the normal path: acknowledged in our next checks, and our reply is a flight.
    private void SpedAfterDirectDtls(ReadOnlySpan<byte> datagram)
    {
        if (_sped is not { IsActive: true } sped) return;
        sped.OnDirectDatagram(datagram);
        CaptureSpedFlight();
    }

    private void SpedAfterInput(TimeSpan now)
    {
        if (_sped is not { Ended: false } sped) return;
        var active = sped.IsActive;
        if (active) FeedEarlySped();
        // When ICE can send (or SPED completed or is off), DTLS's own timer takes over the resends, scaled by the round
        // trip of the check that validated the pair (the selected pair's comes later): a lost client Finished goes again
        // after 2 RTT, not after the 1 s of an unknown round trip, nor ICE's 500 ms.
        var takeOver = sped.AfterInput(active, Ice.CanSendData, out var refused);
        _spedDropped += refused;
        if (takeOver) _dtls?.ResumeRetransmission(now, Ice.RoundTripTime ?? _validPairRtt);
    }

    private bool TryPollSpedDirect(Span<byte> destination, out int written)
    {
        written = 0;
        return _sped is { DirectCount: > 0 } sped && Ice.CanSendData && sped.TryPollDirect(destination, out written);
    }

    // SPED's datagrams over its bounds (SpedCarriage.MaxDirect, MaxEarly): part of DroppedDatagrams.
    private long _spedDropped;

    private string SpedMilestoneDetail() => _sped?.MilestoneDetail ?? "";
}
