using System.Buffers.Binary;
using Transport.Rtp;
using Transport.Rtp.Congestion;
using Transport.Rtp.Payloads;
using Transport.Rtp.Srtp;
using Transport.Rtp.Streams;
using Transport.Streaming.Jsep;

namespace Transport.Streaming.WebRtc;

/// <summary>
/// The media send side of a peer connection: our tracks (their SSRCs, RTX SSRCs, first sequence numbers and picture
/// ids drawn from <see cref="MediaOptions.RandomSeed"/>), the RTP session (src/Rtp <see cref="RtpSession"/>: send
/// statistics and sender reports, the send history that answers NACKs, RTX; it keeps the receive statistics too,
/// which the connection feeds), packetizing a frame straight into the pacer's preallocated slots (RFC 7587, RFC 7741,
/// RFC 6184 mode 1), the RFC 8285 header block (transport-wide sequence number, mid), the pacer and the send-side
/// bandwidth estimator that sets its rate, numbering (transport-cc) and SRTP-protecting each packet as it leaves,
/// retransmissions held by the pacer and renumbered on their RTX stream as they leave, probe padding, RTCP BYE at a
/// close. Events (<see cref="TargetBitrateChanged"/>, <see cref="KeyFrameRequestReceived"/>,
/// <see cref="NackReceivedEvent"/>) go to the connection's queue; counters to its <see cref="MediaCounters"/>.
/// Whether the connection may send at all (its state, ICE's pair) is the caller's; this type checks only that the SRTP
/// keys exist (<see cref="SrtpKeying"/>) and that a track is negotiated. Sans-IO, on the caller's time; allocation
/// per packet: none (the packet is written, numbered and protected in place).
/// </summary>
internal sealed class MediaSendPath
{
    // The RFC 8285 one-byte block: the transport-wide sequence number first (its value sits at a fixed offset, 17, where a
    // retransmission's copy of the header is renumbered), then the mid.
    private const int TransportCcOffset = RtpPacket.FixedHeaderLength + 5;

    private readonly MediaOptions _options;
    private readonly SrtpKeying _srtp;
    private readonly Queue<PeerConnectionEvent> _events;
    private readonly MediaCounters _counters;
    private readonly List<LocalTrack> _tracks = new();
    private readonly Dictionary<uint, LocalTrack> _bySsrc = new();
    private Random? _random;
    private RtpSession? _rtp;
    private MediaPacer? _pacer;
    private MediaSendQueue? _sendQueue;   // the BYE of a close (ahead of the DTLS close_notify)
    private TargetBitrateReport? _targetReport;   // made with the estimator
    private int? _transportCcExtensionId;

    public MediaSendPath(MediaOptions options, SrtpKeying srtp, Queue<PeerConnectionEvent> events, MediaCounters counters)
    {
        _options = options;
        _srtp = srtp;
        _events = events;
        _counters = counters;
        LocalSsrc = (uint)MediaRandom.Next(1, int.MaxValue);
    }

    // What the media part draws at random: seeded by MediaOptions.RandomSeed (tests repeat exactly), else shared.
    private Random MediaRandom => _random ??= _options.RandomSeed is { } seed ? new Random(seed) : Random.Shared;

    /// <summary>Our RTCP CNAME (RFC 7022), random.</summary>
    public string Cname { get; } = "rtc-" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>The RTP session's own SSRC (RTCP from a connection that sends no track).</summary>
    public uint LocalSsrc { get; }

    /// <summary>Our outgoing tracks, in the order they were added (the list itself: a foreach over it allocates nothing).</summary>
    public List<LocalTrack> Tracks => _tracks;

    /// <summary>The RTP/RTCP session once media was negotiated (or the connection's receive side made it), else null.</summary>
    public RtpSession? Rtp => _rtp;

    /// <summary>The pacer, once media was sent or the estimator started.</summary>
    public MediaPacer? Pacer => _pacer;

    /// <summary>What the peer's transport-cc feedback says of our packets, once transport-cc was negotiated in the one-byte form.</summary>
    public TransportCcSender? TransportCcSender { get; private set; }

