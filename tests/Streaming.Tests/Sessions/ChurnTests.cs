using System.Diagnostics;
using Transport.Ice;
using Transport.Samples.EchoServer;
using Transport.Streaming.Sessions;
using Transport.Streaming.Tests.Io;
using Transport.Streaming.WebRtc;
using Xunit.Abstractions;
using Rig = Transport.Streaming.Tests.Sessions.WebRtcSessionTransportTests.Rig;

namespace Transport.Streaming.Tests.Sessions;

/// <summary>
/// The churn soak in small (the full one is <c>bench -- churn</c>): 200 full peer connections against one
/// server port, 8 at a time, each with a data channel message echoed; half close politely, half vanish (their socket
/// closes, nothing is sent, the server's shortened liveness timers find out). Afterwards the server's driver holds no
/// peer, route, username fragment, noted transaction or timer, and the server no session. Real UDP on 127.0.0.1.
/// </summary>
[Collection(RealTimeCollection.Name)]
public sealed class ChurnTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task TwoHundredCyclesHalfAbandonedLeaveNoPeerRouteOrTimerOnTheDriver()
    {
        const int Cycles = 200, Concurrency = 8;
        // The vanished half is released within about 3.5 s (defaults: 9-10 s), so the test ends in seconds.
        var serverOptions = new StreamServerOptions { DisconnectedLimit = TimeSpan.FromSeconds(1), HealthCheckInterval = TimeSpan.FromMilliseconds(250) };
        var ice = new IceAgentOptions
        {
            DisconnectedTimeout = TimeSpan.FromSeconds(2),
            FailedTimeout = TimeSpan.FromSeconds(3),
            ConsentInterval = TimeSpan.FromSeconds(1),
            ConsentTimeout = TimeSpan.FromSeconds(4)
        };
        await using var rig = Rig.Start(() => new LambdaHandler(WebRtcSessionTransportTests.EchoUntilBye), serverOptions,
            new WebRtcTransportOptions { PeerConnection = new PeerConnectionOptions { Ice = ice } });
        var reasons = new System.Collections.Concurrent.ConcurrentDictionary<SessionEndKind, int>();
        var signal = rig.Signal(s => _ = s.Completion.ContinueWith(t => reasons.AddOrUpdate(t.Result.Kind, 1, (_, n) => n + 1), TaskScheduler.Default));
        var next = 0;
        var echoed = 0;
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var clock = Stopwatch.StartNew();

        async Task Worker()
        {
            int cycle;
            // Bounded in count and in time (a starved machine ends early; what ran is still checked for leaks).
            while ((cycle = Interlocked.Increment(ref next)) <= Cycles && clock.Elapsed < TimeSpan.FromMinutes(3))
            {
                try
                {
                    var client = await WebRtcStreamClient.ConnectAsync(signal).WaitAsync(Patience);
                    try
                    {
                        await client.SendTextAsync("churn " + cycle);
                        Assert.Equal("churn " + cycle, (await client.NextAsync(Patience)).Text);
                        Interlocked.Increment(ref echoed);
                        if (cycle % 2 == 1) await client.VanishAsync();   // the socket closes; no ABORT, no close_notify
                    }
                    finally { await client.DisposeAsync(); }           // the polite half: ABORT and close_notify go out
                }
                catch (Exception e) when (e is TimeoutException or InvalidOperationException or TransportNotConnectedException)
                {
                    failures.Enqueue($"cycle {cycle}: {e.GetType().Name}: {e.Message}");
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(_ => Task.Run(Worker)));
        var churned = clock.Elapsed;
        var ran = Math.Min(Cycles, next - Concurrency);
        while ((rig.Server.Reserved > 0 || rig.Driver.PeerCount > 0) && clock.Elapsed - churned < Patience) await Task.Delay(50);
        var driver = rig.Driver;
        output.WriteLine($"{echoed} of {Cycles} cycles echoed in {churned.TotalSeconds:0.0} s, drained {(clock.Elapsed - churned).TotalSeconds:0.0} s later; " +
                         $"sessions ended: {string.Join(", ", reasons.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}"))}; " +
                         $"failures: {string.Join("; ", failures)}");
        Assert.Equal(0, rig.Server.Reserved);
        Assert.Empty(rig.Server.Sessions);
        Assert.Equal((0, 0, 0, 0, 0), (driver.PeerCount, driver.RouteCount, driver.UsernameFragmentCount, driver.NotedTransactions, driver.TimerCount));
        // Nearly all echoed (a starved machine may time a few out); both halves ran and ended as they should.
        Assert.True(echoed >= ran * 0.95, $"only {echoed} of {ran} cycles echoed: {string.Join("; ", failures)}");
        Assert.True(reasons.GetValueOrDefault(SessionEndKind.ClientClosed) > 0, "no polite close was seen as one");
        Assert.True(reasons.GetValueOrDefault(SessionEndKind.Disconnected) + reasons.GetValueOrDefault(SessionEndKind.TransportFailed) > 0,
            "no abandoned session was released");
    }
}
