using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Transport.Dtls;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;

namespace Transport.Bench;

/// <summary>
/// A measured run (not BenchmarkDotNet) of two of our peer connections on 127.0.0.1, each on its own UDP driver
/// (as two processes would be), with node-datachannel (libdatachannel) measured the same way in the same run:
/// set-up time (offer created -> data channel open, median and p99 over N runs; certificates generated once, as
/// browsers reuse theirs) and data channel throughput with 1 KiB and 64 KiB messages (at most 4 MiB buffered),
/// with the bytes allocated per message by both of our sides together, after three warm-up rounds of every transfer
/// (each followed by a wait for the tiered JIT to be quiet).
/// Set-up and throughput run in child processes of their own (BenchmarkDotNet-style isolation).
/// <c>dotnet run -c Release --project bench -- peer-connection [setup-runs=200] [megabytes=64] [--no-node]</c>
/// </summary>
public static class PeerConnectionRun
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    public static async Task<int> RunAsync(string[] args)
    {
        var numbers = args.Skip(1).Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray();
        var runs = numbers.Length > 0 ? int.Parse(numbers[0], CultureInfo.InvariantCulture) : 200;
        var megabytes = numbers.Length > 1 ? int.Parse(numbers[1], CultureInfo.InvariantCulture) : 64;
        var withNode = !args.Contains("--no-node");
        var part = args.SkipWhile(a => a != "--part").Skip(1).FirstOrDefault();

        // Each figure in a process of its own, as BenchmarkDotNet runs each benchmark: 200 handshakes first would
        // leave their profile in the tiered JIT and their threads and heap behind, and the transfer after them is
        // then measured in a state no steady-state server stays in (it measured 10-30 % lower).
        if (part is null)
        {
            var ok = RunPart("setup", args) & RunPart("throughput", args);
            if (withNode) RunNode(runs, megabytes);
            return ok ? 0 : 1;
        }

        var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        // --no-batch: one socket call per datagram (UdpDriverOptions.BatchedIo = false), to compare.
        var driverOptions = new UdpDriverOptions { BatchedIo = !args.Contains("--no-batch") };
        await using var d1 = new UdpDriver(options: driverOptions);
        await using var d2 = new UdpDriver(options: driverOptions);
        d1.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        d2.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        if (part == "throughput") { await MeasureThroughputAsync(d1, d2, certificate, megabytes); return 0; }
        // Warm-up, not counted: 50 set-ups, so that tiered compilation has promoted the handshake paths (it waits
        // until 30 calls and then 100 ms without new first-time compilations) and the runs measure steady state.
        for (var i = 0; i < 50; i++) await SetUpOnceAsync(d1, d2, certificate);
        if (args.Contains("--trace")) await TraceOnceAsync(d1, d2, certificate);
        var times = new List<double>(runs);
        for (var i = 0; i < runs; i++) times.Add(await SetUpOnceAsync(d1, d2, certificate));
        if (args.Contains("--trace"))
            Console.WriteLine("runs in order (ms): " + string.Join(" ", times.Select(t => t.ToString("0.0", CultureInfo.InvariantCulture))));
        times.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ours: set-up (offer created -> data channel open), {runs} runs: median {Percentile(times, 0.5):0.00} ms, p99 " +
            $"{Percentile(times, 0.99):0.00} ms (goals: 5 ms, 20 ms)"));

        Console.WriteLine($"  after the set-ups: {d1.PeerCount} + {d2.PeerCount} peers still registered on the drivers (expected 0)");
        return 0;
    }

    private static async Task MeasureThroughputAsync(UdpDriver d1, UdpDriver d2, DtlsCertificate certificate, int megabytes)
    {
        // Each measured transfer starts from a clean heap (as BenchmarkDotNet does before each iteration): the garbage
        // of the set-up runs (about 127 KB per handshake) is not collected on the throughput's time.
        // Warm-up, not counted: the send and receive paths reach their final (tier-1) code before the measured runs.
        // PC_ONLY=pooled|copying (diagnostics, profiling): measure that mode alone.
        var only = Environment.GetEnvironmentVariable("PC_ONLY");
        // Two ways to use the API: "pooled" is TrySend (one copy into a pooled buffer) and received messages as leases
        // (PeerConnectionOptions.LeasedMessages, disposed by the reader); "copying" is SendAsync (a task per message) and
        // DataChannelMessageReceived (a new array per message), the convenience API.
        // PC_SIZE=1024|65536 (diagnostics, profiling): that message size alone.
        var sizes = Environment.GetEnvironmentVariable("PC_SIZE") is { } sizeText ? [int.Parse(sizeText, CultureInfo.InvariantCulture)] : new[] { 1024, 65536 };
        // Warm-up, not counted, in rounds of every measured transfer, each round followed by a wait until the tiered JIT is
        // quiet: the transfers' paths start in tier-0 code, are recompiled instrumented (dynamic PGO) and then optimized, on
        // the JIT's background thread, seconds after they ran. With one round and no wait (before), the recompilation of the
        // whole data path ran during the first measured transfers: 264, 554 and 1,173 methods (0.9, 1.3 and 3.2 s of JIT at
        // load 80) were compiled during pooled 1 KiB, pooled 64 KiB and copying 1 KiB, and the pooled path, measured first,
        // paid the most (docs/driver.md "Throughput"). PC_WARMUP_ROUNDS=n: n rounds.
        var rounds = Environment.GetEnvironmentVariable("PC_WARMUP_ROUNDS") is { } roundsText ? int.Parse(roundsText, CultureInfo.InvariantCulture) : 3;
        var perRound = new List<long>();
        for (var round = 0; round < rounds; round++)
        {
            var before = System.Runtime.JitInfo.GetCompiledMethodCount();
            foreach (var pooled in new[] { true, false }.Where(p => only is null || (only == "pooled") == p))
                foreach (var size in sizes) await ThroughputAsync(d1, d2, certificate, size, Math.Min(megabytes, 16), pooled, quiet: true);
            await JitQuietAsync();
            perRound.Add(System.Runtime.JitInfo.GetCompiledMethodCount() - before);
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  warm-up: {rounds} rounds (methods compiled in each: {string.Join(", ", perRound)}), " +
            $"JIT time {System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds:0} ms in all"));
        // --ticks: where the bytes go (the runtime's allocation ticks by type, per measured transfer).
        using var ticks = Environment.GetCommandLineArgs().Contains("--ticks") ? new DataChannelAllocationBenchmarks.AllocationTicks() : null;
        foreach (var pooled in new[] { true, false }.Where(p => only is null || (only == "pooled") == p))
            foreach (var size in sizes)
            {
                ticks?.Print("warm-up");
                var (mbps, allocated, steady, messages) = await ThroughputAsync(d1, d2, certificate, size, megabytes, pooled);
                ticks?.Print($"{size} B {(pooled ? "pooled" : "copying")}");
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"ours ({(pooled ? "TrySend + leases" : "SendAsync + copies")}): {size} B messages, {messages} of them: {mbps:0.0} MB/s, {allocated:0.0} " +
                    $"B allocated per message (both sides; {steady:0.0} B in the last three quarters)"));
            }
    }

    // The tiered JIT's background compilations go on after the paths ran: waits until no method was compiled for 500 ms
    // (at most 10 s).
    private static async Task JitQuietAsync()
    {
        var quietSince = Stopwatch.StartNew();
        var total = Stopwatch.StartNew();
        var compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        while (quietSince.Elapsed < TimeSpan.FromMilliseconds(500) && total.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(50);
            var now = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (now != compiled) { compiled = now; quietSince.Restart(); }
        }
    }

    // Runs this verb again in a child process for one part (set-up or throughput) and relays its output.
    private static bool RunPart(string part, string[] args)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var info = new ProcessStartInfo(self) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") info.ArgumentList.Add(typeof(PeerConnectionRun).Assembly.Location);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.ArgumentList.Add("--part");
        info.ArgumentList.Add(part);
        using var child = Process.Start(info) ?? throw new InvalidOperationException("could not start the " + part + " process");
        string? line;
        while ((line = child.StandardOutput.ReadLine()) is not null) Console.WriteLine(line);
        if (!child.WaitForExit(TimeSpan.FromMinutes(10))) { child.Kill(entireProcessTree: true); return false; }
        return child.ExitCode == 0;
    }

    private static PeerConnectionOptions Options(DtlsCertificate certificate, IceRole role, bool leased = false) =>
        new() { Certificate = certificate, Ice = new IceAgentOptions { Role = role }, LeasedMessages = leased };

    private static async Task<double> SetUpOnceAsync(UdpDriver d1, UdpDriver d2, DtlsCertificate certificate)
    {
        await using var a = new PeerConnection(d1, Options(certificate, IceRole.Controlling));
        await using var b = new PeerConnection(d2, Options(certificate, IceRole.Controlled));
        var clock = Stopwatch.StartNew();
        var offer = await a.CreateOfferAsync();
        var answer = await b.CreateAnswerAsync(offer);
        await a.SetRemoteDescriptionAsync(answer);
        await a.CreateDataChannelAsync("setup").WaitAsync(Patience);
        return clock.Elapsed.TotalMilliseconds;
    }

    // One set-up with the time of every event on both sides, to see where the time goes.
    private static async Task TraceOnceAsync(UdpDriver d1, UdpDriver d2, DtlsCertificate certificate)
    {
        await using var a = new PeerConnection(d1, Options(certificate, IceRole.Controlling));
        await using var b = new PeerConnection(d2, Options(certificate, IceRole.Controlled));
        var clock = Stopwatch.StartNew();
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        async Task Watch(string name, PeerConnection pc)
        {
            try
            {
                await foreach (var e in pc.Events.ReadAllAsync(new CancellationTokenSource(Patience).Token))
                    log.Enqueue(string.Create(CultureInfo.InvariantCulture, $"{clock.Elapsed.TotalMilliseconds,8:0.00} ms {name} {e}"));
            }
            catch (OperationCanceledException) { }
        }
        var wa = Watch("A", a);
        var wb = Watch("B", b);
        var offer = await a.CreateOfferAsync();
        log.Enqueue($"{clock.Elapsed.TotalMilliseconds,8:0.00} ms offer created");
        var answer = await b.CreateAnswerAsync(offer);
        log.Enqueue($"{clock.Elapsed.TotalMilliseconds,8:0.00} ms answer created");
        await a.SetRemoteDescriptionAsync(answer);
        log.Enqueue($"{clock.Elapsed.TotalMilliseconds,8:0.00} ms answer set");
        await a.CreateDataChannelAsync("setup").WaitAsync(Patience);
        log.Enqueue($"{clock.Elapsed.TotalMilliseconds,8:0.00} ms channel open");
        await a.CloseAsync();
        await Task.WhenAny(Task.WhenAll(wa, wb), Task.Delay(500));
        foreach (var line in log.OrderBy(l => l, StringComparer.Ordinal)) Console.WriteLine(line);
    }

    private static async Task<(double MegabytesPerSecond, double AllocatedPerMessage, double SteadyAllocatedPerMessage, int Messages)> ThroughputAsync(
        UdpDriver d1, UdpDriver d2, DtlsCertificate certificate, int size, int megabytes, bool pooled, bool quiet = false)
    {
        // PC_SPLIT=send|receive (diagnostics): only that side of the pooled mode is pooled, the other copies.
        var split = Environment.GetEnvironmentVariable("PC_SPLIT");
        var poll = Environment.GetEnvironmentVariable("PC_POLL") == "1";
        var pooledSend = pooled && split != "receive";
        var pooledReceive = pooled && split != "send";
        await using var a = new PeerConnection(d1, Options(certificate, IceRole.Controlling, pooledReceive));
        await using var b = new PeerConnection(d2, Options(certificate, IceRole.Controlled, pooledReceive));
        var offer = await a.CreateOfferAsync();
        await a.SetRemoteDescriptionAsync(await b.CreateAnswerAsync(offer));
        var channel = await a.CreateDataChannelAsync("bulk").WaitAsync(Patience);
        var total = (int)((long)megabytes * 1024 * 1024 / size);
        var payload = new byte[size];
        Random.Shared.NextBytes(payload);

        // The allocation of the last three quarters alone (steady state): the first quarter includes the warm-up of this new
        // connection's pools (SCTP's receive buffers and message objects fill up to the window once per connection).
        long quarterAllocated = 0, quarterCount = 0;
        var receiving = Task.Run(async () =>
        {
            long bytes = 0;
            var count = 0;
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            await foreach (var e in b.Events.ReadAllAsync(cts.Token))
            {
                if (e is DataChannelMessageReceived m) { count++; bytes += m.Data.Length; }
                else if (e is DataChannelMessageLease lease)
                {
                    bytes += lease.Length;
                    count++;
                    lease.Dispose();
                }
                else continue;
                if (count == total / 4) { quarterAllocated = GC.GetTotalAllocatedBytes(precise: true); quarterCount = count; }
                if (bytes >= (long)total * size) return bytes;
            }
            throw new InvalidOperationException($"the events ended after {bytes} bytes");
        });

        // The set-up of this connection pair moved the handshake's methods up a tier: their recompilation is not measured.
        if (!quiet) await JitQuietAsync();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        var allocated0 = GC.GetTotalAllocatedBytes(precise: true);
        var (sent1, calls1, received2, rcalls2, sent2, calls2) = (d1.Counters.Sent, d1.Counters.SendCalls, d2.Counters.Received, d2.Counters.ReceiveCalls,
            d2.Counters.Sent, d2.Counters.SendCalls);
        var (h1, h2) = (d1.Counters.Handoffs, d2.Counters.Handoffs);
        var (contentions, workItems) = (Monitor.LockContentionCount, ThreadPool.CompletedWorkItemCount);
        var (retransmits1, retransmits2) = (Retransmissions(a), Retransmissions(b));
        var kernelDrops = UdpReceiveBufferErrors();
        var inboxDrops = d1.Counters.DroppedInboxFull + d2.Counters.DroppedInboxFull;
        var threads = quiet ? null : ThreadCpu.Snapshot();
        var (jitMethods, jitTime) = (System.Runtime.JitInfo.GetCompiledMethodCount(), System.Runtime.JitInfo.GetCompilationTime());
        // PC_JIT=1 (diagnostics, with DOTNET_PerfMapEnabled=1): the methods compiled during the transfer, from the perf map.
        var perfMap = !quiet && Environment.GetEnvironmentVariable("PC_JIT") == "1" ? $"/tmp/perf-{Environment.ProcessId}.map" : null;
        var mapLines = perfMap is not null && File.Exists(perfMap) ? File.ReadLines(perfMap).Count() : 0;
        // PC_FLOW=1 (diagnostics): sample both associations' flow state every 200 us during the transfer.
        using var flowStop = new CancellationTokenSource();
        var flow = !quiet && Environment.GetEnvironmentVariable("PC_FLOW") == "1"
            ? Task.Run(() => SampleFlow(a, b, d1.LocalEndPoints[0].Port, d2.LocalEndPoints[0].Port, flowStop.Token)) : null;
        var clock = Stopwatch.StartNew();
        var pending = new Queue<Task>();
        for (var i = 0; pooledSend && i < total; i++)
        {
            // The same flow control without a task per message: what waits in the channel and what is on its way to the
            // connection's thread (TrySend's messages go there in one work item however many they are). Above 4 MiB the
            // sender waits (no polling, no allocation) until 2 MiB are left, and refills in one burst.
            // PC_POLL=1 (diagnostics): poll with Task.Delay(1) as before WaitForSendSpaceAsync.
            if (channel.BufferedAmount + a.PendingSendBytes > 4 << 20)
            {
                if (poll) while (channel.BufferedAmount + a.PendingSendBytes > 4 << 20) await Task.Delay(1);
                else await a.WaitForSendSpaceAsync(channel, 2 << 20);
            }
            var result = a.TrySend(channel, payload);
            if (!result.Accepted) throw result.ToException();
        }
        for (var i = 0; !pooledSend && i < total; i++)
        {
            // Flow control like a browser application's: at most 4 MiB waiting in the channel, and at most 4 MiB (or
            // 256 sends) queued on the connection's thread.
            while (channel.BufferedAmount > 4 << 20) await Task.Delay(1);
            pending.Enqueue(a.SendAsync(channel, payload));
            if (pending.Count >= Math.Min(256, Math.Max(1, (4 << 20) / size))) await pending.Dequeue();
        }
        while (pending.Count > 0) await pending.Dequeue();
        var received = await receiving.WaitAsync(TimeSpan.FromSeconds(120));
        var seconds = clock.Elapsed.TotalSeconds;
        var end = GC.GetTotalAllocatedBytes(precise: true);
        var (jitMethodsAfter, jitTimeAfter) = (System.Runtime.JitInfo.GetCompiledMethodCount(), System.Runtime.JitInfo.GetCompilationTime());
        var threadsAfter = quiet ? null : ThreadCpu.Snapshot();   // after the count: its reads allocate
        if (perfMap is not null && File.Exists(perfMap))
            foreach (var l in File.ReadLines(perfMap).Skip(mapLines)) Console.WriteLine("    compiled: " + l[(l.IndexOf(' ', l.IndexOf(' ') + 1) + 1)..]);
        flowStop.Cancel();
        if (flow is not null) Console.WriteLine(await flow);
        var allocated = end - allocated0;
        var steady = quarterCount > 0 ? (end - quarterAllocated) / (double)(total - quarterCount) : double.NaN;
        if (!quiet)
        {
            var drops = (await b.GetStatisticsAsync()).Drops.Concat((await a.GetStatisticsAsync()).Drops)
                .Where(d => d.Value > 0).Select(d => $"{d.Key} {d.Value}");
            Console.WriteLine("  drops (both sides): " + (string.Join(", ", drops) is { Length: > 0 } text ? text : "none"));
        }
        if (!quiet) Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {size} B: sender {d1.Counters.Sent - sent1} datagrams in {d1.Counters.SendCalls - calls1} send calls; receiver " +
            $"{d2.Counters.Received - received2} datagrams in {d2.Counters.ReceiveCalls - rcalls2} receive calls, " +
            $"{d2.Counters.Sent - sent2} datagrams back (SACKs) in {d2.Counters.SendCalls - calls2} send calls; " +
            $"pool hand-offs {d1.Counters.Handoffs - h1} sender, {d2.Counters.Handoffs - h2} receiver; " +
            $"lock contentions {Monitor.LockContentionCount - contentions}, thread-pool work items {ThreadPool.CompletedWorkItemCount - workItems}; " +
            $"SCTP retransmissions {Retransmissions(a) - retransmits1} sender, {Retransmissions(b) - retransmits2} receiver; " +
            $"inbox-full drops {d1.Counters.DroppedInboxFull + d2.Counters.DroppedInboxFull - inboxDrops}, " +
            $"UDP receive buffer errors (whole machine) {UdpReceiveBufferErrors() - kernelDrops}; " +
            $"methods compiled during the transfer {jitMethodsAfter - jitMethods} ({(jitTimeAfter - jitTime).TotalMilliseconds:0} ms of JIT)"));
        if (threadsAfter is not null) Console.WriteLine(threadsAfter.Since(threads!, seconds, total, "message"));
        return (received / seconds / 1e6, allocated / (double)total, steady, total);
    }

    // What limits the sender, sampled racily: the congestion window (flight within an MTU of cwnd), the peer's window
    // (under an MTU), nothing queued (the application), or none of them (the connection's thread is behind).
    private static string SampleFlow(PeerConnection sender, PeerConnection receiver, int senderPort, int receiverPort, CancellationToken stop)
    {
        long samples = 0, cwndLimited = 0, rwndLimited = 0, empty = 0, flightSum = 0, cwndSum = 0, heldSum = 0, unreadSum = 0;
        long inboxSamples = 0, receiverInbox = 0, senderInbox = 0, socketSamples = 0, receiverSocket = 0, senderSocket = 0;
        var lastSocketRead = 0.0;
        var timeline = new System.Text.StringBuilder();
        var clock = Stopwatch.StartNew();
        var next = 0.0;
        while (!stop.IsCancellationRequested)
        {
            if (sender.SctpForDiagnostics is { } s && receiver.SctpForDiagnostics is { } r)
            {
                var (flight, cwnd, peerWindow, queued, _, _) = s.FlowSnapshot;
                var (_, _, _, _, held, unread) = r.FlowSnapshot;
                samples++;
                flightSum += flight;
                cwndSum += cwnd;
                heldSum += held;
                unreadSum += unread;
                if (queued == 0) empty++;
                else if (flight + 1200 >= cwnd) cwndLimited++;
                else if (peerWindow < 1200) rwndLimited++;
                inboxSamples++;
                receiverInbox += receiver.QueuedDatagrams;
                senderInbox += sender.QueuedDatagrams;
                if (clock.Elapsed.TotalMilliseconds - lastSocketRead >= 5)
                {
                    lastSocketRead = clock.Elapsed.TotalMilliseconds;
                    var queues = SocketReceiveQueues(senderPort, receiverPort);
                    socketSamples++;
                    senderSocket += queues.Sender;
                    receiverSocket += queues.Receiver;
                }
                if (clock.Elapsed.TotalMilliseconds >= next)
                {
                    timeline.Append(string.Create(CultureInfo.InvariantCulture,
                        $" {clock.Elapsed.TotalMilliseconds:0}ms:f{flight / 1024}k/c{cwnd / 1024}k/w{peerWindow / 1024}k/q{queued / 1024}k" +
                        $"/h{held / 1024}k/u{unread / 1024}k"));
                    next += 250;
                }
            }
            var until = clock.Elapsed.TotalMilliseconds + 0.2;
            while (clock.Elapsed.TotalMilliseconds < until) Thread.SpinWait(20);
        }
        if (samples == 0) return "  flow: no samples";
        return string.Create(CultureInfo.InvariantCulture,
            $"  flow ({samples} samples): cwnd-limited {100.0 * cwndLimited / samples:0} %, peer-window-limited {100.0 * rwndLimited / samples:0} %, " +
            $"nothing queued {100.0 * empty / samples:0} %, other {100.0 * (samples - cwndLimited - rwndLimited - empty) / samples:0} %; " +
            $"mean flight {flightSum / samples / 1024} KiB, cwnd {cwndSum / samples / 1024} KiB; " +
            $"receiver holds {heldSum / samples / 1024} KiB, unread {unreadSum / samples / 1024} KiB; " +
            $"mean datagrams queued for the receiver's connection {receiverInbox / (double)inboxSamples:0}, " +
            $"the sender's {senderInbox / (double)inboxSamples:0}; " +
            $"mean bytes in the socket receive queues: receiver {receiverSocket / Math.Max(1, socketSamples) / 1024} KiB, " +
            $"sender {senderSocket / Math.Max(1, socketSamples) / 1024} KiB\n   {timeline}");
    }

    // The kernel's receive queue (bytes, with overhead) of the two UDP sockets, from /proc/net/udp (ports in hex).
    private static (long Sender, long Receiver) SocketReceiveQueues(int senderPort, int receiverPort)
    {
        long s = 0, r = 0;
        try
        {
            foreach (var line in File.ReadLines("/proc/net/udp"))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length < 5 || !f[1].Contains(':')) continue;
                var port = Convert.ToInt32(f[1][(f[1].IndexOf(':') + 1)..], 16);
                var queues = f[4].Split(':');
                if (queues.Length != 2) continue;
                var rx = Convert.ToInt64(queues[1], 16);
                if (port == senderPort) s = rx;
                else if (port == receiverPort) r = rx;
            }
        }
        catch (IOException) { }
        return (s, r);
    }

    // DATA chunks the connection's SCTP association sent again (read after the transfer; a diagnostic figure).
    private static long Retransmissions(PeerConnection pc) => pc.SctpForDiagnostics?.Counters.Retransmissions ?? 0;

    // The kernel's count of UDP datagrams dropped for a full socket receive buffer (/proc/net/snmp, every socket of the
    // machine): a loss SCTP has to recover from.
    private static long UdpReceiveBufferErrors()
    {
        try
        {
            var lines = File.ReadAllLines("/proc/net/snmp").Where(l => l.StartsWith("Udp:", StringComparison.Ordinal)).ToArray();
            if (lines.Length < 2) return 0;
            var names = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var values = lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var i = Array.IndexOf(names, "RcvbufErrors");
            return i > 0 ? long.Parse(values[i], CultureInfo.InvariantCulture) : 0;
        }
        catch (IOException) { return 0; }
    }

    private static void RunNode(int runs, int megabytes)
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "node");
        if (!File.Exists(Path.Combine(dir, "dc-bench.mjs")))
        {
            Console.WriteLine($"node-datachannel: {dir}/dc-bench.mjs is missing (it is copied next to the bench); skipped");
            return;
        }
        if (!Directory.Exists(Path.Combine(dir, "node_modules", "node-datachannel")))
        {
            Console.WriteLine("node-datachannel: npm install (needs Node.js 20 and npm) ...");
            Run("npm", ["install", "--no-audit", "--no-fund"], dir, TimeSpan.FromMinutes(3), out _);
        }
        var ok = Run("node", ["dc-bench.mjs", runs.ToString(CultureInfo.InvariantCulture), megabytes.ToString(CultureInfo.InvariantCulture)], dir,
            TimeSpan.FromMinutes(10), out var output);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!line.StartsWith('{')) continue;
            using var json = JsonDocument.Parse(line);
            var r = json.RootElement;
            if (r.GetProperty("kind").GetString() == "setup")
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"node-datachannel: set-up, {r.GetProperty("runs").GetInt32()} runs: median {r.GetProperty("medianMs").GetDouble():0.00} ms, p99 " +
                    $"{r.GetProperty("p99Ms").GetDouble():0.00} ms"));
            else if (r.TryGetProperty("megabytesPerSecond", out var mbps))
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"node-datachannel: {r.GetProperty("size").GetInt32()} B messages: {mbps.GetDouble():0.0} MB/s"));
            else
                Console.WriteLine("node-datachannel: " + line);
        }
        if (!ok) Console.WriteLine("node-datachannel: the reference run did not finish cleanly (see above)");
    }

    private static bool Run(string file, string[] arguments, string directory, TimeSpan limit, out string output)
    {
        var info = new ProcessStartInfo(file)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false
        };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            output = stdout.Result;
            return false;
        }
        output = stdout.Result;
        if (process.ExitCode != 0 && stderr.Result.Length > 0) Console.WriteLine($"{file}: exit {process.ExitCode}: {stderr.Result.Trim()}");
        return process.ExitCode == 0;
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
}
