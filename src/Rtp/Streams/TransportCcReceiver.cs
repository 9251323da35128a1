using Transport.Rtp.Rtcp;

namespace Transport.Rtp.Streams;

/// <summary>Options of a <see cref="TransportCcReceiver"/>.</summary>
public sealed record TransportCcReceiverOptions
{
    /// <summary>
    /// How often feedback is sent while packets arrive (libwebrtc's receiver uses 50-250 ms; the sender's bandwidth
    /// estimator needs it several times per round trip to react). Nothing is sent while nothing arrives. Default 100 ms.
    /// </summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Most packets one feedback message reports: a larger backlog is sent at once in several messages. 256 keeps the
    /// worst case (every delta large) near 600 bytes. Default 256.
    /// </summary>
    public int MaxPacketsPerFeedback { get; init; } = 256;

    /// <summary>
    /// Arrivals remembered, by transport-wide sequence number (a power of two). A packet further behind the newest
    /// than this is counted as too late and not reported; a jump forward by more than this skips the gap. Default 4096.
    /// </summary>
    public int History { get; init; } = 4096;
}

/// <summary>
/// The receiving side of transport-wide congestion control (draft-holmer-rmcat-transport-wide-cc-extensions-01):
/// records the arrival time of every packet that carries the transport-wide sequence number header extension, on any
/// SSRC of the transport (media, RTX and padding probes alike), and writes the RTPFB FMT=15 feedback the sender's
/// bandwidth estimator (Chromium's GoogCC) runs on. Sans-IO: arrivals and the time come in; the caller protects and
/// sends the feedback <see cref="TryWriteFeedback"/> writes when <see cref="PollTimeout"/> is due.
/// </summary>
/// <remarks>
/// Each message covers consecutive sequence numbers from the first not yet reported to the newest seen; missing ones
/// are reported as not received. A packet that arrives after its number was reported lost (reordering across a
/// feedback) is reported again with the rest of the window behind it, so the sender learns it did arrive. Receive
/// deltas are in 250 us units, 16 bits signed: a message ends early where the next delta would not fit (more than
/// 8.19 s between two arrivals), and the next message starts there with a reference time of its own.
/// </remarks>
public sealed class TransportCcReceiver
{
    private const long NotReceived = long.MinValue;
    private const long MaxDeltaMicroseconds = short.MaxValue * 250L;
    private const long MinDeltaMicroseconds = short.MinValue * 250L;

    private readonly TransportCcReceiverOptions _options;
    private readonly long[] _arrivals;
    private readonly long _mask;
    private readonly TransportCcPacketStatus[] _batch;
    private SequenceUnwrapper _unwrapper;
    private bool _started;
    private long _nextToReport;   // first extended sequence number not yet reported
    private long _highest;        // newest extended sequence number seen
    private long _drainThrough = long.MinValue;   // a backlog being sent at once, up to this number
    private TimeSpan? _lastFeedbackAt;
    private uint _mediaSsrc;
    private byte _feedbackCount;

