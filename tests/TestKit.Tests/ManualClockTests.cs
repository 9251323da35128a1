namespace Transport.TestKit.Tests;

public sealed class ManualClockTests
{
    [Fact]
    public void StartsAtGivenTimeAndAdvances()
    {
        var clock = new ManualClock(TimeSpan.FromSeconds(1));
        clock.Advance(TimeSpan.FromMilliseconds(250));
        Assert.Equal(TimeSpan.FromMilliseconds(1250), clock.Now);
        Assert.Equal(TimeSpan.FromMilliseconds(1250).Ticks, clock.GetTimestamp());
        Assert.Equal(TimeSpan.FromMilliseconds(1250), clock.GetElapsedTime(0));
    }

    [Fact]
    public void RefusesToGoBack()
    {
        var clock = new ManualClock(TimeSpan.FromSeconds(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => clock.AdvanceTo(TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => clock.Advance(TimeSpan.FromTicks(-1)));
        Assert.Equal(TimeSpan.FromSeconds(2), clock.Now);
    }

    [Fact]
    public void TimersFireAtTheirDueTimeInOrder()
    {
        var clock = new ManualClock();
        var fired = new List<(string, TimeSpan)>();
        using var late = clock.CreateTimer(_ => fired.Add(("late", clock.Now)), null, TimeSpan.FromSeconds(3), Timeout.InfiniteTimeSpan);
        using var periodic = clock.CreateTimer(_ => fired.Add(("tick", clock.Now)), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        clock.Advance(TimeSpan.FromSeconds(3.5));
        Assert.Equal(
            [("tick", TimeSpan.FromSeconds(1)), ("tick", TimeSpan.FromSeconds(2)), ("late", TimeSpan.FromSeconds(3)), ("tick", TimeSpan.FromSeconds(3))],
            fired);
        Assert.Equal(TimeSpan.FromSeconds(3.5), clock.Now);
        Assert.Equal(TimeSpan.FromSeconds(4), clock.NextTimerDue);
    }

    [Fact]
    public void DisposedOrChangedTimersDoNotFire()
    {
        var clock = new ManualClock();
        var count = 0;
        var t = clock.CreateTimer(_ => count++, null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
        t.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(0, count);
        t.Change(TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
        t.Dispose();
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(0, count);
        Assert.Null(clock.NextTimerDue);
    }

    [Fact]
    public void WallClockFollowsVirtualTime()
    {
        var epoch = new DateTimeOffset(2030, 5, 6, 7, 8, 9, TimeSpan.Zero);
        var clock = new ManualClock(default, epoch);
        clock.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(epoch.AddMinutes(2), clock.GetUtcNow());
    }
}
