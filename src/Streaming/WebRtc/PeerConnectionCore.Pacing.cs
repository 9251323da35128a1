using System.Buffers.Binary;
using Transport.Rtp;
using Transport.Rtp.Congestion;
using Transport.Rtp.Srtp;
using Transport.Streaming.Jsep;

namespace Transport.Streaming.WebRtc;

// Send-side congestion control: the bandwidth estimator (src/Rtp/Congestion) reads the peer's transport-cc
// feedback through the TransportCcSender, and MediaPacer lets our media out at a multiple of its target. Packets are
// queued plain and numbered (transport-wide sequence number) and protected when they leave, so the numbers and the
// send times the estimator works on are those of the wire.
public sealed partial class PeerConnectionCore
{
    private MediaPacer? _pacer;
    // Made with the estimator: the target the application was told, and the NACK resend interval.
    private TargetBitrateReport? _targetReport;

    /// <summary>
    /// The send-side bandwidth estimator, once an exchange negotiated transport-cc in the one-byte form and
    /// <see cref="MediaOptions.Congestion"/> is set: its target is what our media should be sent at.
    /// </summary>
    public SendSideBandwidthEstimator? BandwidthEstimator { get; private set; }

    /// <summary>
    /// What our media should be sent at now, in bits per second (set the encoder from it; <see cref="TargetBitrateChanged"/>
    /// tells its changes), or null without an estimator: the estimate, less the rate it takes to send what waits in the
    /// pacer within a second (libwebrtc's encoder pushback: after a step down of the path the backlog drains instead of
    /// the encoder adding to it), never below the minimum.
    /// </summary>
    public long? TargetBitrate => BandwidthEstimator is { } e && _targetReport is { } report ? report.Target(e.TargetBitrate, _pacer?.QueuedBytes ?? 0) : null;

    /// <summary>The pacer (diagnostics: its counters), once media was sent.</summary>
    internal MediaPacer? Pacer_ => _pacer;

    /// <summary>Media packets waiting in the pacer.</summary>
    public int PacedPackets => _pacer?.Count ?? 0;

    private MediaPacer Pacer() => _pacer ??= new MediaPacer(_options.Media.Congestion ?? new CongestionControlOptions(),
        _options.Media.SendQueuePackets, _options.Media.MaxPayloadSize + 128);

    /// <summary>
    /// Whether the pacer holds more than the target lets out in MaxPacerQueueTime (a new video frame is then refused).
    /// Not before the receiver's feedback measured the path (<see cref="SendSideBandwidthEstimator.AckedBitrate"/>): until
    /// then the target is only the configured start rate, a guess, so frames are paced at it but never refused for it
    /// (a sender starting above it, e.g. 1 Mbit/s against the 300 kbit/s default, loses no frame while probing finds the
    /// path's rate).
    /// </summary>
    private bool PacerHoldsTooMuch() =>
        BandwidthEstimator is { AckedBitrate: not null } e && _pacer is { } p && p.QueuedBytes * 8 > e.TargetBitrate * e.Options.MaxPacerQueueTime.TotalSeconds;

    /// <summary>Called where the transport-cc sender is made: the estimator reads its feedback, the pacer follows it.</summary>
    private void AttachEstimator()
    {
        if (_options.Media.Congestion is not { } options || TransportCcSender is not { } sender || BandwidthEstimator is not null) return;
        BandwidthEstimator = new SendSideBandwidthEstimator(options);
        sender.Estimator = BandwidthEstimator;
        Pacer().Estimator = BandwidthEstimator;
        _pacer!.Feedback = sender;
        _targetReport = new TargetBitrateReport(options.MinBitrate, options.MaxBitrate);
        _events.Enqueue(new TargetBitrateChanged(_now, _targetReport.Start(BandwidthEstimator.TargetBitrate)));
    }

