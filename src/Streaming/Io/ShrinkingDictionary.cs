using System.Collections;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace Transport.Streaming.Io;

/// <summary>
/// A <see cref="ConcurrentDictionary{TKey, TValue}"/> that gives its storage back once drained. A concurrent
/// dictionary never shrinks: its bucket and lock arrays keep the size of the most entries it ever held, so a server's
/// tables sized by sessions (peers, routes, username fragments, sessions) kept the memory of its busiest moment for
/// good (the churn soak saw managed memory step up by the difference between two load peaks, then stay).
/// <para>
/// The rule: when a removal leaves at most an eighth of the most entries held since the table was last built
/// (its high-water mark), and that mark reached <see cref="Floor"/>, the table is rebuilt from its entries into a fresh
/// instance sized for them and the mark starts again from the count. A rebuild copies at most an eighth of the mark,
/// paid for by the seven eighths removed since: amortised O(1) per removal. The next one needs the table to fill up
/// to the floor again and drain to an eighth again (hysteresis: no rebuild while the count moves within a band).
/// </para>
/// <para>
/// Reads (<see cref="TryGetValue"/>, enumeration, <see cref="GetAlternateLookup{TAlternateKey}"/>) take no lock: they read
/// the current instance. Writes take one lock, so that a rebuild copies every entry and no write lands in the old
/// instance after the copy (no lost entries); a read that raced a rebuild saw the old instance, whose entries were
/// the same at that moment. Writes are per peer, route or session, never per datagram.
/// </para>
/// </summary>
internal sealed class ShrinkingDictionary<TKey, TValue> : IEnumerable<KeyValuePair<TKey, TValue>>
    where TKey : notnull
{
    /// <summary>The default floor: a table that never held more entries than this is never rebuilt.</summary>
    public const int DefaultFloor = 64;

    private readonly IEqualityComparer<TKey>? _comparer;
    private readonly Lock _writes = new();
    private volatile ConcurrentDictionary<TKey, TValue> _map;
    private int _count;       // written under _writes: the exact count (ConcurrentDictionary.Count takes every lock)
    private int _highWater;   // under _writes: the most entries the current instance held
    private long _rebuilds;

    public ShrinkingDictionary(IEqualityComparer<TKey>? comparer = null, int floor = DefaultFloor)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(floor, 8);
        _comparer = comparer;
        Floor = floor;
        _map = new ConcurrentDictionary<TKey, TValue>(comparer);
    }

    /// <summary>A table whose high-water mark stayed below this many entries is never rebuilt.</summary>
    public int Floor { get; }

    /// <summary>Entries now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>The most entries the current instance held: what its storage is sized by (diagnostics and tests).</summary>
    public int HighWater { get { lock (_writes) return _highWater; } }

    /// <summary>Times the table was rebuilt smaller (diagnostics and tests).</summary>
    public long Rebuilds => Interlocked.Read(ref _rebuilds);

    /// <summary>The current instance (tests: a rebuild replaces it).</summary>
    internal ConcurrentDictionary<TKey, TValue> Current => _map;

    public bool TryGetValue(TKey key, [MaybeNullWhen(false)] out TValue value) => _map.TryGetValue(key, out value);

    public bool ContainsKey(TKey key) => _map.ContainsKey(key);

    /// <summary>The current instance's lookup by another key type (a span for a string key); no lock, no allocation.</summary>
    public ConcurrentDictionary<TKey, TValue>.AlternateLookup<TAlternateKey> GetAlternateLookup<TAlternateKey>()
        where TAlternateKey : notnull, allows ref struct => _map.GetAlternateLookup<TAlternateKey>();

    /// <summary>The values now (a snapshot of the current instance).</summary>
    public ICollection<TValue> Values => _map.Values;

    /// <summary>The keys now (a snapshot of the current instance).</summary>
    public ICollection<TKey> Keys => _map.Keys;

    public TValue this[TKey key]
    {
        get => _map[key];
        set
        {
            lock (_writes)
            {
                var map = _map;
                if (!map.ContainsKey(key)) Grew();
                map[key] = value;
            }
        }
    }

    public bool TryAdd(TKey key, TValue value)
    {
        lock (_writes)
        {
            if (!_map.TryAdd(key, value)) return false;
            Grew();
            return true;
        }
    }

    /// <summary>Adds <paramref name="addValue"/>, or replaces the value by <paramref name="update"/>'s (called under the write lock).</summary>
    public TValue AddOrUpdate(TKey key, TValue addValue, Func<TKey, TValue, TValue> update)
    {
        ArgumentNullException.ThrowIfNull(update);
        lock (_writes)
        {
            var map = _map;
            var exists = map.TryGetValue(key, out var old);
            var value = exists ? update(key, old!) : addValue;
            if (!exists) Grew();
            map[key] = value;
            return value;
        }
    }

    public bool TryUpdate(TKey key, TValue newValue, TValue comparisonValue)
    {
        lock (_writes) return _map.TryUpdate(key, newValue, comparisonValue);
    }

    public bool TryRemove(TKey key, [MaybeNullWhen(false)] out TValue value)
    {
        lock (_writes)
        {
            if (!_map.TryRemove(key, out value)) return false;
            Shrank();
            return true;
        }
    }

    /// <summary>Removes the entry only if its value is still <paramref name="item"/>'s.</summary>
    public bool TryRemove(KeyValuePair<TKey, TValue> item)
    {
        lock (_writes)
        {
            if (!_map.TryRemove(item)) return false;
            Shrank();
            return true;
        }
    }

    public IEnumerator<KeyValuePair<TKey, TValue>> GetEnumerator() => _map.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    // Under _writes.
    private void Grew()
    {
        var n = ++_count;
        Volatile.Write(ref _count, n);
        if (n > _highWater) _highWater = n;
    }

    // Under _writes: one entry left; rebuild when drained to an eighth of the high-water mark (see the class remarks).
    private void Shrank()
    {
        var n = _count - 1;
        Volatile.Write(ref _count, n);
        if (!ShrinkRule.Drained(n, _highWater, Floor)) return;
        _map = new ConcurrentDictionary<TKey, TValue>(_map, _comparer);
        _highWater = n;
        Interlocked.Increment(ref _rebuilds);
    }
}

