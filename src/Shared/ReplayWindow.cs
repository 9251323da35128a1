namespace Transport.Crypto;

/// <summary>What <see cref="ReplayWindow.Check"/> found.</summary>
internal enum ReplayCheck
{
    /// <summary>Not seen and inside or ahead of the window.</summary>
    Fresh,
    /// <summary>Already received.</summary>
    Replayed,
    /// <summary>Left of the window: too old to tell, refused.</summary>
    TooOld,
}

/// <summary>
/// The one anti-replay sliding window of the stack (the algorithm of RFC 4303 section 3.4.3): DTLS 1.2 records
/// (RFC 6347 section 4.1.2.6, 48-bit sequence numbers), DTLS 1.3 records (RFC 9147 section 4.5.1, 64-bit) and SRTP /
/// SRTCP packets (RFC 3711 section 3.3.2, 48-bit and 31-bit indices, a configurable size). An index is checked
/// before or after decryption but marked only once it authenticated, so a forged packet cannot move the window. The
/// bitmap is a ring indexed by (index mod capacity): advancing clears the bits passed over instead of shifting a map.
/// </summary>
internal sealed class ReplayWindow
{
    /// <summary>The default and smallest size (RFC 3711, RFC 6347).</summary>
    public const int DefaultSize = 64;

    private readonly ulong[] _bits;
    private readonly int _capacityMask;
    private readonly ulong _size;
    private ulong _highest;
    private bool _started;

    /// <summary>A window of <paramref name="size"/> indices (at least 64; the bitmap is the next power of two).</summary>
    public ReplayWindow(int size = DefaultSize)
    {
        if (size < DefaultSize) throw new ArgumentOutOfRangeException(nameof(size), size, "A replay window holds at least 64 indices.");
        var capacity = DefaultSize;
        while (capacity < size) capacity <<= 1;
        _bits = new ulong[capacity / 64];
        _capacityMask = capacity - 1;
        _size = (ulong)size;
    }

    /// <summary>The highest index marked.</summary>
    public ulong Highest => _highest;

    /// <summary>True once an index was marked.</summary>
    public bool Started => _started;

    /// <summary>Forgets every index (a stream reset, a new epoch 0 handshake).</summary>
    public void Reset()
    {
        Array.Clear(_bits);
        _highest = 0;
        _started = false;
    }

    /// <summary>Checks <paramref name="index"/> without marking it.</summary>
    public ReplayCheck Check(ulong index)
    {
        if (!_started || index > _highest) return ReplayCheck.Fresh;
        if (_highest - index >= _size) return ReplayCheck.TooOld;
        var bit = (int)index & _capacityMask;
        return (_bits[bit >> 6] & (1UL << bit)) != 0 ? ReplayCheck.Replayed : ReplayCheck.Fresh;
    }

    /// <summary>True when <paramref name="index"/> was already received or lies left of the window.</summary>
    public bool IsReplay(ulong index) => Check(index) != ReplayCheck.Fresh;

    /// <summary>Marks an authenticated <paramref name="index"/>, advancing the window when it is the newest.</summary>
    public void Mark(ulong index)
    {
        if (!_started)
        {
            _started = true;
            _highest = index;
        }
        else if (index > _highest)
        {
            var advance = index - _highest;
            if (advance > (ulong)_capacityMask)
            {
                Array.Clear(_bits);
            }
            else
            {
                for (var i = _highest + 1; i < index; i++)
                {
                    var clear = (int)i & _capacityMask;
                    _bits[clear >> 6] &= ~(1UL << clear);
                }
            }

            _highest = index;
        }
        else if (_highest - index >= _size)
        {
            return; // left of the window: nothing to remember (its bit now belongs to a newer index)
        }

        var bit = (int)index & _capacityMask;
        _bits[bit >> 6] |= 1UL << bit;
    }
}
