using System.Buffers.Binary;
using System.Text;
using Transport.TestKit;

namespace Transport.Sctp.Tests;

/// <summary>
/// SNAP (draft-hancke-tsvwg-snap): the INIT parameters of both sides exchanged out of band (a=sctp-init in SDP), the
/// associations established without the four-way handshake; and the reading of a=sctp-init values, valid and not.
/// </summary>
public sealed class SnapTests
{
    // Chromium's answer example of draft-hancke-tsvwg-snap (as pion's tests quote it): INIT, length 30 unpadded,
    // tag 0x5FB37474, a_rwnd 5 MiB, 65535 streams each way, Forward-TSN-Supported, Supported Extensions RE-CONFIG and
    // FORWARD-TSN.
    private const string ChromiumExample = "AQAAHl+zdHQAUAAA/////6Gq3HTAAAAEgAgABoLA";

    private static (SctpPeer A, SctpPeer B, TwoPeerDriver Driver, List<byte> ChunkTypes) StartedFromInits(TimeSpan oneWay)
    {
        var pa = new SctpPeer(Pair.Client());
        var pb = new SctpPeer(Pair.Server());
        var link = new VirtualLink(3, LinkConditions.Clean(oneWay), LinkConditions.Clean(oneWay));
        var types = new List<byte>();
        // Records the first chunk type of every packet on the link (and lets it pass).
        link.AddFilter(null, p => { types.Add(p.Span[12]); return false; }, _ => FilterAction.Pass);
        var driver = new TwoPeerDriver(pa, pb, link, new ManualClock());
        pa.Clock = pb.Clock = () => driver.Now;
        var initA = SctpInitParameters.CreateLocal(pa.Association.Options);
        var initB = SctpInitParameters.CreateLocal(pb.Association.Options);
        // What each side reads from the other's a=sctp-init.
        Assert.True(SctpInitParameters.TryParseBase64(initA.ToBase64(), out var seenByB, out var errorB), errorB);
        Assert.True(SctpInitParameters.TryParseBase64(initB.ToBase64(), out var seenByA, out var errorA), errorA);
        pa.Association.StartWithPeerInit(initA, seenByA!, driver.Now);
        pb.Association.StartWithPeerInit(initB, seenByB!, driver.Now);
        pa.Drain();
        pb.Drain();
        return (pa, pb, driver, types);
    }

    [Fact]
    public void TwoAssociationsStartedFromExchangedInitsAreEstablishedAndExchangeDataAtOnce()
    {
        var oneWay = TimeSpan.FromMilliseconds(25);
        var (a, b, d, types) = StartedFromInits(oneWay);
        Assert.Equal(SctpState.Established, a.Association.State);
        Assert.Equal(SctpState.Established, b.Association.State);
        Assert.True(a.Association.StartedFromPeerInit);
        Assert.True(a.Has(SctpState.Established) && b.Has(SctpState.Established));
        Assert.True(a.Association.ZeroChecksumInUse && b.Association.ZeroChecksumInUse);

        var ca = a.Association.CreateDataChannel("warp", new DataChannelOptions { Negotiated = true, Id = 4 }, d.Now);
        var cb = b.Association.CreateDataChannel("warp", new DataChannelOptions { Negotiated = true, Id = 4 }, d.Now);
        Assert.Equal(DataChannelState.Open, ca.State);
        Assert.Equal(DataChannelState.Open, cb.State);
        var sentAt = d.Now;
        ca.Send("hello");
        Assert.True(d.RunUntil(() => b.Events.Any(e => e.Kind == SctpEventKind.ChannelMessage), TimeSpan.FromSeconds(1)));
        // Delivered after exactly one one-way delay: no handshake came first.
        Assert.Equal(sentAt + oneWay, d.Now);
        var got = b.Events.Single(e => e.Kind == SctpEventKind.ChannelMessage);
        Assert.Equal("hello", Encoding.UTF8.GetString(got.Data.Span));
        Assert.Same(cb, got.Channel);
        cb.Send("back");
        Assert.True(d.RunUntil(() => a.Events.Any(e => e.Kind == SctpEventKind.ChannelMessage), TimeSpan.FromSeconds(1)));
        d.RunFor(TimeSpan.FromSeconds(1));
        // Only DATA and SACK went on the wire: no INIT (1), INIT ACK (2), COOKIE ECHO (10) or COOKIE ACK (11).
        Assert.NotEmpty(types);
        Assert.All(types, t => Assert.True(t is 0 or 3, $"chunk type {t} on the wire"));
        Assert.Equal(0, a.Association.Counters.BadVerificationTag + b.Association.Counters.BadVerificationTag);
    }

    [Fact]
    public void AnInBandChannelOpensWithDcepOverASnapAssociation()
    {
        var (a, b, d, _) = StartedFromInits(TimeSpan.FromMilliseconds(10));
        var ch = a.Association.CreateDataChannel("chat", null, d.Now);
        ch.Send("first");
        Assert.True(d.RunUntil(() => ch.AcknowledgedByPeer && b.Events.Any(e => e.Kind == SctpEventKind.ChannelMessage), TimeSpan.FromSeconds(1)));
        Assert.Equal("chat", b.Events.Single(e => e.Kind == SctpEventKind.ChannelOpen).Channel!.Label);
    }

    [Fact]
    public void ChromiumsExampleInitIsReadWithItsParameters()
    {
        Assert.True(SctpInitParameters.TryParseBase64(ChromiumExample, out var init, out var error), error);
        Assert.Equal(0x5FB37474u, init!.InitiateTag);
        Assert.Equal(5u << 20, init.AdvertisedWindow);
        Assert.Equal((ushort)65535, init.OutboundStreams);
        Assert.Equal((ushort)65535, init.InboundStreams);
        Assert.Equal(0xA1AADC74u, init.InitialTsn);
        Assert.True(init.ForwardTsn);
        Assert.True(init.ReConfig);
        Assert.False(init.ZeroChecksum);
    }

