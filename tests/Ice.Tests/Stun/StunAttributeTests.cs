using System.Net;
using System.Text;
using Transport.Ice.Stun;

namespace Transport.Ice.Tests.Stun;

/// <summary>Every attribute written by the writer reads back through its typed accessor.</summary>
public sealed class StunAttributeTests
{
    private static readonly byte[] Tid = Rfc5769Vectors.TransactionId1;

    [Theory]
    [InlineData(0x0001, StunMethod.Binding, StunClass.Request)]
    [InlineData(0x0101, StunMethod.Binding, StunClass.SuccessResponse)]
    [InlineData(0x0111, StunMethod.Binding, StunClass.ErrorResponse)]
    [InlineData(0x0011, StunMethod.Binding, StunClass.Indication)]
    [InlineData(0x0003, StunMethod.Allocate, StunClass.Request)]
    [InlineData(0x0113, StunMethod.Allocate, StunClass.ErrorResponse)]
    [InlineData(0x0016, StunMethod.Send, StunClass.Indication)]
    [InlineData(0x0017, StunMethod.Data, StunClass.Indication)]
    [InlineData(0x0109, StunMethod.ChannelBind, StunClass.SuccessResponse)]
    public void MessageTypeInterleavesMethodAndClass(ushort wire, ushort method, StunClass @class)
    {
        Assert.Equal(wire, new StunMessageType(method, @class).Value);
        Assert.Equal(new StunMessageType(method, @class), StunMessageType.FromValue(wire));
    }

