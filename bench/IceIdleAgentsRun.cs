using System.Diagnostics;
using System.Globalization;
using System.Net;
using Transport.Ice;
using Transport.Streaming.Io;

namespace Transport.Bench;

/// <summary>
/// A measured run (not BenchmarkDotNet): N connected ICE agents on one UDP port of 127.0.0.1, idle with the default
/// liveness timers (keepalive 2 s, consent 5 s randomized, disconnected 5 s). Their N remote peers run in a child
/// process (one port each), so the figures are those of the server process alone: managed memory per agent and
/// the CPU of the whole process while idle, per 1000 agents.
/// <c>dotnet run -c Release --project bench -- idle-agents [agents=1000] [idle-seconds=30]</c>
/// </summary>
public static class IceIdleAgentsRun
{
    public const string ClientsVerb = "idle-agents-clients";

    public static async Task<int> RunAsync(string[] args)
    {
        var count = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1000;
        var idle = TimeSpan.FromSeconds(args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 30);
        await using var driver = new UdpDriver();
        var port = driver.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        using var child = StartClients(count);
        var before = Settle();
        var agents = new IceAgentPeer[count];
        var handles = new PeerHandle[count];
        for (var i = 0; i < count; i++)
        {
            var agent = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled });
            agent.AddHostCandidate(port);
            agents[i] = new IceAgentPeer(agent);
            handles[i] = driver.Register(agents[i]);
        }
        var setup = Stopwatch.StartNew();
        // Exchange credentials and candidates with the child over its standard input and output, one line per agent.
        for (var i = 0; i < count; i++)
        {
            var (credentials, candidates) = await handles[i].InvokeAsync(now =>
            {
                agents[i].Agent.StartGathering(now);
                return (agents[i].Agent.LocalCredentials, agents[i].Agent.LocalCandidates.ToArray());
            });
            await child.StandardInput.WriteLineAsync(Line(i, credentials, candidates));
        }
        await child.StandardInput.FlushAsync();
        for (var n = 0; n < count; n++)
        {
            var line = await child.StandardOutput.ReadLineAsync() ?? throw new InvalidOperationException("the client process ended early");
            var (i, credentials, candidates) = Parse(line);
            await handles[i].InvokeAsync(now =>
            {
                agents[i].Agent.SetRemoteCredentials(credentials, now);
                foreach (var c in candidates) agents[i].Agent.AddRemoteCandidate(c, now);
                agents[i].Agent.AddRemoteEndOfCandidates(now);
            });
        }
        await Task.WhenAll(agents.Select(WaitConnected));
        Console.WriteLine($"{count} agents connected in {setup.Elapsed.TotalSeconds:0.00} s");

        // Drain the events channels so queued events do not count as per-agent memory.
        foreach (var p in agents) while (p.Events.TryRead(out _)) { }
        var after = Settle();
        var perAgent = (after - before) / (double)count;

        // Warm-up: tiered JIT recompiles the hot paths during the first seconds; that is start-up cost, not idle cost.
        await Task.Delay(TimeSpan.FromSeconds(10));
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpu0 = process.TotalProcessorTime;
        var user0 = process.UserProcessorTime;
        var switches0 = ContextSwitches();
        var precise0 = PreciseProcessCpu();
        var threads0 = ThreadRuntimes();
        var wall = Stopwatch.StartNew();
        var (sent0, received0, timeouts0, wakeups0, inline0, handoffs0) = (driver.Counters.Sent, driver.Counters.Received, driver.Counters.Timeouts,
            driver.Counters.Wakeups, driver.Counters.Inline, driver.Counters.Handoffs);
        var (sendCalls0, receiveCalls0) = (driver.Counters.SendCalls, driver.Counters.ReceiveCalls);
        await Task.Delay(idle);
        process.Refresh();
        var cpu = process.TotalProcessorTime - cpu0;
        var user = process.UserProcessorTime - user0;
        var switches = ContextSwitches() - switches0;
        var precise = PreciseProcessCpu() - precise0;
        var threads1 = ThreadRuntimes();
        var sendCalls = driver.Counters.SendCalls - sendCalls0;
        var receiveCalls = driver.Counters.ReceiveCalls - receiveCalls0;
        var seconds = wall.Elapsed.TotalSeconds;
        var sent = driver.Counters.Sent - sent0;
        var received = driver.Counters.Received - received0;
        var timeouts = driver.Counters.Timeouts - timeouts0;
        var wakeups = driver.Counters.Wakeups - wakeups0;
        var inlined = driver.Counters.Inline - inline0;
        var handoffs = driver.Counters.Handoffs - handoffs0;
        var connected = 0;
        for (var i = 0; i < count; i++)
            if (await handles[i].InvokeAsync(_ => agents[i].Agent.State) == IceConnectionState.Connected) connected++;
        var percent = cpu.TotalMilliseconds / wall.Elapsed.TotalMilliseconds * 100;
        Console.WriteLine($"managed memory per agent: {perAgent / 1024:0.0} KiB ({count} agents on one port)");
        Console.WriteLine($"idle {seconds:0.0} s: process CPU {cpu.TotalMilliseconds:0} ms = {percent:0.00} % of one core for {count} agents, " +
                          $"{percent / count * 1000:0.00} % per 1000 agents");
        Console.WriteLine($"per second: {received / seconds:0} datagrams received, {sent / seconds:0} sent, {timeouts / seconds:0} deadlines, " +
                          $"{wakeups / seconds:0} timer wake-ups, {handoffs / seconds:0} thread-pool hand-offs, " +
                          $"{inlined * 100.0 / Math.Max(1, received + wakeups):0}% of inputs handled inline; " +
                          $"CPU per datagram or deadline {cpu.TotalMilliseconds * 1000 / Math.Max(1, received + sent + wakeups):0.0} us");
        Console.WriteLine($"CPU split: {user.TotalMilliseconds * 100 / wall.Elapsed.TotalMilliseconds:0.00} % user, " +
                          $"{(cpu - user).TotalMilliseconds * 100 / wall.Elapsed.TotalMilliseconds:0.00} % kernel; " +
                          $"per second: {sendCalls / seconds:0} send calls, {receiveCalls / seconds:0} receive calls, {switches / seconds:0} thread wake-ups " +
                          $"(context switches of the whole process)");
        if (precise > TimeSpan.Zero)
        {
            var precisePercent = precise.TotalMilliseconds / wall.Elapsed.TotalMilliseconds * 100;
            Console.WriteLine($"scheduler's exact CPU clock: {precise.TotalMilliseconds:0} ms = {precisePercent / count * 1000:0.00} % of one core per " +
                              $"1000 agents; by thread (ms/s): " +
                              string.Join(", ", threads1.Where(t => threads0.ContainsKey(t.Key)).Select(t =>
                                  (t.Value.Name, Ms: (t.Value.Ms - threads0[t.Key].Ms) / seconds))
                                  .Where(t => t.Ms >= 0.05).OrderByDescending(t => t.Ms).Select(t => $"{t.Name} {t.Ms:0.00}")));
        }
        if (OperatingSystem.IsLinux() && IntPtr.Size == 8)
        {
            // The same datagrams and receive calls with no ICE and no driver around them (UdpFloorRun): what the
            // kernel alone charges on this machine. The rest is ours, and on loopback the delivery into the peers'
            // sockets, which the sending system call performs (a real network card does that elsewhere).
            var floor = UdpFloorRun.Measure();
            var floorUs = floor.MicrosecondsPerSecond(sent / seconds, receiveCalls / seconds, received / seconds);
            var loopbackUs = floor.MicrosecondsPerSecondOnLoopback(sent / seconds, receiveCalls / seconds, received / seconds);
            var measuredUs = (precise > TimeSpan.Zero ? precise : cpu).TotalMilliseconds * 1000 / seconds;
            Console.WriteLine($"kernel floor for this traffic: {floorUs / 10_000 / count * 1000:0.00} % of one core per 1000 agents, " +
                              $"{loopbackUs / 10_000 / count * 1000:0.00} % with the loopback delivery to peers that wait " +
                              $"({floor.SendPerDatagramUs:0.0} us a datagram sent, " +
                              $"{floor.SendToWaitingPeersUs:0.0} us to a waiting peer, {floor.WakePerCallUs:0.0} us a receive call that waits, " +
                              $"{floor.ReceivePerDatagramUs:0.0} us a further datagram received; `udp-floor`); " +
                              $"above that floor (ICE, driver, scheduling): {(measuredUs - loopbackUs) / 10_000 / count * 1000:0.00} %");
        }
        Console.WriteLine($"agents still connected after the idle period: {connected}/{count}");
        foreach (var h in handles) await h.DisposeAsync();
        child.StandardInput.Close();
        if (!child.WaitForExit(10_000)) child.Kill(entireProcessTree: true);
        return connected == count ? 0 : 1;
    }

    /// <summary>The child: one controlling agent per line read, each on its own port, run until standard input closes.</summary>
    public static async Task<int> RunClientsAsync(string[] args)
    {
        var count = int.Parse(args[1], CultureInfo.InvariantCulture);
        // A thousand sockets: async receives on the pool rather than a thread each.
        await using var driver = new UdpDriver(options: new UdpDriverOptions { DedicatedReceiveThreads = false });
        var handles = new List<PeerHandle>();
        var output = new List<string>();
        for (var n = 0; n < count; n++)
        {
            var line = await Console.In.ReadLineAsync() ?? throw new InvalidOperationException("the server process ended early");
            var (i, credentials, candidates) = Parse(line);
            var agent = new IceAgent(new IceAgentOptions { Role = IceRole.Controlling });
            agent.AddHostCandidate(driver.Bind(new IPEndPoint(IPAddress.Loopback, 0)));
            var peer = new IceAgentPeer(agent);
            var handle = driver.Register(peer);
            handles.Add(handle);
            var (mine, myCandidates) = await handle.InvokeAsync(now =>
            {
                agent.StartGathering(now);
                return (agent.LocalCredentials, agent.LocalCandidates.ToArray());
            });
            Console.Out.WriteLine(Line(i, mine, myCandidates));
            await handle.InvokeAsync(now =>
            {
                agent.SetRemoteCredentials(credentials, now);
                foreach (var c in candidates) agent.AddRemoteCandidate(c, now);
                agent.AddRemoteEndOfCandidates(now);
            });
        }
        Console.Out.Flush();
        await Console.In.ReadToEndAsync();   // the server closes our input when it is done
        foreach (var h in handles) await h.DisposeAsync();
        return 0;
    }

    // Voluntary and involuntary context switches of all threads of this process, ended ones included (getrusage; Linux).
    private static unsafe long ContextSwitches()
    {
        if (!OperatingSystem.IsLinux() || IntPtr.Size != 8) return 0;
        var usage = stackalloc long[18];   // struct rusage on LP64: two timevals, then 14 longs
        if (GetResourceUsage(0, usage) != 0) return 0;
        return usage[4 + 12] + usage[4 + 13];   // ru_nvcsw + ru_nivcsw
    }

    // CLOCK_PROCESS_CPUTIME_ID: the scheduler's own run time of every thread (ended ones included), in nanoseconds.
    // /proc/self/stat (Process.TotalProcessorTime, and the user/kernel split) is sampled by whole ticks (4 ms on this
    // kernel: HZ 250, tick accounting); over 30 s the two agree here, the exact clock is the figure to quote.
    private static unsafe TimeSpan PreciseProcessCpu()
    {
        if (!OperatingSystem.IsLinux() || IntPtr.Size != 8) return TimeSpan.Zero;
        var ts = stackalloc long[2];
        if (ClockGetTime(2, ts) != 0) return TimeSpan.Zero;
        return TimeSpan.FromTicks(ts[0] * TimeSpan.TicksPerSecond + ts[1] / 100);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern unsafe int ClockGetTime(int clock, long* timespec);

    // Each live thread's run time (se.sum_exec_runtime of /proc/self/task/N/sched, in ms), by thread id.
    private static Dictionary<string, (string Name, double Ms)> ThreadRuntimes()
    {
        var result = new Dictionary<string, (string, double)>();
        if (!OperatingSystem.IsLinux()) return result;
        try
        {
            foreach (var dir in Directory.GetDirectories("/proc/self/task"))
            {
                try
                {
                    var name = File.ReadAllText(Path.Combine(dir, "comm")).Trim();
                    foreach (var line in File.ReadLines(Path.Combine(dir, "sched")))
                        if (line.StartsWith("se.sum_exec_runtime", StringComparison.Ordinal))
                            result[Path.GetFileName(dir)] = (name, double.Parse(line[(line.IndexOf(':') + 1)..].Trim(), CultureInfo.InvariantCulture));
                }
                catch (IOException) { }   // the thread ended meanwhile
            }
        }
        catch (IOException) { }
        return result;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "getrusage")]
    private static extern unsafe int GetResourceUsage(int who, long* usage);

    private static Process StartClients(int count)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var info = new ProcessStartInfo(self) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") info.ArgumentList.Add(typeof(IceIdleAgentsRun).Assembly.Location);
        info.ArgumentList.Add(ClientsVerb);
        info.ArgumentList.Add(count.ToString(CultureInfo.InvariantCulture));
        return Process.Start(info) ?? throw new InvalidOperationException("could not start the client process");
    }

    private static string Line(int index, IceCredentials credentials, IceCandidate[] candidates) =>
        string.Join('\t', new[] { index.ToString(CultureInfo.InvariantCulture), credentials.Ufrag, credentials.Password }.Concat(candidates.Select(c =>
            c.ToSdp())));

    private static (int Index, IceCredentials Credentials, IceCandidate[] Candidates) Parse(string line)
    {
        var parts = line.Split('\t');
        var candidates = parts.Skip(3).Select(t => IceCandidate.TryParse(t, out var c) ? c : throw new FormatException("bad candidate: " + t)).ToArray();
        return (int.Parse(parts[0], CultureInfo.InvariantCulture), new IceCredentials(parts[1], parts[2]), candidates);
    }

    private static long Settle()
    {
        for (var i = 0; i < 3; i++) { GC.Collect(); GC.WaitForPendingFinalizers(); }
        return GC.GetTotalMemory(true);
    }

    private static async Task WaitConnected(IceAgentPeer peer)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await foreach (var e in peer.Events.ReadAllAsync(cts.Token))
            if (e is IceStateChangedEvent { State: IceConnectionState.Connected }) return;
        throw new InvalidOperationException("an agent never connected");
    }
}
