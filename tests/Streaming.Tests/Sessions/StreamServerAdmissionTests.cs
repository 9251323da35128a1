using System.Runtime.CompilerServices;
using Transport.Streaming.Sessions;
using Transport.TestKit;

namespace Transport.Streaming.Tests.Sessions;

/// <summary>
/// Admission limits of <see cref="StreamServer"/> (per client address, not yet connected) and the idle limit
/// of its health policy, on virtual time: the health policy is applied by calling CheckHealth, not by waiting.
/// </summary>
public sealed class StreamServerAdmissionTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private static async IAsyncEnumerable<StreamOutput> Echo(StreamContext context, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var input in context.Inputs.WithCancellation(ct))
            yield return DataOutput.FromText("echo:" + ((DataInput)input).Text);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        var end = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > end) throw new TimeoutException("condition not reached");
            await Task.Delay(5);
        }
    }

    [Fact]
    public async Task AClientAtItsLimitIsRefusedWhileOthersAreServedAndGetsAPlaceBackWhenOneIsFreed()
    {
        await using var server = new StreamServer(() => new LambdaHandler(Echo),
            new StreamServerOptions { MaxConcurrentSessions = 10, MaxSessionsPerClient = 2, HealthCheckInterval = TimeSpan.FromHours(1) }, new ManualClock());
        Assert.True(server.TryReserve("192.0.2.1", out var first, out _));
        Assert.True(server.TryReserve("192.0.2.1", out var second, out _));
        Assert.False(server.TryReserve("192.0.2.1", out var none, out var refusal));
        Assert.Null(none);
        Assert.Equal(new AdmissionRefusal("client_limit_reached", 2), refusal);
        Assert.Contains("client_limit_reached", System.Text.Encoding.UTF8.GetString(refusal!.ToJson()), StringComparison.Ordinal);
        Assert.True(server.TryReserve("192.0.2.2", out var other, out _)); // another address is not affected
        Assert.True(server.TryReserve(out var uncounted, out _));           // nor a reservation for no address
        first!.Dispose();
        first.Dispose(); // twice gives back once
        Assert.True(server.TryReserve("192.0.2.1", out var again, out _));
        Assert.Equal(4, server.Reserved);
        foreach (var s in new[] { second, other, uncounted, again }) s!.Dispose();
        Assert.Equal(0, server.Reserved);
        Assert.Equal(0, server.Pending);
    }

    [Fact]
    public async Task SessionsNotYetConnectedAreLimitedAndAConnectedOneNoLongerCounts()
    {
        await using var server = new StreamServer(() => new LambdaHandler(Echo),
            new StreamServerOptions { MaxPendingSessions = 1, HealthCheckInterval = TimeSpan.FromHours(1) }, new ManualClock());
        Assert.True(server.TryReserve("192.0.2.1", out var slot, out _));
        var transport = new FakeTransport();
        var session = server.Start(slot!, transport);
        Assert.False(server.TryReserve("192.0.2.2", out _, out var refusal));
        Assert.Equal(new AdmissionRefusal("pending_limit_reached", 1), refusal);
        Assert.Equal(1, server.Pending);

        transport.Connect();
        await WaitUntil(() => session.State == SessionState.Running);
        Assert.Equal(0, server.Pending);
        Assert.True(server.TryReserve("192.0.2.2", out var next, out _));
        next!.Dispose();
        transport.ClientLeaves("done");
        await session.Completion.WaitAsync(Patience);
        Assert.Equal(0, server.Reserved);
        Assert.Equal(0, server.Pending); // a connected session that ends is not taken off the pending count twice
    }

    [Fact]
    public async Task AConnectedSessionWithNoInputAndNoOutputForTheIdleLimitIsEndedAndOneInUseIsNot()
    {
        var clock = new ManualClock();
        await using var server = new StreamServer(() => new LambdaHandler(Echo),
            new StreamServerOptions { IdleLimit = TimeSpan.FromSeconds(60), HealthCheckInterval = TimeSpan.FromHours(1) }, clock);
        server.TryReserve(out var idleSlot, out _);
        server.TryReserve(out var busySlot, out _);
        var idle = new FakeTransport();
        var busy = new FakeTransport();
        var idleSession = server.Start(idleSlot!, idle);
        var busySession = server.Start(busySlot!, busy);
        idle.Connect();
        busy.Connect();
        await WaitUntil(() => idleSession.State == SessionState.Running && busySession.State == SessionState.Running);

        clock.AdvanceTo(TimeSpan.FromSeconds(30));
        busy.ClientSends("still here");
        await WaitUntil(() => busy.Log.Contains("data:echo:still here"));
        clock.AdvanceTo(TimeSpan.FromSeconds(59.9));
        server.CheckHealth();
        await Task.Delay(50);
        Assert.False(idleSession.Completion.IsCompleted);

        clock.AdvanceTo(TimeSpan.FromSeconds(60));
        server.CheckHealth();
        var reason = await idleSession.Completion.WaitAsync(Patience);
        Assert.Equal(SessionEndKind.Idle, reason.Kind);
        Assert.Contains("idle limit", reason.Detail, StringComparison.Ordinal);
        Assert.False(busySession.Completion.IsCompleted); // its last input and output were 30 s ago
        Assert.Equal(1, server.Reserved);
    }

    [Fact]
    public void TheLibraryDefaultsBoundIdleSessionsAndTheConnectTime()
    {
        var defaults = new StreamServerOptions();
        Assert.Equal(TimeSpan.FromMinutes(5), defaults.IdleLimit);
        Assert.Equal(TimeSpan.FromSeconds(10), defaults.ConnectTimeout);
    }
}
