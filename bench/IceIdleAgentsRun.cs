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
        var wall = Stopwatch.StartNew();
        var (sent0, received0, timeouts0, wakeups0, inline0, handoffs0) = (driver.Counters.Sent, driver.Counters.Received, driver.Counters.Timeouts, driver.Counters.Wakeups, driver.Counters.Inline, driver.Counters.Handoffs);
        var (sendCalls0, receiveCalls0) = (driver.Counters.SendCalls, driver.Counters.ReceiveCalls);
        await Task.Delay(idle);
        process.Refresh();
        var cpu = process.TotalProcessorTime - cpu0;
        var user = process.UserProcessorTime - user0;
        var switches = ContextSwitches() - switches0;
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
                          $"{wakeups / seconds:0} timer wake-ups, {handoffs / seconds:0} thread-pool hand-offs, {inlined * 100.0 / Math.Max(1, received + wakeups):0}% of inputs handled inline; " +
                          $"CPU per datagram or deadline {cpu.TotalMilliseconds * 1000 / Math.Max(1, received + sent + wakeups):0.0} us");
        Console.WriteLine($"CPU split: {user.TotalMilliseconds * 100 / wall.Elapsed.TotalMilliseconds:0.00} % user, {(cpu - user).TotalMilliseconds * 100 / wall.Elapsed.TotalMilliseconds:0.00} % kernel; " +
                          $"per second: {sendCalls / seconds:0} send calls, {receiveCalls / seconds:0} receive calls, {switches / seconds:0} thread wake-ups (context switches of the whole process)");
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
        string.Join('\t', new[] { index.ToString(CultureInfo.InvariantCulture), credentials.Ufrag, credentials.Password }.Concat(candidates.Select(c => c.ToSdp())));

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
