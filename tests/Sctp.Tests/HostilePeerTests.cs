using System.Buffers.Binary;
using Transport.Sctp.Wire;
using Transport.TestKit;

namespace Transport.Sctp.Tests;

/// <summary>A peer that breaks the rules: the victim's memory stays bounded and it keeps working.</summary>
public sealed class HostilePeerTests
{
    private sealed class Forger
    {
        private readonly byte[] _header = new byte[12];
        public uint FirstTsn;
        public Forger(ReadOnlySpan<byte> genuineDataPacket)
        {
            genuineDataPacket[..12].CopyTo(_header);
            FirstTsn = BinaryPrimitives.ReadUInt32BigEndian(genuineDataPacket[16..]);
        }

        public byte[] Data(uint tsn, byte flags, ushort stream, ushort ssn, int length)
        {
            var p = new byte[12 + ChunkHeader.Padded(16 + length)];
            _header.CopyTo(p, 0);
            DataChunk.Write(p.AsSpan(12), flags, tsn, stream, ssn, Ppid.Binary, new byte[length]);
            CommonHeader.Seal(p, zeroChecksum: false);
            return p;
        }

        /// <summary>A HEARTBEAT ACK echoing a Heartbeat Info (type 1) with the given send time in ticks.</summary>
        public byte[] HeartbeatAck(long ticks)
        {
            var p = new byte[12 + 16];
            _header.CopyTo(p, 0);
            var c = p.AsSpan(12);
            ChunkHeader.Write(c, ChunkType.HeartbeatAck, 0, 16);
            BinaryPrimitives.WriteUInt16BigEndian(c[4..], 1);
            BinaryPrimitives.WriteUInt16BigEndian(c[6..], 12);
            BinaryPrimitives.WriteInt64BigEndian(c[8..], ticks);
            CommonHeader.Seal(p, zeroChecksum: false);
            return p;
        }

        /// <summary>A packet with <paramref name="tag"/>: a first chunk of <paramref name="firstType"/> (8 bytes of garbage value), then a SHUTDOWN.</summary>
        public byte[] ShutdownBundledAfter(byte firstType, uint tag)
        {
            var p = new byte[12 + 12 + 8];
            _header.CopyTo(p, 0);
            BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(4), tag);
            var c = p.AsSpan(12);
            ChunkHeader.Write(c, firstType, 0, 12);
            ChunkHeader.Write(c[12..], ChunkType.Shutdown, 0, 8);
            BinaryPrimitives.WriteUInt32BigEndian(c[16..], FirstTsn);
            CommonHeader.Seal(p, zeroChecksum: false);
            return p;
        }

