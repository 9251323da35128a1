using System.Buffers;
using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Transport.Sctp;

namespace Transport.Streaming.WebRtc;

/// <summary>Why a send was or was not accepted.</summary>
public enum SendStatus
{
    /// <summary>Queued on the channel and on its way (Connected).</summary>
    Sent,
    /// <summary>Queued while the connection is Disconnected: SCTP delivers it when connectivity returns, or the
    /// connection ends Failed and the message is lost with it (reported by that state change).</summary>
    Buffered,
    /// <summary>The connection is not connected (New, Connecting, Failed or Closed): nothing was queued.</summary>
    NotConnected,
    /// <summary>The channel is not open: nothing was queued.</summary>
    ChannelNotOpen,
    /// <summary>The message is larger than the maximum message size: nothing was queued.</summary>
    TooLarge,
    /// <summary>The channel already holds <see cref="PeerConnectionOptions.MaxBufferedAmount"/> bytes: nothing was queued.</summary>
    BufferFull,
}

/// <summary>The outcome of a send, with the connection state and its reason.</summary>
public readonly record struct SendResult(SendStatus Status, ConnectionState State, string Reason)
{
    /// <summary>True when the message was queued (<see cref="SendStatus.Sent"/> or <see cref="SendStatus.Buffered"/>).</summary>
    public bool Accepted => Status is SendStatus.Sent or SendStatus.Buffered;

    /// <summary>
    /// The exception <see cref="PeerConnection.SendAsync(DataChannel, ReadOnlyMemory{byte}, bool, CancellationToken)"/> throws for this result.
    /// </summary>
    public Exception ToException() => Status switch
    {
        SendStatus.NotConnected => new TransportNotConnectedException(State.ToString().ToLowerInvariant(), Reason),
        SendStatus.TooLarge => new ArgumentException(Reason, "data"),
        SendStatus.BufferFull => new InvalidOperationException(Reason),
        SendStatus.ChannelNotOpen => new InvalidOperationException(Reason),
        _ => new InvalidOperationException($"The message was accepted ({Status})."),
    };
}

/// <summary>
/// A message accepted by <see cref="PeerConnection.TrySend(DataChannel, ReadOnlySpan{byte}, bool)"/> that could not be queued after all (the connection or
/// channel ended in between).
/// </summary>
public sealed record DataChannelSendFailed(TimeSpan At, DataChannel Channel, SendResult Result) : PeerConnectionEvent(At);

/// <summary>Totals of one peer connection at the datagram boundary, and what it dropped, by reason.</summary>
public sealed record PeerConnectionStatistics(long DatagramsSent, long BytesSent, long DatagramsReceived, long BytesReceived,
    IReadOnlyDictionary<string, long> Drops);

public sealed partial class PeerConnection
{
    /// <summary>The meter of every peer connection: <c>transport.webrtc.*</c> counters (datagrams, bytes, drops by reason).</summary>
    public static readonly Meter Meter = new("Transport.WebRtc");
    private static readonly Counter<long> DatagramsSentCounter = Meter.CreateCounter<long>("transport.webrtc.datagrams_sent", "{datagram}",
        "UDP datagrams sent by peer connections");
    private static readonly Counter<long> BytesSentCounter = Meter.CreateCounter<long>("transport.webrtc.bytes_sent", "By",
        "UDP payload bytes sent by peer connections");
    private static readonly Counter<long> DatagramsReceivedCounter = Meter.CreateCounter<long>("transport.webrtc.datagrams_received", "{datagram}",
        "UDP datagrams received by peer connections");
    private static readonly Counter<long> BytesReceivedCounter = Meter.CreateCounter<long>("transport.webrtc.bytes_received", "By",
        "UDP payload bytes received by peer connections");
    private static readonly Counter<long> DropsCounter = Meter.CreateCounter<long>("transport.webrtc.drops", "{datagram}",
        "Datagrams or messages dropped by peer connections, tagged with the reason");

    private long _datagramsSent, _bytesSent, _datagramsReceived, _bytesReceived;
    private readonly Dictionary<string, long> _dropsSeen = new(StringComparer.Ordinal);

    /// <summary>Every event in order, as an async stream; ends when the connection is closed or failed.</summary>
    public IAsyncEnumerable<PeerConnectionEvent> ReadEventsAsync(CancellationToken cancellationToken = default) => _eventReader.ReadAllAsync(cancellationToken);

    /// <summary>A snapshot of the connection's totals (read from the connection's own thread).</summary>
    public Task<PeerConnectionStatistics> GetStatisticsAsync(CancellationToken cancellationToken = default) =>
        _handle.InvokeAsync(_ =>
        {
            UpdateDrops();
            return new PeerConnectionStatistics(_datagramsSent, _bytesSent, _datagramsReceived, _bytesReceived, new Dictionary<string, long>(_dropsSeen));
        }, cancellationToken);

