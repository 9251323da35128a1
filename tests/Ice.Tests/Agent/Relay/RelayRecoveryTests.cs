using System.Net.Sockets;
using Transport.Ice.Turn;

namespace Transport.Ice.Tests.Agent.Relay;

/// <summary>
/// <see cref="RelayRecovery"/> alone, on virtual time: the back-off of re-allocation attempts, when they run out, when
/// a relay fails over, and which configured server it fails over to.
/// </summary>
public sealed class RelayRecoveryTests
{
    private static TimeSpan S(double s) => TimeSpan.FromSeconds(s);

    [Fact]
    public void AttemptsBackOffFromTheDelayDoublingUpToTheMaximumAndStopWhenTheyRunOut()
    {
        var r = new RelayRecovery(maxAttempts: 6, delay: S(0.5), maxDelay: S(8), failoverAfter: 0);
        var now = S(100);
        Assert.True(r.Lost(now));
        var waits = new List<double>();
        while (r.Recovering)
        {
            waits.Add((r.RetryAt!.Value - now).TotalSeconds);
            now = r.RetryAt.Value;
            Assert.True(r.Due(now));
            Assert.False(r.Due(now - TimeSpan.FromTicks(1)));
            r.BeginAttempt();
            Assert.Null(r.RetryAt);
            now += S(0.04);   // the attempt fails 40 ms later
            Assert.False(r.AttemptFailed(now));   // fail-over off
        }
        Assert.Equal([0.5, 1, 2, 4, 8, 8], waits);
        Assert.Equal(6, r.Attempts);
        Assert.Null(r.RetryAt);
    }

    [Fact]
    public void WithReallocationOffALossSchedulesNothing()
    {
        var r = new RelayRecovery(0, S(0.5), S(8), 2);
        Assert.False(r.Lost(S(1)));
        Assert.False(r.Recovering);
        Assert.Null(r.RetryAt);
    }

    [Fact]
    public void AFailOverIsAskedAfterTheGivenFailuresInARowOnOneServerAndASuccessEndsRecovery()
    {
        var r = new RelayRecovery(5, S(0.5), S(8), failoverAfter: 2);
        r.Lost(S(0));
        r.BeginAttempt();
        Assert.False(r.AttemptFailed(S(1)));
        r.BeginAttempt();
        Assert.True(r.AttemptFailed(S(2)));
        r.MovedServer();
        Assert.Equal(0, r.FailuresOnServer);
        r.BeginAttempt();
        Assert.False(r.AttemptFailed(S(3)));
        Assert.Equal(S(3) + S(4), r.RetryAt);   // the back-off goes on across servers: 3 attempts made
        r.BeginAttempt();
        r.Succeeded();
        Assert.Equal((false, 0, 0, (TimeSpan?)null), (r.Recovering, r.Attempts, r.FailuresOnServer, r.RetryAt));
        // The last attempt failing asks no fail-over: nothing is left to try.
        var last = new RelayRecovery(2, S(0.5), S(8), failoverAfter: 1);
        last.Lost(S(0));
        last.BeginAttempt();
        Assert.True(last.AttemptFailed(S(1)));
        last.BeginAttempt();
        Assert.False(last.AttemptFailed(S(2)));
        Assert.False(last.Recovering);
    }

    private static readonly TurnServerConfig UdpA = TurnServerConfig.Parse("turn:192.0.2.1:3478", "u", "p");
    private static readonly TurnServerConfig TcpB = TurnServerConfig.Parse("turn:192.0.2.2:3478?transport=tcp", "u", "p");
    private static readonly TurnServerConfig UdpC = TurnServerConfig.Parse("turn:192.0.2.3:3478", "u", "p");
    private static readonly TurnServerConfig TlsD = TurnServerConfig.Parse("turns:192.0.2.4:5349", "u", "p");
    private static readonly TurnServerConfig UdpV6 = TurnServerConfig.Parse("turn:[2001:db8::1]:3478", "u", "p");

    [Fact]
    public void TheFailOverTargetIsTheNextServerOfTheSameKindThenOfAnotherKindSkippingOccupiedOnesAndOtherFamilies()
    {
        TurnServerConfig[] servers = [UdpA, TcpB, UdpV6, UdpC, TlsD];
        var v4 = AddressFamily.InterNetwork;
        // From UDP A: UDP C (same kind) before TCP B, although B is listed first; never the IPv6 one.
        Assert.Equal(UdpC, RelayRecovery.NextServer(servers, UdpA, UdpA, v4, _ => false));
        // C held by another relay of the host: another kind, in the configured order after A.
        Assert.Equal(TcpB, RelayRecovery.NextServer(servers, UdpA, UdpA, v4, s => s == UdpC));
        // Round the list: from C (the relay was configured for A, a UDP one) back to A.
        Assert.Equal(UdpA, RelayRecovery.NextServer(servers, UdpC, UdpA, v4, _ => false));
        // A TLS relay prefers another TLS server; with none it takes the next of any kind.
        Assert.Equal(UdpA, RelayRecovery.NextServer(servers, TlsD, TlsD, v4, _ => false));
        // Nothing else of the family, or everything held: none (the relay stays).
        Assert.Null(RelayRecovery.NextServer([UdpA, UdpV6], UdpA, UdpA, v4, _ => false));
        Assert.Null(RelayRecovery.NextServer(servers, UdpA, UdpA, v4, _ => true));
        Assert.Null(RelayRecovery.NextServer([UdpA, UdpV6, TcpB], UdpV6, UdpV6, AddressFamily.InterNetworkV6, _ => false));
    }
}