    /// <summary>The send-side bandwidth estimator, once transport-cc was negotiated and <see cref="MediaOptions.Congestion"/> is set.</summary>
    public SendSideBandwidthEstimator? BandwidthEstimator { get; private set; }

    /// <summary>The target the application is told (the estimate less the pacer's backlog), or null without an estimator.</summary>
    public long? TargetBitrate => BandwidthEstimator is { } e && _targetReport is { } report ? report.Target(e.TargetBitrate, _pacer?.QueuedBytes ?? 0) : null;

    /// <summary>The BYE of a close waits to be sent.</summary>
    public bool HasQueuedBye => _sendQueue is { Count: > 0 };

    /// <summary>The RTP session, made on first use with our SSRC, CNAME and send history.</summary>
    public RtpSession Session() => _rtp ??= new RtpSession(new RtpSessionOptions
    {
        LocalSsrc = LocalSsrc,
        Cname = Cname,
        NtpOrigin = _options.NtpOrigin,
        ReportInterval = _options.ReportInterval,
        RetransmissionCacheSize = _options.SendHistoryPackets,
        RandomSeed = (int)LocalSsrc,
    })
    {
        TransportCcSender = TransportCcSender,   // the peer's transport-cc feedback on our packets is read there
    };

    /// <summary>Adds an outgoing track (SSRCs drawn unless given; video gets an RTX SSRC).</summary>
    public LocalTrack AddTrack(MediaKind kind, LocalTrackOptions? options)
    {
        options ??= new LocalTrackOptions();
        var codecs = options.Codecs ?? PeerConnectionCore.DefaultCodecs(kind);
        if (codecs.Count == 0) throw new ArgumentException("At least one codec is needed.", nameof(options));
        var ssrc = options.Ssrc ?? NewSsrc();
        uint? rtx = kind == MediaKind.Video ? options.RtxSsrc ?? NewSsrc() : null;
        var track = new LocalTrack(kind, ssrc, rtx, options.StreamId ?? "stream-" + Cname[4..], options.TrackId ?? Guid.NewGuid().ToString("N")[..16], codecs)
        {
            NextSequence = (ushort)MediaRandom.Next(0, 0x8000),
            PictureId = (ushort)MediaRandom.Next(0, 0x8000),
        };
        _tracks.Add(track);
        _bySsrc[ssrc] = track;
        if (rtx is { } r) _bySsrc[r] = track;
        return track;
    }

    private uint NewSsrc()
    {
        while (true)
        {
            var s = (uint)MediaRandom.NextInt64(1, uint.MaxValue);
            if (!_bySsrc.ContainsKey(s) && s != LocalSsrc) return s;
        }
    }

    /// <summary>The track whose media or RTX SSRC is <paramref name="ssrc"/>.</summary>
    public bool TryGetTrack(uint ssrc, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out LocalTrack track) => _bySsrc.TryGetValue(ssrc, out track);

    /// <summary>
    /// An exchange agreed transport-cc with <paramref name="extensionId"/> (null: not, or no longer). Our packets carry the
    /// number in the one-byte form only (ids 1-14): the transport-cc sender is made then (once), and the estimator with
    /// it (<see cref="TargetBitrateChanged"/> with its start rate). A later exchange that drops the extension stops the
    /// numbering; the sender's figures stay.
    /// </summary>
    public void OnTransportCcNegotiated(int? extensionId, TimeSpan now)
    {
        _transportCcExtensionId = extensionId;
        if (extensionId is not (>= 1 and <= 14)) return;
        TransportCcSender ??= new TransportCcSender((ushort)MediaRandom.Next(1, 0x10000));
        if (_rtp is not null) _rtp.TransportCcSender = TransportCcSender;   // else Session() hands it over
        AttachEstimator(now);
    }

