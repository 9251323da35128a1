using System.Buffers.Binary;
using Transport.Sctp;
using Transport.Sctp.Wire;
using Transport.TestKit;

namespace Transport.Fuzz;

/// <summary>SCTP packets to a fresh and to an established association, and DCEP messages.</summary>
public static class SctpTargets
{
    private static readonly byte[] CookieSecret = new byte[32];

    /// <summary>The targets.</summary>
    public static IEnumerable<FuzzTarget> All =>
    [
        new("sctp-fresh", Fresh, "a new (listening) association receives the packets (byte 0 bit 0: fill in the CRC32c)"),
        new("sctp-established", Established,
            "an established pair with an open channel; B receives the packets (bit 0: CRC32c, bit 1: B's verification tag); then a message must still cross " +
            "both ways (without the tag nothing may close it)"),
        new("dcep", DcepMessages, "Dcep.TryRead, and each record sent by A as a PPID 50 message on a new stream to B; then the open channel must still work"),
    ];

    private static void Fix(Span<byte> packet, byte flags, uint tag)
    {
        if (packet.Length < CommonHeader.Length) return;
        if ((flags & 2) != 0) BinaryPrimitives.WriteUInt32BigEndian(packet[4..], tag);
        if ((flags & 1) != 0) CommonHeader.Seal(packet, zeroChecksum: false);
    }

    /// <summary>A listening association (the DTLS server side, not connecting) receives the packets.</summary>
    public static void Fresh(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        var flags = data[0];
        var body = data[1..];
        var s = new SctpAssociation(new SctpOptions { IsDtlsClient = false, CookieSecret = CookieSecret });
        var buffer = new byte[2048];
        var packet = new byte[65536];
        var now = TimeSpan.Zero;
        foreach (var (offset, length) in FuzzRecords.Split(body))
        {
            var p = packet.AsSpan(0, length);
            body.Slice(offset, length).CopyTo(p);
            Fix(p, flags, s.LocalVerificationTag);
            s.HandleDatagram(p, now);
            Pump(s, buffer, now);
            now += TimeSpan.FromMilliseconds(10);
            if (s.PollTimeout() is { } t && t <= now) { s.HandleTimeout(now); Pump(s, buffer, now); }
        }
        s.HandleTimeout(now + TimeSpan.FromSeconds(120));
        Pump(s, buffer, now);
        Bounded(s);
    }

    private static void Pump(SctpAssociation s, byte[] buffer, TimeSpan now)
    {
        for (var i = 0; i < 10_000 && s.TryPollEvent(out _); i++) { }
        s.HandleTimeout(now);
        for (var i = 0; i < 10_000 && s.TryPollTransmit(buffer, out _); i++) { }
        if (s.TryPollTransmit(buffer, out _)) throw new FuzzPropertyException("more than 10000 packets for one input");
    }

    private static void Bounded(SctpAssociation s)
    {
        if (s.ReceiveBuffered > s.Options.ReceiveBufferSize + 64 * 1024)
            throw new FuzzPropertyException($"receive buffer {s.ReceiveBuffered} over its bound {s.Options.ReceiveBufferSize}");
    }

