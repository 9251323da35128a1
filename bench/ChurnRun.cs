using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Io;
using Transport.Streaming.Sessions;
using Transport.Streaming.WebRtc;

namespace Transport.Bench;

/// <summary>
/// The churn soak: a server as a library user runs it (one <see cref="UdpDriver"/> on one 127.0.0.1
/// port, <see cref="StreamServer"/> and <see cref="WebRtcSessions"/> with an echo handler) and clients in a child
/// process (so the server's memory, RSS and threads are its own) that run full peer connections against it, N at a
/// time: offer, answer (over the child's pipes: signaling), ICE, DTLS, SCTP, a <c>control</c> and a <c>data</c>
/// channel, one message on <c>data</c> echoed back; then every other client closes politely (SCTP ABORT and DTLS
/// close_notify) and the others vanish (their socket is closed first, nothing is sent: the server finds out by its
/// liveness timers, shortened for the run and printed). At checkpoints the clients pause, the server is left to
/// release every session, and its managed memory (after a full compacting GC), RSS, threads and the driver's peers,
/// routes, fragments and timers are measured. The pass criteria are measured against the checkpoint after the first
/// <c>--baseline</c> cycles; exit code 1 when one fails.
/// <c>dotnet run -c Release --project bench -- churn [cycles=100000] [concurrency=32] [--checkpoint 5000] [--baseline 1000] [--minutes M]
/// [--warmup 64] [--smaps DIR] [--gcdump DIR]</c>
/// (<c>--minutes</c>: start no batch after M minutes, and judge what ran; <c>--warmup</c>: cycles before the counted
/// ones, in waves of 1, 4 and then <c>concurrency</c> at a time, whose failures are printed but not counted: a cold
/// start on a loaded machine; <c>--smaps</c>: the server's /proc/self/smaps at each checkpoint, to attribute RSS;
/// <c>--gcdump</c>: the server's managed heap at each checkpoint, by dotnet-gcdump, to attribute managed memory by type).
/// </summary>
public static class ChurnRun
{
    public const string ClientsVerb = "churn-clients";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    // A client does not take the port of a client that ended less than this before: the server may still hold that
    // client's session (a vanished one until its liveness limits, about 3.5 s), and a new connection on a 5-tuple a
    // live session holds is refused by design (docs/driver.md, "A reused remote address"). Skips are counted.
    private static readonly TimeSpan PortQuarantine = TimeSpan.FromSeconds(15);

    // The server's options: the defaults, except the liveness timers that release a vanished client (defaults: ICE
    // Disconnected after 5 s of silence, Failed 25 s later, consent expiry 30 s; the session's DisconnectedLimit 4 s
    // checked every 1 s), shortened so that an abandoned session is gone within about 3.5 s and a checkpoint's drain
    // is short. The polite half does not depend on them.
    private static readonly IceAgentOptions ServerIce = new()
    {
        DisconnectedTimeout = TimeSpan.FromSeconds(2),
        FailedTimeout = TimeSpan.FromSeconds(3),
        ConsentInterval = TimeSpan.FromSeconds(1),
        ConsentTimeout = TimeSpan.FromSeconds(4),
    };

    private static readonly StreamServerOptions ServerOptions = new()
    {
        DisconnectedLimit = TimeSpan.FromSeconds(1),
        HealthCheckInterval = TimeSpan.FromMilliseconds(250),
    };

    private const string ServerOptionsText =
        "server options: defaults except ICE DisconnectedTimeout 2 s (default 5), FailedTimeout 3 s (25), ConsentInterval 1 s (5), ConsentTimeout 4 s (30); " +
        "StreamServer DisconnectedLimit 1 s (4), HealthCheckInterval 250 ms (1 s)";