    [Fact]
    public void OurInitRoundTripsThroughBase64AndIsAnInitChunk()
    {
        var ours = SctpInitParameters.CreateLocal(new SctpOptions());
        var chunk = ours.ToChunk();
        Assert.Equal(1, chunk[0]);
        Assert.Equal(chunk.Length, BinaryPrimitives.ReadUInt16BigEndian(chunk.AsSpan(2)));
        Assert.Equal(ours.InitiateTag, BinaryPrimitives.ReadUInt32BigEndian(chunk.AsSpan(4)));
        Assert.True(SctpInitParameters.TryParseBase64(ours.ToBase64(), out var back, out var error), error);
        Assert.Equal(ours, back);
        Assert.True(back!.ZeroChecksum && back.ForwardTsn && back.ReConfig);
    }

    public static TheoryData<string, string> InvalidValues()
    {
        var valid = Convert.FromBase64String(ChromiumExample);
        string Edit(Action<byte[]> edit)
        {
            var b = (byte[])valid.Clone();
            edit(b);
            return Convert.ToBase64String(b);
        }
        // The example padded to 32 bytes, then a State Cookie parameter (type 7, length 8).
        var cookieValue = valid.Concat(new byte[] { 0, 0, 0, 7, 0, 8, 1, 2, 3, 4 }).ToArray();
        BinaryPrimitives.WriteUInt16BigEndian(cookieValue.AsSpan(2), (ushort)cookieValue.Length);
        return new TheoryData<string, string>
        {
            { "", "empty" },
            { "not base64!", "not base64" },
            { "Q29va2llTW9uc3Rlcg==", "shorter" },                                  // "CookieMonster", as libwebrtc's own test
            { Edit(b => b[4] = b[5] = b[6] = b[7] = 0), "Initiate Tag is 0" },        // pion's invalid example
            { Edit(b => b[0] = 2), "not INIT" },                                       // an INIT ACK
            { Edit(b => b[12] = b[13] = 0), "streams is 0" },
            { Edit(b => { b[8] = b[9] = b[10] = 0; b[11] = 100; }), "a_rwnd is 100" },
            { Edit(b => b[3] = 200), "length field" },
            { Edit(b => b[27] = 40), "parameter 0x8008" },                             // Supported Extensions overruns
            { Convert.ToBase64String(cookieValue), "State Cookie" },
        };
    }

    [Theory]
    [MemberData(nameof(InvalidValues))]
    public void InvalidInitValuesAreRefusedWithAClearReason(string value, string reasonPart)
    {
        Assert.False(SctpInitParameters.TryParseBase64(value, out var init, out var error));
        Assert.Null(init);
        Assert.Contains(reasonPart, error, StringComparison.Ordinal);
    }

    [Fact]
    public void StartingFromInitsNeedsAClosedAssociationAndOurOwnInit()
    {
        var (a, _, d, _) = StartedFromInits(TimeSpan.FromMilliseconds(5));
        var local = SctpInitParameters.CreateLocal(a.Association.Options);
        Assert.Throws<InvalidOperationException>(() => a.Association.StartWithPeerInit(local, local, d.Now));
        var fresh = new SctpAssociation(Pair.Client());
        var otherStreams = SctpInitParameters.CreateLocal(new SctpOptions { Streams = 16 });
        Assert.Throws<ArgumentException>(() => fresh.StartWithPeerInit(otherStreams, local, d.Now));
        Assert.Equal(SctpState.Closed, fresh.State);
    }

    [Fact]
    public void ChannelIdsAreCheckedForParityRangeAndCollisions()
    {
        var (a, b, d, _) = StartedFromInits(TimeSpan.FromMilliseconds(5));
        // The DTLS client opens in-band channels on even ids only.
        var parity = Assert.Throws<ArgumentException>(() => a.Association.CreateDataChannel("x", new DataChannelOptions { Id = 3 }, d.Now));
        Assert.Contains("odd", parity.Message, StringComparison.Ordinal);
        var serverParity = Assert.Throws<ArgumentException>(() => b.Association.CreateDataChannel("x", new DataChannelOptions { Id = 2 }, d.Now));
        Assert.Contains("even", serverParity.Message, StringComparison.Ordinal);
        // A negotiated channel may take either parity, but needs an id, and not one in use.
        a.Association.CreateDataChannel("n", new DataChannelOptions { Negotiated = true, Id = 3 }, d.Now);
        var collision = Assert.Throws<ArgumentException>(() => a.Association.CreateDataChannel("m",
            new DataChannelOptions { Negotiated = true, Id = 3 }, d.Now));
        Assert.Contains("already carries data channel 'n'", collision.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => a.Association.CreateDataChannel("m", new DataChannelOptions { Negotiated = true }, d.Now));
        Assert.Contains("reserved", Assert.Throws<ArgumentException>(() =>
            a.Association.CreateDataChannel("m", new DataChannelOptions { Negotiated = true, Id = 65535 }, d.Now)).Message, StringComparison.Ordinal);
        var small = new SctpAssociation(Pair.Client(new SctpOptions { Streams = 8 }));
        Assert.Contains("beyond", Assert.Throws<ArgumentException>(() =>
            small.CreateDataChannel("m", new DataChannelOptions { Negotiated = true, Id = 8 }, d.Now)).Message, StringComparison.Ordinal);
    }
}
