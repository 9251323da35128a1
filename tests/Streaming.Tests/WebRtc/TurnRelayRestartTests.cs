using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using Transport.Ice;
using Transport.Ice.Turn;
using Transport.Sctp;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

using static RealPeerKit;

/// <summary>
/// Relays that survive (issue 20) with a real TURN server: our client, relay-only through coturn (started by the test
/// on 127.0.0.1, over TCP or UDP), and our server (host candidates) with a reliable ordered data channel that carries a
/// numbered stream. Mid-session coturn is killed and started again on the same port: the client's agent learns that
/// its allocation is gone (the TCP connection closed; over UDP the Refresh it sends when the pair goes silent is
/// refused), allocates again, trickles the new relayed candidate, and the connection comes back on it; every message
/// arrives exactly once, in order.
/// </summary>
public sealed class TurnRelayRestartTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Theory]
    [InlineData("tcp")]
    [InlineData("udp")]
    public async Task CoturnRestartedMidSessionTheRelayedConnectionComesBackOnANewAllocationAndNoMessageIsLost(string transport)
    {
        var coturn = CoturnServer.Start(tcp: true);
        try
        {
            await using var d1 = new UdpDriver();
            await using var d2 = new UdpDriver();
            d1.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            d2.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var turn = TurnServerConfig.Parse($"turn:127.0.0.1:{coturn.Port}?transport={transport}", CoturnServer.User, CoturnServer.Password);
            await using var client = new PeerConnection(d1, new PeerConnectionOptions
            {
                Certificate = Certificate,
                Ice = new IceAgentOptions { Role = IceRole.Controlling, TurnServers = [turn], TransportPolicy = IceTransportPolicy.Relay },
            });
            await using var server = new PeerConnection(d2,
                new PeerConnectionOptions { Certificate = Certificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });

            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            var clientStates = new ConcurrentQueue<ConnectionState>();
            var serverStates = new ConcurrentQueue<ConnectionState>();
            var relayed = new ConcurrentQueue<IceCandidate>();
            var received = new ConcurrentQueue<int>();
            var clientOpen = new TaskCompletionSource<DataChannel>(TaskCreationOptions.RunContinuationsAsynchronously);

            // One reader of each connection's events: candidates trickle to the other side for the whole session.
            async Task Run(PeerConnection from, PeerConnection to, ConcurrentQueue<ConnectionState> states)
            {
                try
                {
                    await foreach (var e in from.ReadEventsAsync(cts.Token))
                        switch (e)
                        {
                            case LocalCandidateGathered g:
                                if (from == client) relayed.Enqueue(g.Candidate);
                                await to.AddRemoteCandidateAsync(g.Candidate.ToSdp());
                                break;
                            case ConnectionStateChanged s:
                                states.Enqueue(s.State);
                                break;
                            case DataChannelOpened o when from == client:
                                clientOpen.TrySetResult(o.Channel);
                                break;
                            case DataChannelMessageReceived m when from == server:
                                received.Enqueue(int.Parse(Encoding.UTF8.GetString(m.Data), System.Globalization.CultureInfo.InvariantCulture));
                                break;
                        }
                }
                catch (OperationCanceledException) { }
                catch (InvalidOperationException) { } // the other side closed at the end
            }
            var offer = await client.CreateOfferAsync();
            var answer = await server.CreateAnswerAsync(offer);
            await client.SetRemoteDescriptionAsync(answer);
            var runClient = Run(client, server, clientStates);
            var runServer = Run(server, client, serverStates);
            _ = await client.CreateDataChannelAsync("numbered").WaitAsync(Patience);
            var channel = await clientOpen.Task.WaitAsync(Patience);
            Assert.All(relayed, c => Assert.Equal(IceCandidateType.Relayed, c.Type));
            var firstRelay = Assert.Single(relayed);

            // The numbered stream: one message every 10 ms, through the restart (queued while Disconnected).
            var sent = 0;
            var stop = false;
            var sender = Task.Run(async () =>
            {
                while (!Volatile.Read(ref stop))
                {
                    await client.SendAsync(channel, sent.ToString(System.Globalization.CultureInfo.InvariantCulture), cts.Token);
                    sent++;
                    await Task.Delay(10, cts.Token);
                }
            });
            await WaitUntil(() => received.Count >= 100, Patience, "100 messages before the restart");

            // coturn is killed and started again on the same port (a new process: it knows none of the allocations).
            var restart = Stopwatch.StartNew();
            coturn = CoturnServer.Restart(coturn);
            // The client comes back on a new relayed candidate (a new allocation), and messages flow again.
            await WaitUntil(() => relayed.Count >= 2 && clientStates.Contains(ConnectionState.Disconnected) && client.State == ConnectionState.Connected,
                TimeSpan.FromSeconds(45), $"the client back on a new allocation (states {string.Join(",", clientStates)})");
            var recoveredAfter = restart.Elapsed;
            var before = received.Count;
            await WaitUntil(() => received.Count >= before + 100, Patience, "100 messages after the recovery");
            Volatile.Write(ref stop, true);
            await sender.WaitAsync(Patience);
            await WaitUntil(() => received.Count >= sent, TimeSpan.FromSeconds(60), $"all {sent} messages ({received.Count} so far)");

            // Every message exactly once, in order; the connection never failed on either side.
            Assert.Equal(Enumerable.Range(0, sent), received);
            Assert.DoesNotContain(ConnectionState.Failed, clientStates);
            Assert.DoesNotContain(ConnectionState.Failed, serverStates);
            Assert.Equal(ConnectionState.Connected, server.State);
            var second = relayed.Last();
            Assert.Equal(IceCandidateType.Relayed, second.Type);
            Assert.NotEqual(firstRelay.Address, second.Address);
            Assert.InRange(recoveredAfter, TimeSpan.Zero, TimeSpan.FromSeconds(45));
            output.WriteLine($"TURN over {transport}: back on a new allocation {recoveredAfter.TotalSeconds:0.00} s after the restart began " +
                $"(coturn's own start included), {sent} messages, all delivered once in order");
            await cts.CancelAsync();
            await Task.WhenAll(runClient, runServer).WaitAsync(Patience);
        }
        finally { coturn.Dispose(); }
    }

    // Polls a condition every 50 ms (bounded by the limit): the connections run on their own threads.
    private static async Task WaitUntil(Func<bool> condition, TimeSpan limit, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > limit) throw new TimeoutException($"{what}: not within {limit.TotalSeconds} s");
            await Task.Delay(50);
        }
    }
}
