namespace Transport.Rtp.Congestion;

/// <summary>
/// The delay-based half of the detector of draft-ietf-rmcat-gcc-02 section 5, in the form libwebrtc runs it: packets
/// are grouped by send time (a group is what was sent within 5 ms, section 5.2), the growth of the one-way delay from
/// group to group is accumulated and smoothed, the slope of that delay over the last <see cref="WindowSize"/> groups
/// (a least-squares trendline) is compared with an adaptive threshold (section 5.4), and an overuse is signalled only
/// when it lasts more than 10 ms and keeps growing.
/// </summary>
/// <remarks>
/// Times in microseconds; our send times and the receiver's arrival times are on different clocks, only differences
/// are used. Packets must be given in the receiver's report order; one sent before the current group started
/// (reordered by our own send path) is skipped, as libwebrtc's InterArrival does.
/// </remarks>
public sealed class DelayTrendDetector
{
    /// <summary>Groups in the trendline window (libwebrtc: 20).</summary>
    public const int WindowSize = 20;
    private const long GroupLengthMicros = 5_000;
    private const double Smoothing = 0.9;
    private const double ThresholdGain = 4.0;
    private const double UpGain = 0.0087, DownGain = 0.039;   // k_u, k_d (section 5.4)
    private const double OveruseTimeMs = 10;

    private readonly double[] _x = new double[WindowSize];
    private readonly double[] _y = new double[WindowSize];
    private int _windowStart, _windowCount;

    // The group being filled and the one completed before it.
    private long _firstSend = -1, _lastSend, _lastArrival, _firstArrival;
    private bool _havePrevious;
    private long _previousLastSend, _previousLastArrival;

    private long _firstGroupArrival = -1;
    private double _accumulatedDelayMs, _smoothedDelayMs, _previousTrend;
    private int _deltas;
    private double _timeOverUsingMs = -1;
    private int _overuseCount;
    private long _lastThresholdUpdate = -1;

    /// <summary>The current threshold on the modified trend (gamma of section 5.4), 6-600, starting at 12.5.</summary>
    public double Threshold { get; private set; } = 12.5;

    /// <summary>The last trend, scaled as it is compared with the threshold (m(i) of section 5.4).</summary>
    public double ModifiedTrend { get; private set; }

    /// <summary>The detector's conclusion after the last complete group.</summary>
    public BandwidthUsage State { get; private set; } = BandwidthUsage.Normal;

    /// <summary>Packets skipped because they were sent before the group being filled.</summary>
    public long OutOfOrder { get; private set; }

    /// <summary>Adds one received packet; returns true when it completed a group (and <see cref="State"/> was updated).</summary>
    public bool Add(long sendMicros, long arrivalMicros)
    {
        if (_firstSend < 0)
        {
            StartGroup(sendMicros, arrivalMicros);
            return false;
        }

        if (sendMicros < _firstSend)
        {
            OutOfOrder++;
            return false;
        }

        if (BelongsToGroup(sendMicros, arrivalMicros))
        {
            if (sendMicros > _lastSend) _lastSend = sendMicros;
            if (arrivalMicros > _lastArrival) _lastArrival = arrivalMicros;
            return false;
        }

        bool updated = false;
        if (_havePrevious)
        {
            long sendDelta = _lastSend - _previousLastSend;
            long arrivalDelta = _lastArrival - _previousLastArrival;
            if (sendDelta >= 0 && arrivalDelta > -1_000_000)
            {
                Update(sendDelta / 1000.0, arrivalDelta / 1000.0, _lastArrival);
                updated = true;
            }
        }

        _havePrevious = true;
        _previousLastSend = _lastSend;
        _previousLastArrival = _lastArrival;
        StartGroup(sendMicros, arrivalMicros);
        return updated;
    }

    private bool BelongsToGroup(long sendMicros, long arrivalMicros)
    {
        if (sendMicros - _firstSend <= GroupLengthMicros) return true;
        // A burst: packets that arrive back to back, less than 5 ms apart and with the delay shrinking, were queued
        // together on the path (libwebrtc's BelongsToBurst), so they count as one group.
        long arrivalDelta = arrivalMicros - _lastArrival;
        long propagationDelta = arrivalDelta - (sendMicros - _lastSend);
        return propagationDelta < 0 && arrivalDelta <= GroupLengthMicros && arrivalMicros - _firstArrival < 100_000;
    }

