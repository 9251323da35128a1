using System.Text;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Sessions;

/// <summary>The health half: a snapshot refreshed from the peer connection, bitrates, and the control-channel RTT probe.</summary>
public sealed partial class WebRtcSessionTransport
{
    private readonly long _created;
    private long _lastSent, _bytesIn, _bytesOut, _disconnectedSince;
    private long _mediaBytesOut, _mediaBitrateOut, _rateMediaBytesOut;
    private PeerConnectionHealth? _lastHealth;
    private long _rateAt, _rateBytesIn, _rateBytesOut, _bitrateIn, _bitrateOut;
    private long _pingId, _pingSentAt, _rttTicks = -1;

    /// <summary>The last snapshot read from the peer connection (refreshed every <see cref="WebRtcTransportOptions.HealthRefreshInterval"/>).</summary>
    public PeerConnectionHealth? PeerConnectionHealth => Volatile.Read(ref _lastHealth);

    public TransportHealth GetHealth()
    {
        var h = Volatile.Read(ref _lastHealth);
        var state = _ended.Task.IsCompleted ? "closed" : _pc.State.ToString().ToLowerInvariant(); // live, not the last snapshot
        var rtt = Interlocked.Read(ref _rttTicks);
        var since = Interlocked.Read(ref _disconnectedSince);
        return new TransportHealth(
            state,
            h?.SelectedCandidatePair,
            rtt >= 0 ? TimeSpan.FromTicks(rtt) : h?.IceRoundTripTime,   // the control channel's ping once answered, else ICE's
            h?.ConsentAge,
            h?.SinceLastReceived,
            _time.GetElapsedTime(Interlocked.Read(ref _lastSent)),
            h?.SctpRetransmissionFraction,
            Interlocked.Read(ref _bitrateIn),
            Interlocked.Read(ref _bitrateOut),
            since != 0 ? _time.GetElapsedTime(since) : null)
        {
            PairNominated = h?.PairNominated ?? false,
            StateReason = _pc.Reason?.ToString(),
            Jitter = WorstJitter(),
            MediaLossFraction = h?.MediaLossFraction,
            MediaDeliveryRate = h?.MediaDeliveryRate,
            MediaBitrateOut = Interlocked.Read(ref _mediaBitrateOut),
            SendBacklogBytes = h?.SctpOutboundBuffered ?? 0,
        };
    }

    private void Publish(PeerConnectionHealth health)
    {
        Volatile.Write(ref _lastHealth, health);
        var now = _time.GetTimestamp();
        var from = Interlocked.Read(ref _rateAt);
        if (from == 0) from = _created;
        var seconds = _time.GetElapsedTime(from, now).TotalSeconds;
        if (seconds < 0.5) return; // bitrates over windows of at least half a second
        var bytesIn = Interlocked.Read(ref _bytesIn);
        var bytesOut = Interlocked.Read(ref _bytesOut);
        Interlocked.Exchange(ref _bitrateIn, (long)((bytesIn - Interlocked.Exchange(ref _rateBytesIn, bytesIn)) * 8 / seconds));
        Interlocked.Exchange(ref _bitrateOut, (long)((bytesOut - Interlocked.Exchange(ref _rateBytesOut, bytesOut)) * 8 / seconds));
        var mediaOut = Interlocked.Read(ref _mediaBytesOut);
        Interlocked.Exchange(ref _mediaBitrateOut, (long)((mediaOut - Interlocked.Exchange(ref _rateMediaBytesOut, mediaOut)) * 8 / seconds));
        Interlocked.Exchange(ref _rateAt, now);
    }

    private void OnPong(long id)
    {
        var sentAt = Interlocked.Read(ref _pingSentAt);
        if (id != Interlocked.Read(ref _pingId) || sentAt == 0) return;
        Interlocked.Exchange(ref _rttTicks, _time.GetElapsedTime(sentAt).Ticks);
    }

    private async Task HealthLoopAsync()
    {
        var token = _stop.Token;
        long lastProbe = 0;
        try
        {
            using var timer = new PeriodicTimer(_options.HealthRefreshInterval, _time);
            while (await timer.WaitForNextTickAsync(token).ConfigureAwait(false))
            {
                if (_ended.Task.IsCompleted) return;
                try { Publish(await _pc.GetHealthAsync(token).ConfigureAwait(false)); }
                catch (ObjectDisposedException) { return; }
                if (_options.RoundTripProbeInterval is { } every && _control.Task.IsCompletedSuccessfully &&
                    (lastProbe == 0 || _time.GetElapsedTime(lastProbe) >= every))
                {
                    lastProbe = _time.GetTimestamp();
                    var id = Interlocked.Increment(ref _pingId);
                    Interlocked.Exchange(ref _pingSentAt, _time.GetTimestamp());
                    try { await _pc.SendAsync(_control.Task.Result, Encoding.UTF8.GetBytes($"{{\"type\":\"ping\",\"id\":{id}}}"), binary: false, token).ConfigureAwait(false); }
                    catch (Exception e) when (e is TransportNotConnectedException or Transport.Sctp.DataChannelNotOpenException or ObjectDisposedException) { }
                }
            }
        }
        catch (OperationCanceledException) { }
    }
}
