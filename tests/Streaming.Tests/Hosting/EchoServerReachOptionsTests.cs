using System.Net;
using Transport.Samples.EchoServer;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.Hosting;

/// <summary>The echo server's options for being reached from other machines: where UDP is bound, the 1:1 NAT address, STUN and TURN.</summary>
public sealed class EchoServerReachOptionsTests
{
    [Fact]
    public void TheReachOptionsAreParsedIntoTheLibrarysOptions()
    {
        var s = EchoServerSettings.Parse([
            "--udp-address", "127.0.0.1", "--udp-address", "::1", "--public-address", "203.0.113.7", "--public-address", "198.51.100.2/10.0.0.5",
            "--stun-server", "stun:192.0.2.10", "--stun-server", "stun:[2001:db8::1]:3479", "--turn-server", "turn:192.0.2.11:3478?transport=tcp|u|p",
        ]);
        Assert.Equal([IPAddress.Loopback, IPAddress.IPv6Loopback], s.UdpAddresses);
        Assert.Equal("127.0.0.1,::1", s.Sessions.UdpAddress);
        var pc = s.Sessions.Transport.PeerConnection;
        Assert.Equal([new PublicAddress(IPAddress.Parse("203.0.113.7")), new PublicAddress(IPAddress.Parse("198.51.100.2"), IPAddress.Parse("10.0.0.5"))],
            pc.PublicAddresses);
        Assert.Equal([IPEndPoint.Parse("192.0.2.10:3478"), IPEndPoint.Parse("[2001:db8::1]:3479")], pc.Ice.StunServers);
        var turn = Assert.Single(pc.Ice.TurnServers);
        Assert.Equal(("192.0.2.11", 3478, Transport.Ice.Turn.TurnTransport.Tcp, "u", "p"),
            (turn.Host, turn.Port, turn.Transport, turn.Username, turn.Password));
    }

    [Fact]
    public void TheTestPatternIsOnByDefaultAndOffWithItsFlagAndABuiltServerThatNeverStartsRunsNone()
    {
        Assert.True(EchoServerSettings.Parse([]).TestPattern);
        var off = EchoServerSettings.Parse(["--no-test-pattern"]);
        Assert.False(off.TestPattern);
        var instance = EchoServerApp.Build(off with { Urls = "http://127.0.0.1:0", Sessions = new() { UdpPort = 0 } });
        Assert.Null(instance.TestPattern);
        instance.App.DisposeAsync().AsTask().GetAwaiter().GetResult();
        var on = EchoServerApp.Build(new EchoServerSettings { Urls = "http://127.0.0.1:0", Sessions = new() { UdpPort = 0 } });
        Assert.NotNull(on.TestPattern);
        Assert.Equal(0, on.TestPattern!.Ticks);                 // not started: no timer
        on.App.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    [Theory]
    [InlineData("http://127.0.0.1:8080", "127.0.0.1")]
    [InlineData("http://0.0.0.0:8080", "*")]
    [InlineData("http://[::]:8080", "*")]
    [InlineData("http://example.test:8080", "*")]
    [InlineData("http://10.1.2.3:8080;http://[2001:db8::5]:8080", "10.1.2.3,2001:db8::5")]
    public void WithoutUdpAddressTheLibrarysAddressIsTheOneTheUrlsName(string urls, string expected) =>
        Assert.Equal(expected, EchoServerSettings.Parse(["--urls", urls]).Sessions.UdpAddress);

    [Theory]
    [InlineData("--udp-address", "example.test")]
    [InlineData("--public-address", "0.0.0.0")]
    [InlineData("--stun-server", "turn:192.0.2.1")]
    [InlineData("--turn-server", "turns:192.0.2.1?transport=udp|u|p")]
    [InlineData("--turn-server", "turn:192.0.2.1|only-a-user")]
    public void BadValuesAreRefusedWithTheirReason(string option, string value)
    {
        var e = Record.Exception(() => EchoServerSettings.Parse([option, value]));
        Assert.True(e is FormatException or ArgumentException, e?.ToString() ?? "no exception");
    }

    [Theory]
    [InlineData("http://127.0.0.1:0", new string[0], "127.0.0.1")]
    [InlineData("http://0.0.0.0:0", new[] { "--udp-address", "127.0.0.1" }, "127.0.0.1")]
    public async Task TheUdpPortIsBoundWhereTheOptionsOrTheUrlsSay(string urls, string[] extra, string expected)
    {
        var settings = EchoServerSettings.Parse(["--urls", urls, "--udp-port", "0", .. extra]);
        var instance = EchoServerApp.Build(settings, _ => { });
        try
        {
            Assert.Equal(expected, Assert.Single(instance.Driver.LocalEndPoints).Address.ToString());
        }
        finally
        {
            await instance.Server.DisposeAsync();
            await instance.Driver.DisposeAsync();
            instance.WebRtc.Dispose();
            await instance.App.DisposeAsync();
        }
    }
}
