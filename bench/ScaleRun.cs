using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Threading.Channels;
using Transport.Dtls;
using Transport.Sctp;
using Transport.Streaming;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;

namespace Transport.Bench;

/// <summary>
/// A measured run (not BenchmarkDotNet) of what a server holds: N full peer connections (ICE, DTLS, SCTP with
/// a data channel each) on one UDP port of 127.0.0.1, served by this process with the real driver and default options
/// (<c>--sockets K</c> sets <see cref="UdpDriverOptions.ReceiveSockets"/>). The clients run in child processes, each
/// client connection on a socket (and driver) of its own, as browsers are, so the figures are the server's own. The
/// clients offer, the server answers (signaling over the children's standard input and output) with at most
/// <c>--concurrency C</c> set-ups in flight per child. Reported: set-up rate (connections per second the server
/// accepted, first offer to last channel open on the server), p50/p99 set-up time (offer received to the server's
/// channel open), managed memory and RSS per idle connection above the baseline before the first connection,
/// the idle CPU of the whole process per 1000 connections (scheduler's exact clock) next to the kernel floor for the
/// same datagram rate (<see cref="UdpFloorRun"/>, measured in the same run), the round trip of one message on every
/// connection at once (the children send, the server echoes), and the connections still Connected after the idle period.
/// Each process also reports what a set-up cost it (from the tenth connection open to the last: CPU time per set-up,
/// allocated bytes per set-up, collections), so the server's share and the clients' share can be told apart.
/// <c>--breakdown</c> prints where one idle connection's managed bytes go (<see cref="ObjectFootprint"/>); <c>--keepalive S</c>
/// sets the ICE keepalive interval of both sides.
/// <para>
/// The load generator (<see cref="ScaleClients"/>), never the server: each client connection holds one UDP socket (no
/// ICE-TCP listener; <c>--client-ice-tcp</c> keeps it, two descriptors per connection as before); each child binds its
/// sockets to a loopback address of its own (127.0.1.x), so its ports do not use up 127.0.0.1's ephemeral range; the
/// children needed to stay under the descriptor limit are computed and a split that would not fit is refused with the
/// numbers (<see cref="ScaleLimits"/>); <c>--rate R</c> paces the offers (R set-ups per second in all, spread over the
/// children); <c>--client-keepalive S</c> and <c>--client-consent S</c> lengthen the clients' own ICE keepalive and
/// consent intervals, cutting the load generator's idle traffic (the server still hears from each client at least
/// every keepalive interval plus 0.1 s, and its options stay the defaults; the output says so); <c>--lean-client-runtime</c>
/// runs the children's socket completions inline and without thread-pool spinning (their runtime only).
/// </para>
/// <c>dotnet run -c Release --project bench -- scale [connections=1000] [idle-seconds=60] [--children K] [--concurrency C] [--sockets S] [--breakdown]
/// [--keepalive S] [--rate R] [--client-keepalive S] [--client-consent S] [--client-ice-tcp]</c>
/// </summary>
public static class ScaleRun
{
    public const string ClientsVerb = "scale-clients";
    internal static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    public static async Task<int> RunAsync(string[] args)
    {
        var numbers = new List<string>();
        for (var i = 1; i < args.Length; i++)
        {
            if (args[i] is "--breakdown" or "--client-ice-tcp" or "--lean-client-runtime") continue;   // a flag
            if (args[i].StartsWith("--", StringComparison.Ordinal)) { i++; continue; }   // an option and its value
            numbers.Add(args[i]);
        }
        var count = numbers.Count > 0 ? int.Parse(numbers[0], CultureInfo.InvariantCulture) : 1000;
        var idle = TimeSpan.FromSeconds(numbers.Count > 1 ? double.Parse(numbers[1], CultureInfo.InvariantCulture) : 60);
        var concurrency = Option(args, "--concurrency", 32);
        var sockets = Option(args, "--sockets", 0);
        var paced = Option(args, "--rate", 0);
        var clientIceTcp = args.Contains("--client-ice-tcp");
        var leanClientRuntime = args.Contains("--lean-client-runtime");
        var descriptorLimit = ScaleLimits.DescriptorLimit();
        var (children, refusal) = ScaleLimits.Children(count, args.Contains("--children") ? Option(args, "--children", 1) : null,
                                                       clientIceTcp ? 2 : 1, descriptorLimit, ScaleLimits.EphemeralPorts());
        if (refusal is not null)
        {
            Console.Error.WriteLine($"scale: not started: {refusal}");
            return 2;
        }

        var options = sockets > 0 ? new UdpDriverOptions { ReceiveSockets = sockets } : new UdpDriverOptions();
        await using var driver = new UdpDriver(options: options);
        var port = driver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var serverOptions = new PeerConnectionOptions { Certificate = certificate };
        // --keepalive S: the ICE keepalive interval of the server and the clients (default: the option's default), to
        // compare the idle cost of two intervals in one sitting.
        var keepalive = Option(args, "--keepalive", 0);
        if (keepalive > 0) serverOptions = serverOptions with { Ice = serverOptions.Ice with { KeepaliveInterval = TimeSpan.FromSeconds(keepalive) } };
        Console.WriteLine($"scale: {count} connections on {port} ({options.ReceiveSockets} receive socket(s)), {children} client process(es), " +
                          $"{concurrency} set-ups in flight per process, idle {idle.TotalSeconds:0} s; {Environment.ProcessorCount} cores, load {Load()}");
        var clientKeepalive = Option(args, "--client-keepalive", 0);
        var clientConsent = Option(args, "--client-consent", 0);
        Console.WriteLine($"clients (the load generator; the server's options are the defaults{(keepalive > 0 ? $" but its keepalive {keepalive} s" : "")}): " +
                          (clientIceTcp ? "two descriptors per connection (UDP socket, ICE-TCP listener), "
                                        : "one UDP socket per connection (no ICE-TCP listener), ") +
                          $"descriptor limit {descriptorLimit?.ToString(CultureInfo.InvariantCulture) ?? "?"} per process; " +
                          $"keepalive {(clientKeepalive > 0 ? $"{clientKeepalive} s (client only)" : keepalive > 0 ? $"{keepalive} s" : "default")}, " +
                          (clientConsent > 0 ? $"consent every {clientConsent} s, timeout {Math.Max(30, 3 * clientConsent)} s (client only); "
                                             : "consent default; ") +
                          $"set-ups {(paced > 0 ? $"paced at {paced}/s in all" : "unpaced")}" +
                          (leanClientRuntime ? "; client runtime: socket completions inline on the epoll thread, no thread-pool spinning" : ""));

        // Warm-up (not counted): a few connections set up and closed, so the JIT has compiled the paths once.
        await WarmUpAsync(driver, serverOptions, certificate);
        var (heap0, rss0) = Footprint();

        var connections = new ConcurrentDictionary<(int Child, int Id), Served>();
        var setupTimes = new ConcurrentBag<double>();
        var opened = 0;
        var allOpen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstOffer = 0L;
        var lastOpen = 0L;
        // CPU per set-up: from the tenth of the connections open (JIT and first-use costs behind) to the last.
        var tenth = Math.Max(1, count / 10);
        CpuMark? fromTenth = null;
        ThreadCpu? threadsFromTenth = null;
        var clients = new List<ClientProcess>();
        var perChild = Split(count, children);
        for (var c = 0; c < children; c++)
        {
            var settings = new ScaleClientSettings(perChild[c], concurrency, keepalive, paced > 0 ? paced * (double)perChild[c] / count : 0,
                                                   clientKeepalive, clientConsent, clientIceTcp, ChildAddress(c));
            clients.Add(ClientProcess.Start(c, leanClientRuntime, settings));
        }

        var readers = clients.Select(client => Task.Run(async () =>
        {
            string? line;
            while ((line = await client.Process.StandardOutput.ReadLineAsync()) is not null)
            {
                var parts = line.Split(' ');
                switch (parts[0])
                {
                    case "O":   // an offer: answer it (concurrently with the next lines)
                    {
                        var id = int.Parse(parts[1], CultureInfo.InvariantCulture);
                        var offer = Encoding.UTF8.GetString(Convert.FromBase64String(parts[2]));
                        var arrived = Stopwatch.GetTimestamp();
                        Interlocked.CompareExchange(ref firstOffer, arrived, 0);
                        _ = Task.Run(async () =>
                        {
                            try
                            {
                                var pc = new PeerConnection(driver, serverOptions);
                                var served = new Served(pc, arrived);
                                connections[(client.Index, id)] = served;
                                served.Loop = served.RunAsync(() =>
                                {
                                    setupTimes.Add(Stopwatch.GetElapsedTime(arrived).TotalMilliseconds);
                                    Volatile.Write(ref lastOpen, Stopwatch.GetTimestamp());
                                    var now = Interlocked.Increment(ref opened);
                                    if (now == tenth) (fromTenth, threadsFromTenth) = (CpuMark.Take(), ThreadCpu.Snapshot());
                                    if (now == count) allOpen.TrySetResult();
                                });
                                try
                                {
                                    Trace($"server {id} offer in");
                                    var answer = await pc.CreateAnswerAsync(offer);
                                    Trace($"server {id} answered");
                                    await client.SendAsync($"A {id} {Convert.ToBase64String(Encoding.UTF8.GetBytes(answer))}");
                                }
                                catch (Exception e) { Console.Error.WriteLine($"answer {client.Index}/{id}: {e.Message}"); }
                            }
                            catch (Exception e) { Console.Error.WriteLine($"accept {client.Index}/{id}: {e}"); }
                        });
                        break;
                    }
                    default:
                        client.Replies.Writer.TryWrite(line);
                        break;
                }
            }
            client.Replies.Writer.TryComplete();
        })).ToArray();

        // The limit counts from the first offer: the children's own warm-up comes before it and took over 120 s at a
        // load average of 100 (every set-up then fell outside the window, 0/N open).
        var warmUpLimit = Stopwatch.StartNew();
        while (Volatile.Read(ref firstOffer) == 0 && warmUpLimit.Elapsed < TimeSpan.FromMinutes(10)) await Task.Delay(100);
        var setupLimit = TimeSpan.FromSeconds(Math.Max(Math.Max(120, count / 20.0), paced > 0 ? 2.0 * count / paced : 0));
        if (await Task.WhenAny(allOpen.Task, Task.Delay(setupLimit)) != allOpen.Task)
            Console.WriteLine($"set-up: only {Volatile.Read(ref opened)}/{count} channels open after {setupLimit.TotalSeconds:0} s");
        var toLast = CpuMark.Take();
        var threadsToLast = ThreadCpu.Snapshot();
        var setupSeconds = Stopwatch.GetElapsedTime(firstOffer, Volatile.Read(ref lastOpen)).TotalSeconds;
        var times = setupTimes.OrderBy(t => t).ToList();
        var rate = times.Count / setupSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"set-up: {times.Count} connections in {setupSeconds:0.00} s = {rate:0} connections/s accepted ({concurrency * children} in flight); " +
            $"offer received -> channel open on the server: p50 {Percentile(times, 0.5):0.0} ms, p99 {Percentile(times, 0.99):0.0} ms"));
        Console.WriteLine(KernelDrops(port.Port, clients));

        if (fromTenth is { } from)
            Console.WriteLine("set-up cost, server process (connections " + tenth + " to " + Volatile.Read(ref opened) + " open): " +
                              toLast.PerSetUp(from, Volatile.Read(ref opened) - tenth) + $" (load {Load()})");
        if (fromTenth is { } mark && threadsFromTenth is { } threads)
        {
            // By thread: the driver's receive and deadline threads, the pool (the actors' set-up work, the bench's signaling),
            // the runtime's. The window on CLOCK_MONOTONIC (Stopwatch's clock) is for `perf record -k CLOCK_MONOTONIC`.
            var window = (Start: mark.Timestamp / (double)Stopwatch.Frequency, End: toLast.Timestamp / (double)Stopwatch.Frequency);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"set-up window on CLOCK_MONOTONIC: {window.Start:0.000}-{window.End:0.000} s") +
                              threadsToLast.Since(threads, window.End - window.Start, Math.Max(1, Volatile.Read(ref opened) - tenth), "set-up"));
        }
        // Every client reports its set-up done (its own channel open) before the idle part starts, with its own cost.
        foreach (var client in clients)
        {
            var ready = await client.ExpectAsync("READY", TimeSpan.FromSeconds(120));
            if (ready.Length > 6) Console.WriteLine($"set-up cost, client process {client.Index}: {ready[6..]}");
        }
        await Task.Delay(TimeSpan.FromSeconds(5));   // the last handshakes' retransmission timers and SACKs settle
        var (heap1, rss1) = Footprint();
        var n = Math.Max(1, connections.Count);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"memory per idle connection above the baseline: managed {(heap1 - heap0) / 1024.0 / n:0.0} KiB, RSS {(rss1 - rss0) / 1024.0 / n:0.0} KiB " +
            $"(baseline managed {heap0 / 1048576.0:0.0} MiB, RSS {rss0 / 1048576.0:0.0} MiB; now {heap1 / 1048576.0:0.0} MiB, " +
            $"{rss1 / 1048576.0:0.0} MiB) (goal: RSS 32 KiB)"));

        if (args.Contains("--breakdown")) PrintBreakdown(connections.Values.Select(s => s.Connection).Take(3).ToList());

        // Round trip under load: every client connection sends one message at once, the server echoes.
        foreach (var client in clients) await client.SendAsync("PING");
        var rtts = new List<double>();
        foreach (var client in clients)
        {
            var line = await client.ExpectAsync("RTT", TimeSpan.FromSeconds(120));
            rtts.AddRange(line.Split(' ').Skip(1).Select(s => double.Parse(s, CultureInfo.InvariantCulture)));
        }
        rtts.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"round trip of one message on each of the {rtts.Count} connections at once: p50 {Percentile(rtts, 0.5):0.0} ms, p99 " +
            $"{Percentile(rtts, 0.99):0.0} ms, max {rtts.LastOrDefault():0.0} ms"));

        // Idle: 10 s to let the echo's traffic and the JIT settle, then the measured period.
        await Task.Delay(TimeSpan.FromSeconds(10));
        var c0 = driver.Counters;
        var (sent0, received0, calls0) = (c0.Sent, c0.Received, c0.ReceiveCalls);
        var (sendCalls0, wakeups0, timeouts0) = (c0.SendCalls, c0.Wakeups, c0.Timeouts);
        var (inline0, handoffs0, deadlineWakeups0) = (c0.Inline, c0.Handoffs, c0.DeadlineWakeups);
        var gcs0 = GC.CollectionCount(0);
        var clientsCpu0 = await ClientsCpuAsync(clients);
        var cpu0 = PreciseProcessCpu();
        var wall = Stopwatch.StartNew();
        await Task.Delay(idle);
        var cpu = PreciseProcessCpu() - cpu0;
        var clientsCpu = await ClientsCpuAsync(clients) - clientsCpu0;
        var seconds = wall.Elapsed.TotalSeconds;
        var (sent, received, calls) = ((driver.Counters.Sent - sent0) / seconds, (driver.Counters.Received - received0) / seconds,
            (driver.Counters.ReceiveCalls - calls0) / seconds);
        var percent = cpu.TotalMilliseconds / wall.Elapsed.TotalMilliseconds * 100;
        var per1000 = percent / n * 1000;
        var connectedServer = connections.Values.Count(s => s.Connection.State == ConnectionState.Connected);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"idle {seconds:0} s: process CPU {percent:0.00} % of one core = {per1000:0.00} % per 1000 connections; per second {received:0} datagrams " +
            $"received in {calls:0} receive calls, {sent:0} sent"));
        var c1 = driver.Counters;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"idle, driver per second: {(c1.SendCalls - sendCalls0) / seconds:0} send calls, " +
            $"{(c1.DeadlineWakeups - deadlineWakeups0) / seconds:0} deadline-thread wake-ups, {(c1.Wakeups - wakeups0) / seconds:0} peer timer runs, " +
            $"{(c1.Timeouts - timeouts0) / seconds:0} timeouts handled, {(c1.Inline - inline0) / seconds:0} inline runs, " +
            $"{(c1.Handoffs - handoffs0) / seconds:0} pool hand-offs; {GC.CollectionCount(0) - gcs0} gen0 collections in the period"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"idle, the client processes (the load generator) together: {clientsCpu / wall.Elapsed.TotalMilliseconds * 100:0.00} % of one core"));
        if (OperatingSystem.IsLinux() && IntPtr.Size == 8)
        {
            var floor = UdpFloorRun.Measure();
            var loopbackUs = floor.MicrosecondsPerSecondOnLoopback(sent, calls, received);
            var floorPer1000 = loopbackUs / 10_000 / n * 1000;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"udp-floor for the same datagrams and calls (same run): {floorPer1000:0.00} % per 1000 connections; measured / floor = " +
                $"{per1000 / Math.Max(1e-9, floorPer1000):0.00} (goal 1.5)"));
        }
        foreach (var client in clients) await client.SendAsync("STATE");
        var connectedClients = 0;
        foreach (var client in clients)
            connectedClients += int.Parse((await client.ExpectAsync("CONNECTED", TimeSpan.FromSeconds(60))).Split(' ')[1], CultureInfo.InvariantCulture);
        Console.WriteLine($"still Connected after the idle period: {connectedServer}/{count} on the server, {connectedClients}/{count} on the clients; " +
                          $"driver: {driver.Counters.DroppedInboxFull} inbox drops, {driver.Counters.PeerErrors} peer errors, " +
                          $"{driver.Counters.FiveTupleConflicts} 5-tuple conflicts");
        Console.WriteLine(KernelDrops(port.Port, clients));

        foreach (var client in clients) client.Process.StandardInput.Close();
        foreach (var client in clients)
            if (!client.Process.WaitForExit(60_000)) client.Process.Kill(entireProcessTree: true);
        await Task.WhenAll(readers).WaitAsync(TimeSpan.FromSeconds(10));
        foreach (var s in connections.Values) await s.Connection.DisposeAsync();
        return connectedServer == count && connectedClients == count ? 0 : 1;
    }

    // Where one idle connection's managed bytes go (ObjectFootprint): the first connection's graph, less what the next
    // two share with it (options, certificate, the driver's and the runtime's objects).
    private static void PrintBreakdown(List<PeerConnection> sample)
    {
        if (sample.Count < 3) return;
        var r = ObjectFootprint.Measure(sample[0], sample.Skip(1), t =>
            t.Assembly == typeof(ScaleRun).Assembly || t == typeof(UdpDriver) || t.DeclaringType == typeof(UdpDriver) || t == typeof(Thread)
            || t.Name.StartsWith("DeadlineThread", StringComparison.Ordinal) || typeof(TimeProvider).IsAssignableFrom(t));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"breakdown of one idle connection: {r.Bytes} B in {r.Objects} objects{(r.Truncated ? " (walk truncated)" : "")}; by field path (first reached):"));
        foreach (var (path, bytes, objects) in r.ByPath.Where(x => x.Bytes >= 96).Take(60))
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {bytes,7} B {objects,4} objects  {path}"));
        Console.WriteLine("by type:");
        foreach (var (type, bytes, objects) in r.ByType.Take(40))
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {bytes,7} B {objects,4} objects  {type}"));
    }

    // Warm-up (not counted): three rounds of 96 connections set up and closed, 16 at a time, each client on a driver of
    // its own as in the child, each round followed by a pause until the tiered JIT is quiet: a method goes tier 0 ->
    // instrumented -> tier 1, each step after 30 calls and in the background, so the per-connection paths need rounds,
    // not one burst. With 20 connections the JIT ran through the measured set-ups: 40-50 % of each process's CPU
    // samples during them (perf, 2026-12-07; about 4.5 s of JIT per process in all), which a long-running server never
    // pays; the set-up rate measured the JIT more than the stack.
    internal static async Task WarmUpAsync(UdpDriver server, PeerConnectionOptions serverOptions, DtlsCertificate certificate,
                                          UdpDriverOptions? clientDriverOptions = null, TimeProvider? clientTime = null)
    {
        const int Rounds = 3, PerRound = 96, Parallel = 16;
        var failed = 0;
        for (var batch = 0; batch < Rounds * PerRound / Parallel; batch++)
        {
            await Task.WhenAll(Enumerable.Range(0, Parallel).Select(_ => Task.Run(async () =>
            {
                await using var clientDriver = new UdpDriver(clientTime, clientDriverOptions);
                clientDriver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                await using var c = new PeerConnection(clientDriver, new PeerConnectionOptions { Certificate = certificate });
                await using var s = new PeerConnection(server, serverOptions);
                try
                {
                    await c.SetRemoteDescriptionAsync(await s.CreateAnswerAsync(await c.CreateOfferAsync()));
                    await c.CreateDataChannelAsync("warm-up").WaitAsync(Patience);
                }
                // On a saturated machine a warm-up handshake can time out; the warm-up only has to run the paths.
                catch (Exception e) when (e is TransportNotConnectedException or TimeoutException) { Interlocked.Increment(ref failed); }
            })));
            if ((batch + 1) % (PerRound / Parallel) == 0) await JitQuietAsync();
        }
        if (failed > 0) Console.Error.WriteLine($"warm-up: {failed} of {Rounds * PerRound} connections failed (the machine's load)");
    }

    // The tiered JIT's background compilations go on for seconds after the paths ran, longer on a loaded machine: waits
    // until no method was compiled for 1 s (at most 30 s).
    private static async Task JitQuietAsync()
    {
        var quietSince = Stopwatch.StartNew();
        var total = Stopwatch.StartNew();
        var compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
        while (quietSince.Elapsed < TimeSpan.FromSeconds(1) && total.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(100);
            var now = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (now != compiled) { compiled = now; quietSince.Restart(); }
        }
    }

    /// <summary>A server connection and its event loop: the channel open is the set-up's end; messages are echoed.</summary>
    private sealed class Served(PeerConnection connection, long arrived)
    {
        public PeerConnection Connection { get; } = connection;
        public long Arrived { get; } = arrived;
        public Task? Loop { get; set; }

        public async Task RunAsync(Action opened)
        {
            try
            {
                await foreach (var e in Connection.Events.ReadAllAsync())
                {
                    if (e is DataChannelOpened) opened();
                    else if (e is DataChannelMessageReceived m) await Connection.SendAsync(m.Channel, m.Data);
                }
            }
            // Not connected any more (TransportNotConnectedException is one).
            catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException) { }
        }
    }

    private sealed class ClientProcess
    {
        private readonly SemaphoreSlim _write = new(1, 1);
        public required int Index { get; init; }
        public required Process Process { get; init; }
        public Channel<string> Replies { get; } = Channel.CreateUnbounded<string>();

        public static ClientProcess Start(int index, bool leanRuntime, ScaleClientSettings settings)
        {
            var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
            var info = new ProcessStartInfo(self) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
            if (Path.GetFileNameWithoutExtension(self) == "dotnet") info.ArgumentList.Add(typeof(ScaleRun).Assembly.Location);
            foreach (var a in settings.ToArgs().Prepend(ClientsVerb)) info.ArgumentList.Add(a);
            if (leanRuntime)
            {
                // The load generator's runtime only: each client socket's receive completes on the runtime's epoll thread
                // (the driver's receive loop does not block: STUN runs inline, the rest is queued to the peer's actor)
                // instead of a thread-pool hand-off per datagram, and idle pool threads sleep at once instead of spinning.
                info.Environment["DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"] = "1";
                info.Environment["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"] = "0";
            }
            var process = Process.Start(info) ?? throw new InvalidOperationException("could not start the client process");
            return new ClientProcess { Index = index, Process = process };
        }

        public async Task SendAsync(string line)
        {
            await _write.WaitAsync();
            try
            {
                await Process.StandardInput.WriteLineAsync(line);
                await Process.StandardInput.FlushAsync();
            }
            finally { _write.Release(); }
        }

        public async Task<string> ExpectAsync(string verb, TimeSpan limit)
        {
            using var cts = new CancellationTokenSource(limit);
            while (true)
            {
                var line = await Replies.Reader.ReadAsync(cts.Token);
                if (line.StartsWith(verb, StringComparison.Ordinal)) return line;
                Console.WriteLine($"client {Index}: {line}");
            }
        }
    }


    // The client processes' CPU time so far, in milliseconds, added up.
    private static async Task<double> ClientsCpuAsync(List<ClientProcess> clients)
    {
        foreach (var client in clients) await client.SendAsync("CPU");
        double total = 0;
        foreach (var client in clients)
            total += double.Parse((await client.ExpectAsync("CPU", TimeSpan.FromSeconds(60))).Split(' ')[1], CultureInfo.InvariantCulture);
        return total;
    }

    // Child c binds to 127.0.1.(c+1): its sockets' ports come from that address's ephemeral range, not 127.0.0.1's,
    // which other programs on the machine (coturn's relay ports, tests) need while a large run holds tens of thousands.
    private static string ChildAddress(int child) => $"127.0.{1 + child / 250}.{1 + child % 250}";

    internal static readonly bool Tracing = Environment.GetEnvironmentVariable("SCALE_TRACE") == "1";
    internal static void Trace(string what) { if (Tracing) Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {what}"); }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private static int[] Split(int count, int parts) => Enumerable.Range(0, parts).Select(p => count / parts + (p < count % parts ? 1 : 0)).ToArray();

    // Datagrams the kernel dropped because a socket's receive buffer was full (/proc/net/udp "drops"): the server's
    // port (every member of a group), and the client processes' sockets (found by their descriptors' inodes).
    private static string KernelDrops(int port, List<ClientProcess> clients)
    {
        if (!OperatingSystem.IsLinux()) return "kernel receive drops: not known on this system";
        try
        {
            var inodes = new HashSet<string>(StringComparer.Ordinal);
            foreach (var c in clients)
            {
                var fds = $"/proc/{c.Process.Id}/fd";
                if (!Directory.Exists(fds)) continue;
                foreach (var fd in Directory.EnumerateFileSystemEntries(fds))
                    if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal))
                        inodes.Add(target[8..^1]);
            }
            long server = 0, client = 0;
            var hexPort = ":" + port.ToString("X4", CultureInfo.InvariantCulture);
            foreach (var line in File.ReadLines("/proc/net/udp").Skip(1))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length < 13) continue;
                var drops = long.Parse(f[^1], CultureInfo.InvariantCulture);
                if (f[1].EndsWith(hexPort, StringComparison.Ordinal)) server += drops;
                else if (inodes.Contains(f[9])) client += drops;
            }
            return $"kernel receive drops (buffer full): server port {server}, client sockets {client}";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return $"kernel receive drops: {e.Message}"; }
    }

    private static string Load()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "?"; }
    }

    // Managed heap after a full, compacting, decommitting collection, and the resident set (VmRSS).
    private static (long Heap, long Rss) Footprint()
    {
        for (var i = 0; i < 2; i++)
        {
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        long rss = 0;
        if (OperatingSystem.IsLinux())
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    rss = long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        return (GC.GetTotalMemory(false), rss);
    }

    internal static unsafe TimeSpan PreciseProcessCpu()
    {
        if (!OperatingSystem.IsLinux() || IntPtr.Size != 8) return Process.GetCurrentProcess().TotalProcessorTime;
        var ts = stackalloc long[2];
        if (ClockGetTime(2, ts) != 0) return TimeSpan.Zero;
        return TimeSpan.FromTicks(ts[0] * TimeSpan.TicksPerSecond + ts[1] / 100);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern unsafe int ClockGetTime(int clock, long* timespec);

    /// <summary>The process's CPU time, allocated bytes and collections at one moment: what the set-ups between two marks cost.</summary>
    internal readonly record struct CpuMark(TimeSpan Cpu, long Allocated, int Gen0, int Gen1, int Gen2, long Timestamp, TimeSpan JitThread, long JitMethods)
    {
        public static CpuMark Take() => new(PreciseProcessCpu(), GC.GetTotalAllocatedBytes(precise: false),
            GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), Stopwatch.GetTimestamp(),
            TieredCompilationThreadCpu(), System.Runtime.JitInfo.GetCompiledMethodCount());

        // CPU time of the runtime's background JIT thread (".NET Tiered Com"; /proc, in clock ticks of 10 ms).
        private static TimeSpan TieredCompilationThreadCpu()
        {
            if (!OperatingSystem.IsLinux()) return TimeSpan.Zero;
            try
            {
                foreach (var task in Directory.EnumerateDirectories("/proc/self/task"))
                {
                    if (!File.ReadAllText(Path.Combine(task, "comm")).StartsWith(".NET Tiered", StringComparison.Ordinal)) continue;
                    var stat = File.ReadAllText(Path.Combine(task, "stat"));
                    var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                    return TimeSpan.FromMilliseconds((long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture)) * 10);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
            return TimeSpan.Zero;
        }

        public string PerSetUp(CpuMark from, int setups)
        {
            var n = Math.Max(1, setups);
            var wall = Stopwatch.GetElapsedTime(from.Timestamp, Timestamp).TotalSeconds;
            var cpu = (Cpu - from.Cpu).TotalMilliseconds;
            // The runtime ends an idle background JIT thread and starts another later: its CPU is then not known.
            var jit = (JitThread - from.JitThread).TotalMilliseconds;
            var jitShare = jit >= 0 ? string.Create(CultureInfo.InvariantCulture, $"of which the background JIT thread {jit / n:0.00} ms")
                                    : "the background JIT thread was replaced meanwhile (its share not known)";
            return string.Create(CultureInfo.InvariantCulture,
                $"CPU {cpu / n:0.00} ms per set-up ({cpu / 1000 / Math.Max(1e-9, wall) * 100:0} % of a core over {wall:0.0} s), {jitShare}; " +
                $"allocated {(Allocated - from.Allocated) / 1024.0 / n:0.0} KiB per set-up, " +
                $"collections gen0 {Gen0 - from.Gen0} / gen1 {Gen1 - from.Gen1} / gen2 {Gen2 - from.Gen2}; " +
                $"{JitMethods - from.JitMethods} methods compiled meanwhile");
        }
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}
