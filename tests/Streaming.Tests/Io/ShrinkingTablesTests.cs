using System.Net;
using System.Runtime.CompilerServices;
using Transport.Streaming.Io;
using Transport.Streaming.Sessions;
using Transport.TestKit;

namespace Transport.Streaming.Tests.Io;

/// <summary>
/// The server's tables sized by the most sessions held at once give their storage back once drained (docs/driver.md,
/// "Tables that shrink"): a rebuilt concurrent dictionary, a halved heap or list array, a trimmed dictionary; without
/// losing an entry, and without shrinking and growing in turn while the count moves within a band.
/// </summary>
public sealed class ShrinkingTablesTests
{
    [Fact]
    public void ADictionaryDrainedOfABurstIsRebuiltSmallAndKeepsEveryEntryLeft()
    {
        var table = new ShrinkingDictionary<int, string>();
        for (var i = 0; i < 1000; i++) Assert.True(table.TryAdd(i, "v" + i));
        var before = table.Current;
        Assert.Equal(1000, table.HighWater);
        for (var i = 0; i < 1000; i++)
        {
            if (i % 100 == 0) continue;   // 10 stay
            Assert.True(table.TryRemove(i, out var v));
            Assert.Equal("v" + i, v);
            // Every entry left is there at every step, rebuilt or not.
            if (i % 97 == 0)
                for (var k = i + 1; k < 1000; k += 37) Assert.True(table.TryGetValue(k, out var w) && w == "v" + k, $"{k} lost after removing {i}");
        }
        Assert.Equal(10, table.Count);
        Assert.Equal(10, table.Current.Count);
        Assert.Equal(2, table.Rebuilds);                       // at an eighth of the mark (125 entries), then of that (15)
        Assert.NotSame(before, table.Current);
        Assert.InRange(table.HighWater, 10, 15);               // the storage is sized for what is left, not for the burst
        for (var i = 0; i < 1000; i++) Assert.Equal(i % 100 == 0, table.TryGetValue(i, out _));
        Assert.False(table.TryRemove(new KeyValuePair<int, string>(0, "other")));   // a value-checked removal still checks
        Assert.True(table.TryRemove(new KeyValuePair<int, string>(0, "v0")));
        Assert.Equal(9, table.Count);
    }

