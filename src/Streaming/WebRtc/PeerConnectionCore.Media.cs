using System.Globalization;
using System.Text;
using Transport.Rtp;
using Transport.Rtp.Payloads;
using Transport.Rtp.Streams;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.WebRtc;

// Media: outgoing tracks (AddTrack, SendFrame/SendRtp), incoming tracks (RemoteTrackAdded), and the RTP session
// (src/Rtp RtpSession) that keeps statistics, answers NACKs from a bounded send history, surfaces PLI/FIR and BYE,
// and produces RTCP reports and NACKs. Negotiation reads the final answer: it holds the agreed codecs and payload types
// of every section (RFC 8829 section 5.3.1) whichever side offered.
public sealed partial class PeerConnectionCore
{
    private readonly List<LocalTrack> _localTracks = new();
    private readonly RemoteTrackSet _remoteTracks;
    private readonly Dictionary<uint, LocalTrack> _localBySsrc = new();
    private readonly Dictionary<LocalTrack, string> _offeredMids = new();
    private int? _transportCcExtensionId;

    /// <summary>
    /// The transport-cc feedback of the packets the peer numbers with the transport-wide sequence number extension,
    /// once an exchange negotiated it (<see cref="MediaOptions.TransportCc"/>): its counters say what was recorded
    /// and reported.
    /// </summary>
    public TransportCcReceiver? TransportCc { get; private set; }

    /// <summary>
    /// What the peer's transport-cc feedback says of our packets (which arrived, which were lost, the delivery rate),
    /// once an exchange negotiated transport-cc with an extension id of the one-byte form: every packet we send,
    /// retransmissions included, is then numbered.
    /// </summary>
    public TransportCcSender? TransportCcSender { get; private set; }
    private readonly string _cname = "rtc-" + Guid.NewGuid().ToString("N")[..12];
    private readonly uint _localSsrc;
    private Random? _mediaRandom;

    // What the media part draws at random: seeded by MediaOptions.RandomSeed (tests repeat exactly), else shared.
    private Random MediaRandom => _mediaRandom ??= _options.Media.RandomSeed is { } seed ? new Random(seed) : Random.Shared;
    private SessionDescription? _localOffer;
    private RtpSession? _rtp;
    private MediaSendQueue? _sendQueue;

    /// <summary>Our outgoing tracks, in the order they were added.</summary>
    public IReadOnlyList<LocalTrack> LocalTracks => _localTracks;

    /// <summary>The peer's tracks known from the negotiated descriptions.</summary>
    public IReadOnlyList<RemoteTrack> RemoteTracks => _remoteTracks.Tracks;

    /// <summary>The RTP/RTCP session (statistics, NACK, reports) once media was negotiated, else null.</summary>
    public RtpSession? Rtp => _rtp;

    /// <summary>Media counters of the connection (SRTP drops included).</summary>
    public MediaCounters MediaCounters { get; } = new();

    /// <summary>
    /// Adds an outgoing audio or video track. Call it before <see cref="CreateOffer"/> or <see cref="CreateAnswer"/>:
    /// the description then carries its section (offer) or places it in the first offered section of its kind
    /// (answer) with a=msid, a=ssrc and, for video, an RTX SSRC in a=ssrc-group:FID.
    /// </summary>
    public LocalTrack AddTrack(MediaKind kind, LocalTrackOptions? options = null, TimeSpan now = default)
    {
        if (kind == MediaKind.Application) throw new ArgumentException("A track is audio or video.", nameof(kind));
        Advance(now);
        ThrowIfEnded();
        options ??= new LocalTrackOptions();
        var codecs = options.Codecs ?? DefaultCodecs(kind);
        if (codecs.Count == 0) throw new ArgumentException("At least one codec is needed.", nameof(options));
        var ssrc = options.Ssrc ?? NewSsrc();
        uint? rtx = kind == MediaKind.Video ? options.RtxSsrc ?? NewSsrc() : null;
        var track = new LocalTrack(kind, ssrc, rtx, options.StreamId ?? "stream-" + _cname[4..], options.TrackId ?? Guid.NewGuid().ToString("N")[..16], codecs)
        {
            NextSequence = (ushort)MediaRandom.Next(0, 0x8000),
            PictureId = (ushort)MediaRandom.Next(0, 0x8000),
        };
        _localTracks.Add(track);
        _localBySsrc[ssrc] = track;
        if (rtx is { } r) _localBySsrc[r] = track;
        return track;
    }

    private uint NewSsrc()
    {
        while (true)
        {
            var s = (uint)MediaRandom.NextInt64(1, uint.MaxValue);
            if (!_localBySsrc.ContainsKey(s) && s != _localSsrc) return s;
        }
    }

