using BenchmarkDotNet.Running;

namespace Transport.Bench;

/// <summary>
/// Entry point: every argument goes to BenchmarkDotNet's switcher, so the standard options
/// (<c>--filter</c>, <c>--job short</c>, <c>--exporters json</c>, <c>--artifacts DIR</c>) work.
/// </summary>
public static class Program
{
    public static void Main(string[] args) =>
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
