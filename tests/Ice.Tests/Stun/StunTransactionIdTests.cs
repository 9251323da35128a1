using Transport.Ice.Stun;

namespace Transport.Ice.Tests.Stun;

/// <summary>Transaction IDs come from per-thread blocks of the system's cryptographic generator (RFC 8489 section 5).</summary>
public sealed class StunTransactionIdTests
{
    private static byte[] Bytes(StunTransactionId id)
    {
        var b = new byte[12];
        id.WriteTo(b);
        return b;
    }

    [Fact]
    public void IdsDrawnAcrossManyBlocksAndThreadsAreAllDistinct()
    {
        // 4 threads x 20 000 IDs: each thread's block of 1024 bytes serves 85 IDs, so this crosses hundreds of refills.
        var perThread = new HashSet<string>[4];
        Parallel.For(0, perThread.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, t =>
        {
            var set = new HashSet<string>();
            for (var i = 0; i < 20_000; i++) set.Add(Convert.ToHexString(Bytes(StunTransactionId.NewRandom())));
            perThread[t] = set;
        });
        Assert.All(perThread, s => Assert.Equal(20_000, s.Count));
        var all = new HashSet<string>(perThread.SelectMany(s => s));
        Assert.Equal(80_000, all.Count);
    }

    [Fact]
    public void EveryBytePositionTakesManyValues()
    {
        // Not a randomness test suite, but catches a block handed out twice, cleared bytes leaking out, or a stuck offset.
        var seen = new HashSet<byte>[12];
        for (var p = 0; p < 12; p++) seen[p] = new HashSet<byte>();
        for (var i = 0; i < 5000; i++)
        {
            var b = Bytes(StunTransactionId.NewRandom());
            for (var p = 0; p < 12; p++) seen[p].Add(b[p]);
        }
        Assert.All(seen, s => Assert.True(s.Count > 240, $"only {s.Count} distinct values"));
    }
}
