using System.Runtime.CompilerServices;
using System.Text.Json;
using Transport.Streaming.Sessions;
using Transport.TestKit;

namespace Transport.Streaming.Tests.Sessions;

/// <summary>
/// Graded health: each metric driven across its thresholds gives its level and a reason; the
/// server's health check (called by the test, on virtual time) raises the change, tells the client, and acts.
/// </summary>
public sealed class HealthGradingTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private static readonly TransportHealth Good = new("connected", "127.0.0.1:1 -> 127.0.0.1:2", TimeSpan.FromMilliseconds(20),
        TimeSpan.FromSeconds(1), TimeSpan.Zero, TimeSpan.Zero, 0, 100_000, 100_000);

    private static SessionHealth Session(TransportHealth connection, int pending = 0, TimeSpan? stalled = null) =>
        new("s", "webrtc", SessionState.Running, TimeSpan.FromMinutes(1), connection, stalled ?? TimeSpan.Zero, stalled ?? TimeSpan.Zero, pending, null);

    public static TheoryData<string, Func<double, TransportHealth>, double, double, double> Metrics => new()
    {
        // metric, the health with the metric at a value, a healthy value, the degraded threshold, the unhealthy one
        { "consent_age", v => Good with { ConsentAge = TimeSpan.FromSeconds(v) }, 4, 10, 20 },
        { "rtt", v => Good with { RoundTripTime = TimeSpan.FromSeconds(v) }, 0.1, 0.3, 1 },
        { "loss", v => Good with { LossFraction = v }, 0.01, 0.05, 0.2 },
        { "loss", v => Good with { MediaLossFraction = v }, 0.01, 0.05, 0.2 },
        { "jitter", v => Good with { Jitter = TimeSpan.FromSeconds(v) }, 0.005, 0.03, 0.1 },
        { "send_backlog", v => Good with { SendBacklogBytes = (long)v }, 1000, 256 * 1024, 1024 * 1024 },
    };

    [Theory]
    [MemberData(nameof(Metrics))]
    public void EachMetricAcrossItsThresholdsGivesItsLevelAndAReason(string metric, Func<double, TransportHealth> with, double healthy,
        double degraded, double unhealthy)
    {
        var t = new HealthThresholds();
        Assert.Equal(HealthGrade.Healthy, HealthGrader.Grade(Session(with(healthy)), t));
        var d = HealthGrader.Grade(Session(with(degraded)), t);
        Assert.Equal(HealthLevel.Degraded, d.Level);
        var reason = Assert.Single(d.Reasons);
        Assert.Equal((metric, HealthLevel.Degraded, degraded), (reason.Metric, reason.Level, reason.Threshold));
        Assert.Equal(degraded, reason.Value, 6);
        Assert.Contains(">=", reason.Text, StringComparison.Ordinal);
        var u = HealthGrader.Grade(Session(with(unhealthy * 1.2)), t);
        Assert.Equal(HealthLevel.Unhealthy, u.Level);
        Assert.Equal((metric, unhealthy), (u.Reasons[0].Metric, u.Reasons[0].Threshold));
        // A threshold set to null is off.
        var off = metric switch
        {
            "consent_age" => t with { ConsentAgeDegraded = null, ConsentAgeUnhealthy = null, ConsentAgeDead = null },
            "rtt" => t with { RoundTripDegraded = null, RoundTripUnhealthy = null },
            "loss" => t with { LossDegraded = null, LossUnhealthy = null },
            "jitter" => t with { JitterDegraded = null, JitterUnhealthy = null },
            _ => t with { SendBacklogDegraded = null, SendBacklogUnhealthy = null },
        };
        Assert.Equal(HealthLevel.Healthy, HealthGrader.Grade(Session(with(unhealthy * 1.2)), off).Level);
    }

    [Fact]
    public void DeliveryIsGradedAsAFractionOfWhatWeSendAndOnlyAboveTheMinimumRate()
    {
        var t = new HealthThresholds();
        Assert.Equal(HealthLevel.Healthy, HealthGrader.Grade(Session(Good with { MediaBitrateOut = 1_000_000, MediaDeliveryRate = 900_000 }), t).Level);
        var d = HealthGrader.Grade(Session(Good with { MediaBitrateOut = 1_000_000, MediaDeliveryRate = 700_000 }), t);
        Assert.Equal(("delivery", HealthLevel.Degraded), (d.Reasons[0].Metric, d.Level));
        Assert.Contains("70 %", d.Reasons[0].Text, StringComparison.Ordinal);
        Assert.Equal(HealthLevel.Unhealthy, HealthGrader.Grade(Session(Good with { MediaBitrateOut = 1_000_000, MediaDeliveryRate = 300_000 }), t).Level);
        // Sending little (below 64 kbit/s): not graded (feedback on a trickle is noise).
        Assert.Equal(HealthLevel.Healthy,
            HealthGrader.Grade(Session(Good with { MediaBitrateOut = 30_000, BitrateOut = 5_000_000, MediaDeliveryRate = 1_000 }), t).Level);
    }

    [Fact]
    public void TheTransportStateConsentExpiryAndAStalledHandlerGradeTooAndTheWorstDecides()
    {
        var t = new HealthThresholds();
        var disconnected = HealthGrader.Grade(Session(Good with { State = "disconnected", StateReason = "Ice: no packets for 5 s" }), t);
        Assert.Equal(HealthLevel.Unhealthy, disconnected.Level);
        Assert.Contains("Ice: no packets for 5 s", disconnected.Reasons[0].Text, StringComparison.Ordinal);
        Assert.Equal(HealthLevel.Dead, HealthGrader.Grade(Session(Good with { State = "failed" }), t).Level);
        Assert.Equal(HealthLevel.Dead, HealthGrader.Grade(Session(Good with { ConsentAge = TimeSpan.FromSeconds(31) }), t).Level);
        // The handler: only with inputs waiting.
        Assert.Equal(HealthLevel.Healthy, HealthGrader.Grade(Session(Good, pending: 0, stalled: TimeSpan.FromSeconds(30)), t).Level);
        var stalled = HealthGrader.Grade(Session(Good, pending: 3, stalled: TimeSpan.FromSeconds(3)), t);
        Assert.Equal(("handler_stall", HealthLevel.Degraded), (stalled.Reasons[0].Metric, stalled.Level));
        Assert.Contains("3 inputs", stalled.Reasons[0].Text, StringComparison.Ordinal);
        // Several at once: every one is a reason, the worst first and deciding.
        var many = HealthGrader.Grade(Session(Good with
        {
            RoundTripTime = TimeSpan.FromMilliseconds(400),
            LossFraction = 0.3,
            Jitter = TimeSpan.FromMilliseconds(40)
        }), t);
        Assert.Equal(HealthLevel.Unhealthy, many.Level);
        Assert.Equal(3, many.Reasons.Count);
        Assert.Equal("loss", many.Reasons[0].Metric);
        // Before the session runs nothing is graded.
        Assert.Equal(HealthLevel.Healthy, HealthGrader.Grade(Session(Good with { State = "new" }) with { State = SessionState.Connecting }, t).Level);
    }

    [Fact]
    public void ThresholdsOutOfOrderAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new HealthThresholds { RoundTripDegraded = TimeSpan.FromSeconds(2) }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new HealthThresholds { DeliveryUnhealthy = 0.9 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new StreamServer(() => new LambdaHandler(Waits),
            new StreamServerOptions { Health = new() { LossUnhealthy = 0.01 } }));
    }

    private static async IAsyncEnumerable<StreamOutput> Waits(StreamContext context, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var _ in context.Inputs.WithCancellation(ct)) { }
        yield break;
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var end = DateTime.UtcNow + Patience;
        while (!condition() && DateTime.UtcNow < end) await Task.Delay(5);
        Assert.True(condition());
    }

    private static List<JsonElement> Controls(FakeTransport t) =>
        t.Log.Where(l => l.StartsWith("control:", StringComparison.Ordinal)).Select(l =>
            JsonDocument.Parse(l["control:".Length..]).RootElement.Clone()).ToList();

    [Fact]
    public async Task TheHealthCheckRaisesEachChangeTellsTheClientAndAsksItToLowerItsRate()
    {
        var clock = new ManualClock();
        await using var server = new StreamServer(() => new LambdaHandler(Waits),
            new StreamServerOptions { HealthCheckInterval = TimeSpan.FromHours(1) }, clock);
        var changes = new List<SessionHealthChange>();
        server.HealthChanged += c => { lock (changes) changes.Add(c); };
        server.TryReserve(out var slot, out _);
        var transport = new FakeTransport { Health = Good };
        var session = server.Start(slot!, transport);
        transport.Connect();
        await WaitUntil(() => session.State == SessionState.Running);
        server.CheckHealth();
        Assert.Empty(changes);   // healthy stays healthy: nothing raised

        transport.Health = Good with { RoundTripTime = TimeSpan.FromMilliseconds(450) };
        server.CheckHealth();
        server.CheckHealth();    // no change the second time
        var degraded = Assert.Single(changes);
        Assert.Equal((HealthLevel.Healthy, HealthLevel.Degraded, "rtt"), (degraded.From, degraded.To, degraded.Grade.Reasons[0].Metric));
        Assert.Equal(HealthLevel.Degraded, session.HealthLevel);
        await WaitUntil(() => Controls(transport).Count == 1);
        var note = Controls(transport)[0];
        Assert.Equal(("health", "degraded"), (note.GetProperty("type").GetString(), note.GetProperty("level").GetString()));
        Assert.Equal("rtt", note.GetProperty("reasons")[0].GetProperty("metric").GetString());

        transport.Health = Good with { RoundTripTime = TimeSpan.FromMilliseconds(450), LossFraction = 0.25 };
        server.CheckHealth();
        Assert.Equal(HealthLevel.Unhealthy, changes[^1].To);
        await WaitUntil(() => Controls(transport).Count == 3);
        Assert.Equal(["health", "health", "lower_rate"], Controls(transport).Select(c => c.GetProperty("type").GetString()));
        // The snapshot and the JSON carry the grade.
        Assert.Equal(HealthLevel.Unhealthy, session.GetHealth().Grade.Level);
        var json = JsonDocument.Parse(server.SessionsJson()).RootElement[0].GetProperty("health");
        Assert.Equal("unhealthy", json.GetProperty("level").GetString());
        Assert.Equal(2, json.GetProperty("reasons").GetArrayLength());

        transport.Health = Good;
        server.CheckHealth();
        Assert.Equal((HealthLevel.Unhealthy, HealthLevel.Healthy), (changes[^1].From, changes[^1].To));
        await WaitUntil(() => Controls(transport).Count == 4);
        Assert.Equal("healthy", Controls(transport)[^1].GetProperty("level").GetString());
        Assert.False(session.Completion.IsCompleted);
    }

    [Fact]
    public async Task APolicyThatEndsUnhealthySessionsEndsThemWithTheReasonsAndAStalledHandlerDegradesOnVirtualTime()
    {
        var clock = new ManualClock();
        await using var server = new StreamServer(() => new LambdaHandler(Stalls), new StreamServerOptions
        {
            HealthCheckInterval = TimeSpan.FromHours(1),
            HandlerStallLimit = null,
            Health = new() { OnUnhealthy = HealthAction.End, OnDegraded = HealthAction.Notify | HealthAction.RestartIce },
        }, clock);
        server.TryReserve(out var slot, out _);
        var transport = new FakeTransport { Health = Good };
        var session = server.Start(slot!, transport);
        transport.Connect();
        await WaitUntil(() => session.State == SessionState.Running);
        transport.ClientSends("one");
        transport.ClientSends("two");
        await WaitUntil(() => session.GetHealth().PendingInputs == 2);
        clock.Advance(TimeSpan.FromSeconds(1.9));
        server.CheckHealth();
        Assert.Equal(HealthLevel.Healthy, session.HealthLevel);
        clock.Advance(TimeSpan.FromSeconds(0.2));
        server.CheckHealth();
        Assert.Equal(HealthLevel.Degraded, session.HealthLevel);
        await WaitUntil(() => Controls(transport).Count == 2);
        Assert.Equal(["health", "restart_ice"], Controls(transport).Select(c => c.GetProperty("type").GetString()));
        clock.Advance(TimeSpan.FromSeconds(8));
        server.CheckHealth();
        var reason = await session.Completion.WaitAsync(Patience);
        Assert.Equal(SessionEndKind.Unhealthy, reason.Kind);
        Assert.Contains("handler stalled with 2 inputs", reason.Detail, StringComparison.Ordinal);
    }

    // Never reads its inputs: they wait, the handler stalls.
    private static async IAsyncEnumerable<StreamOutput> Stalls(StreamContext context, [EnumeratorCancellation] CancellationToken ct)
    {
        try { await Task.Delay(Timeout.Infinite, ct); }
        catch (OperationCanceledException) { }   // the session ended: nothing to produce
        yield break;
    }
}

