using System.Buffers.Binary;
using Transport.Ice.Stun;

namespace Transport.Ice;

/// <summary>
/// The STUN attributes of SPED (draft-hancke-webrtc-sped; Chromium's WebRTC-IceHandshakeDtls): DTLS records carried in
/// ICE Binding requests and responses. Both are comprehension-optional, so a peer without SPED ignores them.
/// </summary>
public static class SpedAttributes
{
    /// <summary>META-DTLS-IN-STUN: one DTLS datagram (one or more records) as it would go on the wire; may be empty.</summary>
    public const ushort DtlsInStun = 0xC070;

    /// <summary>META-DTLS-IN-STUN-ACK: the CRC-32s (big-endian, 4 bytes each) of the DTLS datagrams received; may be empty.</summary>
    public const ushort DtlsInStunAck = 0xC071;

    /// <summary>At most this many CRC-32s in an ACK (the most recent distinct ones), as Chromium.</summary>
    public const int MaxAcks = 4;

    /// <summary>
    /// The largest STUN body (without the 20-byte header) the SPED attributes may grow a Binding message to: 1200
    /// bytes (the usual path MTU) less MESSAGE-INTEGRITY (24) and FINGERPRINT (8), which are added after them.
    /// </summary>
    public const int MaxStunBody = 1200 - 24 - 8;

    /// <summary>The DTLS MTU while SPED may carry the handshake, so a datagram fits in a Binding message (Chromium uses 900).</summary>
    public const int DtlsMtu = 900;

    /// <summary>The CRC-32 (ISO 3309, as zlib) of a DTLS datagram: how an ACK names it.</summary>
    public static uint Crc(ReadOnlySpan<byte> datagram) => StunCrc32.Compute(datagram);

    /// <summary>True when <paramref name="datagram"/> looks like DTLS (RFC 7983: first byte 20..63, at least a 13-byte record header).</summary>
    public static bool LooksLikeDtls(ReadOnlySpan<byte> datagram) => datagram.Length >= 13 && datagram[0] is > 19 and < 64;

    /// <summary>Writes an ACK value: each CRC-32 big-endian.</summary>
    public static void WriteAck(ReadOnlySpan<uint> crcs, Span<byte> destination)
    {
        for (var i = 0; i < crcs.Length; i++) BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4 * i), crcs[i]);
    }

    /// <summary>
    /// Reads an ACK value into <paramref name="crcs"/>; false (malformed, the draft says discard it) when its length is
    /// not a multiple of four or exceeds <see cref="MaxAcks"/> CRC-32s (16 bytes). Entries past the destination's length
    /// are ignored.
    /// </summary>
    public static bool TryReadAck(ReadOnlySpan<byte> value, Span<uint> crcs, out int count)
    {
        count = 0;
        if (value.Length % 4 != 0 || value.Length > 4 * MaxAcks) return false;
        var n = Math.Min(value.Length / 4, crcs.Length);
        for (var i = 0; i < n; i++) crcs[i] = BinaryPrimitives.ReadUInt32BigEndian(value.Slice(4 * i));
        count = n;
        return true;
    }

    /// <summary>Whether an ice-options token names SPED, in any spelling in use (<c>sped</c>, <c>goog-sped-v1</c>, <c>googspedv1</c>).</summary>
    public static bool IsIceOption(string token) =>
        token is "sped" or "goog-sped-v1" or "googspedv1";

    /// <summary>
    /// The ice-options tokens we offer for SPED: every spelling in use (Chromium 156 offers <c>sped googspedv1</c>, later libwebrtc <c>goog-sped-v1</c>).
    /// </summary>
    public static readonly IReadOnlyList<string> IceOptions = ["sped", "goog-sped-v1", "googspedv1"];
}
