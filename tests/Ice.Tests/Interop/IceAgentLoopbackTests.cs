using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Xunit.Abstractions;

namespace Transport.Ice.Tests.Interop;

/// <summary>
/// Two agents over real UDP sockets on 127.0.0.1 with the real clock, driven by a minimal single-threaded loop
/// written here (the production driver lives in src/Streaming). Shows the sans-IO agent works unchanged on a
/// real network path, and how far real liveness timings land from the configured ones on this machine.
/// </summary>
public sealed class IceAgentLoopbackTests(ITestOutputHelper output) : IDisposable
{
    private readonly List<Socket> _sockets = new();

    public void Dispose()
    {
        foreach (var s in _sockets) s.Dispose();
    }

    private sealed record Node(IceAgent Agent, Socket Socket, IPEndPoint Local, List<IceEvent> Events, List<byte[]> Data)
    {
        public bool Running { get; set; } = true;
    }

    private Node NewNode(IceAgentOptions options)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _sockets.Add(socket);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var local = (IPEndPoint)socket.LocalEndPoint!;
        var agent = new IceAgent(options);
        agent.AddHostCandidate(local);
        return new Node(agent, socket, local, new(), new());
    }

    private static void Pump(Node[] nodes, Stopwatch clock, Func<bool> until, TimeSpan limit)
    {
        var buffer = new byte[1500];
        var deadline = clock.Elapsed + limit;
        while (!until())
        {
            var now = clock.Elapsed;
            if (now > deadline) throw new TimeoutException($"Condition not reached within {limit}.");
            foreach (var n in nodes.Where(n => n.Running))
            {
                if (n.Agent.PollTimeout() is { } due && due <= now) n.Agent.HandleTimeout(now);
                while (n.Agent.TryPollTransmit(buffer, out var size, out var t)) n.Socket.SendTo(buffer.AsSpan(0, size), SocketFlags.None, t.Remote);
                while (n.Agent.TryPollEvent(out var e)) n.Events.Add(e);
            }
            var readable = nodes.Where(n => n.Running).Select(n => n.Socket).ToList();
            Socket.Select(readable, null, null, 2000); // 2 ms
            foreach (var n in nodes.Where(n => n.Running && readable.Contains(n.Socket)))
            {
                while (n.Socket.Available > 0)
                {
                    EndPoint from = new IPEndPoint(IPAddress.Any, 0);
                    var length = n.Socket.ReceiveFrom(buffer, ref from);
                    if (n.Agent.HandleDatagram(buffer.AsSpan(0, length), n.Local, (IPEndPoint)from, clock.Elapsed) == IceReceiveResult.ApplicationData)
                        n.Data.Add(buffer.AsSpan(0, length).ToArray());
                }
            }
        }
    }

    [Fact]
    public void AgentsConnectOverLoopbackAndDetectASilentPeerAtTheConfiguredTimes()
    {
        var disconnectedTimeout = TimeSpan.FromMilliseconds(500);
        var failedTimeout = TimeSpan.FromMilliseconds(500);
        IceAgentOptions Options(IceRole role) => new()
        {
            Role = role,
            KeepaliveInterval = TimeSpan.FromMilliseconds(100),
            ConsentInterval = TimeSpan.FromMilliseconds(250),
            DisconnectedTimeout = disconnectedTimeout,
            FailedTimeout = failedTimeout,
        };
        var a = NewNode(Options(IceRole.Controlling));
        var b = NewNode(Options(IceRole.Controlled));
        var clock = Stopwatch.StartNew();
        a.Agent.SetRemoteCredentials(b.Agent.LocalCredentials, clock.Elapsed);
        b.Agent.SetRemoteCredentials(a.Agent.LocalCredentials, clock.Elapsed);
        a.Agent.AddRemoteCandidate(b.Agent.LocalCandidates[0], clock.Elapsed);
        b.Agent.AddRemoteCandidate(a.Agent.LocalCandidates[0], clock.Elapsed);
        var nodes = new[] { a, b };

        Pump(nodes, clock, () => a.Agent.State == IceConnectionState.Connected && b.Agent.State == IceConnectionState.Connected, TimeSpan.FromSeconds(10));
        output.WriteLine($"connected after {clock.Elapsed.TotalMilliseconds:F1} ms");
        Assert.Equal(b.Local, a.Agent.SelectedRemote!.Address);

        var send = a.Agent.TrySend(clock.Elapsed);
        Assert.True(send.CanSend);
        a.Socket.SendTo(new byte[] { 0x17, 0xFE, 0xFD, 9 }, send.Remote!);
        Pump(nodes, clock, () => b.Data.Count == 1, TimeSpan.FromSeconds(5));
        Assert.Equal(new byte[] { 0x17, 0xFE, 0xFD, 9 }, b.Data[0]);

        // B goes silent (stops processing and sending); A must notice at the configured times.
        var quietFrom = clock.Elapsed + TimeSpan.FromSeconds(1);
        Pump(nodes, clock, () => clock.Elapsed > quietFrom, TimeSpan.FromSeconds(5));
        // (On a starved machine a >500 ms scheduling gap can flap Connected/Disconnected; never Failed.)
        Assert.NotEqual(IceConnectionState.Failed, a.Agent.State);
        b.Running = false;
        Pump(nodes, clock, () => a.Agent.State == IceConnectionState.Failed, TimeSpan.FromSeconds(10));
        var changes = a.Events.OfType<IceStateChangedEvent>().ToList();
        var disconnected = changes.Last(e => e.State == IceConnectionState.Disconnected);
        var failed = changes.Last();
        Assert.Equal(IceStateReason.FailedTimeout, failed.Reason);
        // Events carry the time the loop handled the deadline; on virtual time that is the deadline itself. Here the
        // difference is the loop's lateness on a real, loaded machine: reported, and bounded loosely.
        var disconnectedLate = disconnected.LastReceivedAge!.Value - disconnectedTimeout;
        var failedLate = failed.At - disconnected.At - failedTimeout;
        output.WriteLine($"Disconnected {disconnectedLate.TotalMilliseconds:F1} ms after its deadline (age " +
                         $"{disconnected.LastReceivedAge.Value.TotalMilliseconds:F1} ms, configured {disconnectedTimeout.TotalMilliseconds} ms); " +
                         $"Failed {failedLate.TotalMilliseconds:F1} ms after its deadline (configured {failedTimeout.TotalMilliseconds} ms)");
        Assert.InRange(disconnectedLate, TimeSpan.Zero, TimeSpan.FromSeconds(2));
        Assert.InRange(failedLate, TimeSpan.Zero, TimeSpan.FromSeconds(2));
    }
}
