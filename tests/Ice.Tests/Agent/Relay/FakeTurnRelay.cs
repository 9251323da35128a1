using System.Net;
using System.Text;
using Transport.Ice.Stun;
using Transport.Ice.Turn;

namespace Transport.Ice.Tests.Agent.Relay;

/// <summary>
/// A small TURN server for virtual-time agent tests, written with our STUN writer: long-term credentials (401,
/// then MD5), allocations with a lifetime that really ends, permissions that gate relaying (RFC 8656 section 9),
/// channels (section 12), and relaying between its own allocations (Send indication or ChannelData in, Data
/// indication or ChannelData out, padded for TCP clients). Failures can be injected: an error code for Allocate,
/// refused Refreshes, silence. It logs every message with its virtual time.
/// </summary>
internal sealed class FakeTurnRelay
{
    public const string Realm = "relay.test";
    public const string User = "alice";
    public const string Pass = "secret";
    private const string Nonce = "nonce-0123456789";

    public static readonly IPEndPoint Address = new(IPAddress.Parse("192.0.2.1"), 3478);
    public static readonly IPAddress RelayIp = IPAddress.Parse("192.0.2.1");

    /// <summary>A server at <paramref name="address"/> (default <see cref="Address"/>); its relayed addresses are on that IP.</summary>
    public FakeTurnRelay(IPEndPoint? address = null) => EndPoint = address ?? Address;

    /// <summary>Where this server listens.</summary>
    public IPEndPoint EndPoint { get; }

    private readonly Dictionary<(IPEndPoint Client, bool Tcp), Allocation> _allocations = new();
    private int _nextPort = 50000;

    public uint GrantedLifetime { get; set; } = 600;
    /// <summary>Answer Allocate with this error code (signed) after authentication.</summary>
    public (int Code, string Reason)? FailAllocate { get; set; }
    /// <summary>Answer every Refresh but LIFETIME 0 with 437.</summary>
    public bool RefuseRefresh { get; set; }
    /// <summary>Answer CreatePermission from this client with 403 Forbidden.</summary>
    public IPEndPoint? RefusePermissionsOf { get; set; }
    /// <summary>False: swallow everything (timeouts).</summary>
    public bool Answer { get; set; } = true;
    /// <summary>What the server reports as XOR-MAPPED-ADDRESS for a client (default: its source address, no NAT).</summary>
    public Func<IPEndPoint, IPEndPoint>? MappedAddress { get; set; }

    public List<(TimeSpan At, IPEndPoint Client, string What)> Log { get; } = new();
    public int Relayed { get; private set; }
    public int DroppedWithoutPermission { get; private set; }

    public IEnumerable<(TimeSpan At, IPEndPoint Client, string What)> LogOf(IPEndPoint client, string what) =>
        Log.Where(l => l.Client.Equals(client) && l.What == what);

    private sealed class Allocation(IPEndPoint client, bool tcp, IPEndPoint relayed)
    {
        public IPEndPoint Client { get; } = client;
        public bool Tcp { get; } = tcp;
        public IPEndPoint Relayed { get; } = relayed;
        public TimeSpan ExpiresAt { get; set; }
        public Dictionary<IPAddress, TimeSpan> Permissions { get; } = new();
        public Dictionary<ushort, IPEndPoint> Channels { get; } = new();
    }

