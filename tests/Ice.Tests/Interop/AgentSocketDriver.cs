using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Transport.Ice.Turn;

namespace Transport.Ice.Tests.Interop;

/// <summary>Receives the application data an agent hands up (valid during the call).</summary>
public delegate void AgentDataHandler(ReadOnlySpan<byte> data, TimeSpan now);

/// <summary>
/// Test and benchmark I/O for one sans-IO <see cref="IceAgent"/> on real sockets: one UDP socket as its host
/// candidate, and the TCP connections to TURN servers that its <see cref="IceTransmitPath.Tcp"/> transmits ask for
/// (opened on demand, read with System.IO.Pipelines and split with <see cref="TurnStreamFraming"/>, frames handed
/// to <see cref="IceAgent.HandleStreamFrame"/>). Real time comes from a <see cref="Stopwatch"/> here, outside the
/// core. The agent is touched only by the thread that calls <see cref="Step"/>; reader tasks only queue frames.
/// (Linked into bench/ as well: no test framework here.)
/// </summary>
public sealed class AgentSocketDriver : IDisposable
{
    private static readonly SemaphoreSlim FrameArrived = new(0);
    private readonly Stopwatch _clock;
    private readonly byte[] _buffer = new byte[65536];
    private readonly byte[] _sendBuffer = new byte[65536];
    private readonly Dictionary<(IPEndPoint Local, IPEndPoint Remote), Socket> _tcp = new();
    private readonly ConcurrentQueue<(IPEndPoint Local, IPEndPoint Remote, byte[]? Frame)> _frames = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _readers = new();

    /// <summary>
    /// Creates the agent with <paramref name="options"/> on <paramref name="udp"/> (a bound UDP socket, made by
    /// the caller, e.g. inside a network namespace), or on a new socket bound to 127.0.0.1 with a free port.
    /// </summary>
    public AgentSocketDriver(string name, IceAgentOptions options, Socket? udp = null, Stopwatch? clock = null)
    {
        Name = name;
        _clock = clock ?? Stopwatch.StartNew();
        Udp = udp ?? NewLoopbackSocket();
        Host = (IPEndPoint)Udp.LocalEndPoint!;
        Agent = new IceAgent(options);
        Agent.AddHostCandidate(Host);
    }

