using Transport.TestKit;
using System.Text;
using Transport.Ice.Stun;
using Transport.Ice.Turn;

namespace Transport.Ice.Tests.Turn;

/// <summary>
/// Our TURN client against coturn 4.6 on 127.0.0.1 (Debian package <c>coturn</c>): allocations, refreshes,
/// permissions, channels and data both ways between two of our clients through the relay, over UDP and TCP to the
/// server; authentication failure; short server lifetimes; 300 redirects. Each test starts and kills its own server.
/// </summary>
[Collection("coturn")] // one coturn at a time: the machine has two cores
public sealed class TurnClientCoturnTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static TurnClientOptions Options(CoturnServer server, TurnTransport transport, string password = CoturnServer.Password) =>
        new() { Server = StunAddress.FromEndPoint(server.EndPoint), Transport = transport, Username = CoturnServer.User, Password = password };

    [Theory]
    [InlineData(TurnTransport.Udp)]
    [InlineData(TurnTransport.Tcp)]
    public void RelaysDataBothWaysBetweenTwoClientsWithIndicationsThenChannels(TurnTransport transport)
    {
        using var server = CoturnServer.Start(tcp: true);
        using var a = new TurnSocketPeer("A", Options(server, transport));
        using var b = new TurnSocketPeer("B", Options(server, transport));
        a.Start();
        b.Start();
        TurnSocketPeer.RunUntil(() => a.Client.State == TurnClientState.Allocated && b.Client.State == TurnClientState.Allocated, Wait,
            "both allocations", a, b);
        var allocatedA = a.EventsOf<TurnAllocated>().Single();
        Assert.Equal("127.0.0.1", allocatedA.RelayedAddress.ToIPAddress().ToString());
        Assert.Equal(a.LocalAddress, allocatedA.MappedAddress);
        Assert.Equal(TimeSpan.FromSeconds(600), allocatedA.Lifetime);
        Assert.Equal(CoturnServer.Realm, a.Client.Realm);
        var relayA = a.Client.RelayedAddress;
        var relayB = b.Client.RelayedAddress;
        Assert.NotEqual(relayA, relayB);

        a.Client.CreatePermission(relayB, a.Now);
        b.Client.CreatePermission(relayA, b.Now);
        TurnSocketPeer.RunUntil(() => a.Client.HasPermission(relayB) && b.Client.HasPermission(relayA), Wait, "permissions", a, b);

        // Send and Data indications (no channel yet).
        a.SendToPeer(relayB, "A to B by indication"u8);
        b.SendToPeer(relayA, "B to A by indication"u8);
        TurnSocketPeer.RunUntil(() => a.EventsOf<TurnPeerData>().Any() && b.EventsOf<TurnPeerData>().Any(), Wait, "indications both ways", a, b);
        var atB = b.EventsOf<TurnPeerData>().Single();
        Assert.Equal(relayA, atB.Peer);
        Assert.Equal("A to B by indication", Encoding.UTF8.GetString(atB.Data));
        Assert.Equal(0, atB.Channel);
        var atA = a.EventsOf<TurnPeerData>().Single();
        Assert.Equal(relayB, atA.Peer);
        Assert.Equal("B to A by indication", Encoding.UTF8.GetString(atA.Data));

        // Channels: both sides bind, then data goes as ChannelData both ways.
        var channelA = a.Client.BindChannel(relayB, a.Now);
        var channelB = b.Client.BindChannel(relayA, b.Now);
        TurnSocketPeer.RunUntil(() => a.EventsOf<TurnChannelBound>().Any() && b.EventsOf<TurnChannelBound>().Any(), Wait, "channel bindings", a, b);
        const int Count = 20;
        for (var i = 0; i < Count; i++)
        {
            a.SendToPeer(relayB, Encoding.UTF8.GetBytes($"A{i}"));
            b.SendToPeer(relayA, Encoding.UTF8.GetBytes($"B{i}"));
            a.Step();
            b.Step();
        }
        TurnSocketPeer.RunUntil(() => a.EventsOf<TurnPeerData>().Count() == Count + 1 && b.EventsOf<TurnPeerData>().Count() == Count + 1, Wait,
            "channel data both ways", a, b);
        var overChannelAtB = b.EventsOf<TurnPeerData>().Skip(1).ToList();
        Assert.All(overChannelAtB, d => { Assert.Equal(channelB, d.Channel); Assert.Equal(relayA, d.Peer); });
        Assert.Equal(Enumerable.Range(0, Count).Select(i => $"A{i}"),
            overChannelAtB.Select(d => Encoding.UTF8.GetString(d.Data)).Order().OrderBy(s => int.Parse(s[1..])));
        Assert.All(a.EventsOf<TurnPeerData>().Skip(1), d => Assert.Equal(channelA, d.Channel));
        Assert.Equal(0, a.Client.Dropped.Total);
        Assert.Equal(0, b.Client.Dropped.Total);

        a.Client.Close(a.Now);
        b.Client.Close(b.Now);
        TurnSocketPeer.RunUntil(() => a.Client.State == TurnClientState.Closed && b.Client.State == TurnClientState.Closed, Wait, "deallocation", a, b);
        Assert.Equal("allocation deleted", a.EventsOf<TurnClosed>().Single().Reason);
    }

    [Theory]
    [InlineData(TurnTransport.Udp)]
    [InlineData(TurnTransport.Tcp)]
    public void AWrongPasswordIsReportedAsAnAuthenticationFailure(TurnTransport transport)
    {
        using var server = CoturnServer.Start(tcp: true);
        using var a = new TurnSocketPeer("A", Options(server, transport, password: "not-the-password"));
        a.Start();
        TurnSocketPeer.RunUntil(() => a.Client.State == TurnClientState.Failed, Wait, "the failure", a);
        var failed = a.EventsOf<TurnAllocationFailed>().Single();
        Assert.Equal(TurnFailureKind.Authentication, failed.Kind);
        Assert.Equal(401, failed.ErrorCode);
        Assert.Contains("authentication failed", failed.Reason);
        Assert.Contains(CoturnServer.Realm, failed.Reason);
    }

    [Theory]
    [InlineData(TurnTransport.Udp)]
    [InlineData(TurnTransport.Tcp)]
    public void RefreshesAShortServerLifetimeAndAnUnrefreshedAllocationExpires(TurnTransport transport)
    {
        using var server = CoturnServer.Start(true, "--max-allocate-lifetime=3");
        using var a = new TurnSocketPeer("A", Options(server, transport));
        using var c = new TurnSocketPeer("C", Options(server, transport));
        using var b = new TurnSocketPeer("B", Options(server, transport) with { RefreshAllocation = false });
        var peers = new[] { a, b, c };
        foreach (var p in peers) p.Start();
        TurnSocketPeer.RunUntil(() => peers.All(p => p.Client.State == TurnClientState.Allocated), Wait, "allocations", peers);
        var lifetime = a.EventsOf<TurnAllocated>().Single().Lifetime;
        Assert.Equal(TimeSpan.FromSeconds(3), lifetime);
        Assert.Equal(TimeSpan.FromSeconds(3), b.EventsOf<TurnAllocated>().Single().Lifetime);

        a.Client.CreatePermission(b.Client.RelayedAddress, a.Now); // one IP: covers B and C
        b.Client.CreatePermission(a.Client.RelayedAddress, b.Now);
        c.Client.CreatePermission(a.Client.RelayedAddress, c.Now);
        TurnSocketPeer.RunUntil(() => a.Client.HasPermission(b.Client.RelayedAddress) && b.Client.HasPermission(a.Client.RelayedAddress)
            && c.Client.HasPermission(a.Client.RelayedAddress), Wait, "permissions", peers);
        a.SendToPeer(b.Client.RelayedAddress, "before expiry"u8);
        TurnSocketPeer.RunUntil(() => b.EventsOf<TurnPeerData>().Any(), Wait, "data to B before expiry", peers);

        // B does not refresh: it reports the expiry when the granted 3 s are over.
        TurnSocketPeer.RunUntil(() => b.Client.State == TurnClientState.Expired, Wait, "B's expiry", peers);
        var expiredAt = b.Events.Single(e => e.Event is TurnAllocationExpired).At;
        var allocatedAt = b.Events.Single(e => e.Event is TurnAllocated).At;
        Assert.InRange(expiredAt - allocatedAt, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(3.5));

        // A and C refresh every 1.5 s (half the lifetime, as it is shorter than twice the margin) and live on.
        TurnSocketPeer.RunUntil(() => a.EventsOf<TurnAllocationRefreshed>().Count() >= 4 && c.EventsOf<TurnAllocationRefreshed>().Count() >= 4,
            Wait, "refreshes", peers);
        Assert.Equal(TurnClientState.Allocated, a.Client.State);
        Assert.All(a.EventsOf<TurnAllocationRefreshed>(), r => Assert.Equal(TimeSpan.FromSeconds(3), r.Lifetime));
        a.SendToPeer(c.Client.RelayedAddress, "after B expired"u8);
        TurnSocketPeer.RunUntil(() => c.EventsOf<TurnPeerData>().Any(), Wait, "data to C through a refreshed allocation", peers);

        // The server deleted B's allocation: nothing reaches B's socket any more.
        var bReceived = b.DatagramsReceived;
        a.SendToPeer(b.Client.RelayedAddress, "after expiry"u8);
        var until = a.Now + TimeSpan.FromSeconds(1);
        TurnSocketPeer.RunUntil(() => a.Now >= until, Wait, "a quiet second", peers);
        Assert.Equal(bReceived, b.DatagramsReceived);
    }

    [Theory]
    [InlineData(TurnTransport.Udp)]
    [InlineData(TurnTransport.Tcp)]
    public void FollowsTheAlternateServerOfA300Answer(TurnTransport transport)
    {
        using var target = CoturnServer.Start(tcp: true);
        using var redirecting = CoturnServer.Start(true, $"--alternate-server=127.0.0.1:{target.Port}");
        using var a = new TurnSocketPeer("A", Options(redirecting, transport));
        a.Start();
        TurnSocketPeer.RunUntil(() => a.Client.State is TurnClientState.Allocated or TurnClientState.Failed, Wait, "the allocation", a);
        Assert.Equal(TurnClientState.Allocated, a.Client.State);
        Assert.Equal(StunAddress.FromEndPoint(target.EndPoint), a.Client.ServerAddress);
    }

    [Fact]
    public void RetriesWithTheNewNonceWhenCoturnSaysItIsStale()
    {
        using var server = CoturnServer.Start(true, "--stale-nonce=1", "--max-allocate-lifetime=2");
        using var a = new TurnSocketPeer("A", Options(server, TurnTransport.Udp));
        a.Start();
        TurnSocketPeer.RunUntil(() => a.EventsOf<TurnAllocationRefreshed>().Count() >= 3, Wait, "refreshes across stale nonces", a);
        Assert.Equal(TurnClientState.Allocated, a.Client.State);
        Assert.True(a.Client.StaleNonceRetries > 0, "coturn never answered 438: the test did not exercise stale nonces");
    }

    [Fact]
    public void AllocatesIPv6RelayedAddressesAndRelaysBetweenThem()
    {
        using var server = CoturnServer.Start(true, "--relay-ip=::1");
        using var a = new TurnSocketPeer("A", Options(server, TurnTransport.Udp) with { RequestedAddressFamily = TurnAddressFamily.IPv6 });
        using var b = new TurnSocketPeer("B", Options(server, TurnTransport.Udp) with { AdditionalIPv6 = true });
        a.Start();
        b.Start();
        TurnSocketPeer.RunUntil(() => a.Client.State == TurnClientState.Allocated && b.Client.State == TurnClientState.Allocated, Wait, "allocations", a, b);
        Assert.Equal("::1", a.Client.RelayedAddress.ToIPAddress().ToString());
        var dual = b.EventsOf<TurnAllocated>().Single();
        Assert.Equal("127.0.0.1", dual.RelayedAddress.ToIPAddress().ToString());
        Assert.NotNull(dual.AdditionalRelayedAddress);
        Assert.Equal("::1", dual.AdditionalRelayedAddress!.Value.ToIPAddress().ToString());

        var relayB6 = b.Client.AdditionalRelayedAddress;
        a.Client.CreatePermission(relayB6, a.Now);
        b.Client.CreatePermission(a.Client.RelayedAddress, b.Now);
        a.Client.BindChannel(relayB6, a.Now);
        TurnSocketPeer.RunUntil(() => a.EventsOf<TurnChannelBound>().Any() && b.Client.HasPermission(a.Client.RelayedAddress), Wait,
            "permission and channel", a, b);
        a.SendToPeer(relayB6, "over IPv6"u8);
        b.SendToPeer(a.Client.RelayedAddress, "back over IPv6"u8);
        TurnSocketPeer.RunUntil(() => a.EventsOf<TurnPeerData>().Any() && b.EventsOf<TurnPeerData>().Any(), Wait, "data both ways over IPv6 relays", a, b);
        Assert.Equal(a.Client.RelayedAddress, b.EventsOf<TurnPeerData>().Single().Peer);
        Assert.Equal("back over IPv6", Encoding.UTF8.GetString(a.EventsOf<TurnPeerData>().Single().Data));
    }
}
