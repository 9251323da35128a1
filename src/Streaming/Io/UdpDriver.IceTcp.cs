using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Transport.Ice;

namespace Transport.Streaming.Io;

/// <summary>
/// ICE-TCP (RFC 6544) passive side: a listening TCP socket per bound UDP socket (same port number by default),
/// accepted connections read and written with System.IO.Pipelines in RFC 4571 frames, each routed to the peer whose
/// username fragment its first STUN Binding request names (as a first UDP request is). Bounded everywhere
/// (<see cref="IceTcpOptions"/>).
/// </summary>
public sealed partial class UdpDriver
{
    private readonly List<TcpListenerState> _tcpListeners = new();
    private readonly ShrinkingDictionary<(IPEndPoint Local, IPEndPoint Remote), IceTcpConnection> _tcpConnections = new();
    private readonly Dictionary<IPAddress, int> _tcpPerAddress = new();
    private readonly object _tcpLock = new();
    private int _tcpOpen;

    /// <summary>The listening ICE-TCP endpoints (one per bound UDP socket whose TCP port could be bound).</summary>
    public IReadOnlyList<IPEndPoint> IceTcpEndPoints
    {
        get { lock (_tcpListeners) return _tcpListeners.Select(l => l.LocalEndPoint).ToArray(); }
    }

    /// <summary>ICE-TCP connections open now.</summary>
    public int IceTcpConnectionCount => Volatile.Read(ref _tcpOpen);

    private int MaxFrameSize => Math.Min(Options.MaxDatagramSize, IceTcpFraming.MaxFrameSize);

