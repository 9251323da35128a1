using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Transport.Dtls;
using Transport.Ice;
using Transport.Rtp.Congestion;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// Send-side congestion control end to end: our peer connection sends media sized from its own target
/// bitrate through the test kit's virtual link with a bottleneck (a rate-limited drop-tail queue), on virtual time;
/// the peer's transport-cc feedback drives the estimate. Each scenario is reproducible from its seed.
/// </summary>
public sealed class CongestionControlTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly DtlsCertificate Certificate = FixedLengthCertificate();

    // The handshake's datagrams have the same lengths in every run, so every time after it repeats too: an RSA key
    // (PKCS#1 v1.5 signatures have the modulus's length; ECDSA's DER ones are 70-72 bytes) and a fixed serial number
    // (a random one is 8 or 9 bytes in DER).
    private static DtlsCertificate FixedLengthCertificate()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=WebRTC", key,
            HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var signed = request.Create(request.SubjectName,
            X509SignatureGenerator.CreateForRSA(key, RSASignaturePadding.Pkcs1),
            DateTimeOffset.UnixEpoch.AddYears(50), DateTimeOffset.UnixEpoch.AddYears(80), [0x21, 0x21, 0x21, 0x21, 0x21, 0x21, 0x21, 0x21]);
        using var withKey = signed.CopyWithPrivateKey(key);
        return new DtlsCertificate(X509CertificateLoader.LoadPkcs12(
            withKey.Export(X509ContentType.Pkcs12), null,
            X509KeyStorageFlags.Exportable));
    }
    private static readonly TimeSpan OneWay = TimeSpan.FromMilliseconds(20);

    /// <summary>One sending peer connection (A) and its receiver (B), and the application that sizes frames from the target.</summary>
    private sealed class Flow
    {
        public required CorePeer A { get; init; }
        public required CorePeer B { get; init; }
        public required LocalTrack Video { get; init; }
        public required LocalTrack Audio { get; init; }
        public TimeSpan NextVideo, NextAudio;
        public int Frames;
        public long Target => A.Core.TargetBitrate ?? 0;                       // what the application sends at
        public long Estimate => A.Core.BandwidthEstimator?.TargetBitrate ?? 0;  // what the estimator says (measured)

        // 30 frames a second of video sized from the target (less the audio), Opus-like audio every 20 ms.
        public void Tick(TimeSpan now)
        {
            if (now >= NextAudio)
            {
                A.Core.SendFrame(Audio, new byte[60], (uint)(now.Ticks / 208), now);
                NextAudio = now + TimeSpan.FromMilliseconds(20);
            }
            if (now >= NextVideo)
            {
                var bytes = (int)Math.Clamp((Target - 32_000) / 8 / 30, 200, 200_000);
                var frame = new byte[bytes];
                frame[0] = (byte)(Frames % 60 == 0 ? 0x10 : 0x11);
                A.Core.SendFrame(Video, frame, (uint)(Frames * 3000), now);
                Frames++;
                NextVideo = now + TimeSpan.FromMilliseconds(1000.0 / 30);
            }
        }

        public TimeSpan Next => NextAudio < NextVideo ? NextAudio : NextVideo;

        /// <summary>When each complete video frame completed at B (the receiving application reads them).</summary>
        public List<TimeSpan> VideoReceived { get; } = new();

        public void ReadReceived()
        {
            foreach (var track in B.Core.RemoteTracks)
            {
                while (track.Packets.TryRead(out _)) { }
                while (track.Frames.TryRead(out var f))
                    using (f)
                        if (f.IsComplete && track.Kind == MediaKind.Video) VideoReceived.Add(f.CompletedAt);
            }
        }
    }

    // The peer connections draw their SSRCs, sequence numbers, RTCP and ICE consent timing from the scenario's seed, so
    // a scenario repeats exactly from it.
    private static Flow Negotiate(int index, int seed)
    {
        var endA = new IPEndPoint(IPAddress.Parse($"10.0.{index}.1"), 1000);
        var endB = new IPEndPoint(IPAddress.Parse($"10.0.{index}.2"), 2000);
        var options = new PeerConnectionOptions { Certificate = Certificate, Media = new MediaOptions { Congestion = new CongestionControlOptions() } };
        var a = new PeerConnectionCore(options with
        {
            Ice = options.Ice with { Role = IceRole.Controlling, Random = new Random(seed * 16 + index * 2) },   // consent timing
            Media = options.Media with { RandomSeed = seed * 16 + index * 2 },
        });
        var b = new PeerConnectionCore(options with
        {
            Ice = options.Ice with { Role = IceRole.Controlled, Random = new Random(seed * 16 + index * 2 + 1) },
            Media = options.Media with { RandomSeed = seed * 16 + index * 2 + 1 },
        });
        a.AddHostCandidate(endA);
        b.AddHostCandidate(endB);
        var audio = a.AddTrack(MediaKind.Audio);
        var video = a.AddTrack(MediaKind.Video, new LocalTrackOptions { Codecs = [CodecSpec.Vp8] });
        var offer = SessionDescription.Parse(a.CreateOffer(TimeSpan.Zero).ToString());
        a.SetRemoteDescription(SessionDescription.Parse(b.CreateAnswer(offer, TimeSpan.Zero).ToString()), TimeSpan.Zero);
        var flow = new Flow { A = new CorePeer(a, endA, endB), B = new CorePeer(b, endB, endA), Video = video, Audio = audio };
        flow.A.Drain();
        flow.B.Drain();
        return flow;
    }

    /// <summary>Several flows' ends behind one end of the link: each datagram carries its flow's index in a first byte.</summary>
    private sealed class Side(Flow[] flows, bool senders) : IVirtualPeer
    {
        private int _turn;
        private CorePeer Peer(int i) => senders ? flows[i].A : flows[i].B;

        public void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now)
        {
            if (datagram.Length > 1 && datagram[0] < flows.Length) Peer(datagram[0]).HandleDatagram(datagram[1..], now);
        }

        public void HandleTimeout(TimeSpan now)
        {
            for (var i = 0; i < flows.Length; i++)
                if (Peer(i).PollTimeout() is { } t && t <= now) Peer(i).HandleTimeout(now);
        }

        public bool TryPollTransmit(Span<byte> destination, out int written)
        {
            for (var k = 0; k < flows.Length; k++)
            {
                var i = (_turn + k) % flows.Length;
                if (!Peer(i).TryPollTransmit(destination[1..], out written)) continue;
                destination[0] = (byte)i;
                written++;
                _turn = i + 1;
                return true;
            }
            written = 0;
            return false;
        }

        public TimeSpan? PollTimeout()
        {
            TimeSpan? best = null;
            for (var i = 0; i < flows.Length; i++)
                if (Peer(i).PollTimeout() is { } t && (best is null || t < best)) best = t;
            return best;
        }
    }

    private sealed record Sample(TimeSpan At, long[] Targets, TimeSpan QueueDelay, int QueueDropped, int SentFromA, string Detail = "");

    private static string Detail(Flow f)
    {
        var c = f.A.Core;
        var e = c.BandwidthEstimator!;
        return $"app {c.TargetBitrate / 1000} delay {e.DelayBasedBitrate / 1000} loss {e.LossBasedBitrate / 1000} acked {e.AckedBitrate / 1000:0} rtt " +
            $"{e.RoundTripTime.TotalMilliseconds:0} " +
            $"sent {c.MediaCounters.RtpPacketsSent} rtx {c.MediaCounters.Retransmissions} coalesced {c.Pacer_?.RetransmissionsCoalesced} pad " +
            $"{c.MediaCounters.PaddingPacketsSent} refused {c.MediaCounters.FramesDroppedCongested} " +
            $"paced {c.PacedPackets} inflight {c.TransportCcSender!.BytesInFlight} cwnd {e.CongestionWindowBytes} state {e.DelayState} " +
            $"probes {e.Probes.ProbesStarted} last {e.Probes.LastResult / 1000:0} (sent {e.Probes.LastSendRate / 1000:0} received " +
            $"{e.Probes.LastReceiveRate / 1000:0} implausible {e.Probes.Implausible}) " +
            $"threshold {e.Detector.Threshold:0.0} overuses {e.Overuses} lost {e.LossesCounted} stale {e.StaleLosses} pacer [{c.Pacer_?.Describe()}]";
    }

    private sealed class Scenario
    {
        public required TwoPeerDriver Driver { get; init; }
        public required VirtualLink Link { get; init; }
        public required Flow[] Flows { get; init; }
        public List<Sample> Samples { get; } = new();
        public List<string> Cuts { get; } = new();
        private TimeSpan _nextSample;
        private long[]? _overuses;

        /// <summary>Runs the applications and the link for <paramref name="duration"/>, sampling every 100 ms.</summary>
        public void Run(TimeSpan duration)
        {
            var end = Driver.Now + duration;
            for (var guard = 0; guard < 1_000_000 && Driver.Now < end; guard++)
            {
                foreach (var f in Flows) { f.Tick(Driver.Now); f.ReadReceived(); }
                if (Driver.Now >= _nextSample)
                {
                    Samples.Add(new Sample(Driver.Now, Flows.Select(f => f.Estimate).ToArray(), Link.QueueDelay(LinkEnd.A, Driver.Now), Link.QueueDropped,
                        Link.SentFrom(LinkEnd.A), string.Join(" | ", Flows.Select(Detail))));
                    _nextSample = Driver.Now + TimeSpan.FromMilliseconds(100);
                }
                _overuses ??= new long[Flows.Length];
                for (var i = 0; i < Flows.Length; i++)
                {
                    var e = Flows[i].A.Core.BandwidthEstimator!;
                    if (e.Overuses == _overuses[i]) continue;
                    _overuses[i] = e.Overuses;
                    var others = string.Join(" ", Flows.Where((_, j) => j != i).Select(f => f.A.Core.BandwidthEstimator!).Select(o => $"[{o.DelayState} m " +
                        $"{o.Detector.ModifiedTrend:0.0} thr {o.Detector.Threshold:0.0} rate {o.DelayBasedBitrate / 1000}]"));
                    Cuts.Add($"{Driver.Now.TotalSeconds,7:0.000} flow {i} cut to {e.DelayBasedBitrate / 1000} acked {e.AckedBitrate / 1000:0} queue " +
                        $"{Link.QueueDelay(LinkEnd.A, Driver.Now).TotalMilliseconds:0} ms others {others}");
                }
                var next = Flows.Min(f => f.Next);
                if (_nextSample < next) next = _nextSample;
                if (next > end) next = end;
                if (next > Driver.Now) Driver.RunFor(next - Driver.Now);
                else Driver.Progress(Driver.Now);
            }
        }
    }

    private static Scenario Start(int seed, long rate, int flows = 1, int queueBytes = 30_000)
    {
        var link = new VirtualLink(seed,
            new LinkConditions { Delay = OneWay, RateBitsPerSecond = rate, QueueLimitBytes = queueBytes },
            new LinkConditions { Delay = OneWay });
        var list = Enumerable.Range(0, flows).Select(i => Negotiate(i, seed)).ToArray();
        var driver = new TwoPeerDriver(new Side(list, senders: true), new Side(list, senders: false), link);
        Assert.True(driver.RunUntil(() => list.All(f => f.A.Core.State == ConnectionState.Connected && f.B.Core.State == ConnectionState.Connected),
            TimeSpan.FromSeconds(10)));
        foreach (var f in list)
        {
            Assert.NotNull(f.A.Core.BandwidthEstimator);
            f.NextAudio = f.NextVideo = driver.Now;
        }
        return new Scenario { Driver = driver, Link = link, Flows = list };
    }

    private void Report(Scenario s, TimeSpan from)
    {
        foreach (var x in s.Samples.Where(x => x.At >= from
            && (x.At - from).Ticks % TimeSpan.FromMilliseconds(500).Ticks < TimeSpan.FromMilliseconds(100).Ticks))
            output.WriteLine($"{(x.At - from).TotalSeconds,5:0.0} s  target {string.Join(" / ", x.Targets.Select(t => $"{t / 1000,5} kbit/s"))}  queue " +
                $"{x.QueueDelay.TotalMilliseconds,4:0} ms  dropped {x.QueueDropped}  {x.Detail}");
    }

    // The first time after `from` that the target is within 15 % of `rate`.
    private static TimeSpan? Converged(Scenario s, TimeSpan from, long rate, int flow = 0) =>
        s.Samples.FirstOrDefault(x => x.At >= from && Math.Abs(x.Targets[flow] - rate) <= 0.15 * rate)?.At - from;

    [Fact]
    public void TheEstimateConvergesToWithinFifteenPercentOfTheBottleneckInUnderFiveSeconds()
    {
        const long Rate = 1_500_000;
        var s = Start(seed: 21, Rate);
        var start = s.Driver.Now;
        s.Run(TimeSpan.FromSeconds(10));
        Report(s, start);
        var converged = Converged(s, start, Rate);
        output.WriteLine($"converged after {converged?.TotalSeconds:0.00} s");
        Assert.NotNull(converged);
        Assert.True(converged < TimeSpan.FromSeconds(5), $"converged after {converged}");
        // And it stays there: over the last 5 s the target averages 75-115 % of the bottleneck.
        var late = s.Samples.Where(x => x.At >= start + TimeSpan.FromSeconds(5)).ToList();
        var mean = late.Average(x => x.Targets[0]);
        var queue = late.Average(x => x.QueueDelay.TotalMilliseconds);
        output.WriteLine($"steady state: target {mean / Rate:P0} of the bottleneck, queue delay {queue:0} ms mean");
        Assert.InRange(mean, 0.75 * Rate, 1.15 * Rate);
    }

    [Fact]
    public void AStepDownFromTwoMegabitsToFiveHundredKilobitsIsFollowedWithinTwoSecondsAndTheQueueDrains()
    {
        var s = Start(seed: 22, 2_000_000);
        s.Run(TimeSpan.FromSeconds(8));
        var step = s.Driver.Now;
        s.Link.AToB = s.Link.AToB with { RateBitsPerSecond = 500_000 };
        s.Run(TimeSpan.FromSeconds(5));
        Report(s, step - TimeSpan.FromSeconds(1));
        var after = s.Samples.FirstOrDefault(x => x.At >= step && x.Targets[0] <= 1.15 * 500_000)?.At - step;
        output.WriteLine($"target under 575 kbit/s after {after?.TotalSeconds:0.00} s");
        Assert.True(after is { } a && a <= TimeSpan.FromSeconds(2), $"followed after {after}");
        // From 2 s after the step the queue delay stays under 100 ms.
        var worst = s.Samples.Where(x => x.At >= step + TimeSpan.FromSeconds(2)).Max(x => x.QueueDelay);
        output.WriteLine($"worst queue delay from 2 s after the step: {worst.TotalMilliseconds:0} ms");
        Assert.True(worst < TimeSpan.FromMilliseconds(100), $"queue delay {worst}");
    }

    [Fact]
    public void AStepUpFromFiveHundredKilobitsToTwoMegabitsIsFollowedWithinTenSeconds()
    {
        var s = Start(seed: 23, 500_000);
        s.Run(TimeSpan.FromSeconds(8));
        var step = s.Driver.Now;
        s.Link.AToB = s.Link.AToB with { RateBitsPerSecond = 2_000_000 };
        s.Run(TimeSpan.FromSeconds(10));
        Report(s, step - TimeSpan.FromSeconds(1));
        var up = Converged(s, step, 2_000_000);
        output.WriteLine($"within 15 % of 2 Mbit/s after {up?.TotalSeconds:0.00} s");
        Assert.True(up is { } u && u < TimeSpan.FromSeconds(10), $"followed after {up}");
    }

    [Fact]
    public void SteadyStateLossStaysUnderFivePercent()
    {
        var s = Start(seed: 24, 1_000_000);
        s.Run(TimeSpan.FromSeconds(5));
        var from = s.Samples[^1];
        s.Run(TimeSpan.FromSeconds(10));
        var to = s.Samples[^1];
        var loss = (double)(to.QueueDropped - from.QueueDropped) / Math.Max(1, to.SentFromA - from.SentFromA);
        var mean = s.Samples.Where(x => x.At >= from.At).Average(x => x.Targets[0]);
        var queue = s.Samples.Where(x => x.At >= from.At).Average(x => x.QueueDelay.TotalMilliseconds);
        output.WriteLine($"loss {loss:P2} over {to.SentFromA - from.SentFromA} datagrams; target {mean / 1_000_000:P0} of the " +
            $"bottleneck; queue delay {queue:0} ms mean");
        Assert.True(to.SentFromA - from.SentFromA > 500);
        Assert.True(loss < 0.05, $"loss {loss:P2}");
    }

    /// <summary>
    /// The seeds of the two-flow scenario: each fixes the peers' random draws and which flow starts first, and by how much.
    /// 1-12; FAIRNESS_SEEDS=FROM-TO runs others (README "Measured figures": 13-40 were run once as a check).
    /// </summary>
    public static TheoryData<int> FairnessSeeds
    {
        get
        {
            var data = new TheoryData<int>();
            var range = Environment.GetEnvironmentVariable("FAIRNESS_SEEDS") is { Length: > 0 } r ? r.Split('-').Select(int.Parse).ToArray() : [1, 12];
            for (var i = range[0]; i <= range[^1]; i++) data.Add(i);
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(FairnessSeeds))]
    // Two of our flows through one bottleneck (2 Mbit/s, 40 KB drop-tail queue), one starting up to a second after the
    // other: over the last 15 s of 45 s each gets its share within a factor of 1.5, and together they use the link.
    public void TwoFlowsThroughOneBottleneckShareItWithinAFactorOfOneAndAHalf(int seed)
    {
        const long Rate = 2_000_000;
        var s = Start(seed, Rate, flows: 2, queueBytes: 40_000);
        var start = s.Driver.Now;
        var random = new Random(seed);
        var late = s.Flows[random.Next(2)];
        var offset = TimeSpan.FromMilliseconds(random.Next(0, 1000));
        late.NextAudio = late.NextVideo = start + offset;
        s.Run(TimeSpan.FromSeconds(45));
        Report(s, start);
        // Every cut, with the other flow's detector at that moment: an episode one flow alone notices shows here.
        foreach (var c in s.Cuts) output.WriteLine(c);
        var steady = s.Samples.Where(x => x.At >= start + TimeSpan.FromSeconds(30)).ToList();
        var first = steady.Average(x => x.Targets[0]);
        var second = steady.Average(x => x.Targets[1]);
        var queue = steady.Average(x => x.QueueDelay.TotalMilliseconds);
        var ratio = Math.Max(first, second) / Math.Min(first, second);
        output.WriteLine($"seed {seed}: flow {Array.IndexOf(s.Flows, late)} started {offset.TotalSeconds:0.000} s late; " +
            $"last 15 s: {first / 1000:0} and {second / 1000:0} kbit/s, ratio {ratio:0.00}, together {(first + second) / Rate:P0} of the " +
            $"bottleneck, queue delay {queue:0} ms mean");
        Assert.True(ratio <= 1.5, $"seed {seed}: {first:0} vs {second:0} (ratio {ratio:0.00})");
        Assert.InRange(first + second, 0.6 * Rate, 1.2 * Rate);
    }

    [Theory]
    [InlineData(3, 31)]
    [InlineData(12, 32)]
    // A partition in the middle of a video flow: what was sent into it is never reported, the receiver reports the gap
    // lost after the heal. Before the in-flight timeout, the outage's losses left out of the loss-based control, the
    // probe after an outage and no plain resends beyond the SRTP replay window, the congestion window stayed closed
    // and video was refused for good (or the estimate sat at a fifth of the path for tens of seconds).
    public void AfterAPartitionVideoResumesAndTheEstimateReturnsTowardTheBottleneck(int seconds, int seed)
    {
        const long Rate = 1_500_000;
        var s = Start(seed, Rate);
        s.Run(TimeSpan.FromSeconds(8));
        var cut = s.Driver.Now;
        var flow = s.Flows[0];
        var before = s.Samples.Where(x => x.At >= cut - TimeSpan.FromSeconds(2)).Average(x => x.Targets[0]);
        s.Link.Cut = true;
        s.Run(TimeSpan.FromSeconds(seconds));
        s.Link.Cut = false;
        var healed = s.Driver.Now;
        var framesAtHeal = flow.Frames;
        s.Run(TimeSpan.FromSeconds(10));
        Report(s, cut - TimeSpan.FromSeconds(1));
        var e = flow.A.Core.BandwidthEstimator!;
        var sender = flow.A.Core.TransportCcSender!;
        output.WriteLine($"before the cut {before / 1000:0} kbit/s; outages {e.Outages}, stale losses {e.StaleLosses}, timed out {sender.PacketsTimedOut}, " +
            $"unreported {sender.PacketsUnreported}, probes {e.Probes.ProbesStarted}");
        var rx = flow.B.Core.TransportCc!;
        output.WriteLine($"A dropped {flow.A.Core.DroppedDatagrams} protect failures {flow.A.Core.MediaCounters.ProtectFailures}; link dropped " +
            $"{s.Link.Dropped} queue {s.Link.QueueDropped}; sender lost {sender.PacketsLost} received {sender.PacketsReceived} sent {sender.PacketsSent} " +
            $"unknown {sender.UnknownReports}; B unprotect failures {flow.B.Core.MediaCounters.UnprotectFailures} rtp received " +
            $"{flow.B.Core.MediaCounters.RtpPacketsReceived}; receiver recorded {rx.PacketsRecorded} again {rx.ReportedAgain} skipped {rx.Skipped} late " +
            $"{rx.TooLate} dup {rx.Duplicates}; counted losses {e.LossesCounted}");

        // Video resumes: the first frame completes at B within 2 s of the heal (ICE consent notices the path first).
        var first = flow.VideoReceived.FirstOrDefault(t => t > healed);
        output.WriteLine($"first video frame {(first - healed).TotalSeconds:0.00} s after the heal");
        var counters = flow.B.Core.Srtp!.Inbound.Counters;
        output.WriteLine($"B srtp: replays {counters.Replays} authentication {counters.AuthenticationFailures} malformed {counters.Malformed}");
        // Almost nothing we resent fell out of B's SRTP replay window (old audio resent plain after the heal did, by the
        // hundred, and each such packet read as a loss to the estimate). Usually 0; about one run in four (the peers draw
        // SSRCs and RTCP timing from Random.Shared) shows a few (11 seen once): not yet explained, README "Not done yet".
        Assert.True(counters.Replays <= 32, $"{counters.Replays} packets fell out of B's replay window");
        Assert.True(first > healed && first - healed < TimeSpan.FromSeconds(2), $"first video frame after the heal at {first - healed}");
        // And keeps flowing: from 3 s after the heal at least 80 % of the frames the application made arrive.
        var from = healed + TimeSpan.FromSeconds(3);
        var received = flow.VideoReceived.Count(t => t >= from);
        var expected = (s.Driver.Now - from).TotalSeconds * 30;
        output.WriteLine($"from 3 s after the heal: {received} frames received of about {expected:0} made; " +
            $"{flow.A.Core.MediaCounters.FramesDroppedCongested} refused in all");
        Assert.True(received >= 0.8 * expected, $"{received} frames of {expected:0}");
        // The estimate returns toward the bottleneck: over the last 5 s it averages at least 70 % of it.
        var late = s.Samples.Where(x => x.At >= healed + TimeSpan.FromSeconds(5)).Average(x => x.Targets[0]);
        output.WriteLine($"5-10 s after the heal: target {late / Rate:P0} of the bottleneck");
        Assert.InRange(late, 0.7 * Rate, 1.15 * Rate);
        Assert.True(e.Outages >= 1);
    }

    [Fact]
    public void TheTargetIsAnEventAndInTheHealthSnapshot()
    {
        var s = Start(seed: 26, 3_000_000);
        s.Run(TimeSpan.FromSeconds(3));
        var core = s.Flows[0].A.Core;
        var changes = s.Flows[0].A.Events.OfType<TargetBitrateChanged>().ToList();
        Assert.True(changes.Count >= 2, $"{changes.Count} changes");
        Assert.Equal(300_000, changes[0].BitsPerSecond);                 // the start rate, when the estimator starts
        Assert.InRange(changes[^1].BitsPerSecond, core.TargetBitrate!.Value * 0.9, core.TargetBitrate!.Value * 1.1);   // moves under 2 % are not events
        Assert.True(core.TargetBitrate > 1_000_000, $"{core.TargetBitrate}");   // the start probes found more
        Assert.Equal(core.TargetBitrate, core.GetHealth(s.Driver.Now).TargetBitrate);
        Assert.True(core.BandwidthEstimator!.Probes.ProbesStarted >= 2);
        Assert.True(core.MediaCounters.PaddingPacketsSent > 0 || core.BandwidthEstimator.Probes.LastResult is not null);
    }
}
