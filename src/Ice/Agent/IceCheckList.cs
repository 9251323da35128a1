using System.Net;

namespace Transport.Ice;

/// <summary>
/// The check list of one generation (RFC 8445 section 6.1.2): its pairs, found in O(1) by (local base, remote address,
/// ICE-TCP); their initial states by foundation (section 6.1.2.6); the triggered-check queue; which pair is checked
/// next (section 6.1.4.2); the unfreezing of a foundation on success (section 7.2.5.3.3); the best valid pair; the
/// removal of a lost local candidate's pairs. The size bound is the caller's (<see cref="IceLimits.MaxPairs"/>).
/// Nothing here sends: the agent paces the checks (Ta) and owns the transactions.
/// </summary>
internal sealed class IceCheckList(IceGeneration generation)
{
    private readonly List<IcePair> _pairs = new();
    private readonly Dictionary<(IPEndPoint Local, IPEndPoint Remote, bool IceTcp), IcePair> _index = new();
    private readonly Dictionary<string, List<IcePair>> _byFoundation = new();

    /// <summary>
    /// The pairs, in the order they were formed: to read only (pairs are added and removed by this list). The concrete
    /// list, so the agent's loops over it (every timer poll walks it) use its struct enumerator: through
    /// <c>IReadOnlyList</c> each <c>foreach</c> boxed one (40 B), which the zero-allocation timer test caught.
    /// </summary>
    public List<IcePair> Pairs => _pairs;

    /// <summary>The triggered-check queue (RFC 8445 section 6.1.4.1), served before ordinary checks.</summary>
    public TriggeredCheckQueue Triggered { get; } = new();

    public int Count => _pairs.Count;

    /// <summary>
    /// The pair of <paramref name="local"/> (by its base) and <paramref name="remote"/>: the one held, or a new one, Waiting
    /// when it is the first of its foundation that is not Frozen, else Frozen (RFC 8445 section 6.1.2.6);
    /// <paramref name="added"/> says which. Null when they may not pair (family, transport, TCP direction) or when
    /// the list holds <paramref name="maxPairs"/> (<paramref name="full"/>).
    /// </summary>
    public IcePair? GetOrAdd(IceCandidate local, IceCandidate remote, int maxPairs, out bool added, out bool full)
    {
        added = full = false;
        if (local.Address.AddressFamily != remote.Address.AddressFamily || !IceTcpPairing.MayPair(local, remote)) return null;
        if (_index.TryGetValue((local.Base, remote.Address, local.IsTcp), out var existing)) return existing;
        if (_pairs.Count >= maxPairs) { full = true; return null; }
        var pair = new IcePair(generation, local, remote) { State = IceCandidatePairState.Frozen };
        _pairs.Add(pair);
        _index[(local.Base, remote.Address, local.IsTcp)] = pair;
        if (!_byFoundation.TryGetValue(pair.Foundation, out var sameFoundation))
            _byFoundation[pair.Foundation] = sameFoundation = new List<IcePair>();
        var foundationActive = false;
        foreach (var p in sameFoundation)
            if (p.State != IceCandidatePairState.Frozen) { foundationActive = true; break; }
        sameFoundation.Add(pair);
        if (!foundationActive) pair.State = IceCandidatePairState.Waiting;
        added = true;
        return pair;
    }

    /// <summary>The pair whose local base is <paramref name="local"/> and remote address <paramref name="remote"/>, or null.</summary>
    public IcePair? Find(IPEndPoint local, IPEndPoint remote, bool iceTcp = false) => _index.GetValueOrDefault((local, remote, iceTcp));

    /// <summary>Queues a triggered check; <paramref name="front"/> (a nomination) goes before every other.</summary>
    public void Trigger(IcePair pair, bool front, IceRole role) => Triggered.Enqueue(pair, front, pair.PriorityFor(role));

    /// <summary>
    /// The next pair to check (RFC 8445 section 6.1.4.2): the triggered queue first (skipping entries
    /// <paramref name="skipTriggered"/> drops), then, unless <paramref name="ordinaryChecksDone"/> (a pair of this list is
    /// selected: section 8.1.2), the Waiting pair of the highest priority, then the Frozen one. Taken from the
    /// triggered queue when <paramref name="take"/>.
    /// </summary>
    public IcePair? Next(bool take, IceRole role, bool ordinaryChecksDone, Func<IcePair, bool> skipTriggered)
    {
        if (Triggered.Next(take, skipTriggered) is { } t) return t;
        if (ordinaryChecksDone) return null;
        return Best(role, IceCandidatePairState.Waiting) ?? Best(role, IceCandidatePairState.Frozen);
    }

    private IcePair? Best(IceRole role, IceCandidatePairState state)
    {
        IcePair? best = null;
        foreach (var p in _pairs)
            if (p.State == state && (best is null || p.PriorityFor(role) > best.PriorityFor(role))) best = p;
        return best;
    }

    /// <summary>The valid pair (our check on it succeeded once) of the highest priority that has not failed since, or null.</summary>
    public IcePair? BestValid(IceRole role)
    {
        IcePair? best = null;
        foreach (var p in _pairs)
            if (p.Valid && p.State != IceCandidatePairState.Failed && (best is null || p.PriorityFor(role) > best.PriorityFor(role))) best = p;
        return best;
    }

    /// <summary>
    /// A check on a pair of <paramref name="foundation"/> succeeded: the Frozen pairs of that foundation become Waiting
    /// (RFC 8445 section 7.2.5.3.3).
    /// </summary>
    public void Unfreeze(string foundation)
    {
        // A walk of the list, not the by-foundation index: a pair's foundation changes when its peer-reflexive remote
        // candidate is replaced by the signalled one (RFC 8838 section 11.4).
        foreach (var p in _pairs)
            if (p.State == IceCandidatePairState.Frozen && p.Foundation == foundation) p.State = IceCandidatePairState.Waiting;
    }

    /// <summary>
    /// The pairs of <paramref name="local"/> leave the list (its relay's allocation was lost): each is marked Failed, its
    /// nomination dropped, its triggered entry made stale. Returns how many left.
    /// </summary>
    public int RemoveLocal(IceCandidate local)
    {
        var removed = 0;
        for (var i = _pairs.Count - 1; i >= 0; i--)
        {
            var p = _pairs[i];
            if (p.Local != local) continue;
            _pairs.RemoveAt(i);
            _index.Remove((p.Local.Base, p.Remote.Address, p.Local.IsTcp));
            if (_byFoundation.TryGetValue(p.Foundation, out var same) && same.Remove(p) && same.Count == 0) _byFoundation.Remove(p.Foundation);
            p.InTriggeredQueue = false; // its queued entry turns stale and is skipped
            p.NominationPending = false;
            p.State = IceCandidatePairState.Failed;
            removed++;
        }
        return removed;
    }

    /// <summary>The list has pairs and every one failed.</summary>
    public bool AllFailed
    {
        get
        {
            if (_pairs.Count == 0) return false;
            foreach (var p in _pairs) if (p.State != IceCandidatePairState.Failed) return false;
            return true;
        }
    }
}
