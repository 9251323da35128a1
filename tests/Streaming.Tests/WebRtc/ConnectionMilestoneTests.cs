using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// The milestones a connection reports on its way up (<see cref="ConnectionMilestoneReached"/>): each once, in the
/// order the protocols reach them, with the time since the offer. Two of our cores over the virtual link.
/// </summary>
public sealed class ConnectionMilestoneTests
{
    private static readonly DtlsCertificate Certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));

    private sealed class Adapter(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote) : CorePeer(core, local, remote)
    {
        public List<ConnectionMilestoneReached> Milestones => Events.OfType<ConnectionMilestoneReached>().ToList();
    }

    [Fact]
    public void EachSideReportsEveryMilestoneOnceInProtocolOrderWithItsTimeSinceTheOffer()
    {
        var endA = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var endB = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        // The normal path: DTLS starts on a valid pair (with SPED the client starts before the first check).
        var a = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = Certificate,
            Sped = false,
            Ice = new IceAgentOptions { Role = IceRole.Controlling }
        });
        var b = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = Certificate,
            Sped = false,
            Ice = new IceAgentOptions { Role = IceRole.Controlled }
        });
        a.AddHostCandidate(endA);
        b.AddHostCandidate(endB);
        var pa = new Adapter(a, endA, endB);
        var pb = new Adapter(b, endB, endA);
        var link = new VirtualLink(5, LinkConditions.Clean(TimeSpan.FromMilliseconds(10)), LinkConditions.Clean(TimeSpan.FromMilliseconds(10)));
        var driver = new TwoPeerDriver(pa, pb, link);
        // The offer is made at 0 and answered at 40 ms (signaling takes time), the answer applied at 80 ms: each side
        // counts from its own exchange.
        var offer = SessionDescription.Parse(a.CreateOffer(driver.Now).ToString());
        driver.RunFor(TimeSpan.FromMilliseconds(40));
        var answer = SessionDescription.Parse(b.CreateAnswer(offer, driver.Now).ToString());
        pb.Drain();
        driver.RunFor(TimeSpan.FromMilliseconds(40));
        a.SetRemoteDescription(answer, driver.Now);
        pa.Drain();
        a.CreateDataChannel("chat", null, driver.Now);
        Assert.True(driver.RunUntil(() => pb.Events.OfType<DataChannelOpened>().Any() && pa.Events.OfType<DataChannelOpened>().Any(),
            TimeSpan.FromSeconds(10)));
        driver.RunFor(TimeSpan.FromSeconds(2));   // consent checks and re-selections must not report anything again

        ConnectionMilestone[] all = [.. Enum.GetValues<ConnectionMilestone>()];
        foreach (var (side, offerAt) in new[] { (pa, TimeSpan.Zero), (pb, TimeSpan.FromMilliseconds(40)) })
        {
            var seen = side.Milestones;
            Assert.Equal(all.Order(), seen.Select(m => m.Milestone).Order());    // each exactly once
            Assert.All(seen, m => Assert.Equal(m.At - offerAt, m.SinceOffer));
            TimeSpan At(ConnectionMilestone m) => seen.Single(x => x.Milestone == m).At;
            Assert.True(At(ConnectionMilestone.FirstCheckSent) <= At(ConnectionMilestone.PairValid));
            Assert.True(At(ConnectionMilestone.PairValid) <= At(ConnectionMilestone.DtlsStarted));
            Assert.True(At(ConnectionMilestone.DtlsStarted) < At(ConnectionMilestone.DtlsConnected));
            Assert.True(At(ConnectionMilestone.DtlsConnected) <= At(ConnectionMilestone.SctpEstablished));
            Assert.True(At(ConnectionMilestone.SctpEstablished) <= side.Events.OfType<DataChannelOpened>().First().At);
        }
        // The details name the role and the suite, and the pair.
        // The answerer answers passive (the default DtlsAnswerRole), so the offerer is the DTLS client.
        Assert.Contains("as client", pa.Milestones.Single(m => m.Milestone == ConnectionMilestone.DtlsConnected).Detail, StringComparison.Ordinal);
        Assert.Contains("as server", pb.Milestones.Single(m => m.Milestone == ConnectionMilestone.DtlsStarted).Detail, StringComparison.Ordinal);
        Assert.Contains("10.0.0.2:2000", pa.Milestones.Single(m => m.Milestone == ConnectionMilestone.PairSelected).Detail, StringComparison.Ordinal);
    }
}
