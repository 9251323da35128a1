namespace Transport.Streaming.WebRtc;

/// <summary>
/// What the application is told of the send-side estimate (<see cref="TargetBitrateChanged"/>), and how often one
/// packet may be resent in answer to NACKs. The target is the estimate less the rate it takes to send what waits in
/// the pacer within a second (libwebrtc's encoder pushback: after a step down of the path the backlog drains instead of
/// the encoder adding to it), never below the minimum; a new target is reported when it moved by more than 2 % from
/// the last one reported, or reached a bound. The resend interval is 1.5 round trips of the estimator, following the
/// round trip up at once and down by 10 % a feedback (the round trip swings with the queue). Plain bookkeeping on the
/// figures the caller passes: the estimator, the pacer and the event queue are the peer connection's.
/// </summary>
internal sealed class TargetBitrateReport(long minBitrate, long maxBitrate)
{
    /// <summary>The last target reported, null before <see cref="Start"/>.</summary>
    public long? Reported { get; private set; }

    /// <summary>The least time between two retransmissions of one packet (0 before the first feedback).</summary>
    public TimeSpan ResendInterval { get; private set; }

    /// <summary>The target for an <paramref name="estimate"/> (bits per second) with <paramref name="queuedBytes"/> waiting in the pacer.</summary>
    public long Target(long estimate, long queuedBytes) => Math.Max(minBitrate, estimate - queuedBytes * 8);

    /// <summary>The estimator starts: its start rate is reported once, as it is.</summary>
    public long Start(long estimate)
    {
        Reported = estimate;
        return estimate;
    }

    /// <summary>
    /// After feedback: the resend interval follows <paramref name="roundTrip"/>; true when the target
    /// (<paramref name="bitrate"/>) is to be reported.
    /// </summary>
    public bool OnFeedback(long estimate, TimeSpan roundTrip, long queuedBytes, out long bitrate)
    {
        ResendInterval = TimeSpan.FromTicks(Math.Max((long)(roundTrip.Ticks * 1.5), (long)(ResendInterval.Ticks * 0.9)));
        bitrate = Target(estimate, queuedBytes);
        if (Reported is { } last && Math.Abs(bitrate - last) <= last / 50 && (bitrate == last || bitrate != minBitrate && bitrate != maxBitrate)) return false;
        Reported = bitrate;
        return true;
    }
}
