using Transport.TestKit;

namespace Transport.Dtls.Tests;

/// <summary>RFC 6347 4.2.4.1 timer behaviour, measured on virtual time.</summary>
public sealed class RetransmissionTests
{
    private static List<TimeSpan> ClientSendTimes(DtlsOptions options, TimeSpan runFor, out DtlsPeer client)
    {
        var link = new VirtualLink();
        var server = new DtlsPeer(DtlsConnection.CreateServer(Pairs.ServerOptions(), new DtlsCookieResponder()));
        client = new DtlsPeer(DtlsConnection.CreateClient(options));
        var driver = new TwoPeerDriver(client, server, link);
        var times = new List<TimeSpan>();
        link.AddFilter(LinkEnd.A, _ => { times.Add(driver.Now); return true; }, _ => FilterAction.Drop);
        client.Connection.Start(driver.Now);
        driver.RunFor(runFor);
        return times;
    }

    [Fact]
    public void RetransmitsAtTheConfiguredInitialTimeoutDoublingUpToTheMaximum()
    {
        var times = ClientSendTimes(Pairs.ClientOptions(o => o with
        {
            InitialRetransmitTimeout = TimeSpan.FromMilliseconds(50),
            MaxRetransmitTimeout = TimeSpan.FromMilliseconds(400),
            HandshakeTimeout = TimeSpan.FromSeconds(10),
        }), TimeSpan.FromMilliseconds(2000), out var client);
        // 0, +50, +100, +200, +400, +400, +400 ...
        double[] expected = [0, 50, 150, 350, 750, 1150, 1550, 1950];
        Assert.Equal(expected, times.Select(t => t.TotalMilliseconds).ToArray());
        Assert.Equal(expected.Length - 1, client.Connection.Counters.Retransmissions);
    }

    [Fact]
    public void DefaultTimerStartsAtOneSecondAndDoubles()
    {
        var times = ClientSendTimes(Pairs.ClientOptions(o => o with { HandshakeTimeout = TimeSpan.FromSeconds(200) }), TimeSpan.FromSeconds(130), out _);
        double[] expected = [0, 1, 3, 7, 15, 31, 63, 123];
        Assert.Equal(expected, times.Select(t => t.TotalSeconds).ToArray());
    }

    [Fact]
    public void HandshakeTimeoutFailsTheConnectionAtExactlyTheConfiguredTime()
    {
        ClientSendTimes(Pairs.ClientOptions(o => o with
        {
            InitialRetransmitTimeout = TimeSpan.FromMilliseconds(100),
            HandshakeTimeout = TimeSpan.FromMilliseconds(1234),
        }), TimeSpan.FromSeconds(5), out var client);
        var failed = client.Event<DtlsFailed>();
        Assert.NotNull(failed);
        Assert.Equal(DtlsStateReason.HandshakeTimeout, failed.Reason);
        Assert.Equal(DtlsState.Failed, client.Connection.State);
        Assert.Null(client.Connection.PollTimeout());
    }

    [Fact]
    public void HandshakeTimeoutFiresAtItsDeadline()
    {
        var link = new VirtualLink { Cut = true };
        var client = new DtlsPeer(DtlsConnection.CreateClient(Pairs.ClientOptions(o => o with { HandshakeTimeout = TimeSpan.FromMilliseconds(1234) })));
        var server = new DtlsPeer(DtlsConnection.CreateServer(Pairs.ServerOptions()));
        var driver = new TwoPeerDriver(client, server, link);
        client.Connection.Start(driver.Now);
        driver.RunUntil(() => client.Connection.State == DtlsState.Failed, TimeSpan.FromSeconds(5));
        Assert.Equal(TimeSpan.FromMilliseconds(1234), driver.Now);
    }

    [Fact]
    public void LostFinalServerFlightIsResentWhenTheClientRetransmits()
    {
        var link = new VirtualLink();
        // Drop the first datagram from the server that carries an epoch-1 record (flight 6).
        link.DropNth(LinkEnd.B, 1, d => ContainsEpoch1(d.Span));
        var (client, server, driver) = Pairs.Create(Pairs.ClientOptions(o => o with { InitialRetransmitTimeout = TimeSpan.FromMilliseconds(100) }), link: link);
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)));
        Assert.True(server.Connection.Counters.Retransmissions >= 1);
        Assert.True(client.Connection.Counters.Retransmissions >= 1);
    }

    private static bool ContainsEpoch1(ReadOnlySpan<byte> d)
    {
        while (d.Length >= 13)
        {
            if (d[3] == 0 && d[4] == 1) return true;
            var len = (d[11] << 8) | d[12];
            if (13 + len > d.Length) return false;
            d = d[(13 + len)..];
        }
        return false;
    }
}

public sealed class OrderingTests
{
    [Fact]
    public void ApplicationDataArrivingBeforeTheServerFinishedIsDroppedNotDelivered()
    {
        var link = new VirtualLink();
        link.DropNth(LinkEnd.B, 1, d => EpochOf(d.Span));   // the server's flight 6 (its first epoch-1 record) is lost
        var (client, server, driver) = Pairs.Create(link: link);
        Assert.True(driver.RunUntil(() => server.Connection.State == DtlsState.Connected, TimeSpan.FromSeconds(5)));
        server.Connection.Send([9, 9, 9]);                    // reaches the client while it still waits for Finished
        Assert.True(driver.RunUntil(() => client.Connection.State == DtlsState.Connected, TimeSpan.FromSeconds(5)));
        Assert.Empty(client.Received);
        Assert.True(client.Connection.Counters.DroppedFor(DtlsDropReason.UnexpectedInState) >= 1);
        server.Connection.Send([7]);
        driver.RunUntil(() => client.Received.Count == 1, TimeSpan.FromSeconds(1));
        Assert.Equal([7], client.Received.Single());
    }

    [Fact]
    public void FinishedArrivingBeforeTheKeyExchangeIsKeptAndUsedWithoutRetransmission()
    {
        var client = DtlsConnection.CreateClient(Pairs.ClientOptions(o => o with { Mtu = 300 }));
        var server = DtlsConnection.CreateServer(Pairs.ServerOptions(o => o with { Mtu = 300 }), new DtlsCookieResponder(), [1]);
        var buffer = new byte[2048];
        client.Start(TimeSpan.Zero);
        for (var round = 0; round < 10 && client.State != DtlsState.Connected; round++)
        {
            var flight = new List<byte[]>();
            while (client.TryPollTransmit(buffer, out var n)) flight.Add(buffer.AsSpan(0, n).ToArray());
            flight.Reverse();                                  // the Finished datagram comes first
            foreach (var d in flight) server.HandleDatagram(d, TimeSpan.Zero);
            while (server.TryPollTransmit(buffer, out var n)) client.HandleDatagram(buffer.AsSpan(0, n), TimeSpan.Zero);
        }
        Assert.Equal(DtlsState.Connected, client.State);
        Assert.Equal(DtlsState.Connected, server.State);
        Assert.Equal(0, client.Counters.Retransmissions);
        Assert.Equal(0, server.Counters.DroppedFor(DtlsDropReason.UnknownEpoch));
    }

    private static bool EpochOf(ReadOnlySpan<byte> d)
    {
        while (d.Length >= 13)
        {
            if (d[3] == 0 && d[4] == 1) return true;
            var len = (d[11] << 8) | d[12];
            if (13 + len > d.Length) return false;
            d = d[(13 + len)..];
        }
        return false;
    }
}
