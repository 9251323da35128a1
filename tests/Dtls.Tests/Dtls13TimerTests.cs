using Transport.TestKit;

namespace Transport.Dtls.Tests;

/// <summary>DTLS 1.3 retransmission (RFC 9147 5.8) and ACKs (section 7) on virtual time: every flight lost once.</summary>
public sealed class Dtls13TimerTests
{
    private static Func<DtlsOptions, DtlsOptions> Fast => o => Pairs13.V13(o) with
    {
        InitialRetransmitTimeout = TimeSpan.FromMilliseconds(50),
        MaxRetransmitTimeout = TimeSpan.FromMilliseconds(400),
        HandshakeTimeout = TimeSpan.FromSeconds(10),
    };

    /// <summary>Times (ms) at which each side sent datagrams, one entry per datagram.</summary>
    private static (DtlsPeer C, DtlsPeer S, TwoPeerDriver D, List<double> A, List<double> B) Run(Func<LinkEnd, double, byte[], bool> drop)
    {
        // 10 ms each way.
        var (c, s, d) = Pairs13.Create(Fast, Fast,
            new VirtualLink(1, LinkConditions.Clean(TimeSpan.FromMilliseconds(10)), LinkConditions.Clean(TimeSpan.FromMilliseconds(10))));
        var a = new List<double>();
        var b = new List<double>();
        d.Link.AddFilter(null, _ => true, _ => FilterAction.Pass);
        d.Link.ClearFilters();
        d.Link.AddFilter(LinkEnd.A,
            m => { a.Add(d.Now.TotalMilliseconds); return drop(LinkEnd.A, d.Now.TotalMilliseconds, m.ToArray()); }, _ => FilterAction.Drop);
        d.Link.AddFilter(LinkEnd.B,
            m => { b.Add(d.Now.TotalMilliseconds); return drop(LinkEnd.B, d.Now.TotalMilliseconds, m.ToArray()); }, _ => FilterAction.Drop);
        Assert.True(d.RunUntil(() => Pairs.BothConnected(c, s) && !c.Connection.AwaitingAck, TimeSpan.FromSeconds(5)), Pairs13.Describe(c, s));
        d.RunFor(TimeSpan.FromSeconds(2));
        Assert.Null(c.Connection.PollTimeout());
        Assert.Null(s.Connection.PollTimeout());
        return (c, s, d, a, b);
    }

    [Fact]
    public void CleanHandshakeTakesTwoRoundTripsAndTheAckEndsIt()
    {
        var (c, s, _, a, b) = Run((_, _, _) => false);
        // Client: ClientHello (hybrid: two datagrams) at 0; its last flight at 20 ms. Server: its flight at 10, ACK at 30.
        Assert.Equal([0, 0, 20], a);
        Assert.Equal(30, b[^1]);
        Assert.All(b.Take(b.Count - 1), t => Assert.Equal(10, t));
        Assert.Equal(1, s.Connection.AcksSent);
        Assert.Equal(1, c.Connection.AcksReceived);
        Assert.Equal(0, c.Connection.Counters.Retransmissions + s.Connection.Counters.Retransmissions);
    }

    [Fact]
    public void LostClientHelloIsResentAfterTheInitialTimeout()
    {
        var (c, _, _, a, _) = Run((end, t, _) => end == LinkEnd.A && t == 0);
        Assert.Equal([0, 0, 50, 50, 70], a);
        Assert.Equal(1, c.Connection.Counters.Retransmissions);
    }

    [Fact]
    public void LostServerFlightIsResentOnTheServerTimerAndOnTheClientsRetransmission()
    {
        var (_, s, _, a, b) = Run((end, t, _) => end == LinkEnd.B && t == 10);
        // The client resends its ClientHello at 50 ms, the server its flight at 60 ms (timer) and again when the
        // resent ClientHello arrives at 60 ms; the client finishes at 70 ms.
        Assert.Equal([0, 0, 50, 50, 70], a);
        Assert.Contains(60, b);
        Assert.True(s.Connection.Counters.Retransmissions >= 1);
    }

    [Fact]
    public void LostClientFinalFlightIsResentUntilAcknowledged()
    {
        var (c, s, _, a, b) = Run((end, t, _) => end == LinkEnd.A && t == 20);
        // Client connected at 20 ms and resends its flight at 70 ms (50 ms timer) and when the server's flight comes
        // again (server timer 60 ms, arriving 70 ms); the server connects at 80 ms and ACKs.
        Assert.Equal(DtlsState.Connected, c.Connection.State);
        Assert.Equal(0, a.Count(t => t is > 20 and < 70));
        Assert.Contains(70, a);
        Assert.Contains(80, b);
        Assert.True(s.Connection.AcksSent >= 1);
    }

