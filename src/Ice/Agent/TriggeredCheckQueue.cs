namespace Transport.Ice;

/// <summary>
/// The triggered-check queue of one check list (RFC 8445 section 6.1.4.1), served before ordinary checks. RFC 8445
/// describes it as FIFO; served that way at Ta, a burst of new peer-reflexive pairs (each authenticated request from a
/// new address triggers one) would hold back the check of a pair that can still win for as many Ta as the burst is long.
/// So nominations go first, then the remaining pairs by pair priority (highest first); equal priorities stay FIFO.
/// Every operation is O(log n) in the queued pairs, which the check list's pair limit bounds.
/// </summary>
internal sealed class TriggeredCheckQueue
{
    private readonly Queue<(IcePair Pair, int Ticket)> _urgent = new();
    private readonly PriorityQueue<(IcePair Pair, int Ticket), (ulong Priority, long Order)> _byPriority =
        new(Comparer<(ulong Priority, long Order)>.Create((x, y) => x.Priority != y.Priority ? y.Priority.CompareTo(x.Priority) : x.Order.CompareTo(y.Order)));
    private long _order;
    private int _nextTicket;

    /// <summary>Queues <paramref name="pair"/>; <paramref name="front"/> (a nomination) puts it before every other.</summary>
    public void Enqueue(IcePair pair, bool front, ulong priority)
    {
        if (pair.InTriggeredQueue && !front) return;
        // A new ticket makes an earlier entry of the same pair stale (it is skipped when it comes up).
        pair.TriggeredTicket = ++_nextTicket;
        pair.InTriggeredQueue = true;
        if (front) _urgent.Enqueue((pair, pair.TriggeredTicket));
        else _byPriority.Enqueue((pair, pair.TriggeredTicket), (priority, _order++));
    }

    /// <summary>The next live entry, skipping stale ones and those <paramref name="skip"/> says to drop; taken when <paramref name="take"/>.</summary>
    public IcePair? Next(bool take, Func<IcePair, bool> skip)
    {
        while (true)
        {
            (IcePair Pair, int Ticket) entry;
            bool urgent;
            if (_urgent.TryPeek(out entry)) urgent = true;
            else if (_byPriority.TryPeek(out entry, out _)) urgent = false;
            else return null;
            var p = entry.Pair;
            var live = p.InTriggeredQueue && p.TriggeredTicket == entry.Ticket;
            if (live && !skip(p))
            {
                if (take) { Remove(urgent); p.InTriggeredQueue = false; }
                return p;
            }
            Remove(urgent);
            if (live) p.InTriggeredQueue = false;
        }
    }

    private void Remove(bool urgent)
    {
        if (urgent) _urgent.Dequeue();
        else _byPriority.Dequeue();
    }

    /// <summary>Entries held, stale ones included (for tests).</summary>
    public int Count => _urgent.Count + _byPriority.Count;
}
