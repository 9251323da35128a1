using System.Net;
using Transport.Ice.Stun;
using Transport.Ice.Turn;

namespace Transport.Ice.Tests.Turn;

/// <summary>The data path (Send/Data indications, ChannelData) and the dropping of bad or unauthenticated input.</summary>
public sealed class TurnClientDataTests
{
    private static readonly StunAddress Peer = StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Parse("203.0.113.5"), 7000));

    [Fact]
    public void SendsIndicationsBeforeTheChannelIsBoundAndChannelDataAfter()
    {
        using var h = new TurnHarness();
        h.Start();
        h.Client.CreatePermission(Peer, h.Now);
        h.Pump();
        var buffer = new byte[TurnClient.GetMaxWrappedSize(5)];
        var n = h.Client.WrapSend(Peer, "hello"u8, buffer);
        Assert.Null(h.Server.Handle(buffer.AsSpan(0, n), h.Now));
        Assert.Equal(20 + 12 + 12 + 8, n); // XOR-PEER-ADDRESS (IPv4) 12, DATA 4+8, FINGERPRINT 8

        var channel = h.Client.BindChannel(Peer, h.Now);
        h.Pump();
        n = h.Client.WrapSend(Peer, "hello"u8, buffer);
        Assert.Equal(ChannelData.HeaderSize + 5, n); // unpadded over UDP
        h.Server.Handle(buffer.AsSpan(0, n), h.Now);

        Assert.Collection(h.Server.Sent,
            s => { Assert.False(s.ChannelData); Assert.Equal(Peer, s.Peer); Assert.Equal("hello"u8.ToArray(), s.Data); },
            s => { Assert.True(s.ChannelData); Assert.Equal(Peer, s.Peer); Assert.Equal("hello"u8.ToArray(), s.Data); });
        Assert.Equal(0x4000, channel);
    }

    [Fact]
    public void PadsChannelDataOverTcp()
    {
        using var h = new TurnHarness(o => o with { Transport = TurnTransport.Tcp });
        h.Start();
        h.Client.BindChannel(Peer, h.Now);
        h.Pump();
        var buffer = new byte[64];
        Assert.Equal(12, h.Client.WrapSend(Peer, "hello"u8, buffer));
        Assert.Equal(new byte[] { 0x40, 0x00, 0x00, 0x05, (byte)'h', (byte)'e', (byte)'l', (byte)'l', (byte)'o', 0, 0, 0 }, buffer[..12]);
    }

    [Fact]
    public void DeliversDataIndicationsAndChannelDataWithThePeerAddress()
    {
        using var h = new TurnHarness();
        h.Start();
        h.Client.BindChannel(Peer, h.Now);
        h.Pump();
        h.Receive(FakeTurnServer.DataIndication(Peer, "one"u8));
        var channelData = new byte[8];
        ChannelData.Write(channelData, 0x4000, "two"u8, padded: true);
        h.Receive(channelData);
        Assert.Collection(h.EventsOf<TurnPeerData>(),
            d => { Assert.Equal(Peer, d.Peer); Assert.Equal("one"u8.ToArray(), d.Data); Assert.Equal(0, d.Channel); },
            d => { Assert.Equal(Peer, d.Peer); Assert.Equal("two"u8.ToArray(), d.Data); Assert.Equal(0x4000, d.Channel); });
    }

    [Fact]
    public void DropsADataIndicationFromAnIpWithoutPermission()
    {
        using var h = new TurnHarness();
        h.Start();
        h.Client.CreatePermission(Peer, h.Now);
        h.Pump();
        var stranger = StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Parse("198.51.100.99"), 7000));
        h.Receive(FakeTurnServer.DataIndication(stranger, "spoofed"u8));
        var samePeerOtherPort = StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Parse("203.0.113.5"), 9999));
        h.Receive(FakeTurnServer.DataIndication(samePeerOtherPort, "fine"u8)); // permissions are per IP
        Assert.Equal(1, h.Client.Dropped.NoPermission);
        Assert.Equal("fine"u8.ToArray(), Assert.Single(h.EventsOf<TurnPeerData>()).Data);
    }

    [Fact]
    public void TryReceiveHandsOutThePayloadWithoutCopying()
    {
        using var h = new TurnHarness();
        h.Start();
        h.Client.BindChannel(Peer, h.Now);
        h.Pump();
        var datagram = new byte[7];
        ChannelData.Write(datagram, 0x4000, "abc"u8, padded: false);
        Assert.True(h.Client.TryReceive(datagram, FakeTurnServer.Address, h.Now, out var peer, out var payload, out var channel));
        Assert.Equal(Peer, peer);
        Assert.Equal(0x4000, channel);
        Assert.True(payload.Overlaps(datagram));
        Assert.Equal("abc"u8.ToArray(), payload.ToArray());
        Assert.False(h.Client.TryPollEvent(out _));
    }

    [Fact]
    public void DropsAndCountsMalformedForeignAndUnboundInput()
    {
        using var h = new TurnHarness();
        h.Start();
        var before = h.Events.Count;
        h.Receive([0x00, 0x01, 0x00]);                                        // truncated STUN
        h.Receive([0xFF, 0xFF, 0xFF, 0xFF]);                                  // neither STUN nor ChannelData
        h.Receive([0x40, 0x01, 0x00, 0x10, 1, 2]);                            // ChannelData shorter than its length
        h.Receive([0x40, 0x05, 0x00, 0x01, 9]);                               // channel not bound
        h.Client.HandleDatagram(FakeTurnServer.DataIndication(Peer, "x"u8), Peer, h.Now); // not from the server
        var tampered = FakeTurnServer.DataIndication(Peer, "y"u8);
        tampered[^1] ^= 1;                                                    // FINGERPRINT broken
        h.Receive(tampered);
        Assert.Equal(3, h.Client.Dropped.Malformed);
        Assert.Equal(1, h.Client.Dropped.UnknownChannel);
        Assert.Equal(1, h.Client.Dropped.NotFromServer);
        Assert.Equal(1, h.Client.Dropped.BadFingerprint);
        Assert.Equal(6, h.Client.Dropped.Total);
        Assert.Equal(before, h.Events.Count);
        Assert.Equal(TurnClientState.Allocated, h.Client.State);
    }

    [Fact]
    public void DropsAResponseWithAWrongIntegrityAndWaitsForTheRealOne()
    {
        using var h = new TurnHarness();
        h.Client.Start(h.Now);
        var buffer = new byte[1500];
        // Let the 401 round trip happen, then intercept the authenticated Allocate.
        Assert.True(h.Client.TryPollTransmit(buffer, out var n, out _));
        h.Client.HandleDatagram(h.Server.Handle(buffer.AsSpan(0, n), h.Now)!, FakeTurnServer.Address, h.Now);
        Assert.True(h.Client.TryPollTransmit(buffer, out n, out _));
        var answer = h.Server.Handle(buffer.AsSpan(0, n), h.Now)!;

        var forged = (byte[])answer.Clone();
        forged[^13] ^= 0xFF; // inside MESSAGE-INTEGRITY (before the 8-byte FINGERPRINT); fix FINGERPRINT so only integrity fails
        FixFingerprint(forged);
        h.Client.HandleDatagram(forged, FakeTurnServer.Address, h.Now);
        Assert.Equal(1, h.Client.Dropped.Unauthenticated);
        Assert.Equal(TurnClientState.Allocating, h.Client.State);

        var unknown = (byte[])answer.Clone();
        unknown[8] ^= 0xFF; // another transaction ID
        FixFingerprint(unknown);
        h.Client.HandleDatagram(unknown, FakeTurnServer.Address, h.Now);
        Assert.Equal(1, h.Client.Dropped.UnknownTransaction);

        h.Client.HandleDatagram(answer, FakeTurnServer.Address, h.Now);
        Assert.Equal(TurnClientState.Allocated, h.Client.State);
        h.Client.HandleDatagram(answer, FakeTurnServer.Address, h.Now); // a duplicate
        Assert.Equal(2, h.Client.Dropped.UnknownTransaction);
    }

    private static void FixFingerprint(byte[] message)
    {
        var crc = StunCrc32.Compute(message.AsSpan(0, message.Length - 8)) ^ StunHeader.FingerprintXor;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(message.Length - 4), crc);
    }
}
