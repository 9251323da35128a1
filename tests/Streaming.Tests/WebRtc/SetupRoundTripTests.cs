using System.Net;
using System.Text;
using Transport.Dtls;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// How many round trips a data channel takes from the offer to the first message delivered, two of our cores over a
/// virtual link with a fixed one-way delay (signaling takes the same delay each way), with and without SNAP and
/// negotiated channels, and with the loss of each packet that carries the set-up. The offerer (ICE controlling,
/// DTLS client: the answer says passive) sends "ping" the moment its channel opens; the count is when the answerer
/// has it.
/// </summary>
public sealed class SetupRoundTripTests(ITestOutputHelper output)
{
    private static readonly DtlsCertificate CertificateA = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));
    private static readonly DtlsCertificate CertificateB = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));
    private static readonly TimeSpan OneWay = TimeSpan.FromMilliseconds(25);
    private static readonly TimeSpan Rtt = 2 * OneWay;

    /// <summary>
    /// One variant of the set-up: what each side's options turn on, and whether the channel is negotiated. SPED is off
    /// here (these counts are SNAP's, with signaling taking its 25 ms each way); <see cref="WarpRoundTripTests"/>
    /// counts every combination with SPED, signaling instant, to the first message and to its echo.
    /// </summary>
    public sealed record SetupCase(string Name, Func<PeerConnectionOptions, PeerConnectionOptions> Configure, bool Negotiated,
        Func<PeerConnectionOptions, PeerConnectionOptions>? ConfigureAnswerer = null)
    {
        public override string ToString() => Name;
    }

    public static readonly SetupCase Normal = new("normal", o => o with { Snap = false }, false);
    public static readonly SetupCase NegotiatedOnly = new("negotiated", o => o with { Snap = false }, true);
    public static readonly SetupCase SnapOnly = new("snap", o => o with { Snap = true }, false);
    public static readonly SetupCase SnapNegotiated = new("snap+negotiated", o => o with { Snap = true }, true);

    /// <summary>We offer SNAP, the answerer does not take it: the four-way handshake runs.</summary>
    public static readonly SetupCase SnapOffererOnly = new("snap offered, not answered", o => o with { Snap = true }, true, o => o with { Snap = false });

    public static TheoryData<string> Cases => new() { Normal.Name, NegotiatedOnly.Name, SnapOnly.Name, SnapNegotiated.Name, SnapOffererOnly.Name };

    private static SetupCase ByName(string name) => new[] { Normal, NegotiatedOnly, SnapOnly, SnapNegotiated, SnapOffererOnly }.Single(c => c.Name == name);

    // Round trips (of 50 ms) from the offer to the answerer holding the first message, as measured; see the README's
    // set-up section for the walk-through. Signaling 1, ICE 1 (the offerer's check, sent when the answer arrives),
    // DTLS 1.3 1, then the client's Finished flight carries the first DATA half a round trip later (SNAP) or the SCTP
    // handshake takes 2 more round trips first.
    private static double ExpectedRoundTrips(string name) => name switch
    {
        "normal" => 5.5,
        "negotiated" => 5.5,
        "snap" => 3.5,
        "snap+negotiated" => 3.5,
        "snap offered, not answered" => 5.5,
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    /// <summary>A core on the link that sends "ping" on its channel as soon as it opens (offerer) and records events.</summary>
    private sealed class Peer(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote, bool sendsOnOpen) : IVirtualPeer
    {
        public PeerConnectionCore Core { get; } = core;
        public TimeSpan? OpenedAt, ReceivedAt;
        public string? Received;
        public void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now) { Core.HandleDatagram(datagram, local, remote, now); Drain(now); }
        public void HandleTimeout(TimeSpan now) { Core.HandleTimeout(now); Drain(now); }
        public bool TryPollTransmit(Span<byte> destination, out int written) => Core.TryPollTransmit(destination, out written, out _, out _);
        public TimeSpan? PollTimeout() => Core.PollTimeout();

        public void Drain(TimeSpan now)
        {
            while (Core.TryPollEvent(out var e))
            {
                switch (e)
                {
                    case DataChannelOpened o when OpenedAt is null:
                        OpenedAt = now;
                        if (sendsOnOpen)
                        {
                            o.Channel.Send("ping");
                            Core.AfterInput(now);
                        }
                        break;
                    case DataChannelMessageReceived m when ReceivedAt is null:
                        ReceivedAt = now;
                        Received = Encoding.UTF8.GetString(m.Data);
                        break;
                }
            }
        }
    }

    private sealed record SetupResult(TimeSpan Delivered, TimeSpan OffererOpened, TimeSpan AnswererOpened, bool SnapA, bool SnapB, string Offer, string Answer)
    {
        public double RoundTrips => Delivered / Rtt;
    }

    private static SetupResult Run(SetupCase c, Action<VirtualLink, Peer>? impair = null)
    {
        var endA = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var endB = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        var a = new PeerConnectionCore(c.Configure(new PeerConnectionOptions
        {
            Certificate = CertificateA,
            Sped = false,
            Ice = new IceAgentOptions { Role = IceRole.Controlling }
        }));
        var b = new PeerConnectionCore((c.ConfigureAnswerer
            ?? c.Configure)(new PeerConnectionOptions { Certificate = CertificateB, Sped = false, Ice = new IceAgentOptions { Role = IceRole.Controlled } }));
        a.AddHostCandidate(endA);
        b.AddHostCandidate(endB);
        var pa = new Peer(a, endA, endB, sendsOnOpen: true);
        var pb = new Peer(b, endB, endA, sendsOnOpen: false);
        var link = new VirtualLink(7, LinkConditions.Clean(OneWay), LinkConditions.Clean(OneWay));
        impair?.Invoke(link, pa);
        var driver = new TwoPeerDriver(pa, pb, link);
        var channel = c.Negotiated ? new DataChannelOptions { Negotiated = true, Id = 1 } : null;
        a.CreateDataChannel("warp", channel, driver.Now);
        if (c.Negotiated) b.CreateDataChannel("warp", channel, driver.Now);
        var start = driver.Now;
        var offer = a.CreateOffer(driver.Now).ToString();
        pa.Drain(driver.Now);
        driver.RunFor(OneWay);                                   // the offer travels to the answerer
        var answer = b.CreateAnswer(SessionDescription.Parse(offer), driver.Now).ToString();
        pb.Drain(driver.Now);
        driver.RunFor(OneWay);                                   // the answer travels back
        a.SetRemoteDescription(SessionDescription.Parse(answer), driver.Now);
        pa.Drain(driver.Now);
        Assert.True(driver.RunUntil(() => pb.ReceivedAt is not null, TimeSpan.FromSeconds(30)),
            $"{c.Name}: no message after 30 s; offerer {a.State} {a.Reason}, answerer {b.State} {b.Reason}");
        Assert.Equal("ping", pb.Received);
        return new SetupResult(pb.ReceivedAt!.Value - start, pa.OpenedAt!.Value - start, (pb.OpenedAt ?? pb.ReceivedAt!.Value) - start,
            a.SnapInUse, b.SnapInUse, offer, answer);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void CountsTheRoundTripsFromTheOfferToTheFirstMessage(string name)
    {
        var c = ByName(name);
        var r = Run(c);
        output.WriteLine($"{name}: first message delivered {r.Delivered.TotalMilliseconds} ms = {r.RoundTrips} RTT; offerer's channel open " +
            $"{r.OffererOpened.TotalMilliseconds} ms, answerer's {r.AnswererOpened.TotalMilliseconds} ms");
        var offered = c.Configure(new PeerConnectionOptions()).Snap;
        var snap = offered && (c.ConfigureAnswerer ?? c.Configure)(new PeerConnectionOptions()).Snap;
        Assert.Equal(snap, r.SnapA);
        Assert.Equal(snap, r.SnapB);
        Assert.Equal(offered, r.Offer.Contains("a=sctp-init:", StringComparison.Ordinal));
        Assert.Equal(snap, r.Answer.Contains("a=sctp-init:", StringComparison.Ordinal));
        Assert.Equal(ExpectedRoundTrips(name), r.RoundTrips);
    }

    [Fact]
    public void SnapWithNegotiatedChannelsSavesTwoRoundTrips()
    {
        var normal = Run(Normal);
        var fast = Run(SnapNegotiated);
        Assert.Equal(2.0, normal.RoundTrips - fast.RoundTrips);
        // With a negotiated channel the answerer's side is open when its association is: with SNAP, when its DTLS is.
        Assert.True(fast.AnswererOpened <= fast.Delivered);
    }

    private static bool IsDtls(ReadOnlyMemory<byte> d) => d.Length > 0 && d.Span[0] is >= 20 and <= 63;

    [Theory]
    [MemberData(nameof(Cases))]
    public void SetUpCompletesWhenTheFirstDtlsFlightIsLost(string name)
    {
        // The ClientHello (two datagrams with the X25519MLKEM768 key share) goes out when the pair is valid and once
        // more when the answerer's next check shows it is ready (HandlePeerReady): both copies are lost, the first
        // retransmission by the timer gets through.
        var r = Run(ByName(name), (link, a) => link.AddFilter(LinkEnd.A,
            d => d.Length > 0 && d.Span[0] == 22 && a.Core.Dtls is { State: DtlsState.Handshaking } dtls
                && dtls.Counters.Retransmissions == dtls.Counters.PeerReadyRetransmissions,
            _ => FilterAction.Drop));
        output.WriteLine($"{name}, first ClientHello flight lost: {r.Delivered.TotalMilliseconds} ms = {r.RoundTrips} RTT");
        // The DTLS client's first retransmission timeout is max(50 ms, 2 x the check's RTT) = 100 ms: 2 RTT more.
        Assert.Equal(ExpectedRoundTrips(name) + 2, r.RoundTrips);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SetUpCompletesWhenTheServersFirstDtlsFlightIsLost(string name)
    {
        var r = Run(ByName(name), (link, _) => link.DropNth(LinkEnd.B, 1, IsDtls));
        output.WriteLine($"{name}, first server flight lost: {r.Delivered.TotalMilliseconds} ms = {r.RoundTrips} RTT");
        // The client's ClientHello retransmission (100 ms) brings the server flight again: 2 RTT more.
        Assert.Equal(ExpectedRoundTrips(name) + 2, r.RoundTrips);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SetUpCompletesWhenTheFirstDatagramAfterTheHandshakeIsLost(string name)
    {
        // The offerer's first DTLS datagram once its DTLS is up: its DTLS 1.3 Finished. The next datagram (the first DATA
        // with SNAP, the INIT without) reaches the server before any Finished: the server keeps it (DtlsConnection,
        // application data before the client's Finished) and the client's Finished, resent when the server resends
        // its flight, completes the handshake and releases it.
        var r = Run(ByName(name), (link, a) => link.AddFilter(LinkEnd.A, d => IsDtls(d) && a.Core.Dtls is { State: DtlsState.Connected },
            n => n == 1 ? FilterAction.Drop : FilterAction.Pass));
        output.WriteLine($"{name}, first datagram after the handshake lost: {r.Delivered.TotalMilliseconds} ms = {r.RoundTrips} RTT");
        // The server's flight timer (100 ms): 2 RTT more. Before the server kept such data it was dropped, and the
        // DATA or INIT waited for SCTP's first RTO: 20 RTT more with RTO.Initial (1 s), 8 with ICE's round trip as seed.
        Assert.Equal(ExpectedRoundTrips(name) + 2, r.RoundTrips);
    }
}
