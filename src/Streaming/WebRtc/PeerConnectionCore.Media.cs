using System.Globalization;
using System.Text;
using Transport.Rtp;
using Transport.Rtp.Payloads;
using Transport.Rtp.Streams;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.WebRtc;

// Media: outgoing tracks (AddTrack, SendFrame/SendRtp: MediaSendPath), incoming tracks (RemoteTrackAdded:
// RemoteTrackSet), and the RTP session (src/Rtp RtpSession, made by MediaSendPath) that keeps statistics, answers NACKs
// from a bounded send history, surfaces PLI/FIR and BYE, and produces RTCP reports and NACKs. Negotiation reads the
// final answer: it holds the agreed codecs and payload types of every section (RFC 8829 section 5.3.1) whichever side
// offered.

public sealed partial class PeerConnectionCore
{
    private readonly RemoteTrackSet _remoteTracks;
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
    public TransportCcSender? TransportCcSender => _media.TransportCcSender;
    private SessionDescription? _localOffer;

    /// <summary>Our outgoing tracks, in the order they were added.</summary>
    public IReadOnlyList<LocalTrack> LocalTracks => _media.Tracks;

    /// <summary>The peer's tracks known from the negotiated descriptions.</summary>
    public IReadOnlyList<RemoteTrack> RemoteTracks => _remoteTracks.Tracks;

    /// <summary>The RTP/RTCP session (statistics, NACK, reports) once media was negotiated, else null.</summary>
    public RtpSession? Rtp => _media.Rtp;

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
        return _media.AddTrack(kind, options);
    }

    internal static PayloadFormat FormatOf(CodecSpec codec) => codec.Name.ToUpperInvariant() switch
    {
        "VP8" => PayloadFormat.Vp8,
        "H264" => PayloadFormat.H264,
        "OPUS" => PayloadFormat.Opus,
        _ => PayloadFormat.Other,
    };

    internal static IReadOnlyList<CodecSpec> DefaultCodecs(MediaKind kind) =>
        kind == MediaKind.Audio ? [CodecSpec.Opus] : [CodecSpec.Vp8, CodecSpec.H264];

    private IReadOnlyList<LocalMedia> LocalMediaSections()
    {
        var list = new List<LocalMedia>();
        var tracks = _media.Tracks;
        for (var i = 0; i < tracks.Count; i++)
        {
            var t = tracks[i];
            var mid = i.ToString(CultureInfo.InvariantCulture);
            if (_weOffered) _offeredMids[t] = mid;
            list.Add(new LocalMedia(t.Kind, mid, MediaDirection.SendRecv, t.Codecs)
            {
                Ssrc = t.Ssrc,
                RtxSsrc = t.RtxSsrc,
                Cname = _media.Cname,
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
        _media.OnTransportCcNegotiated(_transportCcExtensionId, _now);
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
                var track = _media.Tracks.FirstOrDefault(t => !t.IsNegotiated && t.Kind == kind &&
                    (_weOffered ? _offeredMids.GetValueOrDefault(t) == mid : ourSsrcs.Contains(t.Ssrc)));
                var codecs = track is null ? [] : RemoteDescription.Intersect(m, track.Codecs, useRtx: true);
                if (track is not null && codecs.Count > 0) _media.Negotiate(track, mid, codecs[0], midExtension);
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
    private void AddReceiveStream(RemoteTrack track, uint ssrc) => _media.Session().AddReceiveStream(ssrc, track.Codecs[0].Codec.ClockRate);

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
        if (!CanSendMedia) return MediaSendResult.NotConnected;
        return _media.SendFrame(track, frame, rtpTimestamp, now);
    }

    /// <summary>Sends one RTP payload on <paramref name="track"/> with our header (SSRC, payload type, sequence number, mid extension).</summary>
    public MediaSendResult SendRtp(LocalTrack track, ReadOnlySpan<byte> payload, uint rtpTimestamp, bool marker, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(track);
        Advance(now);
        if (!CanSendMedia) return MediaSendResult.NotConnected;
        return _media.SendRtp(track, payload, rtpTimestamp, marker, now);
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

    // Media needs SRTP keys (DTLS done; MediaSendPath checks them, and the track) and a pair to send on, not the data
    // channels: with a data channel in the session the aggregated state turns Connected only once SCTP is up, a round
    // trip or two after the first media may already arrive from the peer.
    private bool CanSendMedia => _state is not (ConnectionState.Closed or ConnectionState.Failed) && Ice.CanSendData;
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