    private static Socket NewLoopbackSocket()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return s;
    }

    public string Name { get; }
    public IceAgent Agent { get; }
    public Socket Udp { get; }
    public IPEndPoint Host { get; }
    public TimeSpan Now => _clock.Elapsed;
    public List<(TimeSpan At, IceEvent Event)> Events { get; } = new();
    /// <summary>Called for every datagram of application data; when null, copies are kept in <see cref="Received"/>.</summary>
    public AgentDataHandler? OnData { get; set; }
    public List<byte[]> Received { get; } = new();
    public long DatagramsIn { get; private set; }
    public long TcpFramesIn { get; private set; }
    public long TcpTransmits { get; private set; }
    public long UdpTransmits { get; private set; }

    public IEnumerable<T> EventsOf<T>() where T : IceEvent => Events.Select(e => e.Event).OfType<T>();

    /// <summary>Signals credentials and candidates to <paramref name="other"/> (in memory: the tests' signaling).</summary>
    public void SignalTo(AgentSocketDriver other)
    {
        other.Agent.SetRemoteCredentials(Agent.LocalCredentials, other.Now);
        foreach (var c in Agent.LocalCandidates) other.Agent.AddRemoteCandidate(c, other.Now);
    }

    /// <summary>One turn of the driver loop: deadlines, input, transmits, events.</summary>
    public void Step()
    {
        if (Agent.PollTimeout() is { } due && due <= Now) Agent.HandleTimeout(Now);
        Flush();
        EndPoint from = new IPEndPoint(IPAddress.Any, 0);
        while (Udp.Available > 0)
        {
            int n;
            try { n = Udp.ReceiveFrom(_buffer, ref from); }
            catch (SocketException) { continue; } // ICMP port unreachable of an earlier send
            DatagramsIn++;
            if (Agent.HandleDatagram(_buffer.AsSpan(0, n), Host, (IPEndPoint)from, Now, out var data) == IceReceiveResult.ApplicationData) Deliver(data);
        }
        while (_frames.TryDequeue(out var f))
        {
            if (f.Frame is null) { Agent.TurnConnectionClosed(f.Local, f.Remote, Now); continue; }
            TcpFramesIn++;
            if (Agent.HandleStreamFrame(f.Frame, f.Local, f.Remote, Now, out var data) == IceReceiveResult.ApplicationData) Deliver(data);
        }
        Flush();
        while (Agent.TryPollEvent(out var e)) Events.Add((Now, e));
    }

    private void Deliver(ReadOnlySpan<byte> data)
    {
        if (OnData is { } handler) handler(data, Now);
        else Received.Add(data.ToArray());
    }

    /// <summary>Sends application data on the selected pair (wrapped for the TURN server on a relayed pair).</summary>
    public IceSendResult Send(ReadOnlySpan<byte> payload)
    {
        var result = Agent.TrySend(payload, _sendBuffer, Now, out var length, out var t);
        if (result.CanSend) Transmit(_sendBuffer.AsSpan(0, length), t);
        return result;
    }

    private void Flush()
    {
        while (Agent.TryPollTransmit(_sendBuffer, out var length, out var t)) Transmit(_sendBuffer.AsSpan(0, length), t);
    }

    private void Transmit(ReadOnlySpan<byte> bytes, IceTransmitPath t)
    {
        if (!t.Tcp)
        {
            UdpTransmits++;
            try { Udp.SendTo(bytes, SocketFlags.None, t.Remote); }
            catch (SocketException) { } // unreachable candidate: the check fails by timeout
            return;
        }
        TcpTransmits++;
        if (!_tcp.TryGetValue((t.Local, t.Remote), out var socket))
        {
            socket = new Socket(t.Remote.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            socket.Bind(new IPEndPoint(t.Local.Address, 0));
            socket.Connect(t.Remote);
            _tcp.Add((t.Local, t.Remote), socket);
            var reader = PipeReader.Create(new NetworkStream(socket, ownsSocket: false));
            var key = (t.Local, t.Remote);
            _readers.Add(Task.Run(() => ReadFramesAsync(reader, key.Local, key.Remote, _stop.Token)));
        }
        socket.Send(bytes);
    }

    // RFC 8656 section 12.5: STUN and padded ChannelData back to back on the stream.
    private async Task ReadFramesAsync(PipeReader reader, IPEndPoint local, IPEndPoint remote, CancellationToken cancel)
    {
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(cancel).ConfigureAwait(false);
                var buffer = result.Buffer;
                TurnFrameStatus status;
                while ((status = TurnStreamFraming.TryReadFrame(ref buffer, out var frame)) == TurnFrameStatus.Complete)
                {
                    _frames.Enqueue((local, remote, frame.ToArray()));
                    FrameArrived.Release();
                }
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (status == TurnFrameStatus.Invalid || result.IsCompleted) break;
            }
        }
        catch (OperationCanceledException) { return; }
        catch (IOException) { }
        catch (ObjectDisposedException) { return; }
        finally { await reader.CompleteAsync().ConfigureAwait(false); }
        _frames.Enqueue((local, remote, null));
        FrameArrived.Release();
    }

    /// <summary>Steps the drivers until <paramref name="condition"/> holds; throws <see cref="TimeoutException"/> after <paramref name="limit"/>.</summary>
    public static void RunUntil(Func<bool> condition, TimeSpan limit, string what, params AgentSocketDriver[] drivers)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
        var sockets = new List<Socket>();
        while (true)
        {
            foreach (var d in drivers) d.Step();
            if (condition()) return;
            if (Stopwatch.GetTimestamp() > deadline)
                throw new TimeoutException($"Timed out after {limit.TotalSeconds} s waiting for {what}. Events:\n" +
                    string.Join("\n", drivers.SelectMany(d => d.Events.Select(e => $"{d.Name} {e.At.TotalSeconds:0.000} {e.Event}"))));
            WaitForInput(drivers, sockets, 1000);
        }
    }

    /// <summary>Waits at most <paramref name="microseconds"/> for a datagram or a TCP frame for any of the drivers.</summary>
    public static void WaitForInput(AgentSocketDriver[] drivers, List<Socket> scratch, int microseconds)
    {
        var tcp = false;
        foreach (var d in drivers)
        {
            if (!d._frames.IsEmpty) return;
            tcp |= d._tcp.Count > 0;
        }
        // Relaying over TCP: the frames come from the reader tasks, which release the semaphore.
        if (tcp) { FrameArrived.Wait(TimeSpan.FromTicks(microseconds * 10L)); return; }
        scratch.Clear();
        foreach (var d in drivers) scratch.Add(d.Udp);
        Socket.Select(scratch, null, null, microseconds);
        while (FrameArrived.CurrentCount > 0) FrameArrived.Wait(0);
    }

    public void Dispose()
    {
        _stop.Cancel();
        foreach (var s in _tcp.Values) s.Dispose();
        Udp.Dispose();
        try { Task.WaitAll(_readers.ToArray(), TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
        _stop.Dispose();
        Agent.Dispose();
    }
}
