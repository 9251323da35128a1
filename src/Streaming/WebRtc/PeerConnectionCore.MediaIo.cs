using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using Transport.Rtp;
using Transport.Rtp.Payloads;
using Transport.Rtp.Rtcp;
using Transport.Rtp.Srtp;
using Transport.Rtp.Streams;
using Transport.Streaming.Jsep;

namespace Transport.Streaming.WebRtc;

// The per-packet media path. Allocation per received RTP packet: one MediaPacket object (its bytes in a pooled
// array); per completed frame: one MediaFrame object (pooled array). Nothing else allocates per packet: SRTP works
// in place in a scratch buffer rented for the packet, RTX is unwrapped into a second scratch buffer, the frame assembler
// and the send history use preallocated or pooled storage, and sent packets are written and protected in place in
// the send queue's preallocated slots. RTCP events (NACK, PLI, BYE, reports) allocate their event records.
public sealed partial class PeerConnectionCore
{
    private byte[]? _rtxScratch;   // made at the first RTX packet: connections without media or RTX hold none

    private bool MediaRunning => _media.Rtp is not null && HasSrtp && _state is ConnectionState.Connected or ConnectionState.Disconnected;

    private void HandleMedia(ReadOnlySpan<byte> datagram, TimeSpan now)
    {
        // SRTP before the keys never comes here: the input demultiplexer routes it to MediaBeforeKeys (counted there).
        Debug.Assert(HasSrtp, "media is routed here only once the SRTP keys exist");
        if (datagram.Length > ScratchSize) { DroppedMedia++; MediaCounters.UnprotectFailures++; return; }
        var scratch = ArrayPool<byte>.Shared.Rent(ScratchSize);
        try { HandleMedia(datagram, scratch, now); }
        finally { ArrayPool<byte>.Shared.Return(scratch); }
    }

