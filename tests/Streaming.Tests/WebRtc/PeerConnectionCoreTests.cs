using System.Net;
using System.Text;
using Transport.Dtls;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>Two of our peer connections over the test kit's virtual link, on virtual time.</summary>
public sealed class PeerConnectionCoreTests
{
    private static readonly DtlsCertificate Certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));

    private sealed class Adapter(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote) : CorePeer(core, local, remote)
    {
        public IEnumerable<string> Messages => Events.OfType<DataChannelMessageReceived>().Select(m => Encoding.UTF8.GetString(m.Data));
    }

    private static (TwoPeerDriver Driver, Adapter A, Adapter B) Connect(VirtualLink? link = null, PeerConnectionOptions? options = null)
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

    [Fact]
    public void TwoPeersConnectThroughIceDtlsAndSctpAndExchangeMessages()
    {
        var (driver, a, b) = Connect();
        a.Core.CreateDataChannel("chat", null, driver.Now);
        Assert.True(driver.RunUntil(() => a.Events.OfType<DataChannelOpened>().Any() && b.Events.OfType<DataChannelOpened>().Any(), TimeSpan.FromSeconds(10)));
        Assert.Equal(ConnectionState.Connected, a.Core.State);
        Assert.Equal(ConnectionState.Connected, b.Core.State);
        Assert.True(a.Core.IsDtlsClient == true && b.Core.IsDtlsClient == false, "the answerer (passive) is the DTLS server");
        // Data only: the exported SRTP keys are kept, the session (four contexts' key schedules) is made only when media
        // needs it, or when asked for.
        Assert.False(a.Core.SrtpSessionMade);
        Assert.False(b.Core.SrtpSessionMade);
        Assert.NotNull(a.Core.Srtp);
        Assert.True(a.Core.SrtpSessionMade);
        var connectedAt = a.Events.OfType<ConnectionStateChanged>().Single(e => e.State == ConnectionState.Connected).At;
        Assert.True(connectedAt < TimeSpan.FromMilliseconds(500), $"connected at {connectedAt}");

        var channelA = a.Events.OfType<DataChannelOpened>().Single().Channel;
        var channelB = b.Events.OfType<DataChannelOpened>().Single().Channel;
        Assert.Equal("chat", channelB.Label);
        for (var i = 0; i < 100; i++) channelA.Send($"a{i}");
        channelB.Send("from b");
        Assert.True(driver.RunUntil(() => b.Messages.Count() == 100 && a.Messages.Count() == 1, TimeSpan.FromSeconds(10)));
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"a{i}"), b.Messages);
        Assert.Equal(["from b"], a.Messages);
    }

    // As the driver hands datagrams in: classified once (RFC 7983), unknown kinds dropped there, the class passed down.
    private sealed class ClassifiedAdapter(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote) : CorePeer(core, local, remote), IVirtualPeer
    {
        private readonly IPEndPoint _local = local, _remote = remote;
        public IEnumerable<string> Messages => Events.OfType<DataChannelMessageReceived>().Select(m => Encoding.UTF8.GetString(m.Data));

        void IVirtualPeer.HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now)
        {
            var kind = Transport.Streaming.Io.DatagramClassifier.Classify(datagram);
            if (kind is Transport.Streaming.Io.DatagramKind.Unknown or Transport.Streaming.Io.DatagramKind.Zrtp) return;
            Core.HandleDatagram(datagram, kind, _local, _remote, now);
            Drain();
        }
    }

    /// <summary>
    /// The driver's entry (the datagram's class given, not read again by ICE and the connection) connects and carries data as the plain one does.
    /// </summary>
    [Fact]
    public void DatagramsClassifiedOnceByTheCallerConnectAndCarryData()
    {
        var endA = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var endB = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        var a = new PeerConnectionCore(new PeerConnectionOptions { Certificate = Certificate, Ice = new IceAgentOptions { Role = IceRole.Controlling } });
        var b = new PeerConnectionCore(new PeerConnectionOptions { Certificate = Certificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });
        a.AddHostCandidate(endA);
        b.AddHostCandidate(endB);
        a.SetRemoteDescription(b.CreateAnswer(a.CreateOffer(TimeSpan.Zero), TimeSpan.Zero), TimeSpan.Zero);
        var pa = new ClassifiedAdapter(a, endA, endB);
        var pb = new ClassifiedAdapter(b, endB, endA);
        var driver = new TwoPeerDriver(pa, pb);
        a.CreateDataChannel("chat", null, driver.Now);
        Assert.True(driver.RunUntil(() => pa.Events.OfType<DataChannelOpened>().Any() && pb.Events.OfType<DataChannelOpened>().Any(),
            TimeSpan.FromSeconds(10)));
        var channel = pa.Events.OfType<DataChannelOpened>().Single().Channel;
        for (var i = 0; i < 20; i++) channel.Send($"a{i}");
        Assert.True(driver.RunUntil(() => pb.Messages.Count() == 20, TimeSpan.FromSeconds(10)));
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"a{i}"), pb.Messages);
        Assert.Equal((0L, 0L), (a.DroppedDatagrams, b.DroppedDatagrams));
    }

    [Fact]
    public void ConnectsAndDeliversEverythingUnderLossAndReordering()
    {
        var lossy = new LinkConditions
        {
            Delay = TimeSpan.FromMilliseconds(20),
            Jitter = TimeSpan.FromMilliseconds(10),
            Loss = 0.1,
            Duplicate = 0.02,
            Reorder = 0.05
        };
        var (driver, a, b) = Connect(new VirtualLink(11, lossy, lossy),
            new PeerConnectionOptions { DtlsInitialRetransmitTimeout = TimeSpan.FromMilliseconds(200) });
        a.Core.CreateDataChannel("bulk", null, driver.Now);
        Assert.True(driver.RunUntil(() => b.Events.OfType<DataChannelOpened>().Any() && a.Events.OfType<DataChannelOpened>().Any(), TimeSpan.FromSeconds(60)));
        var channel = a.Events.OfType<DataChannelOpened>().Single().Channel;
        var payload = new byte[10_000];
        for (var i = 0; i < 200; i++) { payload[0] = (byte)i; channel.Send(payload, binary: true, driver.Now); }
        Assert.True(driver.RunUntil(() => b.Events.OfType<DataChannelMessageReceived>().Count() == 200, TimeSpan.FromSeconds(120)));
        Assert.Equal(Enumerable.Range(0, 200).Select(i => (byte)i), b.Events.OfType<DataChannelMessageReceived>().Select(m => m.Data[0]));
    }

    [Fact]
    public void ClosingOneSideClosesTheOtherAtOnce()
    {
        var (driver, a, b) = Connect();
        a.Core.CreateDataChannel("chat", null, driver.Now);
        Assert.True(driver.RunUntil(() => b.Events.OfType<DataChannelOpened>().Any(), TimeSpan.FromSeconds(10)));
        var closeAt = driver.Now;
        a.Core.Close(driver.Now, "bye");
        Assert.Equal(ConnectionState.Closed, a.Core.State);
        Assert.True(driver.RunUntil(() => b.Core.State == ConnectionState.Closed, TimeSpan.FromSeconds(5)));
        var closed = b.Events.OfType<ConnectionStateChanged>().Last();
        Assert.Equal(ConnectionState.Closed, closed.State);
        Assert.Equal(ConnectionLayer.Sctp, closed.Reason.Layer);        // the ABORT arrives first
        Assert.True(closed.At - closeAt <= TimeSpan.FromMilliseconds(11), $"closed {closed.At - closeAt} after the peer closed (one-way delay 10 ms)");
        Assert.Throws<TransportNotConnectedException>(() => a.Core.CreateDataChannel("late", null, driver.Now));
    }

    [Fact]
    public void APeerThatVanishesIsDisconnectedThenFailedAtTheIceTimes()
    {
        var ice = new IceAgentOptions
        {
            KeepaliveInterval = TimeSpan.FromSeconds(1),
            DisconnectedTimeout = TimeSpan.FromSeconds(2),
            FailedTimeout = TimeSpan.FromSeconds(5)
        };
        var (driver, a, b) = Connect(options: new PeerConnectionOptions { Ice = ice });
        a.Core.CreateDataChannel("chat", null, driver.Now);
        Assert.True(driver.RunUntil(() => a.Core.State == ConnectionState.Connected && b.Core.State == ConnectionState.Connected, TimeSpan.FromSeconds(10)));
        driver.RunFor(TimeSpan.FromSeconds(10) - driver.Now);
        driver.Link.Cut = true;
        Assert.True(driver.RunUntil(() => a.Core.State == ConnectionState.Failed, TimeSpan.FromSeconds(30)));
        var changes = a.Events.OfType<ConnectionStateChanged>().ToList();
        var disconnected = changes.Single(c => c.State == ConnectionState.Disconnected);
        var failed = changes.Single(c => c.State == ConnectionState.Failed);
        Assert.InRange(disconnected.At, TimeSpan.FromSeconds(11), TimeSpan.FromSeconds(12.01));
        Assert.Equal(TimeSpan.FromSeconds(5), failed.At - disconnected.At);
        Assert.Equal(ConnectionLayer.Ice, failed.Reason.Layer);
    }
}
