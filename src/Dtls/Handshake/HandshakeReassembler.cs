namespace Transport.Dtls.Handshake;

/// <summary>A whole handshake message received from the peer.</summary>
internal readonly record struct ReceivedMessage(DtlsHandshakeType Type, int Sequence, byte[] Body)
{
    /// <summary>The message as it enters the transcript (RFC 6347 section 4.2.6: as if sent in one fragment).</summary>
    public byte[] Framed() => HandshakeHeader.Frame(Type, Sequence, Body);
}

/// <summary>What became of one incoming handshake fragment.</summary>
internal enum FragmentOutcome
{
    /// <summary>Stored (or already had those bytes).</summary>
    Accepted,
    /// <summary>Belongs to a message already processed: the peer is retransmitting.</summary>
    Old,
    /// <summary>Inconsistent with earlier fragments or too far ahead.</summary>
    Rejected,
}

/// <summary>
/// Reassembles handshake messages from fragments that may arrive out of order, overlapping or duplicated
/// (RFC 6347 section 4.2.3), and hands them out strictly in message_seq order.
/// </summary>
internal sealed class HandshakeReassembler
{
    /// <summary>How far ahead of the next expected message we buffer; a flight has at most 6 messages.</summary>
    private const int Window = 8;
    private readonly Pending?[] _slots = new Pending?[Window];

    private int _buffered;

    /// <summary>message_seq of the next message to hand out.</summary>
    public int NextSequence { get; set; }

    /// <summary>
    /// Bytes of message bodies held at once (<see cref="DtlsOptions.MaxHandshakeBuffer"/>). The length of a message
    /// comes from its first fragment, before anything is authenticated: without a bound one 25-byte fragment that
    /// claims 16 MiB (RFC 6347's 24-bit length) would make us hold 16 MiB, eight of them up to 128 MiB.
    /// </summary>
    public int MaxBufferedBytes { get; set; } = DtlsOptions.DefaultMaxHandshakeBuffer;

    /// <summary>Bytes held now (for tests).</summary>
    public int BufferedBytes => _buffered;

    public FragmentOutcome Add(in HandshakeHeader fragment)
    {
        var seq = fragment.MessageSequence;
        if (seq < NextSequence) return FragmentOutcome.Old;
        if (seq >= NextSequence + Window) return FragmentOutcome.Rejected;
        ref var slot = ref _slots[seq % Window];
        if (slot is null || slot.Sequence != seq)
        {
            var held = _buffered - (slot?.Body.Length ?? 0);
            if (fragment.MessageLength > MaxBufferedBytes - held) return FragmentOutcome.Rejected;
            _buffered = held + fragment.MessageLength;
            slot = new Pending(seq, fragment.Type, fragment.MessageLength);
        }
        else if (slot.Type != fragment.Type || slot.Body.Length != fragment.MessageLength)
            return FragmentOutcome.Rejected;
        slot.Add(fragment.FragmentOffset, fragment.Fragment);
        return FragmentOutcome.Accepted;
    }

    /// <summary>Takes the next message in order when all its bytes are here.</summary>
    public bool TryTake(out ReceivedMessage message)
    {
        ref var slot = ref _slots[NextSequence % Window];
        if (slot is not null && slot.Sequence == NextSequence && slot.IsComplete)
        {
            message = new ReceivedMessage(slot.Type, slot.Sequence, slot.Body);
            _buffered -= slot.Body.Length;
            slot = null;
            NextSequence++;
            return true;
        }
        message = default;
        return false;
    }

    public void Clear()
    {
        Array.Clear(_slots);
        _buffered = 0;
    }

    private sealed class Pending(int sequence, DtlsHandshakeType type, int length)
    {
        private readonly bool[] _have = new bool[length];
        private int _count;
        public int Sequence { get; } = sequence;
        public DtlsHandshakeType Type { get; } = type;
        public byte[] Body { get; } = new byte[length];
        public bool IsComplete => _count == Body.Length;

        public void Add(int offset, ReadOnlySpan<byte> data)
        {
            data.CopyTo(Body.AsSpan(offset));
            for (var i = 0; i < data.Length; i++)
            {
                if (_have[offset + i]) continue;
                _have[offset + i] = true;
                _count++;
            }
        }
    }
}