    private void HandleMedia(ReadOnlySpan<byte> datagram, byte[] scratch, TimeSpan now)
    {
        var copy = scratch.AsSpan(0, datagram.Length);
        datagram.CopyTo(copy);
        if (RtpDemux.IsRtcp(copy))
        {
            if (Srtp!.UnprotectRtcp(copy, out var rtcpLength) != SrtpResult.Ok) { DroppedMedia++; MediaCounters.UnprotectFailures++; return; }
            MediaCounters.RtcpPacketsReceived++;
            if (_media.Rtp is not { } session) { _events.Enqueue(new MediaPacketReceived(now, true, copy[..rtcpLength].ToArray())); return; }
            session.HandleDatagram(copy[..rtcpLength], now);
            MediaCounters.MalformedTransportCcFeedback = session.MalformedTransportCcFeedback;
            ProcessRtpEvents(now);
            return;
        }
        if (Srtp!.UnprotectRtp(copy, out var n) != SrtpResult.Ok) { DroppedMedia++; MediaCounters.UnprotectFailures++; return; }
        MediaCounters.RtpPacketsReceived++;
        ReadOnlySpan<byte> plain = copy[..n];
        if (!RtpPacket.TryRead(plain, out var rtp)) { DroppedMedia++; return; }
        // Every numbered packet counts for congestion control, whatever its SSRC: media, RTX and padding probes.
        if (_transportCcExtensionId is { } cc && rtp.TryGetExtension(cc, out var twcc) && twcc.Length >= 2)
            TransportCc!.OnPacket(BinaryPrimitives.ReadUInt16BigEndian(twcc), rtp.Ssrc, now);
        var track = _remoteTracks.Find(rtp, out var isRtx, out var learnedSsrc);
        if (learnedSsrc) AddReceiveStream(track!, track!.Ssrc);
        if (track is null)
        {
            MediaCounters.UnknownSsrc++;
            _events.Enqueue(new MediaPacketReceived(now, false, plain.ToArray()));
            return;
        }
        if (isRtx)
        {
            // RFC 4588 section 4: the original sequence number leads the payload; without it the packet is padding
            // (bandwidth probing).
            if (rtp.Payload.Length < 2 || RemoteTrackSet.AssociatedPayloadType(track, rtp.PayloadType) is not { } apt) { MediaCounters.RtxPadding++; return; }
            var k = RetransmissionCache.UnwrapRtx(plain, (byte)apt, track.Ssrc, _rtxScratch ??= new byte[ScratchSize]);
            if (k <= 0) { DroppedMedia++; return; }
            plain = _rtxScratch.AsSpan(0, k);
            if (!RtpPacket.TryRead(plain, out rtp)) { DroppedMedia++; return; }
            track.RetransmissionsReceived++;
        }
        if (track.IsEnded) return;
        var rtpSession = _media.Rtp!;
        rtpSession.HandleDatagram(plain, now);
        track.PacketsReceived++;
        track.BytesReceived += rtp.Payload.Length;
        if (rtpSession.GetReceiveStatistics(track.Ssrc) is { } stats)
        {
            track.PacketsLost = stats.CumulativeLost;
            track.Jitter = stats.Jitter;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(plain.Length);
        plain.CopyTo(buffer);
        track.Deliver(new MediaPacket(buffer, plain.Length, rtp.HeaderLength, rtp.Payload.Length, rtp.PayloadType, rtp.SequenceNumber, rtp.Timestamp, rtp.Ssrc,
            rtp.Marker, isRtx, now));

        if (rtp.Payload.IsEmpty) return; // padding only
        var assembler = AssemblerFor(track, rtp.PayloadType);
        if (assembler is null) return;
        assembler.Push(plain);
        while (assembler.PeekLength() is var length and >= 0)
        {
            var frameBuffer = length > 0 ? ArrayPool<byte>.Shared.Rent(length) : null;
            if (!assembler.TryPollFrame(frameBuffer ?? Span<byte>.Empty, out var info)) break;
            if (info.Complete)
            {
                track.FramesReceived++;
                if (info.KeyFrame) track.KeyFramesReceived++;
            }
            else track.IncompleteFrames++;
            track.Deliver(new MediaFrame(frameBuffer, info.Length, info, rtp.PayloadType, now));
        }
    }

    private static RtpFrameAssembler? AssemblerFor(RemoteTrack track, int payloadType)
    {
        if (track.Assemblers.TryGetValue(payloadType, out var assembler)) return assembler;
        NegotiatedCodec? codec = null;
        foreach (var c in track.Codecs)
            if (c.PayloadType == payloadType) codec = c;
        if (codec is null) return null;
        IRtpDepacketizer? depacketizer = FormatOf(codec.Codec) switch
        {
            PayloadFormat.Opus => new OpusDepacketizer(),
            PayloadFormat.Vp8 => new Vp8Depacketizer(),
            PayloadFormat.H264 => new H264Depacketizer(),
            _ => null,
        };
        if (depacketizer is null) return null;
        assembler = new RtpFrameAssembler(depacketizer);
        track.Assemblers[payloadType] = assembler;
        return assembler;
    }

    /// <summary>Turns the RTP session's events into connection events and track counters (our tracks': MediaSendPath).</summary>
    private void ProcessRtpEvents(TimeSpan now)
    {
        if (_media.Rtp is not { } rtp) return;
        _media.ReportTargetBitrate(now);
        while (rtp.TryPollEvent(out var e))
        {
            if (_media.OnRtpEvent(e, now)) continue;
            switch (e)
            {
                case RoundTripTimeMeasured rtt:
                    MediaRoundTripTime = rtt.RoundTripTime;
                    break;
                case ByeReceived bye when _remoteTracks.TryGetBySsrc(bye.Ssrc, out var remote):
                    _remoteTracks.End(remote, "RTCP BYE" + (bye.Reason is null ? "" : ": " + bye.Reason), now);
                    if (_options.Media.CloseWhenEveryTrackSaidBye && _remoteTracks.AllEnded)
                        Transition(ConnectionState.Closed, new ConnectionReason(ConnectionLayer.Srtp, "RTCP BYE on every track"));
                    break;
            }
        }
    }

    /// <summary>The last round-trip time measured from RTCP LSR/DLSR (RFC 3550 section 6.4.1), if any.</summary>
    public TimeSpan? MediaRoundTripTime { get; private set; }

    /// <summary>Queues RTCP BYE for our streams (RFC 3550 section 6.6) ahead of the DTLS close_notify.</summary>
    private void SendByeNow(string reason) => _media.SendBye(reason, anyRemoteTrack: _remoteTracks.Count > 0);

    /// <summary>Queued SRTP packets (the BYE of a close, which thus precedes the DTLS close_notify), then paced media.</summary>
    private bool TryPollQueuedMedia(Span<byte> destination, out int written) => _media.TryPollQueued(destination, _now, out written);

    /// <summary>Media transmits produced on demand after DTLS: retransmissions and RTCP, then transport-cc feedback, then PLIs.</summary>
    private bool TryPollMediaTransmit(Span<byte> destination, out int written)
    {
        written = 0;
        if (!MediaRunning) return false;
        if (_media.TryPollRtpTransmit(destination, _now, out written, out var taken)) return true;
        if (taken) return false;   // SRTP could not protect it (counted)
        var room = destination[..Math.Min(destination.Length - 64, 1400)];
        if (TransportCc is { } cc && cc.TryWriteFeedback(room, _media.ReportSsrc(), _now, out var feedback))
        {
            if (Srtp!.ProtectRtcp(destination, feedback, out var n) != SrtpResult.Ok) { MediaCounters.ProtectFailures++; return false; }
            MediaCounters.TransportCcFeedbackSent++;
            MediaCounters.RtcpPacketsSent++;
            written = n;
            return true;
        }
        while (_remoteTracks.TakePendingPli() is { } track)
        {
            // Reduced-size RTCP (RFC 5506; a=rtcp-rsize is in every description we make).
            var length = RtcpFeedback.WritePli(destination, _media.ReportSsrc(), track.Ssrc);
            if (length <= 0 || Srtp!.ProtectRtcp(destination, length, out var n) != SrtpResult.Ok) continue;
            track.PlisSent++;
            MediaCounters.PlisSent++;
            MediaCounters.RtcpPacketsSent++;
            written = n;
            return true;
        }
        return false;
    }

    private TimeSpan? MediaTimeout(out MediaTimer which)
    {
        which = MediaTimer.None;
        if (_media.HasQueuedBye) { which = MediaTimer.SendQueue; return _now; }
        // SCTP can be pumped (and so its held data budget refilled, MediaPacer.DataMayGo) only when TryPollSctpDirect
        // runs: with DTLS up and a pair ICE can send on. Without the pair, a held budget woke the owner at one instant
        // for ever (chaos seed 75: 2,000,000 steps at 10.0 s after ICE lost its only pair).
        var paced = HasSrtp
            ? _media.Pacer?.NextSendTime(_now, _sctp is not null && _dtls is { State: Transport.Dtls.DtlsState.Connected } && Ice.CanSendData)
            : null;
        if (paced is not null) which = MediaTimer.Pacer;
        if (!MediaRunning) return paced;
        if (_remoteTracks.AnyPliPending) { which = MediaTimer.KeyFrameRequest; return _now; }
        var due = _media.Rtp!.PollTimeout(out var rtpTimer);
        which = rtpTimer switch
        {
            RtpTimer.Transmit => MediaTimer.RtpTransmit,
            RtpTimer.Report => MediaTimer.RtcpReport,
            RtpTimer.Nack => MediaTimer.Nack,
            _ => MediaTimer.None,
        };
        if (TransportCc?.PollTimeout() is { } feedback && (due is null || feedback < due))
        {
            due = feedback < _now ? _now : feedback;
            which = MediaTimer.TransportCcFeedback;
        }
        if (paced is { } p && (due is null || p < due)) { due = p; which = MediaTimer.Pacer; }
        return due;
    }

    private void HandleMediaTimeout(TimeSpan now)
    {
        if (!MediaRunning) return;
        var rtp = _media.Rtp!;
        if (rtp.PollTimeout() is { } due && due <= now) rtp.HandleTimeout(now);
        ProcessRtpEvents(now);
    }
}

/// <summary>
/// Outgoing SRTP packets waiting for the driver: a ring of fixed-size slots in one preallocated slab, so queuing a
/// packet allocates nothing. Packets are written and protected in place in their slot.
/// </summary>
internal sealed class MediaSendQueue(int capacity, int slotSize)
{
    private readonly byte[] _slab = new byte[capacity * slotSize];
    private readonly int[] _lengths = new int[capacity];
    private int _head;

