using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Transport.Streaming.Io;

namespace Transport.Streaming.Tests.Io;

/// <summary>
/// The batched socket calls of <see cref="UdpDriverOptions.BatchedIo"/> (sendmmsg with UDP GSO, recvmmsg with UDP
/// GRO on 64-bit Linux) against the plain one-call-per-datagram path: the same datagrams arrive, whole and in order,
/// with fewer system calls.
/// </summary>
public sealed class UdpDriverBatchedIoTests
{
    private static readonly IPEndPoint AnyLoopback = new(IPAddress.Loopback, 0);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    /// <summary>Records what arrives; sends only what the test queues.</summary>
    private sealed class SinkPeer(params string[] fragments) : IDatagramPeer
    {
        private readonly Outbox _out = new();
        public ConcurrentQueue<byte[]> Received { get; } = new();
        public IReadOnlyCollection<string> LocalUsernameFragments { get; } = fragments;
        public void Queue(byte[] data, IPEndPoint remote) => _out.Enqueue(data, remote);
        public void HandleDatagram(ReadOnlySpan<byte> datagram, IPEndPoint local, IPEndPoint remote, TimeSpan now) => Received.Enqueue(datagram.ToArray());
        public void HandleTimeout(TimeSpan now) { }
        public TimeSpan? PollTimeout() => null;
        public void AfterInput(TimeSpan now) { }

