using System.Buffers.Binary;
using System.Security.Cryptography;
using Transport.Dtls.Handshake;
using Transport.Dtls.Records;

namespace Transport.Dtls;

/// <summary>What <see cref="DtlsCookieResponder.Process"/> decided about a datagram.</summary>
public enum DtlsCookieVerdict
{
    /// <summary>Not an initial ClientHello we can judge (garbage, other content, fragmented hello): drop it.</summary>
    Drop,
    /// <summary>A ClientHello without a valid cookie: send the HelloVerifyRequest written to the destination.</summary>
    SendHelloVerifyRequest,
    /// <summary>A ClientHello with a valid cookie: now create the server connection and hand it the datagram.</summary>
    Verified,
}

/// <summary>
/// The stateless half of a DTLS server (RFC 6347 section 4.2.1): answers a ClientHello with a HelloVerifyRequest
/// whose cookie is an HMAC over the client address and the ClientHello, and recognises the returned cookie. It
/// keeps no per-client state and allocates nothing per call, so one instance per listening socket can face a
/// flood of spoofed ClientHellos; a <see cref="DtlsConnection"/> is created only for <see cref="DtlsCookieVerdict.Verified"/>.
/// </summary>
public sealed class DtlsCookieResponder
{
    /// <summary>Our cookie length (HMAC-SHA256 truncated; RFC 6347 allows up to 255 bytes).</summary>
    public const int CookieLength = 20;
    private const int MaxHelloLength = 4096;
    private readonly byte[] _secret;

    /// <summary>Creates a responder with a random secret.</summary>
    public DtlsCookieResponder() : this(RandomNumberGenerator.GetBytes(32)) { }

    /// <summary>Creates a responder with the given secret (servers behind one address can share it).</summary>
    public DtlsCookieResponder(ReadOnlySpan<byte> secret)
    {
        if (secret.Length < 16) throw new ArgumentException("Cookie secret must be at least 16 bytes.", nameof(secret));
        _secret = secret.ToArray();
    }

    /// <summary>
    /// Judges the first datagram from <paramref name="clientAddress"/> (any stable encoding of address and port).
    /// For <see cref="DtlsCookieVerdict.SendHelloVerifyRequest"/> the reply is written to <paramref name="destination"/>
    /// (at least 64 bytes).
    /// </summary>
    public DtlsCookieVerdict Process(ReadOnlySpan<byte> clientAddress, ReadOnlySpan<byte> datagram, Span<byte> destination, out int written)
    {
        written = 0;
        if (!DtlsRecordHeader.TryRead(datagram, out var record, out _) || record.Type != DtlsContentType.Handshake || record.Epoch != 0)
            return DtlsCookieVerdict.Drop;
        if (!HandshakeHeader.TryRead(record.Fragment, out var hs, out _) || hs.Type != DtlsHandshakeType.ClientHello
            || hs.FragmentOffset != 0 || hs.Fragment.Length != hs.MessageLength || hs.MessageLength > MaxHelloLength)
            return DtlsCookieVerdict.Drop;
        var body = hs.Fragment;
        // client_version(2) random(32) session_id<0..32> cookie<0..255> ...
        var reader = new WireReader(body);
        if (!reader.TryU16(out _) || !reader.TryBytes(32, out _) || !reader.TryVector8(out _)) return DtlsCookieVerdict.Drop;
        var cookieStart = body.Length - reader.Remaining;
        if (!reader.TryVector8(out var cookie)) return DtlsCookieVerdict.Drop;
        var cookieEnd = body.Length - reader.Remaining;

        Span<byte> expected = stackalloc byte[32];
        ComputeCookie(clientAddress, body[..cookieStart], body[cookieEnd..], expected);
        if (cookie.Length == CookieLength && CryptographicOperations.FixedTimeEquals(cookie, expected[..CookieLength]))
            return DtlsCookieVerdict.Verified;
        if (destination.Length < DtlsRecordHeader.Length + HandshakeHeader.Length + 3 + CookieLength) return DtlsCookieVerdict.Drop;

        // RFC 6347 4.2.1: HelloVerifyRequest with version DTLS 1.0 is accepted by all; the record sequence number
        // copies the ClientHello's so that no per-client counter is needed.
        const int bodyLength = 3 + CookieLength;
        var o = DtlsRecordHeader.Write(destination, DtlsContentType.Handshake, 0, record.Sequence, HandshakeHeader.Length + bodyLength,
            DtlsRecordHeader.Version10);
        // message_seq echoes the ClientHello's, so a client that needs a second cookie (secret rotated) still
        // accepts it as its next message.
        HandshakeHeader.Write(destination[o..], DtlsHandshakeType.HelloVerifyRequest, bodyLength, hs.MessageSequence, 0, bodyLength);
        o += HandshakeHeader.Length;
        BinaryPrimitives.WriteUInt16BigEndian(destination[o..], DtlsRecordHeader.Version10);
        destination[o + 2] = CookieLength;
        expected[..CookieLength].CopyTo(destination[(o + 3)..]);
        written = o + bodyLength;
        return DtlsCookieVerdict.SendHelloVerifyRequest;
    }

    private void ComputeCookie(ReadOnlySpan<byte> address, ReadOnlySpan<byte> before, ReadOnlySpan<byte> after, Span<byte> mac)
    {
        // HMAC(secret, address || ClientHello without its cookie): the second ClientHello differs only in the cookie.
        Span<byte> input = stackalloc byte[1 + 64 + MaxHelloLength];
        var a = Math.Min(address.Length, 64);
        input[0] = (byte)a;
        address[..a].CopyTo(input[1..]);
        var n = 1 + a;
        before.CopyTo(input[n..]);
        n += before.Length;
        after.CopyTo(input[n..]);
        n += after.Length;
        HMACSHA256.HashData(_secret, input[..n], mac);
    }
}
