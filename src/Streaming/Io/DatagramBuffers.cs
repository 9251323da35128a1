using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Transport.Streaming.Io;

/// <summary>
/// The buffers that carry received datagrams from a receive thread to a peer's queue: rented on the receive
/// thread, returned on whichever thread ran the peer. The shared ArrayPool keeps its arrays per thread and per core
/// with a small bound, so a one-way stream of thousands of queued datagrams would fall through it into fresh
/// allocations; this pool is one lock-free queue per driver, holding at most <see cref="Retained"/> buffers when idle.
/// The pool grows to the largest backlog seen (a burst, or a loaded machine where peers run late); at each full (gen 2)
/// collection it gives back the buffers that stayed free since the previous one, so a server does not keep a burst's
/// buffers for good (the churn soak saw its managed memory step up by a load peak's backlog).
/// </summary>
internal sealed class DatagramBuffers
{
    private readonly ConcurrentQueue<byte[]> _free = new();
    private readonly int _size;
    private int _count;
    // The fewest buffers free at any moment since the last trim: that many were not needed in the interval.
    private int _lowest;

    public DatagramBuffers(int size, int retained, bool trimOnFullCollections = true)
    {
        _size = size;
        Retained = retained;
        if (trimOnFullCollections) FullCollectionHook.Start(this);
    }

    /// <summary>Most buffers kept for reuse.</summary>
    public int Retained { get; }

    /// <summary>Buffers held free for reuse now.</summary>
    public int Free => Math.Max(0, Volatile.Read(ref _count));

    public byte[] Rent()
    {
        if (_free.TryDequeue(out var buffer))
        {
            var left = Interlocked.Decrement(ref _count);
            if (left < Volatile.Read(ref _lowest)) Volatile.Write(ref _lowest, left);   // a racy minimum is enough
            return buffer;
        }
        Volatile.Write(ref _lowest, 0);
        return GC.AllocateUninitializedArray<byte>(_size);
    }

    public void Return(byte[] buffer)
    {
        if (buffer.Length != _size || Interlocked.Increment(ref _count) > Retained)
        {
            if (buffer.Length == _size) Interlocked.Decrement(ref _count);
            return;   // beyond the bound: left to the GC
        }
        _free.Enqueue(buffer);
    }

    /// <summary>
    /// Lets go of the buffers that stayed free since the previous trim (none were rented out of them), and starts the
    /// next interval. Called at every full collection; with no rent in between, the second call empties the pool.
    /// Returns how many were let go.
    /// </summary>
    public int Trim()
    {
        var unused = Interlocked.Exchange(ref _lowest, Free);
        var released = 0;
        while (released < unused && _free.TryDequeue(out _))
        {
            Interlocked.Decrement(ref _count);
            released++;
        }
        Volatile.Write(ref _lowest, Free);
        return released;
    }

    // An object with no root whose finalizer runs after each full (gen 2) collection and registers itself again, for
    // as long as its pool lives. The pool is held by a weak GC handle, not a WeakReference: a WeakReference is itself
    // finalizable and may be finalized first in the same pass, which would end the hook after one collection.
    private sealed class FullCollectionHook
    {
        private GCHandle _pool;
        private int _fullCollections = GC.CollectionCount(2);

        private FullCollectionHook(DatagramBuffers pool) => _pool = GCHandle.Alloc(pool, GCHandleType.Weak);

        public static void Start(DatagramBuffers pool) => _ = new FullCollectionHook(pool);

        ~FullCollectionHook()
        {
            if (_pool.Target is not DatagramBuffers pool)
            {
                _pool.Free();
                return;
            }
            // Until the hook itself is in gen 2 it also runs after younger collections: only a full one trims.
            var full = GC.CollectionCount(2);
            if (full != _fullCollections)
            {
                _fullCollections = full;
                try { pool.Trim(); }
                catch (Exception) { }   // never let a finalizer throw
            }
            if (Environment.HasShutdownStarted) _pool.Free();
            else GC.ReRegisterForFinalize(this);
        }
    }
}