    /// <summary>Handles one message from <paramref name="client"/>; returns what the server sends, with the destination client.</summary>
    public List<(IPEndPoint To, bool Tcp, byte[] Data)> Handle(ReadOnlySpan<byte> message, IPEndPoint client, bool tcp, TimeSpan now)
    {
        var output = new List<(IPEndPoint, bool, byte[])>();
        Expire(now);
        if (!Answer) { Log.Add((now, client, "ignored")); return output; }
        _allocations.TryGetValue((client, tcp), out var allocation);
        if (ChannelData.TryRead(message, out var channelData))
        {
            Log.Add((now, client, "ChannelData"));
            if (allocation is not null && allocation.Channels.TryGetValue(channelData.Channel, out var peer))
                RelayFrom(allocation, peer, channelData.Data, now, output);
            return output;
        }
        if (!StunMessage.TryRead(message, out var m)) throw new InvalidOperationException("the client sent neither STUN nor ChannelData");
        Assert.True(!m.HasFingerprint || m.CheckFingerprint());
        if (m.Class == StunClass.Indication)
        {
            Assert.Equal(StunMethod.Send, m.Method);
            Log.Add((now, client, "Send"));
            if (allocation is not null && m.TryGetXorPeerAddress(out var peer) && m.TryGetData(out var data))
                RelayFrom(allocation, peer.ToEndPoint(), data, now, output);
            return output;
        }
        Assert.Equal(StunClass.Request, m.Class);
        var method = m.Method switch
        {
            StunMethod.Allocate => "Allocate",
            StunMethod.Refresh => "Refresh",
            StunMethod.CreatePermission => "CreatePermission",
            StunMethod.ChannelBind => "ChannelBind",
            StunMethod.Binding => "Binding",
            _ => "Other",
        };
        Log.Add((now, client, method));
        var buffer = new byte[1500];
        if (m.Method == StunMethod.Binding)
        {
            // A TURN server is a STUN server too (RFC 8656 section 3): no credentials for Binding.
            var binding = new StunMessageWriter(buffer, StunMessageType.BindingSuccess, m.TransactionId);
            binding.AddXorAddress(StunAttributeType.XorMappedAddress, MappedAddress?.Invoke(client) ?? client);
            binding.AddFingerprint();
            output.Add((client, tcp, buffer.AsSpan(0, binding.Length).ToArray()));
            return output;
        }
        if (!m.HasMessageIntegrity) { output.Add((client, tcp, Error(buffer, m, StunErrorCode.Unauthenticated, "Unauthorized", null))); return output; }
        Assert.True(m.TryGetUsername(out var user));
        using var key = StunKey.LongTerm(Encoding.UTF8.GetString(user), Realm, Pass);
        if (Encoding.UTF8.GetString(user) != User || !m.CheckIntegrity(key))
        {
            Log.Add((now, client, "401"));
            output.Add((client, tcp, Error(buffer, m, StunErrorCode.Unauthenticated, "Unauthorized", null)));
            return output;
        }
        var w = new StunMessageWriter(buffer, new StunMessageType(m.Method, StunClass.SuccessResponse), m.TransactionId);
        switch (m.Method)
        {
            case StunMethod.Allocate:
                if (FailAllocate is { } f) { output.Add((client, tcp, Error(buffer, m, f.Code, f.Reason, key))); return output; }
                if (allocation is not null) { output.Add((client, tcp, Error(buffer, m, 437, "Allocation Mismatch", key))); return output; }
                allocation = new Allocation(client, tcp, new IPEndPoint(EndPoint.Address, _nextPort++));
                var requested = m.TryGetLifetime(out var l) ? l : 600;
                allocation.ExpiresAt = now + TimeSpan.FromSeconds(Math.Min(requested, GrantedLifetime));
                _allocations[(client, tcp)] = allocation;
                w.AddXorAddress(StunAttributeType.XorRelayedAddress, allocation.Relayed);
                w.AddXorAddress(StunAttributeType.XorMappedAddress, MappedAddress?.Invoke(client) ?? client);
                w.AddLifetime(Math.Min(requested, GrantedLifetime));
                break;
            case StunMethod.Refresh:
                m.TryGetLifetime(out var lifetime);
                if (allocation is null || (RefuseRefresh && lifetime != 0))
                {
                    output.Add((client, tcp, Error(buffer, m, 437, "Allocation Mismatch", key)));
                    return output;
                }
                if (lifetime == 0) _allocations.Remove((client, tcp));
                else allocation.ExpiresAt = now + TimeSpan.FromSeconds(Math.Min(lifetime, GrantedLifetime));
                w.AddLifetime(lifetime == 0 ? 0 : Math.Min(lifetime, GrantedLifetime));
                break;
            case StunMethod.CreatePermission:
                if (client.Equals(RefusePermissionsOf))
                {
                    output.Add((client, tcp, Error(buffer, m, StunErrorCode.Forbidden, "Forbidden", key)));
                    return output;
                }
                if (allocation is null) { output.Add((client, tcp, Error(buffer, m, 437, "Allocation Mismatch", key))); return output; }
                Assert.True(m.TryGetXorPeerAddress(out var permitted));
                allocation.Permissions[permitted.ToIPAddress()] = now + TurnClient.PermissionLifetime;
                break;
            case StunMethod.ChannelBind:
                if (allocation is null) { output.Add((client, tcp, Error(buffer, m, 437, "Allocation Mismatch", key))); return output; }
                Assert.True(m.TryGetChannelNumber(out var number));
                Assert.True(m.TryGetXorPeerAddress(out var bound));
                allocation.Channels[number] = bound.ToEndPoint();
                allocation.Permissions[bound.ToIPAddress()] = now + TurnClient.PermissionLifetime;
                break;
        }
        w.AddMessageIntegrity(key);
        w.AddFingerprint();
        output.Add((client, tcp, buffer.AsSpan(0, w.Length).ToArray()));
        return output;
    }

