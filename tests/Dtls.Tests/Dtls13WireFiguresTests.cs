using Transport.TestKit;
using Xunit.Abstractions;

namespace Transport.Dtls.Tests;

/// <summary>
/// Handshake bytes on the wire and flights for DTLS 1.2 and 1.3, ours with ours over a clean
/// virtual link, MTU 1200, mutual authentication with ECDSA P-256, use_srtp. Lines start with "dtls-wire:".
/// </summary>
public sealed class Dtls13WireFiguresTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(DtlsVersion.Dtls12, DtlsNamedGroup.X25519, 1000, 2000)]
    [InlineData(DtlsVersion.Dtls13, DtlsNamedGroup.X25519, 1000, 2200)]
    [InlineData(DtlsVersion.Dtls13, DtlsNamedGroup.X25519MLKEM768, 3000, 4500)]
    public void HandshakeBytesAndFlights(DtlsVersion version, DtlsNamedGroup group, int min, int max)
    {
        var (client, server, driver) = Pairs13.Create(o => o with { MaxVersion = version, Groups = [group] },
            o => o with { MaxVersion = version, Groups = [group] });
        var bytes = new[] { 0, 0 };
        var datagrams = new[] { 0, 0 };
        var flights = new List<(LinkEnd, TimeSpan)>();
        driver.Link.AddFilter(null, _ => true, _ => FilterAction.Pass);
        driver.Link.ClearFilters();
        foreach (var end in new[] { LinkEnd.A, LinkEnd.B })
            driver.Link.AddFilter(end, d =>
            {
                bytes[(int)end] += d.Length;
                datagrams[(int)end]++;
                if (flights.Count == 0 || flights[^1] != (end, driver.Now)) flights.Add((end, driver.Now));
                return false;
            }, _ => FilterAction.Pass);
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server) && !client.Connection.AwaitingAck, TimeSpan.FromSeconds(5)));
        driver.RunFor(TimeSpan.FromMilliseconds(200));
        output.WriteLine($"dtls-wire: {version} {group}: client {bytes[0]} B in {datagrams[0]} datagrams, server {bytes[1]} B in {datagrams[1]} datagrams, " +
            $"total {bytes[0] + bytes[1]} B, {flights.Count} flights (the 1.3 ACK counted)");
        Assert.InRange(bytes[0] + bytes[1], min, max);
        Assert.Equal(version == DtlsVersion.Dtls12 ? 4 : 4, flights.Count);
    }
}
