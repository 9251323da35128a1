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
/// The WARP set-up (draft-uberti-tsvwg-warp: SPED, SNAP and negotiated channels together) counted: two of our cores on
/// virtual time over a link with a fixed 25 ms one-way delay (RTT 50 ms), signaling instant (the answer is applied at
/// the offer's instant, so the round trips counted are the network's). For each variant and DTLS version: from the
/// offer to the answerer holding the first data-channel message, and to the offerer holding its echo. The offerer
/// (ICE controlling, DTLS client) sends "ping" the moment its channel opens; the answerer echoes the moment it has it.
/// </summary>
public sealed class WarpRoundTripTests(ITestOutputHelper output)
{
    private static readonly DtlsCertificate CertificateA = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));
    private static readonly DtlsCertificate CertificateB = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));
    private static readonly TimeSpan OneWay = TimeSpan.FromMilliseconds(25);
    private static readonly TimeSpan Rtt = OneWay + OneWay;

    public sealed record Variant(string Name, bool Sped, bool Snap, bool Negotiated)
    {
        public override string ToString() => Name;
    }

    public static readonly Variant[] Variants =
    [
        new("normal", false, false, false),
        new("snap", false, true, false),
        new("sped", true, false, false),
        new("sped+snap", true, true, false),
        new("sped+snap+negotiated", true, true, true),
    ];

    private static Variant ByName(string name) => Variants.Single(v => v.Name == name);

    public static TheoryData<string, DtlsVersion> Matrix()
    {
        var data = new TheoryData<string, DtlsVersion>();
        foreach (var v in Variants)
            foreach (var version in new[] { DtlsVersion.Dtls13, DtlsVersion.Dtls12 })
                data.Add(v.Name, version);
        return data;
    }

    private sealed class Peer(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote, bool offerer) : IVirtualPeer
    {
        public PeerConnectionCore Core { get; } = core;
        public TimeSpan? OpenedAt, ReceivedAt;
        public string? Received;
        public int Messages;
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
                        if (offerer)
                        {
                            o.Channel.Send("ping");
                            Core.AfterInput(now);
                        }
                        break;
                    case DataChannelMessageReceived when ReceivedAt is not null:
                        Messages++;
                        break;
                    case DataChannelMessageReceived m:
                        Messages++;
                        ReceivedAt = now;
                        Received = Encoding.UTF8.GetString(m.Data);
                        if (!offerer)
                        {
                            m.Channel.Send("pong");
                            Core.AfterInput(now);
                        }
                        break;
                }
            }
        }
    }

    private sealed record Result(TimeSpan Delivered, TimeSpan Echoed, TimeSpan OffererOpened, TimeSpan AnswererOpened, PeerConnectionCore A,
        PeerConnectionCore B, VirtualLink Link, List<string> Trace)
    {
        /// <summary>When the offerer applied the answer, from the offer (0 unless the run delays the answer).</summary>
        public TimeSpan AnswerApplied { get; init; }
        /// <summary>Round trips from the answer applied at the offerer to the offerer holding the echo (the bench's count).</summary>
        public double EchoedAfterAnswerRtt => (Echoed - AnswerApplied) / Rtt;

        public double DeliveredRtt => Delivered / Rtt;
        public double EchoedRtt => Echoed / Rtt;
    }

    private static Result Run(Variant v, DtlsVersion version, Action<VirtualLink, Peer, Peer>? impair = null, bool chromiumLikeOfferer = false,
        TimeSpan answerDelay = default)
    {
        var endA = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var endB = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        PeerConnectionOptions Options(DtlsCertificate certificate, IceRole role) => new()
        {
            Certificate = certificate,
            Sped = v.Sped,
            Snap = v.Snap,
            DtlsMaxVersion = version,
            Ice = new IceAgentOptions { Role = role },
        };
        var a = new PeerConnectionCore(Options(CertificateA, IceRole.Controlling));
        var b = new PeerConnectionCore(Options(CertificateB, IceRole.Controlled));
        a.AddHostCandidate(endA);
        b.AddHostCandidate(endB);
        var pa = new Peer(a, endA, endB, offerer: true);
        var pb = new Peer(b, endB, endA, offerer: false);
        var link = new VirtualLink(7, LinkConditions.Clean(OneWay), LinkConditions.Clean(OneWay));
        var trace = new List<string>();
        TwoPeerDriver? driver = null;
        foreach (var end in new[] { LinkEnd.A, LinkEnd.B })
            link.AddFilter(end, d =>
            {
                trace.Add($"{driver?.Now.TotalMilliseconds,5} ms {(end == LinkEnd.A ? "A->B" : "B->A")} {Describe(d.Span)}");
                return false;
            }, _ => FilterAction.Pass);
        impair?.Invoke(link, pa, pb);
        driver = new TwoPeerDriver(pa, pb, link);
        var channel = v.Negotiated ? new DataChannelOptions { Negotiated = true, Id = 1 } : null;
        a.CreateDataChannel("warp", channel, driver.Now);
        if (v.Negotiated) b.CreateDataChannel("warp", channel, driver.Now);
        var start = driver.Now;
        var offer = a.CreateOffer(driver.Now).ToString();
        // Chromium 156's SPED: one DTLS datagram a STUN message, the rest waits for its next check or response.
        if (chromiumLikeOfferer) a.Sped!.CarriesFlightAtOnce = false;
        pa.Drain(driver.Now);
        var answer = b.CreateAnswer(SessionDescription.Parse(offer), driver.Now).ToString();
        pb.Drain(driver.Now);
        // The answer reaches the offerer answerDelay after the answerer made it (signaling); the answerer's first check
        // leaves at once, so it may reach the offerer before the answer does.
        if (answerDelay > TimeSpan.Zero) driver.RunFor(answerDelay);
        var answerApplied = driver.Now - start;
        a.SetRemoteDescription(SessionDescription.Parse(answer), driver.Now);
        pa.Drain(driver.Now);
        Assert.True(driver.RunUntil(() => pa.ReceivedAt is not null, TimeSpan.FromSeconds(30)),
            $"{v.Name} {version}: no echo after 30 s; offerer {a.State} {a.Reason}, answerer {b.State} {b.Reason}; answerer has {pb.Received ?? "nothing"}");
        var echoedAt = driver.Now;
        // Nothing more arrives later (no duplicate from a retransmission that crossed its acknowledgement).
        driver.RunFor(TimeSpan.FromSeconds(3));
        Assert.Equal("ping", pb.Received);
        Assert.Equal("pong", pa.Received);
        Assert.Equal(1, pb.Messages);
        Assert.Equal(1, pa.Messages);
        Assert.Equal(ConnectionState.Connected, a.State);
        Assert.Equal(ConnectionState.Connected, b.State);
        Assert.Equal(version, a.Dtls!.Version);
        Assert.Equal(v.Snap, a.SnapInUse);
        Assert.Equal(v.Snap, b.SnapInUse);
        Assert.Equal(v.Sped, a.DtlsCompletedBySped);
        Assert.Equal(v.Sped, b.DtlsCompletedBySped);
        Assert.Equal(echoedAt, pa.ReceivedAt);
        return new Result(pb.ReceivedAt!.Value - start, pa.ReceivedAt!.Value - start, pa.OpenedAt!.Value - start,
            (pb.OpenedAt ?? pb.ReceivedAt!.Value) - start, a, b, link, trace)
        { AnswerApplied = answerApplied };
    }

    // One line of the trace: a STUN message's class and SPED attributes, a DTLS record's type, else its size.
    internal static string Describe(ReadOnlySpan<byte> d)
    {
        if (d.Length >= 20 && d[0] < 2)
        {
            var kind = d[0] == 0 && d[1] == 1 ? "check" : d[0] == 1 && d[1] == 1 ? "response" : $"stun {d[0]:x2}{d[1]:x2}";
            var at = 20;
            var parts = new List<string>();
            while (at + 4 <= d.Length)
            {
                var type = (d[at] << 8) | d[at + 1];
                var length = (d[at + 2] << 8) | d[at + 3];
                if (type == SpedAttributes.DtlsInStun) parts.Add(length > 0 ? $"DTLS {length} B ({RecordKinds(d.Slice(at + 4, length))})" : "empty DTLS");
                if (type == SpedAttributes.DtlsInStunAck) parts.Add($"ack {length / 4}");
                if (type == 0x0025) parts.Add("use-candidate");
                at += 4 + ((length + 3) & ~3);
            }
            return $"{kind} {d.Length} B {string.Join(", ", parts)}";
        }
        return d.Length > 0 && d[0] is > 19 and < 64 ? $"DTLS {d.Length} B ({RecordKinds(d)})" : $"other {d.Length} B";
    }

    // The records of a DTLS datagram: plaintext ones by content type, DTLS 1.3 ciphertext ("enc") by length.
    private static string RecordKinds(ReadOnlySpan<byte> d)
    {
        var kinds = new List<string>();
        var at = 0;
        for (var i = 0; i < 16 && at < d.Length; i++)
        {
            var first = d[at];
            if ((first & 0xE0) == 0x20)
            {
                // Unified header: C bit 0x10, S bit 0x08 (16-bit sequence), L bit 0x04 (length present).
                var header = 1 + ((first & 0x10) != 0 ? 1 : 0) + ((first & 0x08) != 0 ? 2 : 1);
                if ((first & 0x04) == 0) { kinds.Add($"enc {d.Length - at - header}"); break; }
                if (at + header + 2 > d.Length) break;
                var length = (d[at + header] << 8) | d[at + header + 1];
                kinds.Add($"enc {length}");
                at += header + 2 + length;
            }
            else
            {
                if (at + 13 > d.Length) break;
                var length = (d[at + 11] << 8) | d[at + 12];
                kinds.Add(first switch { 20 => "ccs", 21 => "alert", 22 => "hs", 23 => "app", _ => $"type {first}" } + $" {length}");
                at += 13 + length;
            }
        }
        return string.Join(" + ", kinds);
    }

    private void Report(string what, Result r, bool trace = true)
    {
        output.WriteLine($"{what}: delivered {r.Delivered.TotalMilliseconds} ms = {r.DeliveredRtt} RTT, echoed " +
                         $"{r.Echoed.TotalMilliseconds} ms = {r.EchoedRtt} RTT; " +
                         $"datagrams A->B {r.Link.SentFrom(LinkEnd.A)}, B->A {r.Link.SentFrom(LinkEnd.B)}, dropped {r.Link.Dropped}; " +
                         $"DTLS retransmissions A {r.A.Dtls!.Counters.Retransmissions} B {r.B.Dtls!.Counters.Retransmissions}; " +
                         $"SCTP RTO A {r.A.Sctp!.Rto.TotalMilliseconds} ms, B {r.B.Sctp!.Rto.TotalMilliseconds} ms, T3 expirations A " +
                         $"{r.A.Sctp.Counters.T3Expirations} B {r.B.Sctp.Counters.T3Expirations}");
        if (trace)
            foreach (var line in r.Trace.Take(60)) output.WriteLine(line);
    }

    // Round trips (of 50 ms) from the offer, signaling instant, to the answerer holding "ping" and to the offerer
    // holding "pong" (half a round trip later: the answerer echoes at once). Walk-through in docs/webrtc.md ("WARP").
    // ICE 1 RTT (the offerer's check and its response), DTLS 1.3 1 RTT (the client's Finished goes with the first
    // DATA), DTLS 1.2 2 RTT (the client sends data only after the server's Finished), the SCTP handshake 2 RTT
    // (INIT, COOKIE ECHO; the DCEP OPEN goes with the first message). SPED runs ICE and DTLS in the same round trips;
    // SNAP drops the SCTP handshake; a negotiated channel saves the offerer's first message nothing (DATA follows
    // the DCEP OPEN at once).
    private static (double Delivered, double Echoed) Expected(string name, DtlsVersion version) => (name, version) switch
    {
        ("normal", DtlsVersion.Dtls13) => (4.5, 5),
        ("normal", DtlsVersion.Dtls12) => (5.5, 6),
        ("snap", DtlsVersion.Dtls13) => (2.5, 3),
        ("snap", DtlsVersion.Dtls12) => (3.5, 4),
        ("sped", DtlsVersion.Dtls13) => (3.5, 4),
        ("sped", DtlsVersion.Dtls12) => (4.5, 5),
        ("sped+snap" or "sped+snap+negotiated", DtlsVersion.Dtls13) => (1.5, 2),
        ("sped+snap" or "sped+snap+negotiated", DtlsVersion.Dtls12) => (2.5, 3),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(Matrix))]
    public void CountsTheRoundTripsToTheFirstMessageAndItsEcho(string name, DtlsVersion version)
    {
        var r = Run(ByName(name), version);
        Report($"{name} {version}", r);
        var (delivered, echoed) = Expected(name, version);
        Assert.Equal(delivered, r.DeliveredRtt);
        Assert.Equal(echoed, r.EchoedRtt);
        // Nothing was resent by a timer on a clean link once SPED carries the handshake.
        if (ByName(name).Sped) Assert.Equal(0, r.A.Dtls!.Counters.Retransmissions + r.B.Dtls!.Counters.Retransmissions);
    }

    [Fact]
    public void AllOnTheFirstEchoComesTwoRoundTripsAfterTheOffer()
    {
        // The goal of issue 18: at most 2 RTT from the offer to the first echo with SPED, SNAP and a negotiated
        // channel (DTLS 1.3; signaling instant; crypto takes no virtual time).
        var all = Run(ByName("sped+snap+negotiated"), DtlsVersion.Dtls13);
        var normal = Run(ByName("normal"), DtlsVersion.Dtls13);
        Report("all on, DTLS 1.3", all);
        Assert.True(all.Echoed <= 2 * Rtt, $"echo at {all.Echoed.TotalMilliseconds} ms");
        Assert.Equal(3.0, normal.EchoedRtt - all.EchoedRtt);
        // The offerer's channel opened when the server flight reached it (1 RTT: its DTLS connected, SNAP's
        // association ESTABLISHED, the negotiated channel open) and the message left with its Finished; the
        // answerer's channel was open when the message arrived (its DTLS connected on that Finished).
        Assert.Equal(Rtt, all.OffererOpened);
        Assert.Equal(all.Delivered, all.AnswererOpened);
    }

    [Fact]
    public void AnOffererThatCarriesOneDatagramAMessageGetsItsSecondToUsInTheResponseToOurFirstCheck()
    {
        // Chromium 156 offering with SPED and SNAP (bench setup-time, "Chromium -> ours"): its DTLS 1.3 ClientHello
        // (an X25519MLKEM768 key share) is two datagrams and each STUN message carries one, so its first check brings
        // the first half only. Our first check (the answerer's) leaves with the answer (no ControlledCheckHold while SPED
        // carries the handshake) and the offerer's response to it brings the second half at 1 RTT; the server flight goes
        // at once (the response made the pair valid), the Finished and first DATA come back at 2 RTT, the echo reaches the
        // offerer at 2.5. Before, our checks waited for the offerer's first (0.5 RTT), so the second half came in the
        // response to our triggered check at 1.5 RTT: message 2.5, echo 3 (one round trip more than ours <-> ours,
        // where the offerer sends its whole flight with its first check).
        var r = Run(ByName("sped+snap"), DtlsVersion.Dtls13, chromiumLikeOfferer: true);
        Report("Chromium-like offerer, sped+snap, DTLS 1.3", r);
        Assert.Equal(2, r.DeliveredRtt);
        Assert.Equal(2.5, r.EchoedRtt);
        // The answerer's first packet was a check at the answer's instant, and the response that completed its
        // ClientHello was the offerer's answer to it.
        Assert.StartsWith("    0 ms B->A check", r.Trace.First(l => l.Contains(" B->A ", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Equal(0, r.A.Dtls!.Counters.Retransmissions + r.B.Dtls!.Counters.Retransmissions);
        Assert.Equal(0, r.B.Ice.DroppedCount(IceDropReason.UnknownTransaction));
    }

    // A Chromium-like offerer (one DTLS datagram a STUN message) whose answer is applied `answerDelayMs` after we made it
    // (the bench's Playwright hop, or a signaling server), while our first check leaves with the answer. Counted from the
    // answer applied at the offerer, as the bench counts, to the offerer holding the echo; the ideal is 2 RTT (its whole
    // ClientHello in its first check, as ours <-> ours). Traced in docs/ice.md ("SPED", Chromium offering).
    // - Our check reaches it after it applied the answer (0-20 ms): its answer to our check carries the ClientHello's
    //   second half, which reaches us 25 - delay ms after the first half: 2.5, 2.3, 2.1 RTT. Chromium's half round trip at
    //   most (its first check could carry both); nothing of ours waits.
    // - Our check reaches it before (30-100 ms): its answer carries no DTLS. Before the probes the second half came only
    //   with its next check or once our answer to its first check made its pair writable: 3 RTT whatever the delay. Now
    //   our probe (sent on that empty answer, one a round trip) reaches it after it started and its answer brings the
    //   second half: 2.1-2.9 RTT, 2.5 on average over a round trip of delays.
    [Theory]
    [InlineData(0, 2.5, 0)]
    [InlineData(10, 2.3, 0)]
    [InlineData(20, 2.1, 0)]
    [InlineData(30, 2.9, 1)]
    [InlineData(40, 2.7, 1)]
    [InlineData(50, 2.5, 1)]
    [InlineData(60, 2.3, 1)]
    [InlineData(80, 2.9, 2)]
    [InlineData(100, 2.5, 2)]
    public void AChromiumLikeOffererWhoseAnswerComesLateIsProbedForTheRestOfItsClientHello(int answerDelayMs, double echoedAfterAnswer, int probes)
    {
        var r = Run(ByName("sped+snap+negotiated"), DtlsVersion.Dtls13, chromiumLikeOfferer: true, answerDelay: TimeSpan.FromMilliseconds(answerDelayMs));
        Report($"Chromium-like offerer, the answer applied {answerDelayMs} ms after it was made", r);
        output.WriteLine($"echo {r.EchoedAfterAnswerRtt} RTT after the answer was applied; probes {r.B.Sped!.Counters.ProbesSent}");
        Assert.Equal(echoedAfterAnswer, r.EchoedAfterAnswerRtt, 3);
        Assert.Equal(probes, r.B.Sped!.Counters.ProbesSent);
        Assert.Equal(0, r.A.Sped!.Counters.ProbesSent);   // the DTLS client carries its own flight: it never probes
        Assert.Equal(0, r.A.Dtls!.Counters.Retransmissions + r.B.Dtls!.Counters.Retransmissions);
    }

    public static TheoryData<string, DtlsVersion> Combined() => new()
    {
        { "sped+snap", DtlsVersion.Dtls13 },
        { "sped+snap", DtlsVersion.Dtls12 },
        { "sped+snap+negotiated", DtlsVersion.Dtls13 },
        { "sped+snap+negotiated", DtlsVersion.Dtls12 },
    };

    [Theory]
    [MemberData(nameof(Combined))]
    public void LosingAnyOneSetUpPacketDelaysButLosesNothing(string name, DtlsVersion version)
    {
        var v = ByName(name);
        var clean = Run(v, version);
        Report($"{name} {version}, clean", clean);
        // Every datagram either side sent before the echo arrived is a set-up packet: each is lost in its own run.
        var counts = new Dictionary<LinkEnd, int> { [LinkEnd.A] = clean.Link.SentFrom(LinkEnd.A), [LinkEnd.B] = clean.Link.SentFrom(LinkEnd.B) };
        foreach (var end in new[] { LinkEnd.A, LinkEnd.B })
        {
            var lines = clean.Trace.Where(l => l.Contains(end == LinkEnd.A ? " A->B " : " B->A ", StringComparison.Ordinal)).ToList();
            for (var n = 1; n <= counts[end]; n++)
            {
                var r = Run(v, version, (link, _, _) => link.DropNth(end, n, _ => true));
                var extra = r.EchoedRtt - clean.EchoedRtt;
                var t3 = r.A.Sctp!.Counters.T3Expirations + r.B.Sctp!.Counters.T3Expirations;
                output.WriteLine($"lost: {lines[n - 1].Trim()} -> delivered {r.DeliveredRtt} RTT, echoed {r.EchoedRtt} RTT " +
                    $"(+{extra}), SCTP T3 expirations {t3}");
                Assert.Equal(1, r.Link.Dropped);
                // A handshake packet (STUN carrying DTLS, DTLS flights): its copies in the other checks and
                // responses, or the peer's next check, bring it again within a round trip; with DTLS 1.2 a lost
                // ClientHello check waits for the answerer's first check (ControlledCheckHold, 150 ms): 3.5 RTT.
                // An SCTP packet: T3-rtx. The offerer's first DATA goes again after RTO.Min (400 ms, seeded from
                // ICE's round trip instead of RTO.Initial's 1 s): 8-9 RTT; the answerer's echo, when the offerer held
                // its SACK of the DCEP ACK 200 ms, after an RTO computed from that 250 ms sample: up to 20 RTT.
                var bound = t3 == 0 ? (version == DtlsVersion.Dtls13 ? 1.0 : 3.5) : end == LinkEnd.A ? 9.0 : 20.0;
                Assert.True(extra <= bound, $"lost {lines[n - 1].Trim()}: +{extra} RTT, bound {bound}");
            }
        }
    }

    // The client's DTLS 1.3 Finished flight (its certificate, CertificateVerify and Finished, over 400 bytes of epoch-2
    // ciphertext), directly or in a STUN message (a copy of its ClientHello that a response still carries is not it).
    private static bool CarriesClientFinished(ReadOnlySpan<byte> d)
    {
        static bool Flight(ReadOnlySpan<byte> x) => x.Length > 400 && (x[0] & 0xE0) == 0x20;
        if (d.Length < 20 || d[0] >= 2) return Flight(d);
        for (var at = 20; at + 4 <= d.Length;)
        {
            var type = (d[at] << 8) | d[at + 1];
            var length = (d[at + 2] << 8) | d[at + 3];
            if (type == SpedAttributes.DtlsInStun && at + 4 + length <= d.Length) return Flight(d.Slice(at + 4, length));
            at += 4 + ((length + 3) & ~3);
        }
        return false;
    }

    [Fact]
    public void TheFirstDataThatOvertakesTheClientsFinishedWaitsForItNotForSctp()
    {
        // Every copy of the offerer's DTLS 1.3 Finished that leaves with its first DATA (in a response, in the
        // nominating check, and directly) is lost: the DATA reaches the answerer before any Finished. The DTLS server
        // keeps it until the Finished's next copy completes the handshake, and delivers it then: at most 4.5 RTT. Before,
        // the server dropped it and the message waited for SCTP's T3-rtx, and the client's Finished itself waited for
        // ICE's check retransmission (500 ms) since DTLS's timer resumed without a round trip: 11.5 RTT.
        var v = ByName("sped+snap+negotiated");
        var r = Run(v, DtlsVersion.Dtls13, (link, a, _) => link.AddFilter(LinkEnd.A,
            d => a.Core.Dtls is { State: DtlsState.Connected } && CarriesClientFinished(d.Span),
            n => n <= 3 ? FilterAction.Drop : FilterAction.Pass));
        Report("every copy of the client's Finished lost once", r);
        Assert.Equal(3, r.Link.Dropped);
        Assert.Equal(0, r.B.Dtls!.Counters.DroppedFor(DtlsDropReason.UnexpectedInState));
        Assert.Equal(0, r.A.Sctp!.Counters.T3Expirations);
        // The next copy of the Finished: DTLS's timer (resumed with ICE's round trip), or a later check of the offerer
        // that carries it (since the answerer no longer holds its first check: one at 2 RTT, the message at 2.5).
        Assert.True(r.A.Dtls!.Counters.Retransmissions <= 1);
        Assert.True(r.DeliveredRtt <= 4.5, $"message at {r.DeliveredRtt} RTT");
    }
}
