namespace Transport.Dtls.Tests;

/// <summary>
/// The shape every core shares (docs/cores.md), as DTLS has it: PollTimeout names its timer; every event has a kind
/// and a time; every state change is a <see cref="DtlsStateChanged"/> with the state before, the state now and why.
/// </summary>
public class ApiShapeTests
{
    [Fact]
    public void PollTimeoutNamesTheRetransmissionThenTheHandshakeTimeout()
    {
        var client = DtlsConnection.CreateClient(Pairs.ClientOptions(o => o with
        {
            InitialRetransmitTimeout = TimeSpan.FromSeconds(1),
            HandshakeTimeout = TimeSpan.FromSeconds(2.5),
        }));
        Assert.Null(client.PollTimeout(out var timer));
        Assert.Equal(DtlsTimer.None, timer);

        var start = TimeSpan.FromSeconds(10);
        client.Start(start);
        Assert.True(client.TryPollEvent(out var handshaking));
        Assert.IsType<DtlsHandshaking>(handshaking);
        Assert.Equal(start + TimeSpan.FromSeconds(1), client.PollTimeout(out timer));
        Assert.Equal(DtlsTimer.Retransmission, timer);

        // The doubled timer (2 s, at 13 s) comes after the handshake deadline (12.5 s): that one is next.
        client.HandleTimeout(start + TimeSpan.FromSeconds(1));
        Assert.Equal(start + TimeSpan.FromSeconds(2.5), client.PollTimeout(out timer));
        Assert.Equal(DtlsTimer.HandshakeTimeout, timer);

        client.HandleTimeout(start + TimeSpan.FromSeconds(2.5));
        Assert.True(client.TryPollEvent(out var e));
        var failed = Assert.IsType<DtlsFailed>(e);
        Assert.Equal(DtlsEventKind.StateChanged, failed.Kind);
        Assert.Equal((DtlsState.Handshaking, DtlsState.Failed, DtlsStateReason.HandshakeTimeout), (failed.Previous, failed.State, failed.Reason));
        Assert.Equal(start + TimeSpan.FromSeconds(2.5), failed.At);
        Assert.False(client.TryPollEvent(out _));
        Assert.Null(client.PollTimeout(out timer));
        Assert.Equal(DtlsTimer.None, timer);
    }

    [Fact]
    public void EveryStateChangeNamesThePreviousStateTheReasonAndTheTime()
    {
        var (client, server, driver) = Pairs.Create();
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(10)));
        foreach (var peer in new[] { client, server })
        {
            var changes = peer.Events.Where(e => e.Kind == DtlsEventKind.StateChanged).Cast<DtlsStateChanged>().ToList();
            Assert.Equal(2, changes.Count);
            Assert.IsType<DtlsHandshaking>(changes[0]);
            Assert.Equal(DtlsState.New, changes[0].Previous);
            var connected = Assert.IsType<DtlsConnected>(changes[1]);
            Assert.Equal((DtlsState.Handshaking, DtlsState.Connected, DtlsStateReason.HandshakeComplete),
                (connected.Previous, connected.State, connected.Reason));
            Assert.InRange(connected.At, TimeSpan.FromTicks(1), driver.Now);
        }

        var closeAt = driver.Now;
        client.Connection.Close(closeAt);
        client.Drain();
        var closed = Assert.IsType<DtlsClosed>(client.Events[^1]);
        Assert.Equal((DtlsState.Connected, DtlsState.Closed, DtlsStateReason.LocalClose, closeAt), (closed.Previous, closed.State, closed.Reason, closed.At));

        Assert.True(driver.RunUntil(() => server.Connection.State == DtlsState.Closed, TimeSpan.FromSeconds(5)));
        var peerClosed = Assert.IsType<DtlsClosed>(server.Events[^1]);
        Assert.Equal((DtlsState.Connected, DtlsStateReason.PeerClosed), (peerClosed.Previous, peerClosed.Reason));
        Assert.True(peerClosed.At > closeAt); // one link delay later
    }

    [Fact]
    public void TheEventsAreAClosedHierarchyWhoseKindsAreAllUsed()
    {
        var types = typeof(DtlsEvent).Assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(DtlsEvent)) && !t.IsAbstract).ToList();
        Assert.All(types, t => Assert.True(t.IsSealed, t.Name));
        var kinds = types.Select(t => ((DtlsEvent)System.Runtime.CompilerServices.RuntimeHelpers.GetUninitializedObject(t)).Kind).Distinct().Order();
        Assert.Equal(Enum.GetValues<DtlsEventKind>().Order(), kinds);
        Assert.Empty(typeof(DtlsEvent).GetConstructors());
        Assert.Empty(typeof(DtlsStateChanged).GetConstructors());
    }
}

