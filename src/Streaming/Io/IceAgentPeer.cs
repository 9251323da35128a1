using System.Buffers;
using System.Net;
using System.Threading.Channels;
using Transport.Ice;

namespace Transport.Streaming.Io;

/// <summary>
/// Runs an <see cref="IceAgent"/> on a <see cref="UdpDriver"/>: datagrams in, the agent's transmits out, its events
/// to <see cref="Events"/>, application data (non-STUN from a valid pair) to a callback. The layers above ICE
/// (DTLS, SRTP) use <see cref="Send"/> from the peer's own logical thread (<see cref="PeerHandle.InvokeAsync{T}"/>).
/// </summary>
public sealed class IceAgentPeer : IDatagramPeer
{
    /// <summary>Receives application data; the span is valid only during the call.</summary>
    public delegate void ApplicationDataHandler(ReadOnlySpan<byte> datagram, TimeSpan now);

    private readonly ApplicationDataHandler? _onData;
    private readonly Channel<IceEvent> _events = Channel.CreateUnbounded<IceEvent>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly Queue<(byte[] Buffer, int Length, IPEndPoint Local, IPEndPoint Remote, TransmitKind Kind)> _outgoing = new();
    private readonly Queue<IPEndPoint> _released = new();

    public IceAgentPeer(IceAgent agent, ApplicationDataHandler? onApplicationData = null)
    {
        Agent = agent ?? throw new ArgumentNullException(nameof(agent));
        _onData = onApplicationData;
        LocalUsernameFragments = [agent.LocalCredentials.Ufrag];
    }

    /// <summary>The agent; touch it only from the peer's logical thread.</summary>
    public IceAgent Agent { get; }

    /// <summary>Every event of the agent, in order. Completes when the agent is closed or failed.</summary>
    public ChannelReader<IceEvent> Events => _events.Reader;

    public IReadOnlyCollection<string> LocalUsernameFragments { get; }

    public void HandleDatagram(ReadOnlySpan<byte> datagram, IPEndPoint local, IPEndPoint remote, TimeSpan now)
    {
        if (Agent.HandleDatagram(datagram, local, remote, now) == IceReceiveResult.ApplicationData)
            _onData?.Invoke(datagram, now);
    }

    public void HandleIceTcpFrame(ReadOnlySpan<byte> frame, IPEndPoint local, IPEndPoint remote, TimeSpan now)
    {
        if (Agent.HandleIceTcpFrame(frame, local, remote, now, out var data) == IceReceiveResult.ApplicationData)
            _onData?.Invoke(data, now);
    }

    // Classified by the driver (RFC 7983): the agent is told whether it is STUN instead of reading it again.
    public void HandleDatagram(ReadOnlySpan<byte> datagram, DatagramKind kind, IPEndPoint local, IPEndPoint remote, TimeSpan now)
    {
        if (Agent.HandleDatagram(datagram, local, remote, now, out var data, kind == DatagramKind.Stun ? IceInputKind.Stun : IceInputKind.NotStun)
            == IceReceiveResult.ApplicationData)
            _onData?.Invoke(data, now);
    }

    public void HandleIceTcpFrame(ReadOnlySpan<byte> frame, DatagramKind kind, IPEndPoint local, IPEndPoint remote, TimeSpan now)
    {
        if (Agent.HandleIceTcpFrame(frame, local, remote, now, out var data, kind == DatagramKind.Stun ? IceInputKind.Stun : IceInputKind.NotStun)
            == IceReceiveResult.ApplicationData)
            _onData?.Invoke(data, now);
    }

    public void HandleTimeout(TimeSpan now) => Agent.HandleTimeout(now);

