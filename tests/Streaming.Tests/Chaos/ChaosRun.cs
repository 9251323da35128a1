using System.Buffers.Binary;
using System.Globalization;
using Transport.Dtls;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.Chaos;

/// <summary>
/// Runs one <see cref="ChaosScenario"/>: two of our peer connections (A offers and controls ICE, B answers) with a data
/// channel of every kind in both directions and media (A sends audio and video, B audio), on virtual time through the
/// scenario's link and faults; then checks what every kind of channel promises, that media and the connection came
/// back after each fault, and that nothing is left behind after close. Returns the violations (empty: the scenario passed).
/// </summary>
internal sealed class ChaosRun
{
    // One certificate per thread: the suite runs two test classes side by side.
    private static readonly ThreadLocal<DtlsCertificate> Certificates =
        new(() => DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50), DateTimeOffset.UnixEpoch.AddYears(80)));

    /// <summary>
    /// Connected with every channel open within this, through the lossy link (before any fault). At 30 % loss SCTP's
    /// INIT and COOKIE ECHO back off from RTO.Initial (1 s) by doubling; five losses in a row take half a minute.
    /// </summary>
    public static readonly TimeSpan ConnectBound = TimeSpan.FromSeconds(60);
    /// <summary>Reliable data still in flight at the end of the traffic must arrive within this.</summary>
    /// <remarks>
    /// Generous on purpose: at 30 % loss each way a retransmission and its SACK both get through about half the time,
    /// and after a partition SCTP's retransmission timeout has backed off to RTO.Max (10 s); a few unlucky rounds in a
    /// row then take tens of seconds. The drain costs little: only the reliable data and timers are left.
    /// </remarks>
    public static readonly TimeSpan DrainBound = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan SendInterval = TimeSpan.FromMilliseconds(500);
    // Opus packets of 60 ms and 10 frames/s of video: media keeps flowing through every fault at a modest event rate.
    private static readonly TimeSpan AudioInterval = TimeSpan.FromMilliseconds(60);
    private static readonly TimeSpan VideoInterval = TimeSpan.FromMilliseconds(100);

    // The four kinds of channel, in this order on both sides.
    internal enum Kind { ReliableOrdered, ReliableUnordered, PartialRetransmits, PartialLifetime }
    private static readonly string[] Labels = ["reliable-ordered", "reliable-unordered", "partial-rexmit", "partial-lifetime"];

    private readonly ChaosScenario _s;
    private readonly List<string> _violations = new();
    /// <summary>How long after each heal the connection came back (when it had left Connected).</summary>
    private List<(ChaosFault Fault, TimeSpan Time)> ReconnectTimes { get; } = new();
    private readonly Random _random;
    private ChaosNetwork _net = null!;
    private TimeSpan _t0;

    private sealed class Side(string name, PeerConnectionCore core)
    {
        public string Name { get; } = name;
        public PeerConnectionCore Core { get; } = core;
        public DataChannel?[] Channels { get; } = new DataChannel?[4];
        // What this side sent on each channel: payload and send time, by sequence number.
        public List<(byte[] Data, TimeSpan At)>[] Sent { get; } = [new(), new(), new(), new()];
        // What it received on each channel: sequence number, payload, time.
        public List<(int Seq, byte[] Data, TimeSpan At)>[] Received { get; } = [new(), new(), new(), new()];
        public List<ConnectionStateChanged> States { get; } = new();
        public Dictionary<uint, (MediaKind Kind, byte[] Frame, TimeSpan At)> SentFrames { get; } = new();
        // Video frames congestion control refused (MediaSendResult.Congested): not sent.
        public int CongestedFrames { get; set; }
        // SendFrame's results, counted (diagnostics).
        public SortedDictionary<MediaSendResult, int> Results { get; } = new();
        // Complete frames received intact: kind, when the peer sent it, when it completed here.
        public List<(MediaKind Kind, TimeSpan SentAt, TimeSpan At)> FramesReceived { get; } = new();
        public int BadFrames;
        public int UnknownChannelMessages;
    }

    private Side _a = null!, _b = null!;
    private LocalTrack _audioA = null!, _videoA = null!, _audioB = null!;

    private ChaosRun(ChaosScenario scenario)
    {
        _s = scenario;
        _random = new Random(scenario.Seed * 7919 + 1);
    }

    public static IReadOnlyList<string> Execute(ChaosScenario scenario)
    {
        var run = new ChaosRun(scenario);
        try { run.Run(); }
        catch (Exception e) { run._violations.Add($"exception at {run._net?.Now}: {e}"); }
        finally { run.Dispose(); }
        foreach (var (fault, time) in run.ReconnectTimes) run._violations.Add($"info: connected again {Ms(time)} after the {fault} healed");
        if (run._violations.Any(v => !v.StartsWith("info:", StringComparison.Ordinal)) && run._a is not null)
            foreach (var side in new[] { run._a, run._b })
                run._violations.Add($"{side.Name} states: " + string.Join(", ", side.States.Select(c => $"{Ms(c.At)} {c.State} ({c.Reason})")));
        return run._violations;
    }

    private void Fail(string what) => _violations.Add($"{Ms(_net.Now)}: {what}");
    private static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture) + " ms";

    private void Run()
    {
        var ice = new IceAgentOptions();
        var options = new PeerConnectionOptions { Certificate = Certificates.Value };
        var a = new PeerConnectionCore(options with { Ice = ice with { Role = IceRole.Controlling, Random = new Random(_s.Seed) } });
        var b = new PeerConnectionCore(options with { Ice = ice with { Role = IceRole.Controlled, Random = new Random(~_s.Seed) } });
        _a = new Side("A", a);
        _b = new Side("B", b);
        a.AddHostCandidate(ChaosNetwork.ALocal);
        b.AddHostCandidate(ChaosNetwork.BLocal);
        _audioA = a.AddTrack(MediaKind.Audio);
        _videoA = a.AddTrack(MediaKind.Video, new LocalTrackOptions { Codecs = [CodecSpec.Vp8] });
        _audioB = b.AddTrack(MediaKind.Audio);
        var channelOptions = new DataChannelOptions?[]
        {
            null,
            new DataChannelOptions { Ordered = false },
            new DataChannelOptions { MaxRetransmits = _s.MaxRetransmits },
            // Unordered: a lifetime-limited message is delivered as it arrives. On an ordered channel it may wait for
            // an earlier one to be abandoned (FORWARD TSN), which says nothing about its own lifetime.
            new DataChannelOptions { Ordered = false, MaxPacketLifetime = _s.Lifetime },
        };
        for (var i = 0; i < 4; i++) a.CreateDataChannel(Labels[i], channelOptions[i], TimeSpan.Zero);
        var offer = SessionDescription.Parse(a.CreateOffer(TimeSpan.Zero).ToString());
        var answer = SessionDescription.Parse(b.CreateAnswer(offer, TimeSpan.Zero).ToString());
        a.SetRemoteDescription(answer, TimeSpan.Zero);

        var link = new VirtualLink(_s.Seed, _s.AToB, _s.BToA);
        _net = new ChaosNetwork(a, b, link) { AfterStep = Drain };
        Drain();

        // Connecting through the lossy link (no faults yet).
        // Every channel open on both sides and acknowledged (RFC 8832 section 6: until its DATA_CHANNEL_ACK arrives a
        // channel sends ordered, and an ordered lifetime-limited message may wait for an earlier one's FORWARD TSN).
        if (!_net.RunUntil(() => OpenEverywhere(), ConnectBound))
        {
            Fail($"not connected with every channel open after {Ms(ConnectBound)}: A {a.State} dtls {a.Dtls?.State} {DescribeSctp(_a)} {a.DescribeIce()}; B " +
                $"{b.State} dtls {b.Dtls?.State} {DescribeSctp(_b)} {b.DescribeIce()}");
            return;
        }
        _t0 = _net.Now;
        Traffic();
        DrainAndCheck();
        CloseAndCheck();
    }

    private bool OpenEverywhere() =>
        _a.Core.State == ConnectionState.Connected && _b.Core.State == ConnectionState.Connected
        && _a.Channels.All(c => c is { State: DataChannelState.Open, AcknowledgedByPeer: true }) && _b.Channels.All(c => c is { State: DataChannelState.Open });

    // Takes every event and every received frame, as an application would, after each step.
    private void Drain()
    {
        DrainSide(_a);
        DrainSide(_b);
    }

    private void DrainSide(Side side)
    {
        while (side.Core.TryPollEvent(out var e))
        {
            switch (e)
            {
                case DataChannelOpened o:
                    var index = Array.IndexOf(Labels, o.Channel.Label);
                    if (index >= 0) side.Channels[index] = o.Channel;
                    break;
                case DataChannelMessageReceived m:
                    var k = Array.IndexOf(Labels, m.Channel.Label);
                    if (k < 0 || m.Data.Length < 4) { side.UnknownChannelMessages++; break; }
                    side.Received[k].Add((BinaryPrimitives.ReadInt32BigEndian(m.Data), m.Data, m.At));
                    break;
                case ConnectionStateChanged c:
                    side.States.Add(c);
                    break;
            }
        }
        foreach (var track in side.Core.RemoteTracks)
        {
            while (track.Packets.TryRead(out _)) { }
            while (track.Frames.TryRead(out var f))
            {
                using (f)
                {
                    var peer = side == _a ? _b : _a;
                    if (!f.IsComplete) continue;
                    if (!peer.SentFrames.TryGetValue(f.Timestamp ^ (track.Kind == MediaKind.Audio ? 0u : 0x8000_0000u), out var sent)
                        || sent.Kind != track.Kind || !sent.Frame.AsSpan().SequenceEqual(f.Data.Span))
                        side.BadFrames++;
                    else side.FramesReceived.Add((track.Kind, sent.At, f.CompletedAt));
                }
            }
        }
    }

    private void Traffic()
    {
        var end = _t0 + _s.TrafficDuration;
        var faults = _s.Faults.Select(f => (At: _t0 + f.Start, Fault: f, Begin: true))
            .Concat(_s.Faults.Where(f => f.Duration > TimeSpan.Zero).Select(f => (At: _t0 + f.End, Fault: f, Begin: false)))
            .OrderBy(x => x.At).ToList();
        var nextFault = 0;
        TimeSpan nextData = _t0, nextAudio = _t0, nextVideo = _t0;
        int audioIndex = 0, videoIndex = 0;
        while (_net.Now < end)
        {
            var now = _net.Now;
            while (nextFault < faults.Count && faults[nextFault].At <= now) Apply(faults[nextFault++]);
            if (now >= nextData) { SendMessages(_a); SendMessages(_b); nextData += SendInterval; }
            if (now >= nextAudio)
            {
                SendFrame(_a, _audioA, (uint)(audioIndex * 2880), AudioFrame(audioIndex));
                SendFrame(_b, _audioB, (uint)(audioIndex * 2880), AudioFrame(audioIndex + 1_000_000));
                audioIndex++;
                nextAudio += AudioInterval;
            }
            if (now >= nextVideo)
            {
                SendFrame(_a, _videoA, (uint)(videoIndex * 9000), VideoFrame(videoIndex));
                videoIndex++;
                nextVideo += VideoInterval;
            }
            if (Trace && now >= _nextTrace)
            {
                _nextTrace = now + TimeSpan.FromMilliseconds(250);
                _violations.Add($"info: {Ms(now)} A {_a.Core.State} {_a.Core.Ice.State} can-send {_a.Core.Ice.CanSendData} last {_a.Core.Ice.LastReceivedAt} " +
                    $"{_a.Core.DescribeIce()} | B {_b.Core.State} {_b.Core.Ice.State} can-send {_b.Core.Ice.CanSendData} last " +
                    $"{_b.Core.Ice.LastReceivedAt} {_b.Core.DescribeIce()}");
            }
            var next = new[] { nextData, nextAudio, nextVideo, end, nextFault < faults.Count ? faults[nextFault].At : end }.Min();
            AttachSctpTrace();
            _net.RunTo(next);
            CheckNoEnd("during the traffic");
            if (_net.Now >= _nextSample)
            {
                _nextSample = _net.Now + TimeSpan.FromMilliseconds(250);
                _timeline.Add(Sample());
            }
        }
        foreach (var side in new[] { _a, _b })
            if (side.Core.State != ConnectionState.Connected)
                Fail($"{side.Name} is {side.Core.State} ({side.Core.Reason}) at the end of the traffic, {Ms(ChaosScenario.AfterLastHeal)} " +
                    $"after the last reconnection bound");
        // The reconnection bound after each heal, from the state changes seen.
        var mediaFailed = false;
        foreach (var f in _s.Faults.Where(f => f is Partition or OneWayOutage or NatRebinding))
        {
            var healed = _t0 + f.End;
            var bound = ChaosScenario.ReconnectBound(f);
            foreach (var side in new[] { _a, _b })
            {
                var last = side.States.LastOrDefault(c => c.At <= healed + bound);
                if (last is not null && last.State != ConnectionState.Connected)
                    Fail($"{side.Name} is {last.State} ({last.Reason}) {Ms(bound)} after the {f} healed (since {Ms(last.At)})");
                else if (last is not null && last.At > healed) ReconnectTimes.Add((f, last.At - healed));
            }
            // Media after the heal: frames sent after it arrived, intact.
            var before = _violations.Count;
            if (!_b.FramesReceived.Any(x => x.Kind == MediaKind.Video && x.SentAt > healed)) Fail($"B received no video frame sent after the {f} healed");
            if (!_b.FramesReceived.Any(x => x.Kind == MediaKind.Audio && x.SentAt > healed)) Fail($"B received no audio frame sent after the {f} healed");
            if (!_a.FramesReceived.Any(x => x.Kind == MediaKind.Audio && x.SentAt > healed)) Fail($"A received no audio frame sent after the {f} healed");
            mediaFailed |= _violations.Count > before;
        }
        // The media path every 250 ms (sender's results, pacer, congestion window; receiver's SRTP and frames), when media failed.
        if (mediaFailed) _violations.AddRange(_timeline.Select(line => "media: " + line));
    }

    // Diagnostics of the media path, printed when a media check fails.
    private readonly List<string> _timeline = new();
    private TimeSpan _nextSample;

    private string Sample()
    {
        static string Send(Side s)
        {
            var c = s.Core;
            var m = c.MediaCounters;
            var p = c.Pacer_;
            var e = c.BandwidthEstimator;
            var cc = c.TransportCcSender;
            return $"{s.Name} {c.State}/{c.Ice.State} send {(c.Ice.CanSendData ? "yes" : "NO")} rtp {m.RtpPacketsSent} rtx "
                + $"{m.Retransmissions} pad {m.PaddingPacketsSent} "
                + $"results [{string.Join(",", s.Results.Select(r => $"{r.Key}:{r.Value}"))}] congested-frames "
                + $"{s.CongestedFrames} queue-full {m.SendQueueFull} "
                + $"pacer [{p?.Describe()} polls-congested {p?.CongestedPolls}] target {e?.TargetBitrate} cwnd "
                + $"{e?.CongestionWindowBytes} inflight {cc?.BytesInFlight} "
                + $"fb {cc?.FeedbackReceived} timed-out {cc?.PacketsTimedOut} srtp-out {c.Srtp?.Outbound.Counters.RtpProtected}";
        }
        static string Receive(Side s)
        {
            var c = s.Core;
            var srtp = c.Srtp?.Inbound.Counters;
            return $"{s.Name} rtp-in {c.MediaCounters.RtpPacketsReceived} unprotect-fail {c.MediaCounters.UnprotectFailures} (auth "
                + $"{srtp?.AuthenticationFailures} replay {srtp?.Replays} malformed {srtp?.Malformed}) "
                + $"unknown-ssrc {c.MediaCounters.UnknownSsrc} dropped {c.DroppedMedia} tracks [{string.Join("; ", c.RemoteTracks.Select(t =>
                    $"{t.Kind} pkts {t.PacketsReceived} frames {t.FramesReceived} incomplete {t.IncompleteFrames} " +
                    $"dropped {t.PacketsDropped}/{t.FramesDropped} ended {t.IsEnded}"))}] "
                + $"frames-ok {s.FramesReceived.Count}";
        }
        return $"{Ms(_net.Now - _t0)} | {Send(_a)} | {Receive(_b)} | {Send(_b)} | {Receive(_a)}";
    }

    private static readonly bool Trace = Environment.GetEnvironmentVariable("CHAOS_TRACE") == "1";
    private TimeSpan _nextTrace;

    private void CheckNoEnd(string when)
    {
        foreach (var side in new[] { _a, _b })
            if (side.Core.State is ConnectionState.Failed or ConnectionState.Closed && !_ended.Contains(side.Name))
            {
                _ended.Add(side.Name);
                Fail($"{side.Name} {side.Core.State} {when}: {side.Core.Reason}; {side.Core.DescribeIce()}");
            }
    }

    private readonly HashSet<string> _ended = new();

    private void Apply((TimeSpan At, ChaosFault Fault, bool Begin) x)
    {
        var link = _net.Link;
        switch (x.Fault)
        {
            case Partition: link.Cut = x.Begin; break;
            case OneWayOutage o when o.From == LinkEnd.A: link.CutAToB = x.Begin; break;
            case OneWayOutage: link.CutBToA = x.Begin; break;
            case NatRebinding: _net.RebindAt = x.At; break;
        }
    }

    private void SendMessages(Side side)
    {
        var now = _net.Now;
        for (var k = 0; k < 4; k++)
        {
            var channel = side.Channels[k];
            if (channel is not { State: DataChannelState.Open }) continue;
            var seq = side.Sent[k].Count;
            // Mostly small messages, some that SCTP fragments.
            var length = _random.NextDouble() < 0.85 ? _random.Next(8, 600) : _random.Next(1200, 5000);
            var data = new byte[length];
            _random.NextBytes(data);
            BinaryPrimitives.WriteInt32BigEndian(data, seq);
            channel.Send(data, binary: true, now);
            side.Sent[k].Add((data, now));
        }
        side.Core.AfterInput(now);
    }

    private void SendFrame(Side side, LocalTrack track, uint timestamp, byte[] frame)
    {
        var now = _net.Now;
        if (side.Core.State != ConnectionState.Connected && side.Core.State != ConnectionState.Disconnected) return;
        var key = timestamp ^ (track.Kind == MediaKind.Audio ? 0u : 0x8000_0000u);
        side.SentFrames[key] = (track.Kind, frame, now);
        var result = side.Core.SendFrame(track, frame, timestamp, now);
        side.Results[result] = side.Results.GetValueOrDefault(result) + 1;
        // A video frame refused by congestion control (its estimate fell with the loss, or has not grown back after a
        // fault) was not sent: an encoder would drop it. Counted, not expected at the other end.
        if (result == MediaSendResult.Congested && track.Kind == MediaKind.Video)
        {
            side.SentFrames.Remove(key);
            side.CongestedFrames++;
            return;
        }
        if (result is not (MediaSendResult.Sent or MediaSendResult.NotConnected)) Fail($"{side.Name} SendFrame {track.Kind}: {result}");
    }

    private static byte[] AudioFrame(int index)
    {
        var frame = new byte[60 + index % 60];
        new Random(index).NextBytes(frame);
        return frame;
    }

    private static byte[] VideoFrame(int index)
    {
        var frame = new byte[index % 30 == 0 ? 3000 : 600 + index % 7 * 100];
        new Random(-index).NextBytes(frame);
        frame[0] = (byte)(index % 30 == 0 ? 0x10 : 0x11); // RFC 6386 frame tag: P bit 0 = key frame
        return frame;
    }

    private bool ReliableDelivered() =>
        _a.Sent[0].Count == _b.Received[0].Count && _b.Sent[0].Count == _a.Received[0].Count
        && _a.Sent[1].Count == _b.Received[1].Count && _b.Sent[1].Count == _a.Received[1].Count;

    private bool NothingBuffered() => _a.Channels.Concat(_b.Channels).All(c => c is { BufferedAmount: 0 });

    // Diagnostics: CHAOS_SCTP_TRACE=dir writes every SCTP event of both ends to dir/chaos-<seed>-<A|B>-<pid>.log.
    private static readonly string? SctpTraceDir = Environment.GetEnvironmentVariable("CHAOS_SCTP_TRACE");
    private readonly HashSet<string> _traced = new();

    private void AttachSctpTrace()
    {
        if (SctpTraceDir is null) return;
        foreach (var side in new[] { _a, _b })
        {
            if (side.Core.Sctp is not { } sctp || !_traced.Add(side.Name)) continue;
            var w = new StreamWriter(Path.Combine(SctpTraceDir, $"chaos-{_s.Seed}-{side.Name}-{Environment.ProcessId}.log")) { AutoFlush = true };
            sctp.DebugTrace = w.WriteLine;
            var ice = side.Core.Ice;
            string? last = null;
            var drain = _net.AfterStep;
            _net.AfterStep = () =>
            {
                drain?.Invoke();
                var now = $"{ice.SelectedRemote?.Address} {ice.State}";
                if (now != last) { last = now; w.WriteLine($"{_net.Now.TotalMilliseconds:0} ice {now}"); }
            };
        }
    }

    // The sender's retransmission ring: offset from the cumulative ack, chunk state, transmissions, stream, flags, PR limit, abandoned.
    private static string Ring(Side side) => side.Core.Sctp is { } s
        ? string.Concat(s.OutstandingChunks().Select(c => $"{c.Offset}:{c.State}/tx{c.Transmits}/s{c.Stream}/f{c.Flags}/r{c.MaxRetransmits}/ab{c.Abandoned} "))
        : "";

    private void DrainAndCheck()
    {
        var drainStart = _net.Now;
        if (!_net.RunUntil(() => ReliableDelivered() && NothingBuffered(), DrainBound))
            Fail($"reliable data not all delivered {Ms(DrainBound)} after the traffic stopped: A->B {_b.Received[0].Count}/{_a.Sent[0].Count} ordered, "
                + $"{_b.Received[1].Count}/{_a.Sent[1].Count} unordered; B->A {_a.Received[0].Count}/{_b.Sent[0].Count}, "
                + $"{_a.Received[1].Count}/{_b.Sent[1].Count}; "
                + $"buffered A [{string.Join(",", _a.Channels.Select(c => c?.BufferedAmount))}] B "
                + $"[{string.Join(",", _b.Channels.Select(c => c?.BufferedAmount))}]; "
                + $"A {_a.Core.State} {DescribeSctp(_a)} {_a.Core.DescribeIce()}; B {_b.Core.State} {DescribeSctp(_b)} {_b.Core.DescribeIce()}; A "
                + $"ring {Ring(_a)}; B ring {Ring(_b)}");
        CheckNoEnd("while the reliable data drained");
        foreach (var (from, to, path) in new[] { (_a, _b, _s.AToB), (_b, _a, _s.BToA) })
        {
            var dir = $"{from.Name}->{to.Name}";
            // Reliable ordered: every byte, in order.
            var ordered = to.Received[(int)Kind.ReliableOrdered];
            for (var i = 0; i < ordered.Count; i++)
                if (i >= from.Sent[0].Count || ordered[i].Seq != i || !ordered[i].Data.AsSpan().SequenceEqual(from.Sent[0][ordered[i].Seq].Data))
                { Fail($"{dir} reliable ordered: message {i} is #{ordered[i].Seq} ({ordered[i].Data.Length} bytes), not #{i} as sent"); break; }
            // Reliable unordered: every byte, each message once.
            var unordered = to.Received[(int)Kind.ReliableUnordered];
            var seen = new HashSet<int>();
            foreach (var m in unordered)
            {
                if (!seen.Add(m.Seq)) { Fail($"{dir} reliable unordered: #{m.Seq} delivered twice"); break; }
                if (m.Seq >= from.Sent[1].Count || !m.Data.AsSpan().SequenceEqual(from.Sent[1][m.Seq].Data))
                {
                    Fail($"{dir} reliable unordered: #{m.Seq} differs from what was sent");
                    break;
                }
            }
            if (seen.Count != from.Sent[1].Count) Fail($"{dir} reliable unordered: {seen.Count} of {from.Sent[1].Count} messages");
            // Partial reliability by retransmissions (ordered): never twice, never out of order, never altered.
            var previous = -1;
            foreach (var m in to.Received[(int)Kind.PartialRetransmits])
            {
                if (m.Seq <= previous) { Fail($"{dir} max-retransmits: #{m.Seq} after #{previous} (twice or out of order)"); break; }
                if (m.Seq >= from.Sent[2].Count || !m.Data.AsSpan().SequenceEqual(from.Sent[2][m.Seq].Data))
                {
                    Fail($"{dir} max-retransmits: #{m.Seq} differs from what was sent");
                    break;
                }
                previous = m.Seq;
            }
            // Partial reliability by lifetime (unordered): never twice, never later than the lifetime plus the path's transit.
            var timed = new HashSet<int>();
            var bound = _s.Lifetime + _s.MaxOneWay(path);
            foreach (var m in to.Received[(int)Kind.PartialLifetime])
            {
                if (!timed.Add(m.Seq)) { Fail($"{dir} lifetime: #{m.Seq} delivered twice"); break; }
                if (m.Seq >= from.Sent[3].Count || !m.Data.AsSpan().SequenceEqual(from.Sent[3][m.Seq].Data))
                {
                    Fail($"{dir} lifetime: #{m.Seq} differs from what was sent");
                    break;
                }
                var age = m.At - from.Sent[3][m.Seq].At;
                if (age > bound)
                {
                    Fail($"{dir} lifetime: #{m.Seq} delivered {Ms(age)} after it was sent (lifetime {Ms(_s.Lifetime)}, transit at " +
                        $"most {Ms(bound - _s.Lifetime)})");
                    break;
                }
            }
            if (to.UnknownChannelMessages > 0) Fail($"{to.Name} got {to.UnknownChannelMessages} messages on no known channel");
            if (to.BadFrames > 0) Fail($"{to.Name} got {to.BadFrames} complete frames that differ from what was sent");
        }
        if (_b.FramesReceived.Count(x => x.Kind == MediaKind.Video) == 0) Fail("B received no video frame at all");
    }

    private static string DescribeSctp(Side side)
    {
        if (side.Core.Sctp is not { } s) return "no SCTP";
        var c = s.Counters;
        return $"[sctp {s.State} cwnd {s.CongestionWindow} rto {s.Rto.TotalMilliseconds:0} ms outbound {s.OutboundBuffered} recv {s.ReceiveBuffered} unread "
            + $"{s.UnreadBytes} idle {s.IsIdle}; "
            + $"sent {c.PacketsSent} rcvd {c.PacketsReceived} rtx {c.Retransmissions} fast {c.FastRetransmits} t3 {c.T3Expirations} "
            + $"abandoned {c.AbandonedMessages} "
            + $"fwd-tsn {c.ForwardTsnSent}/{c.ForwardTsnReceived} out-of-window {c.OutOfWindowTsn} dup {c.DuplicateTsn} full {c.ReceiveBufferFull} "
            + $"bogus-sack {c.BogusSack} malformed {c.Malformed}; "
            + $"dtls {side.Core.Dtls?.State}; " + Fields(s) + "]";
    }

    private static string Fields(object o) =>
        string.Join(" ", o.GetType().GetFields(System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)
        .Where(f => f.FieldType == typeof(int) || f.FieldType == typeof(uint) || f.FieldType == typeof(bool) || f.FieldType == typeof(TimeSpan?)
            || f.FieldType == typeof(long))
        .Select(f => $"{f.Name}={f.GetValue(o)}"));

    private void CloseAndCheck()
    {
        foreach (var side in new[] { _a, _b })
        {
            if (side.Core.UnreadBytes != 0) Fail($"{side.Name}: {side.Core.UnreadBytes} unread bytes after every message was taken");
        }
        _a.Core.Close(_net.Now, "chaos scenario done");
        _b.Core.Close(_net.Now, "chaos scenario done");
        _net.RunUntil(() => _a.Core.PollTimeout() is null && _b.Core.PollTimeout() is null && _net.Link.NextDelivery is null, TimeSpan.FromSeconds(10));
        foreach (var side in new[] { _a, _b })
        {
            var core = side.Core;
            if (core.State != ConnectionState.Closed) Fail($"{side.Name} is {core.State} after close");
            if (core.PollTimeout(out var timer) is { } t) Fail($"{side.Name} still has a {timer} timer at {Ms(t)} 10 s after close");
            if (core.Sctp is { } sctp && (sctp.OutboundBuffered != 0 || sctp.ReceiveBuffered != 0))
                Fail($"{side.Name} SCTP holds {sctp.OutboundBuffered} bytes to send and {sctp.ReceiveBuffered} received after close");
            if (core.TryPollTransmit(new byte[2048], out _, out _, out _)) Fail($"{side.Name} still transmits after close");
        }
    }

    private void Dispose()
    {
        _a?.Core.Dispose();
        _b?.Core.Dispose();
    }
}
