using Transport.Ice.Stun;

namespace Transport.Ice.Tests.Stun;

/// <summary>
/// SPED's STUN attributes and state machine (draft-hancke-webrtc-sped, as Chromium's DtlsStunPiggybackController):
/// META-DTLS-IN-STUN (0xC070) and META-DTLS-IN-STUN-ACK (0xC071, CRC-32s big-endian), the size cap, the fall back,
/// and bad attributes dropped and counted.
/// </summary>
public sealed class SpedTests
{
    private static readonly byte[] Tid = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

    private static byte[] Dtls(int length, byte fill)
    {
        var d = new byte[length];
        d[0] = 22;   // handshake record
        d[1] = 0xFE;
        d[2] = 0xFD;
        for (var i = 13; i < length; i++) d[i] = fill;
        return d;
    }

    // A Binding request written by `from`, read back as the peer receives it.
    private static byte[] Message(SpedController from, out uint? crc, int filler = 0)
    {
        var buffer = new byte[1500];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, Tid);
        if (filler > 0) w.AddEmpty(StunAttributeType.Software, filler);
        crc = from.Write(ref w, out _);
        w.AddFingerprint();
        return buffer.AsSpan(0, w.Length).ToArray();
    }

    private static void Deliver(byte[] message, SpedController to, uint? requestCrc = null)
    {
        Assert.True(StunMessage.TryRead(message, out var m));
        to.OnMessage(m, requestCrc);
    }

    [Fact]
    public void TheAttributeNumbersAndTheAckFormatAreChromiums()
    {
        Assert.Equal(0xC070, SpedAttributes.DtlsInStun);
        Assert.Equal(0xC071, SpedAttributes.DtlsInStunAck);
        Assert.False(StunAttributeType.IsComprehensionRequired(SpedAttributes.DtlsInStun));
        // CRC-32 as zlib: the check value of "123456789".
        Assert.Equal(0xCBF43926u, SpedAttributes.Crc("123456789"u8));
        Span<byte> value = stackalloc byte[8];
        SpedAttributes.WriteAck([0x01020304u, 0xCBF43926u], value);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 0xCB, 0xF4, 0x39, 0x26 }, value.ToArray());
        Span<uint> read = stackalloc uint[4];
        Assert.True(SpedAttributes.TryReadAck(value, read, out var n));
        Assert.Equal(2, n);
        Assert.Equal(0xCBF43926u, read[1]);
        Assert.False(SpedAttributes.TryReadAck(value[..5], read, out _));
        Assert.False(SpedAttributes.TryReadAck(new byte[20], read, out _));   // more than four CRC-32s
        Assert.True(SpedAttributes.TryReadAck(new byte[16], read, out var four));
        Assert.Equal(4, four);
        Assert.True(SpedAttributes.IsIceOption("sped") && SpedAttributes.IsIceOption("goog-sped-v1") && SpedAttributes.IsIceOption("googspedv1"));
        Assert.False(SpedAttributes.IsIceOption("trickle"));
    }

    [Fact]
    public void ACarriedDatagramReachesThePeerIsAcknowledgedByItsCrcAndLeavesTheFlight()
    {
        var client = new SpedController();
        var received = new List<byte[]>();
        var server = new SpedController { DatagramReceived = d => received.Add(d.ToArray()) };
        var hello = Dtls(300, 0xAB);
        client.CaptureFlight([hello]);

        var request = Message(client, out var crc);
        Assert.Equal(SpedAttributes.Crc(hello), crc);
        Deliver(request, server);
        Assert.Equal(SpedState.Confirmed, server.State);
        Assert.Equal(hello, Assert.Single(received));
        Assert.Equal(1, server.Counters.DatagramsReceived);

        // The server's answer carries its flight and the ACK naming the ClientHello's CRC.
        server.CaptureFlight([Dtls(500, 0xCD)]);
        var response = Message(server, out _);
        Assert.True(StunMessage.TryRead(response, out var m));
        Assert.True(m.TryGetAttribute(SpedAttributes.DtlsInStunAck, out var ack));
        Assert.Equal(4, ack.Length);
        Deliver(response, client, crc);
        Assert.Equal(SpedState.Confirmed, client.State);
        Assert.Empty(client.PendingDatagrams);
        Assert.Equal(1, client.Counters.DatagramsAcknowledged);
    }

    [Fact]
    public void AFlightOfSeveralDatagramsGoesOneAMessageUncarriedFirst()
    {
        var sped = new SpedController();
        byte[][] flight = [Dtls(700, 1), Dtls(700, 2), Dtls(700, 3)];
        sped.CaptureFlight(flight);
        Assert.Equal(3, sped.Uncarried);
        var crcs = new List<uint?>();
        for (var i = 0; i < 4; i++) { Message(sped, out var c); crcs.Add(c); }
        Assert.Equal(flight.Concat([flight[0]]).Select(d => (uint?)SpedAttributes.Crc(d)), crcs);
        Assert.Equal(0, sped.Uncarried);
    }

    [Fact]
    public void ADatagramOverTheSizeCapWaitsForARoomierMessage()
    {
        var sped = new SpedController();
        sped.CaptureFlight([Dtls(900, 1)]);
        // A message already 400 bytes long has no room for 900 more under the 1168-byte cap.
        Message(sped, out var crc, filler: 400);
        Assert.Null(crc);
        Assert.Equal(1, sped.Counters.TooLarge);
        Message(sped, out crc);
        Assert.NotNull(crc);
    }

    [Fact]
    public void APeerWithoutSpedTurnsItOffAndTheFlightIsKeptForTheNormalPath()
    {
        var sped = new SpedController();
        var hello = Dtls(200, 9);
        sped.CaptureFlight([hello]);
        Message(sped, out _);
        var plain = new byte[100];
        var w = new StunMessageWriter(plain, StunMessageType.BindingSuccess, Tid);
        w.AddFingerprint();
        Deliver(plain[..w.Length], sped, SpedAttributes.Crc(hello));
        Assert.Equal(SpedState.Off, sped.State);
        Assert.False(sped.IsActive);
        Assert.Equal(hello, Assert.Single(sped.PendingDatagrams));
        // Off writes nothing.
        Message(sped, out var crc);
        Assert.Null(crc);
    }

    [Fact]
    public void BadAttributesAreDroppedAndCounted()
    {
        var received = 0;
        var sped = new SpedController { DatagramReceived = _ => received++ };
        var buffer = new byte[200];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, Tid);
        w.Add(SpedAttributes.DtlsInStunAck, [1, 2, 3, 4, 5]);         // not a multiple of four
        w.Add(SpedAttributes.DtlsInStun, [0x17, 1, 2]);               // too short to be DTLS
        w.AddFingerprint();
        Deliver(buffer[..w.Length], sped);
        Assert.Equal(1, sped.Counters.MalformedAcks);
        Assert.Equal(1, sped.Counters.NotDtls);
        Assert.Equal(0, received);

        var w2 = new StunMessageWriter(buffer, StunMessageType.BindingRequest, Tid);
        w2.Add(SpedAttributes.DtlsInStun, "not dtls at all, no"u8);  // first byte 'n' is outside 20..63
        w2.AddFingerprint();
        Deliver(buffer[..w2.Length], sped);
        Assert.Equal(2, sped.Counters.NotDtls);
        Assert.Equal(0, received);
    }

    [Fact]
    public void TheFlightAndTheAckListAreBounded()
    {
        var sped = new SpedController();
        sped.CaptureFlight(Enumerable.Range(0, 10).Select(i => Dtls(100, (byte)i)).ToList());
        Assert.Equal(SpedController.MaxPendingDatagrams, sped.PendingDatagrams.Count);
        Assert.Equal(2, sped.Counters.PendingOverflow);
        for (var i = 0; i < 6; i++) sped.ReportDtlsDatagram(Dtls(50, (byte)(100 + i)));
        var message = Message(sped, out _);
        Assert.True(StunMessage.TryRead(message, out var m));
        Assert.True(m.TryGetAttribute(SpedAttributes.DtlsInStunAck, out var ack));
        Assert.Equal(4 * SpedAttributes.MaxAcks, ack.Length);
    }

    [Fact]
    public void PendingCompletesOnAnAckWithoutDataOrWhenThePeerStopsCarrying()
    {
        foreach (var stopsCarrying in new[] { false, true })
        {
            var a = new SpedController();
            var b = new SpedController();
            var last = Dtls(100, 7);
            a.CaptureFlight([last]);
            Deliver(Message(a, out var crc), b);   // b confirmed, acknowledges `last`
            a.OnHandshakeComplete(isClient: false, isDtls13: false);
            Assert.Equal(SpedState.Pending, a.State);
            if (stopsCarrying)
            {
                var plain = new byte[100];
                var w = new StunMessageWriter(plain, StunMessageType.BindingRequest, Tid);
                w.AddFingerprint();
                Deliver(plain[..w.Length], a);
            }
            else
            {
                b.OnHandshakeComplete(isClient: true, isDtls13: false);
                Deliver(Message(b, out _), a, crc);
            }
            Assert.Equal(SpedState.Complete, a.State);
            Assert.True(a.CompletedBySped);
        }
    }

    [Theory]
    [InlineData(true, false, false)]    // DTLS 1.2 client: the server's Finished ended it, nothing more to carry
    [InlineData(false, false, true)]    // DTLS 1.2 server: keeps its CCS/Finished until acknowledged
    [InlineData(true, true, true)]      // DTLS 1.3 client: keeps its Finished until acknowledged
    [InlineData(false, true, false)]    // DTLS 1.3 server: the client's Finished ended it
    public void OnlyTheSideThatSentTheLastFlightKeepsItAfterCompletion(bool isClient, bool isDtls13, bool keeps)
    {
        var a = new SpedController();
        var b = new SpedController();
        a.CaptureFlight([Dtls(100, 9)]);
        Deliver(Message(b, out _), a);   // a confirmed (b carries an ACK attribute)
        Assert.Equal(SpedState.Confirmed, a.State);
        a.OnHandshakeComplete(isClient, isDtls13);
        Assert.Equal(SpedState.Pending, a.State);
        Assert.Equal(keeps ? 1 : 0, a.PendingDatagrams.Count);
        Assert.True(StunMessage.TryRead(Message(a, out var crc), out var m));
        Assert.Equal(keeps, crc is not null);
        Assert.Equal(keeps, m.TryGetAttribute(SpedAttributes.DtlsInStun, out _));
        Assert.True(m.TryGetAttribute(SpedAttributes.DtlsInStunAck, out _));   // still acknowledges
    }

    [Fact]
    public void ForALitePeerTheExtraRequestsAreTakenOnceAndCarryOnlyTheAck()
    {
        var sped = new SpedController { ExtraRequestsForLitePeer = 3 };
        sped.CaptureFlight([Dtls(100, 1)]);
        sped.ReportDtlsDatagram(Dtls(60, 2));
        Assert.Equal(3, sped.TakeExtraRequests());
        Assert.Equal(0, sped.TakeExtraRequests());
        var buffer = new byte[1500];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, Tid);
        Assert.Null(sped.Write(ref w, out var wrote, carryData: false));
        Assert.True(wrote);
        w.AddFingerprint();
        Assert.True(StunMessage.TryRead(buffer.AsSpan(0, w.Length), out var m));
        Assert.False(m.TryGetAttribute(SpedAttributes.DtlsInStun, out _));
        Assert.True(m.TryGetAttribute(SpedAttributes.DtlsInStunAck, out var ack));
        Assert.Equal(4, ack.Length);
        Assert.Equal(0, sped.Counters.DatagramsSent);
        Assert.Equal(0, new SpedController().TakeExtraRequests());   // a full peer: none
    }

    [Fact]
    public void ProbesAreTakenOnlyWhileThePeerHasSentNothingAndWeHaveNothingAndAreBounded()
    {
        // The DTLS server before the ClientHello: nothing sent, nothing received.
        var server = new SpedController();
        for (var i = 0; i < SpedController.MaxProbes; i++) Assert.True(server.TakeProbe());
        Assert.False(server.TakeProbe());
        Assert.Equal(SpedController.MaxProbes, server.Counters.ProbesSent);

        // Once the peer carried a datagram (its ClientHello's first half), none.
        var heard = new SpedController();
        var peer = new SpedController();
        peer.CaptureFlight([Dtls(100, 1)]);
        Deliver(Message(peer, out _), heard);
        Assert.Equal(1, heard.Counters.DatagramsReceived);
        Assert.False(heard.TakeProbe());

        // A datagram that came the normal path counts too.
        var direct = new SpedController();
        direct.ReportDtlsDatagram(Dtls(60, 2));
        Assert.False(direct.TakeProbe());

        // The DTLS client, whose flight waits or was carried: none (its own requests carry it).
        var client = new SpedController();
        client.CaptureFlight([Dtls(100, 3)]);
        Assert.False(client.TakeProbe());

        // Not once SPED is off.
        var off = new SpedController();
        off.TurnOff();
        Assert.False(off.TakeProbe());
        Assert.Equal(0, heard.Counters.ProbesSent + direct.Counters.ProbesSent + client.Counters.ProbesSent + off.Counters.ProbesSent);
    }
}
