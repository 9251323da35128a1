using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using Transport.Rtp.Rtcp;

namespace Transport.Rtp.Streams;

/// <summary>
/// The RTP/RTCP state of one peer connection, sans-IO: statistics per received source (RFC 3550 appendix A),
/// sender reports with the NTP/RTP mapping, receiver reports, RTT from LSR/DLSR, NACK generation and a send-side
/// retransmission cache (optionally RTX, RFC 4588) answering the peer's NACKs. PLI/FIR, REMB and BYE from the peer
/// surface as events at once. Time is passed in; nothing here reads a clock.
/// </summary>
public sealed partial class RtpSession
{
    private readonly RtpSessionOptions _options;
    private readonly Random _random;
    private readonly Dictionary<uint, SendStream> _send = new();
    private readonly Dictionary<uint, ReceiveStream> _receive = new();
    private readonly Queue<RtpSessionEvent> _events = new();
    private readonly Dictionary<uint, (uint MediaSsrc, byte MediaPayloadType)> _rtxReceive = new();
    private readonly Queue<(uint Ssrc, ushort Sequence)> _retransmissions = new();
    private readonly byte[] _scratch;
    private TimeSpan _now;
    private TimeSpan? _nextReport;
    private bool _byePending;
    private string? _byeReason;

    private sealed class SendStream(uint ssrc, int clockRate, RetransmissionCache cache)
    {
        public uint Ssrc { get; } = ssrc;
        public int ClockRate { get; } = clockRate;
        public RetransmissionCache Cache { get; } = cache;
        public uint PacketCount;
        public uint OctetCount;
        public uint LastRtpTimestamp;
        public TimeSpan LastSendTime;
        public bool Sent;
        public int LastFirSequence = -1;
        public ushort LastSequence;
    }

    private sealed class ReceiveStream(ReceiveStatistics statistics, NackGenerator nack)
    {
        public ReceiveStatistics Statistics { get; } = statistics;
        public NackGenerator Nack { get; } = nack;
    }

    /// <summary>Creates a session.</summary>
    public RtpSession(RtpSessionOptions? options = null)
    {
        _options = options ?? new RtpSessionOptions();
        _random = new Random(_options.RandomSeed);
        _scratch = new byte[_options.MaxRtcpSize];
    }

    /// <summary>Retransmission requests dropped because the queue was full.</summary>
    public long DroppedRetransmissions { get; private set; }

    /// <summary>
    /// NACKed packets not resent because, without RTX, their sequence number lies <see cref="PlainResendWindow"/> or
    /// more behind the newest sent: the receiver's SRTP replay window (RFC 3711 section 3.3.2: 64 packets at least, and
    /// by default) would drop them, and their transport-wide numbers would read as losses to our bandwidth estimate
    /// (after a partition the receiver asks for hundreds of them).
    /// </summary>
    public long TooOldToResend { get; private set; }

    /// <summary>How far behind the newest packet sent a plain (non-RTX) retransmission may lie.</summary>
    public const int PlainResendWindow = 64;

    /// <summary>RTCP datagrams dropped as malformed.</summary>
    public long DroppedRtcp { get; private set; }

    /// <summary>
    /// Where transport-cc feedback about our packets goes (null: it is ignored). The owner numbers the packets it
    /// sends with the same <see cref="Streams.TransportCcSender"/>.
    /// </summary>
    public TransportCcSender? TransportCcSender { get; set; }

    /// <summary>
    /// A packet is not resent again sooner than this after its last retransmission (libwebrtc: one round trip), so a
    /// receiver repeating its NACKs while our answer sits in a queue does not multiply the load. Default zero (off);
    /// the peer connection sets it from the bandwidth estimator's round-trip time.
    /// </summary>
    public TimeSpan MinRetransmitInterval { get; set; }

    /// <summary>NACKed packets not resent because they were resent less than <see cref="MinRetransmitInterval"/> before.</summary>
    public long RepeatedNacksIgnored { get; private set; }

    /// <summary>Transport-cc feedback messages that could not be decoded (dropped).</summary>
    public long MalformedTransportCcFeedback { get; private set; }

    /// <summary>Declares a stream we send, with its RTP clock rate and optional RTX parameters.</summary>
    public void AddSendStream(uint ssrc, int clockRate, RtxParameters? rtx = null)
    {
        var cache = new RetransmissionCache(_options.RetransmissionCacheSize) { Rtx = rtx };
        _send[ssrc] = new SendStream(ssrc, clockRate, cache);
    }