    internal static PayloadFormat FormatOf(CodecSpec codec) => codec.Name.ToUpperInvariant() switch
    {
        "VP8" => PayloadFormat.Vp8,
        "H264" => PayloadFormat.H264,
        "OPUS" => PayloadFormat.Opus,
        _ => PayloadFormat.Other,
    };

    private static IReadOnlyList<CodecSpec> DefaultCodecs(MediaKind kind) =>
        kind == MediaKind.Audio ? [CodecSpec.Opus] : [CodecSpec.Vp8, CodecSpec.H264];

    private IReadOnlyList<LocalMedia> LocalMediaSections()
    {
        var list = new List<LocalMedia>();
        for (var i = 0; i < _localTracks.Count; i++)
        {
            var t = _localTracks[i];
            var mid = i.ToString(CultureInfo.InvariantCulture);
            if (_weOffered) _offeredMids[t] = mid;
            list.Add(new LocalMedia(t.Kind, mid, MediaDirection.SendRecv, t.Codecs)
            {
                Ssrc = t.Ssrc,
                RtxSsrc = t.RtxSsrc,
                Cname = _cname,
                StreamId = t.StreamId,
                TrackId = t.TrackId,
            });
        }
        return list;
    }

    /// <summary>
    /// Applies the media part of a completed offer/answer exchange: our tracks learn their section, codec and
    /// payload types; every section the peer sends on becomes a <see cref="RemoteTrack"/>.
    /// </summary>
    private void ApplyMedia(SessionDescription ours, SessionDescription theirs, SessionDescription answer, TimeSpan now)
    {
        // Transport-wide CC is negotiated when the answer keeps the extension (with the offer's id, the same in every
        // bundled section, RFC 8843 section 9.1): the peer then numbers its packets and we send the feedback.
        var transportCc = _options.Media.TransportCc
            ? answer.Media.Where(m => !m.IsRejected).SelectMany(m => m.GetExtMaps()).FirstOrDefault(e => e.Uri == RemoteDescription.TransportCcExtensionUri)?.Id
            : null;
        _transportCcExtensionId = transportCc is >= 1 and <= 255 ? transportCc : null;
        if (_transportCcExtensionId is not null)
            TransportCc ??= new TransportCcReceiver(new TransportCcReceiverOptions { Interval = _options.Media.TransportCcFeedbackInterval });
        // Our own packets carry the number in the one-byte form (ids 1-14), so the peer reports on them too.
        if (_transportCcExtensionId is >= 1 and <= 14)
        {
            TransportCcSender ??= new TransportCcSender((ushort)MediaRandom.Next(1, 0x10000));
            if (_rtp is not null) _rtp.TransportCcSender = TransportCcSender;   // else RtpState() hands it over
            AttachEstimator();
        }
        foreach (var m in answer.Media)
        {
            if (m.IsRejected || m.Mid is not { } mid) continue;
            MediaKind? kind = m.Media switch { "audio" => MediaKind.Audio, "video" => MediaKind.Video, _ => null };
            if (kind is null) continue;
            var answerDirection = RemoteDescription.DirectionOf(m);
            bool answererSends = answerDirection is MediaDirection.SendRecv or MediaDirection.SendOnly;
            bool offererSends = answerDirection is MediaDirection.SendRecv or MediaDirection.RecvOnly;
            bool weSend = _weOffered ? offererSends : answererSends;
            bool theySend = _weOffered ? answererSends : offererSends;
            var midExtension = m.GetExtMaps().FirstOrDefault(e => e.Uri == RemoteDescription.MidExtensionUri)?.Id;
            var ourSection = ours.Media.FirstOrDefault(x => x.Mid == mid);
            var theirSection = theirs.Media.FirstOrDefault(x => x.Mid == mid);

            if (weSend && ourSection is not null)
            {
                var ourSsrcs = ourSection.GetSsrcs().Select(s => s.Ssrc).ToHashSet();
                var track = _localTracks.FirstOrDefault(t => !t.IsNegotiated && t.Kind == kind &&
                    (_weOffered ? _offeredMids.GetValueOrDefault(t) == mid : ourSsrcs.Contains(t.Ssrc)));
                var codecs = track is null ? [] : RemoteDescription.Intersect(m, track.Codecs, useRtx: true);
                if (track is not null && codecs.Count > 0)
                {
                    var codec = codecs[0];
                    track.Mid = mid;
                    track.Codec = codec;
                    track.Payload = FormatOf(codec.Codec);
                    track.MidExtensionId = midExtension is >= 1 and <= 14 && mid.Length <= 16 ? midExtension : null;
                    track.UsesRtx = codec.RtxPayloadType is not null && track.RtxSsrc is not null;
                    RtpState().AddSendStream(track.Ssrc, codec.Codec.ClockRate,
                        track.UsesRtx ? new RtxParameters(track.RtxSsrc!.Value, (byte)codec.RtxPayloadType!.Value) : null);
                }
            }

            if (theySend && theirSection is not null && !_remoteTracks.HasMid(mid))
            {
                var codecs = RemoteDescription.Intersect(m, DefaultCodecs(kind.Value), useRtx: true);
                if (codecs.Count == 0) continue;
                var msid = theirSection.GetAttribute("msid")?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var track = new RemoteTrack(kind.Value, mid, codecs, msid?.ElementAtOrDefault(0), msid?.ElementAtOrDefault(1),
                    _options.Media.PacketReaderCapacity, _options.Media.FrameReaderCapacity)
                {
                    MidExtensionId = midExtension,
                    MidBytes = Encoding.ASCII.GetBytes(mid),
                };
                var (media, rtx) = SsrcsOf(theirSection);
                _remoteTracks.Add(track, media, rtx, now);
                if (media is { } s) AddReceiveStream(track, s);
            }
        }
    }

