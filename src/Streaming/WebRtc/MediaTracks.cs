using System.Buffers;
using System.Threading.Channels;
using Transport.Rtp.Payloads;
using Transport.Streaming.Jsep;

namespace Transport.Streaming.WebRtc;

/// <summary>The payload formats we packetize and depacketize.</summary>
internal enum PayloadFormat { Other, Opus, Vp8, H264 }

/// <summary>What to send on an outgoing track (<see cref="PeerConnectionCore.AddTrack"/>).</summary>
public sealed record LocalTrackOptions
{
    /// <summary>Codecs we offer or accept, in preference order; null takes Opus (audio) or VP8, H.264 (video).</summary>
    public IReadOnlyList<CodecSpec>? Codecs { get; init; }
    /// <summary>Our SSRC; null picks a random one.</summary>
    public uint? Ssrc { get; init; }
    /// <summary>The SSRC of retransmissions (RFC 4588) for video; null picks a random one. Audio has no RTX.</summary>
    public uint? RtxSsrc { get; init; }
    /// <summary>Media stream id of a=msid (RFC 8830); null makes one.</summary>
    public string? StreamId { get; init; }
    /// <summary>Track id of a=msid; null makes one.</summary>
    public string? TrackId { get; init; }
}

/// <summary>What a media send call did (never a silent drop: every outcome but <see cref="Sent"/> is counted).</summary>
public enum MediaSendResult
{
    /// <summary>Every packet was queued (SRTP-protected) for the wire.</summary>
    Sent,
    /// <summary>The connection is not connected (see <see cref="PeerConnectionCore.State"/>); nothing was sent.</summary>
    NotConnected,
    /// <summary>The track is not (yet) in a negotiated, sending media section.</summary>
    NotNegotiated,
    /// <summary>The send queue was full: the packets that did not fit were dropped (counted on the track).</summary>
    QueueFull,
    /// <summary>The input could not be packetized (empty frame, packet too large, malformed RTP).</summary>
    Invalid,
    /// <summary>
    /// Video only: the pacer already holds more than the target bitrate lets out in
    /// <see cref="Transport.Rtp.Congestion.CongestionControlOptions.MaxPacerQueueTime"/>, so the frame was not sent (as
    /// an encoder drops a frame when the path cannot carry it; counted in <see cref="MediaCounters.FramesDroppedCongested"/>).
    /// Send the next one, at the lower <see cref="PeerConnectionCore.TargetBitrate"/>.
    /// </summary>
    Congested,
}

/// <summary>
/// An outgoing audio or video track. The codec, payload types and mid are known once the offer/answer exchange
/// placed it in a sending media section (<see cref="IsNegotiated"/>). Counters are written on the connection's
/// thread and may be read from any thread (they are plain 64-bit fields: a snapshot, not a consistent set).
/// </summary>
public sealed class LocalTrack
{
    internal LocalTrack(MediaKind kind, uint ssrc, uint? rtxSsrc, string streamId, string trackId, IReadOnlyList<CodecSpec> codecs)
    {
        Kind = kind;
        Ssrc = ssrc;
        RtxSsrc = rtxSsrc;
        StreamId = streamId;
        TrackId = trackId;
        Codecs = codecs;
    }

    /// <summary>Audio or video.</summary>
    public MediaKind Kind { get; }
    /// <summary>Our SSRC.</summary>
    public uint Ssrc { get; }
    /// <summary>Our RTX SSRC (video), used when RTX is negotiated.</summary>
    public uint? RtxSsrc { get; }
    /// <summary>a=msid stream id.</summary>
    public string StreamId { get; }
    /// <summary>a=msid track id.</summary>
    public string TrackId { get; }
    /// <summary>The codecs we offered or accept, in preference order.</summary>
    public IReadOnlyList<CodecSpec> Codecs { get; }
    /// <summary>The media section (mid) once negotiated.</summary>
    public string? Mid { get; internal set; }
    /// <summary>The codec we send with (our most preferred one the peer accepted), once negotiated.</summary>
    public NegotiatedCodec? Codec { get; internal set; }
    /// <summary>True when RTX (RFC 4588) answers NACKs; false sends the original packet again.</summary>
    public bool UsesRtx { get; internal set; }
    /// <summary>Whether the track is in a negotiated sending section.</summary>
    public bool IsNegotiated => Codec is not null;

    internal int? MidExtensionId;
    internal PayloadFormat Payload;
    internal ushort NextSequence;   // random, set by the peer connection that makes the track
    internal ushort PictureId;