    private void StartGroup(long sendMicros, long arrivalMicros)
    {
        _firstSend = _lastSend = sendMicros;
        _firstArrival = _lastArrival = arrivalMicros;
    }

    private void Update(double sendDeltaMs, double arrivalDeltaMs, long arrivalMicros)
    {
        if (_deltas < 1000) _deltas++;
        if (_firstGroupArrival < 0) _firstGroupArrival = arrivalMicros;
        _accumulatedDelayMs += arrivalDeltaMs - sendDeltaMs;
        _smoothedDelayMs = Smoothing * _smoothedDelayMs + (1 - Smoothing) * _accumulatedDelayMs;

        int slot = (_windowStart + _windowCount) % WindowSize;
        if (_windowCount == WindowSize) _windowStart = (_windowStart + 1) % WindowSize;
        else _windowCount++;
        _x[slot] = (arrivalMicros - _firstGroupArrival) / 1000.0;
        _y[slot] = _smoothedDelayMs;

        double trend = _previousTrend;
        if (_windowCount == WindowSize && Slope() is { } s) trend = s;
        Detect(trend, sendDeltaMs, arrivalMicros / 1000);
    }

    // Least-squares slope of the smoothed delay over arrival time in the window.
    private double? Slope()
    {
        double sumX = 0, sumY = 0;
        for (int i = 0; i < _windowCount; i++) { sumX += _x[i]; sumY += _y[i]; }
        double meanX = sumX / _windowCount, meanY = sumY / _windowCount;
        double numerator = 0, denominator = 0;
        for (int i = 0; i < _windowCount; i++)
        {
            double dx = _x[i] - meanX;
            numerator += dx * (_y[i] - meanY);
            denominator += dx * dx;
        }
        return denominator == 0 ? null : numerator / denominator;
    }

    private void Detect(double trend, double sendDeltaMs, long nowMs)
    {
        if (_deltas < 2)
        {
            State = BandwidthUsage.Normal;
            return;
        }

        double modified = Math.Min(_deltas, 60) * trend * ThresholdGain;
        ModifiedTrend = modified;
        if (modified > Threshold)
        {
            _timeOverUsingMs = _timeOverUsingMs < 0 ? sendDeltaMs / 2 : _timeOverUsingMs + sendDeltaMs;
            _overuseCount++;
            if (_timeOverUsingMs > OveruseTimeMs && _overuseCount > 1 && trend >= _previousTrend)
            {
                _timeOverUsingMs = 0;
                _overuseCount = 0;
                State = BandwidthUsage.Overusing;
            }
        }
        else if (modified < -Threshold)
        {
            _timeOverUsingMs = -1;
            _overuseCount = 0;
            State = BandwidthUsage.Underusing;
        }
        else
        {
            _timeOverUsingMs = -1;
            _overuseCount = 0;
            State = BandwidthUsage.Normal;
        }

        _previousTrend = trend;
        UpdateThreshold(modified, nowMs);
    }

    // Section 5.4: the threshold follows |m| slowly upwards and faster downwards, so a competing TCP-like flow does not
    // starve us (a fixed threshold would) and the detector stays sensitive on a quiet path. Outliers leave it alone.
    private void UpdateThreshold(double modified, long nowMs)
    {
        if (_lastThresholdUpdate < 0) _lastThresholdUpdate = nowMs;
        double magnitude = Math.Abs(modified);
        if (magnitude > Threshold + 15)
        {
            _lastThresholdUpdate = nowMs;
            return;
        }

        double k = magnitude < Threshold ? DownGain : UpGain;
        long elapsed = Math.Min(nowMs - _lastThresholdUpdate, 100);
        Threshold = Math.Clamp(Threshold + k * (magnitude - Threshold) * elapsed, 6, 600);
        _lastThresholdUpdate = nowMs;
    }
}
