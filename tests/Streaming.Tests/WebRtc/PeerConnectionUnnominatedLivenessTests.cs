using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Ice.Stun;
using Transport.Sctp;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// Liveness before nomination at the peer-connection level, on virtual time: the remote (the offerer, controlling) never sends
/// USE-CANDIDATE, as aiortc does, so our answerer never selects a pair while DTLS and SCTP run on the first valid one
/// (RFC 8445 section 12.1). Its health must show that pair and its consent age, and a remote that then goes silent
/// must be reported Disconnected and Failed at the configured times instead of staying Connected until SCTP gives up.
/// </summary>
public sealed class PeerConnectionUnnominatedLivenessTests
{
    private static readonly DtlsCertificate Certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));

    private static TimeSpan S(double s) => TimeSpan.FromSeconds(s);

    private sealed class Peer(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote) : CorePeer(core, local, remote)
    {
        public IEnumerable<ConnectionStateChanged> States => Events.OfType<ConnectionStateChanged>();
    }

    /// <summary>
    /// A offers and controls (keepalive after 0.5 s without sending) but its USE-CANDIDATE never arrives; B answers with the given ICE timers.
    /// </summary>
    private static (TwoPeerDriver Driver, Peer A, Peer B) NeverNominated(IceAgentOptions b)
    {
        var endA = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var endB = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        var a = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = Certificate,
            Ice = new IceAgentOptions { Role = IceRole.Controlling, Random = new Random(1), KeepaliveInterval = S(0.5) }
        });
        var core = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = Certificate,
            Ice = b with { Role = IceRole.Controlled, Random = new Random(2) }
        });
        a.AddHostCandidate(endA);
        core.AddHostCandidate(endB);
        var offer = SessionDescription.Parse(a.CreateOffer(TimeSpan.Zero).ToString());
        a.SetRemoteDescription(SessionDescription.Parse(core.CreateAnswer(offer, TimeSpan.Zero).ToString()), TimeSpan.Zero);
        a.CreateDataChannel("x", null, TimeSpan.Zero);
        var link = new VirtualLink(1, LinkConditions.Clean(TimeSpan.FromMilliseconds(5)), LinkConditions.Clean(TimeSpan.FromMilliseconds(5)));
        link.AddFilter(LinkEnd.A, m => StunMessage.TryRead(m.Span, out var s) && s.HasUseCandidate, _ => FilterAction.Drop);
        var pa = new Peer(a, endA, endB);
        var pb = new Peer(core, endB, endA);
        var driver = new TwoPeerDriver(pa, pb, link);
        Assert.True(driver.RunUntil(() => pb.Events.OfType<DataChannelOpened>().Any() && pa.Events.OfType<DataChannelOpened>().Any(), S(5)));
        return (driver, pa, pb);
    }

    [Fact]
    public void AnUnnominatedPeerThatGoesSilentIsDisconnectedAndFailedAtTheConfiguredTimesAndHealthShowsThePair()
    {
        var (d, _, b) = NeverNominated(new IceAgentOptions { DisconnectedTimeout = S(2), FailedTimeout = S(5) });
        d.RunFor(S(4.5) - d.Now);
        Assert.Null(b.Core.Ice.SelectedLocal);   // never nominated
        var health = b.Core.GetHealth(d.Now);
        Assert.Equal(ConnectionState.Connected, health.State);
        Assert.Equal(IceConnectionState.Connected, health.IceState);
        Assert.Equal("10.0.0.2:2000 -> 10.0.0.1:1000", health.SelectedCandidatePair);
        Assert.False(health.PairNominated);
        Assert.NotNull(health.ConsentAge);
        Assert.InRange(health.ConsentAge!.Value, TimeSpan.Zero, S(6));
        Assert.DoesNotContain(b.States, s => s.State == ConnectionState.Disconnected);   // A's keepalives kept it alive

        d.Link.Cut = true;
        var last = b.Core.Ice.LastReceivedAt!.Value;
        Assert.True(d.RunUntil(() => b.Core.State == ConnectionState.Failed, S(20)));
        var disconnected = b.States.Single(s => s.State == ConnectionState.Disconnected);
        var failed = b.States.Single(s => s.State == ConnectionState.Failed);
        Assert.Equal(last + S(2), disconnected.At);
        Assert.Equal(disconnected.At + S(5), failed.At);
        Assert.Equal(ConnectionLayer.Ice, failed.Reason.Layer);
        Assert.Equal(nameof(IceStateReason.FailedTimeout), failed.Reason.Detail);
    }

    [Fact]
    public void TheRetransmissionFractionOfAPeerThatVanishedStaysWithinZeroAndOne()
    {
        // The field's 1.7555: retransmitted chunks were divided by packets, and one packet carries many retransmitted
        // chunks after a T3-rtx timeout. Fifty small messages to a vanished peer, three T3 rounds.
        var (d, _, b) = NeverNominated(new IceAgentOptions { DisconnectedTimeout = S(2), FailedTimeout = S(30) });
        var channel = b.Events.OfType<DataChannelOpened>().Single().Channel;
        d.Link.Cut = true;
        for (var i = 0; i < 50; i++) channel.Send([1, 2, 3, (byte)i], true, d.Now);
        b.Core.AfterInput(d.Now);
        d.RunFor(S(12));
        var h = b.Core.GetHealth(d.Now);
        Assert.True(h.SctpRetransmissions > h.SctpPacketsSent, $"{h.SctpRetransmissions} chunks retransmitted in {h.SctpPacketsSent} packets");
        Assert.Equal((double)h.SctpRetransmissions / h.SctpDataChunksSent, h.SctpRetransmissionFraction);
        Assert.InRange(h.SctpRetransmissionFraction!.Value, 0.5, 1.0);
    }
}