/// <summary>
/// The handler is told its health: with <see cref="StreamServerOptions.HealthInputs"/> each level change is a
/// <see cref="HealthInput"/> among its inputs (ahead of the client's, merged while it does not read); without, only
/// <see cref="StreamContext.HealthGrade"/> and <see cref="StreamContext.WaitForHealthChangeAsync"/>. Health checks
/// are called by the test on a manual clock.
/// </summary>
public sealed class HandlerHealthInputTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private static readonly TransportHealth Good = new("connected", "127.0.0.1:1 -> 127.0.0.1:2", TimeSpan.FromMilliseconds(20),
        TimeSpan.FromSeconds(1), TimeSpan.Zero, TimeSpan.Zero, 0, 100_000, 100_000);

    private static async Task WaitUntil(Func<bool> condition)
    {
        var end = DateTime.UtcNow + Patience;
        while (!condition() && DateTime.UtcNow < end) await Task.Delay(5);
        Assert.True(condition());
    }

    private static string Describe(StreamInput input) => input switch
    {
        HealthInput h => $"health {HealthGrade.Name(h.From)}->{h.Grade.LevelName} {string.Join(",", h.Grade.Reasons.Select(r => r.Metric))}",
        DataInput d => "data " + d.Text,
        _ => "other",
    };

    [Fact]
    public async Task EachLevelChangeReachesTheHandlerAsAnInputAheadOfTheClientsAndChangesItMissedAreMerged()
    {
        var clock = new ManualClock();
        var seen = new List<string>();
        var reading = new SemaphoreSlim(0);
        var gate = new SemaphoreSlim(0);
        async IAsyncEnumerable<StreamOutput> Run(StreamContext context, [EnumeratorCancellation] CancellationToken ct)
        {
            await foreach (var input in context.Inputs.WithCancellation(ct))
            {
                lock (seen) seen.Add(Describe(input));
                // On "hold" the handler stops reading until the test lets it go on.
                if (input is DataInput { Text: "hold" }) await gate.WaitAsync(ct);
                if (input is HealthInput { Level: >= HealthLevel.Unhealthy }) yield return DataOutput.FromText("lowering my rate");
            }
        }
        await using var server = new StreamServer(() => new LambdaHandler(Run),
            new StreamServerOptions { HealthCheckInterval = TimeSpan.FromHours(1), HealthInputs = true }, clock);
        server.TryReserve(out var slot, out _);
        var transport = new FakeTransport { Health = Good };
        var session = server.Start(slot!, transport);
        transport.Connect();
        await WaitUntil(() => session.State == SessionState.Running);
        string[] Seen() { lock (seen) return seen.ToArray(); }

        server.CheckHealth();                               // healthy: nothing for the handler
        transport.ClientSends("one");
        await WaitUntil(() => Seen().Length == 1);
        transport.Health = Good with { RoundTripTime = TimeSpan.FromMilliseconds(450) };
        server.CheckHealth();
        await WaitUntil(() => Seen().Length == 2);
        transport.Health = Good with { LossFraction = 0.3 };
        server.CheckHealth();
        await WaitUntil(() => Seen().Length == 3);
        Assert.Equal(["data one", "health healthy->degraded rtt", "health degraded->unhealthy loss"], Seen());
        await WaitUntil(() => transport.Log.Contains("data:lowering my rate"));

        // The handler holds on to an input: meanwhile the client sends two more and the level moves twice; when it
        // reads again it gets one health item (unhealthy -> degraded: the healthy in between is merged) before them.
        transport.ClientSends("hold");
        await WaitUntil(() => Seen().Length == 4);
        transport.ClientSends("two");
        transport.ClientSends("three");
        transport.Health = Good;
        server.CheckHealth();
        transport.Health = Good with { Jitter = TimeSpan.FromMilliseconds(50) };
        server.CheckHealth();
        // A change that comes back to the level the handler was last told gives it nothing.
        transport.Health = Good with { LossFraction = 0.3 };
        server.CheckHealth();
        transport.Health = Good with { Jitter = TimeSpan.FromMilliseconds(50) };
        server.CheckHealth();
        Assert.Equal(HealthLevel.Degraded, session.HealthLevel);
        Assert.Equal(2, session.GetHealth().PendingInputs); // the health item is not a client input waiting
        gate.Release();
        await WaitUntil(() => Seen().Length == 7);
        Assert.Equal(["health unhealthy->degraded jitter", "data two", "data three"], Seen()[4..]);
        transport.Health = Good;
        server.CheckHealth();
        await WaitUntil(() => Seen().Length == 8);
        Assert.Equal("health degraded->healthy ", Seen()[7]);
        Assert.Equal(HealthLevel.Healthy, session.HealthGrade.Level);
        transport.ClientLeaves("done");
        // The client leaving ends the handler's inputs, so the handler also ends: which of the two the session reports
        // first is a race (README "Not done yet"); either way it ends, and not for a health reason.
        Assert.Contains((await session.Completion.WaitAsync(Patience)).Kind, new[] { SessionEndKind.ClientClosed, SessionEndKind.EndStream });
    }

    [Fact]
    public async Task WithoutHealthInputsTheHandlerReadsItsGradeAndAwaitsTheNextChangeAndItsInputsAreTheClientsOnly()
    {
        var clock = new ManualClock();
        var seen = new List<string>();
        var grades = new List<string>();
        var waiting = new SemaphoreSlim(0);   // released by the follower each time it waits (no handle: nothing to dispose)
        async IAsyncEnumerable<StreamOutput> Run(StreamContext context, [EnumeratorCancellation] CancellationToken ct)
        {
            // One task follows the health (what a handler adapting its rate does), the loop reads the client. The wait
            // is taken before the test is told it may change the health, so no change falls between two waits.
            var follow = Task.Run(async () =>
            {
                while (!ct.IsCancellationRequested)
                {
                    var next = context.WaitForHealthChangeAsync(ct);
                    waiting.Release();
                    var grade = await next;
                    lock (grades)
                        grades.Add(grade.LevelName + " " + string.Join(",", grade.Reasons.Select(r => r.Metric)) + " / " + context.HealthGrade.LevelName);
                }
            }, CancellationToken.None);
            await foreach (var input in context.Inputs.WithCancellation(ct))
                lock (seen) seen.Add(Describe(input));
            try { await follow; } catch (OperationCanceledException) { }
            yield break;
        }
        await using var server = new StreamServer(() => new LambdaHandler(Run), new StreamServerOptions { HealthCheckInterval = TimeSpan.FromHours(1) }, clock);
        server.TryReserve(out var slot, out _);
        var transport = new FakeTransport { Health = Good };
        var session = server.Start(slot!, transport);
        transport.Connect();
        await WaitUntil(() => session.State == SessionState.Running);
        Assert.Equal(HealthLevel.Healthy, session.Context.HealthGrade.Level);
        string[] Grades() { lock (grades) return grades.ToArray(); }

        // Consent ages on the clock: 10 s without an answered check is degraded, 30 s dead.
        Assert.True(await waiting.WaitAsync(Patience));
        transport.Health = Good with { ConsentAge = TimeSpan.FromSeconds(12) };
        clock.Advance(TimeSpan.FromSeconds(12));
        server.CheckHealth();
        await WaitUntil(() => Grades().Length == 1);
        Assert.True(await waiting.WaitAsync(Patience));
        transport.Health = Good with { ConsentAge = TimeSpan.FromSeconds(31) };
        clock.Advance(TimeSpan.FromSeconds(19));
        server.CheckHealth();
        await WaitUntil(() => Grades().Length == 2);
        Assert.True(await waiting.WaitAsync(Patience));
        server.CheckHealth();                               // the same level again: no change
        transport.Health = Good;
        server.CheckHealth();
        await WaitUntil(() => Grades().Length == 3);
        Assert.Equal(["degraded consent_age / degraded", "dead consent_age / dead", "healthy  / healthy"], Grades());
        transport.ClientSends("one");
        transport.ClientLeaves("done");
        await session.Completion.WaitAsync(Patience);
        Assert.Equal(["data one"], seen);
    }
}

