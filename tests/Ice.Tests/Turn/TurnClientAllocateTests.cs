using System.Net;
using Transport.Ice.Stun;
using Transport.Ice.Turn;
using static Transport.Ice.Tests.Turn.TurnHarness;

namespace Transport.Ice.Tests.Turn;

/// <summary>Allocate: the long-term credential exchange, stale nonces, redirects, error codes and address families.</summary>
public sealed class TurnClientAllocateTests
{
    [Fact]
    public void SendsTheFirstAllocateWithoutCredentialsThenRetriesOnceWithTheMd5Key()
    {
        using var h = new TurnHarness();
        h.Start();
        Assert.Equal(2, h.Server.Requests.Count);
        Assert.False(h.Server.Requests[0].Authenticated);
        Assert.True(h.Server.Requests[1].Authenticated);
        Assert.Equal(StunPasswordAlgorithm.Md5, h.Server.AlgorithmUsed);
        var allocated = Assert.Single(h.EventsOf<TurnAllocated>());
        Assert.Equal(FakeTurnServer.Relayed, allocated.RelayedAddress);
        Assert.Equal(FakeTurnServer.Mapped, allocated.MappedAddress);
        Assert.Null(allocated.AdditionalRelayedAddress);
        Assert.Equal(TurnClientState.Allocated, h.Client.State);
        Assert.Equal(FakeTurnServer.Realm, h.Client.Realm);
        // REQUESTED-TRANSPORT UDP and the LIFETIME option are in the request.
        Assert.True(StunMessage.TryRead(h.Transmits[1].Bytes, out var m));
        Assert.True(m.TryGetRequestedTransport(out var protocol));
        Assert.Equal(17, protocol);
        Assert.True(m.TryGetLifetime(out var lifetime));
        Assert.Equal(600u, lifetime);
        Assert.False(m.TryGetRequestedAddressFamily(out _));
    }

    [Fact]
    public void AWrongPasswordEndsInAnAuthenticationFailureAfterOneRetry()
    {
        using var h = new TurnHarness(o => o with { Password = "wrong" });
        h.Start();
        Assert.Equal(2, h.Server.Requests.Count);
        var failed = Assert.Single(h.EventsOf<TurnAllocationFailed>());
        Assert.Equal(TurnFailureKind.Authentication, failed.Kind);
        Assert.Equal(401, failed.ErrorCode);
        Assert.Contains("authentication failed", failed.Reason);
        Assert.Equal(TurnClientState.Failed, h.Client.State);
        Assert.Null(h.Client.PollTimeout());
    }

    [Fact]
    public void AStaleNonceIsReplacedAndTheRequestSentAgain()
    {
        using var h = new TurnHarness();
        h.Server.StaleNonceCount = 1;
        h.Start();
        Assert.Equal(3, h.Server.Requests.Count);
        Assert.Single(h.EventsOf<TurnAllocated>());
        Assert.Equal(1, h.Client.StaleNonceRetries);
        // Later the nonce goes stale again on a Refresh: retried at the same instant with the new nonce.
        h.Server.StaleNonceCount = 1;
        h.RunUntil(S(541));
        Assert.Equal(new[] { S(540), S(540) }, h.RequestTimes(StunMethod.Refresh));
        Assert.Single(h.EventsOf<TurnAllocationRefreshed>());
    }

    [Fact]
    public void EndlessStaleNoncesFailAfterTheRetryLimit()
    {
        using var h = new TurnHarness(o => o with { MaxStaleNonceRetries = 2 });
        h.Server.StaleNonceCount = 100;
        h.Start();
        var failed = Assert.Single(h.EventsOf<TurnAllocationFailed>());
        Assert.Equal(TurnFailureKind.TooManyRetries, failed.Kind);
        Assert.Equal(438, failed.ErrorCode);
        Assert.Equal(4, h.Server.Requests.Count); // unauthenticated, authenticated, two retries
    }

