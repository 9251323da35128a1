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
    private long _lastFeedbackMicros = -1, _lastSentMicros = -1;
    private long _lastDecreaseMicros = -1;   // when an overuse last lowered the delay-based estimate (our clock)
    private int _groupsSinceDecrease;        // delay groups the trend took in that began after it
    private bool _recovering;   // an outage ended and no feedback since reported a packet sent during it that arrived
    private long _outageFrom;   // the last feedback before the outage

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
    public long CongestionWindowBytes => Math.Max(MinCongestionWindowBytes,
        (long)(TargetBitrate * ((MinRoundTripTime ?? TimeSpan.FromMilliseconds(100)) + _options.CongestionWindowQueueTime).TotalSeconds / 8));

    /// <summary>The congestion window is never below two full packets (libwebrtc's minimum), so a low target still lets a frame out.</summary>
    public const long MinCongestionWindowBytes = 2 * 1500;

    /// <summary>
    /// Feedback that came after none for a second or more while we sent: an outage (a partition, the path or only the
    /// feedback cut) ended. Losses it reports of packets sent before its first reception were the outage's, not the
    /// path's capacity's, and a probe follows to find the capacity again.
    /// </summary>
    public long Outages { get; private set; }

    /// <summary>
    /// Loss reports left out of the loss-based control: packets sent during an outage, or reported more than a second (two round trips) late.
    /// </summary>
    public long StaleLosses { get; private set; }

    private const long OutageMicros = 1_000_000;

    /// <summary>Loss reports the loss-based control counted.</summary>
    public long LossesCounted { get; private set; }

    /// <summary>Feedback reports read (packets).</summary>
    public long PacketsReported { get; private set; }

    /// <summary>Overuse signals acted on.</summary>
    public long Overuses { get; private set; }

    /// <summary>
    /// A queue this long (one-way delay over the lowest of the last 5-10 s), still growing (a positive trend), is an
    /// overuse even while the trend is under the threshold. Two flows through one bottleneck see the same queue but
    /// not the same trend: the one whose feedback crossed the threshold first cut, its cut drained the queue, and the
    /// other never crossed it, so one flow cut in an episode while the other did not and the share moved by 0.85 each
    /// time (seeds of the two-flow scenario settled at 1.5-1.75). The level is seen alike by both: both cut.
    /// </summary>
    public const long SharedQueueLevelMicros = 30_000;

    /// <summary>Groups on which a queue of <see cref="SharedQueueLevelMicros"/> or more, growing, signalled an overuse the trend had not.</summary>
    public long OverusesOnLevel { get; private set; }

    // The lowest one-way delay (receiver's arrival less our send time: the clocks' offset plus the path without queues)
    // in the current and the previous 5 s, so a change of the path or a drift of the clocks is followed within 10 s.
    private long _owdMinCurrent = long.MaxValue, _owdMinPrevious = long.MaxValue, _owdMinSince;

    /// <summary>
    /// Records a packet of <paramref name="size"/> bytes leaving at <paramref name="now"/> (media, retransmission or
    /// padding): the application-limited detector counts it, and the first one starts the start probes.
    /// </summary>
    public void OnPacketSent(int size, TimeSpan now)
    {
        long micros = ToMicros(now);
        _lastSentMicros = micros;
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
        // An overuse the detector concluded on any group of this message, or a queue above SharedQueueLevel still
        // growing: see OverusesOnLevel.
        bool overuseSeen = false;
        // An outage ends: nothing came back for a second or more although we sent. What we sent into it was lost to
        // the outage; the reports of that begin the message, before its first packet that arrived.
        // The receiver may report the outage's losses in several messages before the first arrival after it.
        bool outageEnded = _lastFeedbackMicros >= 0 && micros - _lastFeedbackMicros >= OutageMicros && _lastSentMicros > _lastFeedbackMicros;
        long previousFeedback = _lastFeedbackMicros;
        _lastFeedbackMicros = micros;
        if (outageEnded)
        {
            _recovering = true;
            _outageFrom = previousFeedback;
        }
        // The first packet sent after the last feedback before the outage that arrived: the outage was over when it
        // left. (Packets sent before that feedback and reported only now arrived before the outage.)
        long firstReceivedSend = long.MaxValue;
        bool arrivedSince = false;
        if (_recovering)
            foreach (ref readonly PacketResult p in packets)
                if (p.Received && p.SendMicros > _outageFrom && p.SendMicros < firstReceivedSend)
                {
                    firstReceivedSend = p.SendMicros;
                    arrivedSince = true;
                }
        // A loss reported long after the packet left (the feedback carrying it was held up by an outage) says nothing of
        // the path now: at least a second, and twice the round trip.
        long staleBefore = micros - Math.Max(OutageMicros, 2 * (long)_aimd.RoundTripTime.TotalMicroseconds);
        foreach (ref readonly PacketResult p in packets)
        {
            PacketsReported++;
            if (p.ProbeCluster >= 0 && _probes.OnPacket(p, micros) is { } r) probeResult = Math.Max(probeResult ?? 0, r);
            if (!p.Received)
            {
                if (p.SendMicros < staleBefore || _recovering && p.SendMicros < firstReceivedSend) StaleLosses++;
                else lost++;
                continue;
            }

            received++;
            if (p.SendMicros > newestSend) newestSend = p.SendMicros;
            AddAcked(p.ArrivalMicros, p.Size);
            long owd = p.ArrivalMicros - p.SendMicros;
            if (owd < _owdMinCurrent) _owdMinCurrent = owd;
            if (_detector.Add(p.SendMicros, p.ArrivalMicros))
            {
                if (p.SendMicros > _lastDecreaseMicros) _groupsSinceDecrease++;
                if (_detector.State == BandwidthUsage.Overusing) overuseSeen = true;
                else if (_detector.ModifiedTrend > 0 && owd - Math.Min(_owdMinCurrent, _owdMinPrevious) >= SharedQueueLevelMicros)
                {
                    overuseSeen = true;
                    OverusesOnLevel++;
                }
            }
        }

        if (micros - _owdMinSince >= 5_000_000)
        {
            _owdMinPrevious = _owdMinCurrent;
            _owdMinCurrent = long.MaxValue;
            _owdMinSince = micros;
        }
        if (arrivedSince) _recovering = false;
        LossesCounted += lost;
        if (outageEnded)
        {
            Outages++;
            // What arrived before the outage is no measure of the rate now, and the capacity is unknown: probe it.
            _ackedStart = _ackedCount = 0;
            _ackedBytes = 0;
            _firstArrival = -1;
            AckedBitrate = null;
            _probes.OnOutageEnded(TargetBitrate, micros);
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
            // A probe that carried more than a loss-based decrease left: that decrease is over (libwebrtc sets its
            // loss-based estimate from a probe result too).
            else if (_loss.Limiting && probe > _loss.Bitrate) _loss.SetEstimate(probe);
        }

        if (received > 0)
        {
            BandwidthUsage usage = overuseSeen ? BandwidthUsage.Overusing : _detector.State;
            if (usage != BandwidthUsage.Overusing || _aimd.TimeToReduceFurther(micros, AckedBitrate, _groupsSinceDecrease,
                RoundTripTime - (MinRoundTripTime ?? RoundTripTime)))
            {
                if (usage == BandwidthUsage.Overusing && AckedBitrate is not null)
                {
                    Overuses++;
                    _lastDecreaseMicros = micros;
                    _groupsSinceDecrease = 0;
                }
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
