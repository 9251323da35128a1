using System.Buffers.Binary;

namespace Transport.Rtp.Streams;

/// <summary>
/// Send-side store of the last <see cref="Capacity"/> RTP packets of one SSRC (plain, before SRTP) to answer NACKs.
/// Packets live in one preallocated slab of fixed-size slots indexed by sequence number, so storing allocates
/// nothing. Optionally wraps retransmissions in RTX (RFC 4588 section 4: own SSRC, payload type and sequence
/// numbers, payload prefixed by the original sequence number).
/// </summary>
public sealed class RetransmissionCache
{
    private readonly byte[] _slab;
    private readonly int[] _lengths;
    private readonly int[] _sequences;
    private readonly int _slotSize;
    private ushort _rtxSequence;

    /// <summary>Creates a cache of <paramref name="capacity"/> packets of up to <paramref name="maxPacketSize"/> bytes.</summary>
    public RetransmissionCache(int capacity = 512, int maxPacketSize = 1500)
    {
        if (capacity <= 0 || maxPacketSize < RtpPacket.FixedHeaderLength)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity));
        }

        Capacity = capacity;
        _slotSize = maxPacketSize;
        _slab = new byte[capacity * maxPacketSize];
        _lengths = new int[capacity];
        _sequences = new int[capacity];
        Array.Fill(_sequences, -1);
    }

    /// <summary>Number of packets kept.</summary>
    public int Capacity { get; }

    /// <summary>RTX (RFC 4588) parameters; null sends plain retransmissions with the original header.</summary>
    public RtxParameters? Rtx { get; set; }

    /// <summary>Stores a sent packet (overwriting the packet <see cref="Capacity"/> sequence numbers older).</summary>
    public void Store(ReadOnlySpan<byte> rtpPacket)
    {
        if (rtpPacket.Length > _slotSize || rtpPacket.Length < RtpPacket.FixedHeaderLength)
        {
            return;
        }

        ushort sequence = BinaryPrimitives.ReadUInt16BigEndian(rtpPacket.Slice(2));
        int slot = sequence % Capacity;
        rtpPacket.CopyTo(_slab.AsSpan(slot * _slotSize));
        _lengths[slot] = rtpPacket.Length;
        _sequences[slot] = sequence;
        if (_resentAt is not null) _resentAt[slot] = 0;
    }

    private long[]? _resentAt;   // ticks of the last retransmission per slot (0: never), on first use

    /// <summary>
    /// Whether <paramref name="sequence"/> may be resent at <paramref name="now"/>: not when it was resent less than
    /// <paramref name="minInterval"/> ago (a NACK repeated before our first answer could arrive); records the time when it may.
    /// </summary>
    public bool TryMarkResent(ushort sequence, TimeSpan now, TimeSpan minInterval)
    {
        if (minInterval <= TimeSpan.Zero) return true;
        _resentAt ??= new long[Capacity];
        int slot = sequence % Capacity;
        long last = _resentAt[slot];
        if (last != 0 && now.Ticks - last < minInterval.Ticks) return false;
        _resentAt[slot] = Math.Max(1, now.Ticks);
        return true;
    }

    /// <summary>
    /// Records that the retransmission of <paramref name="sequence"/> left at <paramref name="now"/> (after waiting in
    /// a pacer): <see cref="TryMarkResent"/> counts its interval from here, so NACKs repeated while the copy was still
    /// on its way are not answered again.
    /// </summary>
    public void MarkResent(ushort sequence, TimeSpan now)
    {
        if (_resentAt is null || !Contains(sequence)) return;
        _resentAt[sequence % Capacity] = Math.Max(1, now.Ticks);
    }

    /// <summary>Takes the next RTX sequence number for a packet of our own on the RTX stream (padding for probes).</summary>
    public ushort TakeRtxSequence() => _rtxSequence++;

    /// <summary>True when <paramref name="sequence"/> is still cached.</summary>
    public bool Contains(ushort sequence) => _sequences[sequence % Capacity] == sequence;

    /// <summary>
    /// Writes the retransmission of <paramref name="sequence"/> into <paramref name="destination"/> (as RTX when
    /// configured). False when the packet is no longer cached or does not fit.
    /// </summary>
    public bool TryGetRetransmission(ushort sequence, Span<byte> destination, out int written)
    {
        written = 0;
        int slot = sequence % Capacity;
        if (_sequences[slot] != sequence)
        {
            return false;
        }

        ReadOnlySpan<byte> original = _slab.AsSpan(slot * _slotSize, _lengths[slot]);
        if (Rtx is not { } rtx)
        {
            if (original.Length > destination.Length)
            {
                return false;
            }

            original.CopyTo(destination);
            written = original.Length;
            return true;
        }

        if (!RtpPacket.TryRead(original, out RtpPacket packet))
        {
            return false;
        }

        // RFC 4588 section 4: same header except PT, sequence number and SSRC; payload = OSN || original payload.
        int header = packet.HeaderLength;
        int length = header + 2 + packet.Payload.Length;
        if (length > destination.Length)
        {
            return false;
        }

        original.Slice(0, header).CopyTo(destination);
        destination[0] &= 0xDF; // the original padding is not carried
        destination[1] = (byte)((destination[1] & 0x80) | rtx.PayloadType);
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), _rtxSequence++);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(8), rtx.Ssrc);
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(header), sequence);
        packet.Payload.CopyTo(destination.Slice(header + 2));
        written = length;
        return true;
    }

    /// <summary>
    /// Restores the original packet from an RTX packet (RFC 4588 section 4) given the original payload type and
    /// SSRC. Returns the length written, or -1 when the packet is not valid RTX.
    /// </summary>
    public static int UnwrapRtx(ReadOnlySpan<byte> rtxPacket, byte originalPayloadType, uint originalSsrc, Span<byte> destination)
    {
        if (!RtpPacket.TryRead(rtxPacket, out RtpPacket packet) || packet.Payload.Length < 2)
        {
            return -1;
        }

        int header = packet.HeaderLength;
        int length = rtxPacket.Length - packet.PaddingLength - 2;
        if (length > destination.Length)
        {
            return -1;
        }

        rtxPacket.Slice(0, header).CopyTo(destination);
        destination[0] &= 0xDF;
        destination[1] = (byte)((destination[1] & 0x80) | originalPayloadType);
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), BinaryPrimitives.ReadUInt16BigEndian(packet.Payload));
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(8), originalSsrc);
        packet.Payload.Slice(2).CopyTo(destination.Slice(header));
        return length;
    }
}

/// <summary>RTX stream parameters (RFC 4588): the retransmission SSRC and payload type.</summary>
public sealed record RtxParameters(uint Ssrc, byte PayloadType);
