using System.Diagnostics;
using System.Net;
using System.Text;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.WebRtc;

using static RealPeerKit;

/// <summary>
/// The same 5-tuple twice: a second connection to a remote address and port that another connection on the same local
/// socket already uses fails at once with a typed reason, where it used to time out after 30 s.
/// </summary>
public sealed class FiveTupleInUseTests
{
    [Fact]
    public async Task ASecondConnectionOnTheSameSocketPairFailsAtOnceOnBothSidesAndTheFirstGoesOn()
    {
        await using var server = new UdpDriver();
        await using var client = new UdpDriver();
        var serverEnd = server.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var clientEnd = client.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var options = new PeerConnectionOptions { Certificate = Certificate };

        await using var c1 = new PeerConnection(client, options);
        await using var s1 = new PeerConnection(server, options);
        await c1.SetRemoteDescriptionAsync(await s1.CreateAnswerAsync(await c1.CreateOfferAsync()));
        var channel = await c1.CreateDataChannelAsync("first").WaitAsync(Patience);

        // The server side: the offer's candidate is the client socket, which s1 already talks to from the server socket.
        await using var c2 = new PeerConnection(client, options);
        await using var s2 = new PeerConnection(server, options);
        var clock = Stopwatch.StartNew();
        var onServer = await Assert.ThrowsAsync<FiveTupleInUseException>(async () => await s2.CreateAnswerAsync(await c2.CreateOfferAsync()));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Equal(serverEnd, onServer.Local);
        Assert.Equal(clientEnd, onServer.Remote);
        var conflict = await NextAsync<FiveTupleInUse>(s2);
        Assert.Equal(clientEnd, conflict.Remote);
        var failed = await NextAsync<ConnectionStateChanged>(s2, e => e.State == ConnectionState.Failed);
        Assert.Equal(ConnectionLayer.Ice, failed.Reason.Layer);
        Assert.Contains("5-tuple in use", failed.Reason.Detail, StringComparison.Ordinal);
        Assert.Equal(ConnectionState.Failed, s2.State);

        // The client side, answering this time: the server socket is already c1's remote on the client socket.
        await using var s3 = new PeerConnection(server, options);
        await using var c3 = new PeerConnection(client, options);
        var onClient = await Assert.ThrowsAsync<FiveTupleInUseException>(async () => await c3.CreateAnswerAsync(await s3.CreateOfferAsync()));
        Assert.Equal(clientEnd, onClient.Local);
        Assert.Equal(serverEnd, onClient.Remote);
        Assert.Equal(ConnectionState.Failed, c3.State);
        Assert.Contains("5-tuple in use", c3.Reason!.Detail, StringComparison.Ordinal);

        // The first connection is untouched.
        Assert.Equal(ConnectionState.Connected, c1.State);
        await c1.SendAsync(channel, "still here");
        var message = await NextAsync<DataChannelMessageReceived>(s1);
        Assert.Equal("still here", Encoding.UTF8.GetString(message.Data));
        Assert.Equal(0, server.Counters.PeerErrors);
    }

    [Fact]
    public async Task TwoConnectionsStartedTogetherOnOneSocketPairLeaveOneConnectedAndFailTheOtherWithTheReason()
    {
        // Both descriptions are applied before either connection sent anything, so no route exists yet when they are
        // checked: the driver finds the conflict when the second connection's check would leave (a race, as when two
        // sessions from one client start at once).
        await using var server = new UdpDriver();
        await using var client = new UdpDriver();
        server.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        client.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var options = new PeerConnectionOptions { Certificate = Certificate };
        await using var c1 = new PeerConnection(client, options);
        await using var s1 = new PeerConnection(server, options);
        await using var c2 = new PeerConnection(client, options);
        await using var s2 = new PeerConnection(server, options);
        var o1 = await c1.CreateOfferAsync();
        var o2 = await c2.CreateOfferAsync();
        var clock = Stopwatch.StartNew();
        var a1 = s1.CreateAnswerAsync(o1);
        var a2 = s2.CreateAnswerAsync(o2);
        var outcomes = new List<Exception?>();
        foreach (var (c, a) in new[] { (c1, a1), (c2, a2) })
        {
            // The server's answer may already fail (its check found the route taken), or the client's description.
            try { await c.SetRemoteDescriptionAsync(await a); outcomes.Add(null); }
            catch (FiveTupleInUseException e) { outcomes.Add(e); }
        }
        // Wait (bounded) until one pair is Connected on both sides and the other has a side Failed for the 5-tuple.
        bool Settled(PeerConnection c, PeerConnection s) => c.State == ConnectionState.Connected && s.State == ConnectionState.Connected;
        bool Lost(PeerConnection c, PeerConnection s) => c.State == ConnectionState.Failed || s.State == ConnectionState.Failed;
        bool Done() => (Settled(c1, s1) && Lost(c2, s2)) || (Settled(c2, s2) && Lost(c1, s1));
        while (clock.Elapsed < Patience && !Done()) await Task.Delay(20);
        Assert.True(Done(), $"c1 {c1.State} s1 {s1.State} c2 {c2.State} s2 {s2.State}");
        var (lc, ls) = Settled(c1, s1) ? (c2, s2) : (c1, s1);
        var loser = lc.State == ConnectionState.Failed ? lc : ls;
        Assert.Contains("5-tuple in use", loser.Reason!.Detail, StringComparison.Ordinal);
        // Well before ICE's or DTLS's own timeouts (the failure used to take 30 s).
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"took {clock.Elapsed}");
        // The loser's own call threw, or it failed on the driver's refusal (when both descriptions were applied first).
        Assert.True(outcomes.Any(e => e is not null) || client.Counters.FiveTupleConflicts + server.Counters.FiveTupleConflicts > 0);
    }
}