    [Fact]
    public void TheOldStorageOfARebuiltDictionaryIsLetGo()
    {
        var table = new ShrinkingDictionary<int, byte[]>();
        var old = FillAndDrain(table);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(old.TryGetTarget(out _), "the instance that held the burst is still reachable");
        Assert.Equal(0, table.Count);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference<object> FillAndDrain(ShrinkingDictionary<int, byte[]> table)
    {
        for (var i = 0; i < 2000; i++) table.TryAdd(i, new byte[16]);
        var old = new WeakReference<object>(table.Current);
        for (var i = 0; i < 2000; i++) table.TryRemove(i, out _);
        return old;
    }

    [Fact]
    public void ADictionaryMovingWithinABandIsNeverRebuilt()
    {
        var table = new ShrinkingDictionary<int, int>();
        // Below the floor (64): a small server's table is never rebuilt, however often it fills and empties.
        for (var round = 0; round < 200; round++)
        {
            for (var i = 0; i < ShrinkingDictionary<int, int>.DefaultFloor - 1; i++) table.TryAdd(i, i);
            for (var i = 0; i < ShrinkingDictionary<int, int>.DefaultFloor - 1; i++) table.TryRemove(i, out _);
        }
        Assert.Equal(0, table.Rebuilds);
        // A busy table moving between its mark and more than an eighth of it.
        for (var i = 0; i < 1000; i++) table.TryAdd(i, i);
        for (var round = 0; round < 50; round++)
        {
            for (var i = 200; i < 1000; i++) table.TryRemove(i, out _);
            for (var i = 200; i < 1000; i++) table.TryAdd(i, i);
        }
        Assert.Equal(0, table.Rebuilds);
        Assert.Equal(1000, table.Count);
    }

    [Fact]
    public void RebuildsAcrossTheThresholdStayRareAndCheap()
    {
        var table = new ShrinkingDictionary<int, int>();
        long removals = 0, copied = 0;
        void Remove(int key)
        {
            var rebuilds = table.Rebuilds;
            Assert.True(table.TryRemove(key, out _));
            removals++;
            if (table.Rebuilds != rebuilds) copied += table.Count;
        }
        // The worst band: filled to the floor, drained to an eighth of it, over and over.
        for (var round = 0; round < 500; round++)
        {
            for (var i = 0; i < 64; i++) table.TryAdd(i, i);
            for (var i = 0; i < 64 - 7; i++) Remove(i);
            for (var i = 0; i < 64 - 7; i++) table.TryAdd(i, i);
            for (var i = 0; i < 64; i++) Remove(i);
        }
        Assert.True(table.Rebuilds >= 500, $"{table.Rebuilds} rebuilds: the band crossed the threshold every round");
        // Each rebuild copies at most an eighth of the mark and follows seven eighths of it removed: O(1) per removal.
        Assert.True(table.Rebuilds * 56 <= removals, $"{table.Rebuilds} rebuilds for {removals} removals");
        Assert.True(copied * 7 <= removals, $"{copied} entries copied for {removals} removals");
        Assert.Equal(0, table.Count);
    }

    [Fact]
    public async Task ConcurrentWritersAndReadersLoseNothingWhileTheTableIsRebuilt()
    {
        var table = new ShrinkingDictionary<long, long>();
        const int Writers = 4, PerWriter = 3000, Rounds = 5;
        using var stop = new CancellationTokenSource();
        long misses = 0;
        // A reader looks up the keys that stay (every 50th of each writer's first round) the whole time: once seen, one
        // must never be missing again, whichever instance the lookup found.
        var reader = Task.Run(() =>
        {
            var seen = new bool[Writers, PerWriter / 50];
            while (!stop.IsCancellationRequested)
                for (var w = 0; w < Writers; w++)
                    for (var j = 0; j < PerWriter / 50; j++)
                    {
                        var present = table.TryGetValue(((long)w << 32) | (j * 50L), out _);
                        if (seen[w, j] && !present) Interlocked.Increment(ref misses);
                        seen[w, j] |= present;
                    }
        });
        var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(() =>
        {
            for (var round = 0; round < Rounds; round++)
            {
                for (long i = 0; i < PerWriter; i++) table.TryAdd(((long)w << 32) | (i + round * PerWriter), i);
                for (long i = 0; i < PerWriter; i++)
                    if ((i + round * PerWriter) % 50 != 0 || round > 0) Assert.True(table.TryRemove(((long)w << 32) | (i + round * PerWriter), out _));
            }
        })).ToArray();
        await Task.WhenAll(writers);
        await stop.CancelAsync();
        await reader;
        Assert.True(table.Rebuilds >= 1, "the drains never rebuilt the table");
        Assert.Equal(Writers * PerWriter / 50, table.Count);
        Assert.Equal(table.Count, table.Current.Count);
        for (long w = 0; w < Writers; w++)
            for (long i = 0; i < PerWriter; i++)
                Assert.Equal(i % 50 == 0, table.TryGetValue((w << 32) | i, out _));
        Assert.Equal(0, Interlocked.Read(ref misses));
    }

    [Theory]
    [InlineData(1024, 256, 64, 1024)]   // a quarter full: kept
    [InlineData(1024, 255, 64, 512)]    // under a quarter: halved once (a quarter to a half full after)
    [InlineData(1024, 0, 64, 64)]       // empty: halved down to the floor
    [InlineData(4096, 100, 256, 256)]   // the floor holds
    [InlineData(100, 0, 64, 100)]       // half of it would be below the floor: kept
    public void TheShrinkTargetHalvesWhileUnderAQuarterFull(int capacity, int count, int floor, int expected) =>
        Assert.Equal(expected, ShrinkRule.Target(capacity, count, floor));