    /// <summary>RTP packets sent (first transmissions).</summary>
    public long PacketsSent;
    /// <summary>RTP payload bytes sent (first transmissions).</summary>
    public long BytesSent;
    /// <summary>Whole frames packetized and sent.</summary>
    public long FramesSent;
    /// <summary>Packets refused because the send queue was full.</summary>
    public long PacketsDropped;
    /// <summary>NACK messages the peer sent about this track.</summary>
    public long NacksReceived;
    /// <summary>Sequence numbers the peer NACKed.</summary>
    public long PacketsNacked;
    /// <summary>Retransmissions sent in answer to NACKs (RTX or the original packet).</summary>
    public long Retransmissions;
    /// <summary>PLI messages received for this track.</summary>
    public long PlisReceived;
    /// <summary>FIR messages received for this track (new sequence numbers only).</summary>
    public long FirsReceived;
    /// <summary>The last reception report the peer sent about this track: fraction lost (1/256 units).</summary>
    public int LastFractionLost;
    /// <summary>The last reception report: cumulative packets lost.</summary>
    public long LastCumulativeLost;
}

/// <summary>
/// An incoming audio or video track: one media section the peer sends on. It delivers the plain RTP packets on
/// <see cref="Packets"/> and the depacketized frames on <see cref="Frames"/>, both bounded (oldest dropped and
/// counted when the application does not read). Both complete when the peer sends RTCP BYE or the connection ends.
/// Dispose what you read (<see cref="MediaPacket"/>, <see cref="MediaFrame"/>) to return its pooled buffer.
/// </summary>
public sealed class RemoteTrack
{
    private readonly Channel<MediaPacket> _packets;
    private readonly Channel<MediaFrame> _frames;
    private readonly TaskCompletionSource<string> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal RemoteTrack(MediaKind kind, string mid, IReadOnlyList<NegotiatedCodec> codecs, string? streamId, string? trackId,
        int packetCapacity, int frameCapacity)
    {
        Kind = kind;
        Mid = mid;
        Codecs = codecs;
        StreamId = streamId;
        TrackId = trackId;
        _packets = Channel.CreateBounded<MediaPacket>(
            new BoundedChannelOptions(packetCapacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleWriter = true },
            p => { Interlocked.Increment(ref PacketsDropped); p.Dispose(); });
        _frames = Channel.CreateBounded<MediaFrame>(
            new BoundedChannelOptions(frameCapacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleWriter = true },
            f => { Interlocked.Increment(ref FramesDropped); f.Dispose(); });
    }

    /// <summary>Audio or video.</summary>
    public MediaKind Kind { get; }
    /// <summary>The media section.</summary>
    public string Mid { get; }
    /// <summary>The negotiated codecs of the section (the peer sends one of them).</summary>
    public IReadOnlyList<NegotiatedCodec> Codecs { get; }
    /// <summary>a=msid stream id of the peer, if signalled.</summary>
    public string? StreamId { get; }
    /// <summary>a=msid track id of the peer, if signalled.</summary>
    public string? TrackId { get; }
    /// <summary>The peer's media SSRC (from a=ssrc, or learned from the first packet carrying the mid), 0 until known.</summary>
    public uint Ssrc { get; internal set; }
    /// <summary>The peer's RTX SSRC (a=ssrc-group:FID), if any.</summary>
    public uint? RtxSsrc { get; internal set; }

    /// <summary>Plain RTP packets (after SRTP, RTX unwrapped) in arrival order.</summary>
    public ChannelReader<MediaPacket> Packets => _packets.Reader;
    /// <summary>Frames reassembled by timestamp and marker (complete ones, and incomplete ones given up).</summary>
    public ChannelReader<MediaFrame> Frames => _frames.Reader;
    /// <summary>Completes with the reason when the track ended (RTCP BYE, or the connection closed or failed).</summary>
    public Task<string> Ended => _ended.Task;
    /// <summary>Whether <see cref="Ended"/> completed.</summary>
    public bool IsEnded => _ended.Task.IsCompleted;

    /// <summary>RTP packets received (after SRTP, including retransmissions).</summary>
    public long PacketsReceived;
    /// <summary>RTP payload bytes received.</summary>
    public long BytesReceived;
    /// <summary>Retransmitted packets received (RTX unwrapped, or duplicates of the original).</summary>
    public long RetransmissionsReceived;
    /// <summary>Complete frames delivered.</summary>
    public long FramesReceived;
    /// <summary>Complete key frames delivered.</summary>
    public long KeyFramesReceived;
    /// <summary>Frames given up as incomplete.</summary>
    public long IncompleteFrames;
    /// <summary>Packets dropped because <see cref="Packets"/> was full.</summary>
    public long PacketsDropped;
    /// <summary>Frames dropped because <see cref="Frames"/> was full.</summary>
    public long FramesDropped;
    /// <summary>PLIs we sent upstream for this track.</summary>
    public long PlisSent;
    /// <summary>Cumulative packets lost per RFC 3550 A.3 (from our receive statistics).</summary>
    public long PacketsLost;
    /// <summary>Interarrival jitter in RTP timestamp units (RFC 3550 A.8).</summary>
    public long Jitter;

