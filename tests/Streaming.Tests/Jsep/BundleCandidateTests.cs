using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.Jsep;

/// <summary>
/// With BUNDLE every section uses the transport of the BUNDLE-tag section (RFC 9143 section 7): the candidates of
/// the other sections (the recorded Chromium offer has one per section, ports 47039, 60103 and 59998, as Firefox's
/// offers do) belong to transports the peer drops once BUNDLE is accepted, so we neither check them nor start DTLS
/// on them: in the description, trickled with their sdpMid or sdpMLineIndex, as offerer and as answerer.
/// </summary>
public sealed class BundleCandidateTests
{
    private const int TagPort = 47039, VideoPort = 60103, DataPort = 59998;
    private static readonly DtlsCertificate Certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));

    private static SessionDescription Offer() =>
        SessionDescription.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "chromium-offer.sdp")));

    private static PeerConnectionCore Core()
    {
        var core = new PeerConnectionCore(new PeerConnectionOptions { Certificate = Certificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });
        core.AddHostCandidate(new IPEndPoint(IPAddress.Loopback, 40000));
        return core;
    }

    private static int[] RemotePorts(PeerConnectionCore core) =>
        core.Ice.CandidatePairs.Select(p => p.Remote.Address.Port).Distinct().Order().ToArray();

    [Fact]
    public void OnlyTheTaggedSectionsCandidatesAreRead()
    {
        var offer = Offer();
        offer.Media[1].AddAttribute("end-of-candidates");       // an end in another section says nothing of the tag's
        var remote = RemoteDescription.Read(offer);
        Assert.Equal("0", remote.BundleTag);
        Assert.Equal(0, remote.BundleTagIndex);
        Assert.Equal([TagPort], remote.Candidates.Where(c => c.Transport == "udp").Select(c => c.Port));
        Assert.Equal(2, remote.Candidates.Count);                 // its udp and tcp (port 9) candidates
        Assert.False(remote.EndOfCandidates);
    }

    [Fact]
    public void AsAnswererWeCheckOnlyTheTaggedSectionsCandidates()
    {
        var core = Core();
        core.CreateAnswer(Offer(), TimeSpan.Zero);
        Assert.Equal([TagPort], RemotePorts(core));
    }

    [Fact]
    public void WhenWeRejectTheOffersTaggedSectionTheSectionOurAnswerTagsGivesTheCandidates()
    {
        var offer = Offer();
        offer.Media[0].Formats.Clear();
        offer.Media[0].Formats.Add("0");                          // PCMU only: we reject the audio section
        var core = Core();
        var answer = core.CreateAnswer(offer, TimeSpan.Zero);
        Assert.Equal(["1", "2"], answer.BundleGroup);
        Assert.Equal([VideoPort], RemotePorts(core));
    }

    [Fact]
    public void AsOffererOnlyTheAnswersTaggedSectionsCandidatesAreUsed()
    {
        var ours = new PeerConnectionCore(new PeerConnectionOptions { Certificate = Certificate, Ice = new IceAgentOptions { Role = IceRole.Controlling } });
        ours.AddHostCandidate(new IPEndPoint(IPAddress.Loopback, 40000));
        ours.AddTrack(MediaKind.Audio);
        var offer = SessionDescription.Parse(ours.CreateOffer(TimeSpan.Zero).ToString());

        var peer = Core();
        var answer = SessionDescription.Parse(peer.CreateAnswer(offer, TimeSpan.Zero).ToString());
        Assert.True(answer.Media.Count >= 2);
        foreach (var (m, port) in answer.Media.Zip([41000, 42000, 43000]))
        {
            m.RemoveAttributes("candidate");
            m.AddAttribute("candidate", $"1 1 udp 2122260223 127.0.0.1 {port} typ host");
        }
        ours.SetRemoteDescription(answer, TimeSpan.Zero);
        Assert.Equal([41000], RemotePorts(ours));
    }

    [Fact]
    public void TrickledCandidatesOfOtherBundledSectionsAreIgnoredAndCounted()
    {
        var core = Core();
        var offer = Offer();
        foreach (var m in offer.Media) m.RemoveAttributes("candidate");
        core.CreateAnswer(offer, TimeSpan.Zero);
        SdpCandidate On(int port) => SdpCandidate.Parse($"candidate:1 1 udp 2122260223 127.0.0.1 {port} typ host");

        core.AddRemoteCandidate(On(VideoPort), TimeSpan.Zero, sdpMid: "1");
        core.AddRemoteCandidate(On(DataPort), TimeSpan.Zero, sdpMLineIndex: 2);
        core.AddRemoteCandidate(null, TimeSpan.Zero, sdpMid: "2");          // the data section transport's end: not ours
        Assert.Empty(RemotePorts(core));
        Assert.Equal(3, core.OtherSectionCandidates);

        core.AddRemoteCandidate(On(TagPort), TimeSpan.Zero, sdpMid: "0");
        core.AddRemoteCandidate(On(TagPort + 1), TimeSpan.Zero, sdpMLineIndex: 0);
        core.AddRemoteCandidate(On(TagPort + 2), TimeSpan.Zero);            // no section named: taken
        Assert.Equal([TagPort, TagPort + 1, TagPort + 2], RemotePorts(core));
        Assert.Equal(3, core.OtherSectionCandidates);
    }

    [Fact]
    public void ATrickleFragmentTellsEachCandidatesSection()
    {
        var fragment = IceSdpFragment.Parse(string.Join("\r\n",
            "a=ice-ufrag:abcd", "a=ice-pwd:0123456789012345678901",
            "m=audio 9 UDP/TLS/RTP/SAVPF 0", "a=mid:0", "a=candidate:1 1 udp 1 127.0.0.1 5000 typ host",
            "m=video 9 UDP/TLS/RTP/SAVPF 0", "a=candidate:2 1 udp 1 127.0.0.1 5001 typ host", "a=mid:1",
            "a=end-of-candidates", ""));
        Assert.Equal(2, fragment.Candidates.Count);
        Assert.Equal(["0", "1"], fragment.CandidateMids);
        Assert.Equal([null], IceSdpFragment.Parse("a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n").CandidateMids);
    }
}
