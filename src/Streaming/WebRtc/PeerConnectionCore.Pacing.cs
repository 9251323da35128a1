using Transport.Rtp.Congestion;

namespace Transport.Streaming.WebRtc;

// Send-side congestion control, as MediaSendPath runs it: the bandwidth estimator (src/Rtp/Congestion) reads the peer's
// transport-cc feedback through the TransportCcSender, and MediaPacer lets our media out at a multiple of its target.
// Packets are queued plain and numbered (transport-wide sequence number) and protected when they leave, so the numbers
// and the send times the estimator works on are those of the wire.
public sealed partial class PeerConnectionCore
{
    /// <summary>
    /// The send-side bandwidth estimator, once an exchange negotiated transport-cc in the one-byte form and
    /// <see cref="MediaOptions.Congestion"/> is set: its target is what our media should be sent at.
    /// </summary>
    public SendSideBandwidthEstimator? BandwidthEstimator => _media.BandwidthEstimator;

    /// <summary>
    /// What our media should be sent at now, in bits per second (set the encoder from it; <see cref="TargetBitrateChanged"/>
    /// tells its changes), or null without an estimator: the estimate, less the rate it takes to send what waits in the
    /// pacer within a second (libwebrtc's encoder pushback: after a step down of the path the backlog drains instead of
    /// the encoder adding to it), never below the minimum.
    /// </summary>
    public long? TargetBitrate => _media.TargetBitrate;

    /// <summary>The pacer (diagnostics: its counters), once media was sent.</summary>
    internal MediaPacer? Pacer_ => _media.Pacer;

    /// <summary>Media packets waiting in the pacer.</summary>
    public int PacedPackets => _media.Pacer?.Count ?? 0;
}

/// <summary>
/// The send-side bandwidth estimate moved (by more than 2 %, or to a bound; and once when the estimator starts):
/// <paramref name="BitsPerSecond"/> is what our media should now be sent at.
/// </summary>
public sealed record TargetBitrateChanged(TimeSpan At, long BitsPerSecond) : PeerConnectionEvent(At);
