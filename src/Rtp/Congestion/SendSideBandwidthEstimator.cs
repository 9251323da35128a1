namespace Transport.Rtp.Congestion;

/// <summary>
/// Send-side bandwidth estimation in the manner of Google Congestion Control (draft-ietf-rmcat-gcc-02, libwebrtc's
/// goog_cc): the peer's transport-cc feedback on our packets drives a delay-based estimate
/// (<see cref="DelayTrendDetector"/> into <see cref="AimdRateController"/>) and a loss-based one
/// (<see cref="LossBasedControl"/>); the target is the lower of the two. Probes (<see cref="ProbeController"/>) find
/// the capacity quickly at start and after application-limited periods, which <see cref="AlrDetector"/> recognises
/// so that an idle sender does not inflate the estimate. Sans-IO: the owner reports what it sends
/// (<see cref="OnPacketSent"/>) and what the feedback said (<see cref="OnFeedback"/>); nothing here reads a clock.
/// Allocation-free per packet.
/// </summary>
public sealed class SendSideBandwidthEstimator
{
    private const long AckedWindowMicros = 500_000;
    private const int AckedCapacity = 4096;

    private readonly CongestionControlOptions _options;
    private readonly DelayTrendDetector _detector = new();
    private readonly AimdRateController _aimd;
    private readonly LossBasedControl _loss;
    private readonly AlrDetector _alr = new();
    private readonly ProbeController _probes;
    // Acknowledged packets by arrival time (receiver's clock), for the acknowledged rate.
    private readonly (long Arrival, int Size)[] _acked = new (long, int)[AckedCapacity];
    private int _ackedStart, _ackedCount;
    private long _ackedBytes, _firstArrival = -1;
    private long _lastReportedTarget;

    /// <summary>Creates an estimator with <paramref name="options"/> (validated).</summary>
    public SendSideBandwidthEstimator(CongestionControlOptions? options = null)
    {
        _options = options ?? new CongestionControlOptions();
        _options.Validate();
        _aimd = new AimdRateController(_options.StartBitrate, _options.MinBitrate, _options.MaxBitrate);
        _loss = new LossBasedControl(_options.StartBitrate, _options.MinBitrate, _options.MaxBitrate);
        _probes = new ProbeController(_options);
        TargetBitrate = _options.StartBitrate;
        _lastReportedTarget = TargetBitrate;
    }

    /// <summary>The options in force.</summary>
    public CongestionControlOptions Options => _options;

    /// <summary>What the application should send at, in bits per second: the lower of the delay- and loss-based estimates.</summary>
    public long TargetBitrate { get; private set; }

    /// <summary>The rate the pacer lets media out at: <see cref="CongestionControlOptions.PacingFactor"/> times the target.</summary>
    public long PacingBitrate => (long)(TargetBitrate * _options.PacingFactor);

    /// <summary>The delay-based estimate in bits per second.</summary>
    public long DelayBasedBitrate => (long)_aimd.Bitrate;

    /// <summary>The loss-based limit in bits per second.</summary>
    public long LossBasedBitrate => (long)_loss.Bitrate;

    /// <summary>What the receiver acknowledged over the last half second, in bits per second, or null before that.</summary>
    public double? AckedBitrate { get; private set; }

    /// <summary>The delay detector's last conclusion.</summary>
    public BandwidthUsage DelayState => _detector.State;

    /// <summary>The delay detector (threshold, trend), for diagnostics.</summary>
    public DelayTrendDetector Detector => _detector;

    /// <summary>Whether the sender is application limited (sends well below the estimate).</summary>
    public bool InApplicationLimitedRegion => _alr.InAlr;

    /// <summary>The probe controller (results, probes started).</summary>
    public ProbeController Probes => _probes;

    /// <summary>The round-trip time from the feedback (send of the newest reported packet to the feedback).</summary>
    public TimeSpan RoundTripTime => _aimd.RoundTripTime;

    /// <summary>The lowest <see cref="RoundTripTime"/> seen: the path's own, without its queues.</summary>
    public TimeSpan? MinRoundTripTime { get; private set; }

    /// <summary>
    /// Bytes the pacer lets be in flight (sent and not yet reported by feedback): the target over the path's round
    /// trip plus <see cref="CongestionControlOptions.CongestionWindowQueueTime"/> (libwebrtc's congestion window
    /// experiment). Beyond it only audio leaves, so a queue that the delay signal reacts to too late (a step down of
    /// the path) cannot keep growing.
    /// </summary>
    public long CongestionWindowBytes => (long)(TargetBitrate * ((MinRoundTripTime ?? TimeSpan.FromMilliseconds(100)) + _options.CongestionWindowQueueTime).TotalSeconds / 8);

    /// <summary>Feedback reports read (packets).</summary>
    public long PacketsReported { get; private set; }

    /// <summary>Overuse signals acted on.</summary>
    public long Overuses { get; private set; }

