using System.Net;
using System.Text;
using Transport.Ice;
using Transport.Ice.Turn;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

using static RealPeerKit;

/// <summary>
/// Our client with the relay-only policy reaching our server through coturn (started by the test on 127.0.0.1) over
/// TCP (<c>turn:...?transport=tcp</c>) and over TLS (<c>turns:</c>, a certificate the test makes with openssl), the
/// TCP or TLS connection carried by the UDP driver: every check, DTLS record and SCTP packet of the client goes through
/// that one connection (the client sends no UDP datagram at all); a data channel echoes; when coturn goes away the
/// client is told (its relay is gone) and fails.
/// </summary>
public sealed class TurnOverTcpTests
{
    [Fact]
    public async Task ARelayOnlyClientReachesOurServerThroughCoturnOverTcp()
    {
        var coturn = CoturnServer.Start(tcp: true);
        try
        {
            var turn = TurnServerConfig.Parse($"turn:127.0.0.1:{coturn.Port}?transport=tcp", CoturnServer.User, CoturnServer.Password);
            await RelayEchoThenLoseTheServer(turn, new UdpDriverOptions(), () => coturn.Dispose());
        }
        finally { coturn.Dispose(); }
    }

    [Fact]
    public async Task ARelayOnlyClientReachesOurServerThroughCoturnOverTlsWithACallbackThatAcceptsItsCertificate()
    {
        using var certificate = OpenSslCertificate.Create("turn.test", "DNS:turn.test");
        var coturn = CoturnServer.StartTls(certificate.CertificatePath, certificate.KeyPath);
        try
        {
            // The URI names the address; the certificate is for turn.test: the check says so, the callback accepts it by its thumbprint.
            var turn = TurnServerConfig.Parse($"turns:127.0.0.1:{coturn.TlsPort}", CoturnServer.User, CoturnServer.Password);
            var seen = new List<string>();
            var options = new UdpDriverOptions
            {
                TurnTcp = new TurnTcpOptions
                {
                    Tls = new TurnTlsOptions
                    {
                        RemoteCertificateValidation = (_, cert, _, errors) =>
                        {
                            lock (seen) seen.Add(errors.ToString());
                            return cert is not null && cert.GetCertHashString() == certificate.Certificate.GetCertHashString();
                        },
                    },
                },
            };
            var client = await RelayEchoThenLoseTheServer(turn, options, () => coturn.Dispose());
            lock (seen) Assert.Contains(seen, e => e.Contains("RemoteCertificateNameMismatch", StringComparison.Ordinal));
            Assert.Equal(0, client.Counters.TurnTlsCertificateRefused);
        }
        finally { coturn.Dispose(); }
    }

    // Client (relay-only, on a driver of its own) and server (host candidates); a data channel echo; then the TURN server
    // goes away and the client learns its relay is gone. Returns the client's driver (disposed) for its counters.
    private static async Task<UdpDriver> RelayEchoThenLoseTheServer(TurnServerConfig turn, UdpDriverOptions clientDriver, Action stopServer)
    {
        await using var d1 = new UdpDriver(options: clientDriver);
        await using var d2 = new UdpDriver();
        d1.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        d2.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await using var client = new PeerConnection(d1, new PeerConnectionOptions
        {
            Certificate = Certificate,
            // Re-allocation off: this test is about learning that the relay is gone (TurnRelayRestartTests covers recovery).
            Ice = new IceAgentOptions
            {
                Role = IceRole.Controlling,
                TurnServers = [turn],
                TransportPolicy = IceTransportPolicy.Relay,
                RelayReallocationAttempts = 0
            },
        });
        await using var server = new PeerConnection(d2,
            new PeerConnectionOptions { Certificate = Certificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });

        var offer = await client.CreateOfferAsync();
        var answer = await server.CreateAnswerAsync(offer);
        await client.SetRemoteDescriptionAsync(answer);
        using var cts = new CancellationTokenSource(Patience);
        var relayed = new List<IceCandidate>();
        async Task Forward(PeerConnection from, PeerConnection to)
        {
            try
            {
                await foreach (var e in from.ReadEventsAsync(cts.Token))
                    if (e is LocalCandidateGathered g)
                    {
                        if (from == client) lock (relayed) relayed.Add(g.Candidate);
                        await to.AddRemoteCandidateAsync(g.Candidate.ToSdp());
                    }
                    else if (e is DataChannelOpened) return;
            }
            catch (OperationCanceledException) { }
        }
        var forwardClient = Forward(client, server);
        var forwardServer = Forward(server, client);
        var channel = await client.CreateDataChannelAsync("over-tcp").WaitAsync(Patience);
        await Task.WhenAll(forwardClient, forwardServer).WaitAsync(Patience);
        Assert.Equal(ConnectionState.Connected, client.State);
        Assert.Equal(ConnectionState.Connected, server.State);
        lock (relayed) Assert.All(relayed, c => Assert.Equal(IceCandidateType.Relayed, c.Type));

        // The echo: the server answers each message on the same channel.
        var echo = Task.Run(async () =>
        {
            await foreach (var e in server.ReadEventsAsync(cts.Token))
                if (e is DataChannelMessageReceived m) await server.SendAsync(m.Channel, "echo:" + Encoding.UTF8.GetString(m.Data));
        });
        var received = new List<string>();
        for (var i = 0; i < 20; i++) await client.SendAsync(channel, $"message {i}");
        await foreach (var e in client.ReadEventsAsync(cts.Token))
        {
            if (e is not DataChannelMessageReceived m) continue;
            received.Add(Encoding.UTF8.GetString(m.Data));
            if (received.Count == 20) break;
        }
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"echo:message {i}"), received);

        // Everything the client sent went through the one connection to the TURN server: no UDP datagram at all.
        Assert.Equal(0, d1.Counters.Sent);
        Assert.Equal(1, d1.Counters.TurnTcpOpened);
        Assert.Equal(1, d1.TurnConnectionCount);
        Assert.True(d1.Counters.TurnTcpFramesReceived > 20, $"{d1.Counters.TurnTcpFramesReceived} frames read");
        Assert.Equal(0, d1.Counters.TurnTcpDroppedQueueFull);

        // The server goes away: the connection closes, the client is told its relay is gone (with the reason) and fails.
        stopServer();
        var error = await NextAsync<LocalCandidateError>(client);
        Assert.Contains("AllocationExpired", error.Reason, StringComparison.Ordinal);
        // The driver's two words for it (TurnStreamConnection): an orderly end of the stream ("the server closed the
        // connection") or an error on it ("the connection broke: ..."); which one depends on how the server's process ends.
        Assert.Matches("the server closed the connection|the connection (closed|broke)", error.Reason);
        await NextAsync<ConnectionStateChanged>(client, s => s.State == ConnectionState.Failed);
        Assert.Equal(1, d1.Counters.TurnTcpClosed);
        Assert.Equal(0, d1.TurnConnectionCount);
        await cts.CancelAsync();
        try { await echo; } catch (OperationCanceledException) { }
        return d1;
    }
}
