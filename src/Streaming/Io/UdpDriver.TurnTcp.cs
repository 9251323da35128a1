using System.Net;
using Microsoft.Extensions.Logging;

namespace Transport.Streaming.Io;

/// <summary>
/// TURN over TCP and TLS (RFC 8656 section 3.1): the connections a peer's <see cref="TransmitKind.TurnStream"/>
/// transmits open, one per (peer, local address, server) — one per allocation, since the server ties the allocation
/// to its connection. Frames read from a connection go to the peer's actor like datagrams; its closing is posted to
/// the peer (<see cref="IDatagramPeer.OnTurnConnectionClosed"/>), which learns that the allocation is gone.
/// </summary>
public sealed partial class UdpDriver
{
    private readonly ShrinkingDictionary<(PeerActor Actor, IPEndPoint Local, IPEndPoint Server), TurnStreamConnection> _turnConnections = new();
    private int _turnOpen;

    /// <summary>Connections to TURN servers open now or opening (a leak check: 0 once their peers stopped).</summary>
    public int TurnConnectionCount => _turnConnections.Count;

    /// <summary>
    /// A peer's bytes for the TURN server <paramref name="server"/> (called on the peer's thread): queued on the
    /// connection from <paramref name="local"/>'s address, which is opened by the first of them; dropped and counted
    /// when the connection closed or its queue is full.
    /// </summary>
    internal void SendTurnStream(PeerActor actor, IPEndPoint? local, IPEndPoint server, ReadOnlySpan<byte> frame)
    {
        if (local is null || Volatile.Read(ref _disposed) != 0) { Interlocked.Increment(ref Counters._turnTcpDroppedClosed); return; }
        var key = (actor, local, server);
        if (!_turnConnections.TryGetValue(key, out var connection))
        {
            if (Interlocked.Increment(ref _turnOpen) > Options.TurnTcp.MaxConnections)
            {
                Interlocked.Decrement(ref _turnOpen);
                Interlocked.Increment(ref Counters._turnTcpRefused);
                return;
            }
            // Only the actor's own thread adds its keys: no race between the lookup and the add.
            TurnServerConfigOrNull(actor, local, server, out var config);
            connection = new TurnStreamConnection(this, actor, local, server, config);
            _turnConnections[key] = connection;
            connection.Start();
        }
        connection.Send(frame);
    }

    private static void TurnServerConfigOrNull(PeerActor actor, IPEndPoint local, IPEndPoint server, out Transport.Ice.Turn.TurnServerConfig? config)
    {
        try { config = actor.Peer.FindTurnServer(local, server); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException) { config = null; }
    }

    /// <summary>
    /// The connection closed (any thread, once): the peer is told on its own thread; the connection leaves the table
    /// only then, so transmits in between are dropped rather than opening a new connection the server would not know.
    /// </summary>
    internal void OnTurnConnectionClosed(TurnStreamConnection connection, string reason)
    {
        Interlocked.Increment(ref Counters._turnTcpClosed);
        LogTurnConnectionClosed(connection.Local, connection.Server, reason);
        _ = NotifyClosedAsync(connection, reason);
    }

    private async Task NotifyClosedAsync(TurnStreamConnection connection, string reason)
    {
        var work = new TurnClosedWork(this, connection, reason);
        bool posted;
        try { posted = await connection.Actor.PostAsync(work, CancellationToken.None).ConfigureAwait(false); }
        catch (ObjectDisposedException) { posted = false; }
        if (!posted) work.Abandon();
    }

    private void ForgetTurnConnection(TurnStreamConnection connection)
    {
        if (_turnConnections.TryRemove(new KeyValuePair<(PeerActor, IPEndPoint, IPEndPoint), TurnStreamConnection>((connection.Actor, connection.Local,
            connection.Server), connection)))
            Interlocked.Decrement(ref _turnOpen);
    }

    /// <summary>The peer stopped: its connections close (the server frees the allocations with them).</summary>
    private void CloseTurnConnectionsOf(PeerActor actor)
    {
        foreach (var c in _turnConnections.Values)
            if (c.Actor == actor) c.Close("the peer stopped");
    }

    private void CloseAllTurnConnections()
    {
        foreach (var c in _turnConnections.Values) c.Close("the driver stopped");
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "TURN connection {Local} -> {Server} closed: {Reason}")]
    private partial void LogTurnConnectionClosed(IPEndPoint local, IPEndPoint server, string reason);

    /// <summary>Tells the peer on its own thread that its connection closed; forgets the connection either way.</summary>
    private sealed class TurnClosedWork(UdpDriver driver, TurnStreamConnection connection, string reason) : IWorkItem
    {
        public void Run(TimeSpan now)
        {
            driver.ForgetTurnConnection(connection);
            try { connection.Actor.Peer.OnTurnConnectionClosed(connection.Local, connection.Server, reason, now); }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException) { Interlocked.Increment(ref driver.Counters._peerErrors); }
        }

        public void Complete() { }

        public void Abandon() => driver.ForgetTurnConnection(connection);
    }
}
