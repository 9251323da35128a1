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
            var connected = Assert.IsType<DtlsConnected>(Assert.Single(peer.Events, e => e.Kind == DtlsEventKind.StateChanged));
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
