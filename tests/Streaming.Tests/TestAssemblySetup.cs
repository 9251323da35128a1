using System.Runtime.CompilerServices;

namespace Transport.Streaming.Tests;

internal static class TestAssemblySetup
{
    /// <summary>
    /// The UDP driver runs its receive loops, actors and timer callbacks on the shared thread pool. The test host
    /// keeps pool threads busy while it starts, and on these 2-core machines (minimum 2 threads) that delayed every
    /// timer of the process by up to a second, which the real-socket liveness tests measure. Until the driver has
    /// its own threads (README "Not done yet"), the tests give the pool enough threads from the start.
    /// </summary>
    [ModuleInitializer]
    internal static void Initialize()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 16), Math.Max(io, 16));
    }
}
