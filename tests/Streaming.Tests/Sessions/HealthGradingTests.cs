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
    public void EachMetricAcrossItsThresholdsGivesItsLevelAndAReason(string metric, Func<double, TransportHealth> with, double healthy, double degraded, double unhealthy)
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
        Assert.Equal(HealthLevel.Healthy, HealthGrader.Grade(Session(Good with { MediaBitrateOut = 30_000, BitrateOut = 5_000_000, MediaDeliveryRate = 1_000 }), t).Level);
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
        var many = HealthGrader.Grade(Session(Good with { RoundTripTime = TimeSpan.FromMilliseconds(400), LossFraction = 0.3, Jitter = TimeSpan.FromMilliseconds(40) }), t);
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
        Assert.Throws<ArgumentOutOfRangeException>(() => new StreamServer(() => new LambdaHandler(Waits), new StreamServerOptions { Health = new() { LossUnhealthy = 0.01 } }));
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
        t.Log.Where(l => l.StartsWith("control:", StringComparison.Ordinal)).Select(l => JsonDocument.Parse(l["control:".Length..]).RootElement.Clone()).ToList();

    [Fact]
    public async Task TheHealthCheckRaisesEachChangeTellsTheClientAndAsksItToLowerItsRate()
    {
        var clock = new ManualClock();
        await using var server = new StreamServer(() => new LambdaHandler(Waits), new StreamServerOptions { HealthCheckInterval = TimeSpan.FromHours(1) }, clock);
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
