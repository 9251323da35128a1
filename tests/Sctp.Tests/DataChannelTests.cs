using System.Text;
using Transport.TestKit;

namespace Transport.Sctp.Tests;

public sealed class DataChannelTests
{
    public static TheoryData<bool, int?, int?> ChannelKinds => new()
    {
        { true, null, null },
        { false, null, null },
        { true, 3, null },
        { false, 3, null },
        { true, null, 1500 },
        { false, null, 1500 },
    };

    [Theory]
    [MemberData(nameof(ChannelKinds))]
    public void DcepOpenAndAckCarryTypeLabelProtocolAndPriority(bool ordered, int? maxRetransmits, int? lifetimeMs)
    {
        var (a, b, d) = Pair.Connected();
        var ch = a.Association.CreateDataChannel("chat ✓", new DataChannelOptions
        {
            Ordered = ordered,
            MaxRetransmits = maxRetransmits,
            MaxPacketLifetime = lifetimeMs is { } l ? TimeSpan.FromMilliseconds(l) : null,
            Protocol = "json",
            Priority = 512,
        }, d.Now);
        Assert.Equal(DataChannelState.Open, ch.State);
        Assert.Equal(0, ch.Id % 2); // DTLS client: even stream ids
        d.RunUntil(() => ch.AcknowledgedByPeer, TimeSpan.FromSeconds(5));
        Assert.True(ch.AcknowledgedByPeer);
        var open = b.Events.Single(e => e.Kind == SctpEventKind.ChannelOpen);
        var remote = open.Channel!;
        Assert.Equal(ch.Id, remote.Id);
        Assert.Equal("chat ✓", remote.Label);
        Assert.Equal("json", remote.Protocol);
        Assert.Equal(512, remote.Priority);
        Assert.Equal(ch.Type, remote.Type);
        Assert.Equal(ordered, remote.Ordered);
        Assert.Equal((uint)(maxRetransmits ?? lifetimeMs ?? 0), remote.ReliabilityParameter);
        var expectedType = (maxRetransmits, lifetimeMs, ordered) switch
        {
            (not null, _, true) => DataChannelType.PartialReliableRexmit,
            (not null, _, false) => DataChannelType.PartialReliableRexmitUnordered,
            (_, not null, true) => DataChannelType.PartialReliableTimed,
            (_, not null, false) => DataChannelType.PartialReliableTimedUnordered,
            (_, _, true) => DataChannelType.Reliable,
            _ => DataChannelType.ReliableUnordered,
        };
        Assert.Equal(expectedType, remote.Type);
        // Messages flow both ways.
        ch.Send("ping");
        remote.Send("pong");
        d.RunFor(TimeSpan.FromMilliseconds(300));
        Assert.Contains(b.Events, e => e.Kind == SctpEventKind.ChannelMessage && Encoding.UTF8.GetString(e.Data.Span) == "ping");
        Assert.Contains(a.Events, e => e.Kind == SctpEventKind.ChannelMessage && Encoding.UTF8.GetString(e.Data.Span) == "pong");
    }

    [Fact]
    public void StreamIdsFollowTheDtlsRole()
    {
        var (a, b, d) = Pair.Connected();
        var a1 = a.Association.CreateDataChannel("a1", now: d.Now);
        var a2 = a.Association.CreateDataChannel("a2", now: d.Now);
        var b1 = b.Association.CreateDataChannel("b1", now: d.Now);
        var b2 = b.Association.CreateDataChannel("b2", now: d.Now);
        Assert.Equal([0, 2], new[] { (int)a1.Id, a2.Id });
        Assert.Equal([1, 3], new[] { (int)b1.Id, b2.Id });
        d.RunFor(TimeSpan.FromMilliseconds(200));
        Assert.Equal(4, a.Association.Channels.Count);
        Assert.Equal(4, b.Association.Channels.Count);
    }

