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
        var node = new RelayNode(name, new IceAgent(options), host, new VirtualLink(seed: _nodes.Count + 1, LinkConditions.Clean(d), LinkConditions.Clean(d)), tcp);
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
                Assert.Equal(n.Tcp, t.Tcp);
                n.Link.Send(LinkEnd.A, _buffer.AsSpan(0, t.Length), Now);
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
        node.Link.Send(LinkEnd.A, _buffer.AsSpan(0, t.Length), Now);
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
                foreach (var (to, tcp, data) in Server.Handle(d.Data, n.Host, n.Tcp, Now))
                {
                    var target = _nodes.Single(x => x.Host.Equals(to));
                    Assert.Equal(target.Tcp, tcp);
                    target.Link.Send(LinkEnd.B, data, Now);
                }
        foreach (var n in _nodes)
            while (n.Link.TryReceive(LinkEnd.A, Now, out var d))
            {
                var result = n.Tcp
                    ? n.Agent.HandleStreamFrame(d.Data, n.Host, FakeTurnRelay.Address, Now, out var app)
                    : n.Agent.HandleDatagram(d.Data, n.Host, FakeTurnRelay.Address, Now, out app);
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

    private static TimeSpan? Earliest(TimeSpan? x, TimeSpan? y) => x is null ? y : y is null ? x : (x < y ? x : y);
}
