using System.Net;
using System.Text;
using Transport.Ice.Stun;
using static Transport.Ice.Tests.Stun.Rfc5769Vectors;

namespace Transport.Ice.Tests.Stun;

/// <summary>RFC 5769 and RFC 8489 Appendix B vectors: decode, verify, and re-encode byte for byte.</summary>
public sealed class StunVectorTests
{
    [Fact]
    public void SampleRequestDecodesAndVerifies()
    {
        Assert.Equal(108, Request.Length);
        Assert.True(StunMessage.TryRead(Request, out var m, out var error), error.ToString());
        Assert.Equal(StunMessageType.BindingRequest, m.Type);
        Assert.True(m.TransactionId.SequenceEqual(TransactionId1));
        Assert.True(m.TryGetSoftware(out var software));
        Assert.Equal("STUN test client", Encoding.UTF8.GetString(software));
        Assert.True(m.TryGetPriority(out var priority));
        Assert.Equal(0x6e0001ffu, priority);
        Assert.True(m.TryGetIceControlled(out var tieBreaker));
        Assert.Equal(0x932ff9b151263b36UL, tieBreaker);
        Assert.False(m.TryGetIceControlling(out _));
        Assert.False(m.HasUseCandidate);
        Assert.True(m.TryGetUsername(out var username));
        Assert.Equal("evtj:h6vY", Encoding.UTF8.GetString(username));
        using var key = StunKey.ShortTerm(ShortTermPassword);
        Assert.True(m.CheckMessageIntegrity(key));
        Assert.True(m.CheckIntegrity(key));
        Assert.True(m.CheckFingerprint());
        using var wrong = StunKey.ShortTerm("VOkJxbRl1RmTxUk/WvJxBu");
        Assert.False(m.CheckMessageIntegrity(wrong));
        Assert.Equal(0, m.GetUnknownComprehensionRequired(stackalloc ushort[4]));
    }

