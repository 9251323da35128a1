using System.Net;
using Transport.Ice.Stun;

namespace Transport.Ice;

/// <summary>What an outgoing request of the agent is for.</summary>
internal enum IceTransactionKind
{
    /// <summary>A connectivity check (RFC 8445 section 7.2.4), ordinary or triggered, nominating or not.</summary>
    Check,
    /// <summary>A consent check (RFC 7675 section 5.1), or a request that only carries SPED data.</summary>
    Consent,
    /// <summary>A Binding request to a STUN server for a server-reflexive candidate (RFC 8445 section 5.1.1.2).</summary>
    Gather,
}

/// <summary>
/// One outgoing request of the agent: its STUN client transaction (retransmissions, RFC 8489 section 6.2.1) and what
/// the agent needs when it ends: the path it went on and, for a check, the pair, the nomination and the role it was
/// sent with (RFC 8445 section 7.2.5).
/// </summary>
internal sealed class IceTransaction(IceTransactionKind kind, StunClientTransaction transaction, IPEndPoint local, IPEndPoint remote)
{
    public IceTransactionKind Kind { get; } = kind;
    public StunClientTransaction Transaction { get; } = transaction;
    public IPEndPoint Local { get; } = local;
    public IPEndPoint Remote { get; } = remote;
    public IcePair? Pair { get; init; }
    public bool Nominating { get; init; }
    public IceCandidate? Host { get; init; }
    public IceRole RoleAtSend { get; init; }
    /// <summary>Sent on an ICE-TCP connection (the pair's).</summary>
    public bool IceTcp { get; init; }
    // SPED: whether the request carried SPED attributes, and the CRC-32 of the DTLS datagram it carried.
    public bool SpedSent { get; init; }
    public uint? SpedCrc { get; init; }
}

/// <summary>
/// The agent's pending STUN client transactions: checks, consent checks and gathering requests. Each retransmits on
/// its own schedule (RFC 8445 section 14.3 and RFC 8489 section 6.2.1: from the RTO, doubling, Rc requests, then Rm
/// times the RTO; once over a stream, RFC 8489 section 6.2.2); this set starts them within a bound, hands out their
/// due sends one at a time, runs their timers and queues the ones that timed out, matches a response to its request by
/// transaction ID, and cancels or stops them as the agent decides. Pure bookkeeping on the caller's time: what a
/// response or a timeout means for a pair is the agent's (IceAgent.Checks.cs).
/// </summary>
internal sealed class IceTransactions(int capacity)
{
    private readonly List<IceTransaction> _pending = new();
    private readonly Queue<IceTransaction> _timedOut = new();
    // Where TryPollTransmit goes on: a drain walks the set once however many sends it hands out.
    private int _cursor;

    /// <summary>Transactions still held (pending, or ended and not yet removed).</summary>
    public int Count => _pending.Count;

    /// <summary>How many may be held at once (<see cref="IceLimits.MaxPendingTransactions"/>).</summary>
    public int Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), "At least one transaction.");

    /// <summary>Whether another transaction may start.</summary>
    public bool HasRoom => _pending.Count < Capacity;

    /// <summary>Requests not sent because the set was full.</summary>
    public long Refused { get; private set; }

    /// <summary>Starts <paramref name="transaction"/>: its first request is due now. False (and counted) when the set is full.</summary>
    public bool TryStart(IceTransaction transaction, TimeSpan now)
    {
        if (!HasRoom) { Refused++; return false; }
        _pending.Add(transaction);
        transaction.Transaction.Start(now);
        return true;
    }

    /// <summary>Writes the next due request into <paramref name="destination"/>; <paramref name="from"/> says whose it is.</summary>
    public bool TryPollTransmit(Span<byte> destination, out int written, out IceTransaction? from)
    {
        for (; _cursor < _pending.Count; _cursor++)
        {
            var t = _pending[_cursor];
            if (t.Transaction.TryPollTransmit(destination, out written)) { from = t; return true; }
        }
        _cursor = 0;
        written = 0;
        from = null;
        return false;
    }

    /// <summary>The earliest retransmission or timeout of any pending transaction, or null.</summary>
    public TimeSpan? PollTimeout()
    {
        TimeSpan? next = null;
        foreach (var t in _pending)
            if (t.Transaction.PollTimeout() is { } due && (next is null || due < next)) next = due;
        return next;
    }

    /// <summary>
    /// Runs every timer due at <paramref name="now"/>: a due request is queued again, a transaction past its last wait
    /// times out (<see cref="TryPollTimedOut"/>), one that had stopped retransmitting ends quietly. Ended ones are removed.
    /// </summary>
    public void HandleTimeout(TimeSpan now)
    {
        foreach (var t in _pending)
        {
            if (t.Transaction.PollTimeout() is not { } due || due > now) continue;
            t.Transaction.HandleTimeout(now);
            if (t.Transaction.State == StunTransactionState.TimedOut) _timedOut.Enqueue(t);
        }
        RemoveCompleted();
    }

    /// <summary>The next transaction that timed out (no response to its last request in time), in the order they did.</summary>
    public bool TryPollTimedOut(out IceTransaction transaction) => _timedOut.TryDequeue(out transaction!);

    /// <summary>The pending transaction whose ID is <paramref name="transactionId"/> (RFC 8489 section 6.3), or null.</summary>
    public IceTransaction? Find(ReadOnlySpan<byte> transactionId)
    {
        foreach (var t in _pending)
            if (!t.Transaction.IsCompleted && t.Transaction.Id.Matches(transactionId)) return t;
        return null;
    }

    /// <summary>Forgets <paramref name="transaction"/> (its response came).</summary>
    public void Remove(IceTransaction transaction)
    {
        if (_pending.Remove(transaction)) _cursor = 0;
    }

    /// <summary>
    /// A new check on <paramref name="pair"/> replaces the one in progress (RFC 8445 section 7.3.1.4): the old one is
    /// no longer retransmitted, but its response still counts until its last wait has passed.
    /// </summary>
    public void StopRetransmittingChecksOn(IcePair pair, TimeSpan now)
    {
        foreach (var t in _pending)
            if (t.Kind == IceTransactionKind.Check && t.Pair == pair && !t.Transaction.IsCompleted) t.Transaction.StopRetransmitting(now);
    }

    /// <summary>Cancels and forgets every transaction <paramref name="match"/> selects (no more sends, no timeout).</summary>
    public void Cancel<TState>(TState state, Func<IceTransaction, TState, bool> match, TimeSpan now)
    {
        foreach (var t in _pending)
            if (!t.Transaction.IsCompleted && match(t, state)) t.Transaction.Cancel(now);
        RemoveCompleted();
    }

    /// <summary>Cancels and forgets everything, the timed-out ones not yet polled too.</summary>
    public void CancelAll(TimeSpan now)
    {
        foreach (var t in _pending) t.Transaction.Cancel(now);
        _pending.Clear();
        _timedOut.Clear();
        _cursor = 0;
    }

    /// <summary>Forgets the transactions that ended (answered, timed out, cancelled).</summary>
    public void RemoveCompleted()
    {
        if (_pending.RemoveAll(static t => t.Transaction.IsCompleted) > 0) _cursor = 0;
    }
}