    public int Count { get; private set; }

    /// <summary>The next free slot (not counted until <see cref="Commit"/>).</summary>
    public bool TryReserve(out Span<byte> slot)
    {
        if (Count == capacity) { slot = default; return false; }
        var index = (_head + Count) % capacity;
        slot = _slab.AsSpan(index * slotSize, slotSize);
        return true;
    }

    public void Commit(int length)
    {
        _lengths[(_head + Count) % capacity] = length;
        Count++;
    }

    /// <summary>
    /// Whether a waiting packet equals <paramref name="packet"/> but for its sequence number (bytes 2-3): the same
    /// retransmission asked for again (an RTX copy differs from the last only in its RTX sequence number).
    /// </summary>
    public bool HoldsSameExceptSequence(ReadOnlySpan<byte> packet)
    {
        if (packet.Length < 12) return false;
        for (var i = 0; i < Count; i++)
        {
            var index = (_head + i) % capacity;
            if (_lengths[index] != packet.Length) continue;
            var held = _slab.AsSpan(index * slotSize, packet.Length);
            if (held[..2].SequenceEqual(packet[..2]) && held[4..].SequenceEqual(packet[4..])) return true;
        }
        return false;
    }

    /// <summary>The length of the packet <see cref="Dequeue"/> gives next.</summary>
    public int PeekLength() => Count == 0 ? 0 : _lengths[_head];

    public int Dequeue(Span<byte> destination)
    {
        var length = _lengths[_head];
        var ok = length <= destination.Length;
        if (ok) _slab.AsSpan(_head * slotSize, length).CopyTo(destination);
        _head = (_head + 1) % capacity;
        Count--;
        return ok ? length : 0;
    }
}