    /// <summary>
    /// <paramref name="track"/> sends in section <paramref name="mid"/> with <paramref name="codec"/> (the answer's first
    /// common codec); <paramref name="midExtension"/>: the mid header extension's id, written when in the one-byte form.
    /// </summary>
    public void Negotiate(LocalTrack track, string mid, NegotiatedCodec codec, int? midExtension)
    {
        track.Mid = mid;
        track.Codec = codec;
        track.Payload = PeerConnectionCore.FormatOf(codec.Codec);
        track.MidExtensionId = midExtension is >= 1 and <= 14 && mid.Length <= 16 ? midExtension : null;
        track.UsesRtx = codec.RtxPayloadType is not null && track.RtxSsrc is not null;
        Session().AddSendStream(track.Ssrc, codec.Codec.ClockRate,
            track.UsesRtx ? new RtxParameters(track.RtxSsrc!.Value, (byte)codec.RtxPayloadType!.Value) : null);
    }

    /// <summary>The SSRC our RTCP is sent from: the first negotiated track's, else the session's own.</summary>
    public uint ReportSsrc()
    {
        foreach (var t in _tracks)
            if (t.IsNegotiated) return t.Ssrc;
        return LocalSsrc;
    }

    private MediaPacer EnsurePacer() => _pacer ??= new MediaPacer(_options.Congestion ?? new CongestionControlOptions(),
        _options.SendQueuePackets, _options.MaxPayloadSize + 128);

    /// <summary>
    /// Whether the pacer holds more than the target lets out in MaxPacerQueueTime (a new video frame is then refused).
    /// Not before the receiver's feedback measured the path (<see cref="SendSideBandwidthEstimator.AckedBitrate"/>): until
    /// then the target is only the configured start rate, a guess, so frames are paced at it but never refused for it
    /// (a sender starting above it, e.g. 1 Mbit/s against the 300 kbit/s default, loses no frame while probing finds the
    /// path's rate).
    /// </summary>
    private bool PacerHoldsTooMuch() =>
        BandwidthEstimator is { AckedBitrate: not null } e && _pacer is { } p && p.QueuedBytes * 8 > e.TargetBitrate * e.Options.MaxPacerQueueTime.TotalSeconds;

    // Where the transport-cc sender is made: the estimator reads its feedback, the pacer follows it.
    private void AttachEstimator(TimeSpan now)
    {
        if (_options.Congestion is not { } options || TransportCcSender is not { } sender || BandwidthEstimator is not null) return;
        BandwidthEstimator = new SendSideBandwidthEstimator(options);
        sender.Estimator = BandwidthEstimator;
        EnsurePacer().Estimator = BandwidthEstimator;
        _pacer!.Feedback = sender;
        _targetReport = new TargetBitrateReport(options.MinBitrate, options.MaxBitrate);
        _events.Enqueue(new TargetBitrateChanged(now, _targetReport.Start(BandwidthEstimator.TargetBitrate)));
    }

    /// <summary>After feedback (the RTP session read some): a target that moved is an event; the NACK resend interval follows the round trip.</summary>
    public void ReportTargetBitrate(TimeSpan now)
    {
        if (BandwidthEstimator is not { } e || _targetReport is not { } report) return;
        // A packet is resent at most once per round trip (TargetBitrateReport.ResendInterval).
        var changed = report.OnFeedback(e.TargetBitrate, e.RoundTripTime, _pacer?.QueuedBytes ?? 0, out var bitrate);
        if (_rtp is not null) _rtp.MinRetransmitInterval = report.ResendInterval;
        if (changed) _events.Enqueue(new TargetBitrateChanged(now, bitrate));
    }