    public static async Task<int> RunAsync(string[] args)
    {
        var numbers = new List<string>();
        for (var i = 1; i < args.Length; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal)) i++;   // an option and its value
            else numbers.Add(args[i]);
        }
        var cycles = numbers.Count > 0 ? int.Parse(numbers[0], CultureInfo.InvariantCulture) : 100_000;
        var concurrency = numbers.Count > 1 ? int.Parse(numbers[1], CultureInfo.InvariantCulture) : 32;
        var checkpoint = Option(args, "--checkpoint", 5000);
        var baselineAt = Math.Min(Option(args, "--baseline", 1000), cycles);
        // A time budget: no new batch starts after this many minutes (the criteria are then judged on what ran).
        var minutes = Option(args, "--minutes", 0);
        var warmup = Option(args, "--warmup", 64);
        var smapsIndex = Array.IndexOf(args, "--smaps");
        var smapsDirectory = smapsIndex >= 0 && smapsIndex + 1 < args.Length ? args[smapsIndex + 1] : null;
        if (smapsDirectory is not null) Directory.CreateDirectory(smapsDirectory);
        var gcdumpIndex = Array.IndexOf(args, "--gcdump");
        var gcdumpDirectory = gcdumpIndex >= 0 && gcdumpIndex + 1 < args.Length ? Path.GetFullPath(args[gcdumpIndex + 1]) : null;
        if (gcdumpDirectory is not null) Directory.CreateDirectory(gcdumpDirectory);
        if (cycles < 1 || concurrency < 1 || checkpoint < 1 || baselineAt < 1 || warmup < 0)
            throw new ArgumentException("cycles, concurrency, --checkpoint and --baseline must be positive, --warmup not negative");

        var server = new StreamServer(() => new EchoHandler(), ServerOptions);
        var driver = new UdpDriver();
        var port = driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)).Port;
        var sessions = new WebRtcSessions(server, driver, new WebRtcTransportOptions { PeerConnection = new PeerConnectionOptions { Ice = ServerIce } });
        Console.WriteLine($"churn: {cycles} cycles, {concurrency} at a time, against one server port (127.0.0.1:{port}); half closed politely, half " +
            $"abandoned (socket closed, nothing sent)");
        Console.WriteLine(ServerOptionsText);
        Console.WriteLine($"clients: a child process (pid below), each client a peer connection on a UDP driver and socket of its own; machine: " +
            $"{Environment.ProcessorCount} cores, load average {LoadAverage()}");

        using var child = StartClients(concurrency);
        Console.WriteLine($"client process pid {child.Id}");
        var host = new Host(server, sessions, child);
        var reading = Task.Run(host.ReadChildAsync);
        if (warmup > 0)
        {
            // Not counted: both processes start cold (every code path JIT-compiled on first use), and on a loaded
            // machine a first wave of `concurrency` clients at once can starve past the liveness limits. One client
            // first, then four, then the rest at full concurrency; then every session is left to end.
            var clock = Stopwatch.StartNew();
            int warmOk = 0, warmFailed = 0, warmRebinds = 0;
            string? warmFailure = null;
            foreach (var (count, at) in new[] { (1, 1), (Math.Min(4, warmup - 1), 4), (warmup - 5, concurrency) })
            {
                if (count <= 0) continue;
                var result = await host.RunBatchAsync(count, at).ConfigureAwait(false);
                warmOk += result.Ok;
                warmFailed += result.Failed;
                warmRebinds += result.Rebinds;
                if (result.Failed > 0) warmFailure ??= result.FirstFailure;
            }
            var warmDrained = await DrainAsync(server, driver).ConfigureAwait(false);
            Console.WriteLine($"warm-up (not counted): {warmOk + warmFailed} cycles in waves of 1, 4 and {concurrency} at a time in " +
                $"{clock.Elapsed.TotalSeconds:0.0} s, {warmFailed} failed" + (warmFailure is null ? "" : $" (first: {warmFailure})") +
                $"; {warmRebinds} client ports skipped; drained: {warmDrained}; load average {LoadAverage()}");
        }
        Console.WriteLine("|  cycles | cyc./s | drain s | managed (vs baseline) | GC committed | RSS before trim (vs baseline) | anonymous before trim | RSS " +
            "(vs baseline) | RSS files | RSS anonymous | threads + pool | peers/routes/ufrags/transactions/timers (heap entries) | free receive buffers | " +
            "sessions/reserved | JIT-compiled methods (time) | load |");
        Console.WriteLine("|--------:|-------:|--------:|-----------------------|-------------:|-------------------|----------:|" +
            "-------------------|----------:|--------------:|----------------|----------------------------------|-----:|------------------:|------:|------|");
        var rows = new List<Row>();
        var failed = 0;
        var rebinds = 0;
        var started = Stopwatch.StartNew();
        var churnTime = TimeSpan.Zero;
        var done = 0;
        Row? baseline = null;
        int peakToBaseline = 0, peakAfter = 0;
        try
        {
            while (done < cycles)
            {
                if (minutes > 0 && done >= baselineAt && started.Elapsed > TimeSpan.FromMinutes(minutes))
                {
                    Console.WriteLine($"the time budget ({minutes} min) is spent: stopping after {done} of {cycles} cycles");
                    break;
                }
                var next = done < baselineAt ? baselineAt : Math.Min(cycles, (done / checkpoint + 1) * checkpoint);
                var batch = next - done;
                var clock = Stopwatch.StartNew();
                var result = await host.RunBatchAsync(batch, concurrency).ConfigureAwait(false);
                var took = clock.Elapsed;
                churnTime += took;
                done = next;
                failed += result.Failed;
                rebinds += result.Rebinds;
                var drain = Stopwatch.StartNew();
                var drained = await DrainAsync(server, driver).ConfigureAwait(false);
                var drainTime = drain.Elapsed;
                // The thread pool's workers retire after 20 s without work, and each holds thread-local caches
                // (ArrayPool buckets): every checkpoint is measured once the pool is back to its idle size.
                var settle = Stopwatch.StartNew();
                while (Threads().Pool > Environment.ProcessorCount && settle.Elapsed < TimeSpan.FromSeconds(25)) await Task.Delay(250).ConfigureAwait(false);
                var row = Measure(done, batch / took.TotalSeconds, drainTime, driver, server, drained, smapsDirectory);
                rows.Add(row);
                if (done == baselineAt) baseline = row;
                var peak = host.TakePeak();
                if (done <= baselineAt) peakToBaseline = Math.Max(peakToBaseline, peak);
                else peakAfter = Math.Max(peakAfter, peak);
                Console.WriteLine(row.Line(baseline) + $"  (at most {peak} sessions at once since the last checkpoint)" +
                    (result.Failed > 0 ? $"  ({result.Failed} cycles failed: {result.FirstFailure})" : ""));
                if (gcdumpDirectory is not null) await GcDumpAsync(gcdumpDirectory, done).ConfigureAwait(false);
            }
        }
        finally
        {
            host.Finish();
            if (!child.WaitForExit(30_000)) child.Kill(entireProcessTree: true);
            await reading.WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }

        var last = rows[^1];
        var b = baseline!;
        Console.WriteLine();
        Console.WriteLine($"threads besides the pool's at the baseline: {b.ThreadNames}");
        if (last.ThreadNames != b.ThreadNames) Console.WriteLine($"threads besides the pool's at the end: {last.ThreadNames}");
        Console.WriteLine($"{done} cycles in {churnTime.TotalSeconds:0} s of churn ({started.Elapsed.TotalSeconds:0} s with the checkpoints' drains): " +
            $"{done / churnTime.TotalSeconds:0.0} cycles/s; {failed} failed; " +
            $"{rebinds} cycles skipped a client port (a client that ended used it less than {PortQuarantine.TotalSeconds:0} s before)");
        Console.WriteLine($"server: {driver.Counters.Received} datagrams received, {driver.Counters.Sent} sent, {driver.Counters.DroppedUnknownPeer} dropped " +
            $"as from no known peer, {driver.Counters.PeerErrors} peer errors");
        Console.WriteLine($"sessions ended (warm-up included), by reason: " +
            $"{string.Join(", ", host.EndReasons.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}"))}");
        var checks = new List<(string, bool)>
        {
            ($"managed memory {Mb(last.Managed)} within 5 % of the baseline {Mb(b.Managed)} ({Percent(last.Managed, b.Managed)})",
                last.Managed <= b.Managed * 1.05),
            ($"RSS {Mb(last.Rss)} within 5 % of the baseline {Mb(b.Rss)} ({Percent(last.Rss, b.Rss)}; both after " +
                $"malloc_trim(0){(last.Trimmed ? "" : ": not available here")})", last.Rss <= b.Rss * 1.05),
            ($"the driver holds no peers, routes, username fragments, noted transactions or timers ({last.Peers}, {last.Routes}, {last.Fragments}, " +
                $"{last.Transactions}, {last.Timers})",
                last.Peers == 0 && last.Routes == 0 && last.Fragments == 0 && last.Transactions == 0 && last.Timers == 0),
            ($"no session left on the server ({last.Sessions} running, {last.Reserved} places reserved)", last.Sessions == 0 && last.Reserved == 0),
            ($"threads besides the thread pool's unchanged ({last.FixedThreads}, baseline {b.FixedThreads}; pool threads " +
                $"{last.PoolThreads}, baseline {b.PoolThreads})", last.FixedThreads == b.FixedThreads),
            ($"every cycle echoed its message ({failed} failed of {done})", failed == 0),
        };
        foreach (var (text, ok) in checks) Console.WriteLine((ok ? "PASS " : "FAIL ") + text);
        // Not a criterion: the server's tables sized by the sessions it held at once (the deadline heap, the driver's and
        // the server's concurrent dictionaries) give their storage back once drained (docs/driver.md, "Tables that
        // shrink"); printed so that a baseline taken at fewer sessions at once than later can be judged.
        var (fragmentTable, actorTable, _) = driver.Tables;
        Console.WriteLine($"INFO at most {peakToBaseline} sessions at once up to the baseline, {peakAfter} after it; drained tables now: " +
            $"deadline heap {driver.DeadlineHeapCapacity} slots, sized-for (high-water since the last rebuild) fragments {fragmentTable.HighWater}, " +
            $"peers {actorTable.HighWater}, sessions {server.SessionTable.HighWater}; " +
            $"rebuilds: fragments {fragmentTable.Rebuilds}, peers {actorTable.Rebuilds}, sessions {server.SessionTable.Rebuilds}");
        // Not a criterion (the native heap's free pages are not a leak), shown so that nobody has to take the trim on trust.
        Console.WriteLine($"INFO RSS before malloc_trim(0) {Mb(last.Untrimmed)} vs the baseline's {Mb(b.Untrimmed)} ({Percent(last.Untrimmed, b.Untrimmed)}; " +
            $"within 5 %: {(last.Untrimmed <= b.Untrimmed * 1.05 ? "yes" : "no")}); anonymous {Mb(last.UntrimmedAnonymous)} vs {Mb(b.UntrimmedAnonymous)}");

        await server.DisposeAsync().ConfigureAwait(false);
        await driver.DisposeAsync().ConfigureAwait(false);
        sessions.Dispose();
        return checks.All(c => c.Item2) ? 0 : 1;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    // The server's managed heap by type at a checkpoint (the clients are paused): dotnet-gcdump (a global dotnet tool) on
    // this process, written to DIR/server-CYCLES.gcdump; `dotnet-gcdump report FILE` lists the types.
    private static async Task GcDumpAsync(string directory, int cycles)
    {
        var file = Path.Combine(directory, string.Create(CultureInfo.InvariantCulture, $"server-{cycles:D6}.gcdump"));
        var tool = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet", "tools", "dotnet-gcdump");
        var info = new ProcessStartInfo(File.Exists(tool) ? tool : "dotnet-gcdump")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "collect", "-p", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), "-o", file }) info.ArgumentList.Add(a);
        try
        {
            using var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet-gcdump did not start");
            var text = await process.StandardOutput.ReadToEndAsync().ConfigureAwait(false) + await process.StandardError.ReadToEndAsync().ConfigureAwait(false);
            await process.WaitForExitAsync().ConfigureAwait(false);
            Console.WriteLine(process.ExitCode == 0 ? $"gcdump: {file}" : $"gcdump failed ({process.ExitCode}): {text.Trim()}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Console.WriteLine($"gcdump: dotnet-gcdump not found ({e.Message}); `dotnet tool install --global dotnet-gcdump`");
        }
    }

    // Until every session ended and its peer connection left the driver (bounded: abandoned sessions take about 3.5 s).
    private static async Task<bool> DrainAsync(StreamServer server, UdpDriver driver)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (server.Reserved == 0 && server.Sessions.Count == 0 && driver.PeerCount == 0 && driver.RouteCount == 0 && driver.TimerCount == 0) return true;
            await Task.Delay(50).ConfigureAwait(false);
        }
        return false;
    }

    private static Row Measure(int cycles, double rate, TimeSpan drain, UdpDriver driver, StreamServer server, bool drained, string? smapsDirectory)
    {
        for (var i = 0; i < 3; i++)
        {
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        // Aggressive: the GC also gives the system back the memory it holds free (regions kept for the next
        // allocations, sized by recent churn), so RSS measures what is live, not the GC's budget of the moment.
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        var managed = GC.GetTotalMemory(forceFullCollection: true);
        var (threads, pool, names) = Threads();
        // The native heap (glibc malloc: the runtime's and OpenSSL's allocations, one arena per thread up to 8 per
        // core) keeps the pages of freed chunks that are not at the top of an arena: RSS is measured before and after
        // malloc_trim(0), which gives them back, as the aggressive collection does for the GC's free regions.
        var (untrimmed, _, untrimmedAnonymous) = Rss();
        var trimmed = MallocTrim();
        var (rss, rssFile, rssAnonymous) = Rss();
        if (smapsDirectory is not null) File.WriteAllText(Path.Combine(smapsDirectory, $"server-{cycles:D6}.smaps"), File.ReadAllText("/proc/self/smaps"));
        return new Row(cycles, rate, drain, drained, managed, GC.GetGCMemoryInfo().TotalCommittedBytes, untrimmed, untrimmedAnonymous, trimmed, rss, rssFile,
            rssAnonymous, names, threads - pool, pool, driver.PeerCount, driver.RouteCount, driver.UsernameFragmentCount,
            driver.NotedTransactions, driver.TimerCount, driver.DeadlineHeapSize, driver.FreeReceiveBuffers, server.Sessions.Count,
                server.Reserved, LoadAverage(),
            System.Runtime.JitInfo.GetCompiledMethodCount(), System.Runtime.JitInfo.GetCompilationTime());
    }

    private sealed record Row(int Cycles, double Rate, TimeSpan Drain, bool Drained, long Managed, long Committed, long Untrimmed, long UntrimmedAnonymous,
        bool Trimmed, long Rss, long RssFile, long RssAnonymous, string ThreadNames, int FixedThreads, int PoolThreads, int Peers, int Routes,
        int Fragments, int Transactions, int Timers, int HeapEntries, int FreeBuffers, int Sessions, int Reserved, string Load,
            long JitMethods, TimeSpan JitTime)
    {
        public string Line(Row? baseline) => string.Create(CultureInfo.InvariantCulture,
            $"| {Cycles,7} | {Rate,6:0.0} | {Drain.TotalSeconds,5:0.0}{(Drained ? "" : "!")} | " +
            $"{Mb(Managed)}{(baseline is null ? "" : " " + Percent(Managed, baseline.Managed)),-9} | {Mb(Committed)} | " +
            $"{Mb(Untrimmed)}{(baseline is null ? "" : " " + Percent(Untrimmed, baseline.Untrimmed)),-9} | {Mb(UntrimmedAnonymous)} | " +
            $"{(Trimmed ? "" : "(no trim) ")}{Mb(Rss)}{(baseline is null ? "" : " " + Percent(Rss, baseline.Rss)),-9} | {Mb(RssFile)} | {Mb(RssAnonymous)} | " +
            $"{FixedThreads} + {PoolThreads} | {Peers}/{Routes}/{Fragments}/{Transactions}/{Timers} ({HeapEntries}) | {FreeBuffers} | {Sessions}/{Reserved} " +
            $"| {JitMethods} ({JitTime.TotalSeconds:0.0} s) | {Load} |");
    }

    private static string Mb(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1048576.0:0.00} MiB");

    private static string Percent(long value, long baseline) => string.Create(CultureInfo.InvariantCulture,
        $"{(value - baseline) * 100.0 / baseline:+0.0;-0.0;0.0} %");

    // Resident set size, and its part backed by files (code and data of the runtime's and our assemblies, touched as
    // code paths run for the first time) and anonymous (heaps, stacks, JIT'd code): from /proc/self/status.
    private static (long Total, long File, long Anonymous) Rss()
    {
        long total = Environment.WorkingSet, file = 0, anonymous = 0;
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            var colon = line.IndexOf(':');
            if (colon < 0) continue;
            var key = line[..colon];
            if (key is not ("VmRSS" or "RssFile" or "RssAnon")) continue;
            var kib = long.Parse(line[(colon + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
            if (key == "VmRSS") total = kib; else if (key == "RssFile") file = kib; else anonymous = kib;
        }
        return (total, file, anonymous);
    }

    // The process's threads, and those of them the thread pool and the runtime start and end on their own (the pool's
    // workers with load): the rest (driver threads, finalizer, timers, sockets' event loop) must not grow.
    private static (int Threads, int Pool, string Names) Threads()
    {
        int threads = 0, pool = 0;
        var names = new List<string>();
        foreach (var dir in Directory.GetDirectories("/proc/self/task"))
        {
            string name;
            try { name = File.ReadAllText(Path.Combine(dir, "comm")).Trim(); }
            catch (IOException) { continue; }
            threads++;
            // The runtime's lazily started helpers are not the server's: the background GC's thread starts with the
            // first background collection and stays; the tiered compiler's worker comes and goes.
            if (name.StartsWith(".NET TP", StringComparison.Ordinal) || name.StartsWith(".NET Tiered", StringComparison.Ordinal) || name == ".NET BGC") pool++;
            else names.Add(name);
        }
        names.Sort(StringComparer.Ordinal);
        return (threads, pool, string.Join(", ", names));
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int malloc_trim(nuint pad);

    // glibc's malloc_trim(0): the native heap's free pages back to the system; false where there is none (musl, not Linux).
    private static bool MallocTrim()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try { malloc_trim(0); return true; }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return false; }
    }

    private static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "?"; }
    }

    private static Process StartClients(int concurrency)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var info = new ProcessStartInfo(self) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") info.ArgumentList.Add(typeof(ChurnRun).Assembly.Location);
        info.ArgumentList.Add(ClientsVerb);
        info.ArgumentList.Add(concurrency.ToString(CultureInfo.InvariantCulture));
        return Process.Start(info) ?? throw new InvalidOperationException("could not start the client process");
    }

    private static string Encode(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    private static string Decode(string text) => Encoding.UTF8.GetString(Convert.FromBase64String(text));

    private sealed record BatchResult(int Ok, int Failed, int Rebinds, string FirstFailure);

    /// <summary>The server side of the pipes: answers the child's offers, runs batches of cycles.</summary>
    private sealed class Host(StreamServer server, WebRtcSessions sessions, Process child)
    {
        private readonly SemaphoreSlim _write = new(1, 1);
        private TaskCompletionSource<BatchResult>? _batch;
        public System.Collections.Concurrent.ConcurrentDictionary<string, int> EndReasons { get; } = new(StringComparer.Ordinal);
        private int _live, _peak;

        /// <summary>The most sessions the server held at once since the previous call (the checkpoints read it).</summary>
        public int TakePeak() => Interlocked.Exchange(ref _peak, Volatile.Read(ref _live));

        public async Task<BatchResult> RunBatchAsync(int cycles, int concurrency)
        {
            var batch = new TaskCompletionSource<BatchResult>(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _batch, batch);
            await WriteAsync(string.Create(CultureInfo.InvariantCulture, $"run {cycles} {concurrency}")).ConfigureAwait(false);
            return await batch.Task.ConfigureAwait(false);
        }

        public void Finish()
        {
            try { child.StandardInput.Close(); }
            catch (IOException) { }
        }

        public async Task ReadChildAsync()
        {
            string? line;
            while ((line = await child.StandardOutput.ReadLineAsync().ConfigureAwait(false)) is not null)
            {
                var parts = line.Split(' ', 5);
                switch (parts[0])
                {
                    case "offer":
                        var id = parts[1];
                        var offer = Decode(parts[2]);
                        _ = Task.Run(() => AnswerAsync(id, offer));
                        break;
                    case "ran":
                        Volatile.Read(ref _batch)?.TrySetResult(new BatchResult(int.Parse(parts[1], CultureInfo.InvariantCulture),
                            int.Parse(parts[2], CultureInfo.InvariantCulture),
                            int.Parse(parts[3], CultureInfo.InvariantCulture), parts.Length > 4 ? Decode(parts[4]) : ""));
                        break;
                    default:
                        Console.WriteLine("client: " + line);
                        break;
                }
            }
            Volatile.Read(ref _batch)?.TrySetException(new InvalidOperationException("the client process ended"));
        }

        private async Task AnswerAsync(string id, string offer)
        {
            try
            {
                if (!server.TryReserve(out var slot, out var refusal))
                    throw new InvalidOperationException("refused: " + Encoding.UTF8.GetString(refusal!.ToJson()));
                var accepted = await sessions.AcceptOfferAsync(slot!, offer).ConfigureAwait(false);
                var live = Interlocked.Increment(ref _live);
                for (var peak = Volatile.Read(ref _peak); live > peak; peak = Volatile.Read(ref _peak))
                    if (Interlocked.CompareExchange(ref _peak, live, peak) == peak) break;
                _ = accepted.Session.Completion.ContinueWith(t =>
                {
                    Interlocked.Decrement(ref _live);
                    if (t.IsCompletedSuccessfully) EndReasons.AddOrUpdate(t.Result.Kind.ToString(), 1, (_, n) => n + 1);
                }, TaskScheduler.Default);
                await WriteAsync($"answer {id} {Encode(accepted.Answer)}").ConfigureAwait(false);
            }
            catch (Exception e)
            {
                await WriteAsync($"refused {id} {Encode(e.GetType().Name + ": " + e.Message)}").ConfigureAwait(false);
            }
        }

        private async Task WriteAsync(string line)
        {
            await _write.WaitAsync().ConfigureAwait(false);
            try
            {
                await child.StandardInput.WriteLineAsync(line).ConfigureAwait(false);
                await child.StandardInput.FlushAsync().ConfigureAwait(false);
            }
            catch (IOException) { }
            finally { _write.Release(); }
        }
    }

    /// <summary>Echoes every data message on its channel (the sample echo server's handler, without media).</summary>
    private sealed class EchoHandler : IStreamHandler
    {
        public async IAsyncEnumerable<StreamOutput> RunAsync(StreamContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await foreach (var input in context.Inputs.WithCancellation(cancellationToken).ConfigureAwait(false))
                if (input is DataInput data) yield return new DataOutput(data.Data, data.IsText, data.Channel);
        }
    }

    /// <summary>The child: runs batches of cycles when told (<c>run N</c>), offers go out and answers come in on the pipes.</summary>
    public static async Task<int> RunClientsAsync(string[] args)
    {
        var concurrency = int.Parse(args[1], CultureInfo.InvariantCulture);
        // The child stands for `concurrency` independent clients: enough pool threads from the start that a client's
        // receive loop is not left waiting for the pool to grow (on a loaded machine, a cold start otherwise starved
        // the first clients past their 5 s ICE silence).
        ThreadPool.GetMinThreads(out var minWorkers, out var minPorts);
        ThreadPool.SetMinThreads(Math.Max(minWorkers, concurrency + Environment.ProcessorCount), minPorts);
        using var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var output = new SemaphoreSlim(1, 1);
        var waiting = new System.Collections.Concurrent.ConcurrentDictionary<long, TaskCompletionSource<string>>();
        var runs = System.Threading.Channels.Channel.CreateUnbounded<(int Count, int Concurrency)>();
        var quarantine = new System.Collections.Concurrent.ConcurrentDictionary<int, long>();
        long nextId = 0, nextCycle = 0;

        async Task Write(string line)
        {
            await output.WaitAsync().ConfigureAwait(false);
            try
            {
                await Console.Out.WriteLineAsync(line).ConfigureAwait(false);
                await Console.Out.FlushAsync().ConfigureAwait(false);
            }
            finally { output.Release(); }
        }

        async Task<string> Signal(string offer)
        {
            var id = Interlocked.Increment(ref nextId);
            var answer = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            waiting[id] = answer;
            await Write($"offer {id.ToString(CultureInfo.InvariantCulture)} {Encode(offer)}").ConfigureAwait(false);
            return await answer.Task.ConfigureAwait(false);
        }

        var reader = Task.Run(async () =>
        {
            string? line;
            while ((line = await Console.In.ReadLineAsync().ConfigureAwait(false)) is not null)
            {
                var parts = line.Split(' ', 3);
                if (parts[0] == "run")
                    runs.Writer.TryWrite((int.Parse(parts[1], CultureInfo.InvariantCulture), int.Parse(parts[2], CultureInfo.InvariantCulture)));
                else if (waiting.TryRemove(long.Parse(parts[1], CultureInfo.InvariantCulture), out var answer))
                {
                    if (parts[0] == "answer") answer.TrySetResult(Decode(parts[2]));
                    else answer.TrySetException(new InvalidOperationException("the server refused: " + Decode(parts[2])));
                }
            }
            runs.Writer.TryComplete();
        });

        await foreach (var (count, at) in runs.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            var remaining = count;
            int ok = 0, failed = 0, rebinds = 0;
            string? firstFailure = null;
            var workers = Enumerable.Range(0, Math.Min(Math.Min(concurrency, at), count)).Select(_ => Task.Run(async () =>
            {
                while (Interlocked.Decrement(ref remaining) >= 0)
                {
                    var cycle = Interlocked.Increment(ref nextCycle);
                    try
                    {
                        var firstPort = await CycleAsync(cycle, polite: cycle % 2 == 0, certificate, Signal, quarantine).ConfigureAwait(false);
                        if (!firstPort) Interlocked.Increment(ref rebinds);
                        Interlocked.Increment(ref ok);
                    }
                    catch (Exception e)
                    {
                        Interlocked.Increment(ref failed);
                        Interlocked.CompareExchange(ref firstFailure, $"cycle {cycle}: {e.GetType().Name}: {e.Message}", null);
                    }
                }
            })).ToArray();
            await Task.WhenAll(workers).ConfigureAwait(false);
            await Write(string.Create(CultureInfo.InvariantCulture, $"ran {ok} {failed} {rebinds} {Encode(firstFailure ?? "")}")).ConfigureAwait(false);
        }
        await reader.ConfigureAwait(false);
        return 0;
    }

    // One client: connect, one message echoed on the data channel, then a polite close or a vanishing. False when
    // the first port the system gave was quarantined (another was taken).
    private static async Task<bool> CycleAsync(long cycle, bool polite, DtlsCertificate certificate, Func<string, Task<string>> signal,
        System.Collections.Concurrent.ConcurrentDictionary<int, long> quarantine)
    {
        // Many short-lived sockets: their receives run as async loops on the pool rather than a thread each.
        var driver = new UdpDriver(options: new UdpDriverOptions { DedicatedReceiveThreads = false });
        PeerConnection? pc = null;
        var vanished = false;
        var stage = "bind";
        var port = 0;
        var firstPort = true;
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                port = driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)).Port;
                if (attempt == 20 || !quarantine.TryGetValue(port, out var ended) || Stopwatch.GetElapsedTime(ended) > PortQuarantine) break;
                firstPort = false;
                await driver.DisposeAsync().ConfigureAwait(false);
                driver = new UdpDriver(options: new UdpDriverOptions { DedicatedReceiveThreads = false });
            }
            // Quarantined from before the socket closes (the system may hand the port out again at once) until the
            // time stamp of the end replaces this mark below.
            quarantine[port] = long.MaxValue;
            pc = new PeerConnection(driver, new PeerConnectionOptions { Certificate = certificate, Ice = new IceAgentOptions { Role = IceRole.Controlling } });
            using var cts = new CancellationTokenSource(Patience);
            stage = "offer";
            var offer = await pc.CreateOfferAsync(cts.Token).ConfigureAwait(false);
            stage = "signaling";
            var answer = await signal(offer).WaitAsync(cts.Token).ConfigureAwait(false);
            stage = "answer";
            await pc.SetRemoteDescriptionAsync(answer, cts.Token).ConfigureAwait(false);
            stage = "channels open";
            var control = pc.CreateDataChannelAsync("control", null, cts.Token);
            var data = await pc.CreateDataChannelAsync("data", null, cts.Token).ConfigureAwait(false);
            await control.ConfigureAwait(false);
            var text = "churn " + cycle.ToString(CultureInfo.InvariantCulture);
            stage = "send";
            await pc.SendAsync(data, text, cts.Token).ConfigureAwait(false);
            stage = "echo";
            var echoed = false;
            await foreach (var e in pc.Events.ReadAllAsync(cts.Token).ConfigureAwait(false))
            {
                if (e is DataChannelMessageReceived m && m.Channel.Label == "data" && Encoding.UTF8.GetString(m.Data) == text) { echoed = true; break; }
                if (e is ConnectionStateChanged { State: ConnectionState.Closed or ConnectionState.Failed } s)
                    throw new InvalidOperationException($"closed before the echo: {s.Reason}");
            }
            if (!echoed) throw new InvalidOperationException("the events ended before the echo");
            if (!polite)
            {
                // Vanish: the socket closes before anything (ABORT, close_notify) can be sent.
                vanished = true;
                await driver.DisposeAsync().ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            throw new InvalidOperationException($"{stage} (connection {pc?.State}: {pc?.Reason}): {e.GetType().Name}: {e.Message}", e);
        }
        finally
        {
            if (!vanished)
            {
                if (pc is not null) await pc.DisposeAsync().ConfigureAwait(false);   // SCTP ABORT and DTLS close_notify go out
                await driver.DisposeAsync().ConfigureAwait(false);
            }
            else if (pc is not null)
            {
                await pc.DisposeAsync().ConfigureAwait(false);   // its actor already stopped with the driver: nothing is sent
            }
            if (port != 0)
            {
                quarantine[port] = Stopwatch.GetTimestamp();
                if (quarantine.Count > 8192)
                {
                    foreach (var (p, t) in quarantine)
                        if (Stopwatch.GetElapsedTime(t) > PortQuarantine) quarantine.TryRemove(p, out _);
                }
            }
        }
        return firstPort;
    }
}
