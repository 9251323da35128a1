using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// The composition reports which layer's which timer is next and which one fired (PeerConnectionDeadline), on virtual
/// time over the test kit's link.
/// </summary>
public sealed class PeerConnectionDeadlineTests
{
    private static readonly DtlsCertificate Certificate =
        DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50), DateTimeOffset.UnixEpoch.AddYears(80));

    /// <summary>Records every deadline the driver was given, with its owner.</summary>
    private sealed class Adapter(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote) : CorePeer(core, local, remote), IVirtualPeer
    {
        public HashSet<PeerConnectionDeadline> Reported { get; } = new();
        public HashSet<PeerConnectionDeadline> Fired { get; } = new();

        TimeSpan? IVirtualPeer.PollTimeout()
        {
            var due = Core.PollTimeout(out var deadline);
            Assert.Equal(due is null, deadline.Layer == PeerConnectionLayer.None);
            if (due is not null) Reported.Add(deadline);
            return due;
        }

        void IVirtualPeer.HandleTimeout(TimeSpan now)
        {
            var before = Core.TimersFired;
            HandleTimeout(now);
            if (Core.TimersFired > before) Fired.Add(Core.LastTimerFired);
        }
    }

    private static (TwoPeerDriver Driver, Adapter A, Adapter B) Connect(VirtualLink link, PeerConnectionOptions? options = null)
    {
        var endA = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var endB = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        options ??= new PeerConnectionOptions();
        var a = new PeerConnectionCore(options with { Certificate = Certificate, Ice = options.Ice with { Role = IceRole.Controlling } });
        var b = new PeerConnectionCore(options with { Certificate = Certificate, Ice = options.Ice with { Role = IceRole.Controlled } });
        a.AddHostCandidate(endA);
        b.AddHostCandidate(endB);
        var offer = SessionDescription.Parse(a.CreateOffer(TimeSpan.Zero).ToString());
        var answer = SessionDescription.Parse(b.CreateAnswer(offer, TimeSpan.Zero).ToString());
        a.SetRemoteDescription(answer, TimeSpan.Zero);
        var adapterA = new Adapter(a, endA, endB);
        var adapterB = new Adapter(b, endB, endA);
        adapterA.Drain();
        adapterB.Drain();
        return (new TwoPeerDriver(adapterA, adapterB, link), adapterA, adapterB);
    }

    private static readonly PeerConnectionDeadline DtlsRetransmission = new(PeerConnectionLayer.Dtls, Dtls: DtlsTimer.Retransmission);
    private static readonly PeerConnectionDeadline SctpT3Rtx = new(PeerConnectionLayer.Sctp, Sctp: SctpTimer.T3Rtx);

    [Fact]
    public void TheDeadlineNamesTheLayerAndItsOwnTimer()
    {
        Assert.Equal("Sctp.T3Rtx", SctpT3Rtx.ToString());
        Assert.Equal("Dtls.Retransmission", DtlsRetransmission.ToString());
        Assert.Equal("Ice.ConsentCheck", new PeerConnectionDeadline(PeerConnectionLayer.Ice, Ice: IceTimer.ConsentCheck).ToString());
        Assert.Equal("Media.RtcpReport", new PeerConnectionDeadline(PeerConnectionLayer.Media, Media: MediaTimer.RtcpReport).ToString());
        Assert.Equal("None", default(PeerConnectionDeadline).ToString());
    }

    [Fact]
    public void ALostDtlsFlightIsReportedAsTheDtlsRetransmissionTimer()
    {
        var link = new VirtualLink();
        // The DTLS server's records never arrive (RFC 7983: first byte 20-63; without SPED, which would carry them in
        // the ICE checks): the client's flight timer fires.
        link.AddFilter(LinkEnd.B, d => d.Span[0] is >= 20 and <= 63, _ => FilterAction.Drop);
        var (driver, a, _) = Connect(link, new PeerConnectionOptions { Sped = false });
        Assert.True(driver.RunUntil(() => a.Fired.Contains(DtlsRetransmission), TimeSpan.FromSeconds(10)));
        Assert.Contains(DtlsRetransmission, a.Reported);
        Assert.NotEqual(ConnectionState.Connected, a.Core.State);
    }

    [Fact]
    public void AMessageOnACutPathIsReportedAsSctpT3RtxInHealthToo()
    {
        var (driver, a, b) = Connect(new VirtualLink());
        a.Core.CreateDataChannel("chat", null, driver.Now);
        Assert.True(driver.RunUntil(() => a.Events.OfType<DataChannelOpened>().Any() && b.Events.OfType<DataChannelOpened>().Any(), TimeSpan.FromSeconds(10)));
        Assert.DoesNotContain(SctpT3Rtx, a.Fired);

        driver.RunFor(TimeSpan.FromMilliseconds(500)); // acknowledgements settle

        driver.Link.Cut = true;
        a.Events.OfType<DataChannelOpened>().Single().Channel.Send("lost");
        Assert.True(driver.RunUntil(() => a.Fired.Contains(SctpT3Rtx), TimeSpan.FromSeconds(10)));
        Assert.Contains(SctpT3Rtx, a.Reported);
        Assert.Equal(SctpT3Rtx, a.Core.LastTimerFired);

        // Health shows the same: the next deadline with its owner, and the last one that fired.
        var due = a.Core.PollTimeout(out var next);
        var health = a.Core.GetHealth(driver.Now);
        Assert.Equal(due is null ? null : next, health.NextTimer);
        Assert.Equal(due is { } d ? (d < driver.Now ? TimeSpan.Zero : d - driver.Now) : null, health.NextTimerIn);
        Assert.Equal(SctpT3Rtx, health.LastTimerFired);
    }
}