    /// <summary>
    /// The RTP session's events about our streams (a key frame request, a NACK, a reception report) on their track and
    /// as connection events; false for the others (and for an SSRC of no track of ours).
    /// </summary>
    public bool OnRtpEvent(RtpSessionEvent e, TimeSpan now)
    {
        switch (e)
        {
            case KeyFrameRequested k when _bySsrc.TryGetValue(k.MediaSsrc, out var local):
                if (k.FullIntraRequest) local.FirsReceived++; else local.PlisReceived++;
                _events.Enqueue(new KeyFrameRequestReceived(now, local, k.FullIntraRequest));
                return true;
            case NackReceived nack when _bySsrc.TryGetValue(nack.MediaSsrc, out var local):
                local.NacksReceived++;
                local.PacketsNacked += nack.Requested;
                _events.Enqueue(new NackReceivedEvent(now, local, nack.Requested, nack.Retransmitting));
                return true;
            case ReceptionReportReceived report when _bySsrc.TryGetValue(report.Block.Ssrc, out var local):
                local.LastFractionLost = report.Block.FractionLost;
                local.LastCumulativeLost = report.Block.CumulativeLost;
                return true;
        }
        return false;
    }

    /// <summary>
    /// One frame on <paramref name="track"/>: an Opus packet, a VP8 frame, or an H.264 access unit in Annex B form,
    /// packetized with the negotiated codec into RTP packets of at most <see cref="MediaOptions.MaxPayloadSize"/> payload
    /// bytes, each kept in the send history and queued (plain) in the pacer.
    /// </summary>
    public MediaSendResult SendFrame(LocalTrack track, ReadOnlySpan<byte> frame, uint rtpTimestamp, TimeSpan now)
    {
        var check = CanSend(track);
        if (check != MediaSendResult.Sent) return check;
        if (frame.IsEmpty) return MediaSendResult.Invalid;
        if (track.Kind == MediaKind.Video && PacerHoldsTooMuch()) { _counters.FramesDroppedCongested++; return MediaSendResult.Congested; }
        var max = _options.MaxPayloadSize;
        var result = MediaSendResult.Sent;
        switch (track.Payload)
        {
            case PayloadFormat.Vp8:
            {
                var packetizer = new Vp8Packetizer(frame, max, track.PictureId);
                track.PictureId = (ushort)((track.PictureId + 1) & 0x7FFF);
                while (result == MediaSendResult.Sent)
                {
                    if (!TryBeginPacket(track, out var slot, out var header)) { result = MediaSendResult.QueueFull; break; }
                    if (!packetizer.TryWriteNext(slot.Slice(header, max), out var written, out var marker)) break;
                    CommitPacket(track, slot, header, written, rtpTimestamp, marker, now);
                }
                break;
            }
            case PayloadFormat.H264:
            {
                var packetizer = new H264Packetizer(frame, max);
                while (result == MediaSendResult.Sent)
                {
                    if (!TryBeginPacket(track, out var slot, out var header)) { result = MediaSendResult.QueueFull; break; }
                    if (!packetizer.TryWriteNext(slot.Slice(header, max), out var written, out var marker)) break;
                    CommitPacket(track, slot, header, written, rtpTimestamp, marker, now);
                }
                break;
            }
            default: // Opus: the packet is the payload (RFC 7587 section 4.2); the marker only follows DTX.
                if (frame.Length > max) return MediaSendResult.Invalid;
                result = SendPayload(track, frame, rtpTimestamp, marker: false, now);
                break;
        }
        if (result == MediaSendResult.Sent) track.FramesSent++;
        return result;
    }

    /// <summary>One RTP payload on <paramref name="track"/> with our header (SSRC, payload type, sequence number, header extensions).</summary>
    public MediaSendResult SendRtp(LocalTrack track, ReadOnlySpan<byte> payload, uint rtpTimestamp, bool marker, TimeSpan now)
    {
        var check = CanSend(track);
        if (check != MediaSendResult.Sent) return check;
        if (payload.Length > _options.MaxPayloadSize + 200) return MediaSendResult.Invalid;
        return SendPayload(track, payload, rtpTimestamp, marker, now);
    }

    // Media needs the SRTP keys (DTLS done); the connection checked its own state and ICE's pair before.
    private MediaSendResult CanSend(LocalTrack track)
    {
        if (!_srtp.HasKeys) return MediaSendResult.NotConnected;
        if (!track.IsNegotiated || !_tracks.Contains(track)) return MediaSendResult.NotNegotiated;
        return MediaSendResult.Sent;
    }