    /// <summary>
    /// Queues a message without waiting: the result says at once whether it was accepted (Connected: Sent;
    /// Disconnected: Buffered, delivered when connectivity returns) or why not, with the state and its reason.
    /// The checks use a snapshot of the state and of the channel's buffered amount; a message accepted here that
    /// the connection can no longer queue when its turn comes is reported as a <see cref="DataChannelSendFailed"/>
    /// event. Never a silent drop; no task is left unobserved.
    /// </summary>
    /// <remarks>
    /// The bytes are copied once, into a pooled buffer that SCTP sends from and that goes back to the pool when the peer
    /// acknowledged the message: nothing is allocated per message in a steady stream. The check of
    /// <see cref="PeerConnectionOptions.MaxBufferedAmount"/> counts the channel's buffered amount and what was accepted
    /// here and has not reached the channel yet (<see cref="PendingSendBytes"/>).
    /// </remarks>
    public SendResult TrySend(DataChannel channel, ReadOnlySpan<byte> data, bool binary = true)
    {
        ArgumentNullException.ThrowIfNull(channel);
        var check = Check(channel, data.Length, _state, ReasonText(Reason), Interlocked.Read(ref _pendingSendBytes));
        if (!check.Accepted) return check;
        // A failure when its turn comes is reported as an event, never as a task nobody awaits; a connection disposed
        // in between reports its state change instead.
        PostPooled(PooledSend.Copy(this, channel, data, binary));
        return check;
    }