    internal readonly Dictionary<int, RtpFrameAssembler> Assemblers = new();
    internal bool PliPending;
    internal int? MidExtensionId;
    internal byte[] MidBytes = [];

    internal void Deliver(MediaPacket packet) => _packets.Writer.TryWrite(packet);
    internal void Deliver(MediaFrame frame) => _frames.Writer.TryWrite(frame);

    internal void End(string reason)
    {
        if (!_ended.TrySetResult(reason)) return;
        _packets.Writer.TryComplete();
        _frames.Writer.TryComplete();
    }
}

/// <summary>
/// A plain RTP packet of an incoming track, in a pooled buffer: <see cref="Dispose"/> returns it (an undisposed
/// packet is only garbage, not a leak). <see cref="Data"/> is the whole packet, <see cref="Payload"/> its payload.
/// </summary>
public sealed class MediaPacket : IDisposable
{
    private byte[]? _buffer;
    private readonly int _length;
    private readonly int _payloadOffset;
    private readonly int _payloadLength;

    internal MediaPacket(byte[] buffer, int length, int payloadOffset, int payloadLength, byte payloadType, ushort sequence, uint timestamp, uint ssrc,
        bool marker, bool retransmission, TimeSpan arrival)
    {
        _buffer = buffer;
        _length = length;
        _payloadOffset = payloadOffset;
        _payloadLength = payloadLength;
        PayloadType = payloadType;
        SequenceNumber = sequence;
        Timestamp = timestamp;
        Ssrc = ssrc;
        Marker = marker;
        IsRetransmission = retransmission;
        Arrival = arrival;
    }

    /// <summary>The whole plain RTP packet (empty after <see cref="Dispose"/>).</summary>
    public ReadOnlyMemory<byte> Data => _buffer is { } b ? b.AsMemory(0, _length) : default;
    /// <summary>The payload (no padding).</summary>
    public ReadOnlyMemory<byte> Payload => _buffer is { } b ? b.AsMemory(_payloadOffset, _payloadLength) : default;
    /// <summary>RTP payload type.</summary>
    public byte PayloadType { get; }
    /// <summary>RTP sequence number (of the original, for an unwrapped RTX packet).</summary>
    public ushort SequenceNumber { get; }
    /// <summary>RTP timestamp.</summary>
    public uint Timestamp { get; }
    /// <summary>SSRC.</summary>
    public uint Ssrc { get; }
    /// <summary>Marker bit.</summary>
    public bool Marker { get; }
    /// <summary>True for a packet that arrived as an RTX retransmission.</summary>
    public bool IsRetransmission { get; }
    /// <summary>Arrival time (the connection's clock).</summary>
    public TimeSpan Arrival { get; }

    /// <summary>Returns the buffer to the pool.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } b) ArrayPool<byte>.Shared.Return(b);
    }
}

/// <summary>
/// A frame of an incoming track (codec bitstream: a VP8 frame, an H.264 access unit in Annex B form, an Opus
/// packet), in a pooled buffer returned by <see cref="Dispose"/>. Incomplete frames (given up) carry no data.
/// </summary>
public sealed class MediaFrame : IDisposable
{
    private byte[]? _buffer;
    private readonly int _length;

    internal MediaFrame(byte[]? buffer, int length, RtpFrameInfo info, byte payloadType, TimeSpan completedAt)
    {
        _buffer = buffer;
        _length = length;
        Timestamp = info.Timestamp;
        IsComplete = info.Complete;
        IsKeyFrame = info.KeyFrame;
        PacketCount = info.PacketCount;
        PayloadType = payloadType;
        CompletedAt = completedAt;
    }

    /// <summary>The codec bitstream (empty for an incomplete frame or after <see cref="Dispose"/>).</summary>
    public ReadOnlyMemory<byte> Data => _buffer is { } b ? b.AsMemory(0, _length) : default;
    /// <summary>Length of <see cref="Data"/>.</summary>
    public int Length => _length;
    /// <summary>RTP timestamp of the frame.</summary>
    public uint Timestamp { get; }
    /// <summary>True when every packet of the frame arrived.</summary>
    public bool IsComplete { get; }
    /// <summary>True for a key frame (VP8 P bit 0; H.264 IDR or SPS; every Opus packet).</summary>
    public bool IsKeyFrame { get; }
    /// <summary>RTP packets of the frame.</summary>
    public int PacketCount { get; }
    /// <summary>Payload type the frame came with.</summary>
    public byte PayloadType { get; }
    /// <summary>When the frame was completed (the connection's clock).</summary>
    public TimeSpan CompletedAt { get; }

    /// <summary>Returns the buffer to the pool.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } b) ArrayPool<byte>.Shared.Return(b);
    }
}

