using System.Buffers;

namespace Transport.Streaming.Io;

/// <summary>
/// A first-in first-out queue for any number of producers and one consumer at a time, for a connection's inputs
/// (received datagrams, application work, pooled sends). Unlike a <see cref="System.Collections.Concurrent.ConcurrentQueue{T}"/>,
/// which allocates a 32-slot segment when it is made and keeps it, this one holds no storage while empty: its ring is
/// rented from <see cref="ArrayPool{T}.Shared"/> at the first item and given back by <see cref="ReleaseIfEmpty"/>
/// (the consumer calls it when it goes idle), so ten thousand idle connections hold none. A lock of its own guards
/// it (one per connection, never shared between connections; held for a few instructions).
/// </summary>
internal sealed class LeanQueue<T>
{
    private const int FirstCapacity = 16;   // the shared pool's smallest size
    private readonly Lock _lock = new();
    private T[]? _items;
    private int _head;
    private int _count;

    /// <summary>Items queued (a snapshot).</summary>
    public int Count => Volatile.Read(ref _count);

    public bool IsEmpty => Volatile.Read(ref _count) == 0;

    /// <summary>The ring's capacity (0 while no storage is held).</summary>
    public int Capacity => Volatile.Read(ref _items)?.Length ?? 0;

    public void Enqueue(T item)
    {
        lock (_lock)
        {
            var items = _items;
            if (items is null) _items = items = ArrayPool<T>.Shared.Rent(FirstCapacity);
            else if (_count == items.Length) items = Grow(items);
            items[(_head + _count) % items.Length] = item;
            Volatile.Write(ref _count, _count + 1);
        }
    }

    public bool TryDequeue(out T item)
    {
        if (Volatile.Read(ref _count) == 0) { item = default!; return false; }
        lock (_lock)
        {
            if (_count == 0 || _items is not { } items) { item = default!; return false; }
            item = items[_head];
            items[_head] = default!;   // no reference left in the pooled array
            _head = _head + 1 == items.Length ? 0 : _head + 1;
            Volatile.Write(ref _count, _count - 1);
            if (_count == 0) _head = 0;
            return true;
        }
    }

    /// <summary>Gives the ring back to the shared pool when nothing is queued (a producer that comes later rents again).</summary>
    public void ReleaseIfEmpty()
    {
        if (Volatile.Read(ref _count) != 0 || Volatile.Read(ref _items) is null) return;
        lock (_lock)
        {
            if (_count != 0 || _items is not { } items) return;
            _items = null;
            _head = 0;
            ArrayPool<T>.Shared.Return(items);   // every slot was cleared on its dequeue
        }
    }

    // Doubles the ring (under the lock), keeping the order; the old ring goes back to the pool, cleared.
    private T[] Grow(T[] items)
    {
        var bigger = ArrayPool<T>.Shared.Rent(items.Length * 2);
        for (var i = 0; i < _count; i++) bigger[i] = items[(_head + i) % items.Length];
        Array.Clear(items);
        ArrayPool<T>.Shared.Return(items);
        _head = 0;
        _items = bigger;
        return bigger;
    }
}
