using System.Buffers.Binary;
using Transport.Sctp.Wire;

namespace Transport.Sctp.Tests;

/// <summary>
/// What a peer can make an association hold through DCEP is bounded (<see cref="SctpLimits"/>), and a
/// DATA_CHANNEL_OPEN that cannot be answered is refused and counted, never thrown out of <c>HandleDatagram</c>.
/// </summary>
public sealed class DataChannelLimitsTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public void AnOpenWithALabelOverTheLimitIsRefusedByResettingItsStream()
    {
        var (a, b, d) = Pair.Connected();
        var ok = a.Association.CreateDataChannel("fits", now: d.Now);
        var tooLong = a.Association.CreateDataChannel(new string('x', 1025), now: d.Now);
        var protocolTooLong = a.Association.CreateDataChannel("p", new DataChannelOptions { Protocol = new string('y', 1025) }, d.Now);

        Assert.True(d.RunUntil(() => tooLong.State == DataChannelState.Closed && protocolTooLong.State == DataChannelState.Closed, Bound));
        Assert.Equal(2, b.Association.Counters.RefusedChannels);
        Assert.Equal([ok.Id], b.Association.Channels.Keys);
        Assert.Equal(DataChannelState.Open, ok.State);
        Assert.Single(b.Events, e => e.Kind == SctpEventKind.ChannelOpen);
    }

    [Fact]
    public void OpensBeyondMaxChannelsAreRefusedAndCounted()
    {
        var limits = new SctpOptions { Limits = new SctpLimits { MaxChannels = 4 } };
        var (a, b, d) = Pair.Connected(b: limits);
        var opened = Enumerable.Range(0, 10).Select(i => a.Association.CreateDataChannel("c" + i, now: d.Now)).ToList();

        Assert.True(d.RunUntil(() => opened.Count(c => c.State == DataChannelState.Closed) == 6, Bound));
        Assert.Equal(4, b.Association.Channels.Count);
        Assert.Equal(6, b.Association.Counters.RefusedChannels);
        // The four accepted ones carry data.
        var first = opened.First(c => c.State == DataChannelState.Open);
        first.Send("hello"u8, true, d.Now);
        Assert.True(d.RunUntil(() => b.Has(SctpEventKind.ChannelMessage), Bound));
    }

    [Fact]
    public void AnOpenAfterThePeersShutdownIsRefusedAndTheRestOfThePacketIsProcessed()
    {
        var (a, b, d) = Pair.Connected();
        // A genuine DATA packet from A gives B's verification tag, the ports and A's next TSN; it is not delivered.
        a.Association.SendMessage(9, Ppid.Binary, new byte[] { 1 }, now: d.Now);
        var genuine = new byte[2048];
        a.Association.HandleTimeout(d.Now);
        Assert.True(a.Association.TryPollTransmit(genuine, out _));
        Assert.Equal(ChunkType.Data, genuine[12]);
        var tsn = BinaryPrimitives.ReadUInt32BigEndian(genuine.AsSpan(16));

        // B has data in flight (sent, not delivered), so the SHUTDOWN leaves it in ShutdownReceived, where DATA is still
        // taken (RFC 9260 section 9.2).
        b.Association.SendMessage(11, Ppid.Binary, new byte[] { 2 }, now: d.Now);
        b.Association.HandleTimeout(d.Now);
        Assert.True(b.Association.TryPollTransmit(new byte[2048], out _));

        // One packet: SHUTDOWN, then a DATA_CHANNEL_OPEN, then a message on another stream.
        var packet = new byte[256];
        genuine.AsSpan(0, 12).CopyTo(packet);
        var p = 12;
        p += ChunkHeader.Write(packet.AsSpan(p), ChunkType.Shutdown, 0, 8) + 4;
        var open = DcepOpen.Write(DataChannelType.Reliable, 0, 0, "late", "");
        p += DataChunk.Write(packet.AsSpan(p), 0x03, tsn, 2, 0, Ppid.Dcep, open);
        p += DataChunk.Write(packet.AsSpan(p), 0x03, tsn + 1, 9, 0, Ppid.Binary, "after"u8);
        CommonHeader.Seal(packet.AsSpan(0, p), zeroChecksum: false);

        b.HandleDatagram(packet.AsSpan(0, p), d.Now);
        Assert.Equal(SctpState.ShutdownReceived, b.Association.State);

        Assert.Equal(1, b.Association.Counters.RefusedChannels);
        Assert.Empty(b.Association.Channels);
        Assert.Contains(b.Events, e => e.Kind == SctpEventKind.StreamMessage && e.StreamId == 9 && e.Data.Span.SequenceEqual("after"u8));
    }

    [Fact]
    public void LimitsOutOfRangeAreRefusedAtConstruction()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SctpAssociation(new SctpOptions { Limits = new SctpLimits { MaxChannels = 0 } }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SctpAssociation(new SctpOptions { Limits = new SctpLimits { MaxLabelLength = 70_000 } }));
    }
}
