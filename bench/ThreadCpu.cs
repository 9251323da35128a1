using System.Globalization;
using System.Text;

namespace Transport.Bench;

/// <summary>
/// CPU time, run-queue wait and voluntary context switches (sleeps, so wake-ups) of every thread of this process, from
/// Linux's <c>/proc/self/task/*/schedstat</c> and <c>status</c>; the difference of two snapshots is grouped by thread
/// name (the driver's receive and deadline threads, the thread pool's workers, the runtime's own). Empty elsewhere.
/// </summary>
internal sealed class ThreadCpu
{
    private readonly Dictionary<int, (string Name, long RunNs, long WaitNs, long Sleeps)> _threads = new();

    public static ThreadCpu Snapshot()
    {
        var s = new ThreadCpu();
        if (!Directory.Exists("/proc/self/task")) return s;
        foreach (var dir in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                var tid = int.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture);
                var name = File.ReadAllText(Path.Combine(dir, "comm")).Trim();
                var sched = File.ReadAllText(Path.Combine(dir, "schedstat")).Split(' ', StringSplitOptions.RemoveEmptyEntries);
                long sleeps = 0;
                foreach (var line in File.ReadLines(Path.Combine(dir, "status")))
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal))
                        sleeps = long.Parse(line.AsSpan("voluntary_ctxt_switches:".Length).Trim(), CultureInfo.InvariantCulture);
                s._threads[tid] = (name, long.Parse(sched[0], CultureInfo.InvariantCulture), long.Parse(sched[1], CultureInfo.InvariantCulture), sleeps);
            }
            // A thread that ended while it was read.
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException) { }
        }
        return s;
    }

    /// <summary>What each group of threads (by name) did between <paramref name="before"/> and this snapshot, per <paramref name="perCount"/> units.</summary>
    public string Since(ThreadCpu before, double seconds, long perCount, string unit)
    {
        var groups = new SortedDictionary<string, (int Threads, long RunNs, long WaitNs, long Sleeps, long MaxRunNs)>(StringComparer.Ordinal);
        foreach (var (tid, now) in _threads)
        {
            before._threads.TryGetValue(tid, out var was);
            if (was.Name is not null && was.Name != now.Name) was = default;
            var run = now.RunNs - was.RunNs;
            var sleeps = now.Sleeps - was.Sleeps;
            if (run <= 0 && sleeps <= 0) continue;
            var key = now.Name.StartsWith(".NET TP Worker", StringComparison.Ordinal) ? ".NET TP Worker" : now.Name;
            groups.TryGetValue(key, out var g);
            groups[key] = (g.Threads + 1, g.RunNs + run, g.WaitNs + now.WaitNs - was.WaitNs, g.Sleeps + sleeps, Math.Max(g.MaxRunNs, run));
        }
        var text = new StringBuilder();
        long total = 0;
        foreach (var (name, g) in groups.OrderByDescending(kv => kv.Value.RunNs))
        {
            total += g.RunNs;
            text.Append(CultureInfo.InvariantCulture,
                $"\n    {name} ({g.Threads} thread{(g.Threads == 1 ? "" : "s")}, busiest {g.MaxRunNs / 1e6:0} ms): {g.RunNs / 1e6:0} ms CPU " +
                $"({g.RunNs / 1e9 / seconds * 100:0} % of a core, {g.RunNs / (double)perCount:0} ns per {unit}), {g.WaitNs / 1e6:0} ms waiting to run, " +
                $"{g.Sleeps} sleeps ({g.Sleeps / (double)perCount:0.000} per {unit})");
        }
        return string.Create(CultureInfo.InvariantCulture,
            $"  threads: {total / 1e6:0} ms CPU in {seconds:0.000} s ({total / 1e9 / seconds * 100:0} % of a core, " +
            $"{total / (double)perCount:0} ns per {unit})") + text;
    }
}
