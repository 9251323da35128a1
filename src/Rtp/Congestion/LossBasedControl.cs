namespace Transport.Rtp.Congestion;

/// <summary>
/// The loss-based controller of draft-ietf-rmcat-gcc-02 section 6: more than 10 % of the packets lost lowers the rate
/// by half the loss fraction (at most once per 300 ms plus a round trip); less than 2 % raises it by 8 % of the lowest
/// rate of the last second; in between it holds. Loss is counted over at least <see cref="MinPackets"/> reports.
/// </summary>
/// <remarks>
/// It limits only after a loss-based decrease, until its 8 % a second growth catches up with the delay-based rate
/// (as libwebrtc's newer loss-based controller): without loss the delay-based estimate alone decides, so a step up of
/// the path is not held to 8 % a second by this half.
/// </remarks>
public sealed class LossBasedControl
{
    /// <summary>Reports needed before a loss fraction is acted on (libwebrtc: 20).</summary>
    public const int MinPackets = 20;

    private readonly double _min, _max;
    private int _received, _lost;
    private bool _limiting;
    private long _lastDecrease = long.MinValue / 2;
    private readonly (long At, double Bitrate)[] _history = new (long, double)[64];
    private int _historyStart, _historyCount;

    /// <summary>Creates a controller at <paramref name="start"/> bit/s within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public LossBasedControl(double start, double min, double max)
    {
        _min = min;
        _max = max;
        Bitrate = Math.Clamp(start, min, max);
    }

    /// <summary>The loss-based rate in bits per second.</summary>
    public double Bitrate { get; private set; }

    /// <summary>The loss fraction last acted on.</summary>
    public double LastLossFraction { get; private set; }

    /// <summary>Counts reports; acts when <see cref="MinPackets"/> are in. Returns the rate, capped by <paramref name="delayBased"/>.</summary>
    public double OnReports(int received, int lost, double delayBased, TimeSpan roundTrip, long nowMicros)
    {
        _received += received;
        _lost += lost;
        Forget(nowMicros);   // "the lowest rate of the last second" must not see older ones
        int total = _received + _lost;
        if (total >= MinPackets)
        {
            double loss = (double)_lost / total;
            LastLossFraction = loss;
            _received = _lost = 0;
            if (loss <= 0.02 && _limiting)
            {
                double lowest = Bitrate;
                for (int i = 0; i < _historyCount; i++) lowest = Math.Min(lowest, _history[(_historyStart + i) % _history.Length].Bitrate);
                Bitrate = lowest * 1.08 + 1000;
                if (Bitrate >= delayBased) _limiting = false;
            }
            else if (loss > 0.10 && nowMicros - _lastDecrease >= 300_000 + (long)roundTrip.TotalMicroseconds)
            {
                Bitrate = Math.Min(Bitrate, delayBased) * (1 - 0.5 * loss);
                _lastDecrease = nowMicros;
                _limiting = true;
            }
        }

        // Never above the delay-based rate (libwebrtc caps it so), so a decrease acts at once.
        Bitrate = Math.Clamp(_limiting ? Math.Min(Bitrate, delayBased) : delayBased, _min, _max);
        Remember(nowMicros, Bitrate);
        return Bitrate;
    }

    /// <summary>Sets the rate (a probe measured more than the estimate).</summary>
    public void SetEstimate(double bitrate)
    {
        Bitrate = Math.Clamp(bitrate, _min, _max);
        _limiting = false;
    }

    /// <summary>Whether a loss-based decrease still limits the rate.</summary>
    public bool Limiting => _limiting;

    private void Remember(long nowMicros, double bitrate)
    {
        Forget(nowMicros);
        if (_historyCount == _history.Length)
        {
            _historyStart = (_historyStart + 1) % _history.Length;
            _historyCount--;
        }
        _history[(_historyStart + _historyCount) % _history.Length] = (nowMicros, bitrate);
        _historyCount++;
    }

    private void Forget(long nowMicros)
    {
        while (_historyCount > 0 && _history[_historyStart].At < nowMicros - 1_000_000)
        {
            _historyStart = (_historyStart + 1) % _history.Length;
            _historyCount--;
        }
    }
}
