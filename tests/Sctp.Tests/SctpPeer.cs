using Transport.TestKit;

namespace Transport.Sctp.Tests;

/// <summary>Adapts an <see cref="SctpAssociation"/> to the TestKit driver and drains its events after every input.</summary>
internal sealed class SctpPeer : IVirtualPeer
{
    public SctpPeer(SctpOptions? options = null) => Association = new SctpAssociation(options);

    public SctpAssociation Association { get; }
    /// <summary>Every event except messages (whose bytes are only valid during the callback).</summary>
    public List<SctpEvent> Events { get; } = new();
    /// <summary>Called for every event while its data is valid.</summary>
    public Action<SctpEvent>? OnEvent { get; set; }
    public TimeSpan? FailedAt { get; private set; }
    public TimeSpan? ClosedAt { get; private set; }
    private TimeSpan _now;

    public void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now) { _now = now; Association.HandleDatagram(datagram, now); Drain(); }
    public void HandleTimeout(TimeSpan now) { _now = now; Association.HandleTimeout(now); Drain(); }
    public bool TryPollTransmit(Span<byte> destination, out int written)
    {
        Drain();
        if (Clock is { } c) Association.HandleTimeout(c());
        return Association.TryPollTransmit(destination, out written);
    }

    /// <summary>The driver's clock, so that sends are stamped with the current virtual time.</summary>
    public Func<TimeSpan>? Clock { get; set; }
    public TimeSpan? PollTimeout() => Association.PollTimeout();

    public void Drain()
    {
        while (Association.TryPollEvent(out var e))
        {
            if (e is { Kind: SctpEventKind.StateChanged, State: SctpState.Failed }) FailedAt ??= _now;
            if (e is { Kind: SctpEventKind.StateChanged, State: SctpState.Terminated }) ClosedAt ??= _now;
            OnEvent?.Invoke(e);
            if (e.Kind is SctpEventKind.ChannelMessage or SctpEventKind.StreamMessage)
                Events.Add(e with { Data = Events.Count < 10_000 ? e.Data.ToArray() : default });
            else Events.Add(e);
        }
    }

    public bool Has(SctpEventKind kind) => Events.Exists(e => e.Kind == kind);

    /// <summary>Whether a state change to <paramref name="state"/> was reported.</summary>
    public bool Has(SctpState state) => Events.Exists(e => e.Kind == SctpEventKind.StateChanged && e.State == state);
}

internal static class Pair
{
    public static SctpOptions Client(SctpOptions? o = null) => (o ?? new SctpOptions()) with { IsDtlsClient = true };
    public static SctpOptions Server(SctpOptions? o = null) => (o ?? new SctpOptions()) with { IsDtlsClient = false };

    /// <summary>Two associations over a link, connected (A starts; both sides connect when <paramref name="both"/>).</summary>
    public static (SctpPeer A, SctpPeer B, TwoPeerDriver Driver) Connected(VirtualLink? link = null, SctpOptions? a = null,
        SctpOptions? b = null, bool both = false)
    {
        var pa = new SctpPeer(Client(a));
        var pb = new SctpPeer(Server(b));
        var driver = new TwoPeerDriver(pa, pb, link ?? new VirtualLink(), new ManualClock());
        pa.Clock = pb.Clock = () => driver.Now;
        pa.Association.Connect(driver.Now);
        if (both) pb.Association.Connect(driver.Now);
        Assert.True(driver.RunUntil(() => pa.Association.State == SctpState.Established && pb.Association.State == SctpState.Established,
            TimeSpan.FromSeconds(120)), $"not established: A {pa.Association.State}, B {pb.Association.State}");
        pa.Drain();
        pb.Drain();
        return (pa, pb, driver);
    }

    /// <summary>The byte at <paramref name="offset"/> of the deterministic test stream.</summary>
    public static byte Pattern(long offset) => (byte)(offset * 131 + (offset >> 9) * 7 + (offset >> 17));
}