    [Fact]
    public void AfterAShrinkTheCountFillsAQuarterToAHalfSoNeitherNeighbourIsOneStepAway()
    {
        for (var capacity = 64; capacity <= 1 << 16; capacity *= 2)
            for (var count = 0; count < capacity; count += 1 + count / 7)
            {
                var target = ShrinkRule.Target(capacity, count, 64);
                if (target == capacity) continue;
                Assert.True(count < target / 2, $"{count} in {target}: the next growth would come too soon");
                Assert.True(count >= target / 4 || target == 64, $"{count} in {target}: the next shrink would come too soon");
            }
    }

    [Fact]
    public void TheHeapHalvesWhenDrainedAndKeepsItsOrder()
    {
        var heap = new PriorityQueue<int, int>();
        var random = new Random(7);
        for (var i = 0; i < 4096; i++) heap.Enqueue(i, random.Next(100_000));
        var last = int.MinValue;
        for (var i = 0; i < 4000; i++)
        {
            heap.TryDequeue(out _, out var p);
            Assert.True(p >= last);
            last = p;
        }
        Assert.True(heap.EnsureCapacity(0) >= 4096);
        Assert.True(ShrinkRule.Shrink(ref heap, 64));
        Assert.InRange(heap.EnsureCapacity(0), 2 * 96 + 1, 4 * 96);   // 96 entries fill a quarter to a half
        Assert.Equal(96, heap.Count);
        Assert.False(ShrinkRule.Shrink(ref heap, 64));                   // nothing more to give back
        while (heap.TryDequeue(out _, out var p))
        {
            Assert.True(p >= last, "the shrunk heap lost its order");
            last = p;
        }
        // What the heap will soon hold again keeps it larger (the deadline heap's compaction bound).
        for (var i = 0; i < 2048; i++) heap.Enqueue(i, i);
        while (heap.Count > 10) heap.Dequeue();
        Assert.True(ShrinkRule.Shrink(ref heap, 64, needed: 300));
        Assert.True(heap.EnsureCapacity(0) > 600);
    }

    [Fact]
    public void AListIsTrimmedOnlyWhenUnderAQuarterFull()
    {
        var list = new List<int>(Enumerable.Range(0, 1000));
        var grown = list.Capacity;
        list.RemoveRange(300, 700);
        Assert.False(ShrinkRule.Shrink(list, 64));   // 300 of 1000: more than a quarter
        Assert.Equal(grown, list.Capacity);
        list.Clear();
        Assert.True(ShrinkRule.Shrink(list, 64));
        Assert.InRange(list.Capacity, 64, 127);      // halved while at least the floor
    }

    [Fact]
    public async Task ADriverDrainedOfABurstOfPeersHoldsNoneAndGivesItsTablesBack()
    {
        // Virtual time: the peers' timers are the clock's, nothing waits for real time.
        var clock = new ManualClock();
        await using var driver = new UdpDriver(clock);
        var local = driver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        const int Burst = 600;
        var peers = Enumerable.Range(0, Burst).Select(i => new ToyPeer($"p{i}", $"frag{i:D4}")).ToArray();
        var handles = peers.Select(driver.Register).ToArray();
        // Each peer sends once to a remote of its own: one route each (127.1.x.y, the discard port: nobody listens there).
        for (var i = 0; i < Burst; i++)
        {
            var peer = peers[i];
            var remote = new IPEndPoint(new IPAddress(new byte[] { 127, 1, (byte)(i / 250), (byte)(1 + i % 250) }), 9);
            await handles[i].InvokeAsync(_ => { peer.Send([0x80, 1, 2, 3], remote); return 0; });
        }
        Assert.Equal(Burst, driver.PeerCount);
        Assert.Equal(Burst, driver.RouteCount);
        Assert.Equal(Burst, driver.UsernameFragmentCount);
        Assert.Equal(Burst, driver.TimerCount);
        var routes = driver.SocketFor(local, local.AddressFamily)!.Routes;
        Assert.Equal(Burst, routes.HighWater);

        foreach (var h in handles) await h.DisposeAsync();

        Assert.Equal(0, driver.PeerCount);
        Assert.Equal(0, driver.RouteCount);
        Assert.Equal(0, driver.UsernameFragmentCount);
        Assert.Equal(0, driver.TimerCount);
        Assert.Equal(0, driver.NotedTransactions);
        var (fragments, actors, _) = driver.Tables;
        (string Name, int HighWater, long Rebuilds)[] tables =
        [
            ("fragments", fragments.HighWater, fragments.Rebuilds),
            ("actors", actors.HighWater, actors.Rebuilds),
            ("routes", routes.HighWater, routes.Rebuilds),
        ];
        foreach (var (name, highWater, rebuilds) in tables)
        {
            Assert.True(rebuilds >= 1, $"the {name} table was never rebuilt");
            Assert.True(highWater <= Burst / 8, $"the {name} table is still sized for {highWater} entries");
        }

        // The driver goes on serving new peers after its tables were rebuilt.
        var late = new ToyPeer("late", "latefrag");
        await using var lateHandle = driver.Register(late);
        await lateHandle.InvokeAsync(_ => { late.Send([0x80, 9], new IPEndPoint(new IPAddress(new byte[] { 127, 1, 9, 9 }), 9)); return 0; });
        Assert.Equal(1, driver.RouteCount);
        Assert.Equal(1, driver.UsernameFragmentCount);
    }

