using System.Buffers.Binary;

namespace Transport.Rtp.Payloads;

//  H.264 over RTP (RFC 6184), packetization mode 1 (non-interleaved):
//  NAL unit header |F|NRI|Type|; Type 1-23 single NAL unit packet (section 5.6), 24 STAP-A (5.7.1: NAL header then
//  [16-bit size, NAL unit]...), 28 FU-A (5.8: FU indicator |F|NRI|28|, FU header |S|E|R|Type|, fragment).

/// <summary>
/// Packetizes one H.264 access unit given in Annex B form (start codes) into mode 1 payloads: NAL units that fit
/// are aggregated into STAP-A packets (or sent as single NAL unit packets); larger ones are split into FU-A.
/// A ref struct over the access unit: no allocation.
/// </summary>
public ref struct H264Packetizer
{
    private const byte StapA = 24, FuA = 28;
    private readonly ReadOnlySpan<byte> _accessUnit;
    private readonly int _maxPayload;
    private int _scan;          // position in the Annex B stream of the next NAL unit not yet started
    private int _fuNalStart;    // current NAL being fragmented (start of its header), or -1
    private int _fuNalEnd;
    private int _fuOffset;

    /// <summary>Prepares to packetize <paramref name="annexB"/> into payloads of at most <paramref name="maxPayloadSize"/> bytes.</summary>
    public H264Packetizer(ReadOnlySpan<byte> annexB, int maxPayloadSize)
    {
        if (maxPayloadSize < 3)
        {
            throw new ArgumentOutOfRangeException(nameof(maxPayloadSize));
        }

        _accessUnit = annexB;
        _maxPayload = maxPayloadSize;
        _scan = 0;
        _fuNalStart = -1;
        _fuNalEnd = 0;
        _fuOffset = 0;
    }

    /// <summary>Finds the next NAL unit at or after <paramref name="position"/>: returns false at the end.</summary>
    internal static bool NextNal(ReadOnlySpan<byte> stream, ref int position, out int start, out int end)
    {
        start = end = 0;
        int i = position;
        // Skip a start code (00 00 01 or 00 00 00 01); a stream without start codes is one NAL unit.
        int codeAt = FindStartCode(stream, i, out int codeLength);
        if (codeAt == i)
        {
            i += codeLength;
        }

        if (i >= stream.Length)
        {
            position = stream.Length;
            return false;
        }

        int next = FindStartCode(stream, i, out _);
        start = i;
        end = next < 0 ? stream.Length : next;
        // Trailing zero bytes belong to the next start code (00 00 00 01), not to this NAL unit.
        while (end > start && stream[end - 1] == 0 && next >= 0)
        {
            end--;
        }

        position = next < 0 ? stream.Length : next;
        return end > start;
    }

    private static int FindStartCode(ReadOnlySpan<byte> stream, int from, out int length)
    {
        length = 0;
        for (int i = from; i + 2 < stream.Length; i++)
        {
            if (stream[i] == 0 && stream[i + 1] == 0)
            {
                if (stream[i + 2] == 1)
                {
                    length = 3;
                    return i;
                }

                if (i + 3 < stream.Length && stream[i + 2] == 0 && stream[i + 3] == 1)
                {
                    length = 4;
                    return i;
                }
            }
        }

        return -1;
    }

    /// <summary>Writes the next payload; <paramref name="marker"/> is set on the last packet of the access unit.</summary>
    public bool TryWriteNext(Span<byte> destination, out int written, out bool marker)
    {
        written = 0;
        marker = false;
        if (destination.Length < _maxPayload)
        {
            throw new ArgumentException("Destination smaller than the maximum payload.", nameof(destination));
        }

        if (_fuNalStart >= 0)
        {
            return WriteFragment(destination, out written, out marker);
        }

        int position = _scan;
        if (!NextNal(_accessUnit, ref position, out int start, out int end))
        {
            return false;
        }

        int nalLength = end - start;
        if (nalLength > _maxPayload)
        {
            _fuNalStart = start;
            _fuNalEnd = end;
            _fuOffset = start + 1;
            _scan = position;
            return WriteFragment(destination, out written, out marker);
        }

        // Try to aggregate following small NAL units into a STAP-A (RFC 6184 section 5.7.1).
        int aggregateLength = 1 + 2 + nalLength;
        int count = 1;
        byte nri = (byte)(_accessUnit[start] & 0x60);
        int lookahead = position;
        while (NextNal(_accessUnit, ref lookahead, out int s2, out int e2) && aggregateLength + 2 + (e2 - s2) <= _maxPayload)
        {
            aggregateLength += 2 + (e2 - s2);
            nri = Math.Max(nri, (byte)(_accessUnit[s2] & 0x60));
            count++;
        }

        if (count == 1)
        {
            _accessUnit.Slice(start, nalLength).CopyTo(destination);
            written = nalLength;
        }
        else
        {
            destination[0] = (byte)(nri | StapA);
            written = 1;
            int p = _scan;
            for (int i = 0; i < count; i++)
            {
                NextNal(_accessUnit, ref p, out int s, out int e);
                BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(written), (ushort)(e - s));
                _accessUnit.Slice(s, e - s).CopyTo(destination.Slice(written + 2));
                written += 2 + (e - s);
            }

            position = p;
        }

        _scan = position;
        int probe = _scan;
        marker = !NextNal(_accessUnit, ref probe, out _, out _);
        return true;
    }

    private bool WriteFragment(Span<byte> destination, out int written, out bool marker)
    {
        byte header = _accessUnit[_fuNalStart];
        int chunk = Math.Min(_maxPayload - 2, _fuNalEnd - _fuOffset);
        bool first = _fuOffset == _fuNalStart + 1;
        bool last = _fuOffset + chunk >= _fuNalEnd;
        destination[0] = (byte)((header & 0xE0) | FuA);
        destination[1] = (byte)((first ? 0x80 : 0) | (last ? 0x40 : 0) | (header & 0x1F));
        _accessUnit.Slice(_fuOffset, chunk).CopyTo(destination.Slice(2));
        _fuOffset += chunk;
        written = 2 + chunk;
        marker = false;
        if (last)
        {
            _fuNalStart = -1;
            int probe = _scan;
            marker = !NextNal(_accessUnit, ref probe, out _, out _);
        }

        return true;
    }
}

