using Transport.TestKit;

namespace Transport.Dtls.Tests;

/// <summary>
/// Mutated copies of real handshake datagrams (byte flips anywhere, epoch-0 content is not authenticated) must
/// never make a connection throw; the handshake may fail, with an event.
/// </summary>
public sealed class FuzzTests
{
    private sealed class MutatingPeer(DtlsPeer inner, Random random) : IVirtualPeer
    {
        public void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now)
        {
            if (random.Next(5) != 0) { inner.HandleDatagram(datagram, now); return; }
            var copy = datagram.ToArray();
            var flips = 1 + random.Next(3);
            for (var i = 0; i < flips; i++) copy[random.Next(copy.Length)] ^= (byte)(1 << random.Next(8));
            inner.HandleDatagram(copy, now);
            if (random.Next(4) != 0) inner.HandleDatagram(datagram, now);
        }

        public void HandleTimeout(TimeSpan now) => inner.HandleTimeout(now);
        public bool TryPollTransmit(Span<byte> destination, out int written) => inner.TryPollTransmit(destination, out written);
        public TimeSpan? PollTimeout() => inner.PollTimeout();
    }

    [Fact]
    public void MutatedHandshakeDatagramsNeverThrow()
    {
        var outcomes = new Dictionary<DtlsState, int>();
        long dropped = 0;
        for (var seed = 0; seed < 60; seed++)
        {
            var random = new Random(seed);
            var client = new DtlsPeer(DtlsConnection.CreateClient(Pairs.ClientOptions(o => o with { HandshakeTimeout = TimeSpan.FromSeconds(20) })));
            var server = new DtlsPeer(DtlsConnection.CreateServer(Pairs.ServerOptions(o => o with { HandshakeTimeout = TimeSpan.FromSeconds(20) }),
                new DtlsCookieResponder()));
            var driver = new TwoPeerDriver(new MutatingPeer(client, random), new MutatingPeer(server, random));
            client.Connection.Start(driver.Now);
            driver.RunUntil(() => client.Connection.State is DtlsState.Connected or DtlsState.Failed
                && server.Connection.State is DtlsState.Connected or DtlsState.Failed or DtlsState.New, TimeSpan.FromSeconds(30));
            outcomes[client.Connection.State] = outcomes.GetValueOrDefault(client.Connection.State) + 1;
            dropped += client.Connection.Counters.Dropped + server.Connection.Counters.Dropped;
            // A failure is always reported with a reason, never silent.
            if (client.Connection.State == DtlsState.Failed) Assert.NotNull(client.Event<DtlsFailed>());
            Assert.NotEqual(DtlsState.Handshaking, client.Connection.State);
        }
        Assert.True(outcomes.GetValueOrDefault(DtlsState.Connected) > 0, string.Join(", ", outcomes));
        // What was refused without ending a handshake was counted as a drop, not swallowed.
        Assert.True(dropped > 0, $"no mutated datagram was counted as dropped ({string.Join(", ", outcomes)})");
    }

    /// <summary>The same for DTLS 1.3 with the hybrid group (both roles parse mutated hellos, key shares, records and ACKs).</summary>
    [Fact]
    public void MutatedDtls13HandshakeDatagramsNeverThrow()
    {
        var outcomes = new Dictionary<DtlsState, int>();
        long dropped = 0;
        for (var seed = 0; seed < 40; seed++)
        {
            var random = new Random(seed);
            var client = new DtlsPeer(DtlsConnection.CreateClient(Pairs13.V13(Pairs.ClientOptions(o =>
                o with { HandshakeTimeout = TimeSpan.FromSeconds(20) }))));
            var server = new DtlsPeer(DtlsConnection.CreateServer(Pairs13.V13(Pairs.ServerOptions(o =>
                o with { HandshakeTimeout = TimeSpan.FromSeconds(20) }))));
            var driver = new TwoPeerDriver(new MutatingPeer(client, random), new MutatingPeer(server, random));
            client.Connection.Start(driver.Now);
            driver.RunUntil(() => client.Connection.State is DtlsState.Connected or DtlsState.Failed
                && server.Connection.State is DtlsState.Connected or DtlsState.Failed or DtlsState.New, TimeSpan.FromSeconds(30));
            outcomes[client.Connection.State] = outcomes.GetValueOrDefault(client.Connection.State) + 1;
            dropped += client.Connection.Counters.Dropped + server.Connection.Counters.Dropped;
            if (client.Connection.State == DtlsState.Failed) Assert.NotNull(client.Event<DtlsFailed>());
            Assert.NotEqual(DtlsState.Handshaking, client.Connection.State);
        }
        Assert.True(outcomes.GetValueOrDefault(DtlsState.Connected) > 0, string.Join(", ", outcomes));
        // What was refused without ending a handshake was counted as a drop, not swallowed.
        Assert.True(dropped > 0, $"no mutated datagram was counted as dropped ({string.Join(", ", outcomes)})");
    }
}