    /// <summary>
    /// The RTX stream of send stream <paramref name="mediaSsrc"/> and its next sequence number, for a padding packet
    /// (bandwidth probing, RFC 4588 streams carry them in libwebrtc); false without RTX.
    /// </summary>
    public bool TryTakeRtxSequence(uint mediaSsrc, out RtxParameters rtx, out ushort sequence)
    {
        sequence = 0;
        rtx = null!;
        if (!_send.TryGetValue(mediaSsrc, out SendStream? stream) || stream.Cache.Rtx is not { } r) return false;
        rtx = r;
        sequence = stream.Cache.TakeRtxSequence();
        return true;
    }

    /// <summary>
    /// Gives a retransmission on one of our RTX streams, about to leave after waiting in a pacer, the next sequence
    /// number of that stream (in place), as libwebrtc numbers packets when the pacer sends them: padding and the
    /// retransmissions that went meanwhile took newer numbers, and a packet that left far behind them would fall out
    /// of the receiver's SRTP replay window and be dropped there (after a partition, hundreds of them). A plain
    /// retransmission (no RTX) or an unknown packet is left as it is.
    /// </summary>
    public void RenumberRtx(Span<byte> rtpPacket)
    {
        if (rtpPacket.Length < RtpPacket.FixedHeaderLength) return;
        uint ssrc = BinaryPrimitives.ReadUInt32BigEndian(rtpPacket.Slice(8));
        if (_send.ContainsKey(ssrc)) return;
        foreach (SendStream stream in _send.Values)
        {
            if (stream.Cache.Rtx is { } rtx && rtx.Ssrc == ssrc)
            {
                BinaryPrimitives.WriteUInt16BigEndian(rtpPacket.Slice(2), stream.Cache.TakeRtxSequence());
                return;
            }
        }
    }

    /// <summary>
    /// A retransmission that came from this session (<see cref="TryPollTransmit"/>) actually left at
    /// <paramref name="now"/>, plain or on its RTX stream: the <see cref="MinRetransmitInterval"/> of its packet runs
    /// from here. Unknown or malformed packets are ignored.
    /// </summary>
    public void OnRetransmissionSent(ReadOnlySpan<byte> rtpPacket, TimeSpan now)
    {
        if (MinRetransmitInterval <= TimeSpan.Zero || !RtpPacket.TryRead(rtpPacket, out RtpPacket packet)) return;
        if (_send.TryGetValue(packet.Ssrc, out SendStream? plain))
        {
            plain.Cache.MarkResent(packet.SequenceNumber, now);
            return;
        }

        if (packet.Payload.Length < 2) return;
        foreach (SendStream stream in _send.Values)
        {
            if (stream.Cache.Rtx is { } rtx && rtx.Ssrc == packet.Ssrc)
            {
                stream.Cache.MarkResent(BinaryPrimitives.ReadUInt16BigEndian(packet.Payload), now);
                return;
            }
        }
    }

    /// <summary>Declares a stream we receive, with its RTP clock rate.</summary>
    public void AddReceiveStream(uint ssrc, int clockRate)
    {
        _receive[ssrc] = new ReceiveStream(new ReceiveStatistics(ssrc, clockRate), new NackGenerator());
    }

    /// <summary>Declares an RTX stream (RFC 4588) the peer uses to retransmit <paramref name="mediaSsrc"/>.</summary>
    public void AddReceiveRtx(uint rtxSsrc, uint mediaSsrc, byte mediaPayloadType) => _rtxReceive[rtxSsrc] = (mediaSsrc, mediaPayloadType);

    /// <summary>
    /// When <paramref name="rtpPacket"/> belongs to a declared RTX stream, writes the original packet into
    /// <paramref name="destination"/> and returns true; the caller then handles the restored packet as media.
    /// </summary>
    public bool TryUnwrapRtx(ReadOnlySpan<byte> rtpPacket, Span<byte> destination, out int written)
    {
        written = 0;
        if (rtpPacket.Length < RtpPacket.FixedHeaderLength ||
            !_rtxReceive.TryGetValue(BinaryPrimitives.ReadUInt32BigEndian(rtpPacket.Slice(8)), out (uint MediaSsrc, byte MediaPayloadType) media))
        {
            return false;
        }

        written = RetransmissionCache.UnwrapRtx(rtpPacket, media.MediaPayloadType, media.MediaSsrc, destination);
        return written > 0;
    }

    /// <summary>The statistics of a received source, or null.</summary>
    public ReceiveStatistics? GetReceiveStatistics(uint ssrc) => _receive.TryGetValue(ssrc, out ReceiveStream? s) ? s.Statistics : null;

    /// <summary>Records an RTP packet we sent (plain, before SRTP): counts it and keeps it for retransmission.</summary>
    public void OnRtpSent(ReadOnlySpan<byte> rtpPacket, TimeSpan now)
    {
        Advance(now);
        if (!RtpPacket.TryRead(rtpPacket, out RtpPacket rtp) || !_send.TryGetValue(rtp.Ssrc, out SendStream? stream))
        {
            return;
        }

        stream.PacketCount++;
        stream.OctetCount += (uint)rtp.Payload.Length;
        stream.LastRtpTimestamp = rtp.Timestamp;
        stream.LastSendTime = now;
        stream.Sent = true;
        stream.LastSequence = rtp.SequenceNumber;
        stream.Cache.Store(rtpPacket);
    }