/// <summary>Rebuilds Annex B NAL units from mode 1 payloads (RFC 6184 sections 5.6, 5.7.1, 5.8).</summary>
public sealed class H264Depacketizer : IRtpDepacketizer
{
    private static ReadOnlySpan<byte> StartCode => [0, 0, 0, 1];

    /// <inheritdoc />
    public bool IsFrameStart(ReadOnlySpan<byte> payload)
    {
        if (payload.IsEmpty)
        {
            return false;
        }

        int type = payload[0] & 0x1F;
        return type == 28 ? payload.Length > 1 && (payload[1] & 0x80) != 0 : type is >= 1 and <= 24;
    }

    /// <inheritdoc />
    public bool IsFrameEnd(ReadOnlySpan<byte> payload, bool marker) => marker;

    /// <inheritdoc />
    public bool IsKeyFrame(ReadOnlySpan<byte> firstPayload)
    {
        if (firstPayload.IsEmpty)
        {
            return false;
        }

        int type = firstPayload[0] & 0x1F;
        switch (type)
        {
            case 24:
                for (int offset = 1; offset + 3 <= firstPayload.Length;)
                {
                    int size = BinaryPrimitives.ReadUInt16BigEndian(firstPayload.Slice(offset));
                    int nalType = firstPayload[offset + 2] & 0x1F;
                    if (nalType is 5 or 7)
                    {
                        return true;
                    }

                    offset += 2 + size;
                }

                return false;
            case 28:
                return firstPayload.Length > 1 && (firstPayload[1] & 0x1F) == 5;
            default:
                return type is 5 or 7; // IDR slice or SPS
        }
    }

    /// <inheritdoc />
    public int MaxOutputLength(int payloadLength) => 2 * payloadLength + 4;

    /// <inheritdoc />
    public int Depacketize(ReadOnlySpan<byte> payload, Span<byte> destination)
    {
        if (payload.IsEmpty)
        {
            return -1;
        }

        int type = payload[0] & 0x1F;
        if (type is >= 1 and <= 23)
        {
            if (destination.Length < 4 + payload.Length)
            {
                return -1;
            }

            StartCode.CopyTo(destination);
            payload.CopyTo(destination.Slice(4));
            return 4 + payload.Length;
        }

        if (type == 24)
        {
            int written = 0;
            int offset = 1;
            while (offset < payload.Length)
            {
                if (offset + 2 > payload.Length)
                {
                    return -1;
                }

                int size = BinaryPrimitives.ReadUInt16BigEndian(payload.Slice(offset));
                offset += 2;
                if (size == 0 || offset + size > payload.Length || written + 4 + size > destination.Length)
                {
                    return -1;
                }

                StartCode.CopyTo(destination.Slice(written));
                payload.Slice(offset, size).CopyTo(destination.Slice(written + 4));
                written += 4 + size;
                offset += size;
            }

            return written;
        }

        if (type == 28)
        {
            if (payload.Length < 3)
            {
                return -1;
            }

            bool start = (payload[1] & 0x80) != 0;
            ReadOnlySpan<byte> fragment = payload.Slice(2);
            if (start)
            {
                if (destination.Length < 5 + fragment.Length)
                {
                    return -1;
                }

                // Rebuild the NAL unit header from the FU indicator (F, NRI) and the FU header (type).
                StartCode.CopyTo(destination);
                destination[4] = (byte)((payload[0] & 0xE0) | (payload[1] & 0x1F));
                fragment.CopyTo(destination.Slice(5));
                return 5 + fragment.Length;
            }

            if (destination.Length < fragment.Length)
            {
                return -1;
            }

            fragment.CopyTo(destination);
            return fragment.Length;
        }

        return -1; // STAP-B, MTAP, FU-B are not used in mode 1
    }
}
