using System.Net;
using System.Text;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.WebRtc;

using static RealPeerKit;

/// <summary>One port served by a group of two SO_REUSEPORT sockets (<see cref="UdpDriverOptions.ReceiveSockets"/>), over loopback.</summary>
public sealed class SocketGroupTests
{
    [Fact]
    public async Task ConnectionsToAPortServedByTwoSocketsConnectAndEchoWithOneCandidateEach()
    {
        if (!OperatingSystem.IsLinux()) return;   // a group is a Linux feature; elsewhere ReceiveSockets is 1
        await using var server = new UdpDriver(options: new UdpDriverOptions { ReceiveSockets = 2 });
        var port = server.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        Assert.Equal([port], server.LocalEndPoints);   // one address and port, whatever the group's size
        var options = new PeerConnectionOptions { Certificate = Certificate };
        var clients = new List<(UdpDriver Driver, PeerConnection Client, PeerConnection Server)>();
        try
        {
            // Eight clients, each on a socket of its own: the kernel spreads their 5-tuples over the two members.
            for (var i = 0; i < 8; i++)
            {
                var d = new UdpDriver();
                d.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                clients.Add((d, new PeerConnection(d, options), new PeerConnection(server, options)));
            }
            foreach (var (_, c, s) in clients)
            {
                var answer = await s.CreateAnswerAsync(await c.CreateOfferAsync());
                // One UDP host candidate for the whole group (the ICE-TCP listener adds its own TCP one).
                Assert.Single(answer.Split('\n'), l => l.StartsWith("a=candidate:", StringComparison.Ordinal)
                    && l.Contains(" udp ", StringComparison.OrdinalIgnoreCase));
                await c.SetRemoteDescriptionAsync(answer);
            }
            var i2 = 0;
            foreach (var (_, c, s) in clients)
            {
                var channel = await c.CreateDataChannelAsync("group").WaitAsync(Patience);
                var text = $"hello {i2++}";
                await c.SendAsync(channel, text);
                var m = await NextAsync<DataChannelMessageReceived>(s);
                Assert.Equal(text, Encoding.UTF8.GetString(m.Data));
                await s.SendAsync(m.Channel, m.Data);   // and back, from whichever member the connection lives on
                Assert.Equal(text, Encoding.UTF8.GetString((await NextAsync<DataChannelMessageReceived>(c)).Data));
                Assert.Equal(ConnectionState.Connected, s.State);
            }
            Assert.Equal(0, server.Counters.PeerErrors);
            Assert.Equal(0, server.Counters.DroppedUnknownPeer);
        }
        finally
        {
            foreach (var (d, c, s) in clients)
            {
                await c.DisposeAsync();
                await s.DisposeAsync();
                await d.DisposeAsync();
            }
        }
    }
}
