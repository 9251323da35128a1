using System.Buffers.Binary;
using Transport.Ice.Stun;
using static Transport.Ice.Tests.Stun.Rfc5769Vectors;

namespace Transport.Ice.Tests.Stun;

/// <summary>Malformed input is refused with a reason, never with an exception.</summary>
public sealed class StunMalformedInputTests
{
    private static byte[] Copy(byte[] b) => (byte[])b.Clone();

    [Fact]
    public void TruncatedMessagesAreRejected()
    {
        for (var n = 0; n < Request.Length; n++)
        {
            Assert.False(StunMessage.TryRead(Request.AsSpan(0, n), out _, out var error));
            Assert.Equal(n < 20 ? StunParseError.Truncated : StunParseError.Truncated, error);
        }
    }

    [Fact]
    public void LengthNotMultipleOfFourIsRejected()
    {
        var b = Copy(ResponseIPv4);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), (ushort)(b.Length - 20 - 2));
        Assert.False(StunMessage.TryRead(b.AsSpan(0, b.Length - 2), out _, out var error));
        Assert.Equal(StunParseError.BadLength, error);
    }

    [Fact]
    public void TrailingBytesAfterTheMessageAreRejected()
    {
        var b = new byte[ResponseIPv4.Length + 4];
        ResponseIPv4.CopyTo(b, 0);
        Assert.False(StunMessage.TryRead(b, out _, out var error));
        Assert.Equal(StunParseError.BadLength, error);
    }

    [Fact]
    public void MissingPaddingOfTheLastAttributeIsRejected()
    {
        // A 9-byte USERNAME is the last attribute, its padding cut off and the header length adjusted to 13 (not a multiple of 4).
        var b = Hex("00 01 00 0d 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae 00 06 00 09 65 76 74 6a 3a 68 36 76 59");
        Assert.False(StunMessage.TryRead(b, out _, out var error));
        Assert.Equal(StunParseError.BadLength, error);
    }

    [Fact]
    public void AttributeOverrunIsRejected()
    {
        var b = Copy(ResponseIPv4);
        // SOFTWARE claims 200 bytes.
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(22), 200);
        Assert.False(StunMessage.TryRead(b, out _, out var error));
        Assert.Equal(StunParseError.AttributeOverrun, error);

        // A header of an attribute cut in half at the end.
        var c = Hex("00 01 00 04 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae 00 06 00 09");
        Assert.False(StunMessage.TryRead(c, out _, out error));
        Assert.Equal(StunParseError.AttributeOverrun, error);
    }

    [Fact]
    public void WrongMagicCookieIsRejected()
    {
        var b = Copy(Request);
        b[4] ^= 0x01;
        Assert.False(StunMessage.TryRead(b, out _, out var error));
        Assert.Equal(StunParseError.BadMagicCookie, error);
    }

    [Fact]
    public void FirstTwoBitsSetIsNotStun()
    {
        var b = Copy(Request);
        b[0] |= 0x80;
        Assert.False(StunMessage.TryRead(b, out _, out var error));
        Assert.Equal(StunParseError.NotStun, error);
    }

    [Fact]
    public void BadFingerprintFailsTheCheck()
    {
        var b = Copy(Request);
        b[^1] ^= 0x01;
        Assert.True(StunMessage.TryRead(b, out var m));
        Assert.False(m.CheckFingerprint());
        using var key = StunKey.ShortTerm(ShortTermPassword);
        Assert.True(m.CheckMessageIntegrity(key)); // the fingerprint is outside the HMAC
    }

    [Fact]
    public void BadIntegrityFailsTheCheck()
    {
        using var key = StunKey.ShortTerm(ShortTermPassword);
        var b = Copy(Request);
        b[24] ^= 0x01; // a SOFTWARE byte
        Assert.True(StunMessage.TryRead(b, out var m));
        Assert.False(m.CheckMessageIntegrity(key));
        var c = Copy(Request);
        c[90] ^= 0x01; // a byte of the HMAC itself
        Assert.True(StunMessage.TryRead(c, out var m2));
        Assert.False(m2.CheckMessageIntegrity(key));
    }

    [Fact]
    public void AttributeAfterFingerprintIsRejected()
    {
        var buffer = new byte[100];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, TransactionId1);
        w.AddFingerprint();
        w.AddUInt32(StunAttributeType.Priority, 1);
        Assert.False(StunMessage.TryRead(buffer.AsSpan(0, w.Length), out _, out var error));
        Assert.Equal(StunParseError.AttributeAfterFingerprint, error);
    }

    [Fact]
    public void WrongSizedSecurityAttributesAreRejected()
    {
        var buffer = new byte[100];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, TransactionId1);
        w.Add(StunAttributeType.MessageIntegrity, new byte[16]);
        Assert.False(StunMessage.TryRead(buffer.AsSpan(0, w.Length), out _, out var error));
        Assert.Equal(StunParseError.BadSecurityAttribute, error);

        w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, TransactionId1);
        w.Add(StunAttributeType.Fingerprint, new byte[8]);
        Assert.False(StunMessage.TryRead(buffer.AsSpan(0, w.Length), out _, out error));
        Assert.Equal(StunParseError.BadSecurityAttribute, error);

        w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, TransactionId1);
        w.Add(StunAttributeType.MessageIntegritySha256, new byte[12]);
        Assert.False(StunMessage.TryRead(buffer.AsSpan(0, w.Length), out _, out error));
        Assert.Equal(StunParseError.BadSecurityAttribute, error);
    }

    [Fact]
    public void AttributesAfterMessageIntegrityAreIgnored()
    {
        using var key = StunKey.ShortTerm("pw");
        var buffer = new byte[100];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, TransactionId1);
        w.AddString(StunAttributeType.Username, "u:v");
        w.AddMessageIntegrity(key);
        w.AddUInt32(StunAttributeType.Priority, 7); // RFC 8489 section 14.5: must be ignored
        w.AddFingerprint();
        Assert.True(StunMessage.TryRead(buffer.AsSpan(0, w.Length), out var m));
        Assert.False(m.TryGetPriority(out _));
        Assert.True(m.TryGetUsername(out _));
        Assert.True(m.CheckMessageIntegrity(key));
        Assert.True(m.CheckFingerprint());
    }

    [Fact]
    public void EveryTruncationAndBitFlipOfEveryVectorIsHandledWithoutException()
    {
        using var key = StunKey.ShortTerm(ShortTermPassword);
        var random = new Random(5769);
        foreach (var vector in new[] { Request, ResponseIPv4, ResponseIPv6, RequestLongTerm, RequestSha256 })
        {
            for (var n = 0; n <= vector.Length; n++) Exercise(vector.AsSpan(0, n), key);
            for (var i = 0; i < 2000; i++)
            {
                var b = Copy(vector);
                var flips = 1 + random.Next(4);
                for (var f = 0; f < flips; f++) b[random.Next(b.Length)] ^= (byte)(1 << random.Next(8));
                Exercise(b, key);
            }
        }
        for (var i = 0; i < 2000; i++)
        {
            var b = new byte[random.Next(0, 120)];
            random.NextBytes(b);
            if (b.Length >= 8) { b[0] &= 0x3F; BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), StunHeader.MagicCookie); }
            if (b.Length >= 4) BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), (ushort)Math.Max(0, (b.Length - 20) & ~3));
            Exercise(b, key);
        }
    }

    private static void Exercise(ReadOnlySpan<byte> data, StunKey key)
    {
        if (!StunMessage.TryRead(data, out var m)) return;
        m.CheckFingerprint();
        m.CheckIntegrity(key);
        m.CheckMessageIntegrity(key);
        m.TryGetXorMappedAddress(out _);
        m.TryGetMappedAddress(out _);
        m.TryGetErrorCode(out _, out _);
        m.GetUnknownAttributes(stackalloc ushort[4]);
        m.GetPasswordAlgorithms(stackalloc StunPasswordAlgorithm[4]);
        m.TryGetPasswordAlgorithm(out _, out _);
        m.GetUnknownComprehensionRequired(stackalloc ushort[4]);
        m.GetXorPeerAddresses(stackalloc StunAddress[2]);
        m.TryGetIcmp(out _, out _, out _);
        m.TryGetAddressErrorCode(out _, out _, out _);
        foreach (var a in m.Attributes) _ = a.Value.Length;
    }
}
