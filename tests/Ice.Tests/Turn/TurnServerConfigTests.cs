using System.Net;
using Transport.Ice.Stun;
using Transport.Ice.Turn;

namespace Transport.Ice.Tests.Turn;

/// <summary>Parsing of <c>turn:</c> and <c>turns:</c> URIs (RFC 7065 section 3.1).</summary>
public sealed class TurnServerConfigTests
{
    [Theory]
    [InlineData("turn:example.org", "example.org", 3478, TurnTransport.Udp, false)]
    [InlineData("turn:example.org:3479", "example.org", 3479, TurnTransport.Udp, false)]
    [InlineData("turn:example.org?transport=tcp", "example.org", 3478, TurnTransport.Tcp, false)]
    [InlineData("turn:127.0.0.1:19302?transport=udp", "127.0.0.1", 19302, TurnTransport.Udp, false)]
    [InlineData("turn:[2001:db8::1]:3478?transport=tcp", "2001:db8::1", 3478, TurnTransport.Tcp, false)]
    [InlineData("turn:[::1]", "::1", 3478, TurnTransport.Udp, false)]
    [InlineData("turns:example.org", "example.org", 5349, TurnTransport.Tcp, true)]
    [InlineData("TURNS:example.org:443?transport=TCP", "example.org", 443, TurnTransport.Tcp, true)]
    public void ParsesTheForms(string uri, string host, int port, TurnTransport transport, bool secure)
    {
        var config = TurnServerConfig.Parse(uri, "user", "pass");
        Assert.Equal(host, config.Host);
        Assert.Equal(port, config.Port);
        Assert.Equal(transport, config.Transport);
        Assert.Equal(secure, config.Secure);
        Assert.Equal("user", config.Username);
        Assert.Equal("pass", config.Password);
    }

    [Theory]
    [InlineData("stun:example.org")]
    [InlineData("turn://example.org")]
    [InlineData("turn:")]
    [InlineData("turn:example.org:0")]
    [InlineData("turn:example.org:70000")]
    [InlineData("turn:example.org:abc")]
    [InlineData("turn:2001:db8::1")]
    [InlineData("turn:[2001:db8::1")]
    [InlineData("turn:[192.0.2.1]")]
    [InlineData("turn:example.org?transport=sctp")]
    [InlineData("turn:example.org?foo=bar")]
    [InlineData("turn:exa mple.org")]
    public void RefusesWhatIsNotATurnUri(string uri)
    {
        Assert.False(TurnServerConfig.TryParse(uri, "", "", out _, out var error));
        Assert.NotEmpty(error);
        Assert.Throws<FormatException>(() => TurnServerConfig.Parse(uri));
    }

    [Fact]
    public void BuildsClientOptionsFromAnAddressLiteral()
    {
        var options = TurnClientOptions.FromConfig(TurnServerConfig.Parse("turn:127.0.0.1:3479?transport=tcp", "u", "p"));
        Assert.Equal(StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Loopback, 3479)), options.Server);
        Assert.Equal(TurnTransport.Tcp, options.Transport);
        Assert.Equal("u", options.Username);
    }

    [Fact]
    public void TurnsGivesTheTcpClientAndKeepsTheNameForTls()
    {
        // TLS is the driver's, below the stream framing: the client is the TCP one.
        var config = TurnServerConfig.Parse("turns:127.0.0.1") with { ServerName = "turn.example.org" };
        Assert.Equal(TurnTransport.Tcp, TurnClientOptions.FromConfig(config).Transport);
        Assert.Equal("turn.example.org", config.TlsServerName);
        Assert.Equal("127.0.0.1", TurnServerConfig.Parse("turns:127.0.0.1").TlsServerName);
    }

    [Fact]
    public void TurnsOverUdpIsRefused() =>
        Assert.Throws<NotSupportedException>(() => TurnClientOptions.FromConfig(TurnServerConfig.Parse("turns:127.0.0.1?transport=udp")));

    [Fact]
    public void ANameNeedsResolvingFirst() =>
        Assert.Throws<ArgumentException>(() => TurnClientOptions.FromConfig(TurnServerConfig.Parse("turn:turn.example.org")));

    [Theory]
    [InlineData("turn:example.org", "turn:example.org:3478?transport=udp")]
    [InlineData("turns:[2001:db8::1]", "turns:[2001:db8::1]:5349?transport=tcp")]
    public void PrintsTheCanonicalUri(string uri, string canonical)
    {
        Assert.Equal(canonical, TurnServerConfig.Parse(uri).ToString());
        Assert.Equal(TurnServerConfig.Parse(uri) with { }, TurnServerConfig.Parse(canonical));
    }

    [Fact]
    public void BuildsClientOptionsFromAnIPv6Literal()
    {
        var options = TurnClientOptions.FromConfig(TurnServerConfig.Parse("turn:[::1]:3480", "u", "p"));
        Assert.True(options.Server.IsIPv6);
        Assert.Equal(3480, options.Server.Port);
        Assert.Equal(TurnTransport.Udp, options.Transport);
    }
}
