using System.Globalization;

namespace Transport.Streaming.Sessions;

/// <summary>How well a session is doing, worst last.</summary>
public enum HealthLevel
{
    /// <summary>Every metric within its degraded threshold.</summary>
    Healthy,
    /// <summary>At least one metric past its degraded threshold (the user notices: late audio, a frozen frame now and then).</summary>
    Degraded,
    /// <summary>At least one metric past its unhealthy threshold (the session barely works).</summary>
    Unhealthy,
    /// <summary>The transport failed or closed, or its consent is past the dead threshold (a disconnected transport is unhealthy: it may come back).</summary>
    Dead,
}

/// <summary>One metric past a threshold: its name, value, the threshold crossed, the level it gives, and a sentence.</summary>
/// <param name="Metric">One of <c>transport</c>, <c>consent_age</c>, <c>rtt</c>, <c>loss</c>, <c>jitter</c>, <c>delivery</c>, <c>send_backlog</c>,
/// <c>handler_stall</c>.</param>
/// <param name="Value">Its value (seconds, a fraction, or bytes; 0 for <c>transport</c>).</param>
/// <param name="Threshold">The threshold it crossed, in the same unit.</param>
/// <param name="Level">The level this metric alone gives.</param>
/// <param name="Text">A sentence for logs and pages, e.g. "round trip 450 ms (>= 300 ms)".</param>
public sealed record HealthReason(string Metric, double Value, double Threshold, HealthLevel Level, string Text);

/// <summary>A session's level and the reasons that put it there (empty when healthy).</summary>
public sealed record HealthGrade(HealthLevel Level, IReadOnlyList<HealthReason> Reasons)
{
    /// <summary>Healthy, no reasons.</summary>
    public static HealthGrade Healthy { get; } = new(HealthLevel.Healthy, []);

    /// <summary>The level's name as the JSON and the page show it: <c>healthy</c>, <c>degraded</c>, <c>unhealthy</c>, <c>dead</c>.</summary>
    public string LevelName => Name(Level);

    internal static string Name(HealthLevel level) => level switch
    {
        HealthLevel.Healthy => "healthy",
        HealthLevel.Degraded => "degraded",
        HealthLevel.Unhealthy => "unhealthy",
        _ => "dead",
    };
}

/// <summary>What the health policy does when a session enters a level (flags).</summary>
[Flags]
public enum HealthAction
{
    /// <summary>Nothing beyond the event, the metric and the log line.</summary>
    None = 0,
    /// <summary>Tells the client: <c>{"type":"health","level":L,"reasons":[...]}</c> on its control channel.</summary>
    Notify = 1,
    /// <summary>Asks the client to lower its sending rate: <c>{"type":"lower_rate","level":L,"reasons":[...]}</c>.</summary>
    LowerRate = 2,
    /// <summary>Asks the client to restart ICE (the client offers; <c>{"type":"restart_ice","reasons":[...]}</c>).</summary>
    RestartIce = 4,
    /// <summary>Ends the session (reason <see cref="SessionEndKind.Unhealthy"/> with the reasons).</summary>
    End = 8,
}