    private MediaSendResult SendPayload(LocalTrack track, ReadOnlySpan<byte> payload, uint timestamp, bool marker, TimeSpan now)
    {
        if (!TryBeginPacket(track, out var slot, out var header)) return MediaSendResult.QueueFull;
        if (header + payload.Length + 32 > slot.Length) return MediaSendResult.Invalid;
        payload.CopyTo(slot.Slice(header));
        CommitPacket(track, slot, header, payload.Length, timestamp, marker, now);
        return MediaSendResult.Sent;
    }

    /// <summary>Reserves a pacer slot and computes the header length (12 + the extension block).</summary>
    private bool TryBeginPacket(LocalTrack track, out Span<byte> slot, out int headerLength)
    {
        headerLength = RtpPacket.FixedHeaderLength + ExtensionBlockLength(track);
        if (!EnsurePacer().TryReserve(track.Kind, out slot))
        {
            track.PacketsDropped++;
            _counters.SendQueueFull++;
            return false;
        }
        return true;
    }

    // A later exchange may drop the extension (or move it out of the one-byte range): numbering stops, the figures stay.
    private int? NumberingId => TransportCcSender is not null && _transportCcExtensionId is >= 1 and <= 14 ? _transportCcExtensionId : null;

    private int ExtensionBlockLength(LocalTrack track)
    {
        var elements = (NumberingId is null ? 0 : 3) + (track.MidExtensionId is null ? 0 : 1 + track.Mid!.Length);
        return elements == 0 ? 0 : 4 + ((elements + 3) & ~3);
    }

    /// <summary>
    /// Writes the header (RFC 3550 5.1; RFC 8285 one-byte transport-wide sequence number and mid elements), records
    /// the packet for NACKs, queues it in the pacer.
    /// </summary>
    private void CommitPacket(LocalTrack track, Span<byte> slot, int header, int payloadLength, uint timestamp, bool marker, TimeSpan now)
    {
        var ext = header > RtpPacket.FixedHeaderLength;
        slot[0] = (byte)(0x80 | (ext ? 0x10 : 0));
        slot[1] = (byte)((marker ? 0x80 : 0) | track.Codec!.PayloadType);
        BinaryPrimitives.WriteUInt16BigEndian(slot[2..], track.NextSequence++);
        BinaryPrimitives.WriteUInt32BigEndian(slot[4..], timestamp);
        BinaryPrimitives.WriteUInt32BigEndian(slot[8..], track.Ssrc);
        var length = header + payloadLength;
        if (ext)
        {
            var block = slot[RtpPacket.FixedHeaderLength..header];
            block.Clear();
            block[0] = 0xBE;
            block[1] = 0xDE;
            BinaryPrimitives.WriteUInt16BigEndian(block[2..], (ushort)((block.Length - 4) / 4));
            var at = 4;
            if (NumberingId is { } cc)
            {
                block[at] = (byte)((cc << 4) | 1);   // the number is written when the packet leaves the pacer
                at += 3;
            }
            if (track.MidExtensionId is { } id)
            {
                var mid = track.Mid!;
                block[at] = (byte)((id << 4) | (mid.Length - 1));
                for (var i = 0; i < mid.Length; i++) block[at + 1 + i] = (byte)mid[i];
            }
        }
        _rtp!.OnRtpSent(slot[..length], now);
        _pacer!.Commit(track.Kind, length);   // numbered and protected when it leaves (TryPollPaced)
        track.PacketsSent++;
        track.BytesSent += payloadLength;
        _counters.RtpPacketsSent++;
    }

