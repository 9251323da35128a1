using Microsoft.Extensions.Logging;

namespace Transport.Streaming.WebRtc;

// What a connection logs, at Information unless it failed: the state changes with their reasons, and the milestones on
// the way up (first check, valid and selected pair, DTLS started and finished with the role and suite, SCTP up, every
// data channel and remote track) with their times since the offer, so that a connection that stalls shows where
// without a packet capture. Category Transport.Streaming.WebRtc.PeerConnection (docs/sessions.md, Logging).
public sealed partial class PeerConnection
{
    private void LogProgress(PeerConnectionEvent e)
    {
        if (!_logger.IsEnabled(LogLevel.Information) && e is not ConnectionStateChanged { State: ConnectionState.Failed }) return;
        switch (e)
        {
            case ConnectionStateChanged { State: ConnectionState.Failed } f:
                LogFailed(_logger, Name, f.Previous, f.Reason.ToString());
                break;
            case ConnectionStateChanged s:
                LogState(_logger, Name, s.Previous, s.State, s.Reason.ToString());
                break;
            case ConnectionMilestoneReached m:
                LogMilestone(_logger, Name, m.Milestone, m.SinceOffer.TotalMilliseconds, m.Detail);
                break;
            case DataChannelOpened o:
                LogChannelOpened(_logger, Name, o.Channel.Label, o.Channel.Id, SinceOffer(o.At));
                break;
            case RemoteTrackAdded t:
                LogTrackAdded(_logger, Name, t.Track.Kind, t.Track.Mid, SinceOffer(t.At));
                break;
        }
    }

    // At Trace: which layer's which timer woke the connection ("Sctp.T3Rtx"); nothing is formatted when Trace is off.
    private void LogTimerFired(PeerConnectionDeadline timer)
    {
        if (_logger.IsEnabled(LogLevel.Trace)) LogTimer(_logger, Name, timer.ToString());
    }

    [LoggerMessage(Level = LogLevel.Trace, Message = "Peer connection {Name}: timer {Timer} fired")]
    private static partial void LogTimer(ILogger logger, string name, string timer);

    // Called on the connection's thread (from the runner's AfterInput), where the core may be read.
    private double SinceOffer(TimeSpan at) => _core.OfferAt is { } offer && at > offer ? (at - offer).TotalMilliseconds : 0;

    [LoggerMessage(Level = LogLevel.Information, Message = "Peer connection {Name}: {Previous} -> {State}: {Reason}")]
    private static partial void LogState(ILogger logger, string name, ConnectionState previous, ConnectionState state, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Peer connection {Name} failed (was {Previous}): {Reason}")]
    private static partial void LogFailed(ILogger logger, string name, ConnectionState previous, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Peer connection {Name}: {Milestone} at {SinceOfferMs:0.0} ms since the offer: {Detail}")]
    private static partial void LogMilestone(ILogger logger, string name, ConnectionMilestone milestone, double sinceOfferMs, string detail);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Peer connection {Name}: DataChannelOpened at {SinceOfferMs:0.0} ms since the offer: '{Label}' on stream {StreamId}")]
    private static partial void LogChannelOpened(ILogger logger, string name, string label, ushort streamId, double sinceOfferMs);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Peer connection {Name}: RemoteTrackAdded at {SinceOfferMs:0.0} ms since the offer: {Kind} on mid {Mid}")]
    private static partial void LogTrackAdded(ILogger logger, string name, Jsep.MediaKind kind, string mid, double sinceOfferMs);
}
