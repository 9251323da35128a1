using Transport.Rtp.Congestion;
using Transport.Rtp.Rtcp;

namespace Transport.Rtp.Streams;

/// <summary>
/// The sending side of transport-wide congestion control (draft-holmer-rmcat-transport-wide-cc-extensions-01): numbers
/// every packet we send on the transport (media and retransmissions) and reads the peer's feedback into what the
/// network did with them: which packets arrived and which were lost, how fast they were delivered, and how late the
/// feedback came. Sans-IO. With an <see cref="Estimator"/> set, every packet the feedback resolves (send time, arrival
/// time, size, probe cluster) goes on to the send-side bandwidth estimator.
/// </summary>
/// <remarks>
/// A packet reported lost and later reported received (the receiver saw it late) counts as received. The figures over
/// <see cref="Window"/> are by the receiver's clock for the delivery rate and by ours for the loss fraction.
/// </remarks>
public sealed class TransportCcSender
{
    private const byte Unknown = 0, Received = 1, Lost = 2, Unreported = 3;
    private const int Capacity = 8192;
    private const long Mask = Capacity - 1;

    private readonly long[] _sentAt = new long[Capacity];       // microseconds, our clock
    private readonly int[] _sizes = new int[Capacity];
    private readonly byte[] _states = new byte[Capacity];
    private readonly long[] _numbers = new long[Capacity];       // which extended number a slot holds
    private readonly long[] _outcomeIndex = new long[Capacity];  // where a slot's first report sits in the outcomes
    private readonly int[] _clusters = new int[Capacity];        // probe cluster of a slot (-1: none)
    private readonly long[] _cumulative = new long[Capacity];    // bytes numbered up to and including a slot
    private long _bytesNumbered, _highestReported = -1;
    private long _expiredThrough = -1;                           // packets up to this number left the in-flight count unreported
    private readonly long _firstNumber;
    private readonly PacketResult[] _results = new PacketResult[256];
    private int _resultCount;
    private readonly Queue<(long ArrivalMicros, int Size)> _arrivals = new();
    private readonly (long ReportedMicros, bool Received)[] _outcomes = new (long, bool)[Capacity];
    private long _outcomeStart, _outcomeEnd;                     // the window's first reports, by global index
    private long _arrivalBytes, _newestArrival = long.MinValue;
    private int _outcomesReceived;
    private long _next;                                          // next extended number to give
    private ushort _lastFeedbackCount;
    private bool _sawFeedback;

    /// <summary>Creates a sender whose first packet gets <paramref name="firstSequence"/>.</summary>
    public TransportCcSender(ushort firstSequence = 1)
    {
        _next = _firstNumber = firstSequence;
        Array.Fill(_numbers, -1);
    }

    /// <summary>How far back the rates and the loss fraction look. Default 1 s.</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Where the resolved packets of every feedback go (null: nowhere); it also hears of every numbered packet.</summary>
    public SendSideBandwidthEstimator? Estimator { get; set; }

    /// <summary>
    /// Bytes numbered after the newest packet any feedback reported on (received or lost) and after the packets that
    /// left the count unreported (<see cref="BytesInFlightAt"/>): what is in flight or not yet reported, which the
    /// pacer's congestion window bounds. Without a time: as of the last call of <see cref="BytesInFlightAt"/>.
    /// </summary>
    public long BytesInFlight
    {
        get
        {
            long through = Math.Max(_highestReported, _expiredThrough);
            if (through < _firstNumber) return _bytesNumbered;
            long slot = through & Mask;
            return _numbers[slot] == through ? _bytesNumbered - _cumulative[slot] : 0;
        }
    }

    /// <summary>
    /// <see cref="BytesInFlight"/> at <paramref name="now"/>: a packet no feedback reported within
    /// <see cref="InFlightTimeout"/> of its sending leaves the count (as libwebrtc's feedback adapter forgets what it
    /// sent into a network that went away), so bytes sent into a partition or an outage of the feedback do not hold
    /// the congestion window closed for good. A report that comes later still counts.
    /// </summary>
    public long BytesInFlightAt(TimeSpan now)
    {
        Expire(ToMicros(now));
        return BytesInFlight;
    }

    /// <summary>
    /// How long a packet counts as in flight without a report: twice the last <see cref="FeedbackDelay"/> (a round
    /// trip and the receiver's wait), at least 1 s and at most 5 s.
    /// </summary>
    public TimeSpan InFlightTimeout => TimeSpan.FromTicks(Math.Clamp(2 * (FeedbackDelay?.Ticks ?? 0), TimeSpan.TicksPerSecond, 5 * TimeSpan.TicksPerSecond));

