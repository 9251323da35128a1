using System.Net;
using System.Text;
using Transport.Dtls;
using Transport.Ice;
using Transport.Ice.Turn;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

using static RealPeerKit;

/// <summary>
/// Two of our peer connections with the relay-only policy (like a browser's iceTransportPolicy "relay") through
/// coturn on 127.0.0.1, over real UDP: relay candidates trickled, DTLS and SCTP wrapped for the server, a data
/// channel echoing both ways.
/// </summary>
public sealed class PeerConnectionRelayTests
{
    [Fact]
    public async Task TwoRelayOnlyPeerConnectionsOpenADataChannelThroughCoturn()
    {
        using var coturn = CoturnServer.Start();
        var turn = TurnServerConfig.Parse($"turn:{coturn.EndPoint.Address}:{coturn.EndPoint.Port}?transport=udp", CoturnServer.User, CoturnServer.Password);
        IceAgentOptions Ice(IceRole role) => new() { Role = role, TurnServers = [turn], TransportPolicy = IceTransportPolicy.Relay };

        await using var d1 = new UdpDriver();
        await using var d2 = new UdpDriver();
        d1.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        d2.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await using var a = new PeerConnection(d1, new PeerConnectionOptions { Certificate = Certificate, Ice = Ice(IceRole.Controlling) });
        await using var b = new PeerConnection(d2, new PeerConnectionOptions { Certificate = Certificate, Ice = Ice(IceRole.Controlled) });

        var offer = await a.CreateOfferAsync();
        var answer = await b.CreateAnswerAsync(offer);
        await a.SetRemoteDescriptionAsync(answer);
        var relayCandidates = new List<IceCandidate>();
        using var cts = new CancellationTokenSource(Patience);
        // Trickle: relay candidates come once the allocations are done, after the descriptions.
        async Task Forward(PeerConnection from, PeerConnection to)
        {
            try
            {
                await foreach (var e in from.ReadEventsAsync(cts.Token))
                    if (e is LocalCandidateGathered g)
                    {
                        lock (relayCandidates) relayCandidates.Add(g.Candidate);
                        await to.AddRemoteCandidateAsync(g.Candidate.ToSdp());
                    }
                    else if (e is DataChannelOpened) return;   // connected: the candidates that mattered are across
            }
            catch (OperationCanceledException) { }
        }
        var forwardA = Forward(a, b);
        var forwardB = Forward(b, a);
        var channel = await a.CreateDataChannelAsync("relayed").WaitAsync(Patience);
        await Task.WhenAll(forwardA, forwardB).WaitAsync(Patience);

        lock (relayCandidates)
        {
            Assert.NotEmpty(relayCandidates);
            Assert.All(relayCandidates, c => Assert.Equal(IceCandidateType.Relayed, c.Type));   // relay-only: nothing else signalled
            Assert.All(relayCandidates, c => Assert.InRange(c.Address.Port, coturn.MinRelayPort, coturn.MaxRelayPort));
        }
        Assert.Equal(ConnectionState.Connected, a.State);
        Assert.Equal(ConnectionState.Connected, b.State);

        // Data both ways through the relay.
        var remote = (await b.GetStatisticsAsync()).DatagramsReceived;
        await a.SendAsync(channel, "to b");
        cts.CancelAfter(Patience);
        string? atB = null;
        await foreach (var e in b.ReadEventsAsync(cts.Token))
            if (e is DataChannelMessageReceived m) { atB = Encoding.UTF8.GetString(m.Data); await b.SendAsync(m.Channel, "to a"); break; }
        Assert.Equal("to b", atB);
        string? atA = null;
        await foreach (var e in a.ReadEventsAsync(cts.Token))
            if (e is DataChannelMessageReceived m) { atA = Encoding.UTF8.GetString(m.Data); break; }
        Assert.Equal("to a", atA);
        Assert.True((await b.GetStatisticsAsync()).DatagramsReceived > remote);
    }
}
