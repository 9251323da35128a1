using BenchmarkDotNet.Running;

namespace Transport.Bench;

/// <summary>
/// Entry point: every argument goes to BenchmarkDotNet's switcher, so the standard options
/// (<c>--filter</c>, <c>--job short</c>, <c>--exporters json</c>, <c>--artifacts DIR</c>) work. Verbs for measured
/// runs: <c>idle-agents [agents] [seconds]</c> (<see cref="IceIdleAgentsRun"/>),
/// <c>peer-connection [setup-runs] [megabytes] [--no-node]</c> (<see cref="PeerConnectionRun"/>),
/// <c>udp-floor</c> (<see cref="UdpFloorRun"/>), <c>datachannel-alloc [rounds]</c> (<see cref="DataChannelAllocationBenchmarks.Run"/>), <c>scale [connections]
/// [idle-seconds] [--sockets S]</c> (<see cref="ScaleRun"/>), <c>setup-time [runs] [delay-ms]</c> (<see cref="SetupTimeRun"/>), <c>setup-cost [set-ups]
/// [primitive-runs]</c> (<see cref="SetupCostRun"/>), <c>cc-chromium [delay-ms] [runs]</c> (<see cref="CongestionChromiumDelayRun"/>), <c>backpressure
/// [megabytes] [pause-seconds]</c>
/// (<see cref="BackpressureRun"/>),
/// <c>datagram-path [rounds]</c> (<see cref="DatagramPathBenchmarks.Run"/>),
/// <c>gcm-kernels [rounds]</c> (<see cref="GcmKernelBenchmarks.Run"/>),
/// <c>turn-throughput [messages] [size] [rounds]</c> (<see cref="TurnRelayThroughputRun"/>),
/// <c>turn-driver [setup-runs] [megabytes]</c> (<see cref="TurnDriverRun"/>) and
/// <c>churn [cycles] [concurrency] [--checkpoint N] [--baseline N] [--minutes M]</c> (<see cref="ChurnRun"/>).
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        // Measured runs that are not micro-benchmarks take a verb; everything else goes to BenchmarkDotNet.
        if (args.Length > 0 && args[0] == "idle-agents") return await IceIdleAgentsRun.RunAsync(args).ConfigureAwait(false);
        if (args.Length > 0 && args[0] == "peer-connection") return await PeerConnectionRun.RunAsync(args).ConfigureAwait(false);
        if (args.Length > 0 && args[0] == IceIdleAgentsRun.ClientsVerb) return await IceIdleAgentsRun.RunClientsAsync(args).ConfigureAwait(false);
        if (args.Length > 0 && args[0] == "turn-throughput") return TurnRelayThroughputRun.Run(args);
        if (args.Length > 0 && args[0] == "turn-driver") return await TurnDriverRun.RunAsync(args).ConfigureAwait(false);
        if (args.Length > 0 && args[0] == "backpressure") return await BackpressureRun.RunAsync(args).ConfigureAwait(false);
        if (args.Length > 0 && args[0] == "datachannel-alloc") return DataChannelAllocationBenchmarks.Run(args);
        if (args.Length > 0 && args[0] == "datagram-path") return DatagramPathBenchmarks.Run(args);
        if (args.Length > 0 && args[0] == "gcm-kernels") return GcmKernelBenchmarks.Run(args);
        if (args.Length > 0 && args[0] == "udp-floor") return UdpFloorRun.Run();
        if (args.Length > 0 && args[0] == "setup-time-relay" && OperatingSystem.IsLinux()) return TunDelayLine.RunRelayProcess(args);
        if (args.Length > 0 && args[0] == "setup-time")
            return OperatingSystem.IsLinux() ? await SetupTimeRun.RunAsync(args).ConfigureAwait(false)
                : throw new PlatformNotSupportedException("setup-time needs Linux network namespaces");
        if (args.Length > 0 && args[0] == "cc-chromium")
            return OperatingSystem.IsLinux() ? await CongestionChromiumDelayRun.RunAsync(args).ConfigureAwait(false)
                : throw new PlatformNotSupportedException("cc-chromium needs Linux network namespaces");
        if (args.Length > 0 && args[0] == "churn") return await ChurnRun.RunAsync(args).ConfigureAwait(false);
        if (args.Length > 0 && args[0] == ChurnRun.ClientsVerb) return await ChurnRun.RunClientsAsync(args).ConfigureAwait(false);
        if (args.Length > 0 && args[0] == "setup-cost") return SetupCostRun.Run(args);
        if (args.Length > 0 && args[0] == "scale") return await ScaleRun.RunAsync(args).ConfigureAwait(false);
        if (args.Length > 0 && args[0] == ScaleRun.ClientsVerb) return await ScaleClients.RunAsync(args).ConfigureAwait(false);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