    internal sealed class Peer(SctpAssociation association) : IVirtualPeer
    {
        public SctpAssociation Association { get; } = association;
        public Func<TimeSpan> Clock { get; set; } = () => TimeSpan.Zero;
        public List<(DataChannel? Channel, byte[] Data)> Messages { get; } = new();
        public List<SctpEventKind> Kinds { get; } = new();
        public bool Ended { get; private set; }
        public List<DataChannel> Opened { get; } = new();
        public void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now) { Association.HandleDatagram(datagram, now); Drain(); }
        public void HandleTimeout(TimeSpan now) { Association.HandleTimeout(now); Drain(); }
        public bool TryPollTransmit(Span<byte> destination, out int written)
        {
            Drain();
            Association.HandleTimeout(Clock());
            return Association.TryPollTransmit(destination, out written);
        }
        public TimeSpan? PollTimeout() => Association.PollTimeout();
        public void Drain()
        {
            for (var i = 0; i < 100_000 && Association.TryPollEvent(out var e); i++)
            {
                if (Kinds.Count < 10_000) Kinds.Add(e.Kind);
                if (e.Kind == SctpEventKind.StateChanged && e.State is SctpState.Terminated or SctpState.Failed) Ended = true;
                if (e.Kind == SctpEventKind.ChannelOpen && e.Channel is { } ch) Opened.Add(ch);
                if (e.Kind is SctpEventKind.ChannelMessage or SctpEventKind.StreamMessage && Messages.Count < 1000) Messages.Add((e.Channel, e.Data.ToArray()));
            }
        }
    }

    internal static (Peer A, Peer B, TwoPeerDriver Driver, DataChannel AtA, DataChannel AtB) Connected()
    {
        var a = new Peer(new SctpAssociation(new SctpOptions { IsDtlsClient = true, OfferZeroChecksum = false, CookieSecret = CookieSecret }));
        var b = new Peer(new SctpAssociation(new SctpOptions { IsDtlsClient = false, OfferZeroChecksum = false, CookieSecret = CookieSecret }));
        var driver = new TwoPeerDriver(a, b);
        a.Clock = b.Clock = () => driver.Now;
        a.Association.Connect(driver.Now);
        var atA = a.Association.CreateDataChannel("fuzz", now: driver.Now);
        if (!driver.RunUntil(() => b.Opened.Count > 0 && atA.State == DataChannelState.Open, TimeSpan.FromSeconds(30)))
            throw new FuzzPropertyException($"the pair did not connect before the input: A {a.Association.State}, B {b.Association.State}");
        return (a, b, driver, atA, b.Opened[0]);
    }

    /// <summary>
    /// When both associations are still established after the input, a message must cross each way; when one is not,
    /// it must have said so with an event (garbage with the right tag may legitimately abort an association).
    /// </summary>
    private static bool ExchangeStillWorks(Peer a, Peer b, TwoPeerDriver driver, DataChannel atA, DataChannel atB)
    {
        driver.RunFor(TimeSpan.FromSeconds(1));
        Bounded(a.Association);
        Bounded(b.Association);
        if (a.Association.State != SctpState.Established || b.Association.State != SctpState.Established)
        {
            foreach (var p in new[] { a, b })
                if (p.Association.State is SctpState.Closed or SctpState.Failed && !p.Ended)
                    throw new FuzzPropertyException($"association {p.Association.State} without a Closed or Failed event");
            return false;
        }
        if (atA.State != DataChannelState.Open || atB.State != DataChannelState.Open) return false; // the input reset the stream
        a.Messages.Clear();
        b.Messages.Clear();
        atA.Send("from a"u8, true, driver.Now);
        atB.Send("from b"u8, true, driver.Now);
        driver.RunUntil(() => b.Messages.Any(m => m.Data.AsSpan().SequenceEqual("from a"u8)) && a.Messages.Any(m => m.Data.AsSpan().SequenceEqual("from b"u8)),
            TimeSpan.FromSeconds(30));
        if (!b.Messages.Any(m => m.Data.AsSpan().SequenceEqual("from a"u8)) || !a.Messages.Any(m => m.Data.AsSpan().SequenceEqual("from b"u8)))
            throw new FuzzPropertyException($"messages no longer cross after the input: A {a.Association.State}, B {b.Association.State}");
        return true;
    }

    /// <summary>An established pair; B receives the packets; then the exchange must still work.</summary>
    public static void Established(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        var body = data[1..];
        var packets = new List<byte[]>();
        foreach (var (offset, length) in FuzzRecords.Split(body)) packets.Add(body.Slice(offset, length).ToArray());
        // Without B's verification tag (bit 1 clear) nothing may close the association or its channel.
        if (!EstablishedWith(data[0], packets, stepEvery: 1, out var outcome) && (data[0] & 2) == 0)
            throw new FuzzPropertyException("packets without the verification tag closed the association: " + outcome);
    }

    /// <summary>
    /// The established target over any number of packets (the soak test sends 100,000): B receives them (fixed up
    /// per <paramref name="flags"/>), time advances 5 ms every <paramref name="stepEvery"/> packets, then the exchange must still work.
    /// </summary>
    /// <returns>True when the pair was still established and the exchange was checked; false when the input closed it (with its event).</returns>
    public static bool EstablishedWith(byte flags, IEnumerable<byte[]> packets, int stepEvery) => EstablishedWith(flags, packets, stepEvery, out _);

    /// <summary>As <see cref="EstablishedWith(byte, IEnumerable{byte[]}, int)"/>, saying how the pair ended.</summary>
    public static bool EstablishedWith(byte flags, IEnumerable<byte[]> packets, int stepEvery, out string outcome)
    {
        var (a, b, driver, atA, atB) = Connected();
        var n = 0;
        foreach (var p in packets)
        {
            Fix(p, flags, b.Association.LocalVerificationTag);
            b.HandleDatagram(p, driver.Now);
            if (++n % stepEvery == 0) driver.RunFor(TimeSpan.FromMilliseconds(5));
        }
        var worked = ExchangeStillWorks(a, b, driver, atA, atB);
        outcome = $"A {a.Association.State} ({a.Association.CloseReason}), B {b.Association.State} ({b.Association.CloseReason}), channel at A {atA.State}, " +
            $"at B {atB.State}; B's counters: malformed {b.Association.Counters.Malformed}, bad tag {b.Association.Counters.BadVerificationTag}";
        return worked;
    }

    /// <summary>DCEP parsing, and each record as a DATA_CHANNEL_OPEN-position message through a real association.</summary>
    public static void DcepMessages(ReadOnlySpan<byte> data)
    {
        foreach (var (offset, length) in FuzzRecords.Split(data))
        {
            if (DcepOpen.TryRead(data.Slice(offset, length), out var open)) { _ = open.Label.Length; _ = open.Protocol.Length; _ = open.ChannelType; }
        }
        var (a, b, driver, atA, atB) = Connected();
        ushort stream = 2;
        foreach (var (offset, length) in FuzzRecords.Split(data))
        {
            if (length == 0) continue; // SCTP carries no empty user message (the WebRTC empty-message PPIDs are not DCEP)
            a.Association.SendMessage(stream, 50, data.Slice(offset, length), now: driver.Now);
            stream += 2;
            driver.RunFor(TimeSpan.FromMilliseconds(20));
        }
        _ = ExchangeStillWorks(a, b, driver, atA, atB);
    }
}
