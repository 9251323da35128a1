using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

using static RealPeerKit;

/// <summary>
/// The peer connection's RFC 7983 input demultiplexing on its own (every range boundary of section 7, the drops by
/// class, SRTP before the keys, the answerer's early DTLS flight), and how often one datagram's class is read on its way
/// from the driver through ICE to the layer above.
/// </summary>
public sealed class InputDemultiplexerTests
{
    private static readonly InputLayers Ready = new(DtlsStarted: true, DtlsCanStart: false, Closing: false, HasSrtpKeys: true);

    // RFC 7983 section 7 (RFC 9443): each boundary of each range, the gaps between them, and an empty datagram.
    public static TheoryData<int, DatagramKind> Boundaries => new()
    {
        { -1, DatagramKind.Unknown },
        { 0, DatagramKind.Stun }, { 3, DatagramKind.Stun },
        { 4, DatagramKind.Unknown },
        { 19, DatagramKind.Zrtp },
        { 20, DatagramKind.Dtls }, { 63, DatagramKind.Dtls },
        { 64, DatagramKind.TurnChannel }, { 79, DatagramKind.TurnChannel },
        { 80, DatagramKind.Unknown }, { 127, DatagramKind.Unknown },
        { 128, DatagramKind.Rtp }, { 191, DatagramKind.Rtp },
        { 192, DatagramKind.Unknown }, { 255, DatagramKind.Unknown },
    };

    private static byte[] Datagram(int first) => first < 0 ? [] : [(byte)first, 0, 0, 0, 0, 0, 0, 0];

    [Theory]
    [MemberData(nameof(Boundaries))]
    public void ClassifiesEachBoundaryOfRfc7983AndCountsTheRead(int first, DatagramKind expected)
    {
        var demux = new InputDemultiplexer();
        Assert.Equal(expected, demux.Classify(Datagram(first)));
        Assert.Equal(1, demux.Classified);
    }

    [Fact]
    public void RoutesApplicationDataByClassAndCountsEveryDropByClass()
    {
        var demux = new InputDemultiplexer();
        var routes = new List<(int, InputRoute)>();
        foreach (var first in new[] { -1, 0, 3, 4, 19, 20, 63, 64, 79, 80, 127, 128, 191, 192, 255 })
        {
            var input = Datagram(first);
            routes.Add((first, demux.Route(IceReceiveResult.ApplicationData, DatagramClassifier.Classify(input), input, payloadIsInput: true, Ready)));
        }
        Assert.Equal(
        [
            (-1, InputRoute.Dropped), (0, InputRoute.Dropped), (3, InputRoute.Dropped), (4, InputRoute.Dropped), (19, InputRoute.Dropped),
            (20, InputRoute.Dtls), (63, InputRoute.Dtls), (64, InputRoute.Dropped), (79, InputRoute.Dropped), (80, InputRoute.Dropped),
            (127, InputRoute.Dropped), (128, InputRoute.Media), (191, InputRoute.Media), (192, InputRoute.Dropped), (255, InputRoute.Dropped),
        ], routes);
        Assert.Equal(
            (6L, 2L, 1L, 0L, 2L, 0L),
            (demux.DroppedOf(DatagramKind.Unknown), demux.DroppedOf(DatagramKind.Stun), demux.DroppedOf(DatagramKind.Zrtp),
             demux.DroppedOf(DatagramKind.Dtls), demux.DroppedOf(DatagramKind.TurnChannel), demux.DroppedOf(DatagramKind.Rtp)));
        Assert.Equal((Inputs: 15L, Dropped: 11L, Classified: 0L), (demux.Inputs, demux.Dropped, demux.Classified));
    }

    [Fact]
    public void DropsSrtpBeforeTheKeysApartFromTheDatagramDrops()
    {
        var demux = new InputDemultiplexer();
        var noKeys = Ready with { HasSrtpKeys = false };
        Assert.Equal(InputRoute.MediaBeforeKeys, demux.Route(IceReceiveResult.ApplicationData, DatagramKind.Rtp, Datagram(128), true, noKeys));
        Assert.Equal(InputRoute.MediaBeforeKeys, demux.Route(IceReceiveResult.ApplicationData, DatagramKind.Rtp, Datagram(191), true, noKeys));
        Assert.Equal(InputRoute.Media, demux.Route(IceReceiveResult.ApplicationData, DatagramKind.Rtp, Datagram(128), true, Ready));
        // DTLS is not held back by missing SRTP keys.
        Assert.Equal(InputRoute.Dtls, demux.Route(IceReceiveResult.ApplicationData, DatagramKind.Dtls, Datagram(22), true, noKeys));
        Assert.Equal((2L, 2L, 0L), (demux.MediaBeforeKeys, demux.DroppedOf(DatagramKind.Rtp), demux.Dropped));
    }

