namespace Transport.Rtp.Congestion;

/// <summary>
/// Application-limited region detector (libwebrtc's AlrDetector): a budget fills at 65 % of the estimate and what we
/// send drains it; when more than 80 % of half a second's budget stays unused the sender is application limited (it
/// sends less than the path carries, so the feedback says nothing about the path's limit and the estimate must not
/// grow on it), and the region ends when the unused part falls under 50 %.
/// </summary>
public sealed class AlrDetector
{
    private const double UsageRatio = 0.65, StartLevel = 0.8, StopLevel = 0.5;
    private const long WindowMicros = 500_000;

    private double _remainingBytes;
    private long _last = -1;

    /// <summary>When the current application-limited region started (microseconds), or null outside one.</summary>
    public long? StartedMicros { get; private set; }

    /// <summary>When the last region ended, or null.</summary>
    public long? EndedMicros { get; private set; }

    /// <summary>How long the last region lasted.</summary>
    public long LastDurationMicros { get; private set; }

    /// <summary>Whether the sender is application limited now.</summary>
    public bool InAlr => StartedMicros is not null;

    /// <summary>Counts <paramref name="bytes"/> sent at <paramref name="nowMicros"/> with the estimate <paramref name="bitrate"/>.</summary>
    public void OnBytesSent(int bytes, double bitrate, long nowMicros)
    {
        double max = bitrate * UsageRatio * WindowMicros / 8e6;
        if (_last < 0)
        {
            _last = nowMicros;
            _remainingBytes = 0;
        }
        long elapsed = Math.Min(nowMicros - _last, WindowMicros);
        _last = Math.Max(_last, nowMicros);
        if (elapsed > 0) _remainingBytes = Math.Min(_remainingBytes + bitrate * UsageRatio * elapsed / 8e6, max);
        _remainingBytes = Math.Max(_remainingBytes - bytes, -max);
        double level = max <= 0 ? 0 : Math.Max(0, _remainingBytes) / max;
        if (level > StartLevel && StartedMicros is null) StartedMicros = nowMicros;
        else if (level < StopLevel && StartedMicros is { } started)
        {
            LastDurationMicros = nowMicros - started;
            StartedMicros = null;
            EndedMicros = nowMicros;
        }
    }
}
