namespace Transport.Rtp.Congestion;

/// <summary>
/// The rate controller of draft-ietf-rmcat-gcc-02 section 5.5 as libwebrtc's AimdRateController runs it: on overuse
/// the rate drops to 0.85 of what the receiver acknowledged; while the detector says normal it grows, 8 % a second
/// far from the link capacity seen at the last overuses and by about a packet per response time near it; underuse
/// holds it (the queues drain). Sans-IO: times in microseconds, rates in bits per second.
/// </summary>
public sealed class AimdRateController
{
    private const double Beta = 0.85;
    private enum Phase { Hold, Increase, Decrease }

    private readonly double _min, _max;
    private Phase _phase = Phase.Hold;
    private long _lastChange = -1, _lastDecrease = -1;
    // The link capacity estimate (kbit/s) and its normalized variance, from the acknowledged rate at overuses.
    private double? _capacityKbps;
    private double _deviationKbps = 0.4;

    /// <summary>Creates a controller at <paramref name="start"/> bit/s, kept within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public AimdRateController(double start, double min, double max)
    {
        _min = min;
        _max = max;
        Bitrate = Math.Clamp(start, min, max);
    }

    /// <summary>The delay-based estimate in bits per second.</summary>
    public double Bitrate { get; private set; }

    /// <summary>The round-trip time used for the increase rate and the pace of decreases. Default 200 ms.</summary>
    public TimeSpan RoundTripTime { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Whether the link capacity is known (from an overuse or a probe): growth is then additive.</summary>
    public bool NearCapacity => _capacityKbps is not null;

    /// <summary>
    /// Whether a new overuse signal should lower the rate again. At once when the acknowledged rate fell below half the
    /// estimate (libwebrtc's rule: the path dropped far below us). Otherwise not before the last decrease can show in
    /// the feedback (a round trip plus the receiver's 100 ms feedback interval, 10-300 ms), and then only once the
    /// trend can see it: <paramref name="groupsSinceDecrease"/>, the packet groups sent after it that the trend took in,
    /// fill the trend's window (<see cref="DelayTrendDetector.WindowSize"/>), or a second passed, or the queue is long
    /// (<paramref name="queueDelay"/>, the round trip over the lowest, 100 ms or more: a drop-tail queue that filled
    /// shows no trend once full, so the chance to cut again must not be waited out). libwebrtc waits one round trip;
    /// the trend's slope over 20 groups (a quarter to a third of a second of video) still carries the growth that led
    /// to the decrease for that long, so the flow that saw a shared queue first cut two or three times in one episode
    /// while the other cut once, and two flows settled at up to (1 - 0.85) / (1 - 0.85²) = 1.85 times each other.
    /// </summary>
    public bool TimeToReduceFurther(long nowMicros, double? acked, int groupsSinceDecrease, TimeSpan queueDelay)
    {
        if (_lastDecrease < 0) return true;
        if (acked is { } a && a < 0.5 * Bitrate) return true;
        long elapsed = nowMicros - _lastDecrease;
        if (elapsed < Math.Clamp((long)RoundTripTime.TotalMicroseconds + 100_000, 10_000, 300_000)) return false;
        return groupsSinceDecrease >= DelayTrendDetector.WindowSize || elapsed >= 1_000_000 || queueDelay >= LongQueue;
    }

    /// <summary>A queue this long lets an overuse cut again without waiting for the trend to take in the last cut.</summary>
    public static readonly TimeSpan LongQueue = TimeSpan.FromMilliseconds(100);

    /// <summary>Sets the estimate (a probe measured the path).</summary>
    public void SetEstimate(double bitrate, long nowMicros)
    {
        Bitrate = Math.Clamp(bitrate, _min, _max);
        _lastChange = nowMicros;
    }

    /// <summary>A probe measured <paramref name="bitrate"/>: it weighs heavily in the capacity estimate.</summary>
    public void OnProbeResult(double bitrate) => UpdateCapacity(bitrate / 1000, 0.5);

    /// <summary>Applies the detector's <paramref name="usage"/> with the acknowledged rate <paramref name="acked"/> (null before one is known).</summary>
    public double Update(BandwidthUsage usage, double? acked, bool applicationLimited, long nowMicros)
    {
        switch (usage)
        {
            case BandwidthUsage.Normal when _phase == Phase.Hold:
                _lastChange = nowMicros;
                _phase = Phase.Increase;
                break;
            case BandwidthUsage.Overusing when _phase != Phase.Decrease:
                _phase = Phase.Decrease;
                break;
            case BandwidthUsage.Underusing:
                _phase = Phase.Hold;
                break;
        }

        double next = Bitrate;
        switch (_phase)
        {
            case Phase.Increase:
            {
                if (acked is { } a && _capacityKbps is { } c && a / 1000 > c + 3 * Math.Sqrt(c * _deviationKbps))
                    _capacityKbps = null;   // the path carries more than we thought: grow fast again
                // Never more than half again what actually arrived: an application-limited sender does not inflate it.
                double limit = acked is { } throughput ? 1.5 * throughput + 10_000 : _max;
                if (applicationLimited) limit = Bitrate;
                if (Bitrate < limit)
                {
                    double increase = _capacityKbps is not null ? AdditiveIncrease(nowMicros) : MultiplicativeIncrease(nowMicros);
                    next = Math.Min(Bitrate + increase, limit);
                }
                _lastChange = nowMicros;
                break;
            }
            case Phase.Decrease:
            {
                if (acked is not { } a) { _phase = Phase.Hold; break; }
                // 0.85 of what arrived, and never no decrease at all: when the acknowledged rate is above the
                // estimate (a probe's padding, a backlog that left at the pacing rate) libwebrtc falls back on the
                // capacity estimate and often does not decrease, so a flow that probed kept its rate while the one
                // sharing the bottleneck with it backed off. Here the lower of the two is the basis.
                double decreased = Math.Min(a, Bitrate) * Beta;
                if (decreased < Bitrate) next = decreased;
                // Far below the capacity estimate (the path or our share of it dropped): start it again from this sample.
                if (_capacityKbps is { } c && a / 1000 < c - 3 * Math.Sqrt(c * _deviationKbps)) _capacityKbps = null;
                UpdateCapacity(a / 1000, 0.05);
                _phase = Phase.Hold;
                _lastChange = nowMicros;
                _lastDecrease = nowMicros;
                break;
            }
        }

        Bitrate = Math.Clamp(next, _min, _max);
        return Bitrate;
    }

    private double MultiplicativeIncrease(long nowMicros)
    {
        double seconds = _lastChange < 0 ? 0 : Math.Min((nowMicros - _lastChange) / 1e6, 1.0);
        if (seconds <= 0) return 0;   // no time, no growth (two updates at one instant)
        return Math.Max(Bitrate * (Math.Pow(1.08, seconds) - 1), 1000);
    }

    // About one packet per response time (a round trip plus 100 ms), packets being a thirtieth of a second of media.
    private double AdditiveIncrease(long nowMicros)
    {
        double seconds = _lastChange < 0 ? 0 : (nowMicros - _lastChange) / 1e6;
        double frameBits = Bitrate / 30;
        double packetsPerFrame = Math.Ceiling(frameBits / (1200 * 8));
        double packetBits = frameBits / packetsPerFrame;
        double responseSeconds = RoundTripTime.TotalSeconds + 0.1;
        return Math.Max(4000, packetBits / responseSeconds) * seconds;
    }

    private void UpdateCapacity(double sampleKbps, double alpha)
    {
        double estimate = _capacityKbps is { } c ? (1 - alpha) * c + alpha * sampleKbps : sampleKbps;
        double error = estimate - sampleKbps;
        _deviationKbps = Math.Clamp((1 - alpha) * _deviationKbps + alpha * error * error / Math.Max(estimate, 1), 0.4, 2.5);
        _capacityKbps = estimate;
    }
}
