using System.Buffers;
using System.Buffers.Binary;

namespace Transport.Ice;

/// <summary>Which local and remote candidates make a pair (RFC 8445 section 6.1.2.2 with RFC 6544 section 6.2).</summary>
public static class IceTcpPairing
{
    /// <summary>
    /// Same transport and family, and for TCP the directions that fit: our active with their passive (or simultaneous
    /// open with simultaneous open), our passive with their active. This agent has only passive TCP candidates, so
    /// a TCP pair is always our passive candidate and the peer's end of a connection it opened.
    /// </summary>
    public static bool MayPair(IceCandidate local, IceCandidate remote)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(remote);
        if (local.Protocol != remote.Protocol || local.Address.AddressFamily != remote.Address.AddressFamily) return false;
        if (!local.IsTcp) return true;
        return (local.TcpType, remote.TcpType) switch
        {
            (IceTcpType.Active, IceTcpType.Passive) => true,
            (IceTcpType.Passive, IceTcpType.Active) => true,
            (IceTcpType.SimultaneousOpen, IceTcpType.SimultaneousOpen) => true,
            _ => false,
        };
    }
}

/// <summary>What <see cref="IceTcpFraming"/> found at the start of the buffered bytes.</summary>
public enum IceTcpFrameStatus
{
    /// <summary>A whole frame is buffered.</summary>
    Complete,
    /// <summary>More bytes are needed.</summary>
    NeedMoreData,
    /// <summary>A length of zero, or above the limit: the stream is unusable and the connection is to be closed.</summary>
    Invalid,
}

/// <summary>
/// Sans-IO framing of an ICE-TCP connection (RFC 6544 section 3 with RFC 4571): every STUN message, DTLS record
/// and SRTP packet goes behind a 2-byte big-endian length. The I/O (a socket read with System.IO.Pipelines) lives
/// in the driver; this type only looks at bytes.
/// </summary>
public static class IceTcpFraming
{
    /// <summary>The length prefix.</summary>
    public const int PrefixSize = 2;

    /// <summary>The largest frame RFC 4571 can carry.</summary>
    public const int MaxFrameSize = ushort.MaxValue;

    /// <summary>
    /// Takes one frame off the front of <paramref name="buffer"/>: on <see cref="IceTcpFrameStatus.Complete"/>
    /// <paramref name="frame"/> is the payload (without the prefix) and <paramref name="buffer"/> starts after it;
    /// otherwise both stay as they were. A length of zero or above <paramref name="maxFrameSize"/> is
    /// <see cref="IceTcpFrameStatus.Invalid"/> at once (no waiting for bytes that would only be thrown away).
    /// </summary>
    public static IceTcpFrameStatus TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxFrameSize, out ReadOnlySequence<byte> frame)
    {
        frame = default;
        if (buffer.Length < PrefixSize) return IceTcpFrameStatus.NeedMoreData;
        Span<byte> prefix = stackalloc byte[PrefixSize];
        buffer.Slice(0, PrefixSize).CopyTo(prefix);
        int length = BinaryPrimitives.ReadUInt16BigEndian(prefix);
        if (length == 0 || length > maxFrameSize) return IceTcpFrameStatus.Invalid;
        if (buffer.Length < PrefixSize + length) return IceTcpFrameStatus.NeedMoreData;
        frame = buffer.Slice(PrefixSize, length);
        buffer = buffer.Slice(PrefixSize + length);
        return IceTcpFrameStatus.Complete;
    }

    /// <summary>Writes the prefix of a <paramref name="length"/>-byte frame (1 to 65535).</summary>
    public static void WritePrefix(Span<byte> destination, int length)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, MaxFrameSize);
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)length);
    }
}
