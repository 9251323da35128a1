using Transport.Sctp.Wire;

namespace Transport.Sctp.Tests;

/// <summary>
/// The receiver's TSN record and SACK schedule on its own (<see cref="DataTracker"/>): RFC 9260 sections 3.3.4, 6.2
/// and 6.7, and FORWARD TSN's move of the cumulative TSN (RFC 3758 section 3.6).
/// </summary>
public sealed class DataTrackerTests
{
    private const uint Initial = 1000;

    private static DataTracker Started(uint initial = Initial)
    {
        var t = new DataTracker();
        t.Start(initial);
        return t;
    }

    /// <summary>Writes a SACK and reads it back: (cum, a_rwnd, gap blocks as absolute TSN ranges, duplicates).</summary>
    private static (uint Cum, uint Window, List<(uint, uint)> Gaps, List<uint> Dups) Sack(DataTracker t, int size = 1200, uint window = 65536)
    {
        var buffer = new byte[size];
        var n = t.WriteSack(buffer, 0, window);
        ReadOnlySpan<byte> span = buffer.AsSpan(0, n);
        Assert.True(ChunkHeader.TryReadNext(ref span, out var chunk));
        Assert.True(SackChunk.TryRead(chunk, out var sack));
        var gaps = new List<(uint, uint)>();
        for (var i = 0; i < sack.GapBlockCount; i++)
        {
            var (s, e) = sack.GapBlock(i);
            gaps.Add((sack.CumulativeTsnAck + s, sack.CumulativeTsnAck + e));
        }
        var dups = new List<uint>();
        for (var i = 0; i < sack.DuplicateCount; i++) dups.Add(sack.Duplicate(i));
        return (sack.CumulativeTsnAck, sack.AdvertisedWindow, gaps, dups);
    }

    [Fact]
    public void InSequenceTsnsMoveTheCumulativeTsnAndAskForNoImmediateSack()
    {
        var t = Started();
        Assert.Equal(Initial - 1, t.CumulativeTsn);
        t.Accept(Initial);
        t.Accept(Initial + 1);
        Assert.Equal(Initial + 1, t.CumulativeTsn);
        Assert.Equal(Initial + 1, t.HighestTsn);
        Assert.False(t.SackImmediate);
        var sack = Sack(t);
        Assert.Equal(Initial + 1, sack.Cum);
        Assert.Empty(sack.Gaps);
        Assert.Empty(sack.Dups);
    }

    [Fact]
    public void OutOfOrderTsnsGiveGapBlocksAsOffsetsFromTheCumulativeTsnAndAnImmediateSack()
    {
        var t = Started();
        t.Accept(Initial);
        // 1001 missing; 1002-1003 and 1005 arrive (section 3.3.4: two gap ack blocks).
        t.Accept(Initial + 2);
        Assert.True(t.SackImmediate); // section 6.7: a gap is reported at once
        t.Accept(Initial + 3);
        t.Accept(Initial + 5);
        Assert.Equal(Initial, t.CumulativeTsn);
        Assert.Equal(Initial + 5, t.HighestTsn);
        var sack = Sack(t, window: 1234);
        Assert.Equal(Initial, sack.Cum);
        Assert.Equal(1234u, sack.Window);
        Assert.Equal(new[] { (Initial + 2, Initial + 3), (Initial + 5, Initial + 5) }, sack.Gaps);
        Assert.False(t.SackPending);
        Assert.False(t.SackImmediate);

        // The missing TSNs arrive: the cumulative TSN moves over everything received and the gaps close.
        t.Accept(Initial + 1);
        Assert.Equal(Initial + 3, t.CumulativeTsn);
        t.Accept(Initial + 4);
        Assert.Equal(Initial + 5, t.CumulativeTsn);
        Assert.Empty(Sack(t).Gaps);
    }

    [Fact]
    public void DuplicatesAreReportedOnceInTheNextSackAtMostSixteenAndAskForAnImmediateSack()
    {
        var t = Started();
        t.Accept(Initial);
        t.Accept(Initial + 2);
        t.WriteSack(new byte[1200], 0, 1);
        Assert.True(t.IsDuplicate(Initial));      // at or below the cumulative TSN
        Assert.True(t.SackImmediate);             // section 6.2: duplicates are reported at once
        Assert.True(t.IsDuplicate(Initial + 2));  // received beyond it
        Assert.False(t.IsDuplicate(Initial + 1)); // the gap: new
        Assert.Equal(new[] { Initial, Initial + 2 }, Sack(t).Dups);
        Assert.Empty(Sack(t).Dups); // reported once

        for (var i = 0; i < 40; i++) Assert.True(t.IsDuplicate(Initial));
        Assert.Equal(DataTracker.MaxDuplicatesReported, t.DuplicateCount);
        Assert.Equal(DataTracker.MaxDuplicatesReported, Sack(t).Dups.Count);
    }

