using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Transport.Streaming.Io;

/// <summary>
/// Runs one <see cref="IDatagramPeer"/>: a loop over a bounded inbox of datagrams, timeouts and application
/// work items, so that the peer is only ever entered by one thread at a time and needs no locks.
/// </summary>
internal sealed partial class PeerActor
{
    private readonly UdpDriver _driver;
    private readonly IDatagramPeer _peer;
    private readonly Channel<Input> _inbox;
    private readonly ITimer _timer;
    private readonly byte[] _sendBuffer;
    private readonly Dictionary<(UdpDriver.BoundSocket, IPEndPoint), SocketAddress> _remoteAddresses = new();
    private Task? _loop;

    public PeerActor(UdpDriver driver, IDatagramPeer peer)
    {
        _driver = driver;
        _peer = peer;
        _sendBuffer = new byte[driver.Options.MaxDatagramSize];
        _inbox = Channel.CreateBounded<Input>(new BoundedChannelOptions(driver.Options.InboxCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full; the caller counts the drop
        });
        _timer = driver.Time.CreateTimer(static s => ((PeerActor)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public IDatagramPeer Peer => _peer;

    public void Start() => _loop = Task.Run(RunAsync);

    public void AddFragment(string fragment) => _driver.AddFragment(this, fragment);

    public bool TryEnqueueDatagram(UdpDriver.BoundSocket socket, byte[] buffer, int length, IPEndPoint remote) =>
        _inbox.Writer.TryWrite(new Input(socket, buffer, length, remote, null));

    /// <summary>
    /// Queues work to run on the actor. Application work is never dropped for a full inbox: it waits for room.
    /// False when the actor has stopped.
    /// </summary>
    public async ValueTask<bool> PostAsync(IWorkItem work, CancellationToken cancellationToken)
    {
        if (_inbox.Writer.TryWrite(new Input(null, null, 0, null, work))) return true;
        try
        {
            await _inbox.Writer.WriteAsync(new Input(null, null, 0, null, work), cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (ChannelClosedException) { return false; }
    }

    // A wake-up: Process checks the peer's deadline after every input, so if the inbox is full the busy loop
    // handles the timeout anyway.
    private void OnTimer()
    {
        Interlocked.Increment(ref _driver.Counters._wakeups);
        _inbox.Writer.TryWrite(default);
    }

    private async Task RunAsync()
    {
        var reader = _inbox.Reader;
        Process(default); // arm the first deadline
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
                while (reader.TryRead(out var input))
                    Process(input);
        }
        finally
        {
            while (reader.TryRead(out var left))
            {
                if (left.Buffer is not null) ArrayPool<byte>.Shared.Return(left.Buffer);
                left.Work?.Abandon();
            }
        }
    }

    private void Process(Input input)
    {
        var now = _driver.Now;
        try
        {
            if (input.Buffer is not null)
            {
                try { _peer.HandleDatagram(input.Buffer.AsSpan(0, input.Length), input.Socket!.LocalEndPoint, input.Remote!, now); }
                finally { ArrayPool<byte>.Shared.Return(input.Buffer); }
            }
            else
            {
                input.Work?.Run(now);
            }
            for (var i = 0; i < _driver.Options.MaxImmediateTimeouts; i++)
            {
                var deadline = _peer.PollTimeout();
                if (deadline is null || deadline > now) break;
                Interlocked.Increment(ref _driver.Counters._timeouts);
                _peer.HandleTimeout(now);
                Drain();
            }
            Drain();
            _peer.AfterInput(now);
            Drain();
        }
        catch (Exception e)
        {
            Interlocked.Increment(ref _driver.Counters._peerErrors);
            LogPeerError(e);
        }
        // Application work completes only once what it queued has been sent.
        input.Work?.Complete();
        Rearm(now);
    }

    private void Drain()
    {
        for (var i = 0; i < 10_000; i++)
        {
            if (!_peer.TryPollTransmit(_sendBuffer, out var written, out var local, out var remote)) return;
            Send(_sendBuffer.AsSpan(0, written), local, remote);
        }
    }

    private void Send(ReadOnlySpan<byte> datagram, IPEndPoint? local, IPEndPoint remote)
    {
        var socket = _driver.SocketFor(local, remote.AddressFamily);
        if (socket is null)
        {
            Interlocked.Increment(ref _driver.Counters._sendErrors);
            return;
        }
        if (!_remoteAddresses.TryGetValue((socket, remote), out var address))
        {
            address = remote.Serialize();
            _remoteAddresses[(socket, remote)] = address;
            UdpDriver.Learn(socket, address, remote, this);
        }
        try
        {
            socket.Socket.SendTo(datagram, SocketFlags.None, address);
            Interlocked.Increment(ref _driver.Counters._sent);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _driver.Counters._sendErrors);
        }
    }

    private void Rearm(TimeSpan now)
    {
        TimeSpan? deadline;
        try { deadline = _peer.PollTimeout(); }
        catch (Exception e) { LogPeerError(e); deadline = null; }
        if (deadline is null) { _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan); return; }
        var due = deadline.Value - now;
        if (due <= TimeSpan.Zero) { _timer.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan); return; }
        // The system's timers count whole milliseconds and may fire up to one early against the monotonic clock;
        // rounding up avoids a wake-up that finds nothing due and re-arms for the last fraction. Other providers
        // (virtual time in tests) are exact and get the exact due time.
        if (ReferenceEquals(_driver.Time, TimeProvider.System))
            due = TimeSpan.FromMilliseconds(Math.Ceiling(due.TotalMilliseconds) + 1);
        _timer.Change(due, Timeout.InfiniteTimeSpan);
    }

    public async Task StopAsync()
    {
        _inbox.Writer.TryComplete();
        await _timer.DisposeAsync().ConfigureAwait(false);
        if (_loop is not null) await _loop.ConfigureAwait(false);
        _driver.Unregister(this);
    }

    private void LogPeerError(Exception exception) => LogPeerError(_driver.Logger, exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "A peer threw while handling an input; the input is lost, the peer goes on")]
    private static partial void LogPeerError(ILogger logger, Exception exception);

    private readonly record struct Input(UdpDriver.BoundSocket? Socket, byte[]? Buffer, int Length, IPEndPoint? Remote, IWorkItem? Work);
}

/// <summary>Application work run on a peer's actor.</summary>
internal interface IWorkItem
{
    /// <summary>Runs on the actor; must not throw (it records its own exception).</summary>
    void Run(TimeSpan now);
    /// <summary>Called after the transmits the work queued were sent.</summary>
    void Complete();
    /// <summary>The actor stopped before the work ran.</summary>
    void Abandon();
}

internal sealed class WorkItem<T>(Func<TimeSpan, T> work) : IWorkItem
{
    private readonly TaskCompletionSource<T> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private T? _result;
    private Exception? _error;

    public Task<T> Task => _done.Task;

    public void Run(TimeSpan now)
    {
        try { _result = work(now); }
        catch (Exception e) { _error = e; }
    }

    public void Complete()
    {
        if (_error is not null) _done.TrySetException(_error);
        else _done.TrySetResult(_result!);
    }

    public void Abandon() => _done.TrySetException(new ObjectDisposedException(nameof(PeerHandle), "The peer stopped before the work ran."));
}