    private void ListenIceTcp(IPEndPoint udp)
    {
        var tcp = Options.IceTcp;
        if (!tcp.Enabled) return;
        var local = new IPEndPoint(udp.Address, tcp.Port ?? udp.Port);
        var socket = new Socket(local.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (local.AddressFamily == AddressFamily.InterNetworkV6) socket.DualMode = false;
            socket.Bind(local);
            socket.Listen(128);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            LogTcpListenSkipped(local, e.SocketErrorCode);
            return;
        }
        var state = new TcpListenerState(socket, (IPEndPoint)socket.LocalEndPoint!);
        lock (_tcpListeners) _tcpListeners.Add(state);
        state.AcceptTask = Task.Run(() => AcceptLoopAsync(state));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "ICE-TCP: {Local} not listened on: {Error}")]
    private partial void LogTcpListenSkipped(IPEndPoint local, SocketError error);

    private async Task AcceptLoopAsync(TcpListenerState listener)
    {
        var token = _stop.Token;
        var errors = 0;
        while (!token.IsCancellationRequested)
        {
            Socket accepted;
            try { accepted = await listener.Socket.AcceptAsync(token).ConfigureAwait(false); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException || token.IsCancellationRequested) { break; }
            catch (SocketException)
            {
                if (++errors > 16) await Task.Delay(Math.Min(errors - 16, 100), CancellationToken.None).ConfigureAwait(false);
                continue;
            }
            errors = 0;
            var remote = (IPEndPoint)accepted.RemoteEndPoint!;
            if (!TryReserveConnection(remote.Address))
            {
                Interlocked.Increment(ref Counters._tcpRefused);
                accepted.Close(0);
                continue;
            }
            accepted.NoDelay = true;
            var connection = new IceTcpConnection(this, accepted, listener.LocalEndPoint, remote);
            _tcpConnections[(connection.Local, connection.Remote)] = connection;
            Interlocked.Increment(ref Counters._tcpAccepted);
            connection.Start();
        }
    }

    private bool TryReserveConnection(IPAddress address)
    {
        lock (_tcpLock)
        {
            if (_tcpOpen >= Options.IceTcp.MaxConnections) return false;
            _tcpPerAddress.TryGetValue(address, out var n);
            if (n >= Options.IceTcp.MaxConnectionsPerAddress) return false;
            _tcpPerAddress[address] = n + 1;
            _tcpOpen++;
            return true;
        }
    }

    private void ReleaseConnection(IceTcpConnection connection)
    {
        _tcpConnections.TryRemove(new KeyValuePair<(IPEndPoint, IPEndPoint), IceTcpConnection>((connection.Local, connection.Remote), connection));
        lock (_tcpLock)
        {
            var address = connection.Remote.Address;
            if (_tcpPerAddress.TryGetValue(address, out var n))
            {
                if (n <= 1) _tcpPerAddress.Remove(address);
                else _tcpPerAddress[address] = n - 1;
            }
            _tcpOpen--;
        }
        Interlocked.Increment(ref Counters._tcpClosed);
    }

    /// <summary>A peer's frame for the ICE-TCP connection (local, remote): queued, or dropped and counted.</summary>
    internal void SendIceTcp(PeerActor actor, IPEndPoint? local, IPEndPoint remote, ReadOnlySpan<byte> frame)
    {
        if (local is null || !_tcpConnections.TryGetValue((local, remote), out var connection) || connection.Actor != actor)
        {
            Interlocked.Increment(ref Counters._tcpSendNoConnection);
            return;
        }
        connection.Send(frame);
    }

    /// <summary>The peer stopped: its connections close (the peer is not told: it is gone).</summary>
    private void CloseIceTcpOf(PeerActor actor)
    {
        foreach (var c in _tcpConnections.Values)
            if (c.Actor == actor) c.Close(notifyPeer: false);
    }

    /// <summary>
    /// A connection whose frames went to a peer closed for another reason than the peer or the driver stopping (the
    /// remote end closed or reset it, a write failed, a bad frame): the peer is told on its own thread
    /// (<see cref="IDatagramPeer.OnIceTcpConnectionClosed"/>), so ICE fails its pairs at once rather than by consent.
    /// </summary>
    private void OnIceTcpClosed(IceTcpConnection connection, PeerActor actor)
    {
        if (_stop.IsCancellationRequested) return;
        Interlocked.Increment(ref Counters._tcpClosedNotified);
        _ = NotifyIceTcpClosedAsync(connection, actor);
    }

    private static async Task NotifyIceTcpClosedAsync(IceTcpConnection connection, PeerActor actor)
    {
        var work = new IceTcpClosedWork(actor, connection.Local, connection.Remote);
        bool posted;
        try { posted = await actor.PostAsync(work, CancellationToken.None).ConfigureAwait(false); }
        catch (ObjectDisposedException) { posted = false; }
        if (!posted) work.Abandon();
    }

    /// <summary>Tells the peer on its own thread that its ICE-TCP connection closed.</summary>
    private sealed class IceTcpClosedWork(PeerActor actor, IPEndPoint local, IPEndPoint remote) : IWorkItem
    {
        public void Run(TimeSpan now)
        {
            try { actor.Peer.OnIceTcpConnectionClosed(local, remote, now); }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException) { }
        }

        public void Complete() { }

        public void Abandon() { }
    }

    private async Task StopIceTcpAsync()
    {
        TcpListenerState[] listeners;
        lock (_tcpListeners) listeners = _tcpListeners.ToArray();
        foreach (var l in listeners) l.Socket.Dispose();
        foreach (var l in listeners)
            if (l.AcceptTask is { } t) await t.ConfigureAwait(false);
        foreach (var c in _tcpConnections.Values) c.Close(notifyPeer: false);
    }

    private sealed class TcpListenerState(Socket socket, IPEndPoint localEndPoint)
    {
        public Socket Socket { get; } = socket;
        public IPEndPoint LocalEndPoint { get; } = localEndPoint;
        public Task? AcceptTask { get; set; }
    }

    /// <summary>
    /// One accepted ICE-TCP connection: a read loop (PipeReader, RFC 4571 frames) into the owning peer's inbox, and a
    /// send loop (PipeWriter) draining a queue bounded in bytes.
    /// </summary>
    internal sealed class IceTcpConnection
    {
        private readonly UdpDriver _driver;
        private readonly Socket _socket;
        private readonly NetworkStream _stream;
        private readonly Channel<(byte[] Buffer, int Length)> _sendQueue =
            Channel.CreateUnbounded<(byte[], int)>(new UnboundedChannelOptions { SingleReader = true });
        private readonly CancellationTokenSource _closed = new();
        private ITimer? _slowTimer;
        private long _queuedBytes;
        private int _closing;
        private volatile PeerActor? _actor;
        private volatile bool _answered;

        public IceTcpConnection(UdpDriver driver, Socket socket, IPEndPoint local, IPEndPoint remote)
        {
            _driver = driver;
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: false);
            Local = local;
            Remote = remote;
        }

        public IPEndPoint Local { get; }
        public IPEndPoint Remote { get; }
        public PeerActor? Actor => _actor;

        /// <summary>Bytes queued to send now (tests).</summary>
        public long QueuedBytes => Interlocked.Read(ref _queuedBytes);

        public void Start()
        {
            // Slow loris: a connection whose peer never answered on it goes when the time is up.
            _slowTimer = _driver._time.CreateTimer(static s =>
            {
                var c = (IceTcpConnection)s!;
                if (c._answered) return;
                if (Volatile.Read(ref c._closing) == 0) Interlocked.Increment(ref c._driver.Counters._tcpClosedSlow);
                c.Close();
            }, this, _driver.Options.IceTcp.FirstFrameTimeout, Timeout.InfiniteTimeSpan);
            _ = Task.Run(ReadLoopAsync);
            _ = Task.Run(SendLoopAsync);
        }

        private async Task ReadLoopAsync()
        {
            var reader = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 4096, leaveOpen: true));
            var token = _closed.Token;
            var max = _driver.MaxFrameSize;
            try
            {
                while (!token.IsCancellationRequested)
                {
                    var result = await reader.ReadAsync(token).ConfigureAwait(false);
                    var buffer = result.Buffer;
                    var ok = true;
                    while (ok)
                    {
                        var status = IceTcpFraming.TryReadFrame(ref buffer, max, out var frame);
                        if (status == IceTcpFrameStatus.NeedMoreData) break;
                        if (status == IceTcpFrameStatus.Invalid)
                        {
                            Interlocked.Increment(ref _driver.Counters._tcpClosedBadLength);
                            ok = false;
                            break;
                        }
                        ok = HandleFrame(frame);
                    }
                    reader.AdvanceTo(buffer.Start, buffer.End);
                    if (!ok || result.IsCompleted) break;
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException) { }
            finally
            {
                await reader.CompleteAsync().ConfigureAwait(false);
                Close();
            }
        }

        // One frame to the peer: the first must be a STUN request naming a registered peer (routing as for a first
        // UDP request: unauthenticated here, the peer checks MESSAGE-INTEGRITY); later ones any WebRTC kind.
        private bool HandleFrame(in ReadOnlySequence<byte> frame)
        {
            var length = (int)frame.Length;
            var buffer = _driver.Buffers.Rent();
            frame.CopyTo(buffer);
            var span = buffer.AsSpan(0, length);
            var kind = DatagramClassifier.Classify(span);
            var actor = _actor;
            if (actor is null)
            {
                if (kind != DatagramKind.Stun || !StunUsername.TryGetLocalFragment(span, out var fragment)
                    || !_driver._byFragment.TryGetValue(StunUsername.Decode(fragment), out var owner))
                {
                    _driver.Buffers.Return(buffer);
                    Interlocked.Increment(ref _driver.Counters._tcpClosedGarbage);
                    return false;
                }
                _actor = actor = owner;
            }
            else if (kind is DatagramKind.Unknown or DatagramKind.Zrtp)
            {
                _driver.Buffers.Return(buffer);
                Interlocked.Increment(ref _driver.Counters._tcpClosedGarbage);
                return false;
            }
            Interlocked.Increment(ref _driver.Counters._tcpFramesReceived);
            if (!actor.DeliverFrame(this, buffer, length, kind, out var taken))
                Interlocked.Increment(ref _driver.Counters._droppedInboxFull);
            if (!taken) _driver.Buffers.Return(buffer);
            return true;
        }

        /// <summary>Queues one frame (from the peer's thread): media dropped past the soft bound, anything past the hard one.</summary>
        public void Send(ReadOnlySpan<byte> frame)
        {
            if (Volatile.Read(ref _closing) != 0 || frame.IsEmpty || frame.Length > IceTcpFraming.MaxFrameSize)
            {
                Interlocked.Increment(ref _driver.Counters._tcpSendNoConnection);
                return;
            }
            var options = _driver.Options.IceTcp;
            var queued = Interlocked.Read(ref _queuedBytes);
            if (queued + frame.Length > options.MaxSendQueueBytes) { Interlocked.Increment(ref _driver.Counters._tcpDroppedQueueFull); return; }
            if (queued + frame.Length > options.SendQueueBytes && DatagramClassifier.Classify(frame) == DatagramKind.Rtp)
            {
                Interlocked.Increment(ref _driver.Counters._tcpDroppedMedia);
                return;
            }
            // The peer sends here only after it authenticated a check on this connection: no longer a slow loris.
            _answered = true;
            var buffer = ArrayPool<byte>.Shared.Rent(frame.Length + IceTcpFraming.PrefixSize);
            IceTcpFraming.WritePrefix(buffer, frame.Length);
            frame.CopyTo(buffer.AsSpan(IceTcpFraming.PrefixSize));
            var total = frame.Length + IceTcpFraming.PrefixSize;
            Interlocked.Add(ref _queuedBytes, total);
            if (!_sendQueue.Writer.TryWrite((buffer, total)))
            {
                Interlocked.Add(ref _queuedBytes, -total);
                ArrayPool<byte>.Shared.Return(buffer);
                return;
            }
            Interlocked.Increment(ref _driver.Counters._tcpFramesSent);
        }

        private async Task SendLoopAsync()
        {
            var writer = PipeWriter.Create(_stream, new StreamPipeWriterOptions(leaveOpen: true));
            var reader = _sendQueue.Reader;
            var token = _closed.Token;
            try
            {
                while (await reader.WaitToReadAsync(token).ConfigureAwait(false))
                {
                    // A batch of queued frames in one write; the queue fills while the flush waits for a slow socket.
                    for (var i = 0; i < 256 && reader.TryRead(out var item); i++)
                    {
                        writer.Write(item.Buffer.AsSpan(0, item.Length));
                        Interlocked.Add(ref _queuedBytes, -item.Length);
                        ArrayPool<byte>.Shared.Return(item.Buffer);
                    }
                    var flush = await writer.FlushAsync(token).ConfigureAwait(false);
                    if (flush.IsCompleted || flush.IsCanceled) break;
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException
                or ChannelClosedException)
            { }
            finally
            {
                try { await writer.CompleteAsync().ConfigureAwait(false); }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException) { }
                Close();
                while (reader.TryRead(out var item)) ArrayPool<byte>.Shared.Return(item.Buffer);
            }
        }

        /// <summary>
        /// Closes the connection (idempotent, any thread): both loops end, the bounds are released, and the peer its
        /// frames went to is told (<see cref="IDatagramPeer.OnIceTcpConnectionClosed"/>) unless <paramref name="notifyPeer"/>
        /// is false (the peer or the driver stopping).
        /// </summary>
        public void Close(bool notifyPeer = true)
        {
            if (Interlocked.Exchange(ref _closing, 1) != 0) return;
            _slowTimer?.Dispose();
            _sendQueue.Writer.TryComplete();
            try { _closed.Cancel(); }
            catch (ObjectDisposedException) { }
            try { _socket.Shutdown(SocketShutdown.Both); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            _socket.Dispose();
            _driver.ReleaseConnection(this);
            if (notifyPeer && _actor is { } actor) _driver.OnIceTcpClosed(this, actor);
        }
    }
}
