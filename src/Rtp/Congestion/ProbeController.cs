namespace Transport.Rtp.Congestion;

/// <summary>
/// Decides when to probe and measures what each probe found (libwebrtc's ProbeController and ProbeBitrateEstimator):
/// at start two clusters at 3x and 6x the start rate, then twice the result while a probe finds at least 70 % of what
/// it sent at; after an application-limited period of a second or more, and when the rate controller lost its link
/// capacity estimate (the path carries clearly more than at the last overuses), one at twice the estimate. A probe's
/// result is the lower of its send and receive rates over the cluster (less when the receiver saw a queue build).
/// </summary>
public sealed class ProbeController
{
    private const int MinPackets = 5;
    private const long ClusterMicros = 15_000;
    private const double FurtherRatio = 0.7;
    private const int Slots = 16;

    private readonly CongestionControlOptions _options;
    private readonly Queue<ProbeCluster> _pending = new(4);
    private readonly Cluster[] _clusters = new Cluster[Slots];
    private int _nextId;
    private bool _started;
    private long _lastProbeAt = long.MinValue / 2;
    private long _furtherTarget;   // the bitrate of the last exponential probe (0: none waits for a result)

    private struct Cluster
    {
        public int Id;
        public long Bitrate;
        public long FirstSend, LastSend, FirstArrival, LastArrival;
        public int LastSendSize, FirstArrivalSize, Received, ReceivedBytes, SentBytesAll;
        public bool Reported;
    }

    /// <summary>Creates a controller with the estimator's options.</summary>
    public ProbeController(CongestionControlOptions options)
    {
        _options = options;
        for (int i = 0; i < Slots; i++) _clusters[i].Id = -1;
    }

    /// <summary>Probes sent so far.</summary>
    public int ProbesStarted { get; private set; }

    /// <summary>The last probe result in bits per second, or null.</summary>
    public double? LastResult { get; private set; }

    /// <summary>The send and receive rates of the last cluster that had enough packets (diagnostics).</summary>
    public double LastSendRate { get; private set; }

    /// <summary>See <see cref="LastSendRate"/>.</summary>
    public double LastReceiveRate { get; private set; }

    /// <summary>Times a cluster's packets arrived more than twice as fast as they left (no result from them yet).</summary>
    public long Implausible { get; private set; }

    /// <summary>Whether a probe waits for the pacer.</summary>
    public bool HasPending => _pending.Count > 0;

    /// <summary>Starts the probes at start (once, when the pacer first can send).</summary>
    public void OnStart(double estimate, long nowMicros)
    {
        if (_started) return;
        _started = true;
        if (!_options.ProbeAtStart) return;
        Schedule(3 * estimate, nowMicros);
        _furtherTarget = Schedule(6 * estimate, nowMicros);
    }

    /// <summary>An application-limited region of <paramref name="durationMicros"/> just ended.</summary>
    public void OnAlrEnded(double estimate, long durationMicros, long nowMicros)
    {
        if (_options.ProbeAfterApplicationLimited && durationMicros >= 1_000_000 && _pending.Count == 0)
            _furtherTarget = Schedule(2 * estimate, nowMicros);
    }

    /// <summary>
    /// An outage ended (feedback again after none for a second or more): probe at twice the estimate, then further
    /// while probes succeed, so the estimate finds the path again instead of creeping back from where the outage's
    /// losses left it.
    /// </summary>
    public void OnOutageEnded(double estimate, long nowMicros)
    {
        if (_pending.Count == 0 && estimate < _options.MaxBitrate) _furtherTarget = Schedule(2 * estimate, nowMicros);
    }

    /// <summary>The rate controller lost its capacity estimate while growing: probe at twice the estimate (at most every 5 s).</summary>
    public void OnCapacityUnknown(double estimate, long nowMicros)
    {
        if (_pending.Count == 0 && nowMicros - _lastProbeAt >= 5_000_000 && estimate < _options.MaxBitrate)
            _furtherTarget = Schedule(2 * estimate, nowMicros);
    }

    /// <summary>The next probe for the pacer, if one waits.</summary>
    public bool TryTake(out ProbeCluster cluster) => _pending.TryDequeue(out cluster);

    private long Schedule(double bitrate, long nowMicros)
    {
        long rate = (long)Math.Min(bitrate, _options.MaxBitrate);
        if (rate <= 0) return 0;
        int id = _nextId++ & 0x3FFFFFFF;
        int bytes = (int)Math.Max(rate * ClusterMicros / 8_000_000, 1000);
        var cluster = new ProbeCluster(id, rate, bytes, MinPackets);
        _pending.Enqueue(cluster);
        ref Cluster c = ref _clusters[id % Slots];
        c = default;
        c.Id = id;
        c.Bitrate = rate;
        c.FirstSend = c.FirstArrival = long.MaxValue;
        c.LastSend = c.LastArrival = long.MinValue;
        _lastProbeAt = nowMicros;
        ProbesStarted++;
        return rate;
    }

    /// <summary>
    /// Takes one reported packet of probe cluster <see cref="PacketResult.ProbeCluster"/>; returns a result (bit/s)
    /// once the cluster has enough packets, at most once per cluster.
    /// </summary>
    public double? OnPacket(in PacketResult p, long nowMicros)
    {
        ref Cluster c = ref _clusters[p.ProbeCluster % Slots];
        if (c.Id != p.ProbeCluster || c.Reported) return null;
        c.SentBytesAll += p.Size;
        if (p.SendMicros < c.FirstSend) c.FirstSend = p.SendMicros;
        if (p.SendMicros >= c.LastSend) { c.LastSend = p.SendMicros; c.LastSendSize = p.Size; }
        if (!p.Received) return null;
        c.Received++;
        c.ReceivedBytes += p.Size;
        if (p.ArrivalMicros < c.FirstArrival) { c.FirstArrival = p.ArrivalMicros; c.FirstArrivalSize = p.Size; }
        if (p.ArrivalMicros > c.LastArrival) c.LastArrival = p.ArrivalMicros;
        if (c.Received < MinPackets * 4 / 5 || c.ReceivedBytes < (int)(c.Bitrate * ClusterMicros / 8_000_000 * 0.8)) return null;

        long sendInterval = c.LastSend - c.FirstSend, receiveInterval = c.LastArrival - c.FirstArrival;
        if (sendInterval <= 0 || sendInterval > 1_000_000 || receiveInterval <= 0 || receiveInterval > 1_000_000) return null;
        double sendRate = (c.SentBytesAll - c.LastSendSize) * 8e6 / sendInterval;
        double receiveRate = (c.ReceivedBytes - c.FirstArrivalSize) * 8e6 / receiveInterval;
        LastSendRate = sendRate;
        LastReceiveRate = receiveRate;
        if (receiveRate > 2 * sendRate)
        {
            Implausible++;
            return null;
        }
        c.Reported = true;
        double result = Math.Min(sendRate, receiveRate);
        // The receiver saw the packets spread out: a queue built up, the path is saturated below the send rate.
        if (receiveRate < 0.9 * sendRate) result = 0.95 * receiveRate;
        LastResult = result;
        // Probe further (twice the result) while probes keep finding at least 70 % of their rate.
        if (c.Bitrate == _furtherTarget)
        {
            _furtherTarget = 0;
            if (result >= FurtherRatio * c.Bitrate && c.Bitrate < _options.MaxBitrate && _pending.Count == 0)
                _furtherTarget = Schedule(2 * result, nowMicros);
        }
        return result;
    }
}
