namespace Transport.Rtp;

/// <summary>
/// Extends 16-bit RTP sequence numbers to 64 bits (RFC 3550 appendix A.1 idea): each value is placed in the cycle
/// that makes it closest to the previous extended value, so reordering across a wrap is handled.
/// </summary>
public struct SequenceUnwrapper
{
    private long _last;
    private bool _started;

    /// <summary>The extended value of <paramref name="sequence"/>; the reference moves forward only.</summary>
    public long Unwrap(ushort sequence)
    {
        if (!_started)
        {
            _started = true;
            _last = sequence;
            return sequence;
        }

        long extended = _last + (short)(ushort)(sequence - (ushort)_last);
        if (extended > _last)
        {
            _last = extended;
        }

        return extended;
    }
}

/// <summary>Extends 32-bit RTP timestamps to 64 bits the same way (closest to the previous value).</summary>
public struct TimestampUnwrapper
{
    private long _last;
    private bool _started;

    /// <summary>The extended value of <paramref name="timestamp"/>.</summary>
    public long Unwrap(uint timestamp)
    {
        if (!_started)
        {
            _started = true;
            _last = timestamp;
            return timestamp;
        }

        long extended = _last + (int)(timestamp - (uint)_last);
        if (extended > _last)
        {
            _last = extended;
        }

        return extended;
    }
}