    /// <summary>
    /// Records a packet of <paramref name="size"/> bytes leaving at <paramref name="now"/> (media, retransmission or
    /// padding): the application-limited detector counts it, and the first one starts the start probes.
    /// </summary>
    public void OnPacketSent(int size, TimeSpan now)
    {
        long micros = ToMicros(now);
        _probes.OnStart(TargetBitrate, micros);
        bool wasAlr = _alr.InAlr;
        _alr.OnBytesSent(size, TargetBitrate, micros);
        if (wasAlr && !_alr.InAlr) _probes.OnAlrEnded(TargetBitrate, _alr.LastDurationMicros, micros);
    }

    /// <summary>The next probe for the pacer to send, if one waits.</summary>
    public bool TryTakeProbe(out ProbeCluster cluster) => _probes.TryTake(out cluster);

    /// <summary>
    /// Reads one feedback message's packets (in the order the receiver reported them) at <paramref name="now"/> and
    /// updates the target.
    /// </summary>
    public void OnFeedback(ReadOnlySpan<PacketResult> packets, TimeSpan now)
    {
        long micros = ToMicros(now);
        int received = 0, lost = 0;
        long newestSend = long.MinValue;
        double? probeResult = null;
        foreach (ref readonly PacketResult p in packets)
        {
            PacketsReported++;
            if (p.ProbeCluster >= 0 && _probes.OnPacket(p, micros) is { } r) probeResult = Math.Max(probeResult ?? 0, r);
            if (!p.Received)
            {
                lost++;
                continue;
            }

            received++;
            if (p.SendMicros > newestSend) newestSend = p.SendMicros;
            AddAcked(p.ArrivalMicros, p.Size);
            _detector.Add(p.SendMicros, p.ArrivalMicros);
        }

        if (newestSend != long.MinValue && micros - newestSend is var rtt and > 0)
        {
            _aimd.RoundTripTime = TimeSpan.FromMicroseconds(Math.Min(rtt, 2_000_000));
            if (MinRoundTripTime is not { } min || _aimd.RoundTripTime < min) MinRoundTripTime = _aimd.RoundTripTime;
        }

        if (probeResult is { } probe && _detector.State != BandwidthUsage.Overusing)
        {
            _aimd.OnProbeResult(probe);
            if (probe > _aimd.Bitrate)
            {
                _aimd.SetEstimate(probe, micros);
                _loss.SetEstimate(probe);
            }
        }

        if (received > 0)
        {
            BandwidthUsage usage = _detector.State;
            if (usage != BandwidthUsage.Overusing || _aimd.TimeToReduceFurther(micros, AckedBitrate))
            {
                if (usage == BandwidthUsage.Overusing) Overuses++;
                bool hadCapacity = _aimd.NearCapacity;
                _aimd.Update(usage, AckedBitrate, _alr.InAlr, micros);
                if (hadCapacity && !_aimd.NearCapacity && !_alr.InAlr) _probes.OnCapacityUnknown(_aimd.Bitrate, micros);
            }
        }

        double target = _loss.OnReports(received, lost, _aimd.Bitrate, _aimd.RoundTripTime, micros);
        TargetBitrate = (long)Math.Clamp(target, _options.MinBitrate, _options.MaxBitrate);
    }

    /// <summary>
    /// True when the target moved by more than 2 % (or to a bound) since the last time this returned true: the
    /// application's cue to set its encoder.
    /// </summary>
    public bool TryTakeTargetChange(out long bitrate)
    {
        bitrate = TargetBitrate;
        long last = _lastReportedTarget;
        if (bitrate == last) return false;
        bool bound = bitrate == _options.MinBitrate || bitrate == _options.MaxBitrate;
        if (!bound && Math.Abs(bitrate - last) <= last / 50) return false;
        _lastReportedTarget = bitrate;
        return true;
    }

    private void AddAcked(long arrival, int size)
    {
        if (_firstArrival < 0) _firstArrival = arrival;
        if (_ackedCount == AckedCapacity) DropOldestAcked();
        _acked[(_ackedStart + _ackedCount) % AckedCapacity] = (arrival, size);
        _ackedCount++;
        _ackedBytes += size;
        long newest = arrival;
        while (_ackedCount > 1 && _acked[_ackedStart].Arrival <= newest - AckedWindowMicros) DropOldestAcked();
        long span = newest - _firstArrival;
        // The first estimate after 150 ms of arrivals, over what arrived so far; then over the last half second.
        if (span >= 150_000) AckedBitrate = _ackedBytes * 8e6 / Math.Min(span, AckedWindowMicros);
    }

    private void DropOldestAcked()
    {
        _ackedBytes -= _acked[_ackedStart].Size;
        _ackedStart = (_ackedStart + 1) % AckedCapacity;
        _ackedCount--;
    }

    private static long ToMicros(TimeSpan t) => t.Ticks / 10;
}
