using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.Tests.Jsep;

public sealed class JsepNegotiatorTests
{
    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));

    private static readonly SdpFingerprint OurFingerprint =
        new("sha-256", string.Join(':', Enumerable.Range(0, 32).Select(i => i.ToString("X2", System.Globalization.CultureInfo.InvariantCulture))));

    private static LocalSessionParameters Local(params LocalMedia[] media) =>
        new(new IceParameters("ourufrag", "ourpasswordourpassword12"), OurFingerprint)
        {
            Media = media,
            Candidates = [new SdpCandidate("1", 1, "udp", 2130706431, "127.0.0.1", 40000, "host")],
            EndOfCandidates = true,
        };

    [Fact]
    public void AnswersTheChromiumOfferWithOurCodecsAndItsPayloadTypes()
    {
        var offer = SessionDescription.Parse(Fixture("chromium-offer.sdp"));
        var answer = JsepNegotiator.CreateAnswer(offer, Local());
        var text = answer.ToString();
        var back = SessionDescription.Parse(text);

        Assert.Equal(["0", "1", "2"], back.BundleGroup);
        Assert.Equal(["audio", "video", "application"], back.Media.Select(m => m.Media));
        Assert.All(back.Media, m => Assert.Equal(SdpSetup.Passive, m.GetSetup()));   // to actpass: passive by default
        Assert.All(back.Media, m => Assert.Equal(40000, m.Port));

        var audio = back.Media[0];
        Assert.Equal(["111"], audio.Formats);
        Assert.True(audio.HasAttribute("recvonly"));      // we have no track to send
        Assert.True(audio.HasAttribute("rtcp-mux"));
        // The offer's ids for the mid and transport-wide sequence number extensions; transport-cc on every codec.
        Assert.Equal(4, audio.GetExtMaps().Single(e => e.Uri == RemoteDescription.MidExtensionUri).Id);
        Assert.Equal(3, audio.GetExtMaps().Single(e => e.Uri == RemoteDescription.TransportCcExtensionUri).Id);
        Assert.Equal(2, audio.GetExtMaps().Count());
        Assert.Contains("111 transport-cc", audio.GetAttributes("rtcp-fb"));

        var video = back.Media[1];
        var maps = video.GetRtpMaps().ToList();
        Assert.Equal("VP8", maps[0].Encoding);
        Assert.Equal(96, maps[0].PayloadType);
        Assert.Contains(video.GetFmtps(), f => f.Parameters == "apt=96");   // RTX for VP8 kept
        Assert.Equal(3, video.GetExtMaps().Single(e => e.Uri == RemoteDescription.TransportCcExtensionUri).Id);
        Assert.Contains("96 transport-cc", video.GetAttributes("rtcp-fb"));
        var h264 = maps.Single(m => m.Encoding == "H264");
        var h264Params = video.GetFmtps().Single(f => f.PayloadType == h264.PayloadType).ToDictionary();
        Assert.Equal("1", h264Params["packetization-mode"]);
        Assert.StartsWith("42", h264Params["profile-level-id"], StringComparison.Ordinal);

        var data = back.Media[2];
        Assert.Equal(5000, data.GetSctpPort());
        Assert.Equal(256 * 1024, data.GetMaxMessageSize());
        Assert.True(data.HasAttribute("end-of-candidates"));

        var remote = RemoteDescription.Read(back);
        Assert.Equal("ourufrag", remote.Ice.UsernameFragment);
        Assert.Equal(OurFingerprint, remote.Fingerprints.Single());
        Assert.Equal(DtlsRole.Client, JsepNegotiator.RoleFor(weOffered: true, remote.Setup));   // the answer said passive
    }

    [Fact]
    public void AnswersSendRecvWithOurSsrcWhenWeHaveATrack()
    {
        var offer = SessionDescription.Parse(Fixture("chromium-offer.sdp"));
        var answer = JsepNegotiator.CreateAnswer(offer, Local(
            new LocalMedia(MediaKind.Audio, "x", MediaDirection.SendRecv, [CodecSpec.Opus]) { Ssrc = 1234, Cname = "cn", StreamId = "s", TrackId = "t" }));
        var audio = SessionDescription.Parse(answer.ToString()).Media[0];
        Assert.True(audio.HasAttribute("sendrecv"));
        Assert.Equal("s t", audio.GetAttribute("msid"));
        Assert.Contains(audio.GetSsrcs(), s => s.Ssrc == 1234 && s.Attribute == "cname" && s.Value == "cn");
    }

    [Fact]
    public void ReadsTheChromiumOffer()
    {
        var remote = RemoteDescription.Read(SessionDescription.Parse(Fixture("chromium-offer.sdp")));
        Assert.Equal("clZf", remote.Ice.UsernameFragment);
        Assert.False(remote.Ice.Lite);
        Assert.Equal(SdpSetup.ActPass, remote.Setup);
        Assert.Equal(DtlsRole.Server, JsepNegotiator.RoleFor(weOffered: false, remote.Setup));
        Assert.Equal(DtlsRole.Client, JsepNegotiator.RoleFor(weOffered: false, remote.Setup, answerRole: DtlsRole.Client));
        Assert.Equal("2", remote.DataChannelMid);
        Assert.Equal(262144, remote.MaxMessageSize);
        Assert.Equal(2, remote.Media.Count);
        Assert.Equal(111, remote.Media[0].Codecs.Single().PayloadType);
        Assert.Equal(4, remote.Media[0].MidExtensionId);
        Assert.Contains(remote.Candidates, c => c.Transport == "udp" && c.Address == "127.0.0.1");
        Assert.False(remote.EndOfCandidates);
    }

    [Fact]
    public void OurOfferParsesBackWithEverySection()
    {
        var offer = JsepNegotiator.CreateOffer(Local(
            new LocalMedia(MediaKind.Audio, "a0", MediaDirection.SendRecv, [CodecSpec.Opus]) { Ssrc = 11, Cname = "c" },
            new LocalMedia(MediaKind.Video, "v1", MediaDirection.SendRecv, [CodecSpec.Vp8, CodecSpec.H264]) { Ssrc = 22, RtxSsrc = 23, Cname = "c" }));
        var back = SessionDescription.Parse(offer.ToString());
        Assert.Equal(["a0", "v1", "2"], back.BundleGroup);
        Assert.All(back.Media, m => Assert.Equal(SdpSetup.ActPass, m.GetSetup()));
        var remote = RemoteDescription.Read(back);
        Assert.Equal(["opus"], remote.Media[0].Codecs.Select(c => c.Codec.Name));
        Assert.Equal(["VP8", "H264"], remote.Media[1].Codecs.Select(c => c.Codec.Name));
        Assert.All(remote.Media[1].Codecs, c => Assert.NotNull(c.RtxPayloadType));
        Assert.Equal("FID 22 23", back.Media[1].GetAttribute("ssrc-group"));
        Assert.Equal("2", remote.DataChannelMid);
        Assert.Throws<InvalidOperationException>(() => JsepNegotiator.CreateOffer(Local() with { DataChannel = false }));
    }

    [Fact]
    public void RejectsSectionsWithoutACommonCodec()
    {
        var text = Fixture("chromium-offer.sdp");
        // Keep only PCMU (0) in the audio section.
        var offer = SessionDescription.Parse(text);
        offer.Media[0].Formats.Clear();
        offer.Media[0].Formats.Add("0");
        var answer = SessionDescription.Parse(JsepNegotiator.CreateAnswer(offer, Local()).ToString());
        Assert.Equal(0, answer.Media[0].Port);
        Assert.Equal(["1", "2"], answer.BundleGroup);
    }

    [Theory]
    [InlineData(true, SdpSetup.Active, DtlsRole.Server)]
    [InlineData(true, SdpSetup.Passive, DtlsRole.Client)]
    [InlineData(false, SdpSetup.ActPass, DtlsRole.Server)]
    [InlineData(false, SdpSetup.Passive, DtlsRole.Client)]
    [InlineData(false, SdpSetup.Active, DtlsRole.Server)]
    public void DtlsRoleFollowsSetup(bool weOffered, SdpSetup remote, DtlsRole expected) =>
        Assert.Equal(expected, JsepNegotiator.RoleFor(weOffered, remote));

    [Theory]
    [InlineData(DtlsRole.Server, SdpSetup.ActPass, SdpSetup.Passive)]
    [InlineData(DtlsRole.Client, SdpSetup.ActPass, SdpSetup.Active)]
    [InlineData(DtlsRole.Server, SdpSetup.Passive, SdpSetup.Active)]   // the offerer insists on being the server
    [InlineData(DtlsRole.Client, SdpSetup.Active, SdpSetup.Passive)]   // the offerer insists on being the client
    public void AnAnswerToAnActPassOfferSaysPassiveUnlessAskedForActive(DtlsRole answerRole, SdpSetup offered, SdpSetup expected)
    {
        var offer = SessionDescription.Parse(Fixture("chromium-offer.sdp").Replace("a=setup:actpass", "a=setup:" + offered.ToSdp(), StringComparison.Ordinal));
        var answer = SessionDescription.Parse(JsepNegotiator.CreateAnswer(offer, Local() with { AnswerRole = answerRole }).ToString());
        Assert.All(answer.Media.Where(m => !m.IsRejected), m => Assert.Equal(expected, m.GetSetup()));
        Assert.Equal(expected, JsepNegotiator.AnswerSetup(offered, established: null, answerRole));
    }

    [Fact]
    public void AnAnswerSayingActPassIsRefused() =>
        Assert.Throws<SdpParseException>(() => JsepNegotiator.RoleFor(weOffered: true, SdpSetup.ActPass));

    [Theory]
    [InlineData("a=ice-ufrag:", "a=ice-ufrag is missing")]
    [InlineData("a=ice-pwd:", "a=ice-pwd is missing")]
    [InlineData("a=fingerprint:", "a=fingerprint is missing")]
    public void RemoteDescriptionsMissingSecurityAttributesAreRefused(string linePrefix, string message)
    {
        var lines = Fixture("chromium-datachannel-offer.sdp").Split("\r\n").Where(l => !l.StartsWith(linePrefix, StringComparison.Ordinal));
        var e = Assert.Throws<SdpParseException>(() => RemoteDescription.Read(SessionDescription.Parse(string.Join("\r\n", lines))));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SectionsOutsideTheBundleGroupAreRefused()
    {
        var text = Fixture("chromium-offer.sdp").Replace("a=group:BUNDLE 0 1 2", "a=group:BUNDLE 0 1", StringComparison.Ordinal);
        var e = Assert.Throws<SdpParseException>(() => RemoteDescription.Read(SessionDescription.Parse(text)));
        Assert.Contains("not in the BUNDLE group", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GeneratedIceCredentialsMeetTheMinimumLengths()
    {
        var ice = IceParameters.Generate();
        Assert.True(ice.UsernameFragment.Length >= 4);
        Assert.True(ice.Password.Length >= 22);
        Assert.NotEqual(ice, IceParameters.Generate());
    }

    [Fact]
    public void TransportCcIsOfferedAndAnsweredOnlyWhenWanted()
    {
        var media = new LocalMedia(MediaKind.Video, "v", MediaDirection.SendRecv, [CodecSpec.Vp8]) { Ssrc = 1234 };
        var offer = JsepNegotiator.CreateOffer(Local(media));
        var section = offer.Media[0];
        Assert.Equal(3, section.GetExtMaps().Single(e => e.Uri == RemoteDescription.TransportCcExtensionUri).Id);
        Assert.Contains("96 transport-cc", section.GetAttributes("rtcp-fb"));

        var without = JsepNegotiator.CreateOffer(Local(media) with { TransportCc = false }).Media[0];
        Assert.DoesNotContain(without.GetExtMaps(), e => e.Uri == RemoteDescription.TransportCcExtensionUri);
        Assert.DoesNotContain(without.GetAttributes("rtcp-fb"), fb => fb.EndsWith("transport-cc", StringComparison.Ordinal));
        Assert.Contains("96 nack pli", without.GetAttributes("rtcp-fb"));

        // An offer without the extension is answered without it, and without the rtcp-fb that needs it.
        var chromium = SessionDescription.Parse(Fixture("chromium-offer.sdp"));
        foreach (var m in chromium.Media) m.RemoveAttributes("extmap");
        var answer = JsepNegotiator.CreateAnswer(chromium, Local());
        Assert.All(answer.Media.Where(m => m.Media is "audio" or "video"), m =>
        {
            Assert.Empty(m.GetExtMaps());
            Assert.DoesNotContain(m.GetAttributes("rtcp-fb"), fb => fb.EndsWith("transport-cc", StringComparison.Ordinal));
        });
    }
}