    [Fact]
    public void UsesSha256KeysWhenTheServerOffersThem()
    {
        using var h = new TurnHarness();
        h.Server.OfferAlgorithms = [StunPasswordAlgorithm.Md5, StunPasswordAlgorithm.Sha256];
        h.Start();
        Assert.Equal(StunPasswordAlgorithm.Sha256, h.Server.AlgorithmUsed);
        Assert.Equal(StunPasswordAlgorithm.Sha256, h.Client.PasswordAlgorithm);
        Assert.Single(h.EventsOf<TurnAllocated>());
        Assert.True(StunMessage.TryRead(h.Transmits[1].Bytes, out var m));
        Assert.True(m.HasMessageIntegritySha256);
        h.RunUntil(S(541));
        Assert.Single(h.EventsOf<TurnAllocationRefreshed>());
    }

    [Fact]
    public void KeepsTheSha256KeyAcrossAStaleNonceThatDoesNotRepeatTheAlgorithms()
    {
        using var h = new TurnHarness();
        h.Server.OfferAlgorithms = [StunPasswordAlgorithm.Md5, StunPasswordAlgorithm.Sha256];
        h.Server.AlgorithmsIn438 = false;
        h.Start();
        h.Server.StaleNonceCount = 1;
        h.RunUntil(S(541));
        Assert.Equal(1, h.Client.StaleNonceRetries);
        Assert.Equal(StunPasswordAlgorithm.Sha256, h.Client.PasswordAlgorithm);
        Assert.Equal(StunPasswordAlgorithm.Sha256, h.Server.AlgorithmUsed);
        Assert.Single(h.EventsOf<TurnAllocationRefreshed>());
    }

    [Fact]
    public void KeepsMd5WhenSha256IsNotPreferred()
    {
        using var h = new TurnHarness(o => o with { PreferSha256 = false });
        h.Server.OfferAlgorithms = [StunPasswordAlgorithm.Md5, StunPasswordAlgorithm.Sha256];
        h.Start();
        Assert.Equal(StunPasswordAlgorithm.Md5, h.Server.AlgorithmUsed);
        Assert.Single(h.EventsOf<TurnAllocated>());
    }

