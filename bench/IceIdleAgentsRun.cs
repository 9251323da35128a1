using System.Diagnostics;
using System.Globalization;
using System.Net;
using Transport.Ice;
using Transport.Streaming.Io;

namespace Transport.Bench;

/// <summary>
/// A measured run (not BenchmarkDotNet): N connected agent pairs on 127.0.0.1, all server-side agents on one UDP
/// port, idle with the default liveness timers (keepalive 2 s, consent 5 s). Reports managed memory per agent and
/// the CPU the whole process uses while idle, per 1000 agents.
/// <c>dotnet run -c Release --project bench -- idle-agents [pairs=1000] [idle-seconds=30]</c>
/// </summary>
public static class IceIdleAgentsRun
{
    public static async Task<int> RunAsync(string[] args)
    {
        var pairs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1000;
        var idle = TimeSpan.FromSeconds(args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 30);
        await using var serverDriver = new UdpDriver();
        await using var clientDriver = new UdpDriver();
        var serverPort = serverDriver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var clientPorts = Enumerable.Range(0, pairs).Select(_ => clientDriver.Bind(new IPEndPoint(IPAddress.Loopback, 0))).ToArray();

        var before = Settle();
        var servers = new IceAgentPeer[pairs];
        var clients = new IceAgentPeer[pairs];
        var serverHandles = new PeerHandle[pairs];
        var clientHandles = new PeerHandle[pairs];
        for (var i = 0; i < pairs; i++)
        {
            var s = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled });
            s.AddHostCandidate(serverPort);
            var c = new IceAgent(new IceAgentOptions { Role = IceRole.Controlling });
            c.AddHostCandidate(clientPorts[i]);
            servers[i] = new IceAgentPeer(s);
            clients[i] = new IceAgentPeer(c);
            serverHandles[i] = serverDriver.Register(servers[i]);
            clientHandles[i] = clientDriver.Register(clients[i]);
        }
        var setup = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, pairs).Select(async i =>
        {
            var (sc, scand) = await serverHandles[i].InvokeAsync(now => { servers[i].Agent.StartGathering(now); return (servers[i].Agent.LocalCredentials, servers[i].Agent.LocalCandidates.ToArray()); });
            var (cc, ccand) = await clientHandles[i].InvokeAsync(now => { clients[i].Agent.StartGathering(now); return (clients[i].Agent.LocalCredentials, clients[i].Agent.LocalCandidates.ToArray()); });
            await serverHandles[i].InvokeAsync(now => { servers[i].Agent.SetRemoteCredentials(cc, now); foreach (var c in ccand) servers[i].Agent.AddRemoteCandidate(c, now); servers[i].Agent.AddRemoteEndOfCandidates(now); });
            await clientHandles[i].InvokeAsync(now => { clients[i].Agent.SetRemoteCredentials(sc, now); foreach (var c in scand) clients[i].Agent.AddRemoteCandidate(c, now); clients[i].Agent.AddRemoteEndOfCandidates(now); });
            await WaitConnected(servers[i]);
            await WaitConnected(clients[i]);
        }));
        Console.WriteLine($"{pairs} pairs connected in {setup.Elapsed.TotalSeconds:0.00} s");

        // Drain the events channels so queued events do not count as per-agent memory.
        foreach (var p in servers.Concat(clients)) while (p.Events.TryRead(out _)) { }
        var after = Settle();
        var perAgent = (after - before) / (2.0 * pairs);

        // Warm-up: tiered JIT recompiles the hot paths during the first seconds; that is start-up cost, not idle cost.
        await Task.Delay(TimeSpan.FromSeconds(10));
        var process = Process.GetCurrentProcess();
        var cpu0 = process.TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        var sent0 = serverDriver.Counters.Sent + clientDriver.Counters.Sent;
        var timeouts0 = serverDriver.Counters.Timeouts + clientDriver.Counters.Timeouts;
        var wakeups0 = serverDriver.Counters.Wakeups + clientDriver.Counters.Wakeups;
        await Task.Delay(idle);
        process.Refresh();
        var cpu = process.TotalProcessorTime - cpu0;
        var sent = serverDriver.Counters.Sent + clientDriver.Counters.Sent - sent0;
        var timeouts = serverDriver.Counters.Timeouts + clientDriver.Counters.Timeouts - timeouts0;
        var wakeups = serverDriver.Counters.Wakeups + clientDriver.Counters.Wakeups - wakeups0;
        var connected = 0;
        for (var i = 0; i < pairs; i++)
            if (await serverHandles[i].InvokeAsync(_ => servers[i].Agent.State) == IceConnectionState.Connected) connected++;
        var percent = cpu.TotalMilliseconds / wall.Elapsed.TotalMilliseconds * 100;
        Console.WriteLine($"managed memory per agent: {perAgent / 1024:0.0} KiB ({2 * pairs} agents, {pairs} of them on one server port)");
        Console.WriteLine($"idle {wall.Elapsed.TotalSeconds:0.0} s: process CPU {cpu.TotalMilliseconds:0} ms = {percent:0.00} % of one core for {2 * pairs} agents, " +
                          $"{percent / (2.0 * pairs) * 1000:0.00} % per 1000 agents; {sent} datagrams sent ({sent / wall.Elapsed.TotalSeconds:0} /s), " +
                          $"{timeouts / wall.Elapsed.TotalSeconds:0} deadlines/s, {wakeups / wall.Elapsed.TotalSeconds:0} timer wake-ups/s");
        Console.WriteLine($"server agents still connected after the idle period: {connected}/{pairs}");
        foreach (var h in serverHandles.Concat(clientHandles)) await h.DisposeAsync();
        return connected == pairs ? 0 : 1;
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
