using System.Net;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.Chaos;

/// <summary>
/// Two peer connection cores on a <see cref="VirtualLink"/>, as <see cref="TwoPeerDriver"/> runs them, plus a NAT in
/// front of A: until <see cref="RebindAt"/> B sees A as <see cref="APublic"/>, from then on as <see cref="APublicAfter"/>
/// (what A sent before still arrives from the old address); B's datagrams to the old address, and those still in
/// flight to it, are lost from then on (the mapping is gone). A sees nothing of it: its own address never changes.
/// </summary>
internal sealed class ChaosNetwork
{
    public static readonly IPEndPoint ALocal = new(IPAddress.Parse("10.0.0.1"), 1000);
    public static readonly IPEndPoint APublic = new(IPAddress.Parse("198.51.100.1"), 40000);
    public static readonly IPEndPoint APublicAfter = new(IPAddress.Parse("198.51.100.1"), 40001);
    public static readonly IPEndPoint BLocal = new(IPAddress.Parse("203.0.113.2"), 2000);

    private readonly byte[] _buffer = new byte[65536];

    public ChaosNetwork(PeerConnectionCore a, PeerConnectionCore b, VirtualLink link)
    {
        A = a;
        B = b;
        Link = link;
    }

    public PeerConnectionCore A { get; }
    public PeerConnectionCore B { get; }
    public VirtualLink Link { get; }
    public ManualClock Clock { get; } = new();
    public TimeSpan Now => Clock.Now;

    /// <summary>When A's NAT rebinds (null: never).</summary>
    public TimeSpan? RebindAt { get; set; }

    /// <summary>Datagrams the NAT dropped (B to A's old mapping after the rebinding).</summary>
    public int NatDropped { get; private set; }

    /// <summary>Called after every input to a core, so the test sees events as they happen.</summary>
    public Action? AfterStep { get; set; }

    private bool Rebound(TimeSpan t) => RebindAt is { } at && t >= at;

    /// <summary>A's address as B sees it, for a datagram A sent at <paramref name="sentAt"/>.</summary>
    public IPEndPoint APublicAt(TimeSpan sentAt) => Rebound(sentAt) ? APublicAfter : APublic;

    public void Flush()
    {
        for (var i = 0; i < 100_000; i++)
        {
            if (!A.TryPollTransmit(_buffer, out var n, out _, out _)) break;
            Link.Send(LinkEnd.A, _buffer.AsSpan(0, n), Now);
        }
        for (var i = 0; i < 100_000; i++)
        {
            if (!B.TryPollTransmit(_buffer, out var n, out _, out var to)) break;
            // The NAT forwards only what goes to A's current mapping.
            if (!to.Equals(APublicAt(Now))) { NatDropped++; continue; }
            Link.Send(LinkEnd.B, _buffer.AsSpan(0, n), Now);
        }
    }

    /// <summary>One step of <see cref="TwoPeerDriver.Progress"/>: false when nothing is due by <paramref name="until"/> (time moves there).</summary>
    public bool Progress(TimeSpan until)
    {
        Flush();
        var next = Earliest(Link.NextDelivery, Earliest(A.PollTimeout(), B.PollTimeout()));
        if (next is null || next > until) { if (until > Now) Clock.AdvanceTo(until); return false; }
        if (next > Now) Clock.AdvanceTo(next.Value);
        var now = Now;
        while (Link.TryReceive(LinkEnd.A, now, out var d))
        {
            // Sent by B to the old mapping, arriving after it was gone.
            if (Rebound(now) && !Rebound(d.SentAt)) { NatDropped++; continue; }
            A.HandleDatagram(d.Data, ALocal, BLocal, now);
        }
        while (Link.TryReceive(LinkEnd.B, now, out var d)) B.HandleDatagram(d.Data, BLocal, APublicAt(d.SentAt), now);
        if (A.PollTimeout() is { } ta && ta <= now) A.HandleTimeout(now);
        if (B.PollTimeout() is { } tb && tb <= now) B.HandleTimeout(now);
        AfterStep?.Invoke();
        Flush();
        return true;
    }

    /// <summary>Runs until <paramref name="time"/>; bounded in steps so a zero-length timer loop fails instead of hanging.</summary>
    public void RunTo(TimeSpan time)
    {
        for (var i = 0; i < 2_000_000; i++)
            if (!Progress(time)) return;
        throw new InvalidOperationException($"More than 2000000 steps before {time} (now {Now}): a timer that does not move on? A {Stuck(A)}; B " +
            $"{Stuck(B)}; link next {Link.NextDelivery}");
    }

    // Which layer's timer is due, and the pacer's state (a timer that does not move on).
    private string Stuck(PeerConnectionCore c) =>
        $"timer {c.PollTimeout(out var which)} ({which}), state {c.State}, ice {c.Ice.State} can-send {c.Ice.CanSendData}, dtls {c.Dtls?.State}, sctp "
        + $"{c.Sctp?.State} polls {c.Sctp?.PollTimeout()}, "
        + $"pacer [{c.Pacer_?.Describe()} data-held {c.Pacer_?.DataHeld} next {c.Pacer_?.NextSendTime(Now)} congested-polls {c.Pacer_?.CongestedPolls} "
        + $"probes {c.BandwidthEstimator?.Probes.HasPending}]";

    /// <summary>Runs until <paramref name="condition"/> holds or <paramref name="limit"/> passes; true when it held.</summary>
    public bool RunUntil(Func<bool> condition, TimeSpan limit)
    {
        var deadline = Now + limit;
        for (var i = 0; i < 2_000_000; i++)
        {
            if (condition()) return true;
            if (!Progress(deadline)) return condition();
        }
        throw new InvalidOperationException($"More than 2000000 steps (now {Now}): a timer that does not move on?");
    }

    private static TimeSpan? Earliest(TimeSpan? x, TimeSpan? y) => x is null ? y : y is null ? x : (x < y ? x : y);
}