    /// <summary>The media SSRC and its RTX SSRC of a section: a=ssrc-group:FID (RFC 5576, RFC 4588), else the first a=ssrc.</summary>
    private static (uint? Media, uint? Rtx) SsrcsOf(MediaDescription m)
    {
        foreach (var group in m.GetAttributes("ssrc-group"))
        {
            var parts = group.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 3 && parts[0] == "FID" &&
                uint.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var media) &&
                uint.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var rtx))
                return (media, rtx);
        }
        var first = m.GetSsrcs().Select(s => (uint?)s.Ssrc).FirstOrDefault();
        return (first, null);
    }

    // A media SSRC bound to a remote track (signalled, or learned from its first packet) gets its receive statistics.
    private void AddReceiveStream(RemoteTrack track, uint ssrc) => RtpState().AddReceiveStream(ssrc, track.Codecs[0].Codec.ClockRate);

    private RtpSession RtpState() => _rtp ??= new RtpSession(new RtpSessionOptions
    {
        LocalSsrc = _localSsrc,
        Cname = _cname,
        NtpOrigin = _options.Media.NtpOrigin,
        ReportInterval = _options.Media.ReportInterval,
        RetransmissionCacheSize = _options.Media.SendHistoryPackets,
        RandomSeed = (int)_localSsrc,
    })
    {
        TransportCcSender = TransportCcSender,   // the peer's transport-cc feedback on our packets is read there
    };

    /// <summary>
    /// Sends one frame on <paramref name="track"/>: an Opus packet, a VP8 frame, or an H.264 access unit in Annex B
    /// form, packetized with the negotiated codec (RFC 7587, RFC 7741, RFC 6184 mode 1) into RTP packets of at most
    /// <see cref="MediaOptions.MaxPayloadSize"/> payload bytes, each kept in the send history and SRTP-protected into
    /// the send queue. No allocation: the packetizers write straight into the queue's preallocated slots.
    /// </summary>
    public MediaSendResult SendFrame(LocalTrack track, ReadOnlySpan<byte> frame, uint rtpTimestamp, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(track);
        Advance(now);
        var check = CanSendMedia(track);
        if (check != MediaSendResult.Sent) return check;
        if (frame.IsEmpty) return MediaSendResult.Invalid;
        if (track.Kind == MediaKind.Video && PacerHoldsTooMuch()) { MediaCounters.FramesDroppedCongested++; return MediaSendResult.Congested; }
        var max = _options.Media.MaxPayloadSize;
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

    /// <summary>Sends one RTP payload on <paramref name="track"/> with our header (SSRC, payload type, sequence number, mid extension).</summary>
    public MediaSendResult SendRtp(LocalTrack track, ReadOnlySpan<byte> payload, uint rtpTimestamp, bool marker, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(track);
        Advance(now);
        var check = CanSendMedia(track);
        if (check != MediaSendResult.Sent) return check;
        if (payload.Length > _options.Media.MaxPayloadSize + 200) return MediaSendResult.Invalid;
        return SendPayload(track, payload, rtpTimestamp, marker, now);
    }

    /// <summary>
    /// Re-sends an RTP packet (for instance one received on a <see cref="RemoteTrack"/>, for an echo or a forwarder)
    /// on <paramref name="track"/>: its payload, timestamp and marker go out under our header.
    /// </summary>
    public MediaSendResult SendRtpPacket(LocalTrack track, ReadOnlySpan<byte> rtpPacket, TimeSpan now)
    {
        if (!RtpPacket.TryRead(rtpPacket, out var rtp)) return MediaSendResult.Invalid;
        return SendRtp(track, rtp.Payload, rtp.Timestamp, rtp.Marker, now);
    }

    /// <summary>Asks the peer for a key frame on <paramref name="track"/> (RFC 4585 section 6.3.1 PLI, sent at once).</summary>
    public void RequestKeyFrame(RemoteTrack track, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(track);
        Advance(now);
        if (track.Ssrc != 0 && !track.IsEnded) track.PliPending = true;
    }

    private MediaSendResult CanSendMedia(LocalTrack track)
    {
        // Media needs SRTP keys (DTLS done) and a pair to send on, not the data channels: with a data channel in the
        // session the aggregated state turns Connected only once SCTP is up, a round trip or two after the first
        // media may already arrive from the peer.
        if (_state is ConnectionState.Closed or ConnectionState.Failed || !HasSrtp || !Ice.CanSendData) return MediaSendResult.NotConnected;
        if (!track.IsNegotiated || !_localTracks.Contains(track)) return MediaSendResult.NotNegotiated;
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

    /// <summary>Reserves a send-queue slot and computes the header length (12 + the mid extension block).</summary>
    private bool TryBeginPacket(LocalTrack track, out Span<byte> slot, out int headerLength)
    {
        headerLength = RtpPacket.FixedHeaderLength + ExtensionBlockLength(track);
        if (!Pacer().TryReserve(track.Kind, out slot))
        {
            track.PacketsDropped++;
            MediaCounters.SendQueueFull++;
            return false;
        }
        return true;
    }

    // The RFC 8285 one-byte block: the transport-wide sequence number first (its value sits at a fixed offset, 17, where a
    // retransmission's copy of the header is renumbered), then the mid.
    private const int TransportCcOffset = RtpPacket.FixedHeaderLength + 5;
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
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(slot[2..], track.NextSequence++);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(slot[4..], timestamp);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(slot[8..], track.Ssrc);
        var length = header + payloadLength;
        if (ext)
        {
            var block = slot[RtpPacket.FixedHeaderLength..header];
            block.Clear();
            block[0] = 0xBE;
            block[1] = 0xDE;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(block[2..], (ushort)((block.Length - 4) / 4));
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
        _pacer!.Commit(track.Kind, length);   // numbered and protected when it leaves (PeerConnectionCore.Pacing.cs)
        track.PacketsSent++;
        track.BytesSent += payloadLength;
        MediaCounters.RtpPacketsSent++;
    }
}

/// <summary>Counters of the media path of one connection (written on its thread; read as a snapshot).</summary>
public sealed class MediaCounters
{
    /// <summary>RTP packets sent (first transmissions).</summary>
    public long RtpPacketsSent;
    /// <summary>RTP packets received and authenticated.</summary>
    public long RtpPacketsReceived;
    /// <summary>RTCP compounds sent (reports, NACK, PLI, BYE).</summary>
    public long RtcpPacketsSent;
    /// <summary>RTCP compounds received and authenticated.</summary>
    public long RtcpPacketsReceived;
    /// <summary>Retransmissions sent in answer to NACKs.</summary>
    public long Retransmissions;
    /// <summary>PLIs sent.</summary>
    public long PlisSent;
    /// <summary>Transport-cc feedback messages sent (see <see cref="PeerConnectionCore.TransportCc"/>).</summary>
    public long TransportCcFeedbackSent;
    /// <summary>Transport-cc feedback from the peer that could not be decoded (dropped).</summary>
    public long MalformedTransportCcFeedback;
    /// <summary>SRTP/SRTCP packets dropped: authentication failure, replay, malformed (see the SRTP context counters).</summary>
    public long UnprotectFailures;
    /// <summary>RTP packets of no negotiated track (surfaced as <see cref="MediaPacketReceived"/>).</summary>
    public long UnknownSsrc;
    /// <summary>RTX packets without an original (bandwidth probing padding).</summary>
    public long RtxPadding;
    /// <summary>Packets refused because the send queue was full.</summary>
    public long SendQueueFull;
    /// <summary>Packets SRTP could not protect (key exhausted).</summary>
    public long ProtectFailures;
    /// <summary>Video frames refused with <see cref="MediaSendResult.Congested"/> (the pacer held too much).</summary>
    public long FramesDroppedCongested;
    /// <summary>Padding packets sent for bandwidth probes (RTX padding, see <see cref="PeerConnectionCore.BandwidthEstimator"/>).</summary>
    public long PaddingPacketsSent;
}
