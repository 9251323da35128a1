using System.Runtime.CompilerServices;
using Transport.Streaming.Sessions;
using Transport.TestKit;

namespace Transport.Streaming.Tests.Sessions;

public sealed class StreamSessionTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private static async IAsyncEnumerable<StreamOutput> GoodbyeThenEnd(StreamContext context, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var input in context.Inputs.WithCancellation(ct))
        {
            var text = ((DataInput)input).Text;
            yield return DataOutput.FromText("echo:" + text);
            if (text == "bye")
            {
                yield return DataOutput.FromText("goodbye");
                yield return new EndStream("said goodbye");
                yield return DataOutput.FromText("never sent");
            }
        }
    }

    private static async IAsyncEnumerable<StreamOutput> Throws(StreamContext context, [EnumeratorCancellation] CancellationToken ct)
    {
        await Task.Yield();
        yield return DataOutput.FromText("first");
        throw new InvalidOperationException("handler broke");
    }

    private static async IAsyncEnumerable<StreamOutput> Waits(StreamContext context, [EnumeratorCancellation] CancellationToken ct)
    {
        await Task.Delay(Timeout.Infinite, ct);
        yield break;
    }

    [Fact]
    public async Task EndStreamDeliversQueuedOutputThenEndStreamThenClose()
    {
        LambdaHandler? handler = null;
        await using var server = new StreamServer(() => handler = new LambdaHandler(GoodbyeThenEnd));
        Assert.True(server.TryReserve(out var slot, out _));
        var transport = new FakeTransport();
        var session = server.Start(slot!, transport);
        transport.Connect();
        transport.ClientSends("hello");
        transport.ClientSends("bye");
        var reason = await session.Completion.WaitAsync(Patience);

        Assert.Equal(new SessionEndReason(SessionEndKind.EndStream, "said goodbye"), reason);
        Assert.Equal(
            ["data:echo:hello", "data:echo:bye", "data:goodbye", "control:{\"type\":\"end_stream\",\"reason\":\"said goodbye\"}", "close:EndStream"],
            transport.Log);
        Assert.True(transport.Disposed);
        Assert.Equal(["start", "shutdown:EndStream"], handler!.Hooks);
        Assert.Equal(0, server.Reserved);
        Assert.Empty(server.Sessions);
        Assert.NotNull(session.TeardownDuration);
        Assert.Equal(SessionState.Ended, session.State);
    }

    [Fact]
    public async Task AHandlerExceptionSendsErrorClosesAndTheServerServesOthers()
    {
        var calls = 0;
        await using var server = new StreamServer(() => ++calls == 1 ? new LambdaHandler(Throws) : new LambdaHandler(GoodbyeThenEnd));
        server.TryReserve(out var slot1, out _);
        var t1 = new FakeTransport();
        var s1 = server.Start(slot1!, t1);
        t1.Connect();
        var reason = await s1.Completion.WaitAsync(Patience);
        Assert.Equal(SessionEndKind.HandlerError, reason.Kind);
        Assert.Equal("handler broke", reason.Detail);
        Assert.Equal(["data:first", "control:{\"type\":\"error\",\"message\":\"handler broke\"}", "close:HandlerError"], t1.Log);

        Assert.True(server.TryReserve(out var slot2, out _));
        var t2 = new FakeTransport();
        var s2 = server.Start(slot2!, t2);
        t2.Connect();
        t2.ClientSends("bye");
        Assert.Equal(SessionEndKind.EndStream, (await s2.Completion.WaitAsync(Patience)).Kind);
    }

    [Fact]
    public async Task ConcurrencyLimitRefusesAtOnceAndFreesTheSlotTheMomentASessionEnds()
    {
        await using var server = new StreamServer(() => new LambdaHandler(GoodbyeThenEnd), new StreamServerOptions { MaxConcurrentSessions = 1 });
        for (var round = 0; round < 50; round++)
        {
            Assert.True(server.TryReserve(out var slot, out _), $"round {round}: a new session was refused after the old one ended");
            Assert.False(server.TryReserve(out _, out var refusal));
            Assert.Equal("{\"status\":\"failed\",\"meta\":{\"error\":\"concurrency_limit_reached\",\"limit\":1}}",
                System.Text.Encoding.UTF8.GetString(refusal!.ToJson()));
            var t = new FakeTransport();
            var s = server.Start(slot!, t);
            t.Connect();
            t.ClientSends("bye");
            await s.Completion.WaitAsync(Patience);
        }
    }

    [Fact]
    public async Task AnUnusedSlotCanBeGivenBack()
    {
        await using var server = new StreamServer(() => new LambdaHandler(GoodbyeThenEnd), new StreamServerOptions { MaxConcurrentSessions = 1 });
        Assert.True(server.TryReserve(out var slot, out _));
        slot!.Dispose();
        slot.Dispose();
        Assert.Equal(0, server.Reserved);
        Assert.True(server.TryReserve(out _, out _));
    }

    [Fact]
    public async Task AClientThatNeverConnectsIsDroppedAtTheConnectTimeout()
    {
        var clock = new ManualClock();
        await using var server = new StreamServer(() => new LambdaHandler(GoodbyeThenEnd),
            new StreamServerOptions { MaxConcurrentSessions = 1, ConnectTimeout = TimeSpan.FromSeconds(30), HealthCheckInterval = TimeSpan.FromHours(1) },
                clock);
        server.TryReserve(out var slot, out _);
        var transport = new FakeTransport();
        var session = server.Start(slot!, transport);
        // The session runs on its own task: move time only once its connect timer is armed.
        await WaitUntil(() => clock.NextTimerDue == TimeSpan.FromSeconds(30));
        clock.AdvanceTo(TimeSpan.FromSeconds(29.9));
        await Task.Delay(50);
        Assert.False(session.Completion.IsCompleted);
        clock.AdvanceTo(TimeSpan.FromSeconds(30));
        var reason = await session.Completion.WaitAsync(Patience);
        Assert.Equal(SessionEndKind.ConnectTimeout, reason.Kind);
        Assert.Equal(0, server.Reserved);
    }

    [Fact]
    public async Task AClientThatLeavesEndsTheSessionAndCancelsTheHandler()
    {
        LambdaHandler? handler = null;
        await using var server = new StreamServer(() => handler = new LambdaHandler(Waits));
        server.TryReserve(out var slot, out _);
        var transport = new FakeTransport();
        var session = server.Start(slot!, transport);
        transport.Connect();
        await WaitUntil(() => session.State == SessionState.Running);
        transport.ClientLeaves("peer closed");
        var reason = await session.Completion.WaitAsync(Patience);
        Assert.Equal(new SessionEndReason(SessionEndKind.ClientClosed, "peer closed"), reason);
        Assert.Equal(["start", "shutdown:ClientClosed"], handler!.Hooks);
        Assert.True(transport.Disposed);
    }

    [Fact]
    public async Task TheHealthPolicyClosesADisconnectedSession()
    {
        await using var server = new StreamServer(() => new LambdaHandler(Waits),
            new StreamServerOptions { DisconnectedLimit = TimeSpan.FromSeconds(10), HealthCheckInterval = TimeSpan.FromHours(1) });
        server.TryReserve(out var slot, out _);
        var transport = new FakeTransport();
        var session = server.Start(slot!, transport);
        transport.Connect();
        await WaitUntil(() => session.State == SessionState.Running);
        transport.Health = new TransportHealth("disconnected", DisconnectedFor: TimeSpan.FromSeconds(9.9));
        server.CheckHealth();
        Assert.False(session.Completion.IsCompleted);
        transport.Health = new TransportHealth("disconnected", DisconnectedFor: TimeSpan.FromSeconds(10));
        server.CheckHealth();
        var reason = await session.Completion.WaitAsync(Patience);
        Assert.Equal(SessionEndKind.Disconnected, reason.Kind);
        Assert.Contains("10 s", reason.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheHealthPolicyClosesAStalledHandlerButNotAnIdleOne()
    {
        var clock = new ManualClock();
        await using var server = new StreamServer(() => new LambdaHandler(Waits),
            new StreamServerOptions { HandlerStallLimit = TimeSpan.FromSeconds(5), HealthCheckInterval = TimeSpan.FromHours(1), DisconnectedLimit = null },
                clock);
        server.TryReserve(out var slot, out _);
        var transport = new FakeTransport();
        var session = server.Start(slot!, transport);
        transport.Connect();
        await WaitUntil(() => session.State == SessionState.Running);
        clock.Advance(TimeSpan.FromSeconds(60));
        server.CheckHealth();                                // idle: nothing waiting for it
        Assert.False(session.Completion.IsCompleted);
        transport.ClientSends("are you there?");
        var health = session.GetHealth();
        Assert.Equal(1, health.PendingInputs);
        server.CheckHealth();
        var reason = await session.Completion.WaitAsync(Patience);
        Assert.Equal(SessionEndKind.HandlerStalled, reason.Kind);
    }

    [Fact]
    public async Task TheSessionTimeLimitEndsTheSession()
    {
        var clock = new ManualClock();
        await using var server = new StreamServer(() => new LambdaHandler(Waits),
            new StreamServerOptions { SessionTimeLimit = TimeSpan.FromMinutes(2), HealthCheckInterval = TimeSpan.FromHours(1) }, clock);
        server.TryReserve(out var slot, out _);
        var transport = new FakeTransport();
        var session = server.Start(slot!, transport);
        transport.Connect();
        await WaitUntil(() => session.State == SessionState.Running && clock.NextTimerDue == TimeSpan.FromMinutes(2));
        clock.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(SessionEndKind.TimeLimit, (await session.Completion.WaitAsync(Patience)).Kind);
    }

    [Fact]
    public async Task SessionsAreListedWithTheirHealthAsJson()
    {
        await using var server = new StreamServer(() => new LambdaHandler(Waits));
        server.TryReserve(out var slot, out _);
        var transport = new FakeTransport { Health = new TransportHealth("connected", "host 127.0.0.1:1 -> host 127.0.0.1:2", TimeSpan.FromMilliseconds(3)) };
        var session = server.Start(slot!, transport, id: "abc");
        transport.Connect();
        await WaitUntil(() => session.State == SessionState.Running);
        using var doc = System.Text.Json.JsonDocument.Parse(server.SessionsJson());
        var entry = doc.RootElement.EnumerateArray().Single();
        Assert.Equal("abc", entry.GetProperty("id").GetString());
        Assert.Equal("running", entry.GetProperty("state").GetString());
        Assert.Equal(3, entry.GetProperty("connection").GetProperty("rttMs").GetDouble());
    }

    [Fact]
    public async Task DisposingTheServerEndsEverySessionAndRefusesNewOnes()
    {
        var server = new StreamServer(() => new LambdaHandler(Waits));
        server.TryReserve(out var slot, out _);
        var transport = new FakeTransport();
        var session = server.Start(slot!, transport);
        transport.Connect();
        await server.DisposeAsync();
        Assert.Equal(SessionEndKind.ServerShutdown, (await session.Completion.WaitAsync(Patience)).Kind);
        Assert.False(server.TryReserve(out _, out var refusal));
        Assert.Equal("server_shutting_down", refusal!.Error);
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
}
