namespace Transport.Dtls.Tests;

/// <summary>
/// What SPED needs from DTLS: the flight's datagrams taken whole for the ICE checks to carry, the retransmission timer
/// paused while they do (the handshake deadline still runs), resumed RTT-based when they stop; DTLS 1.2 and 1.3.
/// </summary>
public sealed class SpedRetransmissionTests
{
    [Theory]
    [InlineData(DtlsVersion.Dtls12)]
    [InlineData(DtlsVersion.Dtls13)]
    public void APausedTimerResendsNothingUntilResumedThenRestartsFromTheRoundTrip(DtlsVersion version)
    {
        using var client = DtlsConnection.CreateClient(Pairs.ClientOptions(o => o with
        {
            MaxVersion = version,
            Mtu = 900,
            InitialRetransmitTimeout = TimeSpan.FromMilliseconds(100),
            HandshakeTimeout = TimeSpan.FromSeconds(10),
        }));
        client.PauseRetransmission();
        client.Start(TimeSpan.Zero);
        var flight = new List<byte[]>();
        Assert.True(client.TakeTransmits(flight) >= 1);
        Assert.All(flight, d => Assert.InRange(d.Length, 13, 900));
        Assert.False(client.HasTransmits);
        // Only the handshake deadline is left while paused.
        Assert.Equal(TimeSpan.FromSeconds(10), client.PollTimeout());
        client.HandleTimeout(TimeSpan.FromSeconds(2));
        Assert.False(client.HasTransmits);
        Assert.Equal(0, client.Counters.Retransmissions);

        client.ResumeRetransmission(TimeSpan.FromSeconds(3), roundTripTime: TimeSpan.FromMilliseconds(30));
        Assert.False(client.RetransmissionPaused);
        // max(MinRetransmitTimeout 50 ms, 2 x 30 ms) = 60 ms after the resume.
        Assert.Equal(TimeSpan.FromSeconds(3) + TimeSpan.FromMilliseconds(60), client.PollTimeout());
        client.HandleTimeout(TimeSpan.FromSeconds(3) + TimeSpan.FromMilliseconds(60));
        Assert.Equal(1, client.Counters.Retransmissions);
        var resent = new List<byte[]>();
        Assert.Equal(flight.Count, client.TakeTransmits(resent));
    }

    [Fact]
    public void AFlightTakenForSpedCompletesTheHandshakeWhenFedToThePeer()
    {
        using var client = DtlsConnection.CreateClient(Pairs.ClientOptions(o => o with { Mtu = 900 }));
        using var server = DtlsConnection.CreateServer(Pairs.ServerOptions(o => o with { Mtu = 900 }));
        client.PauseRetransmission();
        server.PauseRetransmission();
        client.Start(TimeSpan.Zero);
        var now = TimeSpan.Zero;
        for (var round = 0; round < 6 && !(client.State == DtlsState.Connected && server.State == DtlsState.Connected); round++)
        {
            now += TimeSpan.FromMilliseconds(25);
            var toServer = new List<byte[]>();
            client.TakeTransmits(toServer);
            foreach (var d in toServer) server.HandleDatagram(d, now);
            now += TimeSpan.FromMilliseconds(25);
            var toClient = new List<byte[]>();
            server.TakeTransmits(toClient);
            foreach (var d in toClient) client.HandleDatagram(d, now);
        }
        Assert.Equal(DtlsState.Connected, client.State);
        Assert.Equal(DtlsState.Connected, server.State);
        Assert.Equal(0, client.Counters.Retransmissions + server.Counters.Retransmissions);
    }
}