    [Fact]
    public void NegotiatedChannelsUseTheAgreedIdWithoutDcep()
    {
        var (a, b, d) = Pair.Connected();
        var ca = a.Association.CreateDataChannel("n", new DataChannelOptions { Negotiated = true, Id = 7 }, d.Now);
        var cb = b.Association.CreateDataChannel("n", new DataChannelOptions { Negotiated = true, Id = 7 }, d.Now);
        ca.Send(new byte[] { 1, 2, 3 });
        d.RunFor(TimeSpan.FromMilliseconds(300));
        var msg = b.Events.Single(e => e.Kind == SctpEventKind.ChannelMessage);
        Assert.Same(cb, msg.Channel);
        Assert.Equal(new byte[] { 1, 2, 3 }, msg.Data.ToArray());
        // No DCEP: B saw only its own local open.
        Assert.Single(b.Events, e => e.Kind == SctpEventKind.ChannelOpen);
    }

    [Fact]
    public void StringBinaryAndEmptyMessagesUseTheirPpids()
    {
        var (a, b, d) = Pair.Connected();
        var ch = a.Association.CreateDataChannel("p", now: d.Now);
        ch.Send("héllo");
        ch.Send(new byte[] { 9, 8, 7 });
        ch.Send("");
        ch.Send(ReadOnlySpan<byte>.Empty);
        d.RunFor(TimeSpan.FromMilliseconds(500));
        var msgs = b.Events.Where(e => e.Kind == SctpEventKind.ChannelMessage).ToList();
        Assert.Equal([Ppid.String, Ppid.Binary, Ppid.StringEmpty, Ppid.BinaryEmpty], msgs.Select(m => m.Ppid));
        Assert.Equal([false, true, false, true], msgs.Select(m => m.IsBinary));
        Assert.Equal("héllo", Encoding.UTF8.GetString(msgs[0].Data.Span));
        Assert.Equal(0, msgs[2].Data.Length);
        Assert.Equal(0, msgs[3].Data.Length);
    }

    [Fact]
    public void MessageOfExactlyMaxSizePassesAndOneByteMoreFailsClearly()
    {
        var (a, b, d) = Pair.Connected();
        var ch = a.Association.CreateDataChannel("big", now: d.Now);
        var max = a.Association.Options.MaxMessageSize;
        Assert.Equal(256 * 1024, max);
        var data = new byte[max];
        data[^1] = 42;
        ch.Send(data);
        var ex = Assert.Throws<ArgumentException>(() => ch.Send(new byte[max + 1]));
        Assert.Contains("262144", ex.Message);
        Assert.Contains("maximum message size", ex.Message);
        d.RunUntil(() => b.Events.Any(e => e.Kind == SctpEventKind.ChannelMessage), TimeSpan.FromSeconds(30));
        var m = b.Events.Single(e => e.Kind == SctpEventKind.ChannelMessage);
        Assert.Equal(max, m.Data.Length);
        Assert.Equal(42, m.Data.Span[^1]);
    }

    [Fact]
    public void ReceiverRefusesMessagesAboveItsMaxMessageSizeAndClosesTheChannel()
    {
        var (a, b, d) = Pair.Connected(b: new SctpOptions { MaxMessageSize = 4000 });
        var ch = a.Association.CreateDataChannel("c", now: d.Now);
        ch.Send(new byte[3000]);
        ch.Send(new byte[10_000]); // more than B accepts
        d.RunUntil(() => ch.State == DataChannelState.Closed, TimeSpan.FromSeconds(10));
        Assert.Equal(DataChannelState.Closed, ch.State);
        Assert.True(b.Association.Counters.OversizeMessage > 0);
        var msgs = b.Events.Where(e => e.Kind == SctpEventKind.ChannelMessage).ToList();
        Assert.Single(msgs);
        Assert.Equal(3000, msgs[0].Data.Length);
        Assert.Contains(b.Events, e => e.Kind == SctpEventKind.ChannelClosed);
        Assert.Equal(0, b.Association.ReceiveBuffered);
    }

    [Fact]
    public void BufferedAmountFallsAndSignalsTheLowThreshold()
    {
        var (a, b, d) = Pair.Connected();
        var ch = a.Association.CreateDataChannel("bp", now: d.Now);
        d.RunFor(TimeSpan.FromMilliseconds(100));
        ch.BufferedAmountLowThreshold = 16 * 1024;
        for (var i = 0; i < 100; i++) ch.Send(new byte[1000]);
        Assert.Equal(100_000, ch.BufferedAmount);
        d.RunUntil(() => ch.BufferedAmount == 0, TimeSpan.FromSeconds(10));
        Assert.Equal(0, ch.BufferedAmount);
        Assert.Single(a.Events, e => e.Kind == SctpEventKind.BufferedAmountLow && e.Channel == ch);
    }

