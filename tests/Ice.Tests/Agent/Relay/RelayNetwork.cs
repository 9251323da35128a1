using System.Net;
using Transport.Ice.Turn;
using Transport.TestKit;

namespace Transport.Ice.Tests.Agent.Relay;

/// <summary>One agent of a <see cref="RelayNetwork"/>, with what it reported and received.</summary>
internal sealed class RelayNode
{
    public RelayNode(string name, IceAgent agent, IPEndPoint host, VirtualLink link, bool tcp)
    {
        Name = name;
        Agent = agent;
        Host = host;
        Link = link;
        Tcp = tcp;
        agent.AddHostCandidate(host);
    }

    public string Name { get; }
    public IceAgent Agent { get; }
    public IPEndPoint Host { get; }
    /// <summary>End A is the agent, end B the TURN server.</summary>
    public VirtualLink Link { get; }
    public bool Tcp { get; }
    /// <summary>Talks to the server over both UDP and TCP (a TURN server listed twice).</summary>
    public bool Mixed { get; init; }
    public List<IceEvent> Events { get; } = new();
    public List<(TimeSpan At, byte[] Data)> ApplicationData { get; } = new();
    public List<IceTransmit> Transmits { get; } = new();
    /// <summary>Transmits to anything but the TURN server: the test network has no direct path between the hosts.</summary>
    public int Swallowed { get; set; }

    public IEnumerable<T> EventsOf<T>() where T : IceEvent => Events.OfType<T>();
    public TurnClient Turn => Agent.TurnClients.Single();

    public void DrainEvents()
    {
        while (Agent.TryPollEvent(out var e)) Events.Add(e);
    }

    public void Signal(RelayNode other, TimeSpan now)
    {
        Agent.SetRemoteCredentials(other.Agent.LocalCredentials, now);
        foreach (var c in other.Agent.LocalCandidates) Agent.AddRemoteCandidate(c, now);
    }
}

/// <summary>
/// Agents that reach each other only through a <see cref="FakeTurnRelay"/>, each over its own TestKit
/// <see cref="VirtualLink"/> to the server, on virtual time: every step advances to the earliest datagram due or
/// agent deadline. Transmits to any other address are swallowed and counted (no direct path).
/// </summary>
internal sealed class RelayNetwork
{
    private readonly List<RelayNode> _nodes = new();
    private readonly byte[] _buffer = new byte[2048];

    public FakeTurnRelay Server { get; } = new();
    public TimeSpan Now { get; private set; }

    public static TurnServerConfig Config(bool tcp = false, string password = FakeTurnRelay.Pass) =>
        TurnServerConfig.Parse($"turn:{FakeTurnRelay.Address.Address}:{FakeTurnRelay.Address.Port}" + (tcp ? "?transport=tcp" : ""), FakeTurnRelay.User, password);

    public RelayNode Add(string name, IceAgentOptions options, IPEndPoint host, TimeSpan? delay = null)
    {
        var d = delay ?? TimeSpan.FromMilliseconds(10);
        var tcp = options.TurnServers.Count > 0 && options.TurnServers[0].Transport == TurnTransport.Tcp;
        var mixed = options.TurnServers.Select(s => s.Transport).Distinct().Count() > 1;
        var node = new RelayNode(name, new IceAgent(options), host, new VirtualLink(seed: _nodes.Count + 1, LinkConditions.Clean(d), LinkConditions.Clean(d)), tcp) { Mixed = mixed };
        _nodes.Add(node);
        return node;
    }

    public void Flush()
    {
        foreach (var n in _nodes)
        {
            while (n.Agent.TryPollTransmit(_buffer, out var t))
            {
                n.Transmits.Add(t);
                if (!t.Remote.Equals(FakeTurnRelay.Address) || !t.Local.Equals(n.Host)) { n.Swallowed++; continue; }
                if (!n.Mixed) Assert.Equal(n.Tcp, t.Tcp);
                if (t.Tcp) ClosedTcp.Remove(n.Host); // the first transmit after a close opens a new connection
                n.Link.Send(LinkEnd.A, Frame(t.Tcp, _buffer.AsSpan(0, t.Length)), Now);
            }
            n.DrainEvents();
        }
    }