    /// <summary>Queues RTCP BYE for our streams (RFC 3550 section 6.6), protected, ahead of the DTLS close_notify.</summary>
    public void SendBye(string reason, bool anyRemoteTrack)
    {
        if (_rtp is null || !_srtp.HasKeys || !AnyNegotiated() && !anyRemoteTrack) return;
        _rtp.SendBye(reason.Length > 255 ? reason[..255] : reason);
        _sendQueue ??= new MediaSendQueue(_options.SendQueuePackets, _options.MaxPayloadSize + 128);
        while (_sendQueue.TryReserve(out var slot) && _rtp.TryPollTransmit(slot[..^64], out var written, out var kind))
        {
            var srtp = _srtp.Session!;
            var r = kind == RtpTransmitKind.Rtcp ? srtp.ProtectRtcp(slot, written, out var n) : srtp.ProtectRtp(slot, written, out n);
            if (r == SrtpResult.Ok) _sendQueue.Commit(n);
            if (kind == RtpTransmitKind.Rtcp) break; // the BYE compound
        }
    }

    private bool AnyNegotiated()
    {
        foreach (var t in _tracks)
            if (t.IsNegotiated) return true;
        return false;
    }

    /// <summary>Queued SRTP packets (the BYE of a close), then the next paced packet, numbered and protected.</summary>
    public bool TryPollQueued(Span<byte> destination, TimeSpan now, out int written)
    {
        written = 0;
        while (_sendQueue is { Count: > 0 } && _srtp.HasKeys)
        {
            written = _sendQueue.Dequeue(destination);
            if (written > 0) return true;
        }
        return TryPollPaced(destination, now, out written);
    }

    /// <summary>The next paced packet, numbered and protected into <paramref name="destination"/>.</summary>
    private bool TryPollPaced(Span<byte> destination, TimeSpan now, out int written)
    {
        written = 0;
        if (_pacer is not { } pacer || !_srtp.HasKeys) return false;
        for (var attempt = 0; attempt < 64; attempt++)
        {
            if (!pacer.TryPoll(now, destination, out var length, out var kind)) return false;
            if (kind == PacedKind.Padding)
            {
                length = WritePadding(destination);
                if (length <= 0) { pacer.AbandonProbe(); continue; }
            }
            var cluster = pacer.ProbeCluster;
            if (kind == PacedKind.Retransmission)
            {
                _rtp?.RenumberRtx(destination[..length]);   // in the order it leaves, after the padding and retransmissions that went before it
                _rtp?.OnRetransmissionSent(destination[..length], now);   // read before SRTP
            }
            if (!TryFinishRtp(destination, length, cluster, now, out written)) continue;
            pacer.OnSent(written);
            if (kind == PacedKind.Retransmission) CountRetransmission(destination);
            return true;
        }
        return false;
    }

    /// <summary>
    /// What the RTP session has to send (retransmissions in answer to NACKs, RTCP reports and NACKs, BYE), protected into
    /// <paramref name="destination"/>. A retransmission the pacer holds back waits there (plain); RTCP goes at once.
    /// <paramref name="taken"/> with false: a packet was taken but SRTP could not protect it (counted).
    /// </summary>
    public bool TryPollRtpTransmit(Span<byte> destination, TimeSpan now, out int written, out bool taken)
    {
        written = 0;
        taken = false;
        if (_rtp is not { } rtp || !_srtp.HasKeys) return false;
        var room = destination[..Math.Min(destination.Length - 64, 1400)];
        var kind = RtpTransmitKind.Rtcp;
        for (var i = 0; i < 256 && rtp.TryPollTransmit(room, out written, out kind); i++)
        {
            if (kind != RtpTransmitKind.Rtcp && HoldRetransmission(destination[..written], now)) continue;
            taken = true;
            break;
        }
        if (!taken) { written = 0; return false; }
        // A retransmission is a packet of its own on the wire: it gets a transport-wide number of its own.
        int n;
        if (kind == RtpTransmitKind.Rtcp)
        {
            if (_srtp.Session!.ProtectRtcp(destination, written, out n) != SrtpResult.Ok) { _counters.ProtectFailures++; written = 0; return false; }
            _counters.RtcpPacketsSent++;
        }
        else
        {
            // Numbered on its RTX stream as it leaves: the session built it when the NACK came, and the
            // retransmissions and padding the pacer let out since took newer numbers (SRTP replay window).
            rtp.RenumberRtx(destination[..written]);
            rtp.OnRetransmissionSent(destination[..written], now);
            if (!TryFinishRtp(destination, written, -1, now, out n)) { written = 0; return false; }
            _pacer?.OnSent(n);
            CountRetransmission(destination);
        }
        written = n;
        return true;
    }