    [Fact]
    public async Task TheDeadlineHeapGivesBackItsArrayWhenItsPeersGo()
    {
        // The system clock: the deadlines live on the driver's deadline thread. They lie an hour ahead, so nothing fires
        // and nothing is waited for: each inline peer arms its timer as it registers, and a dispose compacts at once.
        await using var driver = new UdpDriver();
        driver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        const int Burst = 1000;
        var due = driver.Now + TimeSpan.FromHours(1);
        var handles = Enumerable.Range(0, Burst)
            .Select(i => driver.Register(new ToyPeer($"p{i}", $"dl{i:D4}") { RunsInline = true, Deadline = due + TimeSpan.FromMilliseconds(i) }))
            .ToArray();
        Assert.True(driver.DeadlineHeapSize >= Burst, $"{driver.DeadlineHeapSize} heap entries for {Burst} armed timers");
        Assert.True(driver.DeadlineHeapCapacity >= Burst);

        foreach (var h in handles) await h.DisposeAsync();

        Assert.Equal(0, driver.TimerCount);
        Assert.InRange(driver.DeadlineHeapSize, 0, 64);                    // stale entries beyond the bound were compacted away
        Assert.InRange(driver.DeadlineHeapCapacity, 1, DeadlineThread.HeapFloor);
    }

    [Fact]
    public async Task TheServersPerClientTableIsTrimmedOnceItsClientsLeave()
    {
        var options = new StreamServerOptions { MaxSessionsPerClient = 1 };
        await using var server = new StreamServer(() => throw new InvalidOperationException("no session starts here"), options);
        var slots = new List<SessionSlot>();
        for (var i = 0; i < 1000; i++)
        {
            Assert.True(server.TryReserve($"198.51.100.{i % 250}:{i}", out var slot, out _));
            slots.Add(slot!);
        }
        Assert.True(server.PerClientCapacity >= 1000);
        // A fifth stays: no trim while the count is above an eighth of the most clients held.
        foreach (var slot in slots.Take(800)) slot.Dispose();
        Assert.True(server.PerClientCapacity >= 1000);
        foreach (var slot in slots.Skip(800).Take(190)) slot.Dispose();
        Assert.InRange(server.PerClientCapacity, 10, 200);
        Assert.Equal(10, server.Reserved);
        // The clients left are still counted after the trims: each holds its one place, a second is refused.
        for (var i = 990; i < 1000; i++)
        {
            Assert.False(server.TryReserve($"198.51.100.{i % 250}:{i}", out _, out var refusal));
            Assert.Equal("client_limit_reached", refusal!.Error);
        }
        foreach (var slot in slots.Skip(990)) slot.Dispose();
        Assert.Equal(0, server.Reserved);
        Assert.True(server.TryReserve("198.51.100.1:999", out var again, out _));
        again!.Dispose();
    }
}
