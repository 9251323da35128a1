using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Transport.Ice;
using Transport.Streaming.Io;

namespace Transport.Streaming.Tests.Io;

/// <summary>
/// The driver's own threads: the deadline thread serves every peer's timer with the system clock, and a peer that
/// declares itself non-blocking is run right on the receive and deadline threads, so neither its timers nor its
/// STUN wait for the thread pool.
/// </summary>
[Collection(RealTimeCollection.Name)]
public sealed class UdpDriverThreadingTests
{
    private static readonly IPEndPoint AnyLoopback = new(IPAddress.Loopback, 0);

    private static void WaitFor(Func<bool> condition, string what, double seconds = 10)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed.TotalSeconds > seconds) throw new TimeoutException("Timed out waiting for " + what);
            Thread.Sleep(2);
        }
    }

    [Fact]
    public async Task AnInlinePeersDeadlineFiresOnTimeWhileTheThreadPoolIsSaturated()
    {
        await using var driver = new UdpDriver();
        driver.Bind(AnyLoopback);
        var due = driver.Now + TimeSpan.FromMilliseconds(300);
        var peer = new ToyPeer("timer", "tttt") { RunsInline = true, Deadline = due };
        await using var handle = driver.Register(peer);   // armed right here: an inline peer's first run needs no pool thread

        // Occupy every pool thread (and more) until the deadline has passed. The pool adds threads only about twice a
        // second when starved, so anything that needed it would be late by hundreds of milliseconds.
        ThreadPool.GetMinThreads(out var workers, out _);
        using var release = new ManualResetEventSlim(false);
        var blockers = Enumerable.Range(0, workers + 4).Select(_ => Task.Run(() => release.Wait(TimeSpan.FromSeconds(20)))).ToArray();
        try
        {
            WaitFor(() => !peer.Timeouts.IsEmpty, "the deadline");
            var fired = peer.Timeouts.Single();
            Assert.Equal("Transport deadlines", peer.TimeoutThreads.Single());
            Assert.True(fired >= due, $"fired at {fired}, before its deadline {due}");
            // The thread's name is the proof that no pool thread was needed; the lateness bound is generous (a loaded
            // CI machine), the milliseconds themselves are a bench's claim, not this test's.
            Assert.True(fired - due < TimeSpan.FromSeconds(1), $"fired {(fired - due).TotalMilliseconds:0.0} ms late with the pool saturated");
        }
        finally
        {
            release.Set();
            await Task.WhenAll(blockers);
        }
    }

    [Fact]
    public async Task APeerThatMayBlockHasItsDeadlinesRunOnThePoolNotOnTheDeadlineThread()
    {
        await using var driver = new UdpDriver();
        driver.Bind(AnyLoopback);
        var peer = new ToyPeer("pool", "pppp") { Deadline = driver.Now + TimeSpan.FromMilliseconds(20) };
        await using var handle = driver.Register(peer);
        WaitFor(() => !peer.TimeoutThreads.IsEmpty, "the deadline");
        Assert.NotEqual("Transport deadlines", peer.TimeoutThreads.Single());
        Assert.Equal(0, driver.Counters.Inline);
    }

    [Fact]
    public async Task AnInlinePeerThatSaysNotNowHasItsStunAndDeadlinesRunOnThePool()
    {
        // A peer connection setting up says InlineNow false: its checks carry the DTLS handshake (SPED), which must not
        // run on the receive thread that serves every other peer. Once it says true, STUN runs inline again.
        await using var driver = new UdpDriver();
        var port = driver.Bind(AnyLoopback);
        var peer = new ToyPeer("busy", "bbbb") { RunsInline = true, InlineNow = false, Deadline = driver.Now + TimeSpan.FromMilliseconds(20) };
        await using var handle = driver.Register(peer);
        WaitFor(() => !peer.TimeoutThreads.IsEmpty, "the deadline");
        Assert.NotEqual("Transport deadlines", peer.TimeoutThreads.Single());
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(AnyLoopback);
        client.SendTo(ToyPeer.BindingRequest("bbbb:c"), port);
        WaitFor(() => peer.DatagramOnPool.Count == 1, "the first request");
        Assert.True(peer.DatagramOnPool.Single(), "handled on a pool thread");
        Assert.Equal(0, driver.Counters.Inline);

        peer.InlineNow = true;
        // A request that finds the peer still finishing its previous run is queued and may be taken on that run's
        // thread: send until one finds it idle (the first, unless the machine is very loaded).
        for (var i = 2; i < 22 && peer.DatagramOnPool.Skip(1).All(onPool => onPool); i++)
        {
            client.SendTo(ToyPeer.BindingRequest("bbbb:c"), port);
            WaitFor(() => peer.DatagramOnPool.Count == i, "request " + i);
            Thread.Sleep(10);
        }
        Assert.Contains(false, peer.DatagramOnPool);   // one was handled on the receive thread
        Assert.True(driver.Counters.Inline >= 1);
    }

    [Fact]
    public async Task ConnectedAgentsAnswerTheirChecksInlineWithoutThreadPoolHandOffs()
    {
        await using var d1 = new UdpDriver();
        await using var d2 = new UdpDriver();
        var p1 = d1.Bind(AnyLoopback);
        var p2 = d2.Bind(AnyLoopback);
        var fast = new IceAgentOptions { KeepaliveInterval = TimeSpan.FromMilliseconds(50), ConsentInterval = TimeSpan.FromMilliseconds(100) };
        var a = new IceAgent(fast with { Role = IceRole.Controlling });
        var b = new IceAgent(fast with { Role = IceRole.Controlled });
        a.AddHostCandidate(p1);
        b.AddHostCandidate(p2);
        var pa = new IceAgentPeer(a);
        var pb = new IceAgentPeer(b);
        await using var ha = d1.Register(pa);
        await using var hb = d2.Register(pb);
        await ha.InvokeAsync(now =>
        {
            a.StartGathering(now);
            a.SetRemoteCredentials(b.LocalCredentials, now);
            foreach (var c in b.LocalCandidates) a.AddRemoteCandidate(c, now);
        });
        await hb.InvokeAsync(now =>
        {
            b.StartGathering(now);
            b.SetRemoteCredentials(a.LocalCredentials, now);
            foreach (var c in a.LocalCandidates) b.AddRemoteCandidate(c, now);
        });
        WaitFor(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected, "both connected");

        var (inline0, handoffs0, received0) = (d1.Counters.Inline, d1.Counters.Handoffs, d1.Counters.Received);
        // Real traffic (keepalives every 50 ms, consent every 100 ms on both sides): count datagrams, not time, so a
        // loaded machine takes longer but measures the same thing.
        const int Enough = 30;
        WaitFor(() => d1.Counters.Received - received0 >= Enough, $"{Enough} datagrams of keepalive and consent traffic", seconds: 30);
        var inline = d1.Counters.Inline - inline0;
        var handoffs = d1.Counters.Handoffs - handoffs0;
        var received = d1.Counters.Received - received0;
        // A datagram that finds its peer busy (its timer running on the deadline thread) is queued, and taken inline
        // when the peer finishes or, under load, by a pool run: most, not all, of them run inline.
        Assert.True(inline * 2 >= received, $"{inline} inline runs for {received} datagrams");
        Assert.True(handoffs < received, $"{handoffs} hand-offs to the pool for {received} datagrams");
        Assert.Equal(IceConnectionState.Connected, a.State);
        Assert.Equal(0, d1.Counters.PeerErrors + d2.Counters.PeerErrors);
    }

    [Fact]
    public async Task TheDeadlineThreadFiresInOrderNeverEarlyAndKeepsItsHeapBounded()
    {
        await using var driver = new UdpDriver();
        driver.Bind(AnyLoopback);
        var start = driver.Now;
        var peers = Enumerable.Range(0, 20).Select(i =>
            new ToyPeer($"p{i}", $"f{i:D2}") { RunsInline = true, Deadline = start + TimeSpan.FromMilliseconds(50 + 10 * (19 - i)) }).ToArray();
        var handles = peers.Select(driver.Register).ToArray();
        try
        {
            // Re-arm one peer many times (each a new heap entry; the old ones are stale): the heap must not grow with it.
            var busy = new ToyPeer("busy", "busy") { RunsInline = true, Deadline = start + TimeSpan.FromSeconds(30) };
            await using var hb = driver.Register(busy);
            for (var i = 0; i < 2000; i++)
                await hb.InvokeAsync(_ => busy.Deadline = start + TimeSpan.FromSeconds(30) + TimeSpan.FromMilliseconds(i % 2));
            var heap = driver.DeadlineHeapSize;
            Assert.True(heap <= 64 + 4 * 21, $"{heap} heap entries for 21 timers");

            WaitFor(() => peers.All(p => !p.Timeouts.IsEmpty), "every deadline");
            for (var i = 0; i < peers.Length; i++)
                Assert.True(peers[i].Timeouts.Single() >= peers[i].Deadline.GetValueOrDefault(start + TimeSpan.FromMilliseconds(50 + 10 * (19 - i))));
            var order = peers.Select((p, i) => (At: p.Timeouts.Single(), i)).OrderBy(x => x.At).Select(x => x.i).ToArray();
            Assert.Equal(Enumerable.Range(0, 20).Reverse(), order);
            Assert.Empty(busy.Timeouts);
        }
        finally
        {
            foreach (var h in handles) await h.DisposeAsync();
        }
    }
}