/// <summary>The SCTP loss the grade reads is over the last 10 s, not since the start: it comes back once the path does.</summary>
public sealed class SlidingLossTests
{
    [Fact]
    public void TheFractionIsOverTheWindowAndNoneWithTooFewSent()
    {
        var loss = new SlidingLoss(TimeSpan.FromSeconds(10), minimumSent: 10);
        static TimeSpan S(double s) => TimeSpan.FromSeconds(s);
        Assert.Null(loss.Add(S(0), 0, 0));
        Assert.Null(loss.Add(S(1), 5, 2));              // 5 sent: too few for a rate
        Assert.Equal(0.2, loss.Add(S(2), 100, 20)!.Value, 6);
        // Ten seconds of clean traffic later the lossy start has left the window.
        for (var t = 3; t <= 12; t++) loss.Add(S(t), 100 + (t - 2) * 50, 20);
        Assert.Equal(0, loss.Add(S(13), 650, 20)!.Value, 6);
        // Loss again: seen at once, as a share of the window's traffic.
        Assert.Equal(50.0 / 500, loss.Add(S(14), 700, 70)!.Value, 6);   // from the sample at 4 s: 200 sent, 20 retransmitted
        // Silence: the counters do not move, the window empties of traffic: no rate.
        Assert.Null(loss.Add(S(30), 700, 70));
    }
}