    /// <summary>Creates a receiver.</summary>
    public TransportCcReceiver(TransportCcReceiverOptions? options = null)
    {
        _options = options ?? new TransportCcReceiverOptions();
        if (_options.Interval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(options), "The feedback interval must be positive.");
        if (_options.MaxPacketsPerFeedback is < 1 or > 0xFFFF) throw new ArgumentOutOfRangeException(nameof(options), "MaxPacketsPerFeedback must be 1-65535.");
        if (_options.History < 16 || (_options.History & (_options.History - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(options), "History must be a power of two, 16 or more.");
        _arrivals = new long[_options.History];
        Array.Fill(_arrivals, NotReceived);
        _mask = _options.History - 1;
        _batch = new TransportCcPacketStatus[_options.MaxPacketsPerFeedback];
    }

    /// <summary>Packets recorded (first arrivals of a sequence number).</summary>
    public long PacketsRecorded { get; private set; }

    /// <summary>Second arrivals of a sequence number still remembered (ignored).</summary>
    public long Duplicates { get; private set; }

    /// <summary>Packets that arrived after their number had left the history (not reported).</summary>
    public long TooLate { get; private set; }

    /// <summary>Packets that arrived after a feedback had reported them lost, and were reported again as received.</summary>
    public long ReportedAgain { get; private set; }

    /// <summary>Sequence numbers skipped without a report because the numbering jumped forward beyond the history.</summary>
    public long Skipped { get; private set; }

    /// <summary>Feedback messages written.</summary>
    public long FeedbackSent { get; private set; }

    /// <summary>Packets seen but not yet reported.</summary>
    public long Pending => _started ? Math.Max(0, _highest - _nextToReport + 1) : 0;

    /// <summary>Records one packet's transport-wide sequence number, its SSRC and its arrival time.</summary>
    public void OnPacket(ushort transportSequence, uint ssrc, TimeSpan arrival)
    {
        long micros = arrival.Ticks / (TimeSpan.TicksPerMillisecond / 1000);
        long s = _unwrapper.Unwrap(transportSequence);
        _mediaSsrc = ssrc;
        if (!_started)
        {
            _started = true;
            _nextToReport = _highest = s;
            Store(s, micros);
            return;
        }

        if (s > _highest)
        {
            // Clear the slots the window moves onto (at most the whole ring).
            for (long i = Math.Max(_highest + 1, s - _arrivals.Length + 1); i <= s; i++) _arrivals[i & _mask] = NotReceived;
            _highest = s;
            long oldest = _highest - _arrivals.Length + 1;
            if (_nextToReport < oldest)
            {
                Skipped += oldest - _nextToReport;
                _nextToReport = oldest;
            }

            Store(s, micros);
            return;
        }

        if (s <= _highest - _arrivals.Length)
        {
            TooLate++;
            return;
        }

        if (_arrivals[s & _mask] != NotReceived)
        {
            Duplicates++;
            return;
        }

        Store(s, micros);
        if (s < _nextToReport)
        {
            // Reported lost already: report the window again from here.
            ReportedAgain++;
            _nextToReport = s;
        }
    }

    private void Store(long s, long micros)
    {
        _arrivals[s & _mask] = micros;
        PacketsRecorded++;
    }

    /// <summary>
    /// When the next feedback is due: <see cref="TransportCcReceiverOptions.Interval"/> after the last one while
    /// packets wait to be reported (at once for the very first packet, and when a full message waits: that whole
    /// backlog then goes at once);
    /// null when nothing waits, so an idle connection has no timer here.
    /// </summary>
    public TimeSpan? PollTimeout()
    {
        if (Pending == 0) return null;
        if (_lastFeedbackAt is not { } last || Pending >= _options.MaxPacketsPerFeedback || _nextToReport <= _drainThrough) return TimeSpan.Zero;
        return last + _options.Interval;
    }

    /// <summary>
    /// Writes one feedback message (a complete RTPFB FMT=15 RTCP packet, reduced size) when one is due at
    /// <paramref name="now"/>; call again while it returns true. False when nothing is due or
    /// <paramref name="destination"/> is too small for the message (nothing is consumed then).
    /// </summary>
    public bool TryWriteFeedback(Span<byte> destination, uint senderSsrc, TimeSpan now, out int written)
    {
        written = 0;
        if (PollTimeout() is not { } due || due > now) return false;
        if (Pending >= _options.MaxPacketsPerFeedback) _drainThrough = _highest;   // the whole backlog goes now
        return TryWriteNow(destination, senderSsrc, now, out written);
    }

    /// <summary>Writes one feedback message of what waits, due or not (false when nothing waits).</summary>
    public bool TryWriteNow(Span<byte> destination, uint senderSsrc, TimeSpan now, out int written)
    {
        written = 0;
        if (Pending == 0) return false;
        int count = 0;
        long? previous = null;
        for (long s = _nextToReport; s <= _highest && count < _batch.Length; s++)
        {
            long at = _arrivals[s & _mask];
            if (at != NotReceived)
            {
                if (previous is { } p && (at - p > MaxDeltaMicroseconds - 64_000 || at - p < MinDeltaMicroseconds + 64_000)) break;
                previous = at;
            }

            _batch[count++] = new TransportCcPacketStatus((ushort)s, at != NotReceived, at == NotReceived ? 0 : at);
        }

        // The message ends with its last received packet: trailing losses wait for the next one, where a late
        // arrival can still turn them into receptions without a report of loss first. A message of losses only (a run
        // longer than a message holds) goes as it is: the arrivals after it follow in the next message.
        int full = count;
        while (count > 0 && !_batch[count - 1].Received) count--;
        if (count == 0) count = full;

        int length = TransportCcFeedback.Write(destination, senderSsrc, _mediaSsrc, _feedbackCount, _batch.AsSpan(0, count));
        if (length < 0) return false;
        _feedbackCount++;
        _nextToReport += count;
        _lastFeedbackAt = now;
        FeedbackSent++;
        written = length;
        return true;
    }
}
