using Transport.Sctp;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// <see cref="SnapInitExchange"/> alone (draft-hancke-tsvwg-snap): which a=sctp-init our offer and answer carry, when the
/// peer's is taken and why it is refused, the decision kept by later exchanges, and the association started from the
/// two INITs on virtual time.
/// </summary>
public sealed class SnapInitExchangeTests
{
    private static readonly SctpOptions Sctp = new();

    private static string PeerInit() => SctpInitParameters.CreateLocal(Sctp).ToBase64();

    [Fact]
    public void TheInitialOfferCarriesOurInitAndAnAnswerWithAValidInitOfItsOwnPutsSnapInUse()
    {
        var x = new SnapInitExchange(enabled: true, Sctp);
        var offered = x.InitForOffer(negotiated: false);
        Assert.NotNull(offered);
        Assert.Equal(offered, x.InitForOffer(negotiated: false));   // made once
        Assert.False(x.InUse);
        var peer = PeerInit();
        x.OnAnswer(peer, answerHasSctp: true);
        Assert.True(x.InUse);
        Assert.Null(x.Refusal);
        Assert.True(SctpInitParameters.TryParseBase64(peer, out var parsed, out _));
        Assert.Equal((parsed!.InitiateTag, parsed.InitialTsn), (x.Remote!.InitiateTag, x.Remote.InitialTsn));
        // A re-offer is made from the current description (which keeps our INIT while SNAP is in use): none added.
        Assert.Null(x.InitForOffer(negotiated: true));
    }

    [Fact]
    public void TheAnswerCarriesOurOwnInitNeverTheOfferedOneAndLaterAnswersRepeatIt()
    {
        var x = new SnapInitExchange(enabled: true, Sctp);
        var offer = PeerInit();
        var answer = x.InitForAnswer(offer, offerHasSctp: true, negotiated: false);
        Assert.NotNull(answer);
        Assert.NotEqual(offer, answer);
        Assert.Equal(x.Local!.ToBase64(), answer);
        Assert.True(x.InUse);
        Assert.Equal(answer, x.InitForAnswer(offeredInit: null, offerHasSctp: true, negotiated: true));
    }

    [Theory]
    [InlineData(null, "the offer carries no a=sctp-init")]
    [InlineData("Q29va2llTW9uc3Rlcg==", "the offer's a=sctp-init is invalid: ")]   // libwebrtc's own invalid value
    public void AnOfferWithoutAValidInitIsAnsweredWithoutOneAndTheRefusalSaysWhy(string? offered, string refusal)
    {
        var x = new SnapInitExchange(enabled: true, Sctp);
        Assert.Null(x.InitForAnswer(offered, offerHasSctp: true, negotiated: false));
        Assert.False(x.InUse);
        Assert.StartsWith(refusal, x.Refusal);
        // The decision stays: an answer to a later offer carries no INIT, even a valid one offered then.
        Assert.Null(x.InitForAnswer(PeerInit(), offerHasSctp: true, negotiated: true));
        Assert.False(x.InUse);
    }

    [Fact]
    public void OurOwnInitEchoedBackInTheAnswerIsRefused()
    {
        var x = new SnapInitExchange(enabled: true, Sctp);
        var ours = x.InitForOffer(negotiated: false);
        x.OnAnswer(ours, answerHasSctp: true);
        Assert.False(x.InUse);
        Assert.Equal("the answer's a=sctp-init is our own INIT echoed back", x.Refusal);
    }

    [Fact]
    public void DisabledOrWithoutAnSctpSectionNothingIsWrittenOrRead()
    {
        var off = new SnapInitExchange(enabled: false, Sctp);
        Assert.Null(off.InitForOffer(negotiated: false));
        Assert.Null(off.InitForAnswer(PeerInit(), offerHasSctp: true, negotiated: false));
        off.OnAnswer(PeerInit(), answerHasSctp: true);
        Assert.False(off.InUse);
        Assert.Null(off.Refusal);
        Assert.Null(off.Local);

        var on = new SnapInitExchange(enabled: true, Sctp);
        Assert.Null(on.InitForAnswer(PeerInit(), offerHasSctp: false, negotiated: false));
        on.OnAnswer(PeerInit(), answerHasSctp: true);   // our offer carried no INIT: the answer's is not read
        Assert.False(on.InUse);
        Assert.Null(on.Refusal);
    }

    [Fact]
    public void WithBothInitsTheAssociationStartsEstablishedWithoutAHandshake()
    {
        var now = TimeSpan.FromMilliseconds(1234);
        var without = new SnapInitExchange(enabled: true, Sctp);
        var plain = new SctpAssociation(Sctp);
        Assert.False(without.TryStart(plain, now));
        Assert.Equal(SctpState.Closed, plain.State);

        var x = new SnapInitExchange(enabled: true, Sctp);
        x.InitForAnswer(PeerInit(), offerHasSctp: true, negotiated: false);
        var association = new SctpAssociation(Sctp with { IsDtlsClient = false });
        Assert.True(x.TryStart(association, now));
        Assert.Equal(SctpState.Established, association.State);
    }

    [Fact]
    public void TheTemplateOfALaterOfferKeepsOurInitOnlyWhileSnapIsInUse()
    {
        const string Sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" +
            "c=IN IP4 0.0.0.0\r\na=mid:0\r\na=sctp-port:5000\r\n";
        var refused = new SnapInitExchange(enabled: true, Sctp);
        var local = SessionDescription.Parse(Sdp + $"a=sctp-init:{refused.InitForOffer(negotiated: false)}\r\n");
        refused.OnAnswer(null, answerHasSctp: true);
        var template = refused.WithoutUnusedInit(local);
        Assert.NotSame(local, template);
        Assert.False(template.Media[0].HasAttribute(JsepNegotiator.SctpInitAttribute));
        Assert.True(local.Media[0].HasAttribute(JsepNegotiator.SctpInitAttribute));   // the description given is unchanged

        var used = new SnapInitExchange(enabled: true, Sctp);
        var ours = SessionDescription.Parse(Sdp + $"a=sctp-init:{used.InitForOffer(negotiated: false)}\r\n");
        used.OnAnswer(PeerInit(), answerHasSctp: true);
        Assert.Same(ours, used.WithoutUnusedInit(ours));
    }
}
