namespace Transport.Streaming.Tests.Io;

/// <summary>
/// Tests that hold real sockets and the system clock to a bound (a deadline fired within 100 ms while the pool is
/// saturated, a disconnection within 250 ms of its timeout) run one at a time, after the parallel tests: on a
/// two-core machine a dozen other test classes running beside them would measure the machine, not the code.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RealTimeCollection
{
    public const string Name = "real time";
}
