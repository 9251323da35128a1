using Transport.Rtp.Congestion;
using Transport.Streaming.Jsep;

namespace Transport.Streaming.WebRtc;

/// <summary>What the pacer lets out next.</summary>
internal enum PacedKind { Audio, Retransmission, Video, Padding }

/// <summary>
/// The pacer of a peer connection's outgoing media (libwebrtc's PacingController in its interval-budget form): plain
/// RTP packets wait in three bounded rings (audio, retransmissions, video) and leave in bursts every
/// <see cref="CongestionControlOptions.PacingInterval"/> at the estimator's pacing rate (a multiple of the target),
/// audio first, then retransmissions, then video, then padding while a probe needs more bytes than media offers. A
/// probe cluster runs at its own rate and tags its packets with its id. Without an estimator (no transport-cc)
/// everything leaves at once, as before. Data channels: while media waits here, SCTP may send only its share of the
/// target (<see cref="CongestionControlOptions.DataChannelShare"/>); otherwise SCTP's own congestion control rules.
/// Sans-IO and allocation-free: the rings are preallocated, the budget is arithmetic on the caller's time.
/// </summary>
internal sealed class MediaPacer
{
    /// <summary>Retransmissions waiting beyond what the pacing rate sends in this time are dropped (counted).</summary>
    private static readonly TimeSpan MaxRetransmissionQueueTime = TimeSpan.FromMilliseconds(250);

    /// <summary>The longest media may wait: beyond it the pacer drains faster than the pacing rate (libwebrtc: 2 s).</summary>
    private static readonly TimeSpan MaxQueueTime = TimeSpan.FromSeconds(2);

    private readonly MediaSendQueue _audio, _retransmissions, _video;
    private readonly TimeSpan _interval;
    private readonly double _dataShare;
    private long _queuedBytes, _retransmissionBytes;
    private double _budget, _dataBudget;               // bytes; may go one packet negative
    private TimeSpan _lastRefill, _lastDataRefill;
    private bool _refilled, _dataRefilled;
    private ProbeCluster _probe;
    private bool _probing;
    private int _probeBytes, _probePackets;

    public MediaPacer(CongestionControlOptions options, int capacity, int slotSize)
    {
        _audio = new MediaSendQueue(capacity, slotSize);
        _retransmissions = new MediaSendQueue(capacity, slotSize);
        _video = new MediaSendQueue(capacity, slotSize);
        _interval = options.PacingInterval;
        _dataShare = options.DataChannelShare;
    }

    /// <summary>The estimator that sets the rates; null: no pacing.</summary>
    public SendSideBandwidthEstimator? Estimator { get; set; }

    /// <summary>What the feedback has not reported yet (bytes in flight), for the congestion window.</summary>
    public Transport.Rtp.Streams.TransportCcSender? Feedback { get; set; }

    /// <summary>While congested, one packet may go this often so feedback keeps coming (libwebrtc: 500 ms).</summary>
    private static readonly TimeSpan CongestedKeepAlive = TimeSpan.FromMilliseconds(250);
    private TimeSpan _lastMediaSent;

    /// <summary>
    /// Whether more is in flight at <paramref name="now"/> than the estimator's congestion window: only audio (and a
    /// packet per <see cref="CongestedKeepAlive"/>) leaves then. What no feedback reported within the feedback's
    /// timeout no longer counts (<see cref="Transport.Rtp.Streams.TransportCcSender.BytesInFlightAt"/>), so the window
    /// cannot stay closed after an outage.
    /// </summary>
    public bool Congested(TimeSpan now) => Estimator is { } e && Feedback is { } f && f.BytesInFlightAt(now) > e.CongestionWindowBytes;

    /// <summary>Times a packet waited because the congestion window was full (counted once per poll that found it so).</summary>
    public long CongestedPolls { get; private set; }

    /// <summary>The pacer's state in a line (diagnostics).</summary>
    internal string Describe() =>
        $"budget {_budget:0} probing {_probing} audio {_audio.Count} rtx {_retransmissions.Count} ({_retransmissionBytes} B) video {_video.Count} inflight " +
        $"{Feedback?.BytesInFlight} dropped-rtx {RetransmissionsDropped}";

    /// <summary>Packets waiting.</summary>
    public int Count => _audio.Count + _retransmissions.Count + _video.Count;

    /// <summary>Bytes waiting.</summary>
    public long QueuedBytes => _queuedBytes;

    /// <summary>Retransmissions dropped because their ring was full.</summary>
    public long RetransmissionsDropped { get; private set; }

    /// <summary>Retransmissions not queued because the same packet already waited here (a repeated NACK).</summary>
    public long RetransmissionsCoalesced { get; private set; }

