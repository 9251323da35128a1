using System.Collections.Concurrent;

namespace Transport.Streaming.Io;

/// <summary>
/// The buffers that carry received datagrams from a receive thread to a peer's queue: rented on the receive
/// thread, returned on whichever thread ran the peer. The shared ArrayPool keeps its arrays per thread and per core
/// with a small bound, so a one-way stream of thousands of queued datagrams would fall through it into fresh
/// allocations; this pool is one lock-free queue per driver, holding at most <see cref="Retained"/> buffers when idle.
/// </summary>
internal sealed class DatagramBuffers(int size, int retained)
{
    private readonly ConcurrentQueue<byte[]> _free = new();
    private int _count;

    /// <summary>Most buffers kept for reuse.</summary>
    public int Retained { get; } = retained;

    public byte[] Rent()
    {
        if (_free.TryDequeue(out var buffer))
        {
            Interlocked.Decrement(ref _count);
            return buffer;
        }
        return GC.AllocateUninitializedArray<byte>(size);
    }

    public void Return(byte[] buffer)
    {
        if (buffer.Length != size || Interlocked.Increment(ref _count) > Retained)
        {
            if (buffer.Length == size) Interlocked.Decrement(ref _count);
            return;   // beyond the bound: left to the GC
        }
        _free.Enqueue(buffer);
    }
}
