using System.Net;
using System.Net.Sockets;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;
using static Transport.Streaming.Io.HostAddresses;

namespace Transport.Streaming.Tests.Io;

/// <summary>Which host addresses the UDP port is bound on, how URLs name one, and the 1:1 NAT address syntax.</summary>
public sealed class HostAddressesTests
{
    private static readonly Interface[] Host =
    [
        new("lo", true, true, [IPAddress.Loopback, IPAddress.IPv6Loopback]),
        new("eth0", true, false, [IPAddress.Parse("192.0.2.2"), IPAddress.Parse("fe80::1"), IPAddress.Parse("2001:db8::2")]),
        new("veth1", true, false, [IPAddress.Parse("10.77.0.1"), IPAddress.Parse("169.254.3.4")]),
        new("wlan0", false, false, [IPAddress.Parse("192.168.1.9")]),
    ];

    private static string[] Take(HostAddressOptions options, IReadOnlyList<Interface>? host = null) =>
        Select(host ?? Host, options).Select(a => a.ToString()).ToArray();

    [Fact]
    public void ByDefaultEveryUsableAddressOfAnInterfaceThatIsUpIPv4FirstWithoutLoopbackOrLinkLocal() =>
        Assert.Equal(["192.0.2.2", "10.77.0.1", "2001:db8::2"], Take(new HostAddressOptions()));

    [Fact]
    public void LoopbackIsTakenWhenNothingElseIsThereOrWhenAskedFor()
    {
        Assert.Equal(["127.0.0.1", "::1"], Take(new HostAddressOptions(), [Host[0], Host[3]]));
        Assert.Equal(["192.0.2.2", "10.77.0.1", "127.0.0.1", "2001:db8::2", "::1"], Take(new HostAddressOptions { IncludeLoopback = true }));
        Assert.Equal(["192.0.2.2", "10.77.0.1", "169.254.3.4", "fe80::1", "2001:db8::2"], Take(new HostAddressOptions { IncludeLinkLocal = true }));
    }

    [Fact]
    public void InterfacesFamiliesAndAddressesRestrictTheChoice()
    {
        Assert.Equal(["10.77.0.1"], Take(new HostAddressOptions { Interfaces = ["veth1"] }));
        Assert.Equal(["192.0.2.2", "10.77.0.1"], Take(new HostAddressOptions { IncludeIPv6 = false }));
        Assert.Equal(["2001:db8::2"], Take(new HostAddressOptions { IncludeIPv4 = false }));
        // Named addresses are taken as they are (loopback too), only when the host has them on an interface that is up.
        Assert.Equal(["10.77.0.1", "127.0.0.1"],
            Take(new HostAddressOptions { Addresses = [IPAddress.Parse("10.77.0.1"), IPAddress.Loopback, IPAddress.Parse("192.168.1.9")] }));
        Assert.Equal(["192.0.2.2", "10.77.0.1"], Take(new HostAddressOptions { Addresses = [IPAddress.Any] }));
        Assert.Equal(["2001:db8::2"], Take(new HostAddressOptions { Addresses = [IPAddress.IPv6Any] }));
        Assert.Empty(Take(new HostAddressOptions { Addresses = [IPAddress.Parse("203.0.113.1")] }));
    }

    [Theory]
    [InlineData("http://127.0.0.1:8080", "127.0.0.1")]
    [InlineData("http://localhost:8080", "127.0.0.1")]
    [InlineData("http://10.77.0.1:8080/;https://[2001:db8::2]:8443", "10.77.0.1 2001:db8::2")]
    [InlineData("http://0.0.0.0:8080", "")]
    [InlineData("http://[::]:8080", "")]
    [InlineData("http://*:8080", "")]
    [InlineData("http://+:8080", "")]
    [InlineData("http://example.test:8080", "")]
    [InlineData("http://10.77.0.1:8080;http://0.0.0.0:9000", "")]
    public void UrlsNameTheAddressesToBindOrNoneForEvery(string urls, string expected) =>
        Assert.Equal(expected, string.Join(' ', NamedByUrls(urls)));

    [Fact]
    public async Task BindRefusesTheWildcardAndBindAllBindsOneSocketPerNamedAddress()
    {
        await using var driver = new UdpDriver();
        var e = Assert.Throws<ArgumentException>(() => driver.Bind(new IPEndPoint(IPAddress.Any, 0)));
        Assert.Contains("BindAll", e.Message, StringComparison.Ordinal);
        var bound = driver.BindAll(0, new HostAddressOptions { Addresses = [IPAddress.Loopback] });
        Assert.Equal(IPAddress.Loopback, Assert.Single(bound).Address);
        Assert.Equal(bound, driver.LocalEndPoints);
        var none = Assert.Throws<InvalidOperationException>(() => driver.BindAll(0, new HostAddressOptions { Addresses = [IPAddress.Parse("203.0.113.1")] }));
        Assert.Contains("203.0.113.1", none.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheSystemsOwnAddressesAreUnicastAndUsable()
    {
        var all = Enumerate();
        Assert.NotEmpty(all); // loopback at least
        Assert.All(all, a => Assert.False(a.Equals(IPAddress.Any) || a.IsIPv6Multicast || a.IsIPv6LinkLocal
            || a.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)));
    }

    [Fact]
    public void APublicAddressIsPublicOrPublicSlashLocal()
    {
        Assert.Equal(new PublicAddress(IPAddress.Parse("203.0.113.7")), PublicAddress.Parse("203.0.113.7"));
        Assert.Equal(new PublicAddress(IPAddress.Parse("203.0.113.7"), IPAddress.Parse("10.0.0.5")), PublicAddress.Parse("203.0.113.7/10.0.0.5"));
        Assert.Equal("203.0.113.7/10.0.0.5", PublicAddress.Parse("203.0.113.7/10.0.0.5").ToString());
        Assert.Throws<FormatException>(() => PublicAddress.Parse("example.test"));
        Assert.Throws<FormatException>(() => PublicAddress.Parse("0.0.0.0"));
        Assert.Throws<FormatException>(() => PublicAddress.Parse("203.0.113.7/2001:db8::1"));
    }
}
