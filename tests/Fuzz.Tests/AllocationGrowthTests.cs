namespace Transport.Fuzz.Tests;

/// <summary>
/// Allocation that grows with input size: for every target, inputs of 64 B to 64 KiB (the largest seed repeated, its
/// second half repeated, random bytes) and the largest seed itself; the managed bytes one run allocates must stay
/// within the target's stated bound <c>c + k * length</c> (<see cref="AllocationGrowth"/>; the table and the bounds
/// are in docs/fuzzing.md). Also runnable outside the tests: <c>Transport.Fuzz alloc fuzz/corpus [TARGET...]</c>.
/// </summary>
public sealed class AllocationGrowthTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Theory]
    [MemberData(nameof(CorpusReplayTests.Targets), MemberType = typeof(CorpusReplayTests))]
    public void AllocationPerInputStaysWithinTheTargetsBound(string name)
    {
        var target = FuzzTargets.Find(name)!;
        var row = AllocationGrowth.Measure(target, Path.Combine(CorpusReplayTests.Root(), "fuzz", "corpus", name));
        output.WriteLine(AllocationGrowth.Header);
        output.WriteLine(row.Line());
        foreach (var p in row.Points) output.WriteLine($"  {p.Kind,-6} {p.Length,6} B: {p.Bytes,10:N0} B allocated (bound {row.Limit(p.Length):N0})");
        var over = row.Over.ToList();
        Assert.True(over.Count == 0, $"{name}: " + string.Join("; ", over.Select(p =>
            $"{p.Kind} input of {p.Length} B allocated {p.Bytes:N0} B, over the bound {row.Limit(p.Length):N0} B " +
            $"({row.SetUp:N0} + {AllocationGrowth.Slack:N0} + {row.Bound.PerByte} per byte: {row.Bound.Why})")));
    }

    [Fact]
    public void EveryTargetHasAnAllocationBoundWithAReason()
    {
        foreach (var t in FuzzTargets.All)
        {
            Assert.True(AllocationGrowth.Bounds.TryGetValue(t.Name, out var bound), $"{t.Name} has no allocation bound");
            Assert.InRange(bound!.PerByte, 0, 64);
            Assert.False(string.IsNullOrWhiteSpace(bound.Why));
        }
        Assert.Empty(AllocationGrowth.Bounds.Keys.Except(FuzzTargets.All.Select(t => t.Name)));
    }

    [Fact]
    public void TheMeasureCountsWhatARunAllocates()
    {
        // A target that allocates 10 bytes per input byte must measure at least that, and the row must call it over a
        // bound of 4 per byte: the measurement is not blind to growth.
        var growing = new FuzzTarget("stun", data => GC.KeepAlive(new byte[data.Length * 10]), "test");
        var bytes = AllocationGrowth.Allocated(growing, new byte[65536]);
        Assert.InRange(bytes, 655_360, 655_360 + 1024);
        var points = AllocationGrowth.Sizes.SelectMany(s => new[] { "repeat", "tail", "random" }.Select(k => new AllocationGrowth.Point(k, s, s * 10L)))
            .Append(new AllocationGrowth.Point("seed", 100, 1000)).ToList();
        var row = new AllocationGrowth.Row("stun", new AllocationGrowth.Bound(4, "test"), points, 640, 100);
        Assert.Equal(10.0, row.Slope, 3);
        Assert.Contains(row.Over, p => p.Length == 65536);
    }
}
