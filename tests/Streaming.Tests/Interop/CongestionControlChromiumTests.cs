using System.Runtime.Versioning;
using Transport.Streaming.WebRtc;
using Xunit.Abstractions;
using static Transport.Streaming.Tests.Interop.CongestionChromiumRun;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// Send-side congestion control on a real, shaped link with Chromium receiving (issue 21, the "real" test,
/// <see cref="CongestionChromiumRun"/>): our peer connection (this process, its UDP socket in one network namespace)
/// and headless Chromium (in another) joined by a veth pair whose end on our side is shaped by a token bucket
/// (<c>tc qdisc tbf</c>: 1.5 Mbit/s with a queue bounded to 200 ms at the rate, then stepped down to 600 kbit/s
/// mid-test). No added propagation delay: this kernel has no netem, and the round trip is the veth's (well under a
/// millisecond) plus the tbf queue's own delay (the bench's <c>cc-chromium</c> verb runs the same behind a delaying
/// relay). The test prints the estimate and the receive rate over time, and asserts with generous bounds (a loaded
/// 2-core machine): the target settles (its median) between 40 % and 110 % of each shaped rate, the browser receives
/// about what we target, frames keep being decoded (the jitter buffer does not starve), little is lost, and after the
/// step down the target follows.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class CongestionControlChromiumTests(ITestOutputHelper output)
{
    [Fact]
    public async Task OurTargetFollowsATbfShapedLinkAndChromiumReceivesItWithoutStarving()
    {
        var subnet = $"10.81.{Random.Shared.Next(1, 250)}";
        string serverAddress = subnet + ".1", browserAddress = subnet + ".2";
        using var serverNs = NetworkNamespace.Create("rtc-ccs");
        using var browserNs = NetworkNamespace.Create("rtc-ccb");
        serverNs.ConnectVeth(browserNs, serverAddress, browserAddress);
        browserNs.AddDefaultRoute(serverAddress);
        Shape(serverNs, "veth-a", "add", HighRate);

        var run = await RunAsync(serverNs, browserNs, serverAddress, "veth-a", output.WriteLine);
        Assert.Equal(ConnectionState.Connected, run.FinalState);
        var r = run.Grade();
        output.WriteLine(r.ToString());

        Assert.True(r.Decoded);
        // Within 20 s: the start probe lifts the estimate in under a second when its result counts (in some runs here it
        // did not, and the estimate climbed by its increase alone, in about 10 s).
        Assert.True(r.Converged is not null && r.Converged < 20_000, $"the target did not reach 40-110 % of 1.5 Mbit/s within 20 s ({r.Converged})");
        // The median, not the mean: a stall of this loaded machine (Chromium's or ours) reads as a queue to the estimator
        // and costs it half its rate for the seconds it takes to climb back; that is a dip, not where it settles.
        Assert.InRange(r.HighMedian, 0.4 * HighRate, 1.1 * HighRate);
        Assert.InRange(r.HighReceived / r.HighTarget, 0.6, 1.25);
        Assert.True(r.Followed is not null && r.Followed < 10_000, $"the target did not follow the step down to 600 kbit/s within 10 s ({r.Followed})");
        Assert.InRange(r.LowMedian, 0.4 * LowRate, 1.1 * LowRate);
        Assert.InRange(r.LowReceived / r.LowTarget, 0.6, 1.25);
        // The jitter buffer does not starve: frames keep coming out of it, every second, at the step too.
        Assert.True(r.DecodeGapMs < 2_500, $"{r.DecodeGapMs / 1000:0.00} s without a decoded frame");
        Assert.True(r.Last.Decoded - r.First.Decoded >= 0.6 * FramesPerSecond * (r.Last.T - r.First.T) / 1000,
            $"{r.Last.Decoded - r.First.Decoded} frames decoded in {(r.Last.T - r.First.T) / 1000:0.0} s");
        // Chromium counts a freeze when a frame comes 150 ms or more later than usual: on this loaded machine its own stalls
        // and ours count too (one run at load 60-70 saw 26 freezes, 7.9 s of 70, with the tbf queue empty and nothing
        // lost). Frozen less than a fifth of the time.
        Assert.True(r.Last.FreezeSeconds < 0.2 * (r.Last.T - r.First.T) / 1000, $"{r.Last.Freezes} freezes, {r.Last.FreezeSeconds:0.00} s in all");
        Assert.True(r.LossFraction < 0.03, $"lost {r.Last.Lost} of {r.Last.Packets + r.Last.Lost} packets");
    }
}
