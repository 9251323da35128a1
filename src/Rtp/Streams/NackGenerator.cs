namespace Transport.Rtp.Streams;

/// <summary>
/// Tracks missing sequence numbers of one source and decides when to NACK them (RFC 4585 section 6.2.1): a gap
/// adds its packets, an arrival removes one, each is requested at most <see cref="MaxRetries"/> times spaced by the
/// retry interval, and the list is bounded (<see cref="MaxMissing"/>) so a burst cannot grow it without limit.
/// </summary>
public sealed class NackGenerator
{
    private readonly SortedDictionary<long, (int Retries, TimeSpan NextSend)> _missing = new();
    private SequenceUnwrapper _unwrapper;
    private long _highest = long.MinValue;

    /// <summary>Largest number of missing packets tracked; the oldest are forgotten first.</summary>
    public int MaxMissing { get; init; } = 500;

    /// <summary>Requests per missing packet before giving up.</summary>
    public int MaxRetries { get; init; } = 10;

    /// <summary>Delay between requests for the same packet (about one RTT). Default 100 ms.</summary>
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Packets older than this many sequence numbers behind the newest are no longer requested.</summary>
    public int MaxAge { get; init; } = 3000;

    /// <summary>Missing packets currently tracked.</summary>
    public int MissingCount => _missing.Count;

    /// <summary>Records an arriving packet.</summary>
    public void OnPacket(ushort sequence, TimeSpan now)
    {
        long extended = _unwrapper.Unwrap(sequence);
        if (_highest == long.MinValue)
        {
            _highest = extended;
            return;
        }

        if (extended <= _highest)
        {
            _missing.Remove(extended); // a late arrival or a retransmission filled the hole
            return;
        }

        long gapStart = Math.Max(_highest + 1, extended - MaxMissing);
        for (long s = gapStart; s < extended; s++)
        {
            _missing[s] = (0, now);
        }

        _highest = extended;
        while (_missing.Count > MaxMissing)
        {
            _missing.Remove(FirstKey());
        }
    }

    /// <summary>
    /// Writes the sequence numbers due for a NACK at <paramref name="now"/> into <paramref name="destination"/>,
    /// in increasing order; returns how many.
    /// </summary>
    public int Poll(TimeSpan now, Span<ushort> destination)
    {
        // Enumerating a SortedDictionary allocates its enumerator's stack even when empty; the composition polls
        // after every datagram, so the usual no-loss case must not touch it.
        if (_missing.Count == 0)
        {
            return 0;
        }

        int count = 0;
        List<long>? expired = null;
        List<long>? sent = null;
        foreach ((long seq, (int retries, TimeSpan next)) in _missing)
        {
            if (_highest - seq > MaxAge || retries >= MaxRetries)
            {
                (expired ??= new()).Add(seq);
                continue;
            }

            if (next <= now && count < destination.Length)
            {
                destination[count++] = (ushort)seq;
                (sent ??= new()).Add(seq);
            }
        }

        if (expired is not null)
        {
            foreach (long seq in expired)
            {
                _missing.Remove(seq);
            }
        }

        if (sent is not null)
        {
            foreach (long seq in sent)
            {
                (int retries, _) = _missing[seq];
                _missing[seq] = (retries + 1, now + RetryInterval);
            }
        }

        return count;
    }

    /// <summary>The earliest time a NACK is due, or null when nothing is missing.</summary>
    public TimeSpan? NextDue()
    {
        if (_missing.Count == 0)
        {
            return null;
        }

        TimeSpan? earliest = null;
        foreach ((_, (int _, TimeSpan next)) in _missing)
        {
            if (earliest is null || next < earliest)
            {
                earliest = next;
            }
        }

        return earliest;
    }

    private long FirstKey()
    {
        foreach (long key in _missing.Keys)
        {
            return key;
        }

        return 0;
    }
}
