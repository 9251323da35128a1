using System.Diagnostics;

namespace Transport.Fuzz.Tests;

/// <summary>
/// Stateful cores stay usable: a connected pair takes 100,000 garbage datagrams (mutated copies of its
/// target's seeds and of the inputs the fuzzer kept, plus random bytes), seeded and reproducible, and then still
/// carries data both ways (the targets' own checks, which throw when it does not).
/// </summary>
public sealed class GarbageSoakTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Count = 100_000;

    /// <summary>The records of every seed of a target (after its flags byte when it has one), as a pool to mutate.</summary>
    private static List<byte[]> Pool(string target, bool flagsByte)
    {
        var pool = new List<byte[]>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(CorpusReplayTests.Root(), "fuzz", "corpus", target)).Order(StringComparer.Ordinal))
        {
            var data = File.ReadAllBytes(file).AsSpan(flagsByte ? 1 : 0);
            foreach (var (offset, length) in FuzzRecords.Split(data)) if (length > 0) pool.Add(data.Slice(offset, length).ToArray());
        }
        Assert.NotEmpty(pool);
        return pool;
    }

    private static IEnumerable<byte[]> Garbage(List<byte[]> pool, int seed)
    {
        var rng = new Random(seed);
        for (var i = 0; i < Count; i++)
        {
            if (rng.Next(10) == 0)
            {
                var random = new byte[rng.Next(0, 1500)];
                rng.NextBytes(random);
                yield return random;
                continue;
            }
            var source = pool[rng.Next(pool.Count)];
            var length = rng.Next(3) == 0 ? rng.Next(0, source.Length + 1) : source.Length;
            var copy = source.AsSpan(0, length).ToArray();
            for (var k = rng.Next(1, 5); k > 0 && copy.Length > 0; k--) copy[rng.Next(copy.Length)] = (byte)rng.Next(256);
            yield return copy;
        }
    }

    private void Timed(string name, Action run)
    {
        var sw = Stopwatch.StartNew();
        run();
        output.WriteLine($"{name}: {Count} garbage datagrams, then data both ways: {sw.Elapsed.TotalSeconds:0.00} s");
    }

    [Fact]
    public void SctpAssociationWorksAfter100000GarbagePackets() =>
        // Flags 1: the CRC32c is filled in, so every packet with the right tag (the seeds') reaches the chunk handlers.
        Timed("sctp", () => Assert.True(SctpTargets.EstablishedWith(1, Garbage(Pool("sctp-established", flagsByte: true), 16), stepEvery: 100,
            out var outcome), outcome));

    [Fact]
    public void SctpAssociationWithTheRightTagSurvives100000GarbagePacketsOrSaysWhy() =>
        // Flags 3: B's verification tag too: a mutated chunk may then be a valid ABORT, which legitimately closes it;
        // the target then requires a Closed or Failed event, and otherwise data both ways.
        Timed("sctp (tag filled in)", () => SctpTargets.EstablishedWith(3, Garbage(Pool("sctp-established", flagsByte: true), 16), stepEvery: 100));

    [Fact]
    public void DtlsConnectionWorksAfter100000GarbageDatagrams() =>
        Timed("dtls", () => DtlsTargets.ConnectedWith(Garbage(Pool("dtls-connected", flagsByte: false), 16), stepEvery: 100));

    [Fact]
    public void IceAgentsWorkAfter100000GarbageDatagrams() =>
        // Flags 1: STUN is re-signed with the right key, so the checks get past MESSAGE-INTEGRITY.
        Timed("ice", () => StunIceTargets.IceConnectedWith(1, Garbage(Pool("ice-connected", flagsByte: true), 16), stepEvery: 100));

    [Fact]
    public void PeerConnectionWorksAfter100000GarbageDatagrams() =>
        Timed("peer", () => PeerTargets.ConnectedWith(Garbage(Pool("peer-connected", flagsByte: false), 16), stepEvery: 100));
}