/// <summary>
/// When a table sized by the most sessions held at once gives its storage back (the driver's and the server's tables,
/// docs/driver.md "Tables that shrink"). Each rule needs the table to have grown past a floor and drained well below
/// its high-water mark, so that shrinking costs amortised O(1) and a count moving within a band never shrinks and
/// grows the storage in turn.
/// </summary>
internal static class ShrinkRule
{
    /// <summary>A keyed table is rebuilt when its count is at most an eighth of its high-water mark and the mark reached the floor.</summary>
    public static bool Drained(int count, int highWater, int floor) => highWater >= floor && count <= highWater / 8;

    /// <summary>
    /// The capacity an array-backed heap or list of <paramref name="capacity"/> slots holding <paramref name="count"/>
    /// shrinks to, or <paramref name="capacity"/> itself: halved, repeatedly, while the count is under a quarter of it
    /// and it stays at or above <paramref name="floor"/>. After a shrink the count fills a quarter to a half of the new
    /// capacity: the next shrink needs it to halve again, the next growth to double.
    /// </summary>
    public static int Target(int capacity, int count, int floor)
    {
        var target = capacity;
        while (target / 2 >= floor && count < target / 4) target /= 2;
        return target;
    }

    /// <summary>
    /// Shrinks <paramref name="heap"/> per <see cref="Target"/> (a fresh heap of the target capacity with the same
    /// entries, O(count)); false when it keeps its storage. <paramref name="needed"/>, when more than the count, is
    /// what the heap is expected to hold again soon (the target then stays above twice that). Call it on the heap's
    /// owning thread or under its lock.
    /// </summary>
    public static bool Shrink<TElement, TPriority>(ref PriorityQueue<TElement, TPriority> heap, int floor, int needed = 0)
    {
        var capacity = heap.EnsureCapacity(0);
        var target = Target(capacity, Math.Max(heap.Count, needed), floor);
        if (target == capacity) return false;
        var fresh = new PriorityQueue<TElement, TPriority>(target, heap.Comparer);
        fresh.EnqueueRange(heap.UnorderedItems);
        heap = fresh;
        return true;
    }

    /// <summary>Shrinks <paramref name="list"/>'s array per <see cref="Target"/>; false when it keeps it.</summary>
    public static bool Shrink<T>(List<T> list, int floor)
    {
        var target = Target(list.Capacity, list.Count, floor);
        if (target == list.Capacity) return false;
        list.Capacity = target;
        return true;
    }
}
