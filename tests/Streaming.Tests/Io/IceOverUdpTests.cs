using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Transport.Ice;
using Transport.Streaming.Io;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Io;

/// <summary>ICE agents on the UDP driver over real sockets on 127.0.0.1.</summary>
[Collection(RealTimeCollection.Name)]
public sealed class IceOverUdpTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private sealed class Side
    {
        public required UdpDriver Driver { get; init; }
        public required IceAgentPeer Peer { get; init; }
        public required PeerHandle Handle { get; init; }
        public ConcurrentQueue<byte[]> Received { get; } = new();
        public IceAgent Agent => Peer.Agent;

        public static async Task<Side> CreateAsync(UdpDriver driver, IceAgentOptions options, IPEndPoint? local = null)
        {
            local ??= driver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var agent = new IceAgent(options);
            agent.AddHostCandidate(local);
            Side? side = null;
            var peer = new IceAgentPeer(agent, (d, _) => side!.Received.Enqueue(d.ToArray()));
            side = new Side { Driver = driver, Peer = peer, Handle = driver.Register(peer) };
            await side.Handle.InvokeAsync(now => agent.StartGathering(now));
            return side;
        }

        public Task<(IceCredentials, IceCandidate[])> DescribeAsync() =>
            Handle.InvokeAsync(_ => (Agent.LocalCredentials, Agent.LocalCandidates.ToArray()));

        public async Task LearnAsync(Side other, bool endOfCandidates = true)
        {
            var (credentials, candidates) = await other.DescribeAsync();
            await Handle.InvokeAsync(now =>
            {
                Agent.SetRemoteCredentials(credentials, now);
                foreach (var c in candidates) Agent.AddRemoteCandidate(c, now);
                if (endOfCandidates) Agent.AddRemoteEndOfCandidates(now);
            });
        }

        public async Task<IceStateChangedEvent> WaitForStateAsync(IceConnectionState state)
        {
            using var cts = new CancellationTokenSource(Patience);
            await foreach (var e in Peer.Events.ReadAllAsync(cts.Token))
                if (e is IceStateChangedEvent s && s.State == state) return s;
            throw new InvalidOperationException($"The agent ended without reaching {state}.");
        }
    }

    private static async Task ConnectAsync(Side a, Side b)
    {
        await a.LearnAsync(b);
        await b.LearnAsync(a);
        await Task.WhenAll(a.WaitForStateAsync(IceConnectionState.Connected), b.WaitForStateAsync(IceConnectionState.Connected));
    }

    private static async Task WaitUntil(Func<bool> condition, string what)
    {
        var end = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > end) throw new TimeoutException("timed out waiting for " + what);
            await Task.Delay(5);
        }
    }

    private static byte[] Rtp(string text) => [0x80, .. Encoding.UTF8.GetBytes(text)];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task FullAgentsConnectAndCarryApplicationData(bool lite)
    {
        await using var d1 = new UdpDriver();
        await using var d2 = new UdpDriver();
        var a = await Side.CreateAsync(d1, new IceAgentOptions { Role = IceRole.Controlling });
        var b = await Side.CreateAsync(d2, new IceAgentOptions { Role = IceRole.Controlled, Lite = lite });
        await ConnectAsync(a, b);

        var r1 = await a.Handle.InvokeAsync(now => a.Peer.Send(Rtp("ping"), now));
        Assert.True(r1.CanSend);
        await WaitUntil(() => b.Received.Count == 1, "the data at b");
        var r2 = await b.Handle.InvokeAsync(now => b.Peer.Send(Rtp("pong"), now));
        Assert.True(r2.CanSend);
        await WaitUntil(() => a.Received.Count == 1, "the data at a");
        Assert.Equal(Rtp("ping"), b.Received.Single());
        Assert.Equal(Rtp("pong"), a.Received.Single());
    }

    [Fact]
    public async Task TrickledCandidatesConnectToo()
    {
        await using var d1 = new UdpDriver();
        await using var d2 = new UdpDriver();
        var a = await Side.CreateAsync(d1, new IceAgentOptions { Role = IceRole.Controlling });
        var b = await Side.CreateAsync(d2, new IceAgentOptions { Role = IceRole.Controlled });
        // Credentials first, no candidates; the candidates trickle in later, end-of-candidates last.
        var (ca, candA) = await a.DescribeAsync();
        var (cb, candB) = await b.DescribeAsync();
        await a.Handle.InvokeAsync(now => a.Agent.SetRemoteCredentials(cb, now));
        await b.Handle.InvokeAsync(now => b.Agent.SetRemoteCredentials(ca, now));
        await Task.Delay(100);
        Assert.Equal(IceConnectionState.New, await a.Handle.InvokeAsync(_ => a.Agent.State));
        await a.Handle.InvokeAsync(now => { foreach (var c in candB) a.Agent.AddRemoteCandidate(c, now); });
        await Task.WhenAll(a.WaitForStateAsync(IceConnectionState.Connected), b.WaitForStateAsync(IceConnectionState.Connected));
        await b.Handle.InvokeAsync(now => { foreach (var c in candA) b.Agent.AddRemoteCandidate(c, now); b.Agent.AddRemoteEndOfCandidates(now); });
        await a.Handle.InvokeAsync(now => a.Agent.AddRemoteEndOfCandidates(now));
        Assert.Equal(IceConnectionState.Connected, await b.Handle.InvokeAsync(_ => b.Agent.State));
    }

    [Fact]
    public async Task APeerThatStopsAnsweringIsDisconnectedThenFailedAtTheConfiguredTimes()
    {
        var options = new IceAgentOptions
        {
            KeepaliveInterval = TimeSpan.FromMilliseconds(100),
            ConsentInterval = TimeSpan.Zero,                 // isolate the disconnected/failed timers
            DisconnectedTimeout = TimeSpan.FromMilliseconds(500),
            FailedTimeout = TimeSpan.FromMilliseconds(1000),
        };
        await using var d1 = new UdpDriver();
        var d2 = new UdpDriver();
        var a = await Side.CreateAsync(d1, options with { Role = IceRole.Controlling });
        var b = await Side.CreateAsync(d2, options with { Role = IceRole.Controlled });
        await ConnectAsync(a, b);
        await Task.Delay(300);                               // keepalives flow both ways

        await d2.DisposeAsync();                             // b vanishes without a word
        var disconnected = await a.WaitForStateAsync(IceConnectionState.Disconnected);
        var failed = await a.WaitForStateAsync(IceConnectionState.Failed);

        output.WriteLine($"driver: {d1.Counters.Wakeups} timer wake-ups, {d1.Counters.Timeouts} deadlines, {d1.Counters.Received} " +
            $"received, {d1.Counters.Sent} sent");
        var lateDisconnect = disconnected.LastReceivedAge!.Value - options.DisconnectedTimeout;
        var lateFail = failed.At - disconnected.At - options.FailedTimeout;
        output.WriteLine($"Disconnected {disconnected.LastReceivedAge.Value.TotalMilliseconds:0.0} ms after the last packet (configured " +
            $"{options.DisconnectedTimeout.TotalMilliseconds} ms, late by {lateDisconnect.TotalMilliseconds:0.0} ms)");
        output.WriteLine($"Failed {(failed.At - disconnected.At).TotalMilliseconds:0.0} ms after Disconnected (configured " +
            $"{options.FailedTimeout.TotalMilliseconds} ms, late by {lateFail.TotalMilliseconds:0.0} ms)");
        Assert.Equal(IceStateReason.NoTraffic, disconnected.Reason);
        Assert.Equal(IceStateReason.FailedTimeout, failed.Reason);
        // Exact on virtual time (tests/Ice.Tests, to the tick): here never early, and late only by what a loaded 2-core
        // machine costs the deadline thread (reported above; bounded generously, far below another timer's period).
        Assert.InRange(lateDisconnect, TimeSpan.Zero, TimeSpan.FromSeconds(2));
        Assert.InRange(lateFail, TimeSpan.Zero, TimeSpan.FromSeconds(2));

        var refused = await a.Handle.InvokeAsync(now => a.Peer.Send(Rtp("too late"), now));
        Assert.Equal(IceSendStatus.Failed, refused.Status);
        Assert.Equal(IceConnectionState.Failed, refused.State);
    }

    [Fact]
    public async Task AHundredAgentsConnectThroughOneServerPort()
    {
        const int count = 100;
        await using var serverDriver = new UdpDriver();
        await using var clientDriver = new UdpDriver();
        var serverPort = serverDriver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var servers = new Side[count];
        var clients = new Side[count];
        for (var i = 0; i < count; i++)
        {
            servers[i] = await Side.CreateAsync(serverDriver, new IceAgentOptions { Role = IceRole.Controlled }, serverPort);
            clients[i] = await Side.CreateAsync(clientDriver, new IceAgentOptions { Role = IceRole.Controlling });
        }
        await Task.WhenAll(Enumerable.Range(0, count).Select(i => ConnectAsync(clients[i], servers[i])));
        Assert.Single(serverDriver.LocalEndPoints);
        for (var i = 0; i < count; i++)
            Assert.True((await clients[i].Handle.InvokeAsync(now => clients[i].Peer.Send(Rtp("c" + i), now))).CanSend);
        await WaitUntil(() => servers.All(s => s.Received.Count == 1), "every server agent to get its client's data");
        for (var i = 0; i < count; i++) Assert.Equal(Rtp("c" + i), servers[i].Received.Single());
        Assert.Equal(0, serverDriver.Counters.DroppedUnknownPeer);
        Assert.Equal(0, serverDriver.Counters.PeerErrors);
    }
}

