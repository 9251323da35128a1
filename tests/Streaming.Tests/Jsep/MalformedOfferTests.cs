using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.Tests.Jsep;

/// <summary>
/// Offers that used to escape as untyped exceptions (HTTP 500, a dropped signaling socket) are refused with
/// <see cref="SdpParseException"/> naming the reason, or negotiated around when nothing is ambiguous.
/// </summary>
public sealed class MalformedOfferTests
{
    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));

    private static readonly LocalSessionParameters Local =
        new(new IceParameters("ourufrag", "ourpasswordourpassword12"),
            new SdpFingerprint("sha-256", string.Join(':', Enumerable.Repeat("AB", 32))))
        {
            Candidates = [new SdpCandidate("1", 1, "udp", 2130706431, "127.0.0.1", 40000, "host")],
            EndOfCandidates = true,
        };

    /// <summary>What a server does with an offer: parse it, read it, answer it.</summary>
    private static (RemoteDescription Remote, SessionDescription Answer) Answer(string text)
    {
        var offer = SessionDescription.Parse(text);
        var remote = RemoteDescription.Read(offer);
        return (remote, JsepNegotiator.CreateAnswer(offer, Local));
    }

    [Fact]
    public void TwoFmtpLinesForOnePayloadTypeAreAParseErrorNamingIt()
    {
        var text = Fixture("chromium-offer.sdp").Replace("a=fmtp:97 apt=96\r\n", "a=fmtp:97 apt=96\r\na=fmtp:97 apt=102\r\n", StringComparison.Ordinal);
        var e = Assert.Throws<SdpParseException>(() => Answer(text));
        Assert.Contains("two a=fmtp lines for payload type 97", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void ANonHexH264ProfileLevelIdOnlyMakesThatPayloadTypeUnusable()
    {
        var text = Fixture("chromium-offer.sdp").Replace("packetization-mode=1;profile-level-id=42001f", "packetization-mode=1;profile-level-id=42zz1f",
            StringComparison.Ordinal);
        var (remote, answer) = Answer(text);
        var h264 = remote.Media[1].Codecs.Single(c => c.Codec.Name == "H264");
        Assert.NotEqual(102, h264.PayloadType); // the broken one is skipped, the next usable H.264 is taken
        Assert.DoesNotContain("102", answer.Media[1].Formats);
    }

    [Theory]
    [InlineData("a=ice-ufrag:clZf", "a=ice-ufrag:clZf\t", "ice-ufrag")]
    [InlineData("a=ice-ufrag:clZf", "a=ice-ufrag:cl Zf", "ice-ufrag")]
    [InlineData("a=ice-pwd:", "a=ice-pwd:\u00e9", "ice-pwd")]
    public void CredentialsWithCharactersOutsideIceCharAreAParseError(string find, string replace, string which)
    {
        var text = Fixture("chromium-offer.sdp").Replace(find, replace, StringComparison.Ordinal);
        var e = Assert.Throws<SdpParseException>(() => Answer(text));
        Assert.Contains(which, e.Reason, StringComparison.Ordinal);
        Assert.Contains("RFC 8839 section 5.4", e.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a=mid:1\r\n", "a=mid:1\rx\r\n")]
    [InlineData("a=fmtp:97 apt=96\r\n", "a=fmtp:97 apt=96\r\r\n")]
    [InlineData("a=fmtp:97 apt=96\r\n", "a=fmtp:97 apt=\u000096\r\n")]
    public void ABareCrOrNulInsideALineIsAParseErrorWithItsLineNumber(string find, string replace)
    {
        var text = Fixture("chromium-offer.sdp").Replace(find, replace, StringComparison.Ordinal);
        Assert.NotEqual(Fixture("chromium-offer.sdp"), text);
        var e = Assert.Throws<SdpParseException>(() => Answer(text));
        Assert.True(e.LineNumber > 0);
        Assert.Contains("CR or NUL", e.Reason, StringComparison.Ordinal);
    }
}
