using System.Net;
using System.Net.Sockets;
using Transport.Ice;
using Transport.Ice.Stun;
using Transport.Streaming.Io;
using Transport.TestKit;

namespace Transport.Streaming.Tests.Io;

/// <summary>
/// The driver learns a route only for a remote address its peer answered, so requests naming a live ufrag with a wrong
/// MESSAGE-INTEGRITY, from many (loopback) sources, leave no state behind. Real sockets on 127.0.0.0/8 only.
/// </summary>
[Collection(RealTimeCollection.Name)]
public sealed class UdpDriverRoutingTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private static byte[] Check(string username, StunKey key)
    {
        var buffer = new byte[256];
        var id = new byte[12];
        Random.Shared.NextBytes(id);
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, id);
        w.AddString(StunAttributeType.Username, username);
        w.AddUInt32(StunAttributeType.Priority, 1_853_824_767);
        w.AddUInt64(StunAttributeType.IceControlling, 42);
        w.AddMessageIntegrity(key);
        w.AddFingerprint();
        return w.Written.ToArray();
    }

    /// <summary>Reads until a Binding success response (the agent's own checks may come first), at most 20 datagrams.</summary>
    private static bool ReceivedSuccess(Socket socket)
    {
        var buffer = new byte[512];
        for (var i = 0; i < 20; i++)
        {
            var n = socket.Receive(buffer);
            if (StunMessage.TryRead(buffer.AsSpan(0, n), out var m) && m.Type == StunMessageType.BindingSuccess) return true;
        }
        return false;
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        var end = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > end) throw new TimeoutException("timed out waiting for " + what);
            await Task.Delay(2);
        }
    }

    [Fact]
    public async Task RequestsWithAWrongIntegrityFromManySourcesAddNoRouteAndAGoodOneDoes()
    {
        await using var driver = new UdpDriver();
        var port = driver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var agent = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled });
        agent.AddHostCandidate(port);
        var peer = new IceAgentPeer(agent);
        await using var handle = driver.Register(peer);
        await handle.InvokeAsync(now => agent.StartGathering(now));
        var ufrag = agent.LocalCredentials.Ufrag;
        var wrongKey = StunKey.ShortTerm("not-the-password-of-the-agent");

        // 10,000 forged checks from 1,000 source addresses (127.0.1.1 to 127.0.4.232, one port each), in bursts the
        // receive buffer holds, each burst waited for before the next.
        const int Sources = 1000, PerSource = 10;
        var sent = 0;
        for (var s = 0; s < Sources; s++)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(new IPAddress([127, 0, (byte)(1 + s / 250), (byte)(1 + s % 250)]), 0));
            for (var i = 0; i < PerSource; i++) socket.SendTo(Check(ufrag + ":attacker", wrongKey), port);
            sent += PerSource;
            if (sent % 200 == 0) await WaitUntil(() => driver.Counters.Received >= sent, $"{sent} datagrams received");
        }
        await WaitUntil(() => driver.Counters.Received >= sent, "every forged check received");
        var unauthenticated = await handle.InvokeAsync(_ => agent.DroppedCount(IceDropReason.Unauthenticated));

        Assert.Equal(Sources * PerSource, unauthenticated);          // each reached the agent, which refused it
        Assert.Equal(Sources * PerSource, driver.Counters.UnroutedRequests);
        Assert.Equal(0, driver.RouteCount);

        // A check with the agent's password is answered, and its source becomes a route.
        using var good = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        good.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        good.ReceiveTimeout = (int)Patience.TotalMilliseconds;
        good.SendTo(Check(ufrag + ":peer", StunKey.ShortTerm(agent.LocalCredentials.Password)), port);
        var answer = new byte[512];
        var n = good.Receive(answer);
        Assert.True(StunMessage.TryRead(answer.AsSpan(0, n), out var response));
        Assert.Equal(StunMessageType.BindingSuccess, response.Type);
        Assert.Equal(1, driver.RouteCount);

        // The peer goes: its routes go with it.
        await handle.DisposeAsync();
        Assert.Equal(0, driver.RouteCount);
    }

    [Fact]
    public async Task ARouteIsForgottenWhenIceReleasesItsRemoteAddressWhileThePeerGoesOn()
    {
        // Virtual time: the agent's check to the address times out (its retransmissions, about 10 s) without waiting for it.
        var clock = new ManualClock();
        await using var driver = new UdpDriver(clock);
        var port = driver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var agent = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled });
        agent.AddHostCandidate(port);
        var peer = new IceAgentPeer(agent);
        await using var handle = driver.Register(peer);
        var remote = IceCredentials.Generate();
        await handle.InvokeAsync(now => { agent.StartGathering(now); agent.SetRemoteCredentials(remote, now); });
        var key = StunKey.ShortTerm(agent.LocalCredentials.Password);

        // An authenticated check from a new address: answered (the route is learnt), a peer-reflexive candidate and a
        // triggered check back, which nobody answers.
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.ReceiveTimeout = (int)Patience.TotalMilliseconds;
        socket.SendTo(Check(agent.LocalCredentials.Ufrag + ":" + remote.Ufrag, key), port);
        Assert.True(ReceivedSuccess(socket), "no answer to the authenticated check");
        Assert.Equal(1, driver.RouteCount);

        // Time passes in 100 ms steps (each step waited for by a call on the peer) until the check failed.
        for (var step = 0; step < 1200 && driver.RouteCount > 0; step++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(100));
            await handle.InvokeAsync(_ => 0);
        }
        var released = await handle.InvokeAsync(_ => agent.RemoteAddressesReleased);
        var pairs = await handle.InvokeAsync(_ => agent.CandidatePairs.Select(p => p.State).ToArray());
        Assert.Equal(0, driver.RouteCount);                  // before: kept until the peer went
        Assert.Equal(1, driver.Counters.RoutesForgotten);
        Assert.Equal(1, released);
        Assert.Equal([IceCandidatePairState.Failed], pairs);
        Assert.Equal(1, driver.PeerCount);                   // the peer goes on
        Assert.InRange(clock.Now, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(20));   // the check timed out after its retransmissions (9.9 s)

        // The address checks again: answered, routed again.
        var drain = new byte[512];
        for (var i = 0; i < 100 && socket.Available > 0; i++) socket.Receive(drain);   // the unanswered checks
        socket.SendTo(Check(agent.LocalCredentials.Ufrag + ":" + remote.Ufrag, key), port);
        Assert.True(ReceivedSuccess(socket), "no answer to the check after the release");
        Assert.Equal(1, driver.RouteCount);
    }

    [Fact]
    public async Task ACheckToAFiveTupleAnotherPeerOwnsIsNotSentAndThePeerIsToldWhileAServerRequestStillGoes()
    {
        await using var driver = new UdpDriver();
        var local = driver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        using var remote = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        remote.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        remote.ReceiveTimeout = (int)Patience.TotalMilliseconds;
        var remoteEnd = (IPEndPoint)remote.LocalEndPoint!;
        var a = new ToyPeer("a", "ufragA");
        var b = new ToyPeer("b", "ufragB");
        await using var ha = driver.Register(a);
        await using var hb = driver.Register(b);

        var first = ToyPeer.BindingRequest("them:ufragA");
        await ha.InvokeAsync(_ => a.Send(first, remoteEnd));   // a owns the 5-tuple from here on
        var buffer = new byte[512];
        Assert.Equal(first.Length, remote.Receive(buffer));

        var conflicting = ToyPeer.BindingRequest("them:ufragB");
        var gathering = ToyPeer.BindingRequest("x")[..20];   // a bare Binding request, as to a STUN server
        gathering[3] = 0;   // no attributes
        await hb.InvokeAsync(_ => { b.Send(conflicting, remoteEnd); b.Send(gathering, remoteEnd); });
        // What arrives next is the bare request: the check before it was never sent.
        var n = remote.Receive(buffer);
        Assert.Equal(gathering, buffer[..n]);
        Assert.Equal(1, driver.Counters.FiveTupleConflicts);
        Assert.True(b.FiveTuplesInUse.TryDequeue(out var told));
        Assert.Equal((local, remoteEnd), told);
        Assert.Empty(a.FiveTuplesInUse);
    }
}
