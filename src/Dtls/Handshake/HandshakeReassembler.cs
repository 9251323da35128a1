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

    /// <summary>message_seq of the next message to hand out.</summary>
    public int NextSequence { get; set; }

    public FragmentOutcome Add(in HandshakeHeader fragment)
    {
        var seq = fragment.MessageSequence;
        if (seq < NextSequence) return FragmentOutcome.Old;
        if (seq >= NextSequence + Window) return FragmentOutcome.Rejected;
        ref var slot = ref _slots[seq % Window];
        if (slot is null || slot.Sequence != seq)
            slot = new Pending(seq, fragment.Type, fragment.MessageLength);
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
            slot = null;
            NextSequence++;
            return true;
        }
        message = default;
        return false;
    }

    public void Clear() => Array.Clear(_slots);

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