    [Fact]
    public void KeepsAtMostFourEarlyDtlsDatagramsInTheirOrderAndCountsTheRest()
    {
        var demux = new InputDemultiplexer();
        var local = new IPEndPoint(IPAddress.Loopback, 1000);
        var remote = new IPEndPoint(IPAddress.Loopback, 2000);
        var notStarted = Ready with { DtlsStarted = false };
        var kept = new List<bool>();
        for (var i = 0; i < 6; i++)
        {
            // ICE cannot vouch for the sender yet (no answer, so no pair): it drops the datagram, the demultiplexer keeps it.
            Assert.Equal(InputRoute.EarlyDtls, demux.Route(IceReceiveResult.Dropped, DatagramKind.Dtls, default, false, notStarted));
            kept.Add(demux.KeepEarlyDtls([22, (byte)i], local, remote, TransmitKind.Udp));
        }
        Assert.Equal([true, true, true, true, false, false], kept);
        Assert.Equal([0, 1, 2, 3], demux.EarlyDtls.Select(e => (int)e.Data[1]));
        // What ICE dropped that is not DTLS stays ICE's (it counted it); a DTLS datagram once DTLS runs too.
        Assert.Equal(InputRoute.Ice, demux.Route(IceReceiveResult.Dropped, DatagramKind.Rtp, default, false, notStarted));
        Assert.Equal(InputRoute.Ice, demux.Route(IceReceiveResult.Dropped, DatagramKind.Dtls, default, false, Ready));
        demux.OnEarlyDtlsReplayRefused();
        demux.ClearEarlyDtls();
        Assert.Empty(demux.EarlyDtls);
        Assert.Equal(
            (2L, 1L, 3L, 3L),
            (demux.EarlyDtlsRefused, demux.EarlyDtlsReplayRefused, demux.DroppedOf(DatagramKind.Dtls), demux.Dropped));
    }

    [Fact]
    public void DtlsGoesToTheServerBeforeItStartedAndIsDroppedAfterClose()
    {
        var demux = new InputDemultiplexer();
        var canStart = new InputLayers(DtlsStarted: false, DtlsCanStart: true, Closing: false, HasSrtpKeys: false);
        var noAnswer = canStart with { DtlsCanStart = false };
        var closed = noAnswer with { Closing = true };
        Assert.Equal(InputRoute.Dtls, demux.Route(IceReceiveResult.ApplicationData, DatagramKind.Dtls, Datagram(22), true, canStart));
        Assert.Equal(InputRoute.EarlyDtls, demux.Route(IceReceiveResult.ApplicationData, DatagramKind.Dtls, Datagram(22), true, noAnswer));
        Assert.Equal(InputRoute.Dropped, demux.Route(IceReceiveResult.ApplicationData, DatagramKind.Dtls, Datagram(22), true, closed));
        Assert.Equal(InputRoute.Ice, demux.Route(IceReceiveResult.Dropped, DatagramKind.Dtls, default, false, closed));
        Assert.Equal(InputRoute.Ice, demux.Route(IceReceiveResult.Stun, DatagramKind.Stun, default, false, closed));
        Assert.Equal((1L, 1L, 5L), (demux.DtlsAfterClose, demux.DroppedOf(DatagramKind.Dtls), demux.Inputs));
    }

    [Fact]
    public void ARelayedPayloadIsClassifiedByItsOwnFirstByte()
    {
        var demux = new InputDemultiplexer();
        // A ChannelData message (64-79) from the TURN server: ICE unwraps it, the payload inside is SRTP or DTLS.
        Assert.Equal(InputRoute.Media, demux.Route(IceReceiveResult.ApplicationData, DatagramKind.TurnChannel, Datagram(0x80), false, Ready));
        Assert.Equal(InputRoute.Dtls, demux.Route(IceReceiveResult.ApplicationData, DatagramKind.TurnChannel, Datagram(23), false, Ready));
        Assert.Equal(InputRoute.Dropped, demux.Route(IceReceiveResult.ApplicationData, DatagramKind.TurnChannel, Datagram(70), false, Ready));
        Assert.Equal((3L, 1L), (demux.Classified, demux.DroppedOf(DatagramKind.TurnChannel)));
    }

