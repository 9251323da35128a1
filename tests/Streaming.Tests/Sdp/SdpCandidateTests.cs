using Transport.Ice;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.Tests.Sdp;

public sealed class SdpCandidateTests
{
    [Fact]
    public void ParsesAHostCandidateWithExtensions()
    {
        var c = SdpCandidate.Parse("candidate:629795806 1 udp 2122260223 127.0.0.1 47039 typ host generation 0 network-id 1 network-cost 50");
        Assert.Equal(("629795806", 1, "udp", 2122260223u, "127.0.0.1", 47039, "host"),
            (c.Foundation, c.Component, c.Transport, c.Priority, c.Address, c.Port, c.Type));
        Assert.Equal("50", c.GetExtension("network-cost"));
        Assert.Null(c.GetExtension("ufrag"));
        Assert.Equal("candidate:629795806 1 udp 2122260223 127.0.0.1 47039 typ host generation 0 network-id 1 network-cost 50", c.ToString());
    }

    [Fact]
    public void ParsesAServerReflexiveCandidateWithRelatedAddress()
    {
        var c = SdpCandidate.Parse("a=candidate:842163049 1 UDP 1677729535 203.0.113.7 61665 typ srflx raddr 10.0.0.5 rport 61665");
        Assert.Equal("udp", c.Transport);
        Assert.Equal("srflx", c.Type);
        Assert.Equal("10.0.0.5", c.RelatedAddress);
        Assert.Equal(61665, c.RelatedPort);
        Assert.Equal("842163049 1 udp 1677729535 203.0.113.7 61665 typ srflx raddr 10.0.0.5 rport 61665", c.ToAttributeValue());
    }

    [Fact]
    public void ParsesAnIpv6Candidate()
    {
        var c = SdpCandidate.Parse("candidate:1 1 udp 2113937151 ::1 50000 typ host");
        Assert.Equal("::1", c.Address);
    }

    [Theory]
    [InlineData("candidate:1 1 udp 2113937151 127.0.0.1 5000 type host", "'typ' expected")]
    [InlineData("candidate:1 1 udp 2113937151 127.0.0.1", "needs foundation")]
    [InlineData("candidate:1 0 udp 2113937151 127.0.0.1 5000 typ host", "component")]
    [InlineData("candidate:1 1 udp -5 127.0.0.1 5000 typ host", "priority")]
    [InlineData("candidate:1 1 udp 0 127.0.0.1 5000 typ host", "priority")]
    [InlineData("candidate:1 1 udp 5 127.0.0.1 99999 typ host", "port")]
    [InlineData("candidate:1 1 udp 5 127.0.0.1 9 typ srflx raddr", "no value")]
    [InlineData("candidate:1 1 udp 5 127.0.0.1 9 typ srflx raddr 1.2.3.4 rport x", "rport")]
    public void RejectsMalformedCandidatesClearly(string text, string reason)
    {
        var e = Assert.Throws<SdpParseException>(() => SdpCandidate.Parse(text));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }
    /// <summary>Candidates pass between ICE and the peer connection as objects: the same fields as through text, both ways.</summary>
    [Theory]
    [InlineData("candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host")]
    [InlineData("candidate:2 1 udp 1694498815 203.0.113.7 4000 typ srflx raddr 192.168.1.2 rport 4000")]
    [InlineData("candidate:3 1 udp 16777215 192.0.2.1 50000 typ relay raddr 10.0.0.1 rport 1000")]
    [InlineData("candidate:4 1 tcp 1518280447 10.0.0.2 9 typ host tcptype active")]
    [InlineData("candidate:5 1 tcp 1518280446 2001:db8::7 7000 typ host tcptype passive")]
    public void CandidatesConvertWithoutTextAsTheyWouldThroughIt(string text)
    {
        Assert.True(IceCandidate.TryParse(text, out var ice));
        var signalled = SdpCandidate.From(ice);
        Assert.Equal(ice.ToSdp(), signalled.ToString());
        Assert.Equal(text, signalled.ToString());
        Assert.True(SdpCandidate.Parse(text).TryToIceCandidate(out var back));
        Assert.Equal(ice, back);
        Assert.Equal(text, back.ToSdp());
    }

    [Theory]
    [InlineData("candidate:1 1 udp 2130706431 3b5d0e6c-9a7e-4d3b-8f1a-1c2d3e4f5a6b.local 5000 typ host")]   // mDNS: no IP address
    [InlineData("candidate:1 1 sctp 2130706431 10.0.0.1 5000 typ host")]
    [InlineData("candidate:1 1 udp 2130706431 10.0.0.1 5000 typ other")]
    [InlineData("candidate:1 1 tcp 2130706431 10.0.0.1 5000 typ host")]                                         // TCP without tcptype
    public void CandidatesIceCannotUseAreSdpButNotIce(string text)
    {
        var c = SdpCandidate.Parse(text);
        Assert.False(c.TryToIceCandidate(out _));
        Assert.False(IceCandidate.TryParse(text, out _));
    }

    /// <summary>One grammar: what the SDP parser refuses, ICE's parser refuses too.</summary>
    [Theory]
    [InlineData("candidate:1 1 udp 2113937151 127.0.0.1 5000 type host")]
    [InlineData("candidate:1 0 udp 2113937151 127.0.0.1 5000 typ host")]
    [InlineData("candidate:1 1 udp 0 127.0.0.1 5000 typ host")]
    [InlineData("candidate:1 1 udp 5 127.0.0.1 99999 typ host")]
    [InlineData("candidate:1 1 udp 5 127.0.0.1 9 typ srflx raddr")]
    [InlineData("candidate:1 1 udp 5 127.0.0.1 9 typ srflx raddr 1.2.3.4 rport x")]
    // RFC 8839 5.1: the foundation is 1*32 ice-char. A doubled prefix (found by the candidate fuzz target) read as the
    // foundation "candidate:" and was written back as text that no longer parsed.
    [InlineData("candidate:candidate:  1 tcp 47 1 9 typ h")]
    [InlineData("candidate:a-b 1 udp 5 127.0.0.1 9 typ host")]
    public void BothParsersShareOneGrammar(string text)
    {
        Assert.Throws<SdpParseException>(() => SdpCandidate.Parse(text));
        Assert.False(IceCandidate.TryParse(text, out _));
        Assert.False(IceCandidateFields.TryRead(text, out _, out var reason));
        Assert.False(string.IsNullOrEmpty(reason));
    }
}