    /// <summary>Packets that left the in-flight count because no feedback reported them within <see cref="InFlightTimeout"/>.</summary>
    public long PacketsTimedOut { get; private set; }

    /// <summary>
    /// Packets no feedback reported although a later one reported newer packets: the message that covered them was
    /// lost (our receiver, like libwebrtc's, reports a number once). They leave the in-flight count and are not counted
    /// as lost media (a lost feedback message is not a lost packet); a late report of them still counts.
    /// </summary>
    public long PacketsUnreported { get; private set; }

    private void Expire(long nowMicros)
    {
        long limit = nowMicros - InFlightTimeout.Ticks / 10;
        long n = Math.Max(Math.Max(_highestReported, _expiredThrough) + 1, _firstNumber);
        long start = n;
        // Send times only grow with the number: the first packet young enough ends the walk (bounded by the ring).
        for (int guard = 0; n < _next && guard < Capacity; n++, guard++)
        {
            long slot = n & Mask;
            if (_numbers[slot] != n) continue;   // overwritten: long gone
            if (_sentAt[slot] > limit) break;
            if (_states[slot] == Unknown) PacketsTimedOut++;
        }
        if (n > start) _expiredThrough = n - 1;
    }

    /// <summary>Packets numbered.</summary>
    public long PacketsSent { get; private set; }

    /// <summary>Packets the feedback said arrived.</summary>
    public long PacketsReceived { get; private set; }

    /// <summary>Packets the feedback said were lost (less those reported received later).</summary>
    public long PacketsLost { get; private set; }

    /// <summary>Feedback messages read.</summary>
    public long FeedbackReceived { get; private set; }

    /// <summary>Feedback messages missing, by the gaps in their feedback packet count.</summary>
    public long FeedbackMissed { get; private set; }

    /// <summary>Reports of numbers we never sent or no longer remember (ignored).</summary>
    public long UnknownReports { get; private set; }

    /// <summary>
    /// Fraction of the packets first reported within <see cref="Window"/> before the last feedback that were lost
    /// (0 without reports); a packet reported lost and then received late counts as received.
    /// </summary>
    public double LossFraction => _outcomeEnd == _outcomeStart ? 0 : 1.0 - (double)_outcomesReceived / (_outcomeEnd - _outcomeStart);

    /// <summary>
    /// Bits per second delivered: the size of the packets that arrived within <see cref="Window"/> of the newest
    /// arrival, by the receiver's clock; null until two arrivals span some time.
    /// </summary>
    public double? DeliveryRate { get; private set; }

    /// <summary>
    /// The time from sending the newest packet of the last feedback to reading that feedback: a round trip plus the
    /// receiver's wait before it reports (up to its feedback interval).
    /// </summary>
    public TimeSpan? FeedbackDelay { get; private set; }

    /// <summary>When the last feedback was read.</summary>
    public TimeSpan? LastFeedbackAt { get; private set; }

    /// <summary>Numbers a packet of <paramref name="size"/> bytes sent at <paramref name="now"/>; returns its 16-bit number.</summary>
    public ushort Number(int size, TimeSpan now) => Number(size, now, -1);

    /// <summary>Numbers a packet that belongs to probe cluster <paramref name="probeCluster"/> (-1: none).</summary>
    public ushort Number(int size, TimeSpan now, int probeCluster)
    {
        long n = _next++;
        long slot = n & Mask;
        _numbers[slot] = n;
        _sentAt[slot] = ToMicros(now);
        _sizes[slot] = size;
        _states[slot] = Unknown;
        _clusters[slot] = probeCluster;
        _bytesNumbered += size;
        _cumulative[slot] = _bytesNumbered;
        PacketsSent++;
        Estimator?.OnPacketSent(size, now);
        return (ushort)n;
    }

