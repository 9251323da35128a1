using System.Buffers;
using System.Net;
using System.Runtime.InteropServices;
using Transport.Dtls;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

using static RealPeerKit;

/// <summary>
/// Received messages as leases of SCTP's reassembly buffers (PeerConnectionOptions.LeasedMessages) and sends without a
/// per-message allocation (pooled and owner-lent TrySend): buffers come back and are reused, a disposed lease cannot be
/// read, leases kept stop the flow at the unread bound, large messages arrive whole in one lease.
/// </summary>
public sealed class DataChannelLeaseTests
{
    private static readonly DtlsCertificate Certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));

    /// <summary>Keeps the leases it receives (the test decides when to dispose them).</summary>
    private sealed class Peer(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote) : CorePeer(core, local, remote)
    {
        public IEnumerable<DataChannelMessageLease> Leases => Events.OfType<DataChannelMessageLease>();
        public long LeasedBytes => Leases.Sum(l => (long)l.Length);
    }

    private static (TwoPeerDriver Driver, Peer A, Peer B, DataChannel Channel) Open(PeerConnectionOptions? options = null, VirtualLink? link = null)
    {
        var endA = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var endB = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        var o = (options ?? new PeerConnectionOptions()) with { Certificate = Certificate, LeasedMessages = true };
        var a = new PeerConnectionCore(o with { Ice = o.Ice with { Role = IceRole.Controlling } });
        var b = new PeerConnectionCore(o with { Ice = o.Ice with { Role = IceRole.Controlled } });
        a.AddHostCandidate(endA);
        b.AddHostCandidate(endB);
        var offer = SessionDescription.Parse(a.CreateOffer(TimeSpan.Zero).ToString());
        var answer = SessionDescription.Parse(b.CreateAnswer(offer, TimeSpan.Zero).ToString());
        a.SetRemoteDescription(answer, TimeSpan.Zero);
        a.CreateDataChannel("bulk", null, TimeSpan.Zero);
        var pa = new Peer(a, endA, endB);
        var pb = new Peer(b, endB, endA);
        var driver = new TwoPeerDriver(pa, pb, link);
        Assert.True(driver.RunUntil(() => pa.Events.OfType<DataChannelOpened>().Any() && pb.Events.OfType<DataChannelOpened>().Any(),
            TimeSpan.FromSeconds(10)));
        return (driver, pa, pb, pa.Events.OfType<DataChannelOpened>().Single().Channel);
    }

    private static byte[] ArrayOf(DataChannelMessageLease lease) =>
        MemoryMarshal.TryGetArray<byte>(lease.Memory, out var segment) ? segment.Array! : throw new InvalidOperationException("no array");

    [Fact]
    public void ALeaseCarriesTheMessageAndItsBufferIsReusedOnceDisposed()
    {
        var (driver, a, b, channel) = Open();
        var arrays = new HashSet<byte[]>(ReferenceEqualityComparer.Instance);
        for (var round = 0; round < 20; round++)
        {
            var payload = Enumerable.Range(0, 1024).Select(i => (byte)(i * 7 + round)).ToArray();
            channel.Send(payload, binary: true, driver.Now);
            Assert.True(driver.RunUntil(() => b.Leases.Count() == round + 1, TimeSpan.FromSeconds(5)));
            var lease = b.Leases.Last();
            Assert.Equal(payload, lease.Span.ToArray());
            Assert.True(lease.IsBinary);
            Assert.Equal(channel.Label, lease.Channel.Label);
            arrays.Add(ArrayOf(lease));
            Assert.Equal(1, b.Core.OutstandingLeases);
            lease.Dispose();
            Assert.Equal(0, b.Core.OutstandingLeases);
        }
        // One message at a time, each lease returned before the next arrives: SCTP's pool hands the same buffer out again.
        Assert.True(arrays.Count <= 2, $"{arrays.Count} different buffers for 20 messages");
        Assert.Empty(b.Events.OfType<DataChannelMessageReceived>());
    }

    [Fact]
    public void ReadingALeaseAfterDisposeThrowsAndDisposingTwiceIsHarmless()
    {
        var (driver, _, b, channel) = Open();
        channel.Send("hello");
        Assert.True(driver.RunUntil(() => b.Leases.Any(), TimeSpan.FromSeconds(5)));
        var lease = b.Leases.Single();
        Assert.False(lease.IsBinary);
        Assert.Equal("hello"u8.ToArray(), lease.ToArray());
        lease.Dispose();
        Assert.Throws<ObjectDisposedException>(() => lease.Memory);
        Assert.Throws<ObjectDisposedException>(() => lease.Span.Length);
        Assert.Throws<ObjectDisposedException>(() => lease.Length);
        Assert.Throws<ObjectDisposedException>(() => lease.Channel);
        Assert.Contains("disposed", lease.ToString(), StringComparison.Ordinal);
        lease.Dispose();   // no second return of the buffer
        Assert.Equal(0, b.Core.OutstandingLeases);
    }

    [Fact]
    public void AnEmptyMessageIsALeaseOfNoBytes()
    {
        var (driver, _, b, channel) = Open();
        channel.Send(ReadOnlySpan<byte>.Empty, binary: true, driver.Now);
        Assert.True(driver.RunUntil(() => b.Leases.Any(), TimeSpan.FromSeconds(5)));
        var lease = b.Leases.Single();
        Assert.Equal(0, lease.Length);
        Assert.True(lease.IsBinary);
        lease.Dispose();
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.05)]
    public void LargeMessagesAreReassembledIntoOneLeaseEach(double loss)
    {
        var conditions = new LinkConditions { Delay = TimeSpan.FromMilliseconds(5), Loss = loss, Reorder = loss, Duplicate = loss / 2 };
        var (driver, _, b, channel) = Open(link: new VirtualLink(3, conditions, conditions));
        var sizes = new[] { 200 * 1024, 1, 64 * 1024, 256 * 1024, 5000 };
        long offset = 0;
        var expected = new List<byte[]>();
        foreach (var size in sizes)
        {
            var message = new byte[size];
            for (var i = 0; i < size; i++) message[i] = (byte)((offset + i) * 131 + ((offset + i) >> 9));
            offset += size;
            expected.Add(message);
            channel.Send(message, binary: true, driver.Now);
        }
        Assert.True(driver.RunUntil(() => b.Leases.Count() == sizes.Length, TimeSpan.FromSeconds(120)),
            $"{b.Leases.Count()} of {sizes.Length} by {driver.Now}");
        var leases = b.Leases.ToList();
        for (var i = 0; i < sizes.Length; i++)
        {
            Assert.Equal(sizes[i], leases[i].Length);
            Assert.True(leases[i].Span.SequenceEqual(expected[i]), $"message {i} differs");
            // The reassembly buffer is the lease's: a power-of-two array of the pool, not a copy of the message's size.
            Assert.True(ArrayOf(leases[i]).Length >= sizes[i]);
            leases[i].Dispose();
        }
        Assert.Equal(0, b.Core.OutstandingLeases);
    }

    [Fact]
    public void LeasesNeverReturnedStopTheFlowAtTheUnreadBoundAndReturningThemResumesIt()
    {
        const int unreadBound = 64 * 1024;
        var (driver, _, b, channel) = Open(new PeerConnectionOptions { MaxMessageSize = 16 * 1024, MaxUnreadBytes = unreadBound });
        var payload = new byte[1024];
        const int total = 512;   // 512 KiB: eight times the bound
        for (var i = 0; i < total; i++) channel.Send(payload, binary: true, driver.Now);
        driver.RunFor(TimeSpan.FromSeconds(10));
        // The application holds every lease: what reached it is bounded by MaxUnreadBytes, and SCTP holds no more either.
        var held = b.LeasedBytes;
        Assert.True(held > 0, "nothing arrived");
        // (SCTP's 64 KiB reserve for the next in-sequence chunk may be used on top, as for the copying events.)
        Assert.True(held + b.Core.Sctp!.ReceiveBuffered <= unreadBound + 64 * 1024,
            $"{held} bytes leased and {b.Core.Sctp.ReceiveBuffered} held by SCTP, bound {unreadBound} + 64 KiB");
        Assert.True(b.Core.OutstandingLeases < total);

        // Returning them (as the application reads) lets the rest come, every byte once.
        var disposed = 0;
        Assert.True(driver.RunUntil(() =>
        {
            foreach (var lease in b.Leases.Skip(disposed).ToList()) { lease.Dispose(); disposed++; }
            b.Core.AfterInput(driver.Now);   // the owner's turn after a return (PeerConnection posts one)
            return disposed == total;
        }, TimeSpan.FromSeconds(60)), $"{disposed} of {total} messages by {driver.Now}");
        Assert.Equal(0, b.Core.OutstandingLeases);
    }

    [Fact]
    public void SendingFromTheCallersMemoryDisposesTheOwnerOnlyOnceAcknowledged()
    {
        var (driver, _, b, channel) = Open(link: new VirtualLink(1, LinkConditions.Clean(TimeSpan.FromMilliseconds(20)),
            LinkConditions.Clean(TimeSpan.FromMilliseconds(20))));
        var owners = Enumerable.Range(0, 10).Select(i => new CountingOwner(Enumerable.Repeat((byte)i, 3000).ToArray())).ToList();
        foreach (var owner in owners) channel.Send(owner.Memory, owner, binary: true, driver.Now);
        // Nothing acknowledged yet: the association still needs every byte for a retransmission.
        Assert.All(owners, o => Assert.Equal(0, o.Disposals));
        Assert.True(driver.RunUntil(() => owners.All(o => o.Disposals == 1), TimeSpan.FromSeconds(5)));
        Assert.True(driver.Now >= TimeSpan.FromMilliseconds(40), "disposed before a round trip");
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (byte)i), b.Leases.Select(l => l.Span[0]));
        driver.RunFor(TimeSpan.FromSeconds(1));
        Assert.All(owners, o => Assert.Equal(1, o.Disposals));
    }

    [Fact]
    public async Task OverRealSocketsPooledTrySendAndLeasesDeliverEveryMessageInOrder()
    {
        // A small unread bound: the run only completes if disposing leases reopens the window (the connection wakes).
        await using var pair =
            LoopbackPair.Create(new PeerConnectionOptions { LeasedMessages = true, MaxMessageSize = 64 * 1024, MaxUnreadBytes = 256 * 1024 });
        var (a, b) = (pair.A, pair.B);
        var offer = await a.CreateOfferAsync();
        await a.SetRemoteDescriptionAsync(await b.CreateAnswerAsync(offer));
        var channel = await a.CreateDataChannelAsync("data").WaitAsync(Patience);
        const int count = 3000;
        var receiving = Task.Run(async () =>
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var next = 0;
            await foreach (var e in b.Events.ReadAllAsync(cts.Token))
            {
                if (e is not DataChannelMessageLease lease) continue;
                using (lease)
                {
                    if (lease.Length != 2000 || BitConverter.ToInt32(lease.Span) != next)
                        throw new InvalidOperationException($"message {next}: length {lease.Length}");
                    if (++next == count) return next;
                }
            }
            return next;
        });
        var payload = new byte[2000];
        var lent = 0;
        for (var i = 0; i < count; i++)
        {
            var guard = 0;
            while (channel.BufferedAmount + a.PendingSendBytes > 512 * 1024)
            {
                await Task.Delay(1);
                Assert.True(++guard < 60_000, "the channel never drained");
            }
            BitConverter.TryWriteBytes(payload, i);
            if (i % 2 == 0) Assert.True(a.TrySend(channel, payload).Accepted);
            else
            {
                // Every other message from the caller's own memory (no copy): the owner is disposed once acknowledged.
                var owner = new CountingOwner((byte[])payload.Clone(), () => Interlocked.Increment(ref lent));
                Assert.True(a.TrySend(channel, owner).Accepted);
            }
        }
        Assert.Equal(count, await receiving.WaitAsync(TimeSpan.FromSeconds(90)));
        for (var i = 0; i < 500 && Volatile.Read(ref lent) < count / 2; i++) await Task.Delay(10);
        Assert.Equal(count / 2, Volatile.Read(ref lent));
        Assert.Equal(0, a.PendingSends);
    }

    private sealed class CountingOwner(byte[] bytes, Action? onDispose = null) : IMemoryOwner<byte>
    {
        private int _disposals;
        public int Disposals => Volatile.Read(ref _disposals);
        public Memory<byte> Memory => bytes;
        public void Dispose()
        {
            Interlocked.Increment(ref _disposals);
            onDispose?.Invoke();
        }
    }
}
