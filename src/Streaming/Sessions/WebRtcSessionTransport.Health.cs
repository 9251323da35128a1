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
    private long _pingId, _rttTicks = -1;
    // The last pings' ids and send times (slot id % length): a pong answers any of them, so a round trip longer than
    // the probe interval (a queue on the path) is still measured instead of every late pong being ignored.
    private readonly long[] _pingIds = new long[8], _pingSentAts = new long[8];
    // SCTP loss over the last 10 s (the health loop's only), published for GetHealth as the double's bits (-1: none).
    private readonly SlidingLoss _sctpLoss = new(TimeSpan.FromSeconds(10), minimumSent: 10);
    private long _sctpLossBits = -1;

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
            SctpLoss(),
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

    // Retransmitted SCTP DATA chunks over DATA chunks sent in the last 10 s (SlidingLoss), or null.
    private double? SctpLoss()
    {
        var bits = Interlocked.Read(ref _sctpLossBits);
        return bits < 0 ? null : BitConverter.Int64BitsToDouble(bits);
    }

    private void SampleLoss(PeerConnectionHealth health, long now)
    {
        var fraction = _sctpLoss.Add(_time.GetElapsedTime(_created, now), health.SctpDataChunksSent, health.SctpRetransmissions);
        Interlocked.Exchange(ref _sctpLossBits, fraction is { } f ? BitConverter.DoubleToInt64Bits(f) : -1);
    }

    private void Publish(PeerConnectionHealth health)
    {
        Volatile.Write(ref _lastHealth, health);
        var now = _time.GetTimestamp();
        SampleLoss(health, now);
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
        if (id <= 0) return;
        var slot = (int)(id % _pingIds.Length);
        var sentAt = Interlocked.Read(ref _pingSentAts[slot]);
        if (id != Interlocked.Read(ref _pingIds[slot]) || sentAt == 0) return;
        Interlocked.Exchange(ref _pingIds[slot], 0); // one pong per ping
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
                    var slot = (int)(id % _pingIds.Length);
                    Interlocked.Exchange(ref _pingSentAts[slot], _time.GetTimestamp());
                    Interlocked.Exchange(ref _pingIds[slot], id);
                    try
                    {
                        await _pc.SendAsync(_control.Task.Result, Encoding.UTF8.GetBytes($"{{\"type\":\"ping\",\"id\":{id}}}"),
                            binary: false, token).ConfigureAwait(false);
                    }
                    catch (Exception e) when (e is TransportNotConnectedException or Transport.Sctp.DataChannelNotOpenException or ObjectDisposedException) { }
                }
            }
        }
        catch (OperationCanceledException) { }
    }
}

/// <summary>
/// A loss fraction over a sliding window from cumulative counters (sent, of which retransmitted): the retransmitted
/// over the sent between the oldest sample still in the window and the newest; null when fewer than the minimum were
/// sent in it (a lost ping or two is no loss rate). Windowed so that a grade comes back once the path does: a
/// fraction since the start keeps a past loss for the rest of the session. Not thread-safe.
/// </summary>
internal sealed class SlidingLoss(TimeSpan window, long minimumSent)
{
    private readonly Queue<(TimeSpan At, long Sent, long Retransmitted)> _samples = new();

    /// <summary>Adds the counters at <paramref name="at"/> (non-decreasing) and returns the fraction over the window, or null.</summary>
    public double? Add(TimeSpan at, long sent, long retransmitted)
    {
        _samples.Enqueue((at, sent, retransmitted));
        while (_samples.Count > 1 && at - _samples.Peek().At > window) _samples.Dequeue();
        var (_, sent0, retransmitted0) = _samples.Peek();
        var delta = sent - sent0;
        return delta >= minimumSent && delta > 0 ? Math.Clamp((double)(retransmitted - retransmitted0) / delta, 0, 1) : null;
    }
}
