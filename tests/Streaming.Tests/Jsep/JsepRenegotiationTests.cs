using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.Jsep;

/// <summary>
/// Subsequent offers and answers (RFC 8829 sections 5.2.2 and 5.3.1), DTLS role kept (RFC 8842 section 5.5), ICE
/// restart credentials (RFC 8839 section 4.4.1.1.2): what the descriptions say, before any packet is sent.
/// </summary>
public sealed class JsepRenegotiationTests
{
    private static readonly DtlsCertificate Certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));

    private static readonly SdpFingerprint OurFingerprint =
        new("sha-256", string.Join(':', Enumerable.Range(0, 32).Select(i => i.ToString("X2", System.Globalization.CultureInfo.InvariantCulture))));

    private static LocalSessionParameters Local(DtlsRole? role = null) =>
        new(new IceParameters("ourufrag", "ourpasswordourpassword12"), OurFingerprint)
        {
            Candidates = [new SdpCandidate("1", 1, "udp", 2130706431, "127.0.0.1", 40000, "host")],
            EstablishedRole = role,
        };

    private static (PeerConnectionCore A, PeerConnectionCore B) NegotiatedPair()
    {
        var a = new PeerConnectionCore(new PeerConnectionOptions { Certificate = Certificate });
        // b answers active (not our default passive) so that each side's DTLS role differs from its offer/answer role.
        var b = new PeerConnectionCore(new PeerConnectionOptions { Certificate = Certificate, DtlsAnswerRole = DtlsRole.Client });
        a.AddHostCandidate(new IPEndPoint(IPAddress.Loopback, 40001));
        b.AddHostCandidate(new IPEndPoint(IPAddress.Loopback, 40002));
        var offer = Reparse(a.CreateOffer(TimeSpan.Zero));
        var answer = Reparse(b.CreateAnswer(offer, TimeSpan.Zero));
        a.SetRemoteDescription(answer, TimeSpan.Zero);
        return (a, b);
    }

    private static SessionDescription Reparse(SessionDescription d) => SessionDescription.Parse(d.ToString());

    private static string Ufrag(SessionDescription d) => RemoteDescription.Read(d).Ice.UsernameFragment;
    private static string Pwd(SessionDescription d) => RemoteDescription.Read(d).Ice.Password;

    [Theory]
    [InlineData(null, SdpSetup.ActPass)]
    [InlineData(DtlsRole.Client, SdpSetup.Active)]
    [InlineData(DtlsRole.Server, SdpSetup.Passive)]
    public void AnOfferSaysActPassFirstThenTheRoleAlreadyEstablished(DtlsRole? role, SdpSetup expected)
    {
        var offer = SessionDescription.Parse(JsepNegotiator.CreateOffer(Local(role)).ToString());
        Assert.All(offer.Media, m => Assert.Equal(expected, m.GetSetup()));
    }

    [Theory]
    [InlineData(DtlsRole.Client, SdpSetup.ActPass, SdpSetup.Active)]
    [InlineData(DtlsRole.Client, SdpSetup.Passive, SdpSetup.Active)]
    [InlineData(DtlsRole.Server, SdpSetup.ActPass, SdpSetup.Passive)]    // a browser re-offers actpass: the server stays the server
    [InlineData(DtlsRole.Server, SdpSetup.Active, SdpSetup.Passive)]
    public void AnAnswerKeepsTheEstablishedRoleWhateverTheReofferAllows(DtlsRole role, SdpSetup offered, SdpSetup expected) =>
        Assert.Equal(expected, JsepNegotiator.AnswerSetup(offered, role));

    [Theory]
    [InlineData(DtlsRole.Client, SdpSetup.Active)]
    [InlineData(DtlsRole.Server, SdpSetup.Passive)]
    public void AReofferDemandingTheOtherDtlsRoleIsRefusedNamingBothRoles(DtlsRole role, SdpSetup offered)
    {
        var error = Assert.Throws<InvalidOperationException>(() => JsepNegotiator.AnswerSetup(offered, role));
        Assert.Contains("new DTLS association is not supported", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ASubsequentOfferKeepsTheSectionsAndBumpsTheVersionWithNewTransportAttributes()
    {
        var first = JsepNegotiator.CreateOffer(Local() with
        {
            Media = [new LocalMedia(MediaKind.Audio, "0", MediaDirection.SendRecv, [CodecSpec.Opus]) { Ssrc = 7, Cname = "c", StreamId = "s", TrackId = "t" }],
        });
        var next = SessionDescription.Parse(JsepNegotiator.CreateSubsequentOffer(first, Local(DtlsRole.Server) with
        {
            Ice = new IceParameters("newufrag", "newpasswordnewpassword12"),
        }).ToString());
        Assert.Equal(first.Media.Select(m => m.Mid), next.Media.Select(m => m.Mid));
        Assert.Equal(first.BundleGroup, next.BundleGroup);
        Assert.Equal(first.Origin.SessionId, next.Origin.SessionId);
        Assert.Equal(first.Origin.SessionVersion + 1, next.Origin.SessionVersion);
        Assert.All(next.Media, m =>
        {
            Assert.Equal(SdpSetup.Passive, m.GetSetup());
            Assert.Equal("newufrag", m.GetAttribute("ice-ufrag"));
            Assert.Single(m.GetAttributes("ice-ufrag"));
            Assert.Single(m.GetCandidates());
        });
        Assert.Equal(first.Media[0].GetSsrcs().Select(s => s.Ssrc), next.Media[0].GetSsrcs().Select(s => s.Ssrc));
        Assert.Equal(first.Media[0].GetRtpMaps(), next.Media[0].GetRtpMaps());
    }

    [Fact]
    public void AReofferWithoutRestartKeepsTheCredentialsAndTheRoleOfEachSide()
    {
        var (a, b) = NegotiatedPair();
        // a offered first (actpass), b answered active: b is the DTLS client, a the server.
        var reoffer = Reparse(a.CreateOffer(TimeSpan.FromSeconds(1)));
        Assert.All(reoffer.Media, m => Assert.Equal(SdpSetup.Passive, m.GetSetup()));
        Assert.Equal(a.Ice.LocalCredentials.Ufrag, Ufrag(reoffer));
        var answer = Reparse(b.CreateAnswer(reoffer, TimeSpan.FromSeconds(1)));
        Assert.All(answer.Media, m => Assert.Equal(SdpSetup.Active, m.GetSetup()));
        Assert.Equal(b.Ice.LocalCredentials.Ufrag, Ufrag(answer));
        a.SetRemoteDescription(answer, TimeSpan.FromSeconds(1));
        Assert.False(a.IsDtlsClient);
        Assert.True(b.IsDtlsClient);
        Assert.Equal(0, a.IceRestarts + b.IceRestarts);
        Assert.Single(a.LocalUsernameFragments);

        // Now b offers (it was the answerer): it is the client, so active; a answers passive.
        var fromB = Reparse(b.CreateOffer(TimeSpan.FromSeconds(2)));
        Assert.All(fromB.Media, m => Assert.Equal(SdpSetup.Active, m.GetSetup()));
        Assert.Equal(reoffer.Media.Select(m => m.Mid), fromB.Media.Select(m => m.Mid));
        var answerA = Reparse(a.CreateAnswer(fromB, TimeSpan.FromSeconds(2)));
        Assert.All(answerA.Media, m => Assert.Equal(SdpSetup.Passive, m.GetSetup()));
        b.SetRemoteDescription(answerA, TimeSpan.FromSeconds(2));
        Assert.True(b.IsDtlsClient);
        Assert.False(a.IsDtlsClient);
        Assert.Equal(SignalingState.Stable, a.SignalingState);
        Assert.Equal(SignalingState.Stable, b.SignalingState);
    }

    [Fact]
    public void ARestartOfferHasNewCredentialsAndItsAnswerHasNewOnesToo()
    {
        var (a, b) = NegotiatedPair();
        var oldA = (a.Ice.LocalCredentials.Ufrag, a.Ice.LocalCredentials.Password);
        var oldB = (b.Ice.LocalCredentials.Ufrag, b.Ice.LocalCredentials.Password);
        var restart = Reparse(a.CreateOffer(TimeSpan.FromSeconds(1), new OfferOptions { IceRestart = true }));
        Assert.NotEqual(oldA.Ufrag, Ufrag(restart));
        Assert.NotEqual(oldA.Password, Pwd(restart));
        Assert.Equal(a.Ice.LocalCredentials.Ufrag, Ufrag(restart));
        Assert.Equal([oldA.Ufrag, Ufrag(restart)], a.LocalUsernameFragments);

        var answer = Reparse(b.CreateAnswer(restart, TimeSpan.FromSeconds(1)));
        Assert.NotEqual(oldB.Ufrag, Ufrag(answer));
        Assert.NotEqual(oldB.Password, Pwd(answer));
        Assert.Equal([oldB.Ufrag, Ufrag(answer)], b.LocalUsernameFragments);
        a.SetRemoteDescription(answer, TimeSpan.FromSeconds(1));

        var startedA = Drain(a).OfType<IceRestartStarted>().Single();
        var startedB = Drain(b).OfType<IceRestartStarted>().Single();
        Assert.True(startedA.ByUs);
        Assert.False(startedB.ByUs);
        Assert.Equal(oldA.Ufrag, startedA.PreviousLocalUsernameFragment);
        Assert.Equal(Ufrag(answer), startedB.LocalUsernameFragment);
    }

    [Fact]
    public void CallsInTheWrongSignalingStateAreRefusedNamingTheState()
    {
        var (a, b) = NegotiatedPair();
        var stray = Reparse(b.CreateOffer(TimeSpan.FromSeconds(1)));
        var notPending = Assert.Throws<InvalidOperationException>(() => a.SetRemoteDescription(stray, TimeSpan.FromSeconds(1)));
        Assert.Contains("Stable", notPending.Message, StringComparison.Ordinal);

        a.CreateOffer(TimeSpan.FromSeconds(1));
        var twice = Assert.Throws<InvalidOperationException>(() => a.CreateOffer(TimeSpan.FromSeconds(1)));
        Assert.Contains("HaveLocalOffer", twice.Message, StringComparison.Ordinal);
        var glare = Assert.Throws<InvalidOperationException>(() => a.CreateAnswer(stray, TimeSpan.FromSeconds(1)));
        Assert.Contains("roll it back first", glare.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnAnswerChangingTheCredentialsWithoutARestartIsRefused()
    {
        var (a, b) = NegotiatedPair();
        var reoffer = Reparse(a.CreateOffer(TimeSpan.FromSeconds(1)));
        var answer = Reparse(b.CreateAnswer(reoffer, TimeSpan.FromSeconds(1)));
        foreach (var m in answer.Media)
        {
            m.RemoveAttributes("ice-ufrag");
            m.AddAttribute("ice-ufrag", "sneaky");
        }
        var error = Assert.Throws<InvalidOperationException>(() => a.SetRemoteDescription(answer, TimeSpan.FromSeconds(1)));
        Assert.Contains("did not restart ICE", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AReofferWithAnotherCertificateIsRefused()
    {
        var (a, b) = NegotiatedPair();
        using var other = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50), DateTimeOffset.UnixEpoch.AddYears(80));
        var c = new PeerConnectionCore(new PeerConnectionOptions { Certificate = other });
        c.AddHostCandidate(new IPEndPoint(IPAddress.Loopback, 40003));
        var foreign = Reparse(c.CreateOffer(TimeSpan.Zero));
        var error = Assert.Throws<InvalidOperationException>(() => b.CreateAnswer(foreign, TimeSpan.FromSeconds(1)));
        Assert.Contains("fingerprint", error.Message, StringComparison.Ordinal);
        GC.KeepAlive(a);
    }

    [Fact]
    public void TrickledCandidatesOfAnEarlierGenerationAreIgnoredAndEarlyOnesWaitForTheirDescription()
    {
        var (a, b) = NegotiatedPair();
        var oldUfragA = a.Ice.LocalCredentials.Ufrag;
        var offer = Reparse(a.CreateOffer(TimeSpan.FromSeconds(1), new OfferOptions { IceRestart = true }));
        var newUfrag = Ufrag(offer);
        Assert.NotEqual(oldUfragA, newUfrag);
        // a's first new-generation candidate races ahead of its restart offer: b keeps it aside, unpaired.
        var before = b.Ice.CandidatePairs.Count;
        b.AddRemoteCandidate(SdpCandidate.Parse($"candidate:9 1 udp 2130706431 127.0.0.1 40009 typ host ufrag {newUfrag}"), TimeSpan.FromSeconds(1));
        Assert.Equal(before, b.Ice.CandidatePairs.Count);
        var answer = Reparse(b.CreateAnswer(offer, TimeSpan.FromSeconds(1)));
        Assert.Contains(b.Ice.CandidatePairs, p => p.Remote.Address.Port == 40009);
        a.SetRemoteDescription(answer, TimeSpan.FromSeconds(1));

        var pairs = b.Ice.CandidatePairs.Count;
        b.AddRemoteCandidate(SdpCandidate.Parse($"candidate:8 1 udp 2130706431 127.0.0.1 40008 typ host ufrag {oldUfragA}"), TimeSpan.FromSeconds(1));
        Assert.Equal(pairs, b.Ice.CandidatePairs.Count);
        Assert.Equal(1, b.StaleCandidates);
        b.AddRemoteCandidate(SdpCandidate.Parse($"candidate:7 1 udp 2130706431 127.0.0.1 40007 typ host ufrag {newUfrag}"), TimeSpan.FromSeconds(1));
        Assert.Equal(pairs + 1, b.Ice.CandidatePairs.Count);
    }

    private static List<PeerConnectionEvent> Drain(PeerConnectionCore core)
    {
        var list = new List<PeerConnectionEvent>();
        while (core.TryPollEvent(out var e)) list.Add(e);
        return list;
    }
}
