using Transport.Streaming.Io;

namespace Transport.Streaming.Tests.Io;

/// <summary>
/// Found by the churn soak: the driver's receive-buffer pool kept the largest backlog it had seen for good,
/// so a server's managed memory stepped up with each load peak (+160 KiB, +7 % of its 2.2 MiB, after a peak at 45,000
/// cycles). Now the buffers that stayed free between two full collections are let go.
/// </summary>
public sealed class DatagramBuffersTests
{
    private static List<byte[]> RentAll(DatagramBuffers pool, int n) => Enumerable.Range(0, n).Select(_ => pool.Rent()).ToList();

    [Fact]
    public void ABurstsBuffersAreKeptWhileUsedAndLetGoOnceUnusedForAWholeInterval()
    {
        var pool = new DatagramBuffers(2048, 1024, trimOnFullCollections: false);
        var burst = RentAll(pool, 300);
        foreach (var b in burst) pool.Return(b);
        Assert.Equal(300, pool.Free);

        // Steady traffic needs 20 at a time: the first trim only starts the interval (all 300 were in use just
        // before it); the next lets go of the 280 that none of the traffic needed, and keeps the 20.
        pool.Trim();
        for (var round = 0; round < 5; round++)
        {
            var some = RentAll(pool, 20);
            foreach (var b in some) pool.Return(b);
        }
        Assert.Equal(280, pool.Trim());
        Assert.Equal(20, pool.Free);

        // Idle: the interval after that lets go of the rest.
        Assert.Equal(20, pool.Trim());
        Assert.Equal(0, pool.Free);
        Assert.Equal(2048, pool.Rent().Length);   // an empty pool still rents (a fresh array)
    }

    [Fact]
    public void TheBoundStillHoldsAndForeignSizesAreNotKept()
    {
        var pool = new DatagramBuffers(2048, 8, trimOnFullCollections: false);
        foreach (var b in RentAll(pool, 20)) pool.Return(b);
        pool.Return(new byte[100]);
        Assert.Equal(8, pool.Free);
    }

    [Fact]
    public void FullCollectionsTrimTheDriversPool()
    {
        // Wired to the GC: an idle pool is empty after a few full collections (its hook's finalizer runs after each).
        var pool = new DatagramBuffers(2048, 1024);
        foreach (var b in RentAll(pool, 100)) pool.Return(b);
        Assert.Equal(100, pool.Free);
        for (var i = 0; i < 6 && pool.Free > 0; i++)
        {
            GC.Collect(2, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();
        }
        Assert.Equal(0, pool.Free);
        GC.KeepAlive(pool);
    }
}
