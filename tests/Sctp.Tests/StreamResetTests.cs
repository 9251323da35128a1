using System.Buffers.Binary;
using Transport.Sctp.Wire;

namespace Transport.Sctp.Tests;

public sealed class StreamResetTests
{
    /// <summary>Lists the RE-CONFIG parameters (type, first 4-byte field, streams) in a packet.</summary>
    private static List<(ushort Type, uint Seq, ushort[] Streams)> ReConfigParams(ReadOnlySpan<byte> packet)
    {
        var found = new List<(ushort, uint, ushort[])>();
        var chunks = packet[12..];
        while (ChunkHeader.TryReadNext(ref chunks, out var c))
        {
            if (c.Type != ChunkType.ReConfig) continue;
            var rest = c.Value;
            while (rest.Length >= 8)
            {
                var type = BinaryPrimitives.ReadUInt16BigEndian(rest);
                int len = BinaryPrimitives.ReadUInt16BigEndian(rest[2..]);
                var seq = BinaryPrimitives.ReadUInt32BigEndian(rest[4..]);
                var streamsAt = type == ReConfigChunk.OutgoingResetRequest ? 16 : type == ReConfigChunk.IncomingResetRequest ? 8 : len;
                var streams = new List<ushort>();
                for (var i = streamsAt; i + 1 < len; i += 2) streams.Add(BinaryPrimitives.ReadUInt16BigEndian(rest[i..]));
                found.Add((type, seq, streams.ToArray()));
                var padded = ChunkHeader.Padded(len);
                rest = padded >= rest.Length ? default : rest[padded..];
            }
        }
        return found;
    }

    [Fact]
    public void IncomingResetRequestIsAnsweredWithOurOwnOutgoingReset()
    {
        var (a, b, d) = Pair.Connected(a: new SctpOptions { OfferZeroChecksum = false }, b: new SctpOptions { OfferZeroChecksum = false });
        // A's first TSN is also its first re-configuration request sequence number (RFC 6525 section 5.1.1).
        a.Association.SendMessage(5, Ppid.Binary, new byte[] { 1 });
        var buf = new byte[2048];
        a.Association.HandleTimeout(d.Now);
        Assert.True(a.Association.TryPollTransmit(buf, out var n));
        b.Association.HandleDatagram(buf.AsSpan(0, n), d.Now); // deliver it: B's cumulative TSN covers it
        var firstTsn = BinaryPrimitives.ReadUInt32BigEndian(buf.AsSpan(16));
        // Forge A's Incoming SSN Reset Request for stream 5 in A's packet header.
        var p = new byte[12 + 4 + 12];
        buf.AsSpan(0, 12).CopyTo(p);
        ChunkHeader.Write(p.AsSpan(12), ChunkType.ReConfig, 0, 4 + 10);
        ReConfigChunk.WriteIncomingRequest(p.AsSpan(16), firstTsn, [5]);
        CommonHeader.Seal(p, zeroChecksum: false);
        b.Association.SendMessage(5, Ppid.Binary, new byte[] { 2 }, now: d.Now); // B has used stream 5
        b.Association.HandleDatagram(p, d.Now);
        var reconfig = new List<(ushort Type, uint Seq, ushort[] Streams)>();
        b.Association.HandleTimeout(d.Now);
        while (b.Association.TryPollTransmit(buf, out n)) reconfig.AddRange(ReConfigParams(buf.AsSpan(0, n)));
        // B answers the request and asks to reset its own outgoing stream 5.
        Assert.Contains(reconfig, r => r.Type == ReConfigChunk.Response && r.Seq == firstTsn);
        Assert.Contains(reconfig, r => r.Type == ReConfigChunk.OutgoingResetRequest && r.Streams.SequenceEqual(new ushort[] { 5 }));
    }

    [Fact]
    public void OutgoingResetWaitsUntilTheLastTsnHasArrived()
    {
        var link = new Transport.TestKit.VirtualLink(9, new Transport.TestKit.LinkConditions { Loss = 0.2 },
            new Transport.TestKit.LinkConditions { Loss = 0.2 });
        var (a, b, d) = Pair.Connected(link);
        var got = 0;
        var afterReset = false;
        var lateData = 0;
        b.OnEvent = e =>
        {
            if (e.Kind == SctpEventKind.StreamMessage && e.StreamId == 2) { got++; if (afterReset) lateData++; }
            if (e.Kind == SctpEventKind.StreamReset && e.StreamId == 2) afterReset = true;
        };
        for (var i = 0; i < 40; i++) a.Association.SendMessage(2, Ppid.Binary, new byte[1500]);
        a.Association.ResetStream(2, d.Now);
        d.RunUntil(() => afterReset, TimeSpan.FromMinutes(2));
        Assert.True(afterReset);
        Assert.Equal(40, got);        // every message of the old stream arrived first
        Assert.Equal(0, lateData);
    }
}
