using Transport.Ice;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// <see cref="SpedCarriage"/> alone (draft-hancke-webrtc-sped): the ice-options it is prepared with, on or off at the
/// end of the initial exchange, the bounded early and direct queues, the flight carried by the checks and sent the
/// normal path once ICE can send, and the flushed and ended steps after an input.
/// </summary>
public sealed class SpedCarriageTests
{
    private static readonly SpedDatagramHandler Ignore = _ => { };

    // A datagram that looks like DTLS (a handshake record header, RFC 9147 section 4) with a distinct last byte.
    private static byte[] Dtls(int i)
    {
        var d = new byte[40];
        d[0] = 22;
        d[^1] = (byte)i;
        return d;
    }

    private static SpedCarriage Active()
    {
        var c = SpedCarriage.Prepare(null, Ignore)!;
        Assert.True(c.Start(["trickle", "sped"], remoteLite: false));
        return c;
    }

    [Fact]
    public void OurOfferWritesEverySpellingAndAnAnswerOnlyTheOffersOwn()
    {
        var offer = SpedCarriage.Prepare(null, Ignore)!;
        Assert.Equal(SpedAttributes.IceOptions, offer.IceOptions);
        Assert.True(offer.IsActive);
        Assert.NotNull(offer.Controller.DatagramReceived);

        var answer = SpedCarriage.Prepare(["trickle", "goog-sped-v1", "goog-sped-v1"], Ignore)!;
        Assert.Equal(new[] { "goog-sped-v1" }, answer.IceOptions);
        Assert.Null(SpedCarriage.Prepare(["trickle"], Ignore));
    }

    [Fact]
    public void APeerWithoutSpedTurnsItOffAndAnIceLitePeerGetsExtraRequests()
    {
        var off = SpedCarriage.Prepare(null, Ignore)!;
        Assert.False(off.Start(["trickle"], remoteLite: true));
        Assert.False(off.IsActive);
        Assert.Equal(SpedState.Off, off.Controller.State);

        var lite = SpedCarriage.Prepare(null, Ignore)!;
        Assert.True(lite.Start(["sped"], remoteLite: true));
        Assert.Equal(SpedCarriage.LitePeerExtraRequests, lite.Controller.ExtraRequestsForLitePeer);
        var full = SpedCarriage.Prepare(null, Ignore)!;
        Assert.True(full.Start(["sped"], remoteLite: false));
        Assert.Equal(0, full.Controller.ExtraRequestsForLitePeer);
    }

    [Fact]
    public void EarlyDatagramsAreCopiedBoundedAndTakenOnceInOrder()
    {
        var c = Active();
        var source = Dtls(0);
        for (var i = 0; i < SpedCarriage.MaxEarly; i++)
        {
            source[^1] = (byte)i;
            Assert.True(c.KeepEarly(source));
        }
        Assert.False(c.KeepEarly(Dtls(9)));   // over the bound: refused, the caller counts it
        source[^1] = 0xFF;                    // kept datagrams are copies
        var early = c.TakeEarly()!;
        Assert.Equal(new[] { 0, 1, 2, 3 }, early.Select(d => (int)d[^1]));
        Assert.Equal(0, c.EarlyCount);
        Assert.Null(c.TakeEarly());
    }

    [Fact]
    public void AFlightIsCarriedByTheChecksAndGoesTheNormalPathToo_OnlyOnceIceCanSend()
    {
        var c = Active();
        c.NewFlight().AddRange([Dtls(1), Dtls(2)]);
        Assert.Equal(0, c.CarryFlight(iceCanSend: false));
        Assert.Equal(2, c.Controller.PendingDatagrams.Count);
        Assert.Equal(0, c.DirectCount);

        var flight = c.NewFlight();
        Assert.Empty(flight);   // emptied for the next flight
        flight.AddRange(Enumerable.Range(0, SpedCarriage.MaxDirect + 3).Select(Dtls));
        Assert.Equal(3, c.CarryFlight(iceCanSend: true));   // 16 wait for the normal path, 3 refused
        Assert.Equal(SpedCarriage.MaxDirect, c.DirectCount);
        var buffer = new byte[64];
        for (var i = 0; i < SpedCarriage.MaxDirect; i++)
        {
            Assert.True(c.TryPollDirect(buffer, out var written));
            Assert.Equal((40, i), (written, (int)buffer[written - 1]));
        }
        Assert.False(c.TryPollDirect(buffer, out _));
    }

    [Fact]
    public void TheWaitingFlightIsFlushedTheFirstTimeIceCanSendAndDtlsTakesOverTheResends()
    {
        var c = Active();
        c.NewFlight().AddRange([Dtls(1), Dtls(2)]);
        c.CarryFlight(iceCanSend: false);
        Assert.False(c.AfterInput(wasActive: true, iceCanSend: false, out _));
        Assert.Equal(0, c.DirectCount);
        Assert.True(c.AfterInput(wasActive: true, iceCanSend: true, out var refused));
        Assert.Equal((0, 2), (refused, c.DirectCount));
        Assert.False(c.AfterInput(wasActive: true, iceCanSend: true, out _));   // once
        Assert.Equal(2, c.DirectCount);
        // SPED ends (off here): DTLS's timer again, the flight not queued a second time, and nothing after that.
        c.Controller.TurnOff();
        Assert.True(c.AfterInput(wasActive: false, iceCanSend: true, out _));
        Assert.True(c.Ended);
        Assert.Equal(2, c.DirectCount);
        Assert.False(c.AfterInput(wasActive: false, iceCanSend: true, out _));
    }

    [Fact]
    public void TurnedOffBeforeIceCouldSendTheWaitingFlightGoesTheNormalPath()
    {
        var c = Active();
        c.NewFlight().AddRange([Dtls(1), Dtls(2), Dtls(3)]);
        c.CarryFlight(iceCanSend: false);
        c.Controller.TurnOff();
        Assert.True(c.AfterInput(wasActive: false, iceCanSend: false, out var refused));
        Assert.Equal((0, 3, true), (refused, c.DirectCount, c.Ended));
    }

    [Fact]
    public void TheMilestoneDetailNamesTheStateAndTheCounters()
    {
        var c = Active();
        Assert.Equal(", SPED tentative (0 datagrams received in STUN, 0 sent)", c.MilestoneDetail);
    }
}