    /// <summary>Through two UDP drivers on loopback: the driver reads each datagram's class, and the connection reads none again.</summary>
    [Fact]
    public async Task ADatagramFromTheDriverIsClassifiedOnceOnItsWay()
    {
        await using var pair = LoopbackPair.Create();
        var (a, b) = (pair.A, pair.B);
        await a.SetRemoteDescriptionAsync(await b.CreateAnswerAsync(await a.CreateOfferAsync()));
        var channel = await a.CreateDataChannelAsync("count").WaitAsync(Patience);
        for (var i = 0; i < 20; i++) await a.SendAsync(channel, new byte[100]);
        for (var i = 0; i < 20; i++) await NextAsync<DataChannelMessageReceived>(b);
        foreach (var peer in new[] { a, b })
        {
            var (inputs, classified) = await peer.InspectAsync((core, _) => (core.Input.Inputs, core.Input.Classified));
            Assert.True(inputs >= 5, $"{inputs} inputs");   // checks, DTLS flights, SCTP packets
            Assert.Equal(0, classified);
        }
    }

    /// <summary>Without a driver (the entry without the class): read once, in the connection.</summary>
    [Fact]
    public void AnInputWithoutItsClassIsClassifiedOnceInTheConnection()
    {
        var (driver, a, b) = Connect();
        a.Core.CreateDataChannel("count", null, driver.Now);
        Assert.True(driver.RunUntil(() => a.Events.OfType<DataChannelOpened>().Any() && b.Events.OfType<DataChannelOpened>().Any(), TimeSpan.FromSeconds(10)));
        foreach (var peer in new[] { a, b })
        {
            Assert.True(peer.Core.Input.Inputs > 4, $"{peer.Core.Input.Inputs} inputs");
            Assert.Equal(peer.Core.Input.Inputs, peer.Core.Input.Classified);
        }
    }

    /// <summary>
    /// The class handed in is the one ICE and the connection act on: neither reads the first byte again. An RTP-looking
    /// datagram said to be DTLS goes to DTLS (which drops it), not to SRTP; a DTLS-looking one said to be STUN is parsed by
    /// ICE as STUN (malformed), not passed on.
    /// </summary>
    [Fact]
    public void TheClassHandedInIsTheOneIceAndTheConnectionActOn()
    {
        var (driver, a, b) = Connect();
        a.Core.CreateDataChannel("count", null, driver.Now);
        Assert.True(driver.RunUntil(() => a.Events.OfType<DataChannelOpened>().Any() && b.Events.OfType<DataChannelOpened>().Any(), TimeSpan.FromSeconds(10)));
        var core = b.Core;
        var rtpLooking = new byte[40];
        rtpLooking[0] = 0x80;
        var dtlsLooking = new byte[40];
        dtlsLooking[0] = 23;
        var (dtlsDropped, malformed, media, inputs, classified) =
            (core.Dtls!.Counters.Dropped, core.Ice.DroppedCount(IceDropReason.Malformed), core.DroppedMedia, core.Input.Inputs, core.Input.Classified);
        core.HandleDatagram(rtpLooking, DatagramKind.Dtls, EndB, EndA, driver.Now);
        core.HandleDatagram(dtlsLooking, DatagramKind.Stun, EndB, EndA, driver.Now);
        Assert.Equal(
            (dtlsDropped + 1, malformed + 1, media, inputs + 2, classified),
            (core.Dtls.Counters.Dropped, core.Ice.DroppedCount(IceDropReason.Malformed), core.DroppedMedia, core.Input.Inputs, core.Input.Classified));
    }

    private static readonly IPEndPoint EndA = new(IPAddress.Parse("10.0.0.1"), 1000);
    private static readonly IPEndPoint EndB = new(IPAddress.Parse("10.0.0.2"), 2000);

    internal static (TwoPeerDriver Driver, CorePeer A, CorePeer B) Connect()
    {
        var a = new PeerConnectionCore(new PeerConnectionOptions { Certificate = Certificate, Ice = new IceAgentOptions { Role = IceRole.Controlling } });
        var b = new PeerConnectionCore(new PeerConnectionOptions { Certificate = Certificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });
        a.AddHostCandidate(EndA);
        b.AddHostCandidate(EndB);
        a.SetRemoteDescription(b.CreateAnswer(a.CreateOffer(TimeSpan.Zero), TimeSpan.Zero), TimeSpan.Zero);
        var pa = new CorePeer(a, EndA, EndB);
        var pb = new CorePeer(b, EndB, EndA);
        pa.Drain();
        pb.Drain();
        return (new TwoPeerDriver(pa, pb), pa, pb);
    }
}
