using System.Buffers.Binary;
using Transport.Sctp.Wire;
using Transport.TestKit;

namespace Transport.Sctp.Tests;

public sealed class AssociationSetupTests
{
    [Fact]
    public void TwoAssociationsEstablishWithFourWayHandshake()
    {
        var (a, b, driver) = Pair.Connected();
        Assert.True(a.Has(SctpState.Established));
        Assert.True(b.Has(SctpState.Established));
        // INIT, COOKIE ECHO from A; INIT ACK, COOKIE ACK from B.
        Assert.Equal(2, driver.Link.SentFrom(LinkEnd.A));
        Assert.Equal(2, driver.Link.SentFrom(LinkEnd.B));
        Assert.True(a.Association.ZeroChecksumInUse);
        Assert.True(b.Association.ZeroChecksumInUse);
    }

    [Fact]
    public void SimultaneousInitFromBothSidesEstablishes()
    {
        var (a, b, _) = Pair.Connected(both: true);
        Assert.Equal(SctpState.Established, a.Association.State);
        Assert.Equal(SctpState.Established, b.Association.State);
    }

    [Fact]
    public void AnsweringSideKeepsNoStateBeforeCookieEcho()
    {
        var client = new SctpAssociation(Pair.Client());
        var server = new SctpAssociation(Pair.Server());
        client.Connect(TimeSpan.Zero);
        var buf = new byte[2048];
        Assert.True(client.TryPollTransmit(buf, out var n));
        server.HandleDatagram(buf.AsSpan(0, n), TimeSpan.Zero);
        Assert.True(server.TryPollTransmit(buf, out var m));
        Assert.Equal(ChunkType.InitAck, buf[12]);
        // Still Closed: the INIT ACK carried everything in the signed cookie.
        Assert.Equal(SctpState.Closed, server.State);
        Assert.Null(server.PollTimeout());
    }

    [Fact]
    public void TamperedCookieIsDroppedAndCounted()
    {
        var client = new SctpAssociation(Pair.Client() with { OfferZeroChecksum = false });
        var server = new SctpAssociation(Pair.Server() with { OfferZeroChecksum = false });
        client.Connect(TimeSpan.Zero);
        var buf = new byte[2048];
        client.TryPollTransmit(buf, out var n);
        server.HandleDatagram(buf.AsSpan(0, n), TimeSpan.Zero);
        server.TryPollTransmit(buf, out n);
        client.HandleDatagram(buf.AsSpan(0, n), TimeSpan.Zero);
        Assert.True(client.TryPollTransmit(buf, out n));
        Assert.Equal(ChunkType.CookieEcho, buf[12]);
        buf[12 + 4 + 10] ^= 0x01; // flip a bit in the cookie body
        CommonHeader.Seal(buf.AsSpan(0, n), false);
        server.HandleDatagram(buf.AsSpan(0, n), TimeSpan.Zero);
        Assert.Equal(1, server.Counters.BadCookie);
        Assert.Equal(SctpState.Closed, server.State);
    }

    [Fact]
    public void PacketWithWrongVerificationTagIsDroppedAndCounted()
    {
        var (a, b, driver) = Pair.Connected();
        var buf = new byte[2048];
        a.Association.SendMessage(1, 53, new byte[] { 1, 2, 3 });
        Assert.True(a.Association.TryPollTransmit(buf, out var n));
        BinaryPrimitives.WriteUInt32BigEndian(buf.AsSpan(4), BinaryPrimitives.ReadUInt32BigEndian(buf.AsSpan(4)) + 1);
        var before = b.Association.Counters.PacketsReceived;
        b.Association.HandleDatagram(buf.AsSpan(0, n), driver.Now);
        Assert.Equal(1, b.Association.Counters.BadVerificationTag);
        Assert.Equal(before, b.Association.Counters.PacketsReceived);
    }

    [Fact]
    public void CrcIsCheckedWhenZeroChecksumWasNotNegotiated()
    {
        var (a, b, driver) = Pair.Connected(a: new SctpOptions { OfferZeroChecksum = false });
        Assert.False(a.Association.ZeroChecksumInUse);
        Assert.False(b.Association.ZeroChecksumInUse);
        var buf = new byte[2048];
        a.Association.SendMessage(1, 53, new byte[] { 1, 2, 3 });
        Assert.True(a.Association.TryPollTransmit(buf, out var n));
        Assert.NotEqual(0u, BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(8)));
        buf[n - 1] ^= 0xFF;
        b.Association.HandleDatagram(buf.AsSpan(0, n), driver.Now);
        Assert.Equal(1, b.Association.Counters.BadChecksum);
        // B offered zero checksum but A did not accept it: B's packets still carry a valid CRC32c.
        b.Association.SendMessage(1, 53, new byte[] { 4, 5 });
        b.Association.HandleTimeout(driver.Now);
        Assert.True(b.Association.TryPollTransmit(buf, out var m));
        var carried = BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(8));
        Assert.NotEqual(0u, carried);
        Assert.True(CommonHeader.ChecksumValid(buf.AsSpan(0, m), carried));
    }

    [Fact]
    public void Crc32cMatchesRfc3720TestVector()
    {
        // RFC 3720 appendix B.4: 32 bytes of zeros -> 0x8A9136AA (as stored little-endian: aa 36 91 8a).
        Assert.Equal(0x8A9136AAu, Crc32c.Compute(new byte[32]));
        var ones = Enumerable.Repeat((byte)0xFF, 32).ToArray();
        Assert.Equal(0x62A8AB43u, Crc32c.Compute(ones));
        var inc = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        Assert.Equal(0x46DD794Eu, Crc32c.Compute(inc));
    }

    [Fact]
    public void InitIsRetransmittedAndHandshakeFailsAfterMaxInitRetransmits()
    {
        var link = new VirtualLink { Cut = true };
        var a = new SctpPeer(Pair.Client(new SctpOptions { MaxInitRetransmits = 3 }));
        var b = new SctpPeer(Pair.Server());
        var driver = new TwoPeerDriver(a, b, link, new ManualClock());
        a.Association.Connect(driver.Now);
        driver.RunUntil(() => a.Association.State == SctpState.Failed, TimeSpan.FromMinutes(5));
        Assert.True(driver.Steps < 100, $"steps {driver.Steps}");
        Assert.Equal(SctpState.Failed, a.Association.State);
        Assert.Equal(4, link.SentFrom(LinkEnd.A)); // INIT + 3 retransmissions
        // T1 doubles: 1 + 2 + 4 + 8 s.
        Assert.Equal(TimeSpan.FromSeconds(15), a.FailedAt);
        Assert.Contains("INIT", a.Association.CloseReason);
    }

    [Fact]
    public void AnEstablishedAssociationCostsLittleMemory()
    {
        // A server holds one association per peer: the per-association footprint must stay small even
        // with 65535 negotiated streams.
        Pair.Connected(); // warm up JIT and statics
        var before = GC.GetAllocatedBytesForCurrentThread();
        var (a, b, _) = Pair.Connected();
        var perPair = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(perPair < 200 * 1024, $"{perPair} bytes for two associations and their harness");
        Assert.Equal(SctpState.Established, a.Association.State);
        Assert.Equal(SctpState.Established, b.Association.State);
    }
}