    /// <summary>Relays from an allocation to a peer; only between our own allocations (the test network has no other hosts).</summary>
    private void RelayFrom(Allocation source, IPEndPoint peer, ReadOnlySpan<byte> data, TimeSpan now, List<(IPEndPoint, bool, byte[])> output)
    {
        // RFC 8656 section 9: the sending side needs a permission for the peer.
        if (!HasPermission(source, peer.Address, now)) { DroppedWithoutPermission++; return; }
        var target = _allocations.Values.FirstOrDefault(a => a.Relayed.Equals(peer));
        if (target is null) return;
        // ... and the receiving side for the sender's IP (section 10.3).
        if (!HasPermission(target, source.Relayed.Address, now)) { DroppedWithoutPermission++; return; }
        Relayed++;
        var buffer = new byte[1600];
        foreach (var (number, bound) in target.Channels)
            if (bound.Equals(source.Relayed))
            {
                var n = ChannelData.Write(buffer, number, data, padded: target.Tcp);
                output.Add((target.Client, target.Tcp, buffer.AsSpan(0, n).ToArray()));
                return;
            }
        var w = new StunMessageWriter(buffer, new StunMessageType(StunMethod.Data, StunClass.Indication), new byte[12]);
        w.AddXorAddress(StunAttributeType.XorPeerAddress, source.Relayed);
        w.Add(StunAttributeType.Data, data);
        w.AddFingerprint();
        output.Add((target.Client, target.Tcp, buffer.AsSpan(0, w.Length).ToArray()));
    }

    private static bool HasPermission(Allocation a, IPAddress ip, TimeSpan now) => a.Permissions.TryGetValue(ip, out var until) && until > now;

    private void Expire(TimeSpan now)
    {
        foreach (var key in _allocations.Where(a => a.Value.ExpiresAt <= now).Select(a => a.Key).ToList())
        {
            Log.Add((now, key.Client, "expired"));
            _allocations.Remove(key);
        }
    }

    public bool HasAllocation(IPEndPoint client, bool tcp = false) => _allocations.ContainsKey((client, tcp));

    /// <summary>A restart: every allocation is forgotten (relayed ports are handed out anew, from where they were).</summary>
    public void Restart(TimeSpan now)
    {
        Log.Add((now, EndPoint, "restart"));
        _allocations.Clear();
    }

    /// <summary>The allocation of <paramref name="client"/> ends (its TCP connection closed, RFC 8656 section 3.1).</summary>
    public void DropAllocation(IPEndPoint client, bool tcp, TimeSpan now)
    {
        if (_allocations.Remove((client, tcp))) Log.Add((now, client, "dropped"));
    }

    private static byte[] Error(byte[] buffer, in StunMessage request, int code, string reason, StunKey? key)
    {
        var w = new StunMessageWriter(buffer, new StunMessageType(request.Method, StunClass.ErrorResponse), request.TransactionId);
        w.AddErrorCode(code, reason);
        if (code == StunErrorCode.Unauthenticated)
        {
            w.AddString(StunAttributeType.Realm, Realm);
            w.AddString(StunAttributeType.Nonce, Nonce);
        }
        if (key is not null) w.AddMessageIntegrity(key);
        w.AddFingerprint();
        return buffer.AsSpan(0, w.Length).ToArray();
    }
}