    [Fact]
    public void LostAckMakesTheClientResendAndTheServerAcknowledgeAgain()
    {
        var first = true;
        var (c, s, _, a, b) = Run((end, t, m) =>
        {
            if (end != LinkEnd.B || t != 30 || !first) return false;
            first = false;
            return true;
        });
        // ACK at 30 lost; client timer (armed at 20) fires at 70; the server re-ACKs at 80, received at 90.
        Assert.Equal([0, 0, 20, 70], a);
        Assert.Equal([30, 80], b.Skip(b.Count - 2));
        Assert.Equal(2, s.Connection.AcksSent);
        Assert.Equal(1, c.Connection.Counters.Retransmissions);
        // The server had dropped the handshake epoch's keys at the client's Finished: the resent flight (epoch 2) could
        // not be read and was acknowledged again from the record numbers kept. The client dropped them at the ACK.
        Assert.True(s.Connection.HandshakeEpochDropped);
        Assert.True(c.Connection.HandshakeEpochDropped);
        Assert.True(s.Connection.Counters.DroppedFor(DtlsDropReason.UnknownEpoch) >= 1);
    }

    [Fact]
    public void HandshakeEpochKeysGoOnceTheLastFlightIsAcknowledgedAndUnreadableRecordsAreReAckedBoundedly()
    {
        var (c, s, d, _, b) = Run((_, _, _) => false);
        Assert.True(s.Connection.HandshakeEpochDropped);
        Assert.True(c.Connection.HandshakeEpochDropped);
        // Records that claim the handshake epoch (bits 2) are not readable any more: each is counted as dropped and
        // answered by the kept ACK, once per instant and at most MaxReAcks13 times however many come.
        var acks = s.Connection.AcksSent;
        var bogus = new byte[40];
        bogus[0] = 0x2C | 2;   // unified header, 16-bit sequence, length present, epoch bits 2
        bogus[3] = 0;
        bogus[4] = 35;
        s.Connection.HandleDatagram(bogus, d.Now);
        s.Connection.HandleDatagram(bogus, d.Now);
        Assert.Equal(acks + 1, s.Connection.AcksSent);
        for (var i = 1; i < DtlsConnection.MaxReAcks13 + 10; i++) s.Connection.HandleDatagram(bogus, d.Now + TimeSpan.FromMilliseconds(i));
        Assert.Equal(acks + DtlsConnection.MaxReAcks13, s.Connection.AcksSent);
        Assert.Equal(DtlsState.Connected, s.Connection.State);
        // Data still flows in epoch 3 both ways.
        c.Connection.Send("after"u8);
        s.Connection.Send("after"u8);
        Assert.True(d.RunUntil(() => c.Received.Count == 1 && s.Received.Count == 1, TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void ClientHelloTimerDoublesUpToTheMaximumAndTheHandshakeTimesOut()
    {
        var link = new VirtualLink();
        var client = new DtlsPeer(DtlsConnection.CreateClient(Fast(Pairs.ClientOptions()) with { HandshakeTimeout = TimeSpan.FromMilliseconds(1234) }));
        var server = new DtlsPeer(DtlsConnection.CreateServer(Fast(Pairs.ServerOptions())));
        var driver = new TwoPeerDriver(client, server, link);
        var times = new List<double>();
        link.AddFilter(LinkEnd.A, _ => { times.Add(driver.Now.TotalMilliseconds); return true; }, _ => FilterAction.Drop);
        client.Connection.Start(driver.Now);
        driver.RunFor(TimeSpan.FromSeconds(3));
        // Two datagrams per ClientHello: 0, 50, 150, 350, 750, 1150 ms; failed at exactly 1234 ms.
        Assert.Equal([0, 0, 50, 50, 150, 150, 350, 350, 750, 750, 1150, 1150], times);
        Assert.Equal(DtlsStateReason.HandshakeTimeout, client.Event<DtlsFailed>()!.Reason);
    }

    [Fact]
    public void HandshakeCompletesOverLossyReorderingLink()
    {
        foreach (var seed in Enumerable.Range(1, 12))
        {
            var cond = new LinkConditions { Delay = TimeSpan.FromMilliseconds(10), Loss = 0.25, Duplicate = 0.1, Reorder = 0.2 };
            var (c, s, d) = Pairs13.Create(Fast, Fast, new VirtualLink(seed, cond, cond));
            Assert.True(d.RunUntil(() => Pairs.BothConnected(c, s), TimeSpan.FromSeconds(10)), $"seed {seed}: " + Pairs13.Describe(c, s));
            Assert.Equal(c.Connection.GetSrtpKeyingMaterial().LocalKey, s.Connection.GetSrtpKeyingMaterial().RemoteKey);
        }
    }
}

/// <summary>DTLS 1.3 after the handshake: tampering, replay, KeyUpdate, close_notify.</summary>
public sealed class Dtls13RecordLifecycleTests
{
    [Fact]
    public void TamperedAndReplayedRecordsAreDroppedAndCounted()
    {
        var (client, server, driver) = Pairs13.Create();
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server) && !client.Connection.AwaitingAck, TimeSpan.FromSeconds(5)));
        var buffer = new byte[2048];
        client.Connection.Send("payload"u8);
        Assert.True(client.Connection.TryPollTransmit(buffer, out var n));
        var record = buffer.AsSpan(0, n).ToArray();
        var before = server.Connection.Counters.DroppedFor(DtlsDropReason.BadTag);
        for (var i = 5; i < record.Length; i += 3)
        {
            var copy = (byte[])record.Clone();
            copy[i] ^= 1;
            server.HandleDatagram(copy, driver.Now);
        }
        Assert.Equal(before + (record.Length - 5 + 2) / 3, server.Connection.Counters.DroppedFor(DtlsDropReason.BadTag));
        Assert.Empty(server.Received);
        server.HandleDatagram(record, driver.Now);
        Assert.Single(server.Received);
        server.HandleDatagram(record, driver.Now);
        Assert.Equal(1, server.Connection.Counters.DroppedFor(DtlsDropReason.Replayed));
        Assert.Single(server.Received);
        Assert.Equal(DtlsState.Connected, server.Connection.State);
    }

