namespace Transport.Streaming.Hosting;

/// <summary>
/// A token bucket per client key (<see cref="ClientKey"/>) for offers that create sessions: each client may make
/// <see cref="WebRtcServerLimits.OfferBurst"/> offers at once and regains <see cref="WebRtcServerLimits.OffersPerSecond"/>
/// a second. The table is bounded by <see cref="WebRtcServerLimits.MaxRateLimitedClients"/>: when it is full, the
/// clients whose buckets are full again (they would be allowed a whole burst, just as an unknown client) are forgotten,
/// and if none is, the one seen longest ago. Time comes from the <see cref="TimeProvider"/> (virtual in tests).
/// </summary>
public sealed class OfferRateLimiter
{
    private readonly Dictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly double _burst, _perSecond;
    private readonly int _maxClients;

    public OfferRateLimiter(WebRtcServerLimits limits, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(limits);
        limits.Validate();
        _burst = limits.OfferBurst;
        _perSecond = limits.OffersPerSecond;
        _maxClients = limits.MaxRateLimitedClients;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Clients remembered now (at most <see cref="WebRtcServerLimits.MaxRateLimitedClients"/>).</summary>
    public int Count { get { lock (_gate) return _buckets.Count; } }

    /// <summary>Clients forgotten to make room (their buckets were full, or they were seen longest ago).</summary>
    public long Evicted { get; private set; }

    /// <summary>
    /// Takes one offer from <paramref name="client"/>'s bucket: true when allowed; false with the time until the next
    /// one is (the <c>Retry-After</c>). A null client (no address) and a limiter with no rate are always allowed.
    /// </summary>
    public bool TryAcquire(string? client, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        if (client is null || _perSecond <= 0) return true;
        var now = _time.GetTimestamp();
        lock (_gate)
        {
            if (!_buckets.TryGetValue(client, out var bucket))
            {
                if (_buckets.Count >= _maxClients) MakeRoom(now);
                bucket = new Bucket { Tokens = _burst, Updated = now };
                _buckets[client] = bucket;
            }
            else bucket.Tokens = Refilled(bucket, now);
            bucket.Updated = now;
            if (bucket.Tokens >= 1)
            {
                bucket.Tokens -= 1;
                return true;
            }
            retryAfter = TimeSpan.FromSeconds((1 - bucket.Tokens) / _perSecond);
            return false;
        }
    }

    private double Refilled(Bucket bucket, long now) =>
        Math.Min(_burst, bucket.Tokens + _time.GetElapsedTime(bucket.Updated, now).TotalSeconds * _perSecond);

    // Called with the table full: one pass forgets every client whose bucket is full again; failing that, the one
    // seen longest ago. O(n) per new client only while the table is full of active clients.
    private void MakeRoom(long now)
    {
        string? oldest = null;
        var oldestAt = long.MaxValue;
        List<string>? idle = null;
        foreach (var (key, bucket) in _buckets)
        {
            if (Refilled(bucket, now) >= _burst) (idle ??= []).Add(key);
            else if (bucket.Updated < oldestAt) (oldest, oldestAt) = (key, bucket.Updated);
        }
        if (idle is not null)
        {
            foreach (var key in idle) _buckets.Remove(key);
            Evicted += idle.Count;
        }
        else if (oldest is not null)
        {
            _buckets.Remove(oldest);
            Evicted++;
        }
    }

    private sealed class Bucket
    {
        public double Tokens;
        public long Updated;
    }
}
