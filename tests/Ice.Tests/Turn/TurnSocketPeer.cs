using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Transport.Ice.Stun;
using Transport.Ice.Turn;

namespace Transport.Ice.Tests.Turn;

/// <summary>
/// Test-only I/O for a <see cref="TurnClient"/> on real loopback sockets: UDP datagrams, or a TCP connection read
/// with System.IO.Pipelines and split with <see cref="TurnStreamFraming"/>. The client is only touched from the
/// test thread (<see cref="Step"/>); the TCP reader thread only queues frames. Real time comes from a
/// <see cref="Stopwatch"/> here, outside the core.
/// </summary>
internal sealed class TurnSocketPeer : IDisposable
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly byte[] _buffer = new byte[1500];
    private readonly Socket? _udp;
    private Socket? _tcp;
    private StunAddress _tcpServer;
    private readonly ConcurrentQueue<byte[]> _frames = new();
    // Released by the TCP reader when frames arrive, so RunUntil waits for input instead of sleeping.
    private static readonly SemaphoreSlim FrameArrived = new(0);
    private readonly CancellationTokenSource _stop = new();
    private Task? _reader;

    public TurnSocketPeer(string name, TurnClientOptions options)
    {
        Name = name;
        Client = new TurnClient(options);
        if (options.Transport == TurnTransport.Udp)
        {
            _udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            _udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        }
    }

    public string Name { get; }
    public TurnClient Client { get; }
    public TimeSpan Now => _clock.Elapsed;
    public List<(TimeSpan At, TurnEvent Event)> Events { get; } = new();
    public int DatagramsReceived { get; private set; }

    /// <summary>Our end of the UDP socket or TCP connection (what the server should report as the mapped address).</summary>
    public StunAddress LocalAddress => StunAddress.FromEndPoint((IPEndPoint)(_udp ?? _tcp)!.LocalEndPoint!);

    public IEnumerable<T> EventsOf<T>() where T : TurnEvent => Events.Select(e => e.Event).OfType<T>();

    public void Start() { Client.Start(Now); Step(); }

    /// <summary>Timeouts, transmits, receptions and events: one turn of the driver loop.</summary>
    public void Step()
    {
        if (Client.PollTimeout() is { } due && due <= Now) Client.HandleTimeout(Now);
        while (Client.TryPollTransmit(_buffer, out var n, out var to)) Transmit(_buffer.AsSpan(0, n), to);
        if (_udp is not null)
        {
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            while (_udp.Available > 0)
            {
                var received = _udp.ReceiveFrom(_buffer, ref from);
                DatagramsReceived++;
                Client.HandleDatagram(_buffer.AsSpan(0, received), StunAddress.FromEndPoint((IPEndPoint)from), Now);
            }
        }
        while (_frames.TryDequeue(out var frame))
        {
            DatagramsReceived++;
            Client.HandleDatagram(frame, _tcpServer, Now);
        }
        while (Client.TryPollTransmit(_buffer, out var n, out var to)) Transmit(_buffer.AsSpan(0, n), to);
        while (Client.TryPollEvent(out var e)) Events.Add((Now, e));
    }

    /// <summary>Sends data to a peer through the relay.</summary>
    public void SendToPeer(StunAddress peer, ReadOnlySpan<byte> payload)
    {
        var n = Client.WrapSend(peer, payload, _buffer);
        Transmit(_buffer.AsSpan(0, n), Client.ServerAddress);
    }

    private void Transmit(ReadOnlySpan<byte> bytes, StunAddress to)
    {
        if (_udp is not null) { _udp.SendTo(bytes, to.ToEndPoint()); return; }
        if (_tcp is null || _tcpServer != to) Connect(to);
        _tcp!.Send(bytes);
    }

    private void Connect(StunAddress server)
    {
        _tcp?.Dispose();
        _tcpServer = server;
        _tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _tcp.Connect(server.ToEndPoint());
        var reader = PipeReader.Create(new NetworkStream(_tcp, ownsSocket: false));
        _reader = Task.Run(() => ReadFramesAsync(reader, _stop.Token));
    }

    // RFC 8656 section 12.5: split the stream into STUN and ChannelData frames; the test thread hands them to the client.
    private async Task ReadFramesAsync(PipeReader reader, CancellationToken cancel)
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
                    _frames.Enqueue(frame.ToArray());
                    FrameArrived.Release();
                }
                if (status == TurnFrameStatus.Invalid) throw new InvalidDataException("the TURN server sent bytes that are neither STUN nor ChannelData");
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted) break;
            }
        }
        catch (OperationCanceledException) { }
        catch (IOException) { }
        catch (ObjectDisposedException) { }
        finally { await reader.CompleteAsync().ConfigureAwait(false); }
    }

    /// <summary>Steps every peer until <paramref name="condition"/> holds; fails after <paramref name="limit"/>.</summary>
    public static void RunUntil(Func<bool> condition, TimeSpan limit, string what, params TurnSocketPeer[] peers)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            foreach (var p in peers) p.Step();
            if (condition()) return;
            if (Stopwatch.GetTimestamp() > deadline)
                Assert.Fail($"Timed out after {limit.TotalSeconds} s waiting for {what}. Events:\n" +
                            string.Join("\n", peers.SelectMany(p => p.Events.Select(e => $"{p.Name} {e.At.TotalSeconds:0.000} {e.Event}"))));
            // Wait (at most 1 ms, so the clients' timers still run) for a datagram or a TCP frame to arrive.
            var sockets = peers.Select(p => p._udp).OfType<Socket>().ToList();
            if (sockets.Count > 0) Socket.Select(sockets, null, null, 1000);
            else FrameArrived.Wait(1);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _udp?.Dispose();
        _tcp?.Dispose();
        try { _reader?.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
        _stop.Dispose();
        Client.Dispose();
    }
}