/// <summary>Media options of a peer connection.</summary>
public sealed record MediaOptions
{
    /// <summary>Largest RTP payload we packetize into (before SRTP). Default 1100 bytes, below a 1200-byte path MTU budget.</summary>
    public int MaxPayloadSize { get; init; } = 1100;
    /// <summary>
    /// Outgoing packets waiting for the wire (a bounded ring of MaxPayloadSize + 128 byte slots, allocated on first
    /// use; the driver drains it after every call, so it only has to hold the largest frame). Default 512.
    /// </summary>
    public int SendQueuePackets { get; init; } = 512;
    /// <summary>Sent packets kept per outgoing track to answer NACKs (RFC 4585). Default 1024.</summary>
    public int SendHistoryPackets { get; init; } = 1024;
    /// <summary>Capacity of each incoming track's packet reader (oldest dropped beyond). Default 512.</summary>
    public int PacketReaderCapacity { get; init; } = 512;
    /// <summary>Capacity of each incoming track's frame reader (oldest dropped beyond). Default 64.</summary>
    public int FrameReaderCapacity { get; init; } = 64;
    /// <summary>
    /// Offer RTX (RFC 4588) for video and accept it when offered: NACKed packets are then resent on the RTX SSRC;
    /// without it the original packet is sent again. Default true.
    /// </summary>
    public bool UseRtx { get; init; } = true;
    /// <summary>
    /// Negotiate transport-wide congestion control (the transport-wide sequence number extension and
    /// <c>a=rtcp-fb:PT transport-cc</c>) and send its feedback for every packet the peer numbers, so a browser's
    /// bandwidth estimator can raise its send rate above its start value (about 300 kbit/s in Chromium). Default true.
    /// </summary>
    public bool TransportCc { get; init; } = true;
    /// <summary>
    /// How often transport-cc feedback is sent while numbered packets arrive (none while nothing arrives, and a
    /// message at once for the first packet after a silence). Default 100 ms.
    /// </summary>
    public TimeSpan TransportCcFeedbackInterval { get; init; } = TimeSpan.FromMilliseconds(100);
    /// <summary>
    /// Send-side congestion control: with transport-cc negotiated, a bandwidth estimator reads the peer's
    /// feedback and a pacer lets our media out at a multiple of its target (start, minimum and maximum rates, pacing,
    /// data channel share; see docs/rtp.md). On by default (a default <c>CongestionControlOptions</c>); null turns it
    /// off: no estimate, no pacing, media leaves as the application sends it.
    /// </summary>
    public Transport.Rtp.Congestion.CongestionControlOptions? Congestion { get; init; } = new();
    /// <summary>
    /// Seeds what the media part draws at random (our SSRCs, first sequence numbers and picture ids, the first
    /// transport-wide number, and through the SSRC the RTCP report timing), so that a run on virtual time repeats
    /// exactly (tests). Null (the default) draws them from <see cref="Random.Shared"/>; set it only in tests, as SSRCs
    /// should not be predictable.
    /// </summary>
    public int? RandomSeed { get; init; }
    /// <summary>Mean RTCP report interval (RFC 3550 6.2; randomized 0.5-1.5x). Default 1 s.</summary>
    public TimeSpan ReportInterval { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>RTCP CNAME (RFC 7022); null makes a random one.</summary>
    public string? Cname { get; init; }
    /// <summary>NTP time (64-bit) at the connection's time zero, for sender reports; the host supplies it so the core reads no clock.</summary>
    public ulong NtpOrigin { get; init; }
    /// <summary>When a remote BYE ended every incoming track, the connection goes Closed. Default true.</summary>
    public bool CloseWhenEveryTrackSaidBye { get; init; } = true;
}

/// <summary>The peer sends a track on a negotiated media section (raised when the description is applied).</summary>
public sealed record RemoteTrackAdded(TimeSpan At, RemoteTrack Track) : PeerConnectionEvent(At);

/// <summary>An incoming track ended (RTCP BYE from the peer, or the connection ended).</summary>
public sealed record RemoteTrackEnded(TimeSpan At, RemoteTrack Track, string Reason) : PeerConnectionEvent(At);

/// <summary>
/// The peer asked for a key frame on our outgoing <paramref name="Track"/> (PLI, RFC 4585 6.3.1, or FIR,
/// RFC 5104 4.3.1): the source should produce one; an echo forwards it upstream with
/// <see cref="PeerConnectionCore.RequestKeyFrame"/>.
/// </summary>
public sealed record KeyFrameRequestReceived(TimeSpan At, LocalTrack Track, bool FullIntraRequest) : PeerConnectionEvent(At);

/// <summary>The peer NACKed packets of <paramref name="Track"/>; <paramref name="Retransmitting"/> were still in the send history.</summary>
public sealed record NackReceivedEvent(TimeSpan At, LocalTrack Track, int Requested, int Retransmitting) : PeerConnectionEvent(At);
