using Transport.Streaming.Sdp;

namespace Transport.Streaming.Tests.Sdp;

public sealed class SessionDescriptionTests
{
    private static string Fixture(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));

    [Theory]
    [InlineData("chromium-offer.sdp")]
    [InlineData("chromium-answer.sdp")]
    [InlineData("chromium-datachannel-offer.sdp")]
    public void ChromiumDescriptionsParseAndWriteBackByteForByte(string name)
    {
        var text = Fixture(name);
        var sdp = SessionDescription.Parse(text);
        Assert.Equal(text, sdp.ToString());
    }

    [Fact]
    public void ReadsTheChromiumOfferOfAudioVideoAndData()
    {
        var sdp = SessionDescription.Parse(Fixture("chromium-offer.sdp"));
        Assert.Equal(["0", "1", "2"], sdp.BundleGroup);
        Assert.Equal(["audio", "video", "application"], sdp.Media.Select(m => m.Media));
        Assert.Equal(["0", "1", "2"], sdp.Media.Select(m => m.Mid));

        var audio = sdp.Media[0];
        Assert.Equal("UDP/TLS/RTP/SAVPF", audio.Protocol);
        Assert.True(audio.HasAttribute("rtcp-mux"));
        Assert.Equal(SdpSetup.ActPass, audio.GetSetup());
        var fingerprint = audio.GetFingerprint()!;
        Assert.Equal("sha-256", fingerprint.Algorithm);
        Assert.Equal(32, fingerprint.Value.Split(':').Length);
        var opus = audio.GetRtpMaps().Single(r => r.Encoding == "opus");
        Assert.Equal(111, opus.PayloadType);
        Assert.Equal(48000, opus.ClockRate);
        Assert.Equal(2, opus.Channels);
        Assert.Equal("1", audio.GetFmtps().Single(f => f.PayloadType == 111).ToDictionary()["useinbandfec"]);
        Assert.Contains(audio.GetRtcpFeedback(), f => f.PayloadType == "111" && f.Type == "transport-cc");
        Assert.Contains(audio.GetExtMaps(), e => e.Uri.Contains("transport-wide-cc", StringComparison.Ordinal));
        var host = Assert.Single(audio.GetCandidates(), c => c.Transport == "udp");
        Assert.Equal("127.0.0.1", host.Address);
        Assert.Equal(audio.Port, host.Port);
        Assert.Equal("host", host.Type);
        Assert.Equal("0", host.GetExtension("generation"));

        var video = sdp.Media[1];
        Assert.Contains(video.GetRtpMaps(), r => r.Encoding == "VP8" && r.ClockRate == 90000);
        var h264 = video.GetRtpMaps().Where(r => r.Encoding == "H264").Select(r => r.PayloadType).ToHashSet();
        Assert.Contains(video.GetFmtps(), f => h264.Contains(f.PayloadType) && f.ToDictionary().GetValueOrDefault("packetization-mode") == "1");
        Assert.Contains(video.GetRtcpFeedback(), f => f.Type == "nack" && f.Parameter == "pli");

        var data = sdp.Media[2];
        Assert.Equal("UDP/DTLS/SCTP", data.Protocol);
        Assert.Equal(["webrtc-datachannel"], data.Formats);
        Assert.Equal(5000, data.GetSctpPort());
        Assert.Equal(262144, data.GetMaxMessageSize());
    }

    [Fact]
    public void ReadsTheChromiumAnswer()
    {
        var sdp = SessionDescription.Parse(Fixture("chromium-answer.sdp"));
        Assert.All(sdp.Media, m => Assert.Equal(SdpSetup.Active, m.GetSetup()));
        Assert.Equal(3, sdp.Media.Count);
        Assert.True(sdp.Media[0].HasAttribute("recvonly"));
        Assert.Empty(sdp.Media[0].GetSsrcs());
    }

    [Fact]
    public void ReadsTheSsrcLinesOfTheOffer()
    {
        var audio = SessionDescription.Parse(Fixture("chromium-offer.sdp")).Media[0];
        var cname = Assert.Single(audio.GetSsrcs(), s => s.Attribute == "cname");
        Assert.False(string.IsNullOrEmpty(cname.Value));
        Assert.Contains(audio.GetSsrcs(), s => s.Attribute == "msid" && s.Ssrc == cname.Ssrc);
    }

    [Fact]
    public void BuildsADescriptionThatParsesBack()
    {
        var sdp = new SessionDescription(SdpOrigin.Create(123456789));
        sdp.AddAttribute("group", "BUNDLE 0");
        var m = new MediaDescription("application", 9, "UDP/DTLS/SCTP", ["webrtc-datachannel"]) { Connection = new SdpConnection("IN", "IP4", "0.0.0.0") };
        m.AddAttribute("mid", "0");
        m.AddAttribute("ice-ufrag", "abcd");
        m.AddAttribute("ice-pwd", "0123456789012345678901");
        m.AddAttribute("setup", SdpSetup.Passive.ToSdp());
        m.AddAttribute("candidate", new SdpCandidate("1", 1, "udp", 2130706431, "127.0.0.1", 5000, "host").ToAttributeValue());
        m.AddAttribute("sctp-port", "5000");
        sdp.Media.Add(m);
        var text = sdp.ToString();
        Assert.StartsWith("v=0\r\no=- 123456789 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=application 9 " +
            "UDP/DTLS/SCTP webrtc-datachannel\r\n", text);
        var back = SessionDescription.Parse(text);
        Assert.Equal(text, back.ToString());
        Assert.Equal(SdpSetup.Passive, back.Media[0].GetSetup());
        Assert.Equal(5000, back.Media[0].GetCandidates().Single().Port);
        Assert.Throws<ArgumentException>(() => m.AddAttribute("bad name"));
        Assert.Throws<ArgumentException>(() => m.AddAttribute("x", "a\r\nm=audio"));
    }

    [Fact]
    public void AcceptsLineFeedOnlyLineEnds()
    {
        var sdp = SessionDescription.Parse(Fixture("chromium-datachannel-offer.sdp").Replace("\r\n", "\n", StringComparison.Ordinal));
        Assert.Single(sdp.Media);
    }

    [Theory]
    [InlineData("o=- 1 2 IN IP4 127.0.0.1\r\n", 1, "v=0")]
    [InlineData("v=1\r\n", 1, "version")]
    [InlineData("v=0\r\ns=-\r\n", 2, "o= must follow")]
    [InlineData("v=0\r\no=- x 2 IN IP4 127.0.0.1\r\n", 2, "session id")]
    [InlineData("v=0\r\no=- 1 2 IN IP4\r\n", 2, "6 fields")]
    [InlineData("v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\nt=0 0\r\n", 3, "s= must follow")]
    [InlineData("v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 9 RTP/AVP 0\r\n", 4, "t= must come")]
    [InlineData("v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n", 5, "port")]
    [InlineData("v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 9\r\n", 5, "protocol")]
    [InlineData("v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\nt=0 0\r\n", 6, "not allowed in a media section")]
    [InlineData("v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nX=1\r\n", 5, "not a '<type>=<value>' line")]
    [InlineData("v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nq=1\r\n", 5, "unknown line type")]
    [InlineData("v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\na=:x\r\n", 5, "attribute name")]
    [InlineData("v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nc=IN IP4\r\n", 5, "c= needs 3 fields")]
    [InlineData("v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\n", 0, "no t= line")]
    [InlineData("", 0, "no v=")]
    public void MalformedDescriptionsNameTheLine(string text, int line, string reason)
    {
        var e = Assert.Throws<SdpParseException>(() => SessionDescription.Parse(text));
        Assert.Equal(line, e.LineNumber);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
        Assert.Contains($"SDP line {line}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RefusesAnOversizeDescription()
    {
        var text = "v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n" + string.Concat(Enumerable.Repeat("a=x\r\n", SessionDescription.MaxLength / 5));
        Assert.Throws<SdpParseException>(() => SessionDescription.Parse(text));
    }

    [Fact]
    public void RandomGarbageNeverThrowsAnythingButSdpParseException()
    {
        var valid = Fixture("chromium-offer.sdp");
        var random = new Random(7);
        int parsed = 0, refused = 0;
        for (var i = 0; i < 2000; i++)
        {
            var chars = valid.ToCharArray();
            for (var k = 0; k < 5; k++) chars[random.Next(chars.Length)] = (char)random.Next(0, 128);
            var text = new string(chars, 0, random.Next(chars.Length));
            SessionDescription sdp;
            try
            {
                sdp = SessionDescription.Parse(text);
            }
            catch (SdpParseException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message));
                refused++;
                continue;
            }

            // What we accept, we print in a form we read back to the same description.
            var printed = sdp.ToString();
            Assert.Equal(printed, SessionDescription.Parse(printed).ToString());
            parsed++;
        }

        // Both outcomes happen: the mutations are neither all fatal nor all harmless.
        Assert.Equal(2000, parsed + refused);
        Assert.InRange(parsed, 50, 1950);
        Assert.InRange(refused, 50, 1950);
    }
    /// <summary>A copy is made without text in between, writes the same, and is independent of the original.</summary>
    [Theory]
    [InlineData("chromium-offer.sdp")]
    [InlineData("chromium-answer.sdp")]
    [InlineData("aiortc-1.4-datachannel-offer.sdp")]
    public void CloneIsADeepCopyThatWritesTheSame(string name)
    {
        var original = SessionDescription.Parse(Fixture(name));
        var text = original.ToString();
        var copy = original.Clone();
        Assert.Equal(text, copy.ToString());
        copy.Origin = copy.Origin with { SessionVersion = copy.Origin.SessionVersion + 1 };
        copy.AddAttribute("x-copy");
        copy.Timings.Add("1 2");
        copy.Bandwidths.Add("AS:1");
        foreach (var m in copy.Media)
        {
            m.RemoveAttributes("candidate");
            m.AddAttribute("x-copy", "1");
            m.Formats.Add("127");
            m.Port = 0;
        }
        copy.Media.RemoveAt(0);
        Assert.Equal(text, original.ToString());
        Assert.NotEqual(text, copy.ToString());
    }
}