    [Fact]
    public void KeyUpdateMovesBothSidesToTheNextEpochAndDataFlows()
    {
        var (client, server, driver) = Pairs13.Create();
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server) && !client.Connection.AwaitingAck, TimeSpan.FromSeconds(5)));
        Assert.Equal(3UL, client.Connection.WriteEpoch);
        Assert.True(client.Connection.UpdateKeys(driver.Now));
        Assert.False(client.Connection.UpdateKeys(driver.Now)); // one at a time
        Assert.True(driver.RunUntil(() => client.Connection.WriteEpoch == 4 && server.Connection.WriteEpoch == 4, TimeSpan.FromSeconds(2)),
            $"client {client.Connection.WriteEpoch} server {server.Connection.WriteEpoch}");
        Assert.Equal(1, server.Connection.KeyUpdatesReceived);
        client.Connection.Send("after"u8);
        server.Connection.Send("update"u8);
        Assert.True(driver.RunUntil(() => client.Received.Count == 1 && server.Received.Count == 1, TimeSpan.FromSeconds(1)));
        Assert.Equal("after"u8.ToArray(), server.Received[0]);
        Assert.True(server.Connection.UpdateKeys(driver.Now));
        Assert.True(driver.RunUntil(() => client.Connection.WriteEpoch == 5 && server.Connection.WriteEpoch == 5, TimeSpan.FromSeconds(2)));
        server.Connection.Send("again"u8);
        Assert.True(driver.RunUntil(() => client.Received.Count == 2, TimeSpan.FromSeconds(1)));
        Assert.Equal(0, client.Connection.Counters.Dropped + server.Connection.Counters.Dropped);
    }

    [Fact]
    public void CloseNotifyClosesBothSides()
    {
        var (client, server, driver) = Pairs13.Create();
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(5)));
        client.Connection.Close(driver.Now);
        Assert.True(driver.RunUntil(() => server.Connection.State == DtlsState.Closed, TimeSpan.FromSeconds(1)));
        Assert.Equal(DtlsStateReason.PeerClosed, server.Event<DtlsClosed>()!.Reason);
        Assert.Equal(DtlsStateReason.LocalClose, client.Event<DtlsClosed>()!.Reason);
    }

    [Fact]
    public void GarbageInEveryStateNeverThrows()
    {
        var rng = new Random(5);
        var (client, server, driver) = Pairs13.Create();
        for (var step = 0; step < 200 && !(Pairs.BothConnected(client, server) && !client.Connection.AwaitingAck); step++)
        {
            foreach (var p in new[] { client, server })
            {
                var junk = new byte[rng.Next(1, 300)];
                rng.NextBytes(junk);
                if (step % 3 == 0) junk[0] = (byte)(0x20 | (junk[0] & 0x1F)); // looks like a unified header
                p.HandleDatagram(junk, driver.Now);
            }
            driver.Progress();
        }
        Assert.True(Pairs.BothConnected(client, server), Pairs13.Describe(client, server));
        Assert.True(client.Connection.Counters.Dropped + server.Connection.Counters.Dropped > 0);
    }
}