/// <summary>Server-reflexive gathering against coturn on 127.0.0.1, through the UDP driver.</summary>
public sealed class IceGatheringOverUdpTests
{
    [Fact]
    public async Task GatheringAgainstCoturnCompletesAndPrunesTheRedundantReflexiveCandidate()
    {
        using var coturn = Transport.TestKit.CoturnServer.Start();
        await using var driver = new UdpDriver();
        var local = driver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var agent = new IceAgent(new IceAgentOptions { StunServers = [coturn.EndPoint] });
        agent.AddHostCandidate(local);
        var peer = new IceAgentPeer(agent);
        await using var handle = driver.Register(peer);
        var started = await handle.InvokeAsync(now => { agent.StartGathering(now); return now; });

        var gathered = new List<IceCandidate>();
        IceGatheringCompleteEvent? complete = null;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await foreach (var e in peer.Events.ReadAllAsync(cts.Token))
        {
            if (e is IceCandidateGatheredEvent g) gathered.Add(g.Candidate);
            if (e is IceGatheringCompleteEvent c) { complete = c; break; }
        }
        // coturn answered the Binding request: without an answer gathering ends only after the 9.9 s transaction timeout.
        Assert.NotNull(complete);
        // (A generous bound that still tells an answer from the 9.9 s timeout.)
        Assert.True(complete.At - started < TimeSpan.FromSeconds(6), $"gathering took {complete.At - started}");
        // On 127.0.0.1 the server sees us at our host address, so the reflexive candidate is redundant with the
        // host candidate and pruned (RFC 8445 section 5.1.3): only the host candidate is signalled.
        Assert.Equal([IceCandidateType.Host], gathered.Select(c => c.Type));
        Assert.Equal(local, gathered[0].Address);
        Assert.Equal(0, driver.Counters.DroppedUnknownPeer);
        Assert.Equal(0, agent.DroppedTotal);
    }
}
