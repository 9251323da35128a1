using System.Diagnostics;
using SharpFuzz;

namespace Transport.Fuzz;

/// <summary>
/// The fuzz driver (fuzz/run.sh uses it):
///   Transport.Fuzz list                     the targets
///   Transport.Fuzz afl TARGET               the AFL++ out-of-process loop (under afl-fuzz, instrumented assemblies)
///   Transport.Fuzz replay TARGET PATH...    runs files (or every file of folders) once, prints the slowest
///   Transport.Fuzz corpus DIR               writes the seed corpus (RFC vectors and traffic captured from our stack)
///   Transport.Fuzz alloc CORPUS [TARGET...]  managed bytes allocated per input at 64 B to 64 KiB, against each target's bound
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] == "list")
        {
            foreach (var t in FuzzTargets.All) Console.WriteLine($"{t.Name,-20} {t.Description}");
            return 0;
        }
        switch (args[0])
        {
            case "afl" when args.Length == 2:
                var target = Find(args[1]);
                // Instrumented code runs only inside Fuzzer.Run (the coverage map is set up there): no warm-up before it.
                Fuzzer.OutOfProcess.Run(stream =>
                {
                    using var copy = new MemoryStream();
                    stream.CopyTo(copy);
                    target.Run(copy.GetBuffer().AsSpan(0, (int)copy.Length));
                });
                return 0;
            case "replay" when args.Length >= 3:
                return Replay(Find(args[1]), args.Skip(2));
            case "corpus" when args.Length == 2:
                foreach (var (name, count) in CorpusBuilder.Write(args[1])) Console.WriteLine($"{name,-20} {count} seeds");
                return 0;
            case "alloc" when args.Length >= 2:
                return Alloc(args[1], args.Skip(2).Select(Find).ToList());
            default:
                Console.Error.WriteLine("usage: Transport.Fuzz list | afl TARGET | replay TARGET PATH... | corpus DIR | alloc CORPUS [TARGET...]");
                return 2;
        }
    }

    private static FuzzTarget Find(string name) =>
        FuzzTargets.Find(name) ?? throw new ArgumentException($"no target '{name}'; see 'list'");

    // The allocation growth table (docs/fuzzing.md, "Allocation growth"); exit 1 when a target is over its bound.
    private static int Alloc(string corpus, List<FuzzTarget> targets)
    {
        if (targets.Count == 0) targets = [.. FuzzTargets.All];
        Console.WriteLine(AllocationGrowth.Header);
        var over = 0;
        foreach (var t in targets)
        {
            var row = AllocationGrowth.Measure(t, Path.Combine(corpus, t.Name));
            Console.WriteLine(row.Line());
            foreach (var p in row.Over)
            {
                over++;
                Console.WriteLine($"  OVER {t.Name} {p.Kind} {p.Length} B: {p.Bytes} B allocated, bound {row.Limit(p.Length)} B");
            }
        }
        return over == 0 ? 0 : 1;
    }

    private static int Replay(FuzzTarget target, IEnumerable<string> paths)
    {
        var files = paths.SelectMany(p => Directory.Exists(p) ? Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories) : [p])
            .Where(f => !Path.GetFileName(f).StartsWith('.') && !f.EndsWith(".txt", StringComparison.Ordinal)).ToList();
        var failures = 0;
        var slowest = (Name: "", Ms: 0.0);
        var times = new List<double>();
        foreach (var f in files)
        {
            var data = File.ReadAllBytes(f);
            var sw = Stopwatch.StartNew();
            try { target.Run(data); }
            catch (Exception e) { failures++; Console.WriteLine($"CRASH {f}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}"); }
            var ms = sw.Elapsed.TotalMilliseconds;
            times.Add(ms);
            if (ms > slowest.Ms) slowest = (f, ms);
        }
        times.Sort();
        var median = times.Count == 0 ? 0 : times[times.Count / 2];
        Console.WriteLine($"{target.Name}: {files.Count} inputs, {failures} crashes, median {median:0.00} ms, slowest {slowest.Ms:0.0} ms ({slowest.Name}; " +
            $"the first input includes the JIT)");
        return failures == 0 ? 0 : 1;
    }
}