    /// <summary>Sends application data on the selected pair (wrapped by the agent when it is relayed).</summary>
    public IceSendResult Send(RelayNode node, byte[] payload)
    {
        var result = node.Agent.TrySend(payload, _buffer, Now, out var t);
        if (!result.CanSend) return result;
        node.Transmits.Add(t);
        Assert.Equal(FakeTurnRelay.Address, t.Remote);
        node.Link.Send(LinkEnd.A, Frame(t.Tcp, _buffer.AsSpan(0, t.Length)), Now);
        return result;
    }

    public bool Progress(TimeSpan until)
    {
        Flush();
        TimeSpan? next = null;
        foreach (var n in _nodes)
        {
            next = Earliest(next, n.Link.NextDelivery);
            next = Earliest(next, n.Agent.PollTimeout());
        }
        if (next is null || next > until) { if (until > Now) Now = until; return false; }
        if (next > Now) Now = next.Value;
        foreach (var n in _nodes)
            while (n.Link.TryReceive(LinkEnd.B, Now, out var d))
            {
                var overTcp = d.Data[0] == 1;
                // A frame of a TCP connection the server no longer has (closed) is lost with it.
                if (overTcp && ClosedTcp.Contains(n.Host)) continue;
                foreach (var (to, tcp, data) in Server.Handle(d.Data.AsSpan(1), n.Host, overTcp, Now))
                {
                    var target = _nodes.Single(x => x.Host.Equals(to));
                    if (!target.Mixed) Assert.Equal(target.Tcp, tcp);
                    target.Link.Send(LinkEnd.B, Frame(tcp, data), Now);
                }
            }
        foreach (var n in _nodes)
            while (n.Link.TryReceive(LinkEnd.A, Now, out var d))
            {
                var result = d.Data[0] == 1
                    ? n.Agent.HandleStreamFrame(d.Data.AsSpan(1), n.Host, FakeTurnRelay.Address, Now, out var app)
                    : n.Agent.HandleDatagram(d.Data.AsSpan(1), n.Host, FakeTurnRelay.Address, Now, out app);
                if (result == IceReceiveResult.ApplicationData) n.ApplicationData.Add((Now, app.ToArray()));
            }
        foreach (var n in _nodes)
            if (n.Agent.PollTimeout() is { } due && due <= Now) n.Agent.HandleTimeout(Now);
        Flush();
        return true;
    }

    public bool RunUntil(Func<bool> condition, TimeSpan limit)
    {
        var deadline = Now + limit;
        for (var i = 0; i < 1_000_000; i++)
        {
            if (condition()) return true;
            if (!Progress(deadline)) return condition();
        }
        throw new InvalidOperationException("no result after 1000000 steps");
    }

    public void RunFor(TimeSpan duration)
    {
        var deadline = Now + duration;
        RunUntil(() => Now >= deadline, duration);
    }

    /// <summary>Nodes whose TCP connection to the server is closed until their next TCP transmit (a new connection).</summary>
    private HashSet<IPEndPoint> ClosedTcp { get; } = new();

    /// <summary>
    /// The server restarts: every allocation is forgotten; each TCP connection closes (its node's agent is told, as a
    /// driver tells it), and frames of the old connections still on the way are lost.
    /// </summary>
    public void RestartServer()
    {
        Server.Restart(Now);
        foreach (var n in _nodes)
            if (n.Tcp || n.Mixed) CloseTcp(n);
    }

    /// <summary>The TCP connection of <paramref name="node"/> to the server closes: the server drops that allocation, the agent is told.</summary>
    public void CloseTcp(RelayNode node)
    {
        Server.DropAllocation(node.Host, tcp: true, Now);
        ClosedTcp.Add(node.Host);
        node.Agent.TurnConnectionClosed(node.Host, FakeTurnRelay.Address, Now, "the server closed the connection");
        Flush();
    }

    // One marker byte ahead of each message on the links: 1 over TCP to the server, 0 over UDP (a node may use both).
    private static byte[] Frame(bool tcp, ReadOnlySpan<byte> data)
    {
        var framed = new byte[data.Length + 1];
        framed[0] = tcp ? (byte)1 : (byte)0;
        data.CopyTo(framed.AsSpan(1));
        return framed;
    }

    private static TimeSpan? Earliest(TimeSpan? x, TimeSpan? y) => x is null ? y : y is null ? x : (x < y ? x : y);
}
