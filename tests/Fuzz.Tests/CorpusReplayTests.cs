using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Transport.Fuzz.Tests;

/// <summary>
/// The fuzzing regression suite: every seed of fuzz/corpus/TARGET and every crash or hang input the fuzzer ever found
/// (fuzz/crashes/TARGET, kept after the fix) runs through its target. None may throw, and none may take over 100 ms
/// beyond the target's own set-up (a connected pair for the stateful ones), in the fastest of five runs. Time is the
/// CPU time of the thread that runs the target (the targets are sans-IO and run on the caller's thread), so a loaded
/// machine that keeps the thread waiting for a core does not make an input slow; a hang is work, and work is counted.
/// </summary>
public sealed class CorpusReplayTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly TimeSpan SlowInput = TimeSpan.FromMilliseconds(100);

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec { public long Seconds; public long Nanoseconds; }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec time);

    // CLOCK_THREAD_CPUTIME_ID on Linux; elsewhere the wall clock (a loaded machine can then fail a bound).
    private static TimeSpan ThreadCpuNow() =>
        OperatingSystem.IsLinux() && ClockGetTime(3, out var t) == 0
            ? TimeSpan.FromTicks(t.Seconds * TimeSpan.TicksPerSecond + t.Nanoseconds / 100)
            : TimeSpan.FromTicks(Stopwatch.GetTimestamp() * TimeSpan.TicksPerSecond / Stopwatch.Frequency);

    internal static string Root()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Transport.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Transport.sln not found above " + AppContext.BaseDirectory);
    }

    public static TheoryData<string> Targets()
    {
        var data = new TheoryData<string>();
        foreach (var t in FuzzTargets.All) data.Add(t.Name);
        return data;
    }

    private static List<string> Inputs(string folder) =>
        Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder).Where(f => !Path.GetFileName(f).StartsWith('.')).Order(StringComparer.Ordinal).ToList() : [];

    [Theory]
    [MemberData(nameof(Targets))]
    public void CorpusAndCrashInputsRunCleanAndFast(string name)
    {
        var target = FuzzTargets.Find(name)!;
        var root = Root();
        var seeds = Inputs(Path.Combine(root, "fuzz", "corpus", name));
        var crashes = Inputs(Path.Combine(root, "fuzz", "crashes", name));
        Assert.NotEmpty(seeds);
        // Warm-up (JIT, the targets' static state), then the set-up time of the target itself (a stateful target
        // connects a pair for every input): the bound is on what the input adds to it.
        var first = File.ReadAllBytes(seeds[0]);
        target.Run(first);
        var baseline = TimeSpan.MaxValue;
        for (var i = 0; i < 3; i++)
        {
            var start = ThreadCpuNow();
            target.Run(first);
            baseline = TimeSpan.FromTicks(Math.Min(baseline.Ticks, (ThreadCpuNow() - start).Ticks));
        }
        var bound = SlowInput + baseline;
        var slowest = (File: "", Time: TimeSpan.Zero);
        foreach (var file in seeds.Concat(crashes))
        {
            var data = File.ReadAllBytes(file);
            var time = TimeSpan.MaxValue;
            // A loaded machine can stall any one run: an input is slow only when each of five runs is.
            for (var attempt = 0; attempt < 5 && time > bound; attempt++)
            {
                var start = ThreadCpuNow();
                try { target.Run(data); }
                catch (Exception e) { Assert.Fail($"{name} crashed on {Path.GetRelativePath(root, file)}: {e}"); }
                time = TimeSpan.FromTicks(Math.Min(time.Ticks, (ThreadCpuNow() - start).Ticks));
            }
            if (time > slowest.Time) slowest = (file, time);
            Assert.True(time <= bound,
                $"{name}: {Path.GetRelativePath(root, file)} took {time.TotalMilliseconds:0} ms of CPU (bound {SlowInput.TotalMilliseconds:0} ms over the " +
                $"target's own {baseline.TotalMilliseconds:0.0} ms)");
        }
        output.WriteLine($"{name}: {seeds.Count} seeds, {crashes.Count} crash inputs, target set-up {baseline.TotalMilliseconds:0.0} ms, slowest " +
            $"{slowest.Time.TotalMilliseconds:0.0} ms ({Path.GetFileName(slowest.File)})");
    }

    [Fact]
    public void EveryCrashFolderNamesATarget()
    {
        var crashes = Path.Combine(Root(), "fuzz", "crashes");
        if (!Directory.Exists(crashes)) return;
        foreach (var dir in Directory.EnumerateDirectories(crashes))
            Assert.True(FuzzTargets.Find(Path.GetFileName(dir)) is not null, $"fuzz/crashes/{Path.GetFileName(dir)} is no target");
    }

    [Fact]
    public void TargetNamesAreUniqueAndEachHasASeedCorpus()
    {
        var names = FuzzTargets.All.Select(t => t.Name).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.True(names.Count >= 25, $"{names.Count} targets");
        foreach (var n in names) Assert.NotEmpty(Inputs(Path.Combine(Root(), "fuzz", "corpus", n)));
    }

    [Fact]
    public void RecordsSplitAndJoinRoundTrip()
    {
        byte[][] datagrams = [[1, 2, 3], [], new byte[300]];
        var joined = FuzzRecords.Join(datagrams);
        var split = FuzzRecords.Split(joined);
        Assert.Equal(3, split.Count);
        for (var i = 0; i < 3; i++) Assert.Equal(datagrams[i], joined.AsSpan(split[i].Offset, split[i].Length).ToArray());
        // A short last record takes what is left; one stray byte is a record too.
        Assert.Equal([(2, 1)], FuzzRecords.Split([0, 9, 7]));
        Assert.Equal([(0, 1)], FuzzRecords.Split([5]));
    }
}