    /// <summary>Padding packets sent for probes.</summary>
    public long PaddingPackets { get; private set; }

    /// <summary>Whether SCTP was held back (so the owner pumps it again when the data budget refills).</summary>
    public bool DataHeld { get; private set; }

    /// <summary>The probe cluster the next packet belongs to (-1: none).</summary>
    public int ProbeCluster => _probing ? _probe.Id : -1;

    private MediaSendQueue QueueOf(MediaKind kind) => kind == MediaKind.Audio ? _audio : _video;

    public bool TryReserve(MediaKind kind, out Span<byte> slot) => QueueOf(kind).TryReserve(out slot);

    public void Commit(MediaKind kind, int length)
    {
        QueueOf(kind).Commit(length);
        _queuedBytes += length;
    }

    /// <summary>Whether a retransmission may leave now ahead of the rings (nothing waits and the budget allows it).</summary>
    public bool RetransmissionMayGo(TimeSpan now)
    {
        if (Estimator is null) return true;
        Refill(now);
        return _retransmissions.Count == 0 && _budget > 0;
    }

    /// <summary>
    /// Keeps a retransmission (plain RTP) until the budget lets it go; false (counted) when its ring is full or holds
    /// what the pacing rate sends in <see cref="MaxRetransmissionQueueTime"/>: retransmissions go ahead of video, and
    /// a backlog of them (after a partition the receiver asks for everything it missed) would hold new video back for
    /// seconds to repair frames long past (libwebrtc keeps packets for resending about a second).
    /// </summary>
    public bool TryQueueRetransmission(ReadOnlySpan<byte> packet)
    {
        // The receiver repeats its NACK while our answer waits here (congested): the copy already waiting will do.
        if (_retransmissions.HoldsSameExceptSequence(packet))
        {
            RetransmissionsCoalesced++;
            return true;
        }
        if (Estimator is { } e && _retransmissions.Count > 0 && _retransmissionBytes * 8 > e.PacingBitrate * MaxRetransmissionQueueTime.TotalSeconds
            || !_retransmissions.TryReserve(out var slot) || packet.Length > slot.Length)
        {
            RetransmissionsDropped++;
            return false;
        }
        packet.CopyTo(slot);
        _retransmissions.Commit(packet.Length);
        _queuedBytes += packet.Length;
        _retransmissionBytes += packet.Length;
        return true;
    }

    /// <summary>
    /// The next packet allowed out at <paramref name="now"/>: copied (plain) into <paramref name="destination"/>, or,
    /// for <see cref="PacedKind.Padding"/>, nothing copied (the owner writes a padding packet). Call
    /// <see cref="OnSent"/> with the bytes that went.
    /// </summary>
    public bool TryPoll(TimeSpan now, Span<byte> destination, out int written, out PacedKind kind)
    {
        written = 0;
        kind = PacedKind.Audio;
        if (Estimator is not { } estimator)
        {
            return TryDequeue(_audio, destination, ref written) || TryDequeue(_video, destination, ref written, PacedKind.Video, ref kind)
                || TryDequeue(_retransmissions, destination, ref written, PacedKind.Retransmission, ref kind);
        }

        if (!_probing && estimator.TryTakeProbe(out var probe))
        {
            _probe = probe;
            _probing = true;
            _probeBytes = _probePackets = 0;
        }
        Refill(now);
        // Audio is small and late audio is heard: it goes whatever the budget (libwebrtc does not pace it by default),
        // and it counts against the budget.
        if (TryDequeue(_audio, destination, ref written)) return true;
        if (_budget <= 0) return false;
        if (Congested(now) && now - _lastMediaSent < CongestedKeepAlive)
        {
            CongestedPolls++;
            return false;
        }
        _lastMediaSent = now;
        if (TryDequeue(_retransmissions, destination, ref written, PacedKind.Retransmission, ref kind))
        {
            _retransmissionBytes = _retransmissions.Count == 0 ? 0 : Math.Max(0, _retransmissionBytes - written);
            return true;
        }
        if (TryDequeue(_video, destination, ref written, PacedKind.Video, ref kind)) return true;
        if (!_probing) return false;
        kind = PacedKind.Padding;
        return true;
    }

    private bool TryDequeue(MediaSendQueue queue, Span<byte> destination, ref int written)
    {
        var kind = PacedKind.Audio;
        return TryDequeue(queue, destination, ref written, PacedKind.Audio, ref kind);
    }

    private bool TryDequeue(MediaSendQueue queue, Span<byte> destination, ref int written, PacedKind which, ref PacedKind kind)
    {
        while (queue.Count > 0)
        {
            var length = queue.PeekLength();
            _queuedBytes -= length;
            written = queue.Dequeue(destination);
            if (written > 0)
            {
                kind = which;
                return true;
            }
        }
        return false;
    }

