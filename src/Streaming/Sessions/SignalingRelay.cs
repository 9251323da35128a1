using System.Security.Cryptography;
using System.Text.Json;
using System.Threading.Channels;
using Transport.Streaming.Io;

namespace Transport.Streaming.Sessions;

/// <summary>A client of the relay: its relay id (not its session id), its room, its session.</summary>
/// <param name="Id">The id other clients address it by (random, 16 hex digits).</param>
/// <param name="Room">The room it joined.</param>
/// <param name="SessionId">Its session's id (never shown to other clients).</param>
/// <param name="Arguments">Its session's arguments (e.g. the query of its WHIP POST).</param>
public sealed record RelayPeer(string Id, string Room, string SessionId, IReadOnlyDictionary<string, string> Arguments);

/// <summary>Options of the <see cref="SignalingRelay"/>, with their defaults.</summary>
public sealed record SignalingRelayOptions
{
    /// <summary>Whether WebRTC sessions may use the relay (its control messages). Default false (the library); the echo server turns it on.</summary>
    public bool Enabled { get; set; }

    /// <summary>The largest relay message a client may send, in bytes of JSON. Default 64 KiB (an SDP offer with many sections fits).</summary>
    public int MaxMessageBytes { get; set; } = 64 * 1024;

    /// <summary>Clients in one room at most. Default 64.</summary>
    public int MaxPeersPerRoom { get; set; } = 64;

    /// <summary>Rooms at most (a client's join that would make another is refused). Default 10,000.</summary>
    public int MaxRooms { get; set; } = 10_000;

    /// <summary>The longest room name (letters, digits, <c>-_.:</c>). Default 64.</summary>
    public int MaxRoomNameLength { get; set; } = 64;

    /// <summary>Signals a client may send per second, sustained (token bucket). Default 50.</summary>
    public double SignalsPerSecond { get; set; } = 50;

    /// <summary>Signals a client may send at once (the bucket's size). Default 200 (a burst of trickled candidates).</summary>
    public int SignalBurst { get; set; } = 200;

    /// <summary>Messages waiting to go to one client at most; more are dropped and their senders told (<c>backlog</c>). Default 256.</summary>
    public int MaxQueuedPerPeer { get; set; } = 256;

    /// <summary>
    /// Whether <c>caller</c> may signal <c>callee</c>. Null (the default): clients of the same room may. Runs on the
    /// caller's event loop: keep it quick.
    /// </summary>
    public Func<RelayPeer, RelayPeer, bool>? Policy { get; set; }

    /// <summary>Whether a session (its id and arguments) may join a room. Null (the default): any session, any room.</summary>
    public Func<string, IReadOnlyDictionary<string, string>, string, bool>? JoinPolicy { get; set; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for an option out of range.</summary>
    public void Validate()
    {
        if (MaxMessageBytes < 256) throw new ArgumentOutOfRangeException(nameof(MaxMessageBytes), "at least 256");
        if (MaxPeersPerRoom < 2) throw new ArgumentOutOfRangeException(nameof(MaxPeersPerRoom), "at least 2");
        if (MaxRooms < 1) throw new ArgumentOutOfRangeException(nameof(MaxRooms), "at least 1");
        if (MaxRoomNameLength < 1) throw new ArgumentOutOfRangeException(nameof(MaxRoomNameLength), "at least 1");
        if (!(SignalsPerSecond > 0)) throw new ArgumentOutOfRangeException(nameof(SignalsPerSecond), "more than 0");
        if (SignalBurst < 1) throw new ArgumentOutOfRangeException(nameof(SignalBurst), "at least 1");
        if (MaxQueuedPerPeer < 4) throw new ArgumentOutOfRangeException(nameof(MaxQueuedPerPeer), "at least 4");
    }
}

/// <summary>
/// Signaling between clients relayed by the server over their own control channels: a client joins a room, learns
/// the ids of the others, and sends them opaque signals (offers, answers, candidates, ICE restarts) that the server
/// passes on with the sender's id; the two then connect to each other directly. Errors come back as messages, and
/// every client of a room is told when another leaves (its session ended). The message format is in
/// docs/sessions.md ("Signaling relay"). Bounded: message size, room size, rooms, a token bucket of signals per
/// client, a queue per client (full: dropped, the sender told). Thread-safe.
/// </summary>
public sealed class SignalingRelay
{
    private readonly object _gate = new();
    private readonly Dictionary<string, Dictionary<string, Member>> _rooms = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Member> _members = new(StringComparer.Ordinal);
    private readonly Queue<string> _departedOrder = new();
    private readonly HashSet<string> _departed = new(StringComparer.Ordinal);
    private const int DepartedRemembered = 4096;
    // The most members and rooms held since their tables were last trimmed (under _gate): both are trimmed once drained
    // to an eighth of that (ShrinkRule), so a relay gives back what its busiest moment took.
    private int _membersHighWater, _roomsHighWater;
    private readonly TimeProvider _time;
    private long _relayed, _refused, _dropped, _errors;