    public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote) =>
        TryPollTransmit(destination, out written, out local, out remote, out bool _);

    public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote, out bool iceTcp)
    {
        // The ICE-TCP form cannot say "to a TURN server over TCP": those transmits are skipped here (the driver uses the kind form).
        while (TryPollTransmit(destination, out written, out local, out remote, out TransmitKind kind))
        {
            if (kind == TransmitKind.TurnStream) continue;
            iceTcp = kind == TransmitKind.IceTcp;
            return true;
        }
        iceTcp = false;
        return false;
    }

    public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote, out TransmitKind kind)
    {
        if (Agent.TryPollTransmit(destination, out written, out var t))
        {
            local = t.Local;
            remote = t.Remote;
            kind = t.Tcp ? TransmitKind.TurnStream : t.IceTcp ? TransmitKind.IceTcp : TransmitKind.Udp;
            return true;
        }
        if (_outgoing.TryDequeue(out var o))
        {
            o.Buffer.AsSpan(0, o.Length).CopyTo(destination);
            ArrayPool<byte>.Shared.Return(o.Buffer);
            written = o.Length;
            local = o.Local;
            remote = o.Remote;
            kind = o.Kind;
            return true;
        }
        written = 0;
        local = null;
        remote = null!;
        kind = TransmitKind.Udp;
        return false;
    }

    public void HandleTurnStreamFrame(ReadOnlySpan<byte> frame, IPEndPoint local, IPEndPoint server, TimeSpan now)
    {
        if (Agent.HandleStreamFrame(frame, local, server, now, out var data) == IceReceiveResult.ApplicationData)
            _onData?.Invoke(data, now);
    }

    public void OnTurnConnectionClosed(IPEndPoint local, IPEndPoint server, string reason, TimeSpan now) =>
        Agent.TurnConnectionClosed(local, server, now, reason);

    public void OnIceTcpConnectionClosed(IPEndPoint local, IPEndPoint remote, TimeSpan now) =>
        Agent.IceTcpConnectionClosed(local, remote, now);

    public Transport.Ice.Turn.TurnServerConfig? FindTurnServer(IPEndPoint local, IPEndPoint server) => Agent.FindTurnServer(local, server);

    public TimeSpan? PollTimeout() => Agent.PollTimeout();

    /// <summary>The agent is sans-IO and its events go to an unbounded channel: it never blocks.</summary>
    public bool RunsInline => true;

    public void AfterInput(TimeSpan now)
    {
        while (Agent.TryPollEvent(out var e))
        {
            _events.Writer.TryWrite(e);
            if (e is IceRemoteAddressReleasedEvent released) _released.Enqueue(released.Address);
            if (e is IceStateChangedEvent { State: IceConnectionState.Failed or IceConnectionState.Closed })
                _events.Writer.TryComplete();
        }
    }

    public bool TryPollReleasedRemote(out IPEndPoint remote) => _released.TryDequeue(out remote!);

    /// <summary>
    /// Sends application data on the selected pair. Call on the peer's logical thread. When the agent cannot send,
    /// nothing is queued and the result names the state (never a silent drop).
    /// </summary>
    public IceSendResult Send(ReadOnlySpan<byte> datagram, TimeSpan now)
    {
        var result = Agent.TrySend(now);
        if (!result.CanSend) return result;
        if (result.Relayed)
        {
            // Wrapped for the TURN server (ChannelData or a Send indication), to it over UDP or its TCP/TLS connection.
            var wrapped = ArrayPool<byte>.Shared.Rent(Transport.Ice.Turn.TurnClient.GetMaxWrappedSize(datagram.Length));
            result = Agent.TrySend(datagram, wrapped, now, out var length, out var transmit);
            if (!result.CanSend) { ArrayPool<byte>.Shared.Return(wrapped); return result; }
            _outgoing.Enqueue((wrapped, length, transmit.Local, transmit.Remote, transmit.Tcp ? TransmitKind.TurnStream : TransmitKind.Udp));
            return result;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(datagram.Length);
        datagram.CopyTo(buffer);
        _outgoing.Enqueue((buffer, datagram.Length, result.Local!, result.Remote!, result.IceTcp ? TransmitKind.IceTcp : TransmitKind.Udp));
        return result;
    }
}
