using System.Threading.Tasks.Sources;

namespace Transport.Streaming.WebRtc;

/// <summary>
/// The awaitable behind <see cref="PeerConnection.WaitForSendSpaceAsync"/>: one waiter at a time, reused for every wait,
/// so a sender that waits for room again and again allocates nothing (no task, no timer, no event). The waiter arms it
/// from its own thread; the connection's thread checks it after every turn (where the buffered amount falls and what
/// TrySend queued reaches its channel) and completes it there; the continuation runs on the thread pool, never on the
/// connection's thread.
/// </summary>
internal sealed class SendSpaceSignal<TChannel> : IValueTaskSource where TChannel : class
{
    private const int Idle = 0, Arming = 1, Armed = 2, Done = 3;
    private readonly Func<TChannel, long, bool> _ready;
    private ManualResetValueTaskSourceCore<bool> _source = new() { RunContinuationsAsynchronously = true };
    private int _state;
    private TChannel? _channel;
    private long _threshold;
    private CancellationToken _token;
    private CancellationTokenRegistration _registration;

    /// <param name="ready">True when the wait is over for the channel and threshold (room, or no reason left to wait); called from both threads.</param>
    public SendSpaceSignal(Func<TChannel, long, bool> ready) => _ready = ready;

    /// <summary>True while a wait is armed and not yet completed (for tests).</summary>
    public bool IsArmed => Volatile.Read(ref _state) == Armed;

    public ValueTask WaitAsync(TChannel channel, long threshold, CancellationToken cancellationToken)
    {
        if (_ready(channel, threshold)) return default;
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled(cancellationToken);
        if (Interlocked.CompareExchange(ref _state, Arming, Idle) != Idle)
            throw new InvalidOperationException("Another WaitForSendSpaceAsync of this connection is still waiting: one wait at a time.");
        _source.Reset();
        _channel = channel;
        _threshold = threshold;
        _token = cancellationToken;
        // Registered before the wait is armed: a cancellation firing now finds nothing armed and is caught below.
        if (cancellationToken.CanBeCanceled) _registration = cancellationToken.UnsafeRegister(static s => ((SendSpaceSignal<TChannel>)s!).Cancel(), this);
        var version = _source.Version;
        // A full fence: either the connection's thread (which reads the state after changing what _ready reads) sees the
        // wait armed, or this thread (which reads what _ready reads after arming) sees the change.
        Interlocked.Exchange(ref _state, Armed);
        if (cancellationToken.IsCancellationRequested) Cancel();
        else if (_ready(channel, threshold)) TryComplete();   // the room came between the first check and arming
        return new ValueTask(this, version);
    }

    /// <summary>On the connection's thread, after every turn: completes an armed wait whose condition holds.</summary>
    public void Check()
    {
        // Pairs with the waiter's fence: the buffered amount this turn lowered is visible before the state is read.
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _state) != Armed) return;
        if (_channel is { } channel && _ready(channel, _threshold)) TryComplete();
    }

    /// <summary>The connection ended: an armed wait completes (the caller's next TrySend says why).</summary>
    public void Release()
    {
        if (Volatile.Read(ref _state) == Armed) TryComplete();
    }

    private void TryComplete()
    {
        if (Interlocked.CompareExchange(ref _state, Done, Armed) != Armed) return;
        _registration.Dispose();
        _registration = default;
        _channel = null;
        _source.SetResult(true);
    }

    private void Cancel()
    {
        if (Interlocked.CompareExchange(ref _state, Done, Armed) != Armed) return;
        _channel = null;
        _source.SetException(new OperationCanceledException(_token));
    }

    void IValueTaskSource.GetResult(short token)
    {
        try { _source.GetResult(token); }
        finally
        {
            _token = default;
            _registration = default;
            Volatile.Write(ref _state, Idle);
        }
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _source.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);
}
