using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// How long set-up takes on virtual time, i.e. what the protocols themselves wait for: with RFC 8445 section 12.1
/// (data on a valid pair before nomination) DTLS and SCTP run right after the first checks, and only the round
/// trips remain; nomination (paced by Ta) completes in the background.
/// </summary>
public sealed class PeerConnectionSetupTests
{
    private static readonly DtlsCertificate Certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));

    private sealed class Peer(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote) : IVirtualPeer
    {
        public PeerConnectionCore Core { get; } = core;
        public List<PeerConnectionEvent> Events { get; } = new();
        public IceConnectionState? IceStateAtOpen { get; private set; }
        public void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now) { Core.HandleDatagram(datagram, local, remote, now); Drain(); }
        public void HandleTimeout(TimeSpan now) { Core.HandleTimeout(now); Drain(); }
        public bool TryPollTransmit(Span<byte> destination, out int written) => Core.TryPollTransmit(destination, out written, out _, out _);
        public TimeSpan? PollTimeout() => Core.PollTimeout();
        public void Drain()
        {
            while (Core.TryPollEvent(out var e))
            {
                Events.Add(e);
                if (e is DataChannelOpened) IceStateAtOpen ??= Core.Ice.State;
            }
        }
    }

    /// <summary>
    /// Two cores on a clean link of <paramref name="oneWay"/>; B has answered A's offer. A learns the answer after
    /// <paramref name="answerDelay"/> of virtual time (null: at once, before anything runs).
    /// </summary>
    private static (TwoPeerDriver Driver, Peer A, Peer B) Pair(bool sendBeforeNomination, TimeSpan oneWay, TimeSpan? answerDelay = null)
    {
        var endA = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var endB = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        var ice = new IceAgentOptions { SendBeforeNomination = sendBeforeNomination };
        // The four-way SCTP handshake path (SNAP and SPED off; SetupRoundTripTests and SpedSetupTests count what they save).
        var a = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = Certificate,
            Snap = false,
            Sped = false,
            Ice = ice with { Role = IceRole.Controlling }
        });
        var b = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = Certificate,
            Snap = false,
            Sped = false,
            Ice = ice with { Role = IceRole.Controlled }
        });
        a.AddHostCandidate(endA);
        b.AddHostCandidate(endB);
        var offer = SessionDescription.Parse(a.CreateOffer(TimeSpan.Zero).ToString());
        var answer = SessionDescription.Parse(b.CreateAnswer(offer, TimeSpan.Zero).ToString());
        if (answerDelay is null) a.SetRemoteDescription(answer, TimeSpan.Zero);
        a.CreateDataChannel("x", null, TimeSpan.Zero);
        var pa = new Peer(a, endA, endB);
        var pb = new Peer(b, endB, endA);
        var driver = new TwoPeerDriver(pa, pb, new VirtualLink(1, LinkConditions.Clean(oneWay), LinkConditions.Clean(oneWay)));
        if (answerDelay is { } delay)
        {
            driver.RunFor(delay);
            a.SetRemoteDescription(answer, driver.Now);
        }
        return (driver, pa, pb);
    }

    [Fact]
    public void TheChannelOpensTenOneWayTripsAfterTheAnswerWithoutWaitingForNomination()
    {
        var oneWay = TimeSpan.FromMilliseconds(0.1);
        var (d, a, b) = Pair(sendBeforeNomination: true, oneWay);
        Assert.True(d.RunUntil(() => a.Events.OfType<DataChannelOpened>().Any(), TimeSpan.FromSeconds(10)));
        // Check and answer (2), ClientHello, server flight (2: DTLS 1.3, the client's Finished goes with the INIT),
        // INIT, INIT-ACK, COOKIE-ECHO, COOKIE-ACK (4): B answered passive, so A (the channel's opener) is the DTLS and
        // SCTP client and its association is up when the COOKIE-ACK arrives. (DTLS 1.2 took 10 trips.)
        Assert.Equal(8 * oneWay, d.Now);
        // ICE is Connected on the valid pair in use (liveness runs on it); nomination is still pending (paced by Ta).
        Assert.Equal(IceConnectionState.Connected, a.IceStateAtOpen);
        Assert.Null(a.Core.Ice.SelectedLocal);
        Assert.Equal(ConnectionState.Connected, a.Core.State);

        // Nomination completes in the background and the connection stays up.
        Assert.True(d.RunUntil(() => a.Core.Ice.SelectedLocal is not null && b.Core.Ice.SelectedLocal is not null, TimeSpan.FromSeconds(2)));
        Assert.Equal(ConnectionState.Connected, b.Core.State);
    }

    [Fact]
    public void WithoutSendingBeforeNominationDtlsWaitsForTheSelectedPair()
    {
        var oneWay = TimeSpan.FromMilliseconds(0.1);
        var (d, a, _) = Pair(sendBeforeNomination: false, oneWay);
        Assert.True(d.RunUntil(() => a.Events.OfType<DataChannelOpened>().Any(), TimeSpan.FromSeconds(10)));
        Assert.True(d.Now >= TimeSpan.FromMilliseconds(50), $"opened at {d.Now}: before the nomination check Ta = 50 ms later");
        Assert.Equal(IceConnectionState.Connected, a.IceStateAtOpen);
    }

    [Fact]
    public void AnAnswerThatArrivesAfterTheAnswerersFirstDtlsFlightCostsNoRetransmission()
    {
        // The answerer gets the offer at once; its answer reaches the offerer 30 ms later (signaling is slower than
        // the network). Meanwhile the answerer's checks succeed and its ClientHello arrives before the offerer knows it.
        var (d, a, b) = Pair(sendBeforeNomination: true, TimeSpan.FromMilliseconds(1), answerDelay: TimeSpan.FromMilliseconds(30));
        Assert.True(d.RunUntil(() => a.Events.OfType<DataChannelOpened>().Any(), TimeSpan.FromSeconds(5)));
        Assert.True(d.Now < TimeSpan.FromMilliseconds(60), $"opened at {d.Now.TotalMilliseconds} ms: a DTLS flight was lost and retransmitted");
        Assert.Equal(0, a.Core.DroppedDatagrams);
        Assert.Equal(0, b.Core.DroppedDatagrams);
    }

    [Fact]
    public void AServerFlightReadyBeforeOurOwnCheckSucceededWaitsForThePairInsteadOfBeingLost()
    {
        // The answer reaches the offerer just before the answerer's ClientHello does: B's check reaches A at 1 ms,
        // A answers, B's pair is valid at 2 ms and its ClientHello reaches A at 3 ms; A's own check leaves at 2.5 ms
        // and succeeds only at 4.5 ms, so A's DTLS server answers while A has no valid pair to send on yet.
        var (d, a, b) = Pair(sendBeforeNomination: true, TimeSpan.FromMilliseconds(1), answerDelay: TimeSpan.FromMilliseconds(2.5));
        Assert.True(d.RunUntil(() => a.Events.OfType<DataChannelOpened>().Any(), TimeSpan.FromSeconds(5)));
        Assert.True(d.Now < TimeSpan.FromMilliseconds(30), $"opened at {d.Now.TotalMilliseconds} ms: a DTLS flight was lost and retransmitted");
        Assert.Equal(0, a.Core.DroppedDatagrams);
        Assert.Equal(0, b.Core.DroppedDatagrams);
    }
}
