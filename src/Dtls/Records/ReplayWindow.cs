namespace Transport.Dtls.Records;

/// <summary>
/// Anti-replay sliding window of 64 records (RFC 6347 section 4.1.2.6, the algorithm of RFC 4303 section 3.4.3).
/// A record is checked before decryption and marked only after it authenticated, so a forged record cannot
/// move the window.
/// </summary>
internal sealed class ReplayWindow
{
    public const int Size = 64;
    private ulong _highest;
    private ulong _bitmap; // bit i set: _highest - i was received
    private bool _any;

    /// <summary>True when <paramref name="sequence"/> was already received or lies left of the window.</summary>
    public bool IsReplay(ulong sequence)
    {
        if (!_any || sequence > _highest) return false;
        var offset = _highest - sequence;
        if (offset >= Size) return true;
        return (_bitmap & (1UL << (int)offset)) != 0;
    }

    /// <summary>Records <paramref name="sequence"/> as received.</summary>
    public void Mark(ulong sequence)
    {
        if (!_any)
        {
            _any = true;
            _highest = sequence;
            _bitmap = 1;
            return;
        }
        if (sequence > _highest)
        {
            var shift = sequence - _highest;
            _bitmap = shift >= Size ? 1 : (_bitmap << (int)shift) | 1;
            _highest = sequence;
            return;
        }
        var offset = _highest - sequence;
        if (offset < Size) _bitmap |= 1UL << (int)offset;
    }

    public void Reset()
    {
        _any = false;
        _highest = 0;
        _bitmap = 0;
    }
}
