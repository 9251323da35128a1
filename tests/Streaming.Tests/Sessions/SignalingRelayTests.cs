using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Transport.Streaming.Sessions;
using Transport.TestKit;

namespace Transport.Streaming.Tests.Sessions;

/// <summary>The signaling relay on its own: rooms, signals passed on with the sender's id, errors as messages, bounds, clean-up.</summary>
public sealed class SignalingRelayTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    /// <summary>A client of the relay: what the server sends it, in order; its session ends with <see cref="End"/>.</summary>
    private sealed class Client
    {
        private readonly Channel<JsonElement> _in = Channel.CreateUnbounded<JsonElement>();
        private readonly TaskCompletionSource<SessionEndReason> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource? Stall;

        public Client(SignalingRelay relay, string session, Dictionary<string, string>? arguments = null)
        {
            Connection = relay.Attach(session, arguments, async (json, ct) =>
            {
                if (Stall is { } stall) await stall.Task.WaitAsync(ct);
                _in.Writer.TryWrite(JsonDocument.Parse(json).RootElement.Clone());
            }, _ended.Task);
        }

        public RelayConnection Connection { get; }

        public void Send(object message) => Connection.Receive(JsonSerializer.SerializeToUtf8Bytes(message));

        public void SendRaw(string json) => Connection.Receive(Encoding.UTF8.GetBytes(json));

        public async Task<JsonElement> NextAsync() => await _in.Reader.ReadAsync().AsTask().WaitAsync(Patience);

        public bool HasNothing => !_in.Reader.TryPeek(out _);

        public void End(string why) => _ended.TrySetResult(new SessionEndReason(SessionEndKind.ClientClosed, why));

        public async Task<string> JoinAsync(string room)
        {
            Send(new { type = "join", room });
            var joined = await NextAsync();
            Assert.Equal("joined", joined.GetProperty("type").GetString());
            Assert.Equal(room, joined.GetProperty("room").GetString());
            return joined.GetProperty("id").GetString()!;
        }
    }

    private static string Type(JsonElement e) => e.GetProperty("type").GetString()!;

    private static async Task<JsonElement> ErrorAsync(Client c, string error)
    {
        var m = await c.NextAsync();
        Assert.Equal("relay_error", Type(m));
        Assert.Equal(error, m.GetProperty("error").GetString());
        Assert.False(string.IsNullOrEmpty(m.GetProperty("message").GetString()));
        return m;
    }

    [Fact]
    public async Task ClientsOfARoomLearnEachOtherAndTheirSignalsArePassedOnInOrderWithTheSendersId()
    {
        var relay = new SignalingRelay(new SignalingRelayOptions { Enabled = true });
        var a = new Client(relay, "session-a");
        var b = new Client(relay, "session-b");
        var aId = await a.JoinAsync("lobby");
        Assert.Matches("^[0-9a-f]{16}$", aId);
        Assert.NotEqual("session-a", aId);   // the relay id, never the session id
        b.Send(new { type = "join", room = "lobby" });
        var bJoined = await b.NextAsync();
        var bId = bJoined.GetProperty("id").GetString()!;
        Assert.Equal([aId], bJoined.GetProperty("peers").EnumerateArray().Select(p => p.GetString()));
        var note = await a.NextAsync();
        Assert.Equal("peer_joined", Type(note));
        Assert.Equal(bId, note.GetProperty("id").GetString());

        // An offer and three candidates: passed on in order, with "from", the data untouched.
        a.Send(new { type = "signal", to = bId, data = new { sdp = new { type = "offer", sdp = "v=0\r\n..." } } });
        for (var i = 0; i < 3; i++)
            a.Send(new
            {
                type = "signal",
                to = bId,
                data = new { candidate = new { candidate = $"candidate:{i} 1 udp 1 127.0.0.1 {5000 + i} typ host", sdpMid = "0" } }
            });
        var offer = await b.NextAsync();
        Assert.Equal("signal", Type(offer));
        Assert.Equal(aId, offer.GetProperty("from").GetString());
        Assert.Equal("offer", offer.GetProperty("data").GetProperty("sdp").GetProperty("type").GetString());
        for (var i = 0; i < 3; i++)
            Assert.EndsWith($"{5000 + i} typ host", (await b.NextAsync()).GetProperty("data").GetProperty("candidate").GetProperty("candidate").GetString());
        b.Send(new { type = "signal", to = aId, data = new { sdp = new { type = "answer", sdp = "v=0" } } });
        Assert.Equal(bId, (await a.NextAsync()).GetProperty("from").GetString());
        Assert.Equal(5, relay.Relayed);
        Assert.Equal(2, relay.Peers);
        Assert.Equal(1, relay.Rooms);
    }

    [Fact]
    public async Task OneLeavingIsReportedToTheOthersWithTheReasonAndSignalsToItAreAnsweredPeerGone()
    {
        var relay = new SignalingRelay(new SignalingRelayOptions { Enabled = true });
        var a = new Client(relay, "a");
        var b = new Client(relay, "b");
        var aId = await a.JoinAsync("r");
        var bId = await b.JoinAsync("r");
        Assert.Equal("peer_joined", Type(await a.NextAsync()));
        b.End("the client closed the peer connection");
        var left = await a.NextAsync();
        Assert.Equal("peer_left", Type(left));
        Assert.Equal(bId, left.GetProperty("id").GetString());
        Assert.Contains("the client closed the peer connection", left.GetProperty("reason").GetString(), StringComparison.Ordinal);
        a.Send(new { type = "signal", to = bId, data = new { x = 1 } });
        Assert.Equal(bId, (await ErrorAsync(a, "peer_gone")).GetProperty("to").GetString());
        a.Send(new { type = "signal", to = "0123456789abcdef", data = new { x = 1 } });
        await ErrorAsync(a, "unknown_peer");
        // A leave by message is reported as well; the last one out takes the room with it.
        var c = new Client(relay, "c");
        var cId = await c.JoinAsync("r");
        Assert.Equal(cId, (await a.NextAsync()).GetProperty("id").GetString());
        c.Send(new { type = "leave" });
        var cLeft = await a.NextAsync();
        Assert.Equal(("peer_left", "left"), (Type(cLeft), cLeft.GetProperty("reason").GetString()));
        a.End("done");
        for (var i = 0; i < 500 && relay.Peers != 0; i++) await Task.Delay(10);   // the end is seen on the pool
        Assert.Equal(0, relay.Peers);
        Assert.Equal(0, relay.Rooms);
        Assert.True(relay.Refused >= 2);
        _ = aId;
    }

    [Fact]
    public async Task ThePolicyDecidesWhoMayCallWhomByDefaultTheSameRoom()
    {
        var relay = new SignalingRelay(new SignalingRelayOptions { Enabled = true });
        var a = new Client(relay, "a");
        var b = new Client(relay, "b");
        _ = await a.JoinAsync("one");
        var bId = await b.JoinAsync("two");
        a.Send(new { type = "signal", to = bId, data = new { x = 1 } });
        Assert.Equal(bId, (await ErrorAsync(a, "refused")).GetProperty("to").GetString());
        Assert.True(b.HasNothing);

        // A policy of our own: only callers whose session argument "role" is "agent" may call anyone.
        var custom = new SignalingRelay(new SignalingRelayOptions
        {
            Enabled = true,
            Policy = (caller, callee) => caller.Arguments.TryGetValue("role", out var r) && r == "agent",
            JoinPolicy = (session, arguments, room) => room != "closed",
        });
        var agent = new Client(custom, "agent", new() { ["role"] = "agent" });
        var user = new Client(custom, "user");
        var agentId = await agent.JoinAsync("x");
        var userId = await user.JoinAsync("y");
        agent.Send(new { type = "signal", to = userId, data = new { hello = true } });
        Assert.Equal(agentId, (await user.NextAsync()).GetProperty("from").GetString());
        user.Send(new { type = "signal", to = agentId, data = new { hello = true } });
        await ErrorAsync(user, "refused");
        var outsider = new Client(custom, "outsider");
        outsider.Send(new { type = "join", room = "closed" });
        await ErrorAsync(outsider, "refused");
    }

    [Fact]
    public async Task BadMessagesGetAnErrorAndNothingElse()
    {
        var relay = new SignalingRelay(new SignalingRelayOptions { Enabled = true, MaxMessageBytes = 1024, MaxRoomNameLength = 8 });
        var a = new Client(relay, "a");
        a.Send(new { type = "signal", to = "0123456789abcdef", data = new { x = 1 } });
        await ErrorAsync(a, "not_joined");
        a.Send(new { type = "join", room = "has space" });
        await ErrorAsync(a, "bad_room");
        a.Send(new { type = "join", room = "much-too-long" });
        await ErrorAsync(a, "bad_room");
        a.Send(new { type = "join", room = 7 });
        await ErrorAsync(a, "bad_room");
        _ = await a.JoinAsync("ok");
        a.Send(new { type = "join", room = "ok" });
        await ErrorAsync(a, "already_joined");
        a.SendRaw("{\"type\":\"signal\",\"to\":\"x\",\"data\":\"not an object\"}");
        await ErrorAsync(a, "malformed");
        a.SendRaw("{\"type\":\"signal\",\"data\":{}}");
        await ErrorAsync(a, "malformed");
        a.SendRaw("{\"type\":\"signal\",\"to\":\"x\",\"data\":{\"sdp\":\"" + new string('v', 2000) + "\"}}");
        await ErrorAsync(a, "too_large");
        a.SendRaw("{\"type\":\"join\"");
        await ErrorAsync(a, "malformed");
        Assert.Equal(4, relay.Dropped);
        Assert.Equal(1, relay.Peers);
    }

    [Fact]
    public async Task RoomsAreBoundedAndSignalsRateLimitedOnVirtualTime()
    {
        var clock = new ManualClock();
        var relay = new SignalingRelay(new SignalingRelayOptions { Enabled = true, MaxPeersPerRoom = 2, MaxRooms = 2, SignalBurst = 5, SignalsPerSecond = 10 },
            clock);
        var a = new Client(relay, "a");
        var b = new Client(relay, "b");
        _ = await a.JoinAsync("r");
        var bId = await b.JoinAsync("r");
        _ = await a.NextAsync(); // peer_joined
        var c = new Client(relay, "c");
        c.Send(new { type = "join", room = "r" });
        await ErrorAsync(c, "room_full");
        _ = await c.JoinAsync("s");
        var d = new Client(relay, "d");
        d.Send(new { type = "join", room = "t" });
        await ErrorAsync(d, "room_full");   // a third room

        // The bucket holds 5: the sixth signal at the same instant is refused; 100 ms later one more fits.
        for (var i = 0; i < 6; i++) a.Send(new { type = "signal", to = bId, data = new { n = i } });
        for (var i = 0; i < 5; i++) Assert.Equal(i, (await b.NextAsync()).GetProperty("data").GetProperty("n").GetInt32());
        await ErrorAsync(a, "rate_limited");
        clock.Advance(TimeSpan.FromMilliseconds(100));
        a.Send(new { type = "signal", to = bId, data = new { n = 6 } });
        Assert.Equal(6, (await b.NextAsync()).GetProperty("data").GetProperty("n").GetInt32());
        Assert.Equal(6, relay.Relayed);
    }

    [Fact]
    public async Task AClientThatDoesNotReadHoldsABoundedQueueAndItsCallersAreToldBacklog()
    {
        var relay = new SignalingRelay(new SignalingRelayOptions { Enabled = true, MaxQueuedPerPeer = 8, SignalBurst = 100 });
        var a = new Client(relay, "a");
        var b = new Client(relay, "b");
        _ = await a.JoinAsync("r");
        var bId = await b.JoinAsync("r");
        _ = await a.NextAsync();
        b.Stall = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // The pump holds at most one message in its send; the queue takes 8 more; the rest are refused, counted and
        // reported to the sender (whose own queue has room for the errors).
        for (var i = 0; i < 12; i++) a.Send(new { type = "signal", to = bId, data = new { n = i } });
        var backlog = (int)relay.Dropped;   // counted as each signal was refused (Receive runs synchronously)
        Assert.InRange(backlog, 3, 4);
        for (var i = 0; i < backlog; i++) Assert.Equal(bId, (await ErrorAsync(a, "backlog")).GetProperty("to").GetString());
        Assert.Equal(12 - backlog, relay.Relayed);
        b.Stall.SetResult();
        for (var i = 0; i < 12 - backlog; i++) Assert.Equal(i, (await b.NextAsync()).GetProperty("data").GetProperty("n").GetInt32());
    }
}
