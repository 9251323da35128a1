using Transport.Ice.Stun;

namespace Transport.Ice;

// SPED (draft-hancke-webrtc-sped): DTLS records in the Binding requests and responses of the checks.
public sealed partial class IceAgent
{
    /// <summary>
    /// SPED, when the owner uses it (the ice-option was negotiated): every Binding request and success response we
    /// write carries its attributes while it is active, and what the peer carries in authenticated requests and in
    /// the responses to our SPED requests is handed to it. Null (the default): no SPED attribute is written or read.
    /// </summary>
    public SpedController? Sped { get; set; }

    private uint? WriteSped(ref StunMessageWriter w, out bool wroteAny, bool carryData = true)
    {
        wroteAny = false;
        return Sped is { IsActive: true } sped ? sped.Write(ref w, out wroteAny, carryData) : null;
    }

    private void ReadSped(in StunMessage message, uint? requestCrc)
    {
        if (Sped is { IsActive: true } sped) sped.OnMessage(message, requestCrc);
    }

    private HashSet<IcePair>? _spedRechecked;

    // RFC 8445 section 7.3.1.4 asks for a new check when the peer checks a pair whose own check of ours is still in
    // progress; the agent normally lets the check in flight be (it will be retransmitted). While SPED carries the
    // handshake, a lost check of ours would leave our flight, and every datagram of the pair, waiting for that
    // retransmission (500 ms): so then, once per pair, a new check goes at once (it carries the flight too).
    private void SpedRecheck(IcePair pair, TimeSpan now)
    {
        if (Sped is not { IsActive: true } || CanSendData || !Mode.SendsChecks || pair.State != IceCandidatePairState.InProgress) return;
        _spedRechecked ??= new HashSet<IcePair>();
        if (!_spedRechecked.Add(pair)) return;
        SendCheck(pair, now);
    }

    // The answer to a SPED request of ours carried no DTLS datagram and the peer has sent none: its DTLS had not started
    // when it answered (our check reached it before our answer did, so it does not know its role yet). Its first flight
    // then waits for its own next message; a peer that carries one datagram a message (Chromium) brings the second half
    // of a two-datagram ClientHello only with its next check (about 50 ms) or once our answer to its first check made
    // its pair writable (one round trip). A request sent now reaches it after it may have started, and its answer carries
    // what it has. At most SpedController.MaxProbes, one a round trip; answered like consent requests.
    private void SendSpedProbe(IceGeneration g, IcePair pair, TimeSpan now)
    {
        if (Sped is not { IsActive: true } sped || g.RemoteKey is null || g.OutgoingUsername is null || !_transactions.HasRoom) return;
        if (!sped.TakeProbe()) return;
        var request = WriteCheck(g, pair, useCandidate: false, out var length, out var spedSent, out var spedCrc);
        var t = new StunClientTransaction(request.AsSpan(0, length), Options.CheckRetransmission);
        _transactions.TryStart(new IceTransaction(IceTransactionKind.Consent, t, pair.LocalEndPoint, pair.RemoteEndPoint)
        { Pair = pair, SpedSent = spedSent, SpedCrc = spedCrc }, now);
        DrainTransactions();
    }

    // A flight larger than one Binding message (a post-quantum ClientHello takes two datagrams, a DTLS 1.3 server
    // flight two or three): before any pair can carry data, the rest goes at once in extra Binding requests on the pair
    // just checked, or on the pair whose request or response brought the message that completed the peer's flight (our
    // answer to it carried the first datagram of our reply), not one per Ta. They are answered like consent requests
    // (their responses carry SPED attributes too; their loss or timeout changes nothing).
    private void SendSpedCarriers(IceGeneration g, IcePair pair, TimeSpan now)
    {
        if (Sped is not { IsActive: true } sped || CanSendData || (sped.Uncarried == 0 && sped.ExtraRequestsForLitePeer == 0)) return;
        if (g.RemoteKey is null || g.OutgoingUsername is null) return;
        for (var i = 0; sped.CarriesFlightAtOnce && i < SpedController.MaxPendingDatagrams && sped.Uncarried > 0; i++)
        {
            var request = WriteCheck(g, pair, useCandidate: false, out var length, out var spedSent, out var spedCrc);
            var t = new StunClientTransaction(request.AsSpan(0, length), Options.CheckRetransmission);
            _transactions.TryStart(new IceTransaction(IceTransactionKind.Consent, t, pair.LocalEndPoint, pair.RemoteEndPoint)
            { Pair = pair, SpedSent = spedSent, SpedCrc = spedCrc }, now);
        }
        // A lite peer answers only: requests that carry just our acknowledgement give its flight responses to ride in.
        for (var n = sped.TakeExtraRequests(); n > 0; n--)
        {
            var request = WriteCheck(g, pair, useCandidate: false, out var length, out var spedSent, out var spedCrc, spedData: false);
            var t = new StunClientTransaction(request.AsSpan(0, length), Options.CheckRetransmission);
            _transactions.TryStart(new IceTransaction(IceTransactionKind.Consent, t, pair.LocalEndPoint, pair.RemoteEndPoint)
            { Pair = pair, SpedSent = spedSent, SpedCrc = spedCrc }, now);
        }
        DrainTransactions();
    }
}