    [Fact]
    public void FollowsATryAlternateRedirectToTheOtherServer()
    {
        var alternate = new FakeTurnServer { Self = StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Parse("192.0.2.2"), 3479)) };
        using var h = new TurnHarness(null, alternate);
        h.Server.RedirectTo = alternate.Self;
        h.Start();
        Assert.Single(h.Server.Requests);
        Assert.Equal(2, alternate.Requests.Count);
        Assert.False(alternate.Requests[0].Authenticated);
        Assert.Equal(alternate.Self, h.Client.ServerAddress);
        Assert.Single(h.EventsOf<TurnAllocated>());
        // Refreshes go to the new server.
        h.RunUntil(S(541));
        Assert.Contains(alternate.Requests, r => r.Method == StunMethod.Refresh);
    }

    [Fact]
    public void StopsFollowingRedirectsAfterTheLimit()
    {
        var b = new FakeTurnServer { Self = StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Parse("192.0.2.2"), 3478)) };
        using var h = new TurnHarness(null, b);
        h.Server.RedirectTo = b.Self;
        b.RedirectTo = FakeTurnServer.Address;
        h.Start();
        var failed = Assert.Single(h.EventsOf<TurnAllocationFailed>());
        Assert.Equal(TurnFailureKind.TooManyRetries, failed.Kind);
        Assert.Equal(300, failed.ErrorCode);
    }

    [Fact]
    public void ReportsOtherErrorCodesWithTheirReason()
    {
        using var h = new TurnHarness();
        h.Server.FailMethod = (StunMethod.Allocate, StunErrorCode.AllocationQuotaReached);
        h.Start();
        var failed = Assert.Single(h.EventsOf<TurnAllocationFailed>());
        Assert.Equal(TurnFailureKind.ErrorResponse, failed.Kind);
        Assert.Equal(486, failed.ErrorCode);
        Assert.Equal("Injected", failed.Reason);
    }

    [Fact]
    public void ReportsARefusedPermissionAndForgetsIt()
    {
        var peer = StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Parse("203.0.113.9"), 1));
        using var h = new TurnHarness();
        h.Start();
        h.Server.FailMethod = (StunMethod.CreatePermission, StunErrorCode.Forbidden);
        h.Client.CreatePermission(peer, h.Now);
        h.Pump();
        var failed = Assert.Single(h.EventsOf<TurnPermissionFailed>());
        Assert.Equal(403, failed.ErrorCode);
        Assert.False(h.Client.HasPermission(peer));
        Assert.Throws<InvalidOperationException>(() => h.Client.WrapSend(peer, new byte[4], new byte[100]));
    }

    [Fact]
    public void ReportsARefusedChannelBindAndKeepsSendingIndications()
    {
        var peer = StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Parse("203.0.113.9"), 1));
        using var h = new TurnHarness();
        h.Start();
        h.Client.CreatePermission(peer, h.Now);
        h.Pump();
        h.Server.FailMethod = (StunMethod.ChannelBind, StunErrorCode.BadRequest);
        h.Client.BindChannel(peer, h.Now);
        h.Pump();
        Assert.Equal(400, Assert.Single(h.EventsOf<TurnChannelBindFailed>()).ErrorCode);
        Assert.Equal(0, h.Client.GetBoundChannel(peer));
        var buffer = new byte[200];
        var n = h.Client.WrapSend(peer, "hi"u8, buffer);
        Assert.True(StunMessage.TryRead(buffer.AsSpan(0, n), out var m));
        Assert.Equal(StunMethod.Send, m.Method);
    }

    [Fact]
    public void AsksForAnIPv6RelayedAddress()
    {
        using var h = new TurnHarness(o => o with { RequestedAddressFamily = TurnAddressFamily.IPv6 });
        h.Start();
        Assert.True(StunMessage.TryRead(h.Transmits[1].Bytes, out var m));
        Assert.True(m.TryGetRequestedAddressFamily(out var family));
        Assert.Equal(StunAddress.FamilyIPv6, family);
        Assert.Equal(FakeTurnServer.RelayedV6, h.Client.RelayedAddress);
    }

    [Fact]
    public void AsksForAnAdditionalIPv6AddressAndReportsBoth()
    {
        using var h = new TurnHarness(o => o with { AdditionalIPv6 = true });
        h.Server.Dual = true;
        h.Start();
        Assert.True(StunMessage.TryRead(h.Transmits[1].Bytes, out var m));
        Assert.True(m.TryGetAdditionalAddressFamily(out var family));
        Assert.Equal(StunAddress.FamilyIPv6, family);
        // coturn 4.6 reads the draft's number 0x8032 (see docs/turn.md).
        Assert.True(m.TryGetAttribute(0x8032, out var legacy));
        Assert.Equal(new byte[] { 2, 0, 0, 0 }, legacy.ToArray());
        var allocated = Assert.Single(h.EventsOf<TurnAllocated>());
        Assert.Equal(FakeTurnServer.Relayed, allocated.RelayedAddress);
        Assert.Equal(FakeTurnServer.RelayedV6, allocated.AdditionalRelayedAddress);
    }

    [Fact]
    public void MisuseIsRefusedWithTheState()
    {
        using var h = new TurnHarness();
        var e = Assert.Throws<InvalidOperationException>(() => h.Client.WrapSend(FakeTurnServer.Mapped, new byte[1], new byte[100]));
        Assert.Contains("Idle", e.Message);
        h.Start();
        Assert.Throws<InvalidOperationException>(() => h.Client.Start(h.Now));
        h.Client.Close(h.Now);
        Assert.Throws<InvalidOperationException>(() => h.Client.CreatePermission(FakeTurnServer.Mapped, h.Now));
    }
}
