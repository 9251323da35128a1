using Transport.Ice.Stun;
using Transport.Ice.Turn;
using static Transport.Ice.Tests.Turn.TurnHarness;

namespace Transport.Ice.Tests.Turn;

/// <summary>Virtual-time tests of the allocation, permission and channel timers (RFC 8656 sections 8, 9, 12), asserted to the exact time.</summary>
public sealed class TurnClientTimerTests
{
    private static readonly StunAddress Peer = StunAddress.FromEndPoint(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("203.0.113.5"), 7000));

    [Fact]
    public void RefreshesTheAllocationOneMarginBeforeItExpires()
    {
        using var h = new TurnHarness();
        h.Start();
        var allocated = Assert.Single(h.EventsOf<TurnAllocated>());
        Assert.Equal(S(600), allocated.Lifetime);
        Assert.Equal(S(540), h.Client.RefreshAt);
        h.RunUntil(S(1700));
        Assert.Equal(new[] { S(540), S(1080), S(1620) }, h.RequestTimes(StunMethod.Refresh));
        Assert.All(h.Server.Requests.Where(r => r.Method == StunMethod.Refresh), r => Assert.Equal(600u, r.Lifetime));
        Assert.Equal(3, h.EventsOf<TurnAllocationRefreshed>().Count());
        Assert.Equal(S(1620 + 600), h.Client.ExpiresAt);
        Assert.Equal(TurnClientState.Allocated, h.Client.State);
    }

    [Fact]
    public void RefreshesAtHalfTheLifetimeWhenTheServerGrantsLessThanTwiceTheMargin()
    {
        using var h = new TurnHarness(o => o with { RefreshMargin = S(60) });
        h.Server.GrantedLifetime = 100;
        h.Start();
        Assert.Equal(S(100), h.EventsOf<TurnAllocated>().Single().Lifetime);
        h.RunUntil(S(160));
        Assert.Equal(new[] { S(50), S(100), S(150) }, h.RequestTimes(StunMethod.Refresh));
    }

    [Fact]
    public void TheRefreshMarginOptionMovesTheRefresh()
    {
        using var h = new TurnHarness(o => o with { RefreshMargin = S(120) });
        h.Start();
        h.RunUntil(S(1000));
        Assert.Equal(new[] { S(480), S(960) }, h.RequestTimes(StunMethod.Refresh));
    }

    [Fact]
    public void ExpiresAtTheGrantedLifetimeWhenRefreshIsDisabled()
    {
        using var h = new TurnHarness(o => o with { RefreshAllocation = false });
        h.Server.GrantedLifetime = 30;
        h.Start();
        h.RunUntil(S(100));
        Assert.Empty(h.RequestTimes(StunMethod.Refresh));
        var expired = Assert.Single(h.Events, e => e.Event is TurnAllocationExpired);
        Assert.Equal(S(30), expired.At);
        Assert.Equal(0, ((TurnAllocationExpired)expired.Event).ErrorCode);
        Assert.Equal(TurnClientState.Expired, h.Client.State);
        Assert.Null(h.Client.PollTimeout());
    }

    [Fact]
    public void RetransmitsAnUnansweredRefreshThenRetriesUntilTheAllocationExpires()
    {
        using var h = new TurnHarness();
        h.Start();
        h.RunUntil(S(500));
        h.Server.Answer = false;
        h.RunUntil(S(700));
        // RFC 8489 section 6.2.1 schedule from 540 s (RTO 500 ms doubling, 7 sends), timeout 39.5 s later at 579.5 s, then a new Refresh.
        Assert.Equal(new[] { S(540), S(540.5), S(541.5), S(543.5), S(547.5), S(555.5), S(571.5), S(579.5), S(580), S(581), S(583), S(587), S(595) },
            h.RequestTimes(StunMethod.Refresh));
        var expired = Assert.Single(h.Events, e => e.Event is TurnAllocationExpired);
        Assert.Equal(S(600), expired.At);
    }

    [Fact]
    public void ARefusedRefreshEndsTheAllocationWithTheServersCode()
    {
        using var h = new TurnHarness();
        h.Start();
        h.Server.FailMethod = (StunMethod.Refresh, StunErrorCode.AllocationMismatch);
        h.RunUntil(S(600));
        var expired = Assert.Single(h.Events, e => e.Event is TurnAllocationExpired);
        Assert.Equal(S(540), expired.At);
        Assert.Equal(437, ((TurnAllocationExpired)expired.Event).ErrorCode);
    }

    [Fact]
    public void RefreshesAPermissionEveryIntervalFromItsInstallation()
    {
        using var h = new TurnHarness();
        h.Start();
        h.RunUntil(S(10));
        h.Client.CreatePermission(Peer, h.Now);
        h.Pump();
        h.RunUntil(S(1000));
        Assert.Equal(new[] { S(10), S(250), S(490), S(730), S(970) }, h.RequestTimes(StunMethod.CreatePermission));
        Assert.Equal(5, h.EventsOf<TurnPermissionCreated>().Count());
        Assert.True(h.Client.HasPermission(Peer));
    }

    [Fact]
    public void ThePermissionIntervalOptionIsHonoured()
    {
        using var h = new TurnHarness(o => o with { PermissionRefreshInterval = S(100) });
        h.Start();
        h.Client.CreatePermission(Peer, h.Now);
        h.RunUntil(S(350));
        Assert.Equal(new[] { S(0), S(100), S(200), S(300) }, h.RequestTimes(StunMethod.CreatePermission));
    }

    [Fact]
    public void APermissionAskedWhileAllocatingGoesOutWhenTheAllocationExists()
    {
        using var h = new TurnHarness();
        h.Client.Start(h.Now);
        h.Client.CreatePermission(Peer, h.Now);
        h.Pump();
        Assert.Equal(new[] { S(0) }, h.RequestTimes(StunMethod.CreatePermission));
        var order = h.Server.Requests.Select(r => r.Method).ToArray();
        Assert.Equal(new[] { StunMethod.Allocate, StunMethod.Allocate, StunMethod.CreatePermission }, order);
    }

    [Fact]
    public void RefreshesAChannelBindingBeforeTenMinutesAndKeepsItsPermissionAlive()
    {
        using var h = new TurnHarness();
        h.Start();
        h.RunUntil(S(5));
        var channel = h.Client.BindChannel(Peer, h.Now);
        h.Pump();
        Assert.Equal(0x4000, channel);
        var bound = Assert.Single(h.Events, e => e.Event is TurnChannelBound);
        Assert.Equal(S(5), bound.At);
        Assert.Equal(channel, h.Client.GetBoundChannel(Peer));
        h.RunUntil(S(1200));
        Assert.Equal(new[] { S(5), S(545), S(1085) }, h.RequestTimes(StunMethod.ChannelBind));
        // The binding installed the permission at 5 s; its own timer keeps it alive between channel refreshes (300 s < 540 s).
        Assert.Equal(new[] { S(245), S(485), S(725), S(965) },
            h.RequestTimes(StunMethod.CreatePermission));
        Assert.Single(h.EventsOf<TurnChannelBound>());
    }

    [Fact]
    public void TheChannelIntervalOptionIsHonoured()
    {
        using var h = new TurnHarness(o => o with { ChannelRefreshInterval = S(300) });
        h.Start();
        h.Client.BindChannel(Peer, h.Now);
        h.RunUntil(S(650));
        Assert.Equal(new[] { S(0), S(300), S(600) }, h.RequestTimes(StunMethod.ChannelBind));
    }

    [Fact]
    public void IntervalsOutsideTheRfcLifetimesAreRefused()
    {
        var o = new TurnClientOptions { Server = FakeTurnServer.Address, Username = "u", Password = "p" };
        Assert.Throws<ArgumentOutOfRangeException>(() => new TurnClient(o with { PermissionRefreshInterval = S(301) }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TurnClient(o with { ChannelRefreshInterval = S(600) }));
    }

    [Fact]
    public void AnUnansweredAllocateOverUdpIsRetransmittedAndFailsAfterThirtyNineAndAHalfSeconds()
    {
        using var h = new TurnHarness();
        h.Server.Answer = false;
        h.Start();
        h.RunUntil(S(60));
        Assert.Equal(new[] { S(0), S(0.5), S(1.5), S(3.5), S(7.5), S(15.5), S(31.5) }, h.RequestTimes(StunMethod.Allocate));
        var failed = Assert.Single(h.Events, e => e.Event is TurnAllocationFailed);
        Assert.Equal(S(39.5), failed.At);
        Assert.Equal(TurnFailureKind.Timeout, ((TurnAllocationFailed)failed.Event).Kind);
    }

    [Fact]
    public void AnUnansweredAllocateOverTcpIsSentOnceAndFailsAfterThirtyNineAndAHalfSeconds()
    {
        using var h = new TurnHarness(o => o with { Transport = TurnTransport.Tcp });
        h.Server.Answer = false;
        h.Start();
        h.RunUntil(S(60));
        Assert.Equal(new[] { S(0) }, h.RequestTimes(StunMethod.Allocate));
        var failed = Assert.Single(h.Events, e => e.Event is TurnAllocationFailed);
        Assert.Equal(S(39.5), failed.At);
    }

    [Fact]
    public void CloseDeletesTheAllocationWithLifetimeZero()
    {
        using var h = new TurnHarness();
        h.Start();
        h.Client.CreatePermission(Peer, h.Now);
        h.RunUntil(S(100));
        h.Client.Close(h.Now);
        h.Pump();
        var last = h.Server.Requests[^1];
        Assert.Equal(StunMethod.Refresh, last.Method);
        Assert.Equal(0u, last.Lifetime);
        Assert.False(h.Server.AllocationExists);
        Assert.Equal(TurnClientState.Closed, h.Client.State);
        Assert.Single(h.EventsOf<TurnClosed>());
        Assert.Null(h.Client.PollTimeout());
    }

    [Fact]
    public void ALostTcpConnectionEndsTheAllocation()
    {
        using var h = new TurnHarness(o => o with { Transport = TurnTransport.Tcp });
        h.Start();
        h.RunUntil(S(100));
        h.Client.ConnectionClosed(h.Now);
        h.Pump();
        var expired = Assert.Single(h.EventsOf<TurnAllocationExpired>());
        Assert.Contains("TCP", expired.Reason);
        Assert.Equal(TurnClientState.Expired, h.Client.State);
        Assert.Null(h.Client.PollTimeout());
    }

    [Fact]
    public void ALostTcpConnectionFailsAnAllocateInProgress()
    {
        using var h = new TurnHarness(o => o with { Transport = TurnTransport.Tcp });
        h.Server.Answer = false;
        h.Start();
        h.Client.ConnectionClosed(S(1));
        h.Pump();
        Assert.Equal(TurnFailureKind.ConnectionClosed, Assert.Single(h.EventsOf<TurnAllocationFailed>()).Kind);
    }
}
