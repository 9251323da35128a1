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
    public List<IceTransmitPath> Transmits { get; } = new();
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
/// Agents that reach each other only through <see cref="FakeTurnRelay"/> servers (one, or more with
/// <see cref="AddServer"/>), each agent over its own TestKit <see cref="VirtualLink"/> to the servers, on virtual time:
/// every step advances to the earliest datagram due or agent deadline. Transmits to any other address are swallowed
/// and counted (no direct path). A server relays only between its own allocations.
/// </summary>
internal sealed class RelayNetwork
{
    private readonly List<RelayNode> _nodes = new();
    private readonly byte[] _buffer = new byte[2048];

    public List<FakeTurnRelay> Servers { get; } = [new FakeTurnRelay()];
    /// <summary>The first server, at <see cref="FakeTurnRelay.Address"/>.</summary>
    public FakeTurnRelay Server => Servers[0];

    /// <summary>Another server at <paramref name="address"/>, reached over the same links.</summary>
    public FakeTurnRelay AddServer(IPEndPoint address)
    {
        var server = new FakeTurnRelay(address);
        Servers.Add(server);
        return server;
    }

    private int ServerIndex(IPEndPoint address) => Servers.FindIndex(s => s.EndPoint.Equals(address));
    public TimeSpan Now { get; private set; }

    public static TurnServerConfig Config(bool tcp = false, string password = FakeTurnRelay.Pass, IPEndPoint? server = null)
    {
        var at = server ?? FakeTurnRelay.Address;
        return TurnServerConfig.Parse($"turn:{at.Address}:{at.Port}" + (tcp ? "?transport=tcp" : ""), FakeTurnRelay.User, password);
    }

    public RelayNode Add(string name, IceAgentOptions options, IPEndPoint host, TimeSpan? delay = null)
    {
        var d = delay ?? TimeSpan.FromMilliseconds(10);
        var tcp = options.TurnServers.Count > 0 && options.TurnServers[0].Transport == TurnTransport.Tcp;
        var mixed = options.TurnServers.Select(s => s.Transport).Distinct().Count() > 1;
        var node = new RelayNode(name, new IceAgent(options), host,
            new VirtualLink(seed: _nodes.Count + 1, LinkConditions.Clean(d), LinkConditions.Clean(d)), tcp)
        {
            Mixed = mixed
        };
        _nodes.Add(node);
        return node;
    }

    public void Flush()
    {
        foreach (var n in _nodes)
        {
            while (n.Agent.TryPollTransmit(_buffer, out var length, out var t))
            {
                n.Transmits.Add(t);
                var server = ServerIndex(t.Remote);
                if (server < 0 || !t.Local.Equals(n.Host)) { n.Swallowed++; continue; }
                if (!n.Mixed) Assert.Equal(n.Tcp, t.Tcp);
                if (t.Tcp) ClosedTcp.Remove((n.Host, server)); // the first transmit after a close opens a new connection
                n.Link.Send(LinkEnd.A, Frame(t.Tcp, server, _buffer.AsSpan(0, length)), Now);
            }
            n.DrainEvents();
        }
    }

    /// <summary>Sends application data on the selected pair (wrapped by the agent when it is relayed).</summary>
    public IceSendResult Send(RelayNode node, byte[] payload)
    {
        var result = node.Agent.TrySend(payload, _buffer, Now, out var length, out var t);
        if (!result.CanSend) return result;
        node.Transmits.Add(t);
        var server = ServerIndex(t.Remote);
        Assert.True(server >= 0, $"{t.Remote} is no server");
        node.Link.Send(LinkEnd.A, Frame(t.Tcp, server, _buffer.AsSpan(0, length)), Now);
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
                int server = d.Data[1];
                // A frame of a TCP connection the server no longer has (closed) is lost with it.
                if (overTcp && ClosedTcp.Contains((n.Host, server))) continue;
                foreach (var (to, tcp, data) in Servers[server].Handle(d.Data.AsSpan(2), n.Host, overTcp, Now))
                {
                    var target = _nodes.Single(x => x.Host.Equals(to));
                    if (!target.Mixed) Assert.Equal(target.Tcp, tcp);
                    target.Link.Send(LinkEnd.B, Frame(tcp, server, data), Now);
                }
            }
        foreach (var n in _nodes)
            while (n.Link.TryReceive(LinkEnd.A, Now, out var d))
            {
                var from = Servers[d.Data[1]].EndPoint;
                var result = d.Data[0] == 1
                    ? n.Agent.HandleStreamFrame(d.Data.AsSpan(2), n.Host, from, Now, out var app)
                    : n.Agent.HandleDatagram(d.Data.AsSpan(2), n.Host, from, Now, out app);
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

    /// <summary>Nodes whose TCP connection to a server (by index) is closed until their next TCP transmit to it (a new connection).</summary>
    private HashSet<(IPEndPoint Host, int Server)> ClosedTcp { get; } = new();

    /// <summary>
    /// The server restarts: every allocation is forgotten; each TCP connection closes (its node's agent is told, as a
    /// driver tells it), and frames of the old connections still on the way are lost.
    /// </summary>
    public void RestartServer(int server = 0)
    {
        Servers[server].Restart(Now);
        foreach (var n in _nodes)
            if (n.Tcp || n.Mixed) CloseTcp(n, server);
    }

    /// <summary>The TCP connection of <paramref name="node"/> to the server closes: the server drops that allocation, the agent is told.</summary>
    public void CloseTcp(RelayNode node, int server = 0)
    {
        Servers[server].DropAllocation(node.Host, tcp: true, Now);
        ClosedTcp.Add((node.Host, server));
        node.Agent.TurnConnectionClosed(node.Host, Servers[server].EndPoint, Now, "the server closed the connection");
        Flush();
    }

    // Two marker bytes ahead of each message on the links: 1 over TCP to the server, 0 over UDP (a node may use both);
    // then the server's index.
    private static byte[] Frame(bool tcp, int server, ReadOnlySpan<byte> data)
    {
        var framed = new byte[data.Length + 2];
        framed[0] = tcp ? (byte)1 : (byte)0;
        framed[1] = (byte)server;
        data.CopyTo(framed.AsSpan(2));
        return framed;
    }

    private static TimeSpan? Earliest(TimeSpan? x, TimeSpan? y) => x is null ? y : y is null ? x : (x < y ? x : y);
}
