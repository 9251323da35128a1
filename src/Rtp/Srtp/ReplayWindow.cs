namespace Transport.Rtp.Srtp;

/// <summary>
/// Sliding replay window (RFC 3711 section 3.3.2) over 48-bit SRTP or 31-bit SRTCP indices. The bitmap is a ring
/// indexed by (index mod capacity), so advancing the window clears bits instead of shifting the whole map.
/// </summary>
internal sealed class ReplayWindow
{
    private readonly ulong[] _bits;
    private readonly int _capacityMask;
    private readonly ulong _size;
    private ulong _highest;
    private bool _started;

    public ReplayWindow(int size)
    {
        int capacity = 64;
        while (capacity < size)
        {
            capacity <<= 1;
        }

        _bits = new ulong[capacity / 64];
        _capacityMask = capacity - 1;
        _size = (ulong)size;
    }

    public ulong Highest => _highest;

    public bool Started => _started;

    /// <summary>Forgets every index (used when a stream is reset).</summary>
    public void Reset()
    {
        Array.Clear(_bits);
        _highest = 0;
        _started = false;
    }

    /// <summary>Checks an index without recording it (the record happens only after authentication).</summary>
    public SrtpResult Check(ulong index)
    {
        if (!_started || index > _highest)
        {
            return SrtpResult.Ok;
        }

        if (_highest - index >= _size)
        {
            return SrtpResult.TooOld;
        }

        int bit = (int)index & _capacityMask;
        return (_bits[bit >> 6] & (1UL << bit)) != 0 ? SrtpResult.Replayed : SrtpResult.Ok;
    }

    /// <summary>Records an authenticated index, advancing the window when it is the newest.</summary>
    public void Accept(ulong index)
    {
        if (!_started)
        {
            _started = true;
            _highest = index;
        }
        else if (index > _highest)
        {
            ulong advance = index - _highest;
            if (advance > (ulong)_capacityMask)
            {
                Array.Clear(_bits);
            }
            else
            {
                for (ulong i = _highest + 1; i < index; i++)
                {
                    int clear = (int)i & _capacityMask;
                    _bits[clear >> 6] &= ~(1UL << clear);
                }
            }

            _highest = index;
        }

        int bit = (int)index & _capacityMask;
        _bits[bit >> 6] |= 1UL << bit;
    }
}