    /// <summary>Reads one decoded feedback message (<see cref="TransportCcFeedback.TryRead"/>) at <paramref name="now"/>.</summary>
    public void OnFeedback(ReadOnlySpan<TransportCcPacketStatus> statuses, byte feedbackCount, TimeSpan now)
    {
        long nowMicros = ToMicros(now);
        if (_sawFeedback)
        {
            int gap = (byte)(feedbackCount - (byte)_lastFeedbackCount) - 1;
            if (gap is > 0 and < 128) FeedbackMissed += gap;
        }

        _sawFeedback = true;
        _lastFeedbackCount = feedbackCount;
        FeedbackReceived++;
        LastFeedbackAt = now;
        long newestSent = long.MinValue;
        long highestBefore = _highestReported;
        foreach (TransportCcPacketStatus s in statuses)
        {
            // The extended number closest below the next one to give.
            long n = _next - 1 - (ushort)((ushort)(_next - 1) - s.Sequence);
            long slot = n & Mask;
            if (n < 0 || _numbers[slot] != n)
            {
                UnknownReports++;
                continue;
            }

            byte state = _states[slot];
            if (n > _highestReported) _highestReported = n;
            if (state == Unreported)
            {
                // Its report came after all (a feedback out of order): as if never skipped.
                PacketsUnreported--;
                state = _states[slot] = Unknown;
            }
            if (s.Received)
            {
                if (state == Received) continue;
                PacketsReceived++;
                if (state == Lost)
                {
                    // Reported lost before, arrived late after all: if that report is still in the window, it becomes a reception.
                    PacketsLost--;
                    long i = _outcomeIndex[slot];
                    if (i >= _outcomeStart && i < _outcomeEnd && !_outcomes[i & Mask].Received)
                    {
                        _outcomes[i & Mask].Received = true;
                        _outcomesReceived++;
                    }
                }
                else AddOutcome(slot, nowMicros, received: true);
                _states[slot] = Received;
                _arrivals.Enqueue((s.ArrivalMicroseconds, _sizes[slot]));
                _arrivalBytes += _sizes[slot];
                _newestArrival = Math.Max(_newestArrival, s.ArrivalMicroseconds);
                newestSent = Math.Max(newestSent, _sentAt[slot]);
                AddResult(slot, Math.Max(s.ArrivalMicroseconds, 0), now);
            }
            else if (state == Unknown)
            {
                PacketsLost++;
                _states[slot] = Lost;
                AddOutcome(slot, nowMicros, received: false);
                AddResult(slot, -1, now);
            }
        }

        FlushResults(now);
        MarkUnreported(highestBefore);

        if (newestSent != long.MinValue) FeedbackDelay = TimeSpan.FromMicroseconds(nowMicros - newestSent);
        Trim(nowMicros);
    }

    // Numbers below the newest reported that no feedback has reported: their message was lost.
    private void MarkUnreported(long highestBefore)
    {
        long from = Math.Max(Math.Max(highestBefore + 1, _firstNumber), _highestReported - Capacity + 1);
        for (long n = from; n < _highestReported; n++)
        {
            long slot = n & Mask;
            if (_numbers[slot] != n || _states[slot] != Unknown) continue;
            _states[slot] = Unreported;
            PacketsUnreported++;
        }
    }

    private void AddResult(long slot, long arrivalMicros, TimeSpan now)
    {
        if (Estimator is null) return;
        // A received packet's arrival is clamped at 0 by the caller (a negative one would read as lost); lost is -1.
        _results[_resultCount++] = new PacketResult(_sentAt[slot], arrivalMicros, _sizes[slot], _clusters[slot]);
        if (_resultCount == _results.Length) FlushResults(now);
    }

    private void FlushResults(TimeSpan now)
    {
        if (_resultCount == 0 || Estimator is null) return;
        Estimator.OnFeedback(_results.AsSpan(0, _resultCount), now);
        _resultCount = 0;
    }

    private void AddOutcome(long slot, long nowMicros, bool received)
    {
        if (_outcomeEnd - _outcomeStart == Capacity) DropOldestOutcome();
        _outcomeIndex[slot] = _outcomeEnd;
        _outcomes[_outcomeEnd & Mask] = (nowMicros, received);
        _outcomeEnd++;
        if (received) _outcomesReceived++;
    }

    private void DropOldestOutcome()
    {
        if (_outcomes[_outcomeStart & Mask].Received) _outcomesReceived--;
        _outcomeStart++;
    }

    private void Trim(long nowMicros)
    {
        long window = Window.Ticks / 10;
        while (_outcomeStart < _outcomeEnd && _outcomes[_outcomeStart & Mask].ReportedMicros < nowMicros - window) DropOldestOutcome();
        // Arrivals come in feedback order, which is nearly the receiver's clock order: the front is the oldest.
        while (_arrivals.Count > 0 && _arrivals.Peek().ArrivalMicros < _newestArrival - window) _arrivalBytes -= _arrivals.Dequeue().Size;
        while (_arrivals.Count > Capacity) _arrivalBytes -= _arrivals.Dequeue().Size;   // a receiver clock gone wild
        if (_arrivals.Count == 0) return;
        long span = _newestArrival - _arrivals.Peek().ArrivalMicros;
        if (span > 0)
        {
            // The bytes that arrived after the oldest one, over the time they took.
            DeliveryRate = (_arrivalBytes - _arrivals.Peek().Size) * 8 * 1_000_000.0 / span;
        }
    }

    private static long ToMicros(TimeSpan t) => t.Ticks / (TimeSpan.TicksPerMillisecond / 1000);
}
