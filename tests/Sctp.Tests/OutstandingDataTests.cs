using Transport.Sctp.Wire;

namespace Transport.Sctp.Tests;

/// <summary>
/// The sender's retransmission ring on its own (<see cref="OutstandingData"/>): flight size, cumulative and gap
/// acknowledgement (RFC 9260 sections 3.3.4, 6.2.1), marking for retransmission, abandoning and the advanced peer ack
/// point (RFC 3758 section 3.5).
/// </summary>
public sealed class OutstandingDataTests
{
    private const uint Initial = uint.MaxValue - 2; // the TSNs wrap around zero

    private static (OutstandingData Out, SctpCounters Counters, Stack<OutboundMessage> Pool) Started()
    {
        var counters = new SctpCounters();
        var pool = new Stack<OutboundMessage>();
        var o = new OutstandingData(pool, new BufferPool(1 << 20), counters);
        o.Start(Initial);
        return (o, counters, pool);
    }

    private static OutboundMessage Message(int length, ushort stream = 1) =>
        new() { Data = new byte[length], Length = length, Stream = stream, References = 1, MaxRetransmits = -1, Expiry = TimeSpan.MaxValue };

    [Fact]
    public void NewChunksGetConsecutiveTsnsAndCountInTheFlightAndTheRingGrowsPastItsCapacity()
    {
        var (o, _, _) = Started();
        Assert.True(o.AllAcked);
        var m = Message(100 * 40);
        for (var i = 0; i < 40; i++) Assert.Equal(unchecked(Initial + (uint)i), o.Add(m, 100 * i, 100, 0));
        Assert.Equal(4000, o.FlightSize);
        Assert.True(o.Capacity >= 40);
        Assert.Equal(41, m.References);
        Assert.Equal(300, o.At(unchecked(Initial + 3)).Offset); // entries kept their place across the growth
        Assert.False(o.AllAcked);
    }

    [Fact]
    public void TheCumulativeAckReleasesChunksAndTheirMessageAndReportsTheBytesAndTheTimedChunk()
    {
        var (o, _, pool) = Started();
        var m = Message(300);
        var t0 = o.Add(m, 0, 100, DataChunk.FlagBegin);
        var t1 = o.Add(m, 100, 100, 0);
        var t2 = o.Add(m, 200, 100, DataChunk.FlagEnd);
        m.Release(pool, new BufferPool(1), new SctpCounters()); // the sender's own reference, once fragmented
        Assert.Equal(200, o.AckCumulative(t1, t1, out var timed));
        Assert.True(timed);
        Assert.Equal(t1, o.CumulativeAck);
        Assert.Equal(100, o.FlightSize);
        Assert.Empty(pool);                // one chunk still holds the message
        Assert.Equal(100, o.AckCumulative(t2, t0, out timed));
        Assert.False(timed);
        Assert.True(o.AllAcked);
        Assert.Single(pool);               // released once no chunk holds it
        Assert.Equal(0, o.FlightSize);
    }

    [Fact]
    public void GapBlocksAckChunksOnceAndRaiseTheHighestNewlyAcked()
    {
        var (o, _, _) = Started();
        var m = Message(500);
        var tsns = Enumerable.Range(0, 5).Select(i => o.Add(m, 100 * i, 100, 0)).ToArray();
        var highest = o.CumulativeAck;
        var timed = false;
        Assert.Equal(200, o.AckGapBlock(tsns[2], tsns[3], tsns[3], ref highest, ref timed));
        Assert.Equal(tsns[3], highest);
        Assert.True(timed);
        Assert.Equal(ChunkState.GapAcked, o.At(tsns[2]).State);
        Assert.Equal(300, o.FlightSize);
        // Reported again in the next SACK: nothing new.
        Assert.Equal(0, o.AckGapBlock(tsns[2], tsns[3], null, ref highest, ref timed));
        // The cumulative ack over gap-acked chunks counts only what was still in flight.
        Assert.Equal(200, o.AckCumulative(tsns[3], null, out _));
        Assert.Equal(100, o.FlightSize);
    }

    [Fact]
    public void MarkingForRetransmitTakesTheChunkOutOfTheFlightAndRetransmittingPutsItBack()
    {
        var (o, _, _) = Started();
        var m = Message(300);
        var t0 = o.Add(m, 0, 100, 0);
        var t1 = o.Add(m, 100, 100, 0);
        o.Add(m, 200, 100, 0);
        o.MarkForRetransmit(t1, ref o.At(t1));
        o.MarkForRetransmit(t0, ref o.At(t0));
        Assert.Equal(2, o.RetransmitCount);
        Assert.Equal(100, o.FlightSize);
        Assert.Equal(t0, o.RetransmitHint); // the scan starts at the lowest marked TSN
        ref var c = ref o.At(t0);
        c.Misses = 2;
        o.Retransmitted(ref c);
        Assert.Equal(ChunkState.InFlight, c.State);
        Assert.Equal(2, c.Transmits);
        Assert.Equal(0, c.Misses);
        Assert.Equal(1, o.RetransmitCount);
        Assert.Equal(200, o.FlightSize);
        // A chunk waiting for retransmission that the cumulative ack passes is acknowledged, not sent again.
        Assert.Equal(200, o.AckCumulative(t1, null, out _));
        Assert.Equal(0, o.RetransmitCount);
    }

    [Fact]
    public void AbandonedChunksLeaveTheFlightAndTheAdvancedPeerAckPointMovesOverThemOnlyFromTheCumulativeAck()
    {
        var (o, _, _) = Started();
        var a = Message(200, stream: 1);
        var b = Message(100, stream: 2);
        var a0 = o.Add(a, 0, 100, DataChunk.FlagBegin);
        var b0 = o.Add(b, 0, 100, DataChunk.FlagBegin | DataChunk.FlagEnd);
        var a1 = o.Add(a, 100, 100, DataChunk.FlagEnd);
        o.MarkForRetransmit(a1, ref o.At(a1));
        o.AbandonChunksOf(a);
        Assert.Equal(ChunkState.Abandoned, o.At(a0).State);
        Assert.Equal(ChunkState.Abandoned, o.At(a1).State);
        Assert.Equal(ChunkState.InFlight, o.At(b0).State);
        Assert.Equal(100, o.FlightSize);
        Assert.Equal(0, o.RetransmitCount);
        Assert.True(o.AdvancePeerAckPoint());   // over a0: b0 is still in flight
        Assert.Equal(a0, o.AdvancedPeerAck);
        o.AckCumulative(b0, null, out _);
        Assert.True(o.AdvancePeerAckPoint());   // over a1 now
        Assert.Equal(a1, o.AdvancedPeerAck);
        o.AckCumulative(a1, null, out _);
        Assert.False(o.AdvancePeerAckPoint());  // nothing beyond the cumulative ack: no FORWARD TSN due
    }

    [Fact]
    public void ClearingHandsEveryMessageOverOnceAndLeavesNothingOutstanding()
    {
        var (o, _, _) = Started();
        var m = Message(200);
        o.Add(m, 0, 100, 0);
        o.Add(m, 100, 100, 0);
        var dropped = new List<OutboundMessage>();
        o.Clear(dropped.Add);
        Assert.Equal(2, dropped.Count);           // per chunk: the caller's drop is idempotent on the message
        Assert.All(dropped, d => Assert.Same(m, d));
        Assert.True(o.AllAcked);
        Assert.Equal(0, o.FlightSize);
    }
}