    /// <summary>
    /// Sends <paramref name="message"/>'s memory without a copy, as <see cref="TrySend(DataChannel, ReadOnlySpan{byte}, bool)"/>
    /// otherwise. Ownership of <paramref name="message"/> passes to the connection in every case: it is disposed when
    /// no chunk of the message can be sent again (the peer acknowledged it, partial reliability abandoned it, or the
    /// connection ended), or at once when the message was not accepted. The application must not change the memory
    /// after the call; it may dispose nothing itself.
    /// </summary>
    public SendResult TrySend(DataChannel channel, IMemoryOwner<byte> message, bool binary = true)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentNullException.ThrowIfNull(message);
        var length = message.Memory.Length;
        var check = Check(channel, length, _state, ReasonText(Reason), Interlocked.Read(ref _pendingSendBytes));
        if (!check.Accepted)
        {
            message.Dispose();
            return check;
        }
        PostPooled(PooledSend.Lend(this, channel, message, binary));
        return check;
    }

    /// <summary>
    /// Completes when <paramref name="channel"/> has room again for <see cref="TrySend(DataChannel, ReadOnlySpan{byte}, bool)"/>:
    /// its <see cref="DataChannel.BufferedAmount"/> plus <see cref="PendingSendBytes"/> at or below
    /// <paramref name="threshold"/>. It also completes when waiting makes no sense any more (the channel is no longer open,
    /// the connection is not Connected or Disconnected, or it was disposed): the next TrySend says why. Completes at once
    /// when the condition already holds; a cancelled token ends the wait with <see cref="OperationCanceledException"/>.
    /// </summary>
    /// <remarks>
    /// The awaitable "buffered amount low" of a TrySend sender, without an event to read: the connection checks the wait
    /// after each of its turns (every SACK that lets SCTP send more is one) and the continuation runs on the thread pool.
    /// One wait per connection at a time (a second concurrent one throws <see cref="InvalidOperationException"/>); the
    /// waiter is reused, so a sender that waits again and again allocates nothing (the first wait makes it; a cancellable
    /// token registers a callback per wait). Typical use: send while <c>BufferedAmount + PendingSendBytes</c> is under a
    /// high mark, then wait for a low mark (half of it, say) so that each wake-up refills in one burst.
    /// </remarks>
    public ValueTask WaitForSendSpaceAsync(DataChannel channel, long threshold, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentOutOfRangeException.ThrowIfNegative(threshold);
        var signal = Volatile.Read(ref _sendSpace);
        if (signal is null)
        {
            if (SendSpaceReady(channel, threshold)) return default;
            signal = Interlocked.CompareExchange(ref _sendSpace, new SendSpaceSignal<DataChannel>(SendSpaceReady), null) ?? _sendSpace!;
        }
        return signal.WaitAsync(channel, threshold, cancellationToken);
    }

    // Made by the first wait that has to wait (most connections never wait: nothing is held for them).
    private SendSpaceSignal<DataChannel>? _sendSpace;

    private bool SendSpaceReady(DataChannel channel, long threshold) =>
        channel.State != DataChannelState.Open
        || _state is not (ConnectionState.Connected or ConnectionState.Disconnected)
        || Volatile.Read(ref _disposed) != 0
        || channel.BufferedAmount + Interlocked.Read(ref _pendingSendBytes) <= threshold;

    // Bytes accepted by TrySend and not yet handed to their channel on the connection's thread, and how many messages.
    private long _pendingSendBytes;
    private int _pendingSends;
    // TrySend's messages wait here for the connection's thread, which takes them all in one work item (SendDrain): one
    // work slot however many messages are on their way, and no task or work item per message.
    private readonly Io.LeanQueue<PooledSend> _pooledSends = new();   // no storage while empty
    private int _drainScheduled;
    private SendDrain? _sendDrain;

    /// <summary>Bytes accepted by <see cref="TrySend(DataChannel, ReadOnlySpan{byte}, bool)"/> not yet queued on their channel (a snapshot).</summary>
    public long PendingSendBytes => Interlocked.Read(ref _pendingSendBytes);

    /// <summary>Messages accepted by TrySend not yet queued on their channel (a snapshot).</summary>
    public int PendingSends => Volatile.Read(ref _pendingSends);

    private void PostPooled(PooledSend work)
    {
        Interlocked.Add(ref _pendingSendBytes, work.Length);
        Interlocked.Increment(ref _pendingSends);
        _pooledSends.Enqueue(work);
        if (Interlocked.Exchange(ref _drainScheduled, 1) != 0) return;   // a drain is on its way and will take it
        var drain = _sendDrain ??= new SendDrain(this);
        var posted = _handle.PostAsync(drain, CancellationToken.None);
        if (!posted.IsCompleted) _ = AwaitPost(posted, drain);
        else if (!posted.Result) drain.Abandon();

        static async Task AwaitPost(ValueTask<bool> posted, SendDrain drain)
        {
            if (!await posted.ConfigureAwait(false)) drain.Abandon();
        }
    }

    /// <summary>The connection's turn for every message TrySend queued.</summary>
    private sealed class SendDrain(PeerConnection owner) : Io.IWorkItem
    {
        public void Run(TimeSpan now)
        {
            // Cleared first: a message queued from now on schedules another drain, one queued before is taken below.
            Volatile.Write(ref owner._drainScheduled, 0);
            while (owner._pooledSends.TryDequeue(out var work))
            {
                owner.RunPooledSend(work, now);
                work.Complete();   // the queue's reference; SCTP holds its own until the peer acknowledged the message
            }
            owner._pooledSends.ReleaseIfEmpty();
        }

        public void Complete() { }

        public void Abandon()
        {
            // The connection stopped: nothing queued will be sent (its state change says why).
            Volatile.Write(ref owner._drainScheduled, 0);
            while (owner._pooledSends.TryDequeue(out var work)) work.Abandon();
            owner._pooledSends.ReleaseIfEmpty();
        }
    }

    /// <summary>A pooled send the connection stopped before running.</summary>
    internal void ForgetPendingSend(int length)
    {
        Interlocked.Add(ref _pendingSendBytes, -length);
        Interlocked.Decrement(ref _pendingSends);
    }

    /// <summary>Runs on the connection's thread: the checks on the current state, then the message goes to SCTP without another copy.</summary>
    internal void RunPooledSend(PooledSend work, TimeSpan now)
    {
        Interlocked.Add(ref _pendingSendBytes, -work.Length);
        Interlocked.Decrement(ref _pendingSends);
        SendResult result;
        try
        {
            result = Check(work.Channel, work.Length, _core.State, ReasonText(_core.Reason));
            if (result.Accepted)
            {
                work.Channel.Send(work.Data, work, work.Binary, now);   // SCTP holds the work's reference until acknowledged
                return;
            }
        }
        catch (Exception e)
        {
            // The channel refused it after all (closed in between): reported as a refused send, never thrown at nobody.
            result = new SendResult(SendStatus.ChannelNotOpen, _core.State, e.Message);
        }
        work.Dispose();   // SCTP did not take it
        _events.Writer.TryWrite(new DataChannelSendFailed(now, work.Channel, result));
    }

    private Task Post(SendWork work, CancellationToken cancellationToken)
    {
        var posted = _handle.PostAsync(work, cancellationToken);
        if (!posted.IsCompleted) return AwaitPost(posted, work);
        if (!posted.Result) work.Abandon();
        return work.Task;

        static async Task AwaitPost(ValueTask<bool> posted, SendWork work)
        {
            if (!await posted.ConfigureAwait(false)) work.Abandon();
            await work.Task.ConfigureAwait(false);
        }
    }

    /// <summary>One message on its way to the connection's thread: the work item and its completion in one object.</summary>
    private sealed class SendWork(PeerConnection owner, DataChannel channel, ReadOnlyMemory<byte> data, bool binary, bool reportAsEvent)
        : TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), Io.IWorkItem
    {
        private SendResult _result;
        private Exception? _error;

        public void Run(TimeSpan now)
        {
            try { _result = owner.SendOnConnection(channel, data.Span, binary, now); }
            catch (Exception e) { _error = e; return; }   // a bug below us: the sender sees it, the connection goes on
            if (!_result.Accepted && reportAsEvent) owner._events.Writer.TryWrite(new DataChannelSendFailed(now, channel, _result));
        }

        public void Complete()
        {
            if (_error is not null) TrySetException(_error);
            else if (_result.Accepted || reportAsEvent) TrySetResult();
            else TrySetException(_result.ToException());
        }

        public void Abandon()
        {
            if (reportAsEvent) TrySetResult();   // the connection was disposed: its state change says so
            else TrySetException(new ObjectDisposedException(nameof(PeerConnection), "The connection stopped before the message was queued."));
        }
    }

    // The reason's text, formatted once per reason rather than once per message (a record's ToString is not cheap);
    // read from the caller's thread (TrySend) and the connection's, hence one immutable box swapped whole.

    private string? ReasonText(ConnectionReason? reason)
    {
        if (reason is null) return null;
        var cached = Volatile.Read(ref _reasonTextBox);
        if (cached is not null && ReferenceEquals(cached.Reason, reason)) return cached.Text;
        var text = reason.ToString();
        Volatile.Write(ref _reasonTextBox, new ReasonTextCache(reason, text));
        return text;
    }

    private ReasonTextCache? _reasonTextBox;
    private sealed record ReasonTextCache(ConnectionReason Reason, string Text);

    private SendResult Check(DataChannel channel, int length, ConnectionState state, string? reason, long pending = 0)
    {
        if (state is not (ConnectionState.Connected or ConnectionState.Disconnected))
            return new SendResult(SendStatus.NotConnected, state, reason ?? (state == ConnectionState.New ? "not connected yet" : "not connected"));
        if (length > _options.MaxMessageSize)
            return new SendResult(SendStatus.TooLarge, state, $"The message is {length} bytes; the maximum message size is {_options.MaxMessageSize} bytes.");
        if (channel.State != DataChannelState.Open)
            return new SendResult(SendStatus.ChannelNotOpen, state, $"The data channel '{channel.Label}' is {channel.State.ToString().ToLowerInvariant()}.");
        if (channel.BufferedAmount + pending + length > _options.MaxBufferedAmount)
            return new SendResult(SendStatus.BufferFull, state,
                $"The data channel '{channel.Label}' holds {channel.BufferedAmount + pending} bytes not yet sent; MaxBufferedAmount " +
                $"is {_options.MaxBufferedAmount}.");
        return new SendResult(state == ConnectionState.Connected ? SendStatus.Sent : SendStatus.Buffered, state, reason ?? "");
    }

    /// <summary>On the connection's thread: the same checks on the current state, then the message is queued.</summary>
    private SendResult SendOnConnection(DataChannel channel, ReadOnlySpan<byte> data, bool binary, TimeSpan now)
    {
        var result = Check(channel, data.Length, _core.State, ReasonText(_core.Reason));
        if (result.Accepted) channel.Send(data, binary, now);
        return result;
    }

    private void CountSent(int bytes)
    {
        _datagramsSent++;
        _bytesSent += bytes;
        DatagramsSentCounter.Add(1);
        BytesSentCounter.Add(bytes);
    }

    private void CountReceived(int bytes)
    {
        _datagramsReceived++;
        _bytesReceived += bytes;
        DatagramsReceivedCounter.Add(1);
        BytesReceivedCounter.Add(bytes);
    }

    // The layers count their drops; the connection turns the increases into the drops counter, tagged by reason.
    private void UpdateDrops()
    {
        foreach (var reason in Enum.GetValues<Transport.Ice.IceDropReason>()) Report("ice." + reason, _core.Ice.DroppedCount(reason));
        Report("peer_connection.unroutable", _core.DroppedDatagrams);
        Report("srtp.rejected", _core.DroppedMedia);
        if (_core.Sctp is { } sctp)
        {
            Report("sctp.bad_checksum", sctp.Counters.BadChecksum);
            Report("sctp.bad_verification_tag", sctp.Counters.BadVerificationTag);
            Report("sctp.malformed", sctp.Counters.Malformed);
            Report("sctp.receive_buffer_full", sctp.Counters.ReceiveBufferFull);
            Report("sctp.abandoned_messages", sctp.Counters.AbandonedMessages);
        }

        void Report(string reason, long total)
        {
            _dropsSeen.TryGetValue(reason, out var seen);
            if (total <= seen) return;
            DropsCounter.Add(total - seen, new KeyValuePair<string, object?>("reason", reason));
            _dropsSeen[reason] = total;
        }
    }
}