    /// <summary>
    /// Handles a received, already unprotected RTP packet or RTCP compound packet, told apart by its second byte (RFC
    /// 5761 section 4). Malformed input is ignored.
    /// </summary>
    public void HandleDatagram(ReadOnlySpan<byte> packet, TimeSpan now)
    {
        if (RtpDemux.IsRtcp(packet)) HandleRtcp(packet, now);
        else HandleRtp(packet, now);
    }

    /// <summary>Handles a received (already unprotected) RTP packet.</summary>
    internal void HandleRtp(ReadOnlySpan<byte> rtpPacket, TimeSpan now)
    {
        Advance(now);
        if (!RtpPacket.TryRead(rtpPacket, out RtpPacket rtp))
        {
            return;
        }

        if (!_receive.TryGetValue(rtp.Ssrc, out ReceiveStream? stream))
        {
            // An RTX packet that was not unwrapped (TryUnwrapRtx) must not become a media stream of its own.
            if (_rtxReceive.ContainsKey(rtp.Ssrc) || _receive.Count >= _options.MaxReceiveStreams)
            {
                return;
            }

            AddReceiveStream(rtp.Ssrc, _options.DefaultClockRate);
            stream = _receive[rtp.Ssrc];
        }

        stream.Statistics.OnPacket(rtp.SequenceNumber, rtp.Timestamp, now);
        if (_options.EnableNack)
        {
            stream.Nack.OnPacket(rtp.SequenceNumber, now);
        }
    }

    /// <summary>Processes deadlines (reports and NACKs become due; they are produced by <see cref="TryPollTransmit"/>).</summary>
    public void HandleTimeout(TimeSpan now) => Advance(now);

    /// <summary>The next deadline: the next report or the earliest due NACK.</summary>
    public TimeSpan? PollTimeout() => PollTimeout(out _);

    /// <summary>The next deadline and which timer it is (<see cref="RtpTimer"/>).</summary>
    public TimeSpan? PollTimeout(out RtpTimer timer)
    {
        if (_byePending || _retransmissions.Count > 0)
        {
            timer = RtpTimer.Transmit;
            return _now;
        }

        TimeSpan? next = _nextReport ?? (_now + ReportDelay());
        _nextReport = next;
        timer = RtpTimer.Report;
        foreach (ReceiveStream stream in _receive.Values)
        {
            if (stream.Nack.NextDue() is { } due && due < next)
            {
                next = due;
                timer = RtpTimer.Nack;
            }
        }

        return next;
    }

    /// <summary>Takes the next event.</summary>
    public bool TryPollEvent([MaybeNullWhen(false)] out RtpSessionEvent evt) => _events.TryDequeue(out evt);

    private void Emit(RtpSessionEvent evt)
    {
        evt.At = _now;
        _events.Enqueue(evt);
    }

    private void Advance(TimeSpan now)
    {
        // Monotonic: never go back in time.
        if (now > _now)
        {
            _now = now;
        }

        _nextReport ??= _now + ReportDelay();
    }

    private TimeSpan ReportDelay() => _options.ReportInterval * (0.5 + _random.NextDouble());

    /// <summary>RTT = A - LSR - DLSR in 1/65536 s (RFC 3550 section 6.4.1), A being the arrival time as compact NTP.</summary>
    private void OnReportBlock(uint reporter, in ReportBlock block)
    {
        if (!_send.ContainsKey(block.Ssrc) && block.Ssrc != _options.LocalSsrc)
        {
            return;
        }

        Emit(new ReceptionReportReceived(reporter, block));
        if (block.LastSenderReport == 0)
        {
            return;
        }

        uint arrival = NtpTime.Compact(NtpTime.FromMonotonic(_options.NtpOrigin, _now));
        uint rtt = arrival - block.LastSenderReport - block.DelaySinceLastSenderReport;
        if (rtt < 0x8000_0000)
        {
            TimeSpan value = NtpTime.FromCompactDuration(rtt);
            Emit(new RoundTripTimeMeasured(reporter, block.Ssrc, value));
            TimeSpan retry = value < TimeSpan.FromMilliseconds(20) ? TimeSpan.FromMilliseconds(20) : value;
            foreach (ReceiveStream stream in _receive.Values)
            {
                stream.Nack.RetryInterval = retry;
            }
        }
    }

    private static uint ReadSsrc(ReadOnlySpan<byte> span, int offset) => BinaryPrimitives.ReadUInt32BigEndian(span.Slice(offset));
}
