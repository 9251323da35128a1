using System.Diagnostics;
using System.Net;
using System.Text;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// Found by the churn soak (issue 16; about one cycle in 800 failed): a client vanished, and the next client got its
/// port from the system while the server's old connection still held the route of that address. The new client's
/// checks went to the old connection (dropped), and the new connection, whose own send could not learn the taken
/// route, never got a DTLS datagram, even after the old one ended: it timed out connecting. The same happens to a
/// client behind a NAT that reuses its mapping for a page reload. Now a check naming another peer's fragment reaches
/// that peer, and its answer to an authenticated check takes the route over. Real UDP on 127.0.0.1.
/// </summary>
public sealed class PortReuseTests(ITestOutputHelper output)
{
    private static PeerConnectionOptions Options(IceRole role) => new() { Certificate = RealPeerKit.Certificate, Ice = new IceAgentOptions { Role = role } };

    private static async Task<DataChannel> ConnectAsync(PeerConnection client, PeerConnection server, string label)
    {
        var offer = await client.CreateOfferAsync();
        await client.SetRemoteDescriptionAsync(await server.CreateAnswerAsync(offer));
        return await client.CreateDataChannelAsync(label).WaitAsync(RealPeerKit.Patience);
    }

    [Fact]
    public async Task ANewClientOnTheVanishedClientsPortConnectsWhileTheOldConnectionStillHoldsTheRoute()
    {
        await using var server = new UdpDriver();
        server.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var first = new UdpDriver();
        var port = first.Bind(new IPEndPoint(IPAddress.Loopback, 0)).Port;
        await using var old = new PeerConnection(server, Options(IceRole.Controlled));
        var vanishing = new PeerConnection(first, Options(IceRole.Controlling));
        await ConnectAsync(vanishing, old, "first");
        Assert.Equal(1, server.RouteCount);

        // The first client vanishes: its socket closes, nothing is sent. The old connection lives on (ICE notices
        // after 5 s, fails after 30 s by default).
        await first.DisposeAsync();
        await vanishing.DisposeAsync();
        await using var second = new UdpDriver();
        second.Bind(new IPEndPoint(IPAddress.Loopback, port));   // the same address and port
        await using var fresh = new PeerConnection(server, Options(IceRole.Controlled));
        await using var client = new PeerConnection(second, Options(IceRole.Controlling));
        var clock = Stopwatch.StartNew();
        var channel = await ConnectAsync(client, fresh, "second");
        await client.SendAsync(channel, "hello");
        var message = await RealPeerKit.NextAsync<DataChannelMessageReceived>(fresh);
        output.WriteLine($"connected and a message through in {clock.Elapsed.TotalMilliseconds:0} ms; old connection {old.State}; routes taken over {server.Counters.RoutesTakenOver}");

        Assert.Equal("hello", Encoding.UTF8.GetString(message.Data));
        Assert.Equal(2, server.PeerCount);                     // the old connection still runs: it was not waited for
        Assert.Equal(1, server.Counters.RoutesTakenOver);
        Assert.Equal(1, server.RouteCount);                    // one address, now the new connection's
        await old.DisposeAsync();
        Assert.Equal(1, server.RouteCount);                    // the old connection's going leaves the new route alone
        await fresh.DisposeAsync();
        Assert.Equal((0, 0, 0), (server.PeerCount, server.RouteCount, server.TimerCount));
    }
}
