using System.Globalization;
using System.Runtime.Versioning;
using Transport.Streaming.Tests.Interop;

namespace Transport.Bench;

/// <summary>
/// <c>cc-chromium [delay-ms] [runs]</c>: send-side congestion control against Chromium as <c>CongestionControlChromiumTests</c>
/// runs it (<see cref="CongestionChromiumRun"/>: 1.5 Mbit/s then 600 kbit/s by <c>tc tbf</c> on our side, video sized
/// from our target, Chromium's getStats), with propagation delay: the two namespaces are joined by
/// <see cref="DelayedLink"/> (netem where the kernel has it, otherwise the TUN relay process), delay-ms each way
/// (default 25), and tbf shapes our end of it. Prints the run's table (every 2 s: our target, the delivery rate
/// from feedback, what Chromium received, the tbf queue, decoded frames, losses, freezes, jitter buffer delay) and its
/// summary; the load (<c>/proc/loadavg</c>) before and after.
/// </summary>
[SupportedOSPlatform("linux")]
public static class CongestionChromiumDelayRun
{
    public static async Task<int> RunAsync(string[] args)
    {
        var numbers = args.Skip(1).Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray();
        var delayMs = numbers.Length > 0 ? int.Parse(numbers[0], CultureInfo.InvariantCulture) : 25;
        var runs = numbers.Length > 1 ? int.Parse(numbers[1], CultureInfo.InvariantCulture) : 1;
        var failures = 0;
        for (var i = 0; i < runs; i++)
        {
            Console.WriteLine($"run {i + 1} of {runs}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, load {Load()}");
            var link = DelayedLink.Create(TimeSpan.FromMilliseconds(delayMs));
            try
            {
                var device = link.How.Contains("TUN", StringComparison.Ordinal) ? "ta" : "va";
                Console.WriteLine($"link: {link.How}; tbf on {device}");
                CongestionChromiumRun.Shape(link.A, device, "add", CongestionChromiumRun.HighRate);
                var run = await CongestionChromiumRun.RunAsync(link.A, link.B, DelayedLink.AddressA, device, Console.WriteLine).ConfigureAwait(false);
                Console.WriteLine(run.Grade());
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException or Microsoft.Playwright.PlaywrightException)
            {
                failures++;
                Console.WriteLine($"run failed: {e.Message}");
            }
            finally
            {
                link.Dispose();
                if (link.RelayReport is { } report) Console.WriteLine(report);
            }
            Console.WriteLine($"load after: {Load()}");
        }
        return failures == 0 ? 0 : 1;
    }

    private static string Load() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?";
}
