using System.Net;

namespace Transport.Streaming.Io;

/// <summary>A peer running on a <see cref="UdpDriver"/>. Disposing it stops the peer and forgets its routes.</summary>
public sealed class PeerHandle : IAsyncDisposable
{
    private readonly PeerActor _actor;
    private int _disposed;

    internal PeerHandle(PeerActor actor) => _actor = actor;

    /// <summary>The peer this handle runs.</summary>
    public IDatagramPeer Peer => _actor.Peer;

    /// <summary>Datagrams queued for the peer, not yet handled (tests).</summary>
    internal int QueuedDatagrams => _actor.QueuedDatagrams;

    /// <summary>
    /// Runs <paramref name="work"/> on the peer's own logical thread with the current time. The task completes once
    /// what the work queued has been sent; it fails with the work's exception.
    /// </summary>
    public async Task<T> InvokeAsync<T>(Func<TimeSpan, T> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        cancellationToken.ThrowIfCancellationRequested();
        var item = new WorkItem<T>(work);
        if (!await _actor.PostAsync(item, cancellationToken).ConfigureAwait(false)) item.Abandon();
        return await item.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Queues a work item of the caller's own (no closure, no async state): false when the peer stopped.</summary>
    internal ValueTask<bool> PostAsync(IWorkItem work, CancellationToken cancellationToken) => _actor.PostAsync(work, cancellationToken);

    /// <summary>Like <see cref="InvokeAsync{T}"/> for work without a result.</summary>
    public Task InvokeAsync(Action<TimeSpan> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        return InvokeAsync(now => { work(now); return true; }, cancellationToken);
    }

    /// <summary>True when another peer of the driver owns the 5-tuple (<paramref name="local"/>'s socket, <paramref name="remote"/>).</summary>
    internal bool FiveTupleTakenByOther(IPEndPoint local, IPEndPoint remote) => _actor.Driver.RouteTakenByOther(_actor, local, remote);

    /// <summary>Adds a local username fragment that routes first requests to this peer (after an ICE restart).</summary>
    public void AddUsernameFragment(string fragment) => _actor.AddFragment(fragment);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _actor.StopAsync().ConfigureAwait(false);
    }
}