    /// <summary>The owner could not write a padding packet (no RTX stream): the probe ends with what media it had.</summary>
    public void AbandonProbe() => _probing = false;

    /// <summary>Charges <paramref name="bytes"/> that just left (media, retransmission or padding).</summary>
    public void OnSent(int bytes)
    {
        if (Estimator is null) return;
        // A debt of at most half a second at the rate (libwebrtc's interval budget): audio, which goes whatever the
        // budget, cannot hold the pacer closed for longer.
        _budget = Math.Max(_budget - bytes, -Rate() * 0.5 / 8);
        if (!_probing) return;
        _probeBytes += bytes;
        _probePackets++;
        if (_probeBytes >= _probe.MinBytes && _probePackets >= _probe.MinPackets) _probing = false;
    }

    // Bits per second the media budget fills at: the probe's rate during a probe, else the pacing rate, raised so that
    // what waits leaves within MaxQueueTime.
    private double Rate()
    {
        var estimator = Estimator!;
        if (_probing) return _probe.Bitrate;
        return Math.Max(estimator.PacingBitrate, _queuedBytes * 8 / MaxQueueTime.TotalSeconds);
    }

    // The budget grows with time at the rate and carries a debt, but never holds more credit than one interval's worth:
    // what was not used does not become a burst later. It refills once per interval, so packets leave in bursts.
    private void Refill(TimeSpan now)
    {
        if (!_refilled)
        {
            _refilled = true;
            _lastRefill = now;
            _budget = Rate() * _interval.TotalSeconds / 8;
            return;
        }
        var elapsed = now - _lastRefill;
        if (elapsed < _interval && _budget > 0) return;
        if (elapsed <= TimeSpan.Zero) return;
        var rate = Rate();
        _budget = Math.Min(_budget + rate * Math.Min(elapsed.TotalSeconds, 1) / 8, rate * _interval.TotalSeconds / 8);
        _lastRefill = now;
    }

    /// <summary>
    /// When the pacer next has something to let out (null: nothing waits). <paramref name="dataCanGo"/>: whether the
    /// owner can pump SCTP now (its association and DTLS are up); a data budget held back counts only then, or the
    /// owner, which no longer asks <see cref="DataMayGo"/> after a close, would be woken at one instant for ever.
    /// </summary>
    public TimeSpan? NextSendTime(TimeSpan now, bool dataCanGo = true)
    {
        TimeSpan? media = null;
        if (_audio.Count > 0) media = now;
        else if (_retransmissions.Count > 0 || _video.Count > 0 || _probing || Estimator?.Probes.HasPending == true)
        {
            // The debt is repaid at the rate; no sooner than the next interval (TryPoll sends nothing before: a time
            // that ignored the budget would be polled again and again at the same instant).
            TimeSpan? repaid = null;
            if (Estimator is not null && _refilled && _budget <= 0)
            {
                var repay = TimeSpan.FromSeconds(-_budget * 8 / Rate()) + TimeSpan.FromTicks(1);
                repaid = _lastRefill + (repay > _interval ? repay : _interval);
            }
            if (Congested(now))
            {
                var keepAlive = _lastMediaSent + CongestedKeepAlive;
                media = repaid is { } r && r > keepAlive ? r : keepAlive;
            }
            else media = repaid ?? now;
        }
        if (DataHeld && Estimator is not null && dataCanGo)
        {
            var data = _lastDataRefill + _interval;
            if (media is null || data < media) media = data;
        }
        return media is { } t && t < now ? now : media;
    }

    /// <summary>Whether SCTP may send a packet now (it always may unless media waits here under an estimate).</summary>
    public bool DataMayGo(TimeSpan now)
    {
        if (Estimator is not { } estimator || Count == 0)
        {
            DataHeld = false;
            return true;
        }
        var rate = estimator.TargetBitrate * _dataShare;
        var elapsed = now - _lastDataRefill;
        if (!_dataRefilled || elapsed >= _interval || _dataBudget <= 0 && elapsed > TimeSpan.Zero)
        {
            _dataBudget = _dataRefilled
                ? Math.Min(_dataBudget + rate * Math.Min(elapsed.TotalSeconds, 1) / 8, rate * _interval.TotalSeconds / 8)
                : rate * _interval.TotalSeconds / 8;
            _dataRefilled = true;
            _lastDataRefill = now;
        }
        DataHeld = _dataBudget <= 0;
        return !DataHeld;
    }

    /// <summary>Charges an SCTP packet that just went.</summary>
    public void OnDataSent(int bytes)
    {
        if (Estimator is not null && Count > 0) _dataBudget -= bytes;
    }
}