    public SignalingRelay(SignalingRelayOptions? options = null, TimeProvider? time = null)
    {
        Options = options ?? new SignalingRelayOptions();
        Options.Validate();
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The options in force.</summary>
    public SignalingRelayOptions Options { get; }

    /// <summary>Clients in a room now.</summary>
    public int Peers { get { lock (_gate) return _members.Count; } }

    /// <summary>Rooms with at least one client now.</summary>
    public int Rooms { get { lock (_gate) return _rooms.Count; } }

    /// <summary>Signals passed on.</summary>
    public long Relayed => Interlocked.Read(ref _relayed);

    /// <summary>Signals or joins refused (policy, unknown or departed peer, full room, bad room name, not joined).</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>Messages dropped: over the size, the rate, or a full queue (a signal, or an error to its sender); malformed relay messages.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Error messages sent back to clients.</summary>
    public long ErrorsSent => Interlocked.Read(ref _errors);

    /// <summary>
    /// Connects a session to the relay: <paramref name="send"/> carries JSON to its client (its control channel, in
    /// order); <paramref name="ended"/> completing (with the reason) takes it out of its room and tells the others.
    /// </summary>
    public RelayConnection Attach(string sessionId, IReadOnlyDictionary<string, string>? arguments,
        Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> send, Task<SessionEndReason> ended)
    {
        ArgumentNullException.ThrowIfNull(sessionId);
        ArgumentNullException.ThrowIfNull(send);
        ArgumentNullException.ThrowIfNull(ended);
        var connection = new RelayConnection(this, sessionId, arguments ?? new Dictionary<string, string>(), send, Options.MaxQueuedPerPeer,
            Options.SignalBurst, _time);
        _ = ended.ContinueWith(t => connection.Close(t.IsCompletedSuccessfully ? t.Result.ToString() : "session ended"), CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return connection;
    }

    /// <summary>True for the control message types the relay takes (<c>join</c>, <c>leave</c>, <c>signal</c>).</summary>
    public static bool IsRelayType(JsonElement type) => type.ValueEquals("join") || type.ValueEquals("leave") || type.ValueEquals("signal");

    internal void Handle(RelayConnection from, ReadOnlySpan<byte> json)
    {
        if (json.Length > Options.MaxMessageBytes)
        {
            Interlocked.Increment(ref _dropped);
            Error(from, "too_large", $"a relay message is at most {Options.MaxMessageBytes} bytes", null);
            return;
        }
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json.ToArray()); }
        catch (JsonException)
        {
            Interlocked.Increment(ref _dropped);
            Error(from, "malformed", "not JSON", null);
            return;
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
            {
                Interlocked.Increment(ref _dropped);
                Error(from, "malformed", "a relay message is an object with a type", null);
                return;
            }
            if (type.ValueEquals("join")) Join(from, root);
            else if (type.ValueEquals("leave")) Leave(from, "left");
            else if (type.ValueEquals("signal")) Signal(from, root);
            else
            {
                Interlocked.Increment(ref _dropped);
                Error(from, "malformed", "unknown relay message type", null);
            }
        }
    }

