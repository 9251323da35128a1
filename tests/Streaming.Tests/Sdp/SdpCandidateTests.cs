using Transport.Streaming.Sdp;

namespace Transport.Streaming.Tests.Sdp;

public sealed class SdpCandidateTests
{
    [Fact]
    public void ParsesAHostCandidateWithExtensions()
    {
        var c = SdpCandidate.Parse("candidate:629795806 1 udp 2122260223 127.0.0.1 47039 typ host generation 0 network-id 1 network-cost 50");
        Assert.Equal(("629795806", 1, "udp", 2122260223u, "127.0.0.1", 47039, "host"), (c.Foundation, c.Component, c.Transport, c.Priority, c.Address, c.Port, c.Type));
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
}