    /// <summary>After feedback: a target that moved is an event.</summary>
    private void ReportTargetBitrate(TimeSpan now)
    {
        if (BandwidthEstimator is not { } e || _targetReport is not { } report) return;
        // A packet is resent at most once per round trip (TargetBitrateReport.ResendInterval).
        var changed = report.OnFeedback(e.TargetBitrate, e.RoundTripTime, _pacer?.QueuedBytes ?? 0, out var bitrate);
        if (_rtp is not null) _rtp.MinRetransmitInterval = report.ResendInterval;
        if (changed) _events.Enqueue(new TargetBitrateChanged(now, bitrate));
    }

    /// <summary>The next paced packet, numbered and protected into <paramref name="destination"/>.</summary>
    private bool TryPollPaced(Span<byte> destination, out int written)
    {
        written = 0;
        if (_pacer is not { } pacer || !HasSrtp) return false;
        for (var attempt = 0; attempt < 64; attempt++)
        {
            if (!pacer.TryPoll(_now, destination, out var length, out var kind)) return false;
            if (kind == PacedKind.Padding)
            {
                length = WritePadding(destination);
                if (length <= 0) { pacer.AbandonProbe(); continue; }
            }
            var cluster = pacer.ProbeCluster;
            if (kind == PacedKind.Retransmission)
            {
                _rtp?.RenumberRtx(destination[..length]);   // in the order it leaves, after the padding and retransmissions that went before it
                _rtp?.OnRetransmissionSent(destination[..length], _now);   // read before SRTP
            }
            if (!TryFinishRtp(destination, length, cluster, out written)) continue;
            pacer.OnSent(written);
            if (kind == PacedKind.Retransmission) CountRetransmission(destination);
            return true;
        }
        return false;
    }

    /// <summary>Numbers (transport-wide, at its send time) and protects a plain RTP packet in place.</summary>
    private bool TryFinishRtp(Span<byte> destination, int length, int probeCluster, out int written)
    {
        written = 0;
        if (NumberingId is { } numbering && HasOurTransportCcElement(destination[..length], numbering))
            BinaryPrimitives.WriteUInt16BigEndian(destination[TransportCcOffset..], TransportCcSender!.Number(length, _now, probeCluster));
        if (Srtp!.ProtectRtp(destination, length, out var n) != SrtpResult.Ok) { MediaCounters.ProtectFailures++; return false; }
        written = n;
        return true;
    }

    private void CountRetransmission(ReadOnlySpan<byte> packet)
    {
        MediaCounters.Retransmissions++;
        var ssrc = BinaryPrimitives.ReadUInt32BigEndian(packet[8..]);
        if (_localBySsrc.TryGetValue(ssrc, out var local)) local.Retransmissions++;
    }

    /// <summary>
    /// A retransmission that came out of the RTP session while the pacer holds it back: queued (plain), or dropped
    /// (counted in <see cref="MediaPacer.RetransmissionsDropped"/>) when the pacer holds enough of them already. It
    /// never goes around the pacer: after a partition the receiver asks for everything it missed at once, and what
    /// did not fit used to leave unpaced, a debt that held the pacer closed for seconds.
    /// </summary>
    private bool HoldRetransmission(ReadOnlySpan<byte> plain)
    {
        if (_pacer is not { Estimator: not null } pacer || pacer.RetransmissionMayGo(_now)) return false;
        pacer.TryQueueRetransmission(plain);
        return true;
    }

    // Padding for a probe (RFC 3550 5.1 P bit, on the RTX stream of a video track as libwebrtc sends it, RFC 4588):
    // 255 bytes of padding after our header, numbered like media so the feedback reports it.
    private int WritePadding(Span<byte> destination)
    {
        if (_rtp is null || NumberingId is not { } numbering) return 0;
        foreach (var track in _localTracks)
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
            MediaCounters.PaddingPacketsSent++;
            return Header + Padding;
        }
        return 0;
    }
}

/// <summary>
/// The send-side bandwidth estimate moved (by more than 2 %, or to a bound; and once when the estimator starts):
/// <paramref name="BitsPerSecond"/> is what our media should now be sent at.
/// </summary>
public sealed record TargetBitrateChanged(TimeSpan At, long BitsPerSecond) : PeerConnectionEvent(At);