    private void Join(RelayConnection from, JsonElement root)
    {
        if (!root.TryGetProperty("room", out var roomElement) || roomElement.ValueKind != JsonValueKind.String
            || roomElement.GetString() is not { } room || !ValidRoom(room))
        {
            Refuse(from, "bad_room", $"a room is 1-{Options.MaxRoomNameLength} letters, digits or -_.:", null);
            return;
        }
        if (Options.JoinPolicy is { } joinPolicy && !joinPolicy(from.SessionId, from.Arguments, room))
        {
            Refuse(from, "refused", "not allowed in this room", null);
            return;
        }
        Member joined;
        Member[] others;
        lock (_gate)
        {
            if (from.Member is not null) { Refuse(from, "already_joined", "leave the room first", null); return; }
            if (from.Closed) return;
            if (!_rooms.TryGetValue(room, out var members))
            {
                if (_rooms.Count >= Options.MaxRooms) { Refuse(from, "room_full", "the server has its rooms", null); return; }
                members = new Dictionary<string, Member>(StringComparer.Ordinal);
                _rooms[room] = members;
            }
            if (members.Count >= Options.MaxPeersPerRoom) { Refuse(from, "room_full", $"a room has at most {Options.MaxPeersPerRoom} clients", null); return; }
            string id;
            do id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)); while (_members.ContainsKey(id) || _departed.Contains(id));
            joined = new Member(new RelayPeer(id, room, from.SessionId, from.Arguments), from);
            others = [.. members.Values];
            members[id] = joined;
            _members[id] = joined;
            _membersHighWater = Math.Max(_membersHighWater, _members.Count);
            _roomsHighWater = Math.Max(_roomsHighWater, _rooms.Count);
            from.Member = joined;
        }
        from.Enqueue(Write(w =>
        {
            w.WriteString("type", "joined");
            w.WriteString("id", joined.Peer.Id);
            w.WriteString("room", joined.Peer.Room);
            w.WriteStartArray("peers");
            foreach (var o in others) w.WriteStringValue(o.Peer.Id);
            w.WriteEndArray();
        }));
        var note = Write(w => { w.WriteString("type", "peer_joined"); w.WriteString("id", joined.Peer.Id); });
        foreach (var o in others) o.Connection.Enqueue(note);
    }

    private void Signal(RelayConnection from, JsonElement root)
    {
        string? to = root.TryGetProperty("to", out var toElement) && toElement.ValueKind == JsonValueKind.String ? toElement.GetString() : null;
        if (!root.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Object || to is null)
        {
            Interlocked.Increment(ref _dropped);
            Error(from, "malformed", "a signal has a string 'to' and an object 'data'", to);
            return;
        }
        if (!from.TakeToken(Options.SignalsPerSecond))
        {
            Interlocked.Increment(ref _dropped);
            Error(from, "rate_limited", $"at most {Options.SignalsPerSecond:0.##} signals a second", to);
            return;
        }
        Member? sender, target;
        bool departed;
        lock (_gate)
        {
            sender = from.Member;
            _members.TryGetValue(to, out target);
            departed = target is null && _departed.Contains(to);
        }
        if (sender is null) { Refuse(from, "not_joined", "join a room first", to); return; }
        if (target is null)
        {
            if (departed) Refuse(from, "peer_gone", "that peer left", to);
            else Refuse(from, "unknown_peer", "no peer has that id", to);
            return;
        }
        if (ReferenceEquals(target, sender)) { Refuse(from, "refused", "a peer does not signal itself", to); return; }
        var allowed = Options.Policy is { } policy ? policy(sender.Peer, target.Peer) : sender.Peer.Room == target.Peer.Room;
        if (!allowed) { Refuse(from, "refused", "not allowed to signal that peer", to); return; }
        var message = Write(w =>
        {
            w.WriteString("type", "signal");
            w.WriteString("from", sender.Peer.Id);
            w.WritePropertyName("data");
            data.WriteTo(w);
        });
        if (target.Connection.Enqueue(message)) Interlocked.Increment(ref _relayed);
        else
        {
            Interlocked.Increment(ref _dropped);
            if (target.Connection.Closed) Refuse(from, "peer_gone", "that peer left", to);
            else Error(from, "backlog", "that peer is not reading its signals: dropped", to);
        }
    }

    /// <summary>Takes <paramref name="from"/> out of its room; the others are told (<c>peer_left</c> with the reason).</summary>
    internal void Leave(RelayConnection from, string reason)
    {
        Member? member;
        Member[] others = [];
        lock (_gate)
        {
            member = from.Member;
            if (member is null) return;
            from.Member = null;
            _members.Remove(member.Peer.Id);
            if (_departed.Add(member.Peer.Id))
            {
                _departedOrder.Enqueue(member.Peer.Id);
                if (_departedOrder.Count > DepartedRemembered) _departed.Remove(_departedOrder.Dequeue());
            }
            if (_rooms.TryGetValue(member.Peer.Room, out var members))
            {
                members.Remove(member.Peer.Id);
                if (members.Count == 0) _rooms.Remove(member.Peer.Room);
                else others = [.. members.Values];
            }
            TrimIfDrained(_members, ref _membersHighWater);
            TrimIfDrained(_rooms, ref _roomsHighWater);
        }
        var note = Write(w => { w.WriteString("type", "peer_left"); w.WriteString("id", member.Peer.Id); w.WriteString("reason", reason); });
        foreach (var o in others) o.Connection.Enqueue(note);
    }

    private static void TrimIfDrained<TValue>(Dictionary<string, TValue> table, ref int highWater)
    {
        if (!ShrinkRule.Drained(table.Count, highWater, ShrinkingDictionary<string, TValue>.DefaultFloor)) return;
        table.TrimExcess();
        highWater = table.Count;
    }

    /// <summary>Slots of the members' and the rooms' tables (tests: trimmed once drained).</summary>
    internal (int Members, int Rooms) TableCapacity
    {
        get { lock (_gate) return (_members.EnsureCapacity(0), _rooms.EnsureCapacity(0)); }
    }

    private bool ValidRoom(string room)
    {
        if (room.Length == 0 || room.Length > Options.MaxRoomNameLength) return false;
        foreach (var c in room)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':')) return false;
        return true;
    }

    private void Refuse(RelayConnection to, string error, string message, string? peer)
    {
        Interlocked.Increment(ref _refused);
        Error(to, error, message, peer);
    }


    private void Error(RelayConnection to, string error, string message, string? peer)
    {
        Interlocked.Increment(ref _errors);
        // A client whose own queue is full (it sends faster than it reads) loses the error: counted.
        var queued = to.Enqueue(Write(w =>
        {
            w.WriteString("type", "relay_error");
            w.WriteString("error", error);
            w.WriteString("message", message);
            if (peer is not null) w.WriteString("to", peer);
        }));
        if (!queued && !to.Closed) Interlocked.Increment(ref _dropped);
    }

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    internal sealed record Member(RelayPeer Peer, RelayConnection Connection);
}

