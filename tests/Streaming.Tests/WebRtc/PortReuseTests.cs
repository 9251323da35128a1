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
/// Found by the churn soak (about one cycle in 800 failed): a client vanished, and the next client got its
/// port from the system while the server's old connection still held the route of that address. The new connection
/// used to time out connecting (30 s), even after the old one ended. The same 5-tuple held by a live connection is
/// the "same 5-tuple twice" case, which the server cannot tell apart from this one when the offer comes: the new connection
/// fails at once with the typed reason (<see cref="FiveTupleInUseException"/>), the client can try again, and once
/// the old connection is released (its liveness timers) the address is free and the next attempt connects.
/// Real UDP on 127.0.0.1.
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
    public async Task ANewClientOnTheVanishedClientsPortIsRefusedAtOnceWhileTheOldConnectionHoldsTheRouteThenConnects()
    {
        await using var server = new UdpDriver();
        var serverEnd = server.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var first = new UdpDriver();
        var port = first.Bind(new IPEndPoint(IPAddress.Loopback, 0)).Port;
        var old = new PeerConnection(server, Options(IceRole.Controlled));
        var vanishing = new PeerConnection(first, Options(IceRole.Controlling));
        await ConnectAsync(vanishing, old, "first");
        Assert.Equal(1, server.RouteCount);

        // The first client vanishes: its socket closes, nothing is sent. The old connection lives on (ICE notices
        // after 5 s, fails after 30 s by default).
        await first.DisposeAsync();
        await vanishing.DisposeAsync();
        await using var second = new UdpDriver();
        var secondEnd = second.Bind(new IPEndPoint(IPAddress.Loopback, port));   // the same address and port
        var clock = Stopwatch.StartNew();
        await using (var refused = new PeerConnection(server, Options(IceRole.Controlled)))
        await using (var early = new PeerConnection(second, Options(IceRole.Controlling)))
        {
            var e = await Assert.ThrowsAsync<FiveTupleInUseException>(async () => await refused.CreateAnswerAsync(await early.CreateOfferAsync()));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
            Assert.Equal((serverEnd, secondEnd), (e.Local, e.Remote));
            Assert.Equal(ConnectionState.Failed, refused.State);
            Assert.Contains("5-tuple in use", refused.Reason!.Detail, StringComparison.Ordinal);
        }
        Assert.Equal(1, server.RouteCount);                    // still the old connection's

        // The old connection is released (here at once; in a server by its timers): the address is free again.
        await old.DisposeAsync();
        Assert.Equal(0, server.RouteCount);
        await using var fresh = new PeerConnection(server, Options(IceRole.Controlled));
        await using var client = new PeerConnection(second, Options(IceRole.Controlling));
        var channel = await ConnectAsync(client, fresh, "second");
        await client.SendAsync(channel, "hello");
        var message = await RealPeerKit.NextAsync<DataChannelMessageReceived>(fresh);
        output.WriteLine($"refused in under 5 s, then connected and a message through {clock.Elapsed.TotalMilliseconds:0} ms after the first try");
        Assert.Equal("hello", Encoding.UTF8.GetString(message.Data));
        Assert.Equal(1, server.RouteCount);
        await fresh.DisposeAsync();
        Assert.Equal((0, 0, 0), (server.PeerCount, server.RouteCount, server.TimerCount));
    }
}
