using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// SNAP in the offer/answer (draft-hancke-tsvwg-snap): a=sctp-init offered, answered with our own INIT only when the
/// offer's is valid, never echoed; the decision kept by later exchanges; and the checks of negotiated channel ids.
/// </summary>
public sealed class SnapNegotiationTests
{
    private static readonly DtlsCertificate Certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));

    // Chromium's answer example of the draft; Q29va2llTW9uc3Rlcg== ("CookieMonster") is libwebrtc's own invalid value.
    private const string ChromiumInit = "AQAAHl+zdHQAUAAA/////6Gq3HTAAAAEgAgABoLA";

    private static PeerConnectionCore Core(bool snap, IceRole role, int port)
    {
        var core = new PeerConnectionCore(new PeerConnectionOptions { Certificate = Certificate, Snap = snap, Ice = new IceAgentOptions { Role = role } });
        core.AddHostCandidate(new IPEndPoint(IPAddress.Parse("10.0.0.1"), port));
        return core;
    }

    private static string? SctpInitOf(SessionDescription sdp) =>
        sdp.Media.Single(m => m.Media == "application").GetAttribute(JsepNegotiator.SctpInitAttribute);

    private static SessionDescription WithSctpInit(SessionDescription sdp, string? value)
    {
        var copy = SessionDescription.Parse(sdp.ToString());
        var m = copy.Media.Single(x => x.Media == "application");
        m.RemoveAttributes(JsepNegotiator.SctpInitAttribute);
        if (value is not null) m.AddAttribute(JsepNegotiator.SctpInitAttribute, value);
        return copy;
    }

    [Fact]
    public void TheOfferCarriesOurInitAndTheAnswerItsOwnNeverTheOffersEchoed()
    {
        using var a = Core(true, IceRole.Controlling, 1000);
        using var b = Core(true, IceRole.Controlled, 2000);
        var offer = SessionDescription.Parse(a.CreateOffer(TimeSpan.Zero).ToString());
        var offered = SctpInitOf(offer);
        Assert.NotNull(offered);
        Assert.True(SctpInitParameters.TryParseBase64(offered, out var offerInit, out var error), error);
        var answer = SessionDescription.Parse(b.CreateAnswer(offer, TimeSpan.Zero).ToString());
        var answered = SctpInitOf(answer);
        Assert.NotNull(answered);
        Assert.NotEqual(offered, answered);
        Assert.True(SctpInitParameters.TryParseBase64(answered, out var answerInit, out error), error);
        Assert.NotEqual(offerInit!.InitiateTag, answerInit!.InitiateTag);
        a.SetRemoteDescription(answer, TimeSpan.Zero);
        Assert.True(a.SnapInUse);
        Assert.True(b.SnapInUse);
        Assert.Null(a.SnapRefusal);
        // A subsequent offer keeps the same INIT (the association is the same); so does the answer to it.
        var reOffer = SessionDescription.Parse(a.CreateOffer(TimeSpan.FromSeconds(1)).ToString());
        Assert.Equal(offered, SctpInitOf(reOffer));
        var reAnswer = b.CreateAnswer(reOffer, TimeSpan.FromSeconds(1));
        Assert.Equal(answered, SctpInitOf(reAnswer));
    }

    public static TheoryData<string?, string> RefusedOffers => new()
    {
        { null, "carries no a=sctp-init" },
        { "Q29va2llTW9uc3Rlcg==", "invalid: the INIT is 13 bytes" },
        { "AQAAHgAAAAAAUAAA/////+B5ZR3AAAAEgAgABoLA", "invalid: the Initiate Tag is 0" },
        { "%%%", "invalid: the sctp-init value is not base64" },
    };

    [Theory]
    [MemberData(nameof(RefusedOffers))]
    public void AnOfferWithoutAValidInitIsAnsweredWithoutOneAndTheHandshakeRuns(string? value, string reason)
    {
        using var a = Core(true, IceRole.Controlling, 1000);
        using var b = Core(true, IceRole.Controlled, 2000);
        var offer = WithSctpInit(SessionDescription.Parse(a.CreateOffer(TimeSpan.Zero).ToString()), value);
        var answer = b.CreateAnswer(offer, TimeSpan.Zero);
        Assert.Null(SctpInitOf(answer));
        Assert.False(b.SnapInUse);
        Assert.Contains(reason, b.SnapRefusal, StringComparison.Ordinal);
        a.SetRemoteDescription(SessionDescription.Parse(answer.ToString()), TimeSpan.Zero);
        Assert.False(a.SnapInUse);
        Assert.Contains("the answer carries no a=sctp-init", a.SnapRefusal, StringComparison.Ordinal);
        // Our next offer does not offer what the answer declined.
        Assert.Null(SctpInitOf(a.CreateOffer(TimeSpan.FromSeconds(1))));
    }

    [Fact]
    public void AnAnswerThatEchoesOurOwnInitIsNotTaken()
    {
        using var a = Core(true, IceRole.Controlling, 1000);
        using var b = Core(false, IceRole.Controlled, 2000);
        var offer = SessionDescription.Parse(a.CreateOffer(TimeSpan.Zero).ToString());
        // As libdatachannel did with Chromium 151: the offer's attribute copied into the answer.
        var answer = WithSctpInit(SessionDescription.Parse(b.CreateAnswer(offer, TimeSpan.Zero).ToString()), SctpInitOf(offer));
        a.SetRemoteDescription(answer, TimeSpan.Zero);
        Assert.False(a.SnapInUse);
        Assert.Contains("our own INIT echoed back", a.SnapRefusal, StringComparison.Ordinal);
    }

    [Fact]
    public void WithSnapOffNothingIsOfferedOrAnswered()
    {
        using var a = Core(false, IceRole.Controlling, 1000);
        using var b = Core(false, IceRole.Controlled, 2000);
        var offer = SessionDescription.Parse(a.CreateOffer(TimeSpan.Zero).ToString());
        Assert.Null(SctpInitOf(offer));
        var answer = b.CreateAnswer(WithSctpInit(offer, ChromiumInit), TimeSpan.Zero);
        Assert.Null(SctpInitOf(answer));
        Assert.False(b.SnapInUse);
        Assert.Null(b.SnapRefusal);
    }

    [Fact]
    public void ChromiumsInitInAnOfferIsAnsweredWithOurs()
    {
        using var a = Core(false, IceRole.Controlling, 1000);
        using var b = Core(true, IceRole.Controlled, 2000);
        var offer = WithSctpInit(SessionDescription.Parse(a.CreateOffer(TimeSpan.Zero).ToString()), ChromiumInit);
        var answered = SctpInitOf(b.CreateAnswer(offer, TimeSpan.Zero));
        Assert.NotNull(answered);
        Assert.NotEqual(ChromiumInit, answered);
        Assert.True(b.SnapInUse);
    }

    [Fact]
    public void NegotiatedChannelIdsAreCheckedBeforeTheAssociationExists()
    {
        using var a = Core(true, IceRole.Controlling, 1000);
        Assert.Null(a.CreateDataChannel("one", new DataChannelOptions { Negotiated = true, Id = 5 }, TimeSpan.Zero));
        var collision = Assert.Throws<ArgumentException>(() => a.CreateDataChannel("two", new DataChannelOptions { Negotiated = true, Id = 5 }, TimeSpan.Zero));
        Assert.Contains("already taken by data channel 'one'", collision.Message, StringComparison.Ordinal);
        var noId = Assert.Throws<ArgumentException>(() => a.CreateDataChannel("three", new DataChannelOptions { Negotiated = true }, TimeSpan.Zero));
        Assert.Contains("needs an Id", noId.Message, StringComparison.Ordinal);
        Assert.Contains("reserved", Assert.Throws<ArgumentException>(() =>
            a.CreateDataChannel("four", new DataChannelOptions { Negotiated = true, Id = 65535 }, TimeSpan.Zero)).Message, StringComparison.Ordinal);
        // Once the descriptions made us the DTLS client (the answer is passive), an in-band channel's id must be even.
        using var b = Core(true, IceRole.Controlled, 2000);
        var offer = SessionDescription.Parse(a.CreateOffer(TimeSpan.Zero).ToString());
        a.SetRemoteDescription(SessionDescription.Parse(b.CreateAnswer(offer, TimeSpan.Zero).ToString()), TimeSpan.Zero);
        Assert.True(a.IsDtlsClient);
        var parity = Assert.Throws<ArgumentException>(() => a.CreateDataChannel("odd", new DataChannelOptions { Id = 3 }, TimeSpan.Zero));
        Assert.Contains("Stream id 3 is odd", parity.Message, StringComparison.Ordinal);
        Assert.Null(a.CreateDataChannel("even", new DataChannelOptions { Id = 2 }, TimeSpan.Zero));
    }
}