/// <summary>One session's place in the <see cref="SignalingRelay"/>: its messages in, its queue out.</summary>
public sealed class RelayConnection
{
    private readonly SignalingRelay _relay;
    private readonly Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> _send;
    private readonly Channel<byte[]> _out;
    private readonly CancellationTokenSource _stop = new();
    private readonly TimeProvider _time;
    private readonly object _bucketGate = new();
    private readonly int _burst;
    private double _tokens;
    private long _refilledAt;
    private int _closed;

    internal RelayConnection(SignalingRelay relay, string sessionId, IReadOnlyDictionary<string, string> arguments,
        Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask> send, int queue, int burst, TimeProvider time)
    {
        _relay = relay;
        SessionId = sessionId;
        Arguments = arguments;
        _send = send;
        _time = time;
        _burst = burst;
        _tokens = burst;
        _refilledAt = time.GetTimestamp();
        _out = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(queue) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        Pump = Task.Run(PumpAsync);
    }

    internal string SessionId { get; }
    internal IReadOnlyDictionary<string, string> Arguments { get; }
    internal SignalingRelay.Member? Member { get; set; }

    /// <summary>Its relay id once it joined a room, else null.</summary>
    public string? PeerId => Member?.Peer.Id;

    /// <summary>True once its session ended.</summary>
    public bool Closed => Volatile.Read(ref _closed) != 0;

    /// <summary>Sends what is queued for the client, in order, until the session ends.</summary>
    internal Task Pump { get; }

    /// <summary>A relay message (<c>join</c>, <c>leave</c>, <c>signal</c>) from the client.</summary>
    public void Receive(ReadOnlySpan<byte> json)
    {
        if (!Closed) _relay.Handle(this, json);
    }

    internal bool Enqueue(byte[] message) => !Closed && _out.Writer.TryWrite(message);

    internal bool TakeToken(double perSecond)
    {
        lock (_bucketGate)
        {
            var now = _time.GetTimestamp();
            _tokens = Math.Min(_burst, _tokens + _time.GetElapsedTime(_refilledAt, now).TotalSeconds * perSecond);
            _refilledAt = now;
            if (_tokens < 1) return false;
            _tokens -= 1;
            return true;
        }
    }

    internal void Close(string reason)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        _relay.Leave(this, reason);
        _out.Writer.TryComplete();
        _stop.Cancel();
    }

    private async Task PumpAsync()
    {
        try
        {
            await foreach (var message in _out.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
                await _send(message, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) { }
        catch (TransportNotConnectedException) { Close("the session's transport is gone"); }
        catch (ObjectDisposedException) { Close("the session's transport is gone"); }
    }
}
