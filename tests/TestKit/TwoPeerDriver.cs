namespace Transport.TestKit;

/// <summary>
/// The sans-IO verbs of a core as the two-peer driver sees them. Tests wrap a core (ICE agent, DTLS
/// connection, SCTP association, ...) in a small adapter that implements this.
/// </summary>
public interface IVirtualPeer
{
    /// <summary>A datagram arrived at <paramref name="now"/>.</summary>
    void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now);
    /// <summary>The deadline returned by <see cref="PollTimeout"/> passed.</summary>
    void HandleTimeout(TimeSpan now);
    /// <summary>Writes the next datagram to send, if any.</summary>
    bool TryPollTransmit(Span<byte> destination, out int written);
    /// <summary>The next deadline, or null.</summary>
    TimeSpan? PollTimeout();
}

/// <summary>
/// Drives two peers over a <see cref="VirtualLink"/>: each step advances virtual time to the earliest of a
/// datagram due on the link or a peer's deadline, processes it, and forwards whatever the peers want to send.
/// </summary>
public sealed class TwoPeerDriver
{
    private readonly byte[] _buffer;

    public TwoPeerDriver(IVirtualPeer a, IVirtualPeer b, VirtualLink? link = null, ManualClock? clock = null, int maxDatagram = 65536)
    {
        A = a ?? throw new ArgumentNullException(nameof(a));
        B = b ?? throw new ArgumentNullException(nameof(b));
        Link = link ?? new VirtualLink();
        Clock = clock ?? new ManualClock();
        _buffer = new byte[maxDatagram];
    }

    public IVirtualPeer A { get; }
    public IVirtualPeer B { get; }
    public VirtualLink Link { get; }
    public ManualClock Clock { get; }
    public TimeSpan Now => Clock.Now;

    /// <summary>Steps taken so far.</summary>
    public long Steps { get; private set; }

    /// <summary>Moves every pending transmit of both peers onto the link at the current time.</summary>
    public void Flush()
    {
        Drain(A, LinkEnd.A);
        Drain(B, LinkEnd.B);
    }

    private void Drain(IVirtualPeer peer, LinkEnd end)
    {
        // A peer that never stops transmitting is a bug in the peer; bound it so the test fails instead of hanging.
        for (var i = 0; i < 100_000; i++)
        {
            if (!peer.TryPollTransmit(_buffer, out var n)) return;
            Link.Send(end, _buffer.AsSpan(0, n), Now);
        }
        throw new InvalidOperationException($"Peer {end} produced more than 100000 datagrams in one instant.");
    }

    /// <summary>
    /// One step: flush transmits, then advance to the earliest event (datagram or deadline) and handle
    /// everything due at that instant. Returns false when nothing is pending at all (idle), or when the
    /// next event lies after <paramref name="until"/> (time then moves to <paramref name="until"/>).
    /// </summary>
    public bool Progress(TimeSpan? until = null)
    {
        Flush();
        var next = Earliest(Link.NextDelivery, Earliest(A.PollTimeout(), B.PollTimeout()));
        if (next is null) { if (until is { } u && u > Now) Clock.AdvanceTo(u); return false; }
        if (until is { } limit && next > limit) { if (limit > Now) Clock.AdvanceTo(limit); return false; }
        if (next > Now) Clock.AdvanceTo(next.Value);
        Steps++;
        var now = Now;
        while (Link.TryReceive(LinkEnd.A, now, out var d)) A.HandleDatagram(d.Data, now);
        while (Link.TryReceive(LinkEnd.B, now, out var d)) B.HandleDatagram(d.Data, now);
        if (A.PollTimeout() is { } ta && ta <= now) A.HandleTimeout(now);
        if (B.PollTimeout() is { } tb && tb <= now) B.HandleTimeout(now);
        Flush();
        return true;
    }

    /// <summary>
    /// Steps until <paramref name="condition"/> holds (true) or virtual time passes <paramref name="timeLimit"/>
    /// from now, or nothing is pending any more (false). Also bounded by <paramref name="maxSteps"/> so a
    /// peer with a zero-length timer loop fails the test instead of hanging it.
    /// </summary>
    public bool RunUntil(Func<bool> condition, TimeSpan timeLimit, long maxSteps = 10_000_000)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var deadline = Now + timeLimit;
        for (long i = 0; i < maxSteps; i++)
        {
            if (condition()) return true;
            if (!Progress(deadline)) return condition();
        }
        throw new InvalidOperationException($"No result after {maxSteps} steps at virtual time {Now}.");
    }

    /// <summary>Steps until virtual time reaches <paramref name="time"/> (or nothing is pending).</summary>
    public void RunFor(TimeSpan duration)
    {
        var deadline = Now + duration;
        RunUntil(() => Now >= deadline, duration);
        if (Now < deadline) Clock.AdvanceTo(deadline);
    }

    private static TimeSpan? Earliest(TimeSpan? x, TimeSpan? y) =>
        x is null ? y : y is null ? x : (x < y ? x : y);
}