    [Fact]
    public void SampleRequestReencodesByteForByte()
    {
        using var key = StunKey.ShortTerm(ShortTermPassword);
        var buffer = new byte[200];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, TransactionId1) { PaddingByte = 0x20 };
        w.AddString(StunAttributeType.Software, "STUN test client");
        w.AddUInt32(StunAttributeType.Priority, 0x6e0001ff);
        w.AddUInt64(StunAttributeType.IceControlled, 0x932ff9b151263b36);
        w.AddString(StunAttributeType.Username, "evtj:h6vY");
        w.AddMessageIntegrity(key);
        w.AddFingerprint();
        Assert.Equal(Convert.ToHexString(Request), Convert.ToHexString(buffer, 0, w.Length));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SampleResponsesDecodeVerifyAndReencode(bool ipv6)
    {
        var vector = ipv6 ? ResponseIPv6 : ResponseIPv4;
        var expected = new IPEndPoint(IPAddress.Parse(ipv6 ? "2001:db8:1234:5678:11:2233:4455:6677" : "192.0.2.1"), 32853);
        Assert.True(StunMessage.TryRead(vector, out var m, out var error), error.ToString());
        Assert.Equal(StunMessageType.BindingSuccess, m.Type);
        Assert.True(m.TryGetSoftware(out var software));
        Assert.Equal("test vector", Encoding.UTF8.GetString(software));
        Assert.True(m.TryGetXorMappedAddress(out var mapped));
        Assert.Equal(expected, mapped.ToEndPoint());
        Assert.True(mapped.Matches(expected));
        using var key = StunKey.ShortTerm(ShortTermPassword);
        Assert.True(m.CheckMessageIntegrity(key));
        Assert.True(m.CheckFingerprint());

        var buffer = new byte[200];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingSuccess, TransactionId1) { PaddingByte = 0x20 };
        w.AddString(StunAttributeType.Software, "test vector");
        w.AddXorAddress(StunAttributeType.XorMappedAddress, expected);
        w.AddMessageIntegrity(key);
        w.AddFingerprint();
        Assert.Equal(Convert.ToHexString(vector), Convert.ToHexString(buffer, 0, w.Length));
    }

    [Fact]
    public void SaslPrepTurnsTheRfc5769PasswordIntoTheMatrix()
    {
        Assert.Equal("TheMatrIX", SaslPrep.Prepare(LongTermPasswordRaw));
        Assert.Equal("plain", SaslPrep.Prepare("plain"));
        Assert.Equal("a b", SaslPrep.Prepare("a\u00A0b"));
        Assert.Throws<ArgumentException>(() => SaslPrep.Prepare("bad\u0007"));
    }

    [Fact]
    public void LongTermRequestDecodesVerifiesAndReencodes()
    {
        Assert.True(StunMessage.TryRead(RequestLongTerm, out var m, out var error), error.ToString());
        Assert.True(m.TryGetUsername(out var username));
        Assert.Equal(LongTermUsername, Encoding.UTF8.GetString(username));
        Assert.True(m.TryGetNonce(out var nonce));
        Assert.Equal(LongTermNonce, Encoding.ASCII.GetString(nonce));
        Assert.True(m.TryGetRealm(out var realm));
        Assert.Equal(Realm, Encoding.UTF8.GetString(realm));
        Assert.False(m.HasFingerprint);
        Assert.False(m.CheckFingerprint());

        // The key from the raw password (SASLprep applied) and from the prepared one are the same MD5.
        using var key = StunKey.LongTerm(LongTermUsername, Realm, LongTermPasswordRaw);
        using var prepared = StunKey.LongTerm(LongTermUsername, Realm, "TheMatrIX");
        Assert.True(key.Bytes.SequenceEqual(prepared.Bytes));
        Assert.True(m.CheckMessageIntegrity(key));
        using var wrong = StunKey.LongTerm(LongTermUsername, Realm, "TheMatrix");
        Assert.False(m.CheckMessageIntegrity(wrong));

        var buffer = new byte[200];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, TransactionId2);
        w.AddString(StunAttributeType.Username, LongTermUsername);
        w.AddString(StunAttributeType.Nonce, LongTermNonce);
        w.AddString(StunAttributeType.Realm, Realm);
        w.AddMessageIntegrity(key);
        Assert.Equal(Convert.ToHexString(RequestLongTerm), Convert.ToHexString(buffer, 0, w.Length));
    }

    [Fact]
    public void Rfc8489AppendixBRequestDecodesVerifiesAndReencodes()
    {
        Assert.True(StunMessage.TryRead(RequestSha256, out var m, out var error), error.ToString());
        Assert.True(m.HasMessageIntegritySha256);
        Assert.False(m.HasMessageIntegrity);
        Assert.True(m.TryGetUserHash(out var userHash));
        Assert.Equal(Convert.ToHexString(StunKey.ComputeUserHash(LongTermUsername, Realm)), Convert.ToHexString(userHash));
        Assert.True(m.TryGetNonce(out var nonce));
        Assert.Equal(Sha256Nonce, Encoding.ASCII.GetString(nonce));
        Assert.True(m.TryGetPasswordAlgorithm(out var algorithm, out var parameters));
        Assert.Equal(StunPasswordAlgorithm.Sha256, algorithm);
        Assert.Equal(0, parameters.Length);

        using var key = StunKey.LongTerm(LongTermUsername, Realm, LongTermPasswordRaw, StunPasswordAlgorithm.Sha256);
        Assert.True(m.CheckMessageIntegritySha256(key));
        Assert.True(m.CheckIntegrity(key));
        using var md5Key = StunKey.LongTerm(LongTermUsername, Realm, LongTermPasswordRaw);
        Assert.False(m.CheckMessageIntegritySha256(md5Key));

        var buffer = new byte[300];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, TransactionId2);
        w.Add(StunAttributeType.UserHash, StunKey.ComputeUserHash(LongTermUsername, Realm));
        w.AddString(StunAttributeType.Nonce, Sha256Nonce);
        w.AddString(StunAttributeType.Realm, Realm);
        w.AddPasswordAlgorithm(StunPasswordAlgorithm.Sha256);
        w.AddMessageIntegritySha256(key);
        Assert.Equal(Convert.ToHexString(RequestSha256), Convert.ToHexString(buffer, 0, w.Length));
    }

    [Fact]
    public void TruncatedMessageIntegritySha256VerifiesAndRejectsTampering()
    {
        using var key = StunKey.ShortTerm("secret");
        var buffer = new byte[200];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, TransactionId1);
        w.AddString(StunAttributeType.Username, "a:b");
        w.AddMessageIntegritySha256(key, 16);
        w.AddFingerprint();
        var bytes = buffer.AsSpan(0, w.Length).ToArray();
        Assert.True(StunMessage.TryRead(bytes, out var m));
        Assert.True(m.CheckMessageIntegritySha256(key));
        Assert.True(m.CheckFingerprint());
        bytes[25] ^= 1;
        Assert.True(StunMessage.TryRead(bytes, out var tampered));
        Assert.False(tampered.CheckMessageIntegritySha256(key));
        Assert.False(tampered.CheckFingerprint());
    }
}