    [Fact]
    public void StunAndTurnAttributesRoundTrip()
    {
        var buffer = new byte[600];
        var relayed4 = StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Parse("198.51.100.7"), 49160));
        var relayed6 = StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Parse("2001:db8::9"), 49161));
        var peer = StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Parse("203.0.113.5"), 5000));
        var w = new StunMessageWriter(buffer, new StunMessageType(StunMethod.Allocate, StunClass.SuccessResponse), Tid);
        w.AddAddress(StunAttributeType.MappedAddress, peer);
        w.AddAddress(StunAttributeType.AlternateServer, relayed6);
        w.AddXorAddress(StunAttributeType.XorRelayedAddress, relayed4);
        w.AddXorAddress(StunAttributeType.XorRelayedAddress, relayed6);
        w.AddXorAddress(StunAttributeType.XorPeerAddress, peer);
        w.AddLifetime(600);
        w.AddChannelNumber(0x4001);
        w.Add(StunAttributeType.Data, [1, 2, 3]);
        w.AddRequestedAddressFamily(StunAddress.FamilyIPv6);
        w.AddAdditionalAddressFamily(StunAddress.FamilyIPv6);
        w.AddEvenPort(true);
        w.AddRequestedTransport(17);
        w.AddFlag(StunAttributeType.DontFragment);
        w.AddUInt64(StunAttributeType.ReservationToken, 0x0102030405060708);
        w.AddAddressErrorCode(StunAddress.FamilyIPv6, 440, "Address Family not Supported");
        w.AddIcmp(3, 4, 1400);
        w.AddErrorCode(438, "Stale Nonce");
        w.AddUnknownAttributes([0x7777, 0x0031]);
        w.AddPasswordAlgorithms([StunPasswordAlgorithm.Sha256, StunPasswordAlgorithm.Md5]);
        w.AddString(StunAttributeType.AlternateDomain, "turn.example");
        w.AddFlag(StunAttributeType.UseCandidate);
        w.AddUInt64(StunAttributeType.IceControlling, 42);
        w.AddFingerprint();

        Assert.True(StunMessage.TryRead(buffer.AsSpan(0, w.Length), out var m, out var error), error.ToString());
        Assert.True(m.CheckFingerprint());
        Assert.True(m.TryGetMappedAddress(out var mapped));
        Assert.Equal(peer, mapped);
        Assert.True(m.TryGetAlternateServer(out var alternate));
        Assert.Equal(relayed6, alternate);
        Assert.True(m.TryGetXorRelayedAddress(out var first));
        Assert.Equal(relayed4, first);
        Span<StunAddress> both = stackalloc StunAddress[4];
        Assert.Equal(2, m.GetXorRelayedAddresses(both));
        Assert.Equal(relayed6, both[1]);
        Assert.Equal("[2001:db8::9]:49161", both[1].ToString());
        Assert.True(m.TryGetXorPeerAddress(out var xorPeer));
        Assert.Equal(peer, xorPeer);
        Assert.True(m.TryGetLifetime(out var lifetime));
        Assert.Equal(600u, lifetime);
        Assert.True(m.TryGetChannelNumber(out var channel));
        Assert.Equal(0x4001, channel);
        Assert.True(m.TryGetData(out var data));
        Assert.Equal(new byte[] { 1, 2, 3 }, data.ToArray());
        Assert.True(m.TryGetRequestedAddressFamily(out var family));
        Assert.Equal(StunAddress.FamilyIPv6, family);
        Assert.True(m.TryGetAdditionalAddressFamily(out var additional));
        Assert.Equal(StunAddress.FamilyIPv6, additional);
        Assert.True(m.TryGetEvenPort(out var reserve));
        Assert.True(reserve);
        Assert.True(m.TryGetRequestedTransport(out var protocol));
        Assert.Equal(17, protocol);
        Assert.True(m.HasDontFragment);
        Assert.True(m.TryGetReservationToken(out var token));
        Assert.Equal(0x0102030405060708UL, token);
        Assert.True(m.TryGetAddressErrorCode(out var errFamily, out var errCode, out var errReason));
        Assert.Equal((StunAddress.FamilyIPv6, 440, "Address Family not Supported"), (errFamily, errCode, Encoding.UTF8.GetString(errReason)));
        Assert.True(m.TryGetIcmp(out var icmpType, out var icmpCode, out var icmpData));
        Assert.Equal((3, 4, 1400u), (icmpType, icmpCode, icmpData));
        Assert.True(m.TryGetErrorCode(out var code, out var reason));
        Assert.Equal(438, code);
        Assert.Equal("Stale Nonce", Encoding.UTF8.GetString(reason));
        Span<ushort> unknown = stackalloc ushort[4];
        Assert.Equal(2, m.GetUnknownAttributes(unknown));
        Assert.Equal(0x7777, unknown[0]);
        Span<StunPasswordAlgorithm> algorithms = stackalloc StunPasswordAlgorithm[4];
        Assert.Equal(2, m.GetPasswordAlgorithms(algorithms));
        Assert.Equal(StunPasswordAlgorithm.Md5, algorithms[1]);
        Assert.True(m.TryGetAlternateDomain(out var domain));
        Assert.Equal("turn.example", Encoding.ASCII.GetString(domain));
        Assert.True(m.HasUseCandidate);
        Assert.True(m.TryGetIceControlling(out var tie));
        Assert.Equal(42UL, tie);
        // Every comprehension-required attribute above is known.
        Assert.Equal(0, m.GetUnknownComprehensionRequired(unknown));
    }

    [Fact]
    public void UnknownComprehensionRequiredAttributesAreReportedAndAnsweredWith420()
    {
        var buffer = new byte[200];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, Tid);
        w.AddUInt32(0x7F01, 1);       // unknown, comprehension-required
        w.AddUInt32(0xC001, 1);       // unknown, comprehension-optional: ignored
        w.AddUInt32(0x0031, 2);       // unknown, comprehension-required
        w.AddUInt32(StunAttributeType.Priority, 3);
        Assert.True(StunMessage.TryRead(buffer.AsSpan(0, w.Length), out var request));
        Span<ushort> unknown = stackalloc ushort[8];
        var count = request.GetUnknownComprehensionRequired(unknown);
        Assert.Equal(2, count);
        Assert.Equal(new ushort[] { 0x7F01, 0x0031 }, unknown.Slice(0, count).ToArray());

        // The 420 response RFC 8489 section 6.3.1.1 asks for.
        var response = new byte[200];
        var r = new StunMessageWriter(response, StunMessageType.BindingError, request.TransactionId);
        r.AddErrorCode(StunErrorCode.UnknownAttribute, "Unknown Attribute");
        r.AddUnknownAttributes(unknown.Slice(0, count));
        r.AddFingerprint();
        Assert.True(StunMessage.TryRead(response.AsSpan(0, r.Length), out var m));
        Assert.True(m.TryGetErrorCode(out var code, out _));
        Assert.Equal(420, code);
        Span<ushort> listed = stackalloc ushort[8];
        Assert.Equal(2, m.GetUnknownAttributes(listed));
        Assert.Equal(0x0031, listed[1]);
    }

    [Fact]
    public void WriterRefusesATooSmallDestination()
    {
        var buffer = new byte[28];
        Assert.Throws<ArgumentException>(() =>
        {
            var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, Tid);
            w.AddUInt32(StunAttributeType.Priority, 1);
            w.AddUInt32(StunAttributeType.Priority, 2);
        });
    }

    [Fact]
    public void MalformedAddressValuesAreNotDecoded()
    {
        var buffer = new byte[100];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingSuccess, Tid);
        w.Add(StunAttributeType.XorMappedAddress, [0, 3, 0, 1, 1, 2, 3, 4]); // family 3
        w.Add(StunAttributeType.MappedAddress, [0, 1, 0, 1, 1, 2, 3]);       // short IPv4
        Assert.True(StunMessage.TryRead(buffer.AsSpan(0, w.Length), out var m));
        Assert.False(m.TryGetXorMappedAddress(out _));
        Assert.False(m.TryGetMappedAddress(out _));
    }

    [Fact]
    public void Crc32MatchesTheStandardCheckValue()
    {
        // The CRC-32 check value of "123456789" (ITU-T V.42 / zlib).
        Assert.Equal(0xCBF43926u, StunCrc32.Compute("123456789"u8));
        var data = new byte[1000];
        new Random(1).NextBytes(data);
        // Slice-by-8 and the bytewise tail agree at every length.
        for (var n = 0; n < 40; n++)
            Assert.Equal(BitwiseCrc(data.AsSpan(0, n)), StunCrc32.Compute(data.AsSpan(0, n)));
    }

    private static uint BitwiseCrc(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }
}
