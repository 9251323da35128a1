using Transport.Crypto;

namespace Transport.Rtp.Tests.Srtp;

/// <summary>The one replay window of DTLS 1.2, DTLS 1.3 and SRTP/SRTCP (src/Shared/ReplayWindow.cs).</summary>
public class ReplayWindowTests
{
    [Theory]
    [InlineData(64)]
    [InlineData(100)]   // not a power of two: the size, not the bitmap's capacity, decides what is too old
    [InlineData(1024)]
    public void AcceptsReorderedInsideRefusesDuplicatesAndTooOld(int size)
    {
        var w = new ReplayWindow(size);
        Assert.Equal(ReplayCheck.Fresh, w.Check(5000));
        w.Mark(5000);
        Assert.Equal(ReplayCheck.Replayed, w.Check(5000));
        Assert.Equal(ReplayCheck.Fresh, w.Check(5000 - (ulong)size + 1));
        Assert.Equal(ReplayCheck.TooOld, w.Check(5000 - (ulong)size));
        w.Mark(4990);
        Assert.Equal(ReplayCheck.Replayed, w.Check(4990));
        // Advancing clears the bits passed over: indices between the old and the new highest are fresh.
        w.Mark(5000 + (ulong)size / 2);
        for (var i = 5001UL; i < 5000 + (ulong)size / 2; i++) Assert.Equal(ReplayCheck.Fresh, w.Check(i));
        Assert.Equal(ReplayCheck.Replayed, w.Check(5000));
        // A jump beyond the bitmap forgets everything before it.
        w.Mark(1_000_000);
        Assert.Equal(ReplayCheck.TooOld, w.Check(5000));
        Assert.Equal(ReplayCheck.Fresh, w.Check(1_000_000 - 1));
        Assert.True(w.IsReplay(1_000_000));
    }

    [Fact]
    public void MarkingAnIndexLeftOfTheWindowDoesNotShadowANewerOne()
    {
        var w = new ReplayWindow();
        w.Mark(300);
        // 230 is too old; on a 64-slot ring it shares its slot with 294, which is inside the window and unseen.
        w.Mark(230);
        Assert.Equal(ReplayCheck.Fresh, w.Check(294));
        Assert.Equal(ReplayCheck.TooOld, w.Check(230));
    }

    [Fact]
    public void SixtyFourBitSequenceNumbersOfDtls13()
    {
        var w = new ReplayWindow();
        var high = ulong.MaxValue - 10;
        w.Mark(high);
        Assert.True(w.IsReplay(high));
        Assert.False(w.IsReplay(high + 1));
        Assert.True(w.IsReplay(high - 64));
        Assert.False(w.IsReplay(high - 63));
        w.Reset();
        Assert.False(w.Started);
        Assert.False(w.IsReplay(high));
    }

    [Fact]
    public void RefusesASizeUnder64() => Assert.Throws<ArgumentOutOfRangeException>(() => new ReplayWindow(63));
}
