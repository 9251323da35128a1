using Transport.TestKit;

namespace Transport.Sctp.Tests;

/// <summary>
/// Sending from the caller's memory (the owner disposed once no chunk can be sent again) and taking the receive buffer
/// of a delivered message (TakeEventBuffer / ReturnReceiveBuffer): ownership moves exactly once either way.
/// </summary>
public sealed class ZeroCopyTests
{
    private sealed class Owner : IDisposable
    {
        public int Disposals;
        public bool Throw;
        public void Dispose()
        {
            Disposals++;
            if (Throw) throw new InvalidOperationException("the application's owner failed");
        }
    }

    private static LinkConditions Lossy(double loss) => new() { Delay = TimeSpan.FromMilliseconds(10), Loss = loss, Reorder = loss, Duplicate = loss / 2 };

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.1)]
    public void TheOwnerIsDisposedOnceAfterTheLastChunkWasAcknowledgedAndTheBytesArriveIntact(double loss)
    {
        var (a, b, d) = Pair.Connected(new VirtualLink(5, Lossy(loss), Lossy(loss)));
        var received = new List<byte[]>();
        b.OnEvent = e => { if (e.Kind == SctpEventKind.StreamMessage) received.Add(e.Data.ToArray()); };
        var messages = new[] { 100, 5000, 70_000, 1200 }.Select((n, k) => Enumerable.Range(0, n).Select(i => Pair.Pattern(i + k * 7)).ToArray()).ToList();
        var owners = messages.Select(_ => new Owner()).ToList();
        for (var i = 0; i < messages.Count; i++) a.Association.SendMessage(1, Ppid.Binary, messages[i].AsMemory(), owners[i], now: d.Now);
        Assert.All(owners, o => Assert.Equal(0, o.Disposals));
        Assert.True(d.RunUntil(() => a.Association.IsIdle && received.Count == messages.Count, TimeSpan.FromSeconds(60)));
        Assert.All(owners, o => Assert.Equal(1, o.Disposals));
        Assert.Equal(messages, received);
        d.RunFor(TimeSpan.FromSeconds(2));
        Assert.All(owners, o => Assert.Equal(1, o.Disposals));
    }

    [Fact]
    public void AnAbortDisposesTheOwnersOfEverythingQueuedOrInFlightOnceAndCountsAThrowingOwner()
    {
        var (a, _, d) = Pair.Connected(new VirtualLink(1, LinkConditions.Clean(TimeSpan.FromMilliseconds(50)),
            LinkConditions.Clean(TimeSpan.FromMilliseconds(50))));
        var owners = Enumerable.Range(0, 50).Select(i => new Owner { Throw = i == 3 }).ToList();
        var bytes = new byte[20_000];
        foreach (var o in owners) a.Association.SendMessage(1, Ppid.Binary, bytes.AsMemory(), o, now: d.Now);
        d.RunFor(TimeSpan.FromMilliseconds(10));   // some in flight, most still queued
        a.Association.Abort(d.Now);
        Assert.All(owners, o => Assert.Equal(1, o.Disposals));
        Assert.Equal(1, a.Association.Counters.OwnerDisposeFailures);
    }

    [Fact]
    public void ARefusedMessageLeavesTheOwnerWithTheCaller()
    {
        var (a, _, d) = Pair.Connected();
        var owner = new Owner();
        Assert.Throws<ArgumentException>(() => a.Association.SendMessage(1, Ppid.Binary,
            new byte[a.Association.Options.MaxMessageSize + 1].AsMemory(), owner, now: d.Now));
        Assert.Throws<ArgumentException>(() => a.Association.SendMessage(1, Ppid.Binary, ReadOnlyMemory<byte>.Empty, owner, now: d.Now));
        Assert.Equal(0, owner.Disposals);
    }

    [Fact]
    public void ATakenReceiveBufferIsTheCallersUntilReturnedAndIsThenReused()
    {
        var (a, b, d) = Pair.Connected();
        var seen = new HashSet<byte[]>(ReferenceEqualityComparer.Instance);
        for (var round = 0; round < 10; round++)
        {
            var message = Enumerable.Range(0, 3000).Select(i => (byte)(i + round)).ToArray();
            a.Association.SendMessage(1, Ppid.Binary, message);
            byte[]? taken = null;
            var length = 0;
            b.OnEvent = e =>
            {
                if (e.Kind != SctpEventKind.StreamMessage) return;
                length = e.Data.Length;
                taken = b.Association.TakeEventBuffer();
                Assert.Null(b.Association.TakeEventBuffer());   // taken once
            };
            Assert.True(d.RunUntil(() => taken is not null, TimeSpan.FromSeconds(5)));
            // Polling more events does not give the taken buffer back to the pool behind the caller's back.
            b.Drain();
            Assert.Equal(message, taken.AsSpan(0, length).ToArray());
            Assert.Equal(0, b.Association.ReceiveBuffered);
            seen.Add(taken!);
            b.Association.ReturnReceiveBuffer(taken!);
        }
        Assert.True(seen.Count <= 2, $"{seen.Count} buffers for 10 messages taken and returned one at a time");
    }
}
