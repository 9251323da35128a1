using System.Net;
using Transport.Ice.Stun;
using Transport.TestKit;

namespace Transport.Ice.Tests.Agent;

/// <summary>
/// Adapts an <see cref="IceAgent"/> (endpoint-carrying datagrams) to the TestKit's two-ended link: every datagram
/// the link delivers arrives on <see cref="Local"/> from <see cref="Remote"/>; transmits between any other addresses
/// are swallowed (an unreachable candidate or interface). Records events and what was received, with virtual times.
/// </summary>
internal sealed class AgentPeer : IVirtualPeer
{
    private readonly Queue<byte[]> _outgoingData = new();

    public AgentPeer(string name, IceAgent agent, IPEndPoint local, IPEndPoint remote)
    {
        Name = name;
        Agent = agent;
        Local = local;
        Remote = remote;
        agent.AddHostCandidate(local);
    }

    public string Name { get; }
    public IceAgent Agent { get; }
    public IPEndPoint Local { get; }
    /// <summary>The address the link's datagrams come from and the one transmits must go to (settable: a NAT rebinding of the peer).</summary>
    public IPEndPoint Remote { get; set; }
    public List<IceEvent> Events { get; } = new();
    public List<(TimeSpan At, byte[] Data)> ApplicationData { get; } = new();
    public List<(TimeSpan At, ushort Type)> ReceivedStun { get; } = new();
    public TimeSpan? LastReceivedAt { get; private set; }
    public TimeSpan? LastSuccessResponseAt { get; private set; }
    public int SwallowedTransmits { get; private set; }
    public TimeSpan Now { get; private set; }

    public IceConnectionState State => Agent.State;

    public IEnumerable<IceStateChangedEvent> StateChanges => Events.OfType<IceStateChangedEvent>();

    public void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now)
    {
        Now = now;
        LastReceivedAt = now;
        if (StunMessage.TryRead(datagram, out var m))
        {
            ReceivedStun.Add((now, m.RawType));
            if (m.Type == StunMessageType.BindingSuccess) LastSuccessResponseAt = now;
        }
        if (Agent.HandleDatagram(datagram, Local, Remote, now) == IceReceiveResult.ApplicationData)
            ApplicationData.Add((now, datagram.ToArray()));
        DrainEvents();
    }

    public void HandleTimeout(TimeSpan now)
    {
        Now = now;
        Agent.HandleTimeout(now);
        DrainEvents();
    }

    public bool TryPollTransmit(Span<byte> destination, out int written)
    {
        if (_outgoingData.TryDequeue(out var data))
        {
            data.CopyTo(destination);
            written = data.Length;
            return true;
        }
        while (Agent.TryPollTransmit(destination, out written, out var t))
        {
            // Another local address or another remote address is not on this link: lost.
            if (!t.Local.Equals(Local) || !t.Remote.Equals(Remote)) { SwallowedTransmits++; continue; }
            return true;
        }
        DrainEvents();
        written = 0;
        return false;
    }

    public TimeSpan? PollTimeout() => Agent.PollTimeout();

    /// <summary>Sends application data through <see cref="IceAgent.TrySend"/>; returns its answer.</summary>
    public IceSendResult SendData(byte[] data, TimeSpan now)
    {
        var result = Agent.TrySend(now);
        if (result.CanSend)
        {
            if (!result.Remote!.Equals(Remote)) throw new InvalidOperationException("Selected pair is not the link's.");
            _outgoingData.Enqueue(data);
        }
        return result;
    }

    /// <summary>Like <see cref="SendData"/>, but data for a selected pair that is not the link's is lost (counted) instead of an error.</summary>
    public bool TrySendData(byte[] data, TimeSpan now)
    {
        var result = Agent.TrySend(now);
        if (!result.CanSend) return false;
        if (!result.Remote!.Equals(Remote)) { SwallowedTransmits++; return false; }
        _outgoingData.Enqueue(data);
        return true;
    }

    public void DrainEvents()
    {
        while (Agent.TryPollEvent(out var e)) Events.Add(e);
    }

    public void Signal(AgentPeer other, TimeSpan now)
    {
        Agent.SetRemoteCredentials(other.Agent.LocalCredentials, now);
        foreach (var c in other.Agent.LocalCandidates) Agent.AddRemoteCandidate(c, now);
    }

    /// <summary>Two agents on 10.0.0.1:1000 and 10.0.0.2:2000 with each other's credentials and candidates.</summary>
    public static (AgentPeer A, AgentPeer B, TwoPeerDriver Driver) Pair(IceAgentOptions a, IceAgentOptions b, VirtualLink? link = null, bool signal = true)
    {
        var ea = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var eb = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        var pa = new AgentPeer("A", new IceAgent(a), ea, eb);
        var pb = new AgentPeer("B", new IceAgent(b), eb, ea);
        if (signal)
        {
            pa.Signal(pb, TimeSpan.Zero);
            pb.Signal(pa, TimeSpan.Zero);
        }
        var driver = new TwoPeerDriver(pa, pb,
            link ?? new VirtualLink(seed: 7, LinkConditions.Clean(TimeSpan.FromMilliseconds(10)), LinkConditions.Clean(TimeSpan.FromMilliseconds(10))));
        return (pa, pb, driver);
    }
}
