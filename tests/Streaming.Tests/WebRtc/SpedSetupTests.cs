using System.Net;
using System.Text;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// SPED (draft-hancke-webrtc-sped) between two of our cores on virtual time over a link with a fixed 25 ms one-way
/// delay (RTT 50 ms): the DTLS handshake rides in the ICE checks, so DTLS connects a round trip earlier than the
/// normal path; with DTLS 1.2 and 1.3, with a carrying packet lost, and with a peer that does not offer SPED.
/// Signaling is instant (the answer is applied at the offer's instant): the round trips counted are the network's.
/// </summary>
public sealed class SpedSetupTests(ITestOutputHelper output)
{
    private static readonly DtlsCertificate Certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));
    private static readonly TimeSpan OneWay = TimeSpan.FromMilliseconds(25);
    private static readonly TimeSpan Rtt = OneWay + OneWay;

    private sealed record Setup(TimeSpan DtlsA, TimeSpan DtlsB, TimeSpan FirstMessage, PeerConnectionCore A, PeerConnectionCore B, VirtualLink Link)
    {
        public double Rtts(TimeSpan t) => t / Rtt;
    }

    private static Setup Run(bool spedA, bool spedB, DtlsVersion version, Action<VirtualLink>? configure = null, bool liteB = false, List<string>? trace = null)
    {
        var endA = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var endB = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        PeerConnectionOptions Options(bool sped, IceRole role, bool lite) => new()
        {
            Certificate = Certificate,
            Sped = sped,
            Snap = false,   // the counts here are SPED's alone (SetupRoundTripTests counts SNAP's)
            DtlsMaxVersion = version,
            Ice = new IceAgentOptions { Role = role, Lite = lite },
        };
        var a = new PeerConnectionCore(Options(spedA, IceRole.Controlling, false));
        var b = new PeerConnectionCore(Options(spedB, IceRole.Controlled, liteB));
        a.AddHostCandidate(endA);
        b.AddHostCandidate(endB);
        var pa = new CorePeer(a, endA, endB);
        var pb = new CorePeer(b, endB, endA);
        var link = new VirtualLink(7, LinkConditions.Clean(OneWay), LinkConditions.Clean(OneWay));
        TwoPeerDriver? driver = null;
        if (trace is not null)
            foreach (var end in new[] { LinkEnd.A, LinkEnd.B })
                link.AddFilter(end, d => { trace.Add($"{driver?.Now.TotalMilliseconds,5} ms {end}->: {Describe(d.Span)}"); return false; },
                    _ => FilterAction.Pass);
        configure?.Invoke(link);
        driver = new TwoPeerDriver(pa, pb, link);
        var offer = SessionDescription.Parse(a.CreateOffer(driver.Now).ToString());
        var answer = SessionDescription.Parse(b.CreateAnswer(offer, driver.Now).ToString());
        pb.Drain();
        a.SetRemoteDescription(answer, driver.Now);
        pa.Drain();
        a.CreateDataChannel("chat", null, driver.Now);
        Assert.True(driver.RunUntil(() => pa.Events.OfType<DataChannelOpened>().Any(), TimeSpan.FromSeconds(20)), "the channel did not open");
        var channel = pa.Events.OfType<DataChannelOpened>().First().Channel;
        channel.Send("hello", driver.Now);
        a.AfterInput(driver.Now);
        Assert.True(driver.RunUntil(() => pb.Events.OfType<DataChannelMessageReceived>().Any(), TimeSpan.FromSeconds(20)), "the message did not arrive");
        var message = pb.Events.OfType<DataChannelMessageReceived>().First();
        Assert.Equal("hello", Encoding.UTF8.GetString(message.Data));
        TimeSpan Dtls(CorePeer p) => p.Events.OfType<ConnectionMilestoneReached>().Single(m => m.Milestone == ConnectionMilestone.DtlsConnected).At;
        return new Setup(Dtls(pa), Dtls(pb), message.At, a, b, link);
    }

    private void Report(string name, Setup s) =>
        output.WriteLine($"{name}: DTLS connected A {s.DtlsA.TotalMilliseconds} ms ({s.Rtts(s.DtlsA):0.##} RTT), B {s.DtlsB.TotalMilliseconds} ms " +
                         $"({s.Rtts(s.DtlsB):0.##} RTT); " +
                         $"first message {s.FirstMessage.TotalMilliseconds} ms ({s.Rtts(s.FirstMessage):0.##} RTT); datagrams A->B " +
                         $"{s.Link.SentFrom(LinkEnd.A)}, B->A {s.Link.SentFrom(LinkEnd.B)}; " +
                         $"SPED A {s.A.Sped?.State} recv {s.A.Sped?.Counters.DatagramsReceived}, B {s.B.Sped?.State} recv " +
                         $"{s.B.Sped?.Counters.DatagramsReceived}");

    [Theory]
    [InlineData(DtlsVersion.Dtls13)]
    [InlineData(DtlsVersion.Dtls12)]
    public void TheHandshakeRidesInTheChecksAndDtlsConnectsARoundTripEarlier(DtlsVersion version)
    {
        var normal = Run(false, false, version);
        var sped = Run(true, true, version);
        Report($"{version} normal", normal);
        Report($"{version} SPED", sped);
        Assert.Null(normal.A.Sped);
        Assert.Null(normal.B.Sped);
        Assert.Equal(version, sped.A.Dtls!.Version);
        // Both sides took records out of the checks and completed there.
        Assert.True(sped.A.Sped!.Counters.DatagramsReceived > 0);
        Assert.True(sped.B.Sped!.Counters.DatagramsReceived > 0);
        Assert.True(sped.A.DtlsCompletedBySped && sped.B.DtlsCompletedBySped);
        // One round trip saved on DTLS connected (both sides) and on the first message.
        Assert.True(sped.DtlsA + Rtt <= normal.DtlsA, $"A: SPED {sped.DtlsA} vs normal {normal.DtlsA}");
        Assert.True(sped.DtlsB + Rtt <= normal.DtlsB, $"B: SPED {sped.DtlsB} vs normal {normal.DtlsB}");
        Assert.True(sped.FirstMessage + Rtt <= normal.FirstMessage, $"message: SPED {sped.FirstMessage} vs normal {normal.FirstMessage}");
        // No DTLS retransmission was needed: the checks carried every flight once.
        Assert.Equal(0, sped.A.Dtls.Counters.Retransmissions);
        Assert.Equal(0, sped.B.Dtls!.Counters.Retransmissions);
    }

    // One line of the trace: a STUN message's class and SPED attributes, else the DTLS record type or SCTP.
    private static string Describe(ReadOnlySpan<byte> d)
    {
        if (d.Length >= 20 && d[0] < 2)
        {
            var kind = d[0] == 0 && d[1] == 1 ? "request" : d[0] == 1 && d[1] == 1 ? "response" : $"stun {d[0]:x2}{d[1]:x2}";
            var at = 20;
            var parts = new List<string>();
            while (at + 4 <= d.Length)
            {
                var type = (d[at] << 8) | d[at + 1];
                var length = (d[at + 2] << 8) | d[at + 3];
                if (type == SpedAttributes.DtlsInStun) parts.Add($"data {length}");
                if (type == SpedAttributes.DtlsInStunAck) parts.Add($"ack {length / 4}");
                if (type == 0x0025) parts.Add("use-candidate");
                at += 4 + ((length + 3) & ~3);
            }
            return $"{kind} {d.Length} B {string.Join(", ", parts)}";
        }
        return d.Length > 0 && d[0] is > 19 and < 64 ? $"dtls {d.Length} B, first record type {d[0]}" : $"other {d.Length} B";
    }

    [Theory]
    [InlineData(DtlsVersion.Dtls13, LinkEnd.A)]
    [InlineData(DtlsVersion.Dtls13, LinkEnd.B)]
    [InlineData(DtlsVersion.Dtls12, LinkEnd.A)]
    [InlineData(DtlsVersion.Dtls12, LinkEnd.B)]
    public void LosingTheFirstCarryingPacketStillCompletes(DtlsVersion version, LinkEnd from)
    {
        // The first STUN message from that end that carries a DTLS datagram (META-DTLS-IN-STUN, 0xC070) is lost.
        var trace = new List<string>();
        var s = Run(true, true, version, link => link.DropNth(from, 1, d => d.Length > 20 && d.Span[0] < 2 && Carries(d.Span)), trace: trace);
        Report($"{version} SPED, first carrying packet from {from} lost", s);
        foreach (var line in trace.Take(60)) output.WriteLine(line);
        Assert.Equal(1, s.Link.Dropped);
        Assert.True(s.A.Dtls!.State == DtlsState.Connected && s.B.Dtls!.State == DtlsState.Connected);
        // Not after ICE's 500 ms check retransmission: the peer's check on the pair brings a new check of ours at once.
        Assert.True(s.FirstMessage <= 8 * Rtt, $"first message at {s.FirstMessage}");
    }

    [Theory]
    [InlineData(DtlsVersion.Dtls13)]
    [InlineData(DtlsVersion.Dtls12)]
    public void AnIceLiteAnswererCarriesItsFlightsInItsResponses(DtlsVersion version)
    {
        // B is ICE-lite (it never sends a check): every flight of its DTLS server goes in a Binding response.
        var normal = Run(false, false, version, liteB: true);
        var sped = Run(true, true, version, liteB: true);
        Report($"{version} lite answerer, normal", normal);
        Report($"{version} lite answerer, SPED", sped);
        Assert.True(sped.B.Ice.IsLite);
        Assert.Equal(version, sped.B.Dtls!.Version);
        Assert.True(sped.A.Sped!.Counters.DatagramsReceived > 0, "A received nothing in STUN");
        Assert.True(sped.B.Sped!.Counters.DatagramsReceived > 0, "B received nothing in STUN");
        Assert.True(sped.A.DtlsCompletedBySped && sped.B.DtlsCompletedBySped);
        Assert.True(sped.DtlsA + Rtt <= normal.DtlsA, $"A: SPED {sped.DtlsA} vs normal {normal.DtlsA}");
        Assert.True(sped.DtlsB + Rtt <= normal.DtlsB, $"B: SPED {sped.DtlsB} vs normal {normal.DtlsB}");
        Assert.True(sped.FirstMessage + Rtt <= normal.FirstMessage, $"message: SPED {sped.FirstMessage} vs normal {normal.FirstMessage}");
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void APeerWithoutSpedGetsTheNormalPath(bool spedA, bool spedB)
    {
        var s = Run(spedA, spedB, DtlsVersion.Dtls13);
        Report($"SPED A {spedA} B {spedB}", s);
        // The side that offered SPED (or would answer it) turned it off; nothing was carried.
        foreach (var core in new[] { s.A, s.B })
            Assert.True(core.Sped is null || core.Sped.State == SpedState.Off, $"{core.Sped?.State}");
        Assert.Equal(0, (s.A.Sped?.Counters.DatagramsReceived ?? 0) + (s.B.Sped?.Counters.DatagramsReceived ?? 0));
        Assert.True(s.FirstMessage < TimeSpan.FromSeconds(1), $"first message at {s.FirstMessage}");
    }

    // After the handshake SPED acknowledges only what a flight can be: a datagram starting with application data is not
    // CRC'd (RFC 9147 section 4 unified header 001CSLEE, as our writer makes it: 0x2C | epoch & 3; DTLS 1.2 type 23).
    [Theory]
    [InlineData(new byte[] { 23, 0xFE, 0xFD, 0, 1 }, true)]    // DTLS 1.2 application data
    [InlineData(new byte[] { 22, 0xFE, 0xFD, 0, 1 }, false)]   // a handshake record (plaintext, or 1.2's encrypted Finished)
    [InlineData(new byte[] { 20, 0xFE, 0xFD }, false)]         // change_cipher_spec
    [InlineData(new byte[] { 0x2C | 3, 0, 1 }, true)]          // DTLS 1.3, epoch 3: the first application epoch
    [InlineData(new byte[] { 0x2C | 2, 0, 1 }, false)]         // DTLS 1.3, epoch 2: the encrypted handshake flights
    [InlineData(new byte[] { 0x20 | 3, 0 }, true)]             // epoch 3 with a one-byte sequence number and no length
    [InlineData(new byte[] { }, false)]
    public void ApplicationDataIsToldApartFromHandshakeFlights(byte[] datagram, bool applicationData) =>
        Assert.Equal(applicationData, SpedCarriage.IsApplicationData(datagram));

    [Fact]
    public void TheOfferAndAnswerCarryTheIceOptionOnlyWhenBothSidesHaveIt()
    {
        using var a = new PeerConnectionCore(new PeerConnectionOptions { Certificate = Certificate });
        using var b = new PeerConnectionCore(new PeerConnectionOptions { Certificate = Certificate, Sped = false });
        a.AddHostCandidate(new IPEndPoint(IPAddress.Loopback, 1000));
        b.AddHostCandidate(new IPEndPoint(IPAddress.Loopback, 2000));
        var offer = a.CreateOffer(TimeSpan.Zero);
        Assert.Contains("a=ice-options:trickle sped goog-sped-v1 googspedv1", offer.ToString(), StringComparison.Ordinal);
        var answer = b.CreateAnswer(SessionDescription.Parse(offer.ToString()), TimeSpan.Zero);
        Assert.Contains("a=ice-options:trickle\r\n", answer.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("sped", answer.ToString(), StringComparison.Ordinal);

        // Chromium 156's spelling is answered in kind.
        using var c = new PeerConnectionCore(new PeerConnectionOptions { Certificate = Certificate });
        c.AddHostCandidate(new IPEndPoint(IPAddress.Loopback, 3000));
        var chromiumStyle = SessionDescription.Parse(offer.ToString().Replace("trickle sped goog-sped-v1 googspedv1", "trickle sped googspedv1",
            StringComparison.Ordinal));
        var answer2 = c.CreateAnswer(chromiumStyle, TimeSpan.Zero);
        Assert.Contains("a=ice-options:trickle sped googspedv1\r\n", answer2.ToString(), StringComparison.Ordinal);
        Assert.NotNull(c.Sped);
    }

    // Whether a STUN message carries a META-DTLS-IN-STUN attribute with a value.
    private static bool Carries(ReadOnlySpan<byte> stun)
    {
        var at = 20;
        while (at + 4 <= stun.Length)
        {
            var type = (stun[at] << 8) | stun[at + 1];
            var length = (stun[at + 2] << 8) | stun[at + 3];
            if (type == SpedAttributes.DtlsInStun && length > 0) return true;
            at += 4 + ((length + 3) & ~3);
        }
        return false;
    }
}
