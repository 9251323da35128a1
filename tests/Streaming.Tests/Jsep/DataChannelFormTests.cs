using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.Tests.Jsep;

/// <summary>
/// The data channel section in both of its forms: RFC 8841 and the older <c>DTLS/SCTP</c> + <c>a=sctpmap</c> that aiortc
/// 1.4 offers (fixture captured with Fixtures/capture-aiortc-offer.sh), answered in the offer's form; and an offer with
/// nothing acceptable refused with the reasons.
/// </summary>
public sealed class DataChannelFormTests
{
    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));

    private static readonly SdpFingerprint OurFingerprint =
        new("sha-256", string.Join(':', Enumerable.Range(0, 32).Select(i => i.ToString("X2", System.Globalization.CultureInfo.InvariantCulture))));

    private static LocalSessionParameters Local() =>
        new(new IceParameters("ourufrag", "ourpasswordourpassword12"), OurFingerprint)
        {
            Candidates = [new SdpCandidate("1", 1, "udp", 2130706431, "127.0.0.1", 40000, "host")],
            EndOfCandidates = true,
        };

    [Fact]
    public void ReadsTheDataChannelOfTheAiortcOfferFromItsSctpmap()
    {
        var remote = RemoteDescription.Read(SessionDescription.Parse(Fixture("aiortc-1.4-datachannel-offer.sdp")));
        Assert.Equal("0", remote.DataChannelMid);
        Assert.Equal(5000, remote.SctpPort);
        Assert.Equal(65536, remote.MaxMessageSize);
    }

    [Fact]
    public void AnswersTheAiortcOfferInTheSctpmapForm()
    {
        var offer = SessionDescription.Parse(Fixture("aiortc-1.4-datachannel-offer.sdp"));
        var answer = SessionDescription.Parse(JsepNegotiator.CreateAnswer(offer, Local()).ToString());

        Assert.Equal(["0"], answer.BundleGroup);
        var data = Assert.Single(answer.Media);
        Assert.False(data.IsRejected);
        Assert.Equal(("application", 40000, "DTLS/SCTP"), (data.Media, data.Port, data.Protocol));
        Assert.Equal(["5000"], data.Formats);
        Assert.Equal("5000 webrtc-datachannel 65535", data.GetAttribute("sctpmap"));
        Assert.Null(data.GetAttribute("sctp-port"));
        Assert.Equal("0", data.Mid);
        Assert.Equal("ourufrag", data.GetAttribute("ice-ufrag"));
        Assert.NotNull(data.GetFingerprint());
        Assert.Equal(SdpSetup.Passive, data.GetSetup());   // to aiortc's actpass: the default answer role
        Assert.Equal(256 * 1024, data.GetMaxMessageSize());
    }

    [Fact]
    public void OurOffersKeepTheRfc8841Form()
    {
        var data = Assert.Single(SessionDescription.Parse(JsepNegotiator.CreateOffer(Local()).ToString()).Media);
        Assert.Equal("UDP/DTLS/SCTP", data.Protocol);
        Assert.Equal(["webrtc-datachannel"], data.Formats);
        Assert.Equal(5000, data.GetSctpPort());
        Assert.Null(data.GetAttribute("sctpmap"));
    }

    [Theory]
    [InlineData("UDP/DTLS/SCTP")]
    [InlineData("TCP/DTLS/SCTP")]
    public void AnswersAnRfc8841OfferWithItsOwnProto(string profile)
    {
        var offer = SessionDescription.Parse(Fixture("chromium-datachannel-offer.sdp"));
        offer.Media[0].Protocol = profile;
        var data = Assert.Single(SessionDescription.Parse(JsepNegotiator.CreateAnswer(offer, Local()).ToString()).Media);
        Assert.Equal(profile, data.Protocol);
        Assert.Equal(["webrtc-datachannel"], data.Formats);
        Assert.Equal(5000, data.GetSctpPort());
        Assert.Null(data.GetAttribute("sctpmap"));
    }

    [Fact]
    public void AnOfferWithNothingAcceptableIsRefusedWithEverySectionsReason()
    {
        // The older form without its a=sctpmap, and audio with only PCMU: neither can be accepted.
        var text = Fixture("aiortc-1.4-datachannel-offer.sdp").Replace("a=sctpmap:5000 webrtc-datachannel 65535\r\n", "", StringComparison.Ordinal)
            .Replace("a=group:BUNDLE 0", "a=group:BUNDLE 0 1", StringComparison.Ordinal)
            + "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\na=rtcp-mux\r\n";
        var offer = SessionDescription.Parse(text);

        var e = Assert.Throws<OfferRejectedException>(() => JsepNegotiator.CreateAnswer(offer, Local()));
        Assert.Equal(2, e.Reasons.Count);
        Assert.Contains("m=application mid 0", e.Reasons[0], StringComparison.Ordinal);
        Assert.Contains("a=sctpmap", e.Reasons[0], StringComparison.Ordinal);
        Assert.Contains("m=audio mid 1", e.Reasons[1], StringComparison.Ordinal);
        Assert.Contains("no codec in common", e.Reasons[1], StringComparison.Ordinal);
        Assert.Contains(e.Reasons[1], e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ADataChannelOfferIsRefusedWithTheReasonWhenDataChannelsAreOff()
    {
        var offer = SessionDescription.Parse(Fixture("aiortc-1.4-datachannel-offer.sdp"));
        var e = Assert.Throws<OfferRejectedException>(() => JsepNegotiator.CreateAnswer(offer, Local() with { DataChannel = false }));
        Assert.Contains("data channels are not enabled", Assert.Single(e.Reasons), StringComparison.Ordinal);
    }
}