        public byte[] ForwardTsn(uint newCumulativeTsn)
        {
            var p = new byte[12 + 8];
            _header.CopyTo(p, 0);
            ChunkHeader.Write(p.AsSpan(12), ChunkType.ForwardTsn, 0, 8);
            BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(16), newCumulativeTsn);
            CommonHeader.Seal(p, zeroChecksum: false);
            return p;
        }

        public byte[] Sack(uint cum, uint arwnd, params (ushort, ushort)[] gaps)
        {
            var p = new byte[12 + 16 + 4 * gaps.Length];
            _header.CopyTo(p, 0);
            var c = p.AsSpan(12);
            ChunkHeader.Write(c, ChunkType.Sack, 0, 16 + 4 * gaps.Length);
            BinaryPrimitives.WriteUInt32BigEndian(c[4..], cum);
            BinaryPrimitives.WriteUInt32BigEndian(c[8..], arwnd);
            BinaryPrimitives.WriteUInt16BigEndian(c[12..], (ushort)gaps.Length);
            for (var i = 0; i < gaps.Length; i++)
            {
                BinaryPrimitives.WriteUInt16BigEndian(c[(16 + 4 * i)..], gaps[i].Item1);
                BinaryPrimitives.WriteUInt16BigEndian(c[(18 + 4 * i)..], gaps[i].Item2);
            }
            CommonHeader.Seal(p, zeroChecksum: false);
            return p;
        }
    }

    /// <summary>Captures a genuine DATA packet from A to B (for B's tag and ports) without delivering it.</summary>
    private static Forger Capture(SctpAssociation sender, TwoPeerDriver d)
    {
        sender.SendMessage(9, Ppid.Binary, new byte[] { 1 });
        var buf = new byte[2048];
        sender.HandleTimeout(d.Now);
        Assert.True(sender.TryPollTransmit(buf, out var n));
        Assert.Equal(ChunkType.Data, buf[12]);
        return new Forger(buf.AsSpan(0, n));
    }

    private static int Bound(SctpOptions o) => o.ReceiveBufferSize + 64 * 1024;

    [Fact]
    public void ChunksBundledAfterAChunkWithItsOwnTagRuleNeedOurTag()
    {
        // Found by fuzzing (the 100,000-packet soak of tests/Fuzz.Tests): INIT passes the tag check with tag 0 and
        // COOKIE ECHO with the cookie's tag, so a SHUTDOWN bundled after a garbage one shut the association down
        // without the verification tag. RFC 9260 section 6.10 bundles nothing with INIT; after COOKIE ECHO the tag is ours.
        var (a, b, d) = Pair.Connected(a: new SctpOptions { OfferZeroChecksum = false }, b: new SctpOptions { OfferZeroChecksum = false });
        var f = Capture(a.Association, d);
        var badTag = b.Association.Counters.BadVerificationTag;
        b.Association.HandleDatagram(f.ShutdownBundledAfter(ChunkType.Init, 0), d.Now);
        b.Association.HandleDatagram(f.ShutdownBundledAfter(ChunkType.CookieEcho, 0x12345678), d.Now);
        Assert.Equal(SctpState.Established, b.Association.State);
        Assert.Equal(badTag + 2, b.Association.Counters.BadVerificationTag);
    }

    [Fact]
    public void AForwardTsnBeyondTheReceiveWindowAbortsWithAReason()
    {
        // Found by fuzzing (sctp-established): a FORWARD TSN far ahead moved the cumulative TSN past everything the
        // peer would send next, and the association stayed Established delivering nothing. Now a protocol violation.
        var (a, b, d) = Pair.Connected(a: new SctpOptions { OfferZeroChecksum = false }, b: new SctpOptions { OfferZeroChecksum = false });
        var f = Capture(a.Association, d);
        b.Association.HandleDatagram(f.ForwardTsn(f.FirstTsn + 100), d.Now); // within the window: taken
        Assert.Equal(SctpState.Established, b.Association.State);
        b.Association.HandleDatagram(f.ForwardTsn(f.FirstTsn + 0x4000_0000), d.Now);
        Assert.Equal(SctpState.Failed, b.Association.State);
        Assert.Contains("FORWARD TSN", b.Association.CloseReason);
        b.Drain();
        Assert.True(b.Has(SctpState.Failed));
    }

    [Fact]
    public void ForgedHeartbeatAckTimesAreDroppedNotThrown()
    {
        // Found by fuzzing (fuzz/crashes/sctp-fresh): a HEARTBEAT ACK whose echoed send time was far in the past
        // overflowed the RTT arithmetic. The echoed time is the peer's to forge: out of range, it is counted and dropped;
        // unsolicited, it is no RTT sample.
        var (a, b, d) = Pair.Connected(a: new SctpOptions { OfferZeroChecksum = false }, b: new SctpOptions { OfferZeroChecksum = false });
        var f = Capture(a.Association, d);
        var rto = b.Association.Rto;
        var malformed = b.Association.Counters.Malformed;
        foreach (var ticks in new[] { long.MinValue, -1, long.MaxValue, d.Now.Ticks + 1 })
            b.Association.HandleDatagram(f.HeartbeatAck(ticks), d.Now);
        b.Association.HandleDatagram(f.HeartbeatAck(0), d.Now); // in range, but no heartbeat of B's is outstanding
        Assert.Equal(malformed + 4, b.Association.Counters.Malformed);
        Assert.Equal(rto, b.Association.Rto);
        Assert.Equal(SctpState.Established, b.Association.State);
    }

    [Fact]
    public void TsnFloodAcrossAndBeyondTheWindowKeepsMemoryBounded()
    {
        var (a, b, d) = Pair.Connected();
        var f = Capture(a.Association, d);
        var rng = new Random(1);
        var max = 0;
        // Inside the window: distinct TSNs, never the next expected one, 1000 bytes each (3 MB in all).
        for (uint k = 2; k < 3002; k++)
        {
            b.Association.HandleDatagram(f.Data(f.FirstTsn + k, DataChunk.FlagBegin, (ushort)(k % 100), 0, 1000), d.Now);
            max = Math.Max(max, b.Association.ReceiveBuffered);
        }
        for (var i = 0; i < 20_000; i++)
        {
            // Never the next expected TSN, so nothing can be delivered: everything is held or dropped.
            var tsn = f.FirstTsn + 1 + (uint)rng.Next(1, 2_000_000);
            b.Association.HandleDatagram(f.Data(tsn, DataChunk.FlagBegin, (ushort)rng.Next(0, 100), 0, 1000), d.Now);
            max = Math.Max(max, b.Association.ReceiveBuffered);
        }
        Assert.True(max <= Bound(b.Association.Options), $"held {max} bytes");
        Assert.True(b.Association.Counters.OutOfWindowTsn > 10_000);
        Assert.True(b.Association.Counters.ReceiveBufferFull > 0);
        Assert.True(GC.GetTotalMemory(false) < 512L * 1024 * 1024);
        Assert.Equal(SctpState.Established, b.Association.State);
    }

    [Fact]
    public void ManyGapsDoNotOverflowPacketsThatAlsoCarryControlChunks()
    {
        var (a, b, d) = Pair.Connected(b: new SctpOptions { HeartbeatInterval = TimeSpan.FromSeconds(1) });
        var f = Capture(a.Association, d);
        // Every other TSN: about 1500 gap blocks, far more than a packet holds.
        for (uint k = 2; k < 3002; k += 2)
            b.Association.HandleDatagram(f.Data(f.FirstTsn + k, DataChunk.FlagBegin | DataChunk.FlagEnd, 1, 0, 10), d.Now);
        // A HEARTBEAT to answer as well.
        var hb = new byte[12 + 16];
        f.Data(0, 0, 0, 0, 0).AsSpan(0, 12).CopyTo(hb);
        ChunkHeader.Write(hb.AsSpan(12), ChunkType.Heartbeat, 0, 16);
        BinaryPrimitives.WriteUInt16BigEndian(hb.AsSpan(16), 1);
        BinaryPrimitives.WriteUInt16BigEndian(hb.AsSpan(18), 12);
        CommonHeader.Seal(hb, zeroChecksum: false);
        b.Association.HandleDatagram(hb, d.Now);
        b.Association.HandleTimeout(d.Now + TimeSpan.FromSeconds(5)); // our own heartbeat is due too
        var buf = new byte[2048];
        var sawHeartbeatAck = false;
        for (var i = 0; i < 10 && b.Association.TryPollTransmit(buf, out var n); i++)
        {
            Assert.True(n <= b.Association.Options.MaxPacketSize);
            var chunks = buf.AsSpan(12, n - 12);
            ReadOnlySpan<byte> rest = chunks;
            while (ChunkHeader.TryReadNext(ref rest, out var c)) if (c.Type == ChunkType.HeartbeatAck) sawHeartbeatAck = true;
        }
        Assert.True(sawHeartbeatAck);
    }

    [Fact]
    public void EndlessFragmentsAreDroppedAsOversizeAndMemoryStaysBounded()
    {
        var (a, b, d) = Pair.Connected();
        var f = Capture(a.Association, d);
        var ch = b.Association.CreateDataChannel("victim", new DataChannelOptions { Negotiated = true, Id = 3 }, d.Now);
        var max = 0;
        var tsn = f.FirstTsn; // the captured packet was never delivered: this TSN is the next expected
        b.Association.HandleDatagram(f.Data(tsn++, DataChunk.FlagBegin, 3, 0, 1100), d.Now);
        for (var i = 0; i < 5000; i++) // 5.5 MB of one message that never ends
        {
            b.Association.HandleDatagram(f.Data(tsn++, 0, 3, 0, 1100), d.Now);
            max = Math.Max(max, b.Association.ReceiveBuffered);
        }
        Assert.True(max <= b.Association.Options.MaxMessageSize + 1100, $"held {max} bytes");
        Assert.True(b.Association.Counters.OversizeMessage > 0);
        Assert.Equal(0, b.Association.HeldFragments);
        Assert.NotEqual(DataChannelState.Open, ch.State); // refused per RFC 8831: the channel closes
        // The association still works for genuine traffic afterwards.
        Assert.Equal(SctpState.Established, b.Association.State);
    }

    [Fact]
    public void BogusSacksAreDroppedAndCountedAndDataStillFlows()
    {
        var (a, b, d) = Pair.Connected();
        // Forge SACKs towards A with A's own tag: capture a packet from B.
        var fb = Capture(b.Association, d);
        var before = a.Association.Counters.BogusSack;
        a.Association.HandleDatagram(fb.Sack(fb.FirstTsn + 1_000_000, 1 << 20), d.Now);          // acks data never sent
        a.Association.HandleDatagram(fb.Sack(fb.FirstTsn - 5, 1 << 20, (1, 60000)), d.Now);      // stale, wild gap
        a.Association.SendMessage(1, Ppid.Binary, new byte[3000]);
        d.Flush();
        var cum = a.Association.CumulativeTsnAcked;
        a.Association.HandleDatagram(fb.Sack(cum, 1 << 20, (5, 3), (0, 9), (2, 40000)), d.Now);   // inverted, zero, beyond
        Assert.True(a.Association.Counters.BogusSack >= before + 3);
        Assert.Equal(SctpState.Established, a.Association.State);
        long received = 0;
        b.OnEvent = e => { if (e.Kind == SctpEventKind.StreamMessage && e.StreamId == 1) received += e.Data.Length; };
        for (var i = 0; i < 100; i++) a.Association.SendMessage(1, Ppid.Binary, new byte[3000]);
        Assert.True(d.RunUntil(() => received == 101 * 3000, TimeSpan.FromMinutes(1)), $"received {received}");
    }

    [Fact]
    public void ReceiverThatNeverReadsClosesItsWindowInsteadOfGrowing()
    {
        var (a, b, d) = Pair.Connected(b: new SctpOptions { ReceiveBufferSize = 256 * 1024 });
        // B's application never polls events: delivered messages stay in B's buffer.
        var stuck = new SctpPeerWithoutReader(b);
        var driver = new TwoPeerDriver(a, stuck, d.Link, d.Clock);
        for (var i = 0; i < 2000; i++) a.Association.SendMessage(1, Ppid.Binary, new byte[1000]);
        driver.RunFor(TimeSpan.FromSeconds(30));
        Assert.True(b.Association.ReceiveBuffered <= 256 * 1024 + 64 * 1024, $"{b.Association.ReceiveBuffered}");
        Assert.True(a.Association.OutboundBuffered > 1_000_000, "the sender kept its data: the window closed");
        Assert.Equal(SctpState.Established, a.Association.State);
        // When B reads again, everything arrives.
        var count = 0;
        b.OnEvent = e => { if (e.Kind == SctpEventKind.StreamMessage) count++; };
        Assert.True(d.RunUntil(() => count == 2000, TimeSpan.FromMinutes(2)), $"{count}");
    }

    /// <summary>Wraps a peer but never drains its events.</summary>
    private sealed class SctpPeerWithoutReader(SctpPeer inner) : IVirtualPeer
    {
        public void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now) => inner.Association.HandleDatagram(datagram, now);
        public void HandleTimeout(TimeSpan now) => inner.Association.HandleTimeout(now);
        public bool TryPollTransmit(Span<byte> destination, out int written) => inner.Association.TryPollTransmit(destination, out written);
        public TimeSpan? PollTimeout() => inner.Association.PollTimeout();
    }
}
