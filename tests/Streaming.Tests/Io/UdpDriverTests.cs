using System.Net;
using System.Net.Sockets;
using System.Text;
using Transport.Streaming.Io;
using Transport.TestKit;

namespace Transport.Streaming.Tests.Io;

public sealed class UdpDriverTests
{
    private static readonly IPEndPoint AnyLoopback = new(IPAddress.Loopback, 0);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private static Socket Client()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(AnyLoopback);
        s.ReceiveTimeout = (int)Patience.TotalMilliseconds;
        return s;
    }

    private static string ReceiveText(Socket s)
    {
        var buffer = new byte[2048];
        var n = s.Receive(buffer);
        return Encoding.Latin1.GetString(buffer, 1, n - 1);
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        var end = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > end) throw new TimeoutException("Timed out waiting for " + what);
            Thread.Sleep(5);
        }
    }

    [Fact]
    public async Task RoutesTheFirstRequestByUsernameThenByAddress()
    {
        await using var driver = new UdpDriver();
        var port = driver.Bind(AnyLoopback);
        var alice = new ToyPeer("alice", "aaaa");
        var bob = new ToyPeer("bob", "bbbb");
        await using var ha = driver.Register(alice);
        await using var hb = driver.Register(bob);
        using var client = Client();

        var request = ToyPeer.BindingRequest("bbbb:cccc");
        client.SendTo(request, port);
        Assert.StartsWith("bob", ReceiveText(client));

        client.SendTo([0x80, 1, 2, 3], port);          // not STUN: routed by the address bob now knows
        Assert.Equal("bob\u0080\u0001\u0002\u0003", ReceiveText(client));
        Assert.Empty(alice.Received);
        Assert.Equal(2, bob.Received.Count);
        Assert.Equal(((IPEndPoint)client.LocalEndPoint!).Port, bob.Received.First().Remote.Port);
    }

    [Fact]
    public async Task ARequestFromARoutedAddressGoesToThePeerItsUsernameNames()
    {
        await using var driver = new UdpDriver();
        var port = driver.Bind(AnyLoopback);
        var alice = new ToyPeer("alice", "aaaa");
        var bob = new ToyPeer("bob", "bbbb");
        await using var ha = driver.Register(alice);
        await using var hb = driver.Register(bob);
        using var client = Client();

        client.SendTo(ToyPeer.BindingRequest("bbbb:cccc"), port);   // bob answers: the address is his now
        Assert.StartsWith("bob", ReceiveText(client));
        var unrouted = driver.Counters.UnroutedRequests;

        // His own fragment, and one he added later (an ICE restart), from his address: his, by the route.
        hb.AddUsernameFragment("bbb2");
        client.SendTo(ToyPeer.BindingRequest("bbbb:cccc"), port);
        Assert.StartsWith("bob", ReceiveText(client));
        client.SendTo(ToyPeer.BindingRequest("bbb2:cccc"), port);
        Assert.StartsWith("bob", ReceiveText(client));
        Assert.Equal(unrouted, driver.Counters.UnroutedRequests);

        // Alice's fragment from bob's address (a new client on a reused port): alice gets it, unrouted.
        client.SendTo(ToyPeer.BindingRequest("aaaa:dddd"), port);
        Assert.StartsWith("alice", ReceiveText(client));
        Assert.Equal(unrouted + 1, driver.Counters.UnroutedRequests);
        Assert.Equal(3, bob.Received.Count);
        Assert.Single(alice.Received);
    }

    [Fact]
    public async Task DropsAndCountsDatagramsFromUnknownPeersAndOfUnknownKinds()
    {
        await using var driver = new UdpDriver();
        var port = driver.Bind(AnyLoopback);
        var alice = new ToyPeer("alice", "aaaa");
        await using var ha = driver.Register(alice);
        using var client = Client();

        client.SendTo([0x80, 0, 0, 0], port);                                   // RTP from nobody known
        client.SendTo(ToyPeer.BindingRequest("zzzz:cccc"), port);               // request for an unknown fragment
        client.SendTo([0xF0, 1], port);                                         // first byte in no RFC 7983 range
        client.SendTo([0x11, 1], port);                                         // ZRTP
        client.SendTo([0x00, 1, 2], port);                                      // truncated STUN

        WaitFor(() => driver.Counters.Received == 5, "five datagrams");
        WaitFor(() => driver.Counters.DroppedUnknownPeer == 3 && driver.Counters.DroppedUnknownKind == 2, "the drops to be counted");
        Assert.Empty(alice.Received);
        Assert.Equal(0, driver.Counters.PeerErrors);
    }

    [Fact]
    public async Task FiresTheDeadlineThroughTheTimeProvider()
    {
        var clock = new ManualClock();
        await using var driver = new UdpDriver(clock);
        driver.Bind(AnyLoopback);
        var alice = new ToyPeer("alice", "aaaa") { Deadline = TimeSpan.FromSeconds(5) };
        await using var ha = driver.Register(alice);

        WaitFor(() => clock.NextTimerDue == TimeSpan.FromSeconds(5), "the timer to be armed for the peer's deadline");
        clock.Advance(TimeSpan.FromSeconds(4.999));
        await Task.Yield();
        Assert.Empty(alice.Timeouts);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        WaitFor(() => alice.Timeouts.Count == 1, "the timeout");
        Assert.Equal(TimeSpan.FromSeconds(5), alice.Timeouts.Single());
    }

    [Fact]
    public async Task ADatagramThatWaitsForABusyPeerIsHandedTheTimeItArrivedNotTheTimeItRan()
    {
        // Arrival times feed transport-cc feedback and jitter: a queue in front of a busy peer must not add its delay.
        var clock = new ManualClock();
        await using var driver = new UdpDriver(clock);
        var port = driver.Bind(AnyLoopback);
        using var gate = new ManualResetEventSlim(false);
        var alice = new ToyPeer("alice", "aaaa") { Gate = gate };
        await using var ha = driver.Register(alice);
        using var client = Client();

        client.SendTo(ToyPeer.BindingRequest("aaaa:client"), port);       // at 0: alice takes it and blocks on the gate
        WaitFor(() => Volatile.Read(ref alice.ThreadsInside) == 1, "alice busy with the first datagram");
        clock.Advance(TimeSpan.FromMilliseconds(50));
        // At 50 ms: queued behind the busy peer (a request again: the address has no route until alice answered).
        client.SendTo(ToyPeer.BindingRequest("aaaa:client"), port);
        WaitFor(() => ha.QueuedDatagrams == 1, "the second datagram queued");
        clock.Advance(TimeSpan.FromMilliseconds(250));                   // alice is busy until 300 ms
        gate.Set();
        WaitFor(() => alice.Received.Count == 2, "both datagrams handled");

        var times = alice.Received.Select(r => r.Now).ToArray();
        Assert.Equal(TimeSpan.Zero, times[0]);
        Assert.Equal(TimeSpan.FromMilliseconds(50), times[1]);
    }

    [Fact]
    public async Task InvokeRunsOnThePeerAndSendsWhatItQueued()
    {
        await using var driver = new UdpDriver();
        var port = driver.Bind(AnyLoopback);
        var alice = new ToyPeer("alice", "aaaa");
        await using var ha = driver.Register(alice);
        using var client = Client();

        await ha.InvokeAsync(_ => alice.Send([0x80, (byte)'h', (byte)'i'], (IPEndPoint)client.LocalEndPoint!));
        var buffer = new byte[64];
        var n = client.Receive(buffer);
        Assert.Equal(new byte[] { 0x80, (byte)'h', (byte)'i' }, buffer[..n]);
        Assert.Equal(1, driver.Counters.Sent);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => ha.InvokeAsync<int>(_ => throw new InvalidOperationException("boom")));
        Assert.Equal("boom", error.Message);

        // The peer sent to the client first, so the client's datagrams now reach it by address.
        client.SendTo([0x80, 9], port);
        WaitFor(() => alice.Received.Count == 1, "the datagram routed by the learnt address");
    }

    [Fact]
    public async Task PeersOnTwoLocalPortsTalkingToOneRemoteEachGetTheirOwnReplies()
    {
        await using var driver = new UdpDriver();
        var port1 = driver.Bind(AnyLoopback);
        var port2 = driver.Bind(AnyLoopback);
        var one = new ToyPeer("one", "one1") { Local = port1 };
        var two = new ToyPeer("two", "two2") { Local = port2 };
        await using var h1 = driver.Register(one);
        await using var h2 = driver.Register(two);
        using var remote = Client();
        var remoteEndPoint = (IPEndPoint)remote.LocalEndPoint!;
        await h1.InvokeAsync(_ => one.Send([0x80, 1], remoteEndPoint));
        await h2.InvokeAsync(_ => two.Send([0x80, 2], remoteEndPoint));
        var buffer = new byte[64];
        EndPoint from = new IPEndPoint(IPAddress.Any, 0);
        for (var i = 0; i < 2; i++)
        {
            var n = remote.ReceiveFrom(buffer, ref from);
            remote.SendTo(buffer.AsSpan(0, n), from);        // answer each sender from where it came
        }
        WaitFor(() => one.Received.Count == 1 && two.Received.Count == 1, "each peer's own reply");
        Assert.Equal(1, one.Received.Single().Data[1]);
        Assert.Equal(2, two.Received.Single().Data[1]);
    }

    [Fact]
    public async Task OnePortServesManyPeersEachSerialized()
    {
        await using var driver = new UdpDriver();
        var port = driver.Bind(AnyLoopback);
        const int peers = 100;
        var handles = new List<PeerHandle>();
        var toys = new ToyPeer[peers];
        for (var i = 0; i < peers; i++) handles.Add(driver.Register(toys[i] = new ToyPeer($"p{i:D3}", $"f{i:D3}")));
        var clients = Enumerable.Range(0, peers).Select(_ => Client()).ToArray();
        try
        {
            // The first request is routed by its USERNAME; the answer makes the address a route for the rest.
            for (var i = 0; i < peers; i++) clients[i].SendTo(ToyPeer.BindingRequest($"f{i:D3}:x"), port);
            for (var i = 0; i < peers; i++) Assert.StartsWith($"p{i:D3}", ReceiveText(clients[i]));
            for (var round = 1; round < 5; round++)
                for (var i = 0; i < peers; i++)
                    clients[i].SendTo([0x80, (byte)round], port);
            for (var i = 0; i < peers; i++)
                for (var round = 1; round < 5; round++)
                    Assert.StartsWith($"p{i:D3}", ReceiveText(clients[i]));
            Assert.All(toys, t => Assert.Equal(5, t.Received.Count));
            Assert.All(toys, t => Assert.Equal(1, t.MaxThreadsInside));
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
            foreach (var h in handles) await h.DisposeAsync();
        }
    }

    [Fact]
    public async Task ASlowPeerDelaysNoOtherAndItsOverflowIsCounted()
    {
        await using var driver = new UdpDriver(options: new UdpDriverOptions { InboxCapacity = 8 });
        var port = driver.Bind(AnyLoopback);
        using var gate = new ManualResetEventSlim(false);
        var slow = new ToyPeer("slow", "slow") { Gate = gate };
        var fast = new ToyPeer("fast", "fast");
        await using var hs = driver.Register(slow);
        await using var hf = driver.Register(fast);
        using var slowClient = Client();
        using var fastClient = Client();

        slowClient.SendTo(ToyPeer.BindingRequest("slow:x"), port);
        WaitFor(() => slow.ThreadsInside == 1, "the slow peer to block");
        // Requests (routed by USERNAME): the address has no route before the blocked peer answered.
        for (var i = 0; i < 50; i++) slowClient.SendTo(ToyPeer.BindingRequest("slow:x"), port);

        fastClient.SendTo(ToyPeer.BindingRequest("fast:x"), port);
        Assert.StartsWith("fast", ReceiveText(fastClient));   // answered while the slow peer is still blocked
        WaitFor(() => driver.Counters.DroppedInboxFull > 0, "the slow peer's inbox to overflow");
        Assert.Equal(1, slow.ThreadsInside);

        gate.Set();
        WaitFor(() => slow.Received.Count + driver.Counters.DroppedInboxFull == 51, "the slow peer to catch up");
        Assert.InRange(slow.Received.Count, 9, 51 - 1);
    }

    [Fact]
    public async Task DisposingAHandleForgetsThePeersRoutes()
    {
        await using var driver = new UdpDriver();
        var port = driver.Bind(AnyLoopback);
        var alice = new ToyPeer("alice", "aaaa");
        var ha = driver.Register(alice);
        using var client = Client();
        client.SendTo(ToyPeer.BindingRequest("aaaa:x"), port);
        ReceiveText(client);
        await ha.DisposeAsync();
        client.SendTo([0x80, 1], port);
        client.SendTo(ToyPeer.BindingRequest("aaaa:x"), port);
        WaitFor(() => driver.Counters.DroppedUnknownPeer == 2, "both datagrams to be dropped");
        Assert.Single(alice.Received);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => ha.InvokeAsync(_ => { }));
        var again = driver.Register(new ToyPeer("alice2", "aaaa"));   // the fragment is free again
        await again.DisposeAsync();
    }

    [Theory]
    [InlineData(false)]   // the system clock: entries on the driver's deadline thread
    [InlineData(true)]    // another provider: one of its timers per peer
    public async Task EveryStoppedPeerGivesBackItsTimerFragmentsAndRoutes(bool virtualTime)
    {
        // The leak accessors of the churn soak: what a peer holds on the driver while it runs, and 0 once it stopped.
        var clock = new ManualClock();
        await using var driver = virtualTime ? new UdpDriver(clock) : new UdpDriver();
        var port = driver.Bind(AnyLoopback);
        var handles = new List<PeerHandle>();
        var clients = new List<Socket>();
        for (var i = 0; i < 8; i++)
        {
            var peer = new ToyPeer("p" + i, $"frag{i}a", $"frag{i}b") { Deadline = TimeSpan.FromSeconds(60) };
            handles.Add(driver.Register(peer));
            var client = Client();   // a client (address) per peer
            clients.Add(client);
            client.SendTo(ToyPeer.BindingRequest($"frag{i}a:client"), port);   // the peer answers: a route to its client
            WaitFor(() => peer.Received.Count == 1, "peer " + i + " to get its request");
        }
        WaitFor(() => driver.RouteCount == 8, "a route per peer");
        Assert.Equal((8, 16, 8), (driver.PeerCount, driver.UsernameFragmentCount, driver.TimerCount));

        foreach (var h in handles) await h.DisposeAsync();
        foreach (var c in clients) c.Dispose();
        Assert.Equal((0, 0, 0, 0, 0), (driver.PeerCount, driver.RouteCount, driver.UsernameFragmentCount, driver.TimerCount, driver.NotedTransactions));
    }

    [Fact]
    public async Task AStoppedPeerTakesItsOwnFragmentsAndRoutesAndLeavesTheOthers()
    {
        // A stopped peer's entries are removed by what it registered and learnt, not by a walk of every peer's: the
        // fragment added after registration (an ICE restart's) goes too, and the other peers keep theirs and their routes.
        await using var driver = new UdpDriver();
        var port = driver.Bind(AnyLoopback);
        var peers = new List<ToyPeer>();
        var handles = new List<PeerHandle>();
        var clients = new List<Socket>();
        for (var i = 0; i < 4; i++)
        {
            var peer = new ToyPeer("p" + i, $"frag{i}a");
            peers.Add(peer);
            handles.Add(driver.Register(peer));
            var client = Client();
            clients.Add(client);
            client.SendTo(ToyPeer.BindingRequest($"frag{i}a:client"), port);
            WaitFor(() => peer.Received.Count == 1, "peer " + i + " to get its request");
            ReceiveText(client);   // the answer went out: the route to the client is learnt
        }
        handles[1].AddUsernameFragment("frag1restart");
        Assert.Equal((4, 5, 4), (driver.PeerCount, driver.UsernameFragmentCount, driver.RouteCount));

        await handles[1].DisposeAsync();
        Assert.Equal((3, 3, 3), (driver.PeerCount, driver.UsernameFragmentCount, driver.RouteCount));
        // The others are still reached by address (a non-STUN datagram is routed by the 5-tuple alone) and by fragment.
        clients[2].SendTo([0x80, 7], port);
        WaitFor(() => peers[2].Received.Count == 2, "peer 2 to get a datagram routed by its address");
        Assert.StartsWith("p2", ReceiveText(clients[2]));
        clients[3].SendTo(ToyPeer.BindingRequest("frag3a:other"), port);
        WaitFor(() => peers[3].Received.Count == 2, "peer 3 to get a request routed by its fragment");
        // The stopped peer's address and fragments lead nowhere, and its fragments are free again.
        clients[1].SendTo([0x80, 7], port);
        WaitFor(() => driver.Counters.DroppedUnknownPeer == 1, "the stopped peer's datagram to be dropped");
        Assert.Single(peers[1].Received);
        await driver.Register(new ToyPeer("again", "frag1a", "frag1restart")).DisposeAsync();
        foreach (var h in handles) await h.DisposeAsync();
        foreach (var c in clients) c.Dispose();
        Assert.Equal((0, 0, 0), (driver.PeerCount, driver.UsernameFragmentCount, driver.RouteCount));
    }
}
