namespace Transport.Dtls.Tests;

/// <summary>
/// The two ways a lost first flight is resent sooner than RFC 6347's 1 s: a first retransmission timeout on the
/// scale of a known round-trip time (<see cref="DtlsOptions.RoundTripTime"/>), and an immediate resend when the
/// layer below says the peer became ready (<see cref="DtlsConnection.HandlePeerReady"/>). Exact, on explicit times.
/// </summary>
public sealed class EarlyRetransmissionTests
{
    private static readonly byte[] Buffer = new byte[4096];

    // Runs the client's timers with nobody answering and returns the instants (ms) its datagrams left.
    private static List<double> SendTimes(DtlsConnection client, TimeSpan until)
    {
        var times = new List<double>();
        var now = TimeSpan.Zero;
        client.Start(now);
        for (var i = 0; i < 1000; i++)
        {
            if (Drain(client) > 0) times.Add(now.TotalMilliseconds);
            if (client.PollTimeout() is not { } next || next > until) break;
            now = next;
            client.HandleTimeout(now);
        }
        return times;
    }

    private static int Drain(DtlsConnection c)
    {
        var n = 0;
        while (c.TryPollTransmit(Buffer, out _)) n++;
        return n;
    }

    [Theory]
    [InlineData(40, new double[] { 0, 80, 240, 560, 1200, 2480 })]     // 2 x RTT, doubling
    [InlineData(5, new double[] { 0, 50, 150, 350, 750, 1550 })]       // floor: MinRetransmitTimeout 50 ms
    [InlineData(0, new double[] { 0, 50, 150, 350, 750, 1550 })]       // loopback
    [InlineData(900, new double[] { 0, 1000, 3000 })]                  // capped at InitialRetransmitTimeout (1 s)
    public void FirstRetransmissionFollowsTheKnownRoundTripTimeThenDoubles(int rttMs, double[] expected)
    {
        using var client = DtlsConnection.CreateClient(Pairs.ClientOptions(o => o with { RoundTripTime = TimeSpan.FromMilliseconds(rttMs) }));
        var times = SendTimes(client, TimeSpan.FromMilliseconds(expected[^1]));
        Assert.Equal(expected, times);
        Assert.Equal(expected.Length - 1, client.Counters.Retransmissions);
    }

    [Fact]
    public void WithoutARoundTripTimeTheFirstRetransmissionStaysAtTheInitialTimeout()
    {
        using var client = DtlsConnection.CreateClient(Pairs.ClientOptions());
        Assert.Equal([0, 1000, 3000, 7000], SendTimes(client, TimeSpan.FromSeconds(7)));
    }

    [Fact]
    public void TheDoublingStopsAtTheMaximum()
    {
        using var client = DtlsConnection.CreateClient(Pairs.ClientOptions(o => o with
        {
            RoundTripTime = TimeSpan.FromMilliseconds(10),
            InitialRetransmitTimeout = TimeSpan.FromMilliseconds(300),
            MaxRetransmitTimeout = TimeSpan.FromMilliseconds(300),
        }));
        Assert.Equal([0, 50, 150, 350, 650, 950], SendTimes(client, TimeSpan.FromMilliseconds(950)));
    }

    [Fact]
    public void PeerReadyResendsTheWaitingFlightAtOnceOncePerFlightAndRestartsItsTimer()
    {
        using var client = DtlsConnection.CreateClient(Pairs.ClientOptions());
        Assert.False(client.HandlePeerReady(TimeSpan.Zero));            // nothing sent yet
        client.Start(TimeSpan.Zero);
        var first = Drain(client);
        Assert.True(first > 0);

        Assert.True(client.HandlePeerReady(TimeSpan.FromMilliseconds(30)));
        Assert.Equal(first, Drain(client));                              // the whole flight again, now
        Assert.Equal(TimeSpan.FromMilliseconds(1030), client.PollTimeout());
        Assert.False(client.HandlePeerReady(TimeSpan.FromMilliseconds(40)));
        Assert.Equal(0, Drain(client));
        Assert.Equal(1, client.Counters.PeerReadyRetransmissions);
        Assert.Equal(1, client.Counters.Retransmissions);
    }

    [Fact]
    public void PeerReadyOnAFreshFlightWorksAgainAndTheHandshakeCompletes()
    {
        using var client = DtlsConnection.CreateClient(Pairs.ClientOptions());
        using var server = DtlsConnection.CreateServer(Pairs.ServerOptions(), new DtlsCookieResponder(), [1]);
        client.Start(TimeSpan.Zero);
        Drain(client);                                                   // flight 1 lost: the server was not ready
        Assert.True(client.HandlePeerReady(TimeSpan.FromMilliseconds(5)));
        var now = TimeSpan.FromMilliseconds(5);
        var resends = 0;
        for (var round = 0; round < 10 && client.State != DtlsState.Connected; round++)
        {
            while (client.TryPollTransmit(Buffer, out var n)) server.HandleDatagram(Buffer.AsSpan(0, n), now);
            while (server.TryPollTransmit(Buffer, out var n)) client.HandleDatagram(Buffer.AsSpan(0, n), now);
            if (round == 0 && client.HandlePeerReady(now)) resends++;  // flight 3 (after the cookie) is a new flight
            now += TimeSpan.FromMilliseconds(1);
        }
        Assert.Equal(DtlsState.Connected, client.State);
        Assert.Equal(DtlsState.Connected, server.State);
        Assert.Equal(1, resends);
        Assert.False(client.HandlePeerReady(now));                       // nothing waits once connected
    }

    [Fact]
    public void APeerReadyHintToAServerWithoutAFlightDoesNothing()
    {
        using var server = DtlsConnection.CreateServer(Pairs.ServerOptions());
        Assert.False(server.HandlePeerReady(TimeSpan.FromMilliseconds(1)));
        Assert.Equal(0, Drain(server));
    }

    [Fact]
    public void ANegativeRoundTripTimeOrAZeroFloorIsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            DtlsConnection.CreateClient(Pairs.ClientOptions(o => o with { RoundTripTime = TimeSpan.FromMilliseconds(-1) })));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            DtlsConnection.CreateClient(Pairs.ClientOptions(o => o with { MinRetransmitTimeout = TimeSpan.Zero })));
    }
}
