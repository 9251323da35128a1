using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.Tests.Jsep;

/// <summary>RFC 8840 fragments: read, made from a description, and credentials put into a description (on a real Chromium offer).</summary>
public sealed class IceSdpFragmentTests
{
    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));

    [Fact]
    public void AFragmentIsReadLineByLineWithCrLfOrLf()
    {
        var f = IceSdpFragment.Parse("a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n" +
                                     "a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\n" +
                                     "a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\n" +
                                     "a=end-of-candidates\r\n");
        Assert.Equal("EsAw", f.Ufrag);
        Assert.Equal("P2uYro0UCOQ4zxjKXaWCBui1", f.Password);
        Assert.Equal(2, f.Candidates.Count);
        Assert.StartsWith("candidate:1387637174 1 udp", f.Candidates[0], StringComparison.Ordinal);
        Assert.True(f.EndOfCandidates);
        Assert.Equal(61765, SdpCandidate.Parse(f.Candidates[1]).Port);

        var empty = IceSdpFragment.Parse("");
        Assert.Null(empty.Ufrag);
        Assert.Empty(empty.Candidates);
        Assert.False(empty.EndOfCandidates);
    }

    [Fact]
    public void TheFragmentOfADescriptionHasItsCredentialsAndItsFirstSectionsCandidates()
    {
        var offer = Fixture("chromium-offer.sdp");
        var parsed = SessionDescription.Parse(offer);
        var fragment = IceSdpFragment.FromDescription(offer);
        var f = IceSdpFragment.Parse(fragment);
        var first = parsed.Media[0];
        Assert.Equal(first.Attributes.First(a => a.Name == "ice-ufrag").Value, f.Ufrag);
        Assert.Equal(first.Attributes.First(a => a.Name == "ice-pwd").Value, f.Password);
        Assert.Contains($"a=mid:{first.Attributes.First(a => a.Name == "mid").Value}\r\n", fragment, StringComparison.Ordinal);
        Assert.StartsWith("m=" + first.Media + " ", fragment.Split("\r\n")[2], StringComparison.Ordinal);
        Assert.Equal(first.Attributes.Count(a => a.Name == "candidate"), f.Candidates.Count);
        Assert.Single(fragment.Split("\r\n"), l => l.StartsWith("m=", StringComparison.Ordinal));   // one section
    }

    [Fact]
    public void NewCredentialsReplaceEveryOccurrenceAndTheOldCandidatesGo()
    {
        var offer = Fixture("chromium-offer.sdp");
        var restarted = IceSdpFragment.WithCredentials(offer, "n3wU", "n3wPasswordn3wPassword+/");
        var parsed = SessionDescription.Parse(restarted);   // still a valid description
        Assert.All(parsed.Media, m =>
        {
            Assert.Equal("n3wU", m.Attributes.First(a => a.Name == "ice-ufrag").Value);
            Assert.Equal("n3wPasswordn3wPassword+/", m.Attributes.First(a => a.Name == "ice-pwd").Value);
            Assert.DoesNotContain(m.Attributes, a => a.Name is "candidate" or "end-of-candidates");
        });
        Assert.Equal(SessionDescription.Parse(offer).Media.Count, parsed.Media.Count);
        Assert.DoesNotContain("\n\n", restarted.Replace("\r", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("abc", "abcdefghijklmnopqrstuv", "ufrag")]          // ufrag shorter than 4
    [InlineData("abcd", "abcdefghijklmnopqrstu", "password")]        // password shorter than 22
    [InlineData("ab-d", "abcdefghijklmnopqrstuv", "ufrag")]          // '-' is no ice-char
    [InlineData("abcd", "abcdefghijklmnopqrstu\r", "password")]      // nor is CR: no line injection
    public void InvalidCredentialsAreRefusedNamingWhich(string ufrag, string password, string which)
    {
        var e = Assert.Throws<ArgumentException>(() => IceSdpFragment.WithCredentials("v=0\r\n", ufrag, password));
        Assert.Equal(which, e.ParamName);
    }
    /// <summary>On a description parsed once (the WHIP PATCH restart): the same description as the text form gives, the original untouched.</summary>
    [Theory]
    [InlineData("chromium-offer.sdp")]
    [InlineData("chromium-datachannel-offer.sdp")]
    public void NewCredentialsOnAParsedDescriptionGiveWhatTheTextFormGives(string name)
    {
        var offer = Fixture(name);
        var parsed = SessionDescription.Parse(offer);
        var before = parsed.ToString();
        var restarted = IceSdpFragment.WithCredentials(parsed, "n3wU", "n3wPasswordn3wPassword+/");
        Assert.Equal(SessionDescription.Parse(IceSdpFragment.WithCredentials(offer, "n3wU", "n3wPasswordn3wPassword+/")).ToString(), restarted.ToString());
        Assert.Equal(before, parsed.ToString());
        Assert.Equal(IceSdpFragment.Parse(offer).Ufrag, IceSdpFragment.UfragOf(parsed));
        Assert.Equal("n3wU", IceSdpFragment.UfragOf(restarted));
        Assert.Throws<ArgumentException>(() => IceSdpFragment.WithCredentials(parsed, "ab-d", "abcdefghijklmnopqrstuv"));
    }
}