    [Fact]
    public void SendingOnAChannelThatIsNotOpenNamesTheState()
    {
        var a = new SctpAssociation(Pair.Client());
        var ch = a.CreateDataChannel("early");
        Assert.Equal(DataChannelState.Connecting, ch.State);
        var ex = Assert.Throws<DataChannelNotOpenException>(() => ch.Send("x"));
        Assert.Equal(DataChannelState.Connecting, ex.State);
        Assert.Contains("Connecting", ex.Message);
    }

    [Fact]
    public void ChannelCreatedBeforeTheAssociationOpensWhenItIsEstablished()
    {
        var pa = new SctpPeer(Pair.Client());
        var pb = new SctpPeer(Pair.Server());
        var d = new TwoPeerDriver(pa, pb);
        pa.Clock = pb.Clock = () => d.Now;
        var ch = pa.Association.CreateDataChannel("pre");
        pa.Association.Connect(d.Now);
        d.RunUntil(() => ch.State == DataChannelState.Open && pb.Has(SctpEventKind.ChannelOpen), TimeSpan.FromSeconds(5));
        Assert.True(pb.Has(SctpEventKind.ChannelOpen));
    }

    [Fact]
    public void StreamResetClosesBothEndsAndTheIdCanBeReused()
    {
        var (a, b, d) = Pair.Connected();
        var ch = a.Association.CreateDataChannel("r", now: d.Now);
        for (var i = 0; i < 5; i++) ch.Send(new byte[100]);
        d.RunUntil(() => b.Events.Count(e => e.Kind == SctpEventKind.ChannelMessage) == 5, TimeSpan.FromSeconds(5));
        var remote = b.Events.First(e => e.Kind == SctpEventKind.ChannelOpen).Channel!;
        ch.Close(d.Now);
        Assert.Equal(DataChannelState.Closing, ch.State);
        var ex = Assert.Throws<DataChannelNotOpenException>(() => ch.Send("late"));
        Assert.Equal(DataChannelState.Closing, ex.State);
        d.RunUntil(() => ch.State == DataChannelState.Closed && remote.State == DataChannelState.Closed, TimeSpan.FromSeconds(5));
        Assert.Equal(DataChannelState.Closed, ch.State);
        Assert.Equal(DataChannelState.Closed, remote.State);
        Assert.Contains(a.Events, e => e.Kind == SctpEventKind.ChannelClosed && e.Channel == ch);
        Assert.Contains(b.Events, e => e.Kind == SctpEventKind.ChannelClosed && e.Channel == remote);
        Assert.Empty(a.Association.Channels);
        Assert.Empty(b.Association.Channels);
        // The stream's sequence numbers restarted at zero on both sides, so a new channel on it works.
        var again = a.Association.CreateDataChannel("r2", new DataChannelOptions { Id = ch.Id }, d.Now);
        again.Send("after reset");
        d.RunUntil(() => b.Events.Any(e => e.Kind == SctpEventKind.ChannelMessage && e.Channel!.Label == "r2"), TimeSpan.FromSeconds(5));
        Assert.Contains(b.Events, e => e.Kind == SctpEventKind.ChannelMessage && Encoding.UTF8.GetString(e.Data.Span) == "after reset");
    }

    [Fact]
    public void ClosingUnderLossStillClosesBothEnds()
    {
        var link = new VirtualLink(11, new LinkConditions { Loss = 0.3 }, new LinkConditions { Loss = 0.3 });
        var (a, b, d) = Pair.Connected(link);
        var ch = a.Association.CreateDataChannel("lossy", now: d.Now);
        for (var i = 0; i < 50; i++) ch.Send(new byte[2000]);
        ch.Close(d.Now);
        d.RunUntil(() => ch.State == DataChannelState.Closed && b.Association.Channels.Count == 0 && b.Has(SctpEventKind.ChannelClosed),
            TimeSpan.FromMinutes(2));
        Assert.Equal(DataChannelState.Closed, ch.State);
        Assert.Equal(50, b.Events.Count(e => e.Kind == SctpEventKind.ChannelMessage));
        Assert.Equal(SctpState.Established, a.Association.State);
    }
}