/// <summary>
/// The thresholds that grade a session (<see cref="HealthGrader"/>): a metric at or past its degraded threshold makes
/// the session degraded, at or past its unhealthy one unhealthy; null turns a threshold off. Defaults follow what a
/// voice or video call tolerates (ITU-T G.114's 150 ms one way for RTT; a few percent loss; RFC 7675's 30 s consent).
/// </summary>
public sealed record HealthThresholds
{
    /// <summary>Consent age (time since the last consent check answered): degraded at 10 s (two missed checks at the 5 s interval).</summary>
    public TimeSpan? ConsentAgeDegraded { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Unhealthy at 20 s.</summary>
    public TimeSpan? ConsentAgeUnhealthy { get; init; } = TimeSpan.FromSeconds(20);
    /// <summary>Dead at 30 s (RFC 7675 section 5.1: consent expires).</summary>
    public TimeSpan? ConsentAgeDead { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Round-trip time: degraded at 300 ms.</summary>
    public TimeSpan? RoundTripDegraded { get; init; } = TimeSpan.FromMilliseconds(300);
    /// <summary>Unhealthy at 1 s.</summary>
    public TimeSpan? RoundTripUnhealthy { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Loss (the larger of SCTP's retransmitted fraction and media loss from transport-cc): degraded at 5 %.</summary>
    public double? LossDegraded { get; init; } = 0.05;
    /// <summary>Unhealthy at 20 %.</summary>
    public double? LossUnhealthy { get; init; } = 0.20;

    /// <summary>Interarrival jitter of the client's media (RFC 3550 A.8, the worst track): degraded at 30 ms.</summary>
    public TimeSpan? JitterDegraded { get; init; } = TimeSpan.FromMilliseconds(30);
    /// <summary>Unhealthy at 100 ms.</summary>
    public TimeSpan? JitterUnhealthy { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Delivery: the bit rate of our media the client received (transport-cc feedback) over the bit rate of media we
    /// sent (<see cref="TransportHealth.MediaBitrateOut"/>), graded only while we send at least
    /// <see cref="DeliveryMinimumBitrate"/>: degraded below 0.8.
    /// </summary>
    public double? DeliveryDegraded { get; init; } = 0.8;
    /// <summary>Unhealthy below 0.5.</summary>
    public double? DeliveryUnhealthy { get; init; } = 0.5;
    /// <summary>Delivery is graded only above this outgoing media bit rate (bits/s). Default 64,000.</summary>
    public long DeliveryMinimumBitrate { get; init; } = 64_000;

    /// <summary>Send backlog (bytes queued in SCTP, not yet acknowledged): degraded at 256 KiB.</summary>
    public long? SendBacklogDegraded { get; init; } = 256 * 1024;
    /// <summary>Unhealthy at 1 MiB.</summary>
    public long? SendBacklogUnhealthy { get; init; } = 1024 * 1024;

    /// <summary>Handler stall (inputs waiting, and neither input taken nor output produced for this long): degraded at 2 s.</summary>
    public TimeSpan? HandlerStallDegraded { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Unhealthy at 10 s.</summary>
    public TimeSpan? HandlerStallUnhealthy { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// What the policy does on entering each level: degraded Notify, unhealthy Notify + LowerRate, dead Notify (the disconnected limit releases a dead
    /// session).
    /// </summary>
    public HealthAction OnDegraded { get; init; } = HealthAction.Notify;
    /// <summary>See <see cref="OnDegraded"/>.</summary>
    public HealthAction OnUnhealthy { get; init; } = HealthAction.Notify | HealthAction.LowerRate;
    /// <summary>See <see cref="OnDegraded"/>.</summary>
    public HealthAction OnDead { get; init; } = HealthAction.Notify;
    /// <summary>Tell the client (<see cref="HealthAction.Notify"/>) also when it comes back to healthy. Default true.</summary>
    public bool NotifyRecovery { get; init; } = true;

    /// <summary>The actions for entering <paramref name="level"/>.</summary>
    public HealthAction ActionsFor(HealthLevel level) => level switch
    {
        HealthLevel.Degraded => OnDegraded,
        HealthLevel.Unhealthy => OnUnhealthy,
        HealthLevel.Dead => OnDead,
        _ => NotifyRecovery ? HealthAction.Notify : HealthAction.None,
    };

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> when an unhealthy threshold is milder than its degraded one.</summary>
    public void Validate()
    {
        static void Order<T>(T? degraded, T? unhealthy, string name, bool lowerIsWorse = false) where T : struct, IComparable<T>
        {
            if (degraded is { } d && unhealthy is { } u && (lowerIsWorse ? u.CompareTo(d) > 0 : u.CompareTo(d) < 0))
                throw new ArgumentOutOfRangeException(name, "the unhealthy threshold is milder than the degraded one");
        }
        Order(ConsentAgeDegraded, ConsentAgeUnhealthy, nameof(ConsentAgeUnhealthy));
        Order(ConsentAgeUnhealthy, ConsentAgeDead, nameof(ConsentAgeDead));
        Order(RoundTripDegraded, RoundTripUnhealthy, nameof(RoundTripUnhealthy));
        Order(LossDegraded, LossUnhealthy, nameof(LossUnhealthy));
        Order(JitterDegraded, JitterUnhealthy, nameof(JitterUnhealthy));
        Order(DeliveryDegraded, DeliveryUnhealthy, nameof(DeliveryUnhealthy), lowerIsWorse: true);
        Order(SendBacklogDegraded, SendBacklogUnhealthy, nameof(SendBacklogUnhealthy));
        Order(HandlerStallDegraded, HandlerStallUnhealthy, nameof(HandlerStallUnhealthy));
        if (DeliveryMinimumBitrate < 0) throw new ArgumentOutOfRangeException(nameof(DeliveryMinimumBitrate));
    }
}

/// <summary>
/// Grades a <see cref="SessionHealth"/> against <see cref="HealthThresholds"/>: the worst metric decides; every metric past a threshold is a reason.
/// </summary>
public static class HealthGrader
{
    public static HealthGrade Grade(SessionHealth health, HealthThresholds thresholds)
    {
        ArgumentNullException.ThrowIfNull(health);
        ArgumentNullException.ThrowIfNull(thresholds);
        var t = thresholds;
        var c = health.Connection;
        var reasons = new List<HealthReason>();
        if (health.State == SessionState.Connecting) return HealthGrade.Healthy; // not graded before it connects
        // Disconnected may come back (ICE keeps checking until its failed timeout); failed and closed do not.
        if (c.State is "disconnected" or "failed" or "closed")
            reasons.Add(new HealthReason("transport", 0, 0, c.State == "disconnected" ? HealthLevel.Unhealthy : HealthLevel.Dead,
                "transport " + c.State + (c.StateReason is { } r ? " (" + r + ")" : "")));

        void Time(string metric, TimeSpan? value, TimeSpan? degraded, TimeSpan? unhealthy, TimeSpan? dead, string what)
        {
            if (value is not { } v) return;
            var (level, threshold) =
                dead is { } x && v >= x ? (HealthLevel.Dead, x)
                : unhealthy is { } u && v >= u ? (HealthLevel.Unhealthy, u)
                : degraded is { } d && v >= d ? (HealthLevel.Degraded, d)
                : (HealthLevel.Healthy, TimeSpan.Zero);
            if (level == HealthLevel.Healthy) return;
            reasons.Add(new HealthReason(metric, v.TotalSeconds, threshold.TotalSeconds, level,
                string.Create(CultureInfo.InvariantCulture, $"{what} {Ms(v)} (>= {Ms(threshold)})")));
        }
        void Number(string metric, double? value, double? degraded, double? unhealthy, string what, Func<double, string> format, bool lowerIsWorse = false)
        {
            if (value is not { } v || double.IsNaN(v)) return;
            bool Past(double limit) => lowerIsWorse ? v < limit : v >= limit;
            var (level, threshold) =
                unhealthy is { } u && Past(u) ? (HealthLevel.Unhealthy, u)
                : degraded is { } d && Past(d) ? (HealthLevel.Degraded, d)
                : (HealthLevel.Healthy, 0d);
            if (level == HealthLevel.Healthy) return;
            reasons.Add(new HealthReason(metric, v, threshold, level, $"{what} {format(v)} ({(lowerIsWorse ? "<" : ">=")} {format(threshold)})"));
        }

        Time("consent_age", c.ConsentAge, t.ConsentAgeDegraded, t.ConsentAgeUnhealthy, t.ConsentAgeDead, "consent age");
        Time("rtt", c.RoundTripTime, t.RoundTripDegraded, t.RoundTripUnhealthy, null, "round trip");
        var loss = Max(c.LossFraction, c.MediaLossFraction);
        Number("loss", loss, t.LossDegraded, t.LossUnhealthy, "loss", Percent);
        Time("jitter", c.Jitter, t.JitterDegraded, t.JitterUnhealthy, null, "jitter");
        // Our media only (data channels are not in transport-cc); the delivered rate counts RTP headers too, so a
        // loss-free path reads at or above 100 % here.
        if (c.MediaDeliveryRate is { } delivered && c.MediaBitrateOut >= t.DeliveryMinimumBitrate && c.MediaBitrateOut > 0)
            Number("delivery", Math.Min(1, delivered / c.MediaBitrateOut), t.DeliveryDegraded, t.DeliveryUnhealthy, "delivered", Percent, lowerIsWorse: true);
        Number("send_backlog", c.SendBacklogBytes, t.SendBacklogDegraded, t.SendBacklogUnhealthy, "send backlog",
            v => string.Create(CultureInfo.InvariantCulture, $"{v / 1024:0.#} KiB"));
        if (health.PendingInputs > 0)
        {
            var stalled = health.SinceHandlerTookInput < health.SinceHandlerProducedOutput ? health.SinceHandlerTookInput : health.SinceHandlerProducedOutput;
            Time("handler_stall", stalled, t.HandlerStallDegraded, t.HandlerStallUnhealthy, null,
                $"handler stalled with {health.PendingInputs} inputs waiting for");
        }
        if (reasons.Count == 0) return HealthGrade.Healthy;
        reasons.Sort((a, b) => b.Level.CompareTo(a.Level));
        return new HealthGrade(reasons[0].Level, reasons);
    }

    private static double? Max(double? a, double? b) => a is { } x ? b is { } y ? Math.Max(x, y) : x : b;

    private static string Percent(double v) => string.Create(CultureInfo.InvariantCulture, $"{v * 100:0.#} %");

    private static string Ms(TimeSpan v) =>
        v < TimeSpan.FromSeconds(10) ? string.Create(CultureInfo.InvariantCulture, $"{v.TotalMilliseconds:0} ms") : string.Create(CultureInfo.InvariantCulture,
            $"{v.TotalSeconds:0.#} s");
}

/// <summary>A session's change of <see cref="HealthLevel"/>, with the grade that caused it.</summary>
public sealed record SessionHealthChange(string SessionId, HealthLevel From, HealthGrade Grade, TimeSpan At)
{
    /// <summary>The new level.</summary>
    public HealthLevel To => Grade.Level;
}