        public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote)
        {
            local = null;
            return _out.TryPoll(destination, out written, out remote);
        }
    }

    private static byte[] Datagram(int size, int index)
    {
        var d = new byte[size];
        d[0] = 0x80;   // RTP range: routed by address once the STUN request taught the receiver the sender
        for (var i = 1; i < size; i++) d[i] = (byte)(index * 31 + i);
        return d;
    }

    /// <summary>
    /// The receiver sends to <paramref name="remote"/> first: a driver routes by the addresses its peer sent to (which
    /// for ICE means it answered an authenticated request), so datagrams that follow a bare request are routed.
    /// </summary>
    private static Task IntroduceAsync(PeerHandle handle, SinkPeer receiver, IPEndPoint remote) =>
        handle.InvokeAsync(_ => receiver.Queue([0x80, 0], remote));

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var end = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > end) throw new TimeoutException("Timed out waiting for " + what);
            await Task.Delay(5);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ARunOfEqualDatagramsToOneAddressArrivesWholeAndInOrder(bool batched)
    {
        var options = new UdpDriverOptions { BatchedIo = batched };
        await using var d1 = new UdpDriver(options: options);
        await using var d2 = new UdpDriver(options: options);
        var from = d1.Bind(AnyLoopback);
        var to = d2.Bind(AnyLoopback);
        var sender = new SinkPeer("aaaa");
        var receiver = new SinkPeer("bbbb");
        await using var hs = d1.Register(sender);
        await using var hr = d2.Register(receiver);
        await IntroduceAsync(hr, receiver, from);

        var expected = new List<byte[]> { ToyPeer.BindingRequest("bbbb:aaaa") };
        for (var i = 0; i < 40; i++) expected.Add(Datagram(1000, i));
        expected.Add(Datagram(300, 40));   // a shorter last segment
        var calls = d1.Counters.SendCalls;
        var receiveCalls = d2.Counters.ReceiveCalls;
        await hs.InvokeAsync(_ => { foreach (var d in expected) sender.Queue(d, to); });   // one run of the peer
        await WaitForAsync(() => receiver.Received.Count >= expected.Count, "all datagrams");

        Assert.Equal(expected.Count, receiver.Received.Count);
        foreach (var (want, got) in expected.Zip(receiver.Received)) Assert.Equal(want, got);
        Assert.Equal(expected.Count, d1.Counters.Sent);
        Assert.Equal(expected.Count, d2.Counters.Received);
        if (batched && LinuxUdp.IsSupported)
        {
            // One sendmmsg: the request, then one GSO send of 41 (a kernel that refuses GSO sends them one by one).
            if (d1.SegmentationOn) Assert.Equal(1, d1.Counters.SendCalls - calls);
            else Assert.True(d1.Counters.SendCalls - calls < expected.Count);
            // The request, then the train in one buffer (GRO), or both in one call; without GRO, batches of recvmmsg.
            if (d2.ReceiveOffloadOn && d1.SegmentationOn) Assert.InRange(d2.Counters.ReceiveCalls - receiveCalls, 1, 2);
            else Assert.InRange(d2.Counters.ReceiveCalls - receiveCalls, 1, expected.Count);
        }
        else
        {
            Assert.Equal(expected.Count, d1.Counters.SendCalls - calls);
            Assert.Equal(expected.Count, d2.Counters.ReceiveCalls - receiveCalls);
        }
        Assert.Equal(0, d1.Counters.SendErrors);
    }

    [Fact]
    public async Task DatagramsToSeveralAddressesInOneRunKeepTheirOrderPerAddress()
    {
        await using var d1 = new UdpDriver();
        await using var d2 = new UdpDriver();
        await using var d3 = new UdpDriver();
        var from = d1.Bind(AnyLoopback);
        var to2 = d2.Bind(AnyLoopback);
        var to3 = d3.Bind(AnyLoopback);
        var sender = new SinkPeer("aaaa");
        var r2 = new SinkPeer("bbbb");
        var r3 = new SinkPeer("cccc");
        await using var hs = d1.Register(sender);
        await using var h2 = d2.Register(r2);
        await using var h3 = d3.Register(r3);
        await IntroduceAsync(h2, r2, from);
        await IntroduceAsync(h3, r3, from);

        var for2 = new List<byte[]> { ToyPeer.BindingRequest("bbbb:aaaa") };
        var for3 = new List<byte[]> { ToyPeer.BindingRequest("cccc:aaaa") };
        await hs.InvokeAsync(_ =>
        {
            sender.Queue(for2[0], to2);
            sender.Queue(for3[0], to3);
            // Runs of equal sizes, alternating destinations, sizes that change mid-run.
            for (var i = 0; i < 60; i++)
            {
                var d = Datagram(i % 20 < 10 ? 1200 : 700 + i, i);
                if ((i / 5) % 2 == 0) { for2.Add(d); sender.Queue(d, to2); }
                else { for3.Add(d); sender.Queue(d, to3); }
            }
        });
        await WaitForAsync(() => r2.Received.Count >= for2.Count && r3.Received.Count >= for3.Count, "both streams");
        Assert.Equal(for2, r2.Received.ToList());
        Assert.Equal(for3, r3.Received.ToList());
        Assert.Equal(0, d1.Counters.SendErrors);
    }

    [Fact]
    public async Task ADatagramLargerThanTheMaximumIsCountedAndTheNextOneStillArrives()
    {
        await using var driver = new UdpDriver(options: new UdpDriverOptions { MaxDatagramSize = 1500 });
        var port = driver.Bind(AnyLoopback);
        var peer = new SinkPeer("bbbb");
        await using var handle = driver.Register(peer);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(AnyLoopback);
        await IntroduceAsync(handle, peer, (IPEndPoint)client.LocalEndPoint!);
        client.SendTo(ToyPeer.BindingRequest("bbbb:aaaa"), port);
        await WaitForAsync(() => peer.Received.Count == 1, "the request");
        client.SendTo(Datagram(3000, 1), port);
        var small = Datagram(100, 2);
        client.SendTo(small, port);
        await WaitForAsync(() => peer.Received.Count == 2, "the datagram after the oversize one");
        Assert.Equal(small, peer.Received.Last());
        if (LinuxUdp.IsSupported) Assert.Equal(1, driver.Counters.DroppedOversize);
    }

    [Fact]
    public async Task TheReceiveBuffersSurviveGarbageCollectionsWhileTheKernelHoldsTheirAddresses()
    {
        // Regression: the receive thread's pinned arrays were locals the JIT considered dead after their addresses were
        // taken, so a collection freed them while the kernel kept writing through those addresses (a test host died
        // with a NullReferenceException, others with odd failures). Collect while the thread waits in recvmmsg, refill
        // the freed space with pinned arrays of a known pattern, then receive: every datagram arrives whole and no byte
        // of those arrays changed.
        await using var driver = new UdpDriver();
        var port = driver.Bind(AnyLoopback);
        var peer = new SinkPeer("bbbb");
        await using var handle = driver.Register(peer);
        await Task.Delay(50);   // the receive thread is blocked in recvmmsg with its pointers
        for (var i = 0; i < 3; i++)
        {
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        var decoys = new List<byte[]>();
        foreach (var size in new[] { 8 * 65536, 32 * 2048, 8 * 128, 32 * 128, 8 * 64, 32 * 64, 8 * 16, 32 * 16, 8 * 64, 32 * 64 })
            for (var k = 0; k < 4; k++)
            {
                var decoy = GC.AllocateArray<byte>(size, pinned: true);
                decoy.AsSpan().Fill(0x5A);
                decoys.Add(decoy);
            }

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(AnyLoopback);
        await IntroduceAsync(handle, peer, (IPEndPoint)client.LocalEndPoint!);
        var sent = new List<byte[]> { ToyPeer.BindingRequest("bbbb:aaaa") };
        client.SendTo(sent[0], port);
        for (var i = 0; i < 200; i++)
        {
            var d = Datagram(100 + i, i);
            sent.Add(d);
            client.SendTo(d, port);
            if (i % 50 == 0) await WaitForAsync(() => peer.Received.Count >= sent.Count, "the datagrams so far");
        }
        await WaitForAsync(() => peer.Received.Count >= sent.Count, "every datagram");
        Assert.Equal(sent, peer.Received.ToList());
        Assert.All(decoys, d => Assert.True(d.AsSpan().IndexOfAnyExcept((byte)0x5A) < 0, "the kernel wrote into memory the driver no longer owned"));
        Assert.Equal(0, driver.Counters.PeerErrors);
    }

    [Fact]
    public async Task DisposingStopsABlockedBatchedReceiveAtOnce()
    {
        var driver = new UdpDriver();
        driver.Bind(AnyLoopback);
        driver.Bind(AnyLoopback);
        await Task.Delay(50);   // the receive threads are blocked in recvmmsg by now
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await driver.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        // shutdown(2) wakes each thread; without it every join would wait out its 2 s bound.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1.5), $"dispose took {clock.Elapsed.TotalMilliseconds:0} ms");
    }
}