    [Fact]
    public void TsnsBeyondTheWindowAreRefusedAndSerialArithmeticWrapsAroundZero()
    {
        var t = Started(uint.MaxValue - 1);
        Assert.True(t.IsBeyondWindow(t.CumulativeTsn + DataTracker.Window + 1));
        Assert.False(t.IsBeyondWindow(t.CumulativeTsn + DataTracker.Window));
        t.Accept(uint.MaxValue - 1);
        t.Accept(uint.MaxValue);
        t.Accept(0);
        t.Accept(2);
        Assert.Equal(0u, t.CumulativeTsn);
        var sack = Sack(t);
        Assert.Equal(0u, sack.Cum);
        Assert.Equal(new[] { (2u, 2u) }, sack.Gaps);
        Assert.True(t.IsDuplicate(uint.MaxValue));
    }

    [Fact]
    public void GapBlocksStopAtTheRoomLeftForControlChunksAndTheDuplicates()
    {
        var t = Started();
        // 100 isolated TSNs received: 100 gap blocks wanted.
        for (uint i = 0; i < 100; i++) t.Accept(Initial + 1 + 2 * i);
        Assert.True(t.IsDuplicate(Initial + 1));
        var buffer = new byte[16 + 4 * 10 + 4 + 320];
        var n = t.WriteSack(buffer, 320, 0);
        ReadOnlySpan<byte> span = buffer.AsSpan(0, n);
        Assert.True(ChunkHeader.TryReadNext(ref span, out var chunk));
        Assert.True(SackChunk.TryRead(chunk, out var sack));
        Assert.Equal(10, sack.GapBlockCount); // the reserve and the one duplicate left room for 10
        Assert.Equal(1, sack.DuplicateCount);
        Assert.Equal(Initial + 1, sack.Duplicate(0));
    }

    [Fact]
    public void EverySecondDataPacketIsAcknowledgedAtOnceElseAfterTheDelayedAckTime()
    {
        var t = Started();
        var now = TimeSpan.FromSeconds(5);
        var delay = TimeSpan.FromMilliseconds(200);
        t.SackPending = true;
        t.Accept(Initial);
        t.OnDataPacket(now, delay, immediate: false);
        Assert.False(t.SackImmediate);
        Assert.Equal(now + delay, t.DelayedAckDeadline);
        // A later packet does not push the deadline back.
        t.Accept(Initial + 1);
        t.OnDataPacket(now + TimeSpan.FromMilliseconds(50), delay, immediate: false);
        Assert.True(t.SackImmediate); // the second packet
        t.WriteSack(new byte[1200], 0, 1);
        Assert.Null(t.DelayedAckDeadline);

        t.SackPending = true;
        t.Accept(Initial + 2);
        t.OnDataPacket(now, delay, immediate: false);
        Assert.False(t.SackImmediate);
        t.OnDelayedAckTimeout();
        Assert.True(t.SackImmediate);
        Assert.Null(t.DelayedAckDeadline);

        // Not Established (e.g. shutting down): every DATA packet is acknowledged at once.
        t.WriteSack(new byte[1200], 0, 1);
        t.SackPending = true;
        t.Accept(Initial + 3);
        t.OnDataPacket(now, delay, immediate: true);
        Assert.True(t.SackImmediate);
        Assert.Null(t.DelayedAckDeadline);
    }

    [Fact]
    public void ForwardTsnMovesTheCumulativeTsnAndContinuesOverTsnsAlreadyReceived()
    {
        var t = Started();
        t.Accept(Initial + 3);
        t.Accept(Initial + 4);
        t.Accept(Initial + 6);
        // The peer abandoned 1000-1002 (RFC 3758 section 3.6): the cumulative TSN moves to 1002, then over 1003-1004.
        t.ForwardTo(Initial + 2);
        Assert.Equal(Initial + 4, t.CumulativeTsn);
        Assert.Equal(new[] { (Initial + 6, Initial + 6) }, Sack(t).Gaps);
        Assert.True(t.IsDuplicate(Initial + 1));

        // A jump past the highest TSN and over a whole window forgets everything.
        t.ForwardTo(Initial + 6 + DataTracker.Window);
        Assert.Equal(Initial + 6 + DataTracker.Window, t.CumulativeTsn);
        Assert.Equal(t.CumulativeTsn, t.HighestTsn);
        Assert.Empty(Sack(t).Gaps);
        Assert.False(t.IsDuplicate(t.CumulativeTsn + 1));
    }
}