/// <summary>
/// Handshaking is reported like every other state (docs/cores.md: New, Handshaking, Connected, then Closed or Failed),
/// for the client when it sends its first flight and for the server when it accepts a ClientHello, in DTLS 1.2 (after
/// the cookie exchange: the ClientHello answered by HelloVerifyRequest starts nothing) and DTLS 1.3.
/// </summary>
public class HandshakingEventTests
{
    private static List<DtlsStateChanged> Changes(DtlsPeer peer) => peer.Events.OfType<DtlsStateChanged>().ToList();

    [Theory]
    [InlineData(DtlsVersion.Dtls12)]
    [InlineData(DtlsVersion.Dtls13)]
    public void ClientAndServerReportNewHandshakingConnectedClosedInOrder(DtlsVersion version)
    {
        var (client, server, driver) = version == DtlsVersion.Dtls13 ? Pairs13.Create() : Pairs.Create();
        Assert.True(driver.RunUntil(() => Pairs.BothConnected(client, server), TimeSpan.FromSeconds(10)));
        client.Connection.Close(driver.Now);
        client.Drain();
        Assert.True(driver.RunUntil(() => server.Connection.State == DtlsState.Closed, TimeSpan.FromSeconds(5)));

        var c = Changes(client);
        Assert.Equal(
            [
                (DtlsState.New, DtlsState.Handshaking, DtlsStateReason.HandshakeStarted),
                (DtlsState.Handshaking, DtlsState.Connected, DtlsStateReason.HandshakeComplete),
                (DtlsState.Connected, DtlsState.Closed, DtlsStateReason.LocalClose),
            ],
            c.Select(e => (e.Previous, e.State, e.Reason)));
        Assert.IsType<DtlsHandshaking>(c[0]);
        Assert.Equal(TimeSpan.Zero, c[0].At); // Start(driver.Now) at 0: the first flight leaves then

        var s = Changes(server);
        Assert.Equal(
            [
                (DtlsState.New, DtlsState.Handshaking, DtlsStateReason.ClientHelloReceived),
                (DtlsState.Handshaking, DtlsState.Connected, DtlsStateReason.HandshakeComplete),
                (DtlsState.Connected, DtlsState.Closed, DtlsStateReason.PeerClosed),
            ],
            s.Select(e => (e.Previous, e.State, e.Reason)));
        Assert.IsType<DtlsHandshaking>(s[0]);
        // DTLS 1.2 with a cookie responder: the first ClientHello is answered statelessly, the second one (a round trip
        // later) starts the handshake; DTLS 1.3 starts on the first. The link delays each datagram by 10 ms.
        Assert.Equal(TimeSpan.FromMilliseconds(version == DtlsVersion.Dtls13 ? 10 : 30), s[0].At);
        Assert.True(s[0].At < s[1].At);
    }

    [Fact]
    public void AServerThatNeverGetsAValidClientHelloStaysNewAndReportsNothing()
    {
        var server = DtlsConnection.CreateServer(Pairs.ServerOptions(), new DtlsCookieResponder(), [127, 0, 0, 1, 0x13, 0x88]);
        var client = DtlsConnection.CreateClient(Pairs.ClientOptions());
        client.Start(TimeSpan.Zero);
        var buffer = new byte[2048];
        Assert.True(client.TryPollTransmit(buffer, out var n));
        // The first ClientHello has no cookie: the server answers with HelloVerifyRequest and keeps no state.
        server.HandleDatagram(buffer.AsSpan(0, n), TimeSpan.FromMilliseconds(5));
        Assert.Equal(DtlsState.New, server.State);
        Assert.False(server.TryPollEvent(out _));
        Assert.True(server.TryPollTransmit(buffer, out _));
    }
}
