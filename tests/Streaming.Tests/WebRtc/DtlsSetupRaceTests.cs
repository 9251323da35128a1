using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// The DTLS set-up race, on virtual time: the offerer (a browser) answers our ICE checks before our answer
/// reaches it (it needs only its own password), but its DTLS layer is set up only once it has the answer and drops
/// any DTLS datagram that comes earlier. The link here drops such datagrams the same way.
/// </summary>
public sealed class DtlsSetupRaceTests
{
    private static readonly DtlsCertificate Certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));
    private static readonly TimeSpan OneWay = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan AnswerDelay = TimeSpan.FromMilliseconds(200);

    private sealed class Peer(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote) : CorePeer(core, local, remote)
    {
        public TimeSpan? OpenedAt => Events.OfType<DataChannelOpened>().FirstOrDefault()?.At;
    }

    // A (the offerer, like a browser) gets B's answer AnswerDelay after B made it; until then every DTLS datagram
    // from B to A is dropped, as a browser without the answer does. B is ours with the given options.
    private static (TwoPeerDriver Driver, Peer A, Peer B, Func<int> Dropped) Race(PeerConnectionOptions answerer)
    {
        var endA = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var endB = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        // Without SNAP and SPED (a browser without their field trials): the timings below include the SCTP handshake
        // (SPED, which carries the handshake in the checks instead, has SpedSetupTests).
        var a = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = Certificate,
            Snap = false,
            Sped = false,
            Ice = new IceAgentOptions { Role = IceRole.Controlling }
        });
        var b = new PeerConnectionCore(answerer with
        {
            Certificate = Certificate,
            Snap = false,
            Sped = false,
            Ice = new IceAgentOptions { Role = IceRole.Controlled }
        });
        a.AddHostCandidate(endA);
        b.AddHostCandidate(endB);
        var offer = SessionDescription.Parse(a.CreateOffer(TimeSpan.Zero).ToString());
        var answer = SessionDescription.Parse(b.CreateAnswer(offer, TimeSpan.Zero).ToString());
        a.CreateDataChannel("x", null, TimeSpan.Zero);
        var pa = new Peer(a, endA, endB);
        var pb = new Peer(b, endB, endA);
        var link = new VirtualLink(1, LinkConditions.Clean(OneWay), LinkConditions.Clean(OneWay));
        var answered = false;
        var dropped = 0;
        link.AddFilter(LinkEnd.B, d => !answered && d.Span[0] is >= 20 and <= 63, _ => { dropped++; return FilterAction.Drop; });
        var driver = new TwoPeerDriver(pa, pb, link);
        driver.RunFor(AnswerDelay);
        a.SetRemoteDescription(answer, driver.Now);
        answered = true;
        pa.Drain();
        return (driver, pa, pb, () => dropped);
    }

    [Fact]
    public void OurPassiveAnswerLetsTheOffererStartDtlsSoNothingIsLostOrRetransmitted()
    {
        var (d, a, b, dropped) = Race(new PeerConnectionOptions());
        Assert.True(d.RunUntil(() => a.OpenedAt is not null, TimeSpan.FromSeconds(10)));
        Assert.Equal(0, dropped());
        Assert.Equal(false, b.Core.IsDtlsClient);
        Assert.Equal(0, a.Core.Dtls!.Counters.Retransmissions + b.Core.Dtls!.Counters.Retransmissions);
        // After the answer: A's check and B's reply (2), DTLS 1.3 (2: A, the client, is connected when B's flight
        // arrives and sends its Finished with the SCTP INIT), SCTP with COOKIE-ACK (4) one-way trips. (DTLS 1.2: 4.)
        Assert.Equal(AnswerDelay + 8 * OneWay, a.OpenedAt);
    }

    [Fact]
    public void WithAnActiveAnswerTheFlightLostBeforeTheAnswerIsResentWhenTheOffererFirstChecks()
    {
        var (d, a, b, dropped) = Race(new PeerConnectionOptions { DtlsAnswerRole = DtlsRole.Client });
        Assert.True(d.RunUntil(() => a.OpenedAt is not null, TimeSpan.FromSeconds(10)));
        Assert.Equal(true, b.Core.IsDtlsClient);
        Assert.True(dropped() >= 1, "B's first ClientHello left before A had the answer and was dropped");
        Assert.Equal(1, b.Core.Dtls!.Counters.PeerReadyRetransmissions);
        // A checks at once with the answer (200 ms); its check reaches B at 210 ms and B resends its ClientHello:
        // DTLS 1.3 (2, then B's Finished goes with its SCTP INIT) and SCTP (3, B is the SCTP client; A's side is up
        // when the COOKIE-ECHO arrives) one-way trips from there. B's first timer (2 x the 20 ms check RTT, floor
        // 50 ms) alone would resend only at 270 ms; the RFC 6347 1 s timer at 1020 ms.
        Assert.Equal(AnswerDelay + OneWay + 5 * OneWay, a.OpenedAt);
    }
}