    /// <summary>Numbers (transport-wide, at its send time) and protects a plain RTP packet in place.</summary>
    private bool TryFinishRtp(Span<byte> destination, int length, int probeCluster, TimeSpan now, out int written)
    {
        written = 0;
        if (NumberingId is { } numbering && HasOurTransportCcElement(destination[..length], numbering))
            BinaryPrimitives.WriteUInt16BigEndian(destination[TransportCcOffset..], TransportCcSender!.Number(length, now, probeCluster));
        if (_srtp.Session!.ProtectRtp(destination, length, out var n) != SrtpResult.Ok) { _counters.ProtectFailures++; return false; }
        written = n;
        return true;
    }

    /// <summary>Whether an RTP packet of ours has the transport-wide number where <see cref="CommitPacket"/> puts it.</summary>
    private static bool HasOurTransportCcElement(ReadOnlySpan<byte> rtp, int id) =>
        rtp.Length > TransportCcOffset + 2 && (rtp[0] & 0x1F) == 0x10 && rtp[12] == 0xBE && rtp[13] == 0xDE &&
        rtp[16] == (byte)((id << 4) | 1);

    private void CountRetransmission(ReadOnlySpan<byte> packet)
    {
        _counters.Retransmissions++;
        var ssrc = BinaryPrimitives.ReadUInt32BigEndian(packet[8..]);
        if (_bySsrc.TryGetValue(ssrc, out var local)) local.Retransmissions++;
    }

    /// <summary>
    /// A retransmission that came out of the RTP session while the pacer holds it back: queued (plain), or dropped
    /// (counted in <see cref="MediaPacer.RetransmissionsDropped"/>) when the pacer holds enough of them already. It
    /// never goes around the pacer: after a partition the receiver asks for everything it missed at once, and what
    /// did not fit used to leave unpaced, a debt that held the pacer closed for seconds.
    /// </summary>
    private bool HoldRetransmission(ReadOnlySpan<byte> plain, TimeSpan now)
    {
        if (_pacer is not { Estimator: not null } pacer || pacer.RetransmissionMayGo(now)) return false;
        pacer.TryQueueRetransmission(plain);
        return true;
    }

    // Padding for a probe (RFC 3550 5.1 P bit, on the RTX stream of a video track as libwebrtc sends it, RFC 4588):
    // 255 bytes of padding after our header, numbered like media so the feedback reports it.
    private int WritePadding(Span<byte> destination)
    {
        if (_rtp is null || NumberingId is not { } numbering) return 0;
        foreach (var track in _tracks)
        {
            if (!track.UsesRtx || track.Codec?.RtxPayloadType is not { } rtxPt || !_rtp.TryTakeRtxSequence(track.Ssrc, out var rtx, out var sequence)) continue;
            const int Padding = 255;
            const int Header = RtpPacket.FixedHeaderLength + 8;
            if (destination.Length < Header + Padding + 64) return 0;
            destination[0] = 0x80 | 0x20 | 0x10;   // V=2, P, X
            destination[1] = (byte)rtxPt;
            BinaryPrimitives.WriteUInt16BigEndian(destination[2..], sequence);
            BinaryPrimitives.WriteUInt32BigEndian(destination[4..], 0);
            BinaryPrimitives.WriteUInt32BigEndian(destination[8..], rtx.Ssrc);
            var block = destination[RtpPacket.FixedHeaderLength..Header];
            block.Clear();
            block[0] = 0xBE;
            block[1] = 0xDE;
            BinaryPrimitives.WriteUInt16BigEndian(block[2..], 1);
            block[4] = (byte)((numbering << 4) | 1);
            destination.Slice(Header, Padding).Clear();
            destination[Header + Padding - 1] = Padding;
            _counters.PaddingPacketsSent++;
            return Header + Padding;
        }
        return 0;
    }
}
