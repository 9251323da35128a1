using System.Net;
using Transport.Ice.Stun;

namespace Transport.Ice.Tests.Agent;

/// <summary>Bad and unauthenticated input is dropped, counted and never answered.</summary>
public sealed class IceAgentSecurityTests
{
    private static readonly IPEndPoint Local = new(IPAddress.Parse("10.0.0.2"), 2000);
    private static readonly IPEndPoint Peer = new(IPAddress.Parse("10.0.0.1"), 1000);

    private static IceAgent NewAgent(out IceCredentials local, out IceCredentials remote)
    {
        local = new IceCredentials("bbbb", "bbbbbbbbbbbbbbbbbbbbbbbb");
        remote = new IceCredentials("aaaa", "aaaaaaaaaaaaaaaaaaaaaaaa");
        var agent = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled, LocalCredentials = local, Random = new Random(1) });
        agent.AddHostCandidate(Local);
        agent.SetRemoteCredentials(remote, TimeSpan.Zero);
        return agent;
    }

    private static byte[] Request(string? username, string? password, bool fingerprint = true, bool priority = true, WriterAction? extra = null)
    {
        var buffer = new byte[300];
        Span<byte> tid = stackalloc byte[12];
        StunTransactionId.NewRandom().WriteTo(tid);
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, tid);
        if (username is not null) w.AddString(StunAttributeType.Username, username);
        if (priority) w.AddUInt32(StunAttributeType.Priority, 1853824767);
        w.AddUInt64(StunAttributeType.IceControlling, 99);
        extra?.Invoke(ref w);
        if (password is not null) { using var key = StunKey.ShortTerm(password); w.AddMessageIntegrity(key); }
        if (fingerprint) w.AddFingerprint();
        return buffer.AsSpan(0, w.Length).ToArray();
    }

    private static int Drain(IceAgent agent)
    {
        var n = 0;
        var buffer = new byte[1500];
        while (agent.TryPollTransmit(buffer, out _, out _)) n++;
        return n;
    }

    [Fact]
    public void AuthenticatedRequestIsAnsweredWithIntegrityAndXorMappedAddress()
    {
        using var agent = NewAgent(out var local, out var remote);
        Assert.Equal(IceReceiveResult.Stun, agent.HandleDatagram(Request("bbbb:aaaa", local.Password), Local, Peer, TimeSpan.Zero));
        var buffer = new byte[1500];
        Assert.True(agent.TryPollTransmit(buffer, out var length, out var t));
        Assert.Equal((Local, Peer), (t.Local, t.Remote));
        Assert.True(StunMessage.TryRead(buffer.AsSpan(0, length), out var response));
        Assert.Equal(StunMessageType.BindingSuccess, response.Type);
        using var key = StunKey.ShortTerm(local.Password);
        Assert.True(response.CheckMessageIntegrity(key));
        Assert.True(response.CheckFingerprint());
        Assert.True(response.TryGetXorMappedAddress(out var mapped));
        Assert.Equal(Peer, mapped.ToEndPoint());
        Assert.Equal(0, agent.DroppedTotal);
    }

    /// <summary>
    /// A caller that already classified the datagram (RFC 7983, the driver) says so and the agent does not read the
    /// first byte again: what it is told is what it does. Unclassified, the default, reads it.
    /// </summary>
    [Fact]
    public void ADatagramClassifiedByTheCallerIsTakenAsClassified()
    {
        using var agent = NewAgent(out var local, out _);
        var request = Request("bbbb:aaaa", local.Password);
        Assert.Equal(IceReceiveResult.Stun, agent.HandleDatagram(request, Local, Peer, TimeSpan.Zero, out _, IceInputKind.Stun));
        Assert.True(Drain(agent) >= 1);   // answered
        Assert.Equal(IceReceiveResult.Stun, agent.HandleDatagram(request, Local, Peer, TimeSpan.Zero, out _));
        Assert.True(Drain(agent) >= 1);
        // Told it is not STUN, the same bytes are application data, here from an address with no pair: dropped as such
        // (as UnknownPeer, not parsed as STUN).
        var stranger = new IPEndPoint(IPAddress.Parse("198.51.100.99"), 4444);
        Assert.Equal(IceReceiveResult.Dropped, agent.HandleDatagram(request, Local, stranger, TimeSpan.Zero, out _, IceInputKind.NotStun));
        Assert.Equal(1, agent.DroppedCount(IceDropReason.UnknownPeer));
        Assert.Equal(0, agent.DroppedCount(IceDropReason.Malformed));
    }

    [Fact]
    public void UnauthenticatedRequestsAreDroppedCountedAndNotAnswered()
    {
        using var agent = NewAgent(out var local, out _);
        var bad = new[]
        {
            Request(null, local.Password),                 // no USERNAME
            Request("bbbb:aaaa", null),                    // no MESSAGE-INTEGRITY
            Request("bbbb:aaaa", "wrong-password-xxxxxxxxxx"), // bad integrity
            Request("zzzz:aaaa", local.Password),          // not our ufrag
        };
        foreach (var r in bad) Assert.Equal(IceReceiveResult.Dropped, agent.HandleDatagram(r, Local, Peer, TimeSpan.Zero));
        Assert.Equal(4, agent.DroppedCount(IceDropReason.Unauthenticated));
        Assert.Equal(IceReceiveResult.Dropped, agent.HandleDatagram(Request("bbbb:aaaa", local.Password, fingerprint: false), Local, Peer, TimeSpan.Zero));
        Assert.Equal(1, agent.DroppedCount(IceDropReason.BadFingerprint));
        Assert.Equal(IceReceiveResult.Dropped, agent.HandleDatagram(Request("bbbb:aaaa", local.Password, priority: false), Local, Peer, TimeSpan.Zero));
        Assert.Equal(1, agent.DroppedCount(IceDropReason.BadRequest));
        Assert.Equal(0, Drain(agent));
        Assert.Equal(IceConnectionState.New, agent.State);
    }

    [Fact]
    public void GarbageStrayResponsesAndUnknownPeersAreDroppedAndCounted()
    {
        using var agent = NewAgent(out _, out _);
        Assert.Equal(IceReceiveResult.Dropped, agent.HandleDatagram([0x00, 0x01, 0x02], Local, Peer, TimeSpan.Zero));
        Assert.Equal(1, agent.DroppedCount(IceDropReason.Malformed));
        // A success response for a transaction we never started.
        Assert.Equal(IceReceiveResult.Dropped, agent.HandleDatagram(Rfc5769VectorsShim.ResponseIPv4, Local, Peer, TimeSpan.Zero));
        Assert.Equal(1, agent.DroppedCount(IceDropReason.UnknownTransaction));
        // Application data from an address with no valid pair.
        Assert.Equal(IceReceiveResult.Dropped, agent.HandleDatagram([0x17, 0xFE, 0xFD, 0, 0], Local, Peer, TimeSpan.Zero));
        Assert.Equal(1, agent.DroppedCount(IceDropReason.UnknownPeer));
        var random = new Random(7);
        var droppedBefore = agent.DroppedTotal;
        var results = new Dictionary<IceReceiveResult, int>();
        for (var i = 0; i < 5000; i++)
        {
            var b = new byte[random.Next(0, 200)];
            random.NextBytes(b);
            if (b.Length > 0) b[0] &= 0x03;
            var result = agent.HandleDatagram(b, Local, Peer, TimeSpan.Zero);
            results[result] = results.GetValueOrDefault(result) + 1;
        }
        // Every one of them is dropped and counted (none is taken for STUN or application data), and nothing is answered.
        Assert.Equal(5000, results.GetValueOrDefault(IceReceiveResult.Dropped));
        Assert.Equal(5000, agent.DroppedTotal - droppedBefore);
        Assert.Equal(0, Drain(agent));
    }

    [Fact]
    public void RequestWithUnknownComprehensionRequiredAttributeGets420()
    {
        using var agent = NewAgent(out var local, out _);
        var request = Request("bbbb:aaaa", local.Password, extra: (ref StunMessageWriter w) => w.AddUInt32(0x7F7F, 1));
        Assert.Equal(IceReceiveResult.Stun, agent.HandleDatagram(request, Local, Peer, TimeSpan.Zero));
        var buffer = new byte[1500];
        Assert.True(agent.TryPollTransmit(buffer, out var length, out var t));
        Assert.True(StunMessage.TryRead(buffer.AsSpan(0, length), out var response));
        Assert.True(response.TryGetErrorCode(out var code, out _));
        Assert.Equal(420, code);
        Span<ushort> unknown = stackalloc ushort[4];
        Assert.Equal(1, response.GetUnknownAttributes(unknown));
        Assert.Equal(0x7F7F, unknown[0]);
    }
}

internal delegate void WriterAction(ref StunMessageWriter writer);

internal static class Rfc5769VectorsShim
{
    public static byte[] ResponseIPv4 => Transport.Ice.Tests.Stun.Rfc5769Vectors.ResponseIPv4;
}
