namespace Transport.Dtls.Tests;

public sealed class InProcessHandshakeTests
{
    [Fact]
    public void HandshakeCompletesWhenDatagramsAreExchangedWithoutDelay()
    {
        var cookies = new DtlsCookieResponder();
        var datagram = new byte[2048];
        for (var i = 0; i < 3; i++)
        {
            using var client = DtlsConnection.CreateClient(Pairs.ClientOptions());
            using var server = DtlsConnection.CreateServer(Pairs.ServerOptions(), cookies, [127, 0, 0, 1]);
            client.Start(TimeSpan.Zero);
            var log = new List<string>();
            for (var round = 0; round < 20 && (client.State != DtlsState.Connected || server.State != DtlsState.Connected); round++)
            {
                while (client.TryPollTransmit(datagram, out var n))
                {
                    log.Add($"C->S {n} {Convert.ToHexString(datagram, 0, Math.Min(n, 30))}");
                    server.HandleDatagram(datagram.AsSpan(0, n), TimeSpan.Zero);
                }
                while (server.TryPollTransmit(datagram, out var n))
                {
                    log.Add($"S->C {n} {Convert.ToHexString(datagram, 0, Math.Min(n, 30))}");
                    client.HandleDatagram(datagram.AsSpan(0, n), TimeSpan.Zero);
                }
            }
            var events = new List<DtlsEvent>();
            while (client.TryPollEvent(out var e)) events.Add(e);
            while (server.TryPollEvent(out var e)) events.Add(e);
            Assert.True(client.State == DtlsState.Connected && server.State == DtlsState.Connected,
                $"round {i}: {client.State}/{server.State} {string.Join(", ", events)} client drops {client.Counters.Dropped} server drops " +
                $"{server.Counters.Dropped}\n{string.Join("\n", log)}");
        }
    }
}
