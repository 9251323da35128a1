namespace Transport.Rtp.Congestion;

/// <summary>Options of the send-side bandwidth estimator (<see cref="SendSideBandwidthEstimator"/>) and of the pacer that follows it.</summary>
public sealed record CongestionControlOptions
{
    /// <summary>Estimate before any feedback, in bits per second (libwebrtc starts at 300 kbit/s). Default 300 000.</summary>
    public long StartBitrate { get; init; } = 300_000;

    /// <summary>The estimate never goes below this, in bits per second. Default 30 000.</summary>
    public long MinBitrate { get; init; } = 30_000;

    /// <summary>The estimate never goes above this, in bits per second (nor do probes). Default 10 000 000.</summary>
    public long MaxBitrate { get; init; } = 10_000_000;

    /// <summary>Media leaves the pacer at this multiple of the estimate (libwebrtc: 2.5), so a frame is spread, not held back. Default 2.5.</summary>
    public double PacingFactor { get; init; } = 2.5;

    /// <summary>The pacer releases packets in bursts this far apart. Default 5 ms.</summary>
    public TimeSpan PacingInterval { get; init; } = TimeSpan.FromMilliseconds(5);

    /// <summary>
    /// The share of the estimate data channels get while media waits in the pacer (they get all of it while none
    /// waits). Default 0.2.
    /// </summary>
    public double DataChannelShare { get; init; } = 0.2;

    /// <summary>
    /// A new video frame is refused (<c>MediaSendResult.Congested</c>) while the pacer holds more than the target
    /// bitrate sends in this time: after a step down of the path, what the application sent at the old rate would
    /// otherwise keep the bottleneck's queue full for seconds. Not before the first feedback measured the path (the start
    /// rate is a guess: frames are paced at it, never refused for it). Default 100 ms.
    /// </summary>
    public TimeSpan MaxPacerQueueTime { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The congestion window (bytes sent and not yet reported by feedback) is the target over the path's lowest round
    /// trip plus this much: beyond it only audio (and a packet every 250 ms) leaves the pacer, which bounds the queue
    /// we can build at the bottleneck while the delay signal lags (a step down of the path). libwebrtc's experiment
    /// runs 350 ms; 200 ms keeps the queue under 100 ms after a 4x step down. Default 200 ms.
    /// </summary>
    public TimeSpan CongestionWindowQueueTime { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Probe at start (bursts at 3x and 6x the start rate, then doubling while probes succeed). Default true.</summary>
    public bool ProbeAtStart { get; init; } = true;

    /// <summary>Probe (at twice the estimate) when the sender leaves an application-limited period of at least a second. Default true.</summary>
    public bool ProbeAfterApplicationLimited { get; init; } = true;

    /// <summary>Checks the values; throws <see cref="ArgumentOutOfRangeException"/> on nonsense.</summary>
    public void Validate()
    {
        if (MinBitrate < 1000) throw new ArgumentOutOfRangeException(nameof(MinBitrate), "The minimum bitrate is at least 1000 bit/s.");
        if (MaxBitrate < MinBitrate) throw new ArgumentOutOfRangeException(nameof(MaxBitrate), "The maximum bitrate is below the minimum.");
        if (StartBitrate < MinBitrate || StartBitrate > MaxBitrate)
            throw new ArgumentOutOfRangeException(nameof(StartBitrate), "The start bitrate is outside [min, max].");
        if (PacingFactor is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(PacingFactor), "The pacing factor is 1-100.");
        if (PacingInterval < TimeSpan.FromMilliseconds(1) || PacingInterval > TimeSpan.FromMilliseconds(100))
            throw new ArgumentOutOfRangeException(nameof(PacingInterval), "The pacing interval is 1-100 ms.");
        if (MaxPacerQueueTime <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(MaxPacerQueueTime), "The pacer queue time must be positive.");
        if (CongestionWindowQueueTime < TimeSpan.FromMilliseconds(50) || CongestionWindowQueueTime > TimeSpan.FromSeconds(5))
            throw new ArgumentOutOfRangeException(nameof(CongestionWindowQueueTime), "The congestion window queue time is 50 ms - 5 s.");
        if (DataChannelShare is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(DataChannelShare), "The data channel share is 0-1.");
    }
}

/// <summary>What the delay-based detector concludes from the trend of the queuing delay (draft-ietf-rmcat-gcc-02 section 5.4).</summary>
public enum BandwidthUsage
{
    /// <summary>The delay is steady.</summary>
    Normal,
    /// <summary>The delay grows: a queue builds up on the path.</summary>
    Overusing,
    /// <summary>The delay shrinks: a queue drains.</summary>
    Underusing,
}

/// <summary>
/// One of our packets as the peer's transport-cc feedback reported it: our send time and the receiver's arrival
/// time (microseconds on each side's own clock; <see cref="ArrivalMicros"/> is negative for a lost packet), its size
/// and the probe cluster it belonged to (-1: none).
/// </summary>
public readonly record struct PacketResult(long SendMicros, long ArrivalMicros, int Size, int ProbeCluster)
{
    /// <summary>Whether the packet arrived.</summary>
    public bool Received => ArrivalMicros >= 0;
}

/// <summary>
/// A burst the pacer sends at <see cref="Bitrate"/> to measure what the path carries (at least <see cref="MinBytes"/> and <see cref="MinPackets"/>).
/// </summary>
public readonly record struct ProbeCluster(int Id, long Bitrate, int MinBytes, int MinPackets);
