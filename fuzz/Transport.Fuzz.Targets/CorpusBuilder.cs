using System.Net;
using System.Text;
using Transport.Dtls;
using Transport.Ice;
using Transport.Ice.Stun;
using Transport.Ice.Turn;
using Transport.Rtp;
using Transport.Rtp.Payloads;
using Transport.Rtp.Rtcp;
using Transport.Rtp.Srtp;
using Transport.Rtp.Streams;
using Transport.Sctp;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Fuzz;

/// <summary>
/// Writes the generated part of the seed corpus (fuzz/corpus/TARGET/gen-*): traffic captured from our own stack on
/// the virtual link (a full peer connection pair with media and a data channel; DTLS, SCTP and ICE pairs on their own),
/// and messages written by our writers (RTCP of every type, payloads of every packetizer). The RFC vectors and the
/// browser SDP next to them are copied by hand and kept.
/// </summary>
public static class CorpusBuilder
{
    /// <summary>Writes every seed under <paramref name="root"/>; returns the count per target.</summary>
    public static IEnumerable<(string Target, int Count)> Write(string root)
    {
        var seeds = new Dictionary<string, List<byte[]>>();
        void Add(string target, byte[] data)
        {
            if (!seeds.TryGetValue(target, out var list)) seeds[target] = list = new();
            if (!list.Any(d => d.AsSpan().SequenceEqual(data))) list.Add(data);
        }
        void Join(string target, byte flags, IEnumerable<byte[]> datagrams) => Add(target, [flags, .. FuzzRecords.Join(datagrams)]);

        // A full session: two peer connection cores, audio, video and a data channel, on virtual time.
        var session = CaptureSession();
        foreach (var d in session.Datagrams.Where(d => d[0] < 2).Take(12)) Add("stun", d);
        Add("peer-connected", FuzzRecords.Join(session.Datagrams.Skip(session.Datagrams.Count / 2).Take(20)));
        Add("peer-connected", FuzzRecords.Join(session.Datagrams.Where(d => d[0] < 2).Take(4)));
        Add("peer-connected", FuzzRecords.Join(session.Datagrams.Where(d => d[0] is >= 20 and <= 63).Take(6)));
        Add("peer-connected", FuzzRecords.Join(session.Datagrams.Where(d => d[0] >= 128).Take(8)));
        foreach (var d in session.Datagrams.Where(d => d[0] is >= 20 and <= 63).Take(10)) Add("dtls-connected", FuzzRecords.Join([d]));
        foreach (var d in session.Datagrams.Where(d => d[0] is >= 128 and <= 191).Take(6)) { Add("srtp", [0, .. d]); Add("srtcp", [0, .. d]); }
        foreach (var p in session.PlainRtp.Take(16)) { Add("rtp", p); Add("srtp", [4, .. p]); Add("srtp", [(byte)(4 | 2), .. p]); }
        Join("frame-assembler", 1, session.PlainRtp.Where(p => RtpPacket.TryRead(p, out var r) && r.PayloadType == session.VideoPt).Take(40));
        Join("frame-assembler", 2, session.PlainRtp.Where(p => RtpPacket.TryRead(p, out var r) && r.PayloadType != session.VideoPt).Take(20));
        foreach (var p in session.PlainRtp.Where(p => RtpPacket.TryRead(p, out var r) && r.PayloadType == session.VideoPt).Take(8))
            if (RtpPacket.TryRead(p, out var r)) Add("vp8", r.Payload.ToArray());
        foreach (var p in session.PlainRtp.Where(p => RtpPacket.TryRead(p, out var r) && r.PayloadType != session.VideoPt).Take(4))
            if (RtpPacket.TryRead(p, out var r)) Add("opus", r.Payload.ToArray());
        Add("sdp", Encoding.UTF8.GetBytes(session.Offer));
        Add("sdp", Encoding.UTF8.GetBytes(session.Answer));
        Add("whip-offer", Encoding.UTF8.GetBytes(session.Offer));
        Add("ice-sdp", Encoding.UTF8.GetBytes(IceSdpFragment.FromDescription(session.Offer)));
        Add("whip-patch", Encoding.UTF8.GetBytes(IceSdpFragment.FromDescription(session.Offer)));
        Add("whip-patch", Encoding.UTF8.GetBytes("a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\na=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF " +
            "111\r\na=mid:0\r\na=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id " +
            "1\r\na=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\na=candidate:473322822 1 tcp " +
            "1518280447 192.0.2.1 9 typ host tcptype active generation 0 ufrag EsAw network-id 1\r\na=candidate:2154773085 1 udp 1686052607 203.0.113.3 " +
            "41693 typ srflx raddr 192.0.2.1 rport 61764 generation 0 ufrag EsAw\r\na=end-of-candidates\r\n"));
        foreach (var line in session.Offer.Split("\r\n").Where(l => l.StartsWith("a=candidate:", StringComparison.Ordinal)))
            Add("candidate", Encoding.UTF8.GetBytes(line));
        foreach (var c in new[]
        {
            "candidate:2154773085 1 udp 1686052607 203.0.113.3 41693 typ srflx raddr 192.0.2.1 rport 61764 generation 0 ufrag EsAw network-cost 999",
            "candidate:1 1 UDP 2122252543 fe80::1%eth0 51000 typ host",
            "candidate:3 1 udp 41885439 198.51.100.7 50000 typ relay raddr 203.0.113.3 rport 41693",
            "candidate:4 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active",
            "candidate:5 1 udp 2122260223 3c1f0f6e-6d43-4a8d-a3f2-5f9a1a2b3c4d.local 61764 typ host",
        }) Add("candidate", Encoding.UTF8.GetBytes(c));

        // ICE: two agents; the datagrams the controlling one sent.
        foreach (var flags in new byte[] { 0, 1, 3 }) Join("ice-fresh", flags, CaptureIce());
        Join("ice-connected", 1, CaptureIce().Skip(2));
        Join("ice-connected", 0, CaptureIce().Take(4));

        // TURN: ChannelData and a TCP stream of STUN and ChannelData frames.
        var frames = new List<byte[]>();
        foreach (var (channel, length, padded) in new[] { (0x4000, 0, false), (0x4001, 5, true), (0x4FFF, 100, false), (0x4ABC, 7, false) })
        {
            var cd = new byte[ChannelData.GetSize(length, padded)];
            ChannelData.Write(cd, (ushort)channel, Enumerable.Range(0, length).Select(i => (byte)i).ToArray(), padded);
            Add("turn-channeldata", cd);
            frames.Add(cd);
        }
        var allocate = CaptureTurnAllocate();
        Add("turn-channeldata", allocate);
        frames.Insert(1, allocate);
        Add("turn-tcp", [.. frames.SelectMany(f => f.Length % 4 == 0 ? f : [.. f, .. new byte[4 - f.Length % 4]])]);
        Add("turn-tcp", allocate);

        // DTLS: a handshake between the targets' own certificates and cookie secret (so the fresh-server seeds carry
        // a valid cookie); flights by side, then application data records.
        var dtls = CaptureDtls();
        Join("dtls-server-fresh", 0, dtls.ClientToServer);
        Add("dtls-server-fresh", FuzzRecords.Join(dtls.ClientToServer));
        Add("dtls-server-fresh", FuzzRecords.Join(dtls.ClientToServer.Take(1)));
        for (var steps = 0; steps < 6; steps++)
        {
            Join("dtls-handshake", (byte)(0x80 | steps), dtls.ClientToServer.Take(3));
            Join("dtls-handshake", (byte)steps, dtls.ServerToClient.Take(3));
        }
        Add("dtls-connected", FuzzRecords.Join(dtls.ClientToServer.Skip(dtls.ClientToServer.Count - 2)));
        Add("dtls-connected", FuzzRecords.Join(dtls.ClientToServer));

        // SCTP: a pair from INIT to messages; B's view of what A sent.
        var sctp = CaptureSctp();
        Join("sctp-fresh", 1, sctp.Handshake);
        Join("sctp-fresh", 0, sctp.Handshake);
        Join("sctp-established", 3, sctp.Established);
        Join("sctp-established", 3, sctp.Established.Take(3));
        Join("sctp-established", 1, sctp.Established.Take(2));

        // DCEP.
        var opens = new List<byte[]>();
        foreach (var type in Enum.GetValues<DataChannelType>())
            opens.Add(DcepOpen.Write(type, 256, type is DataChannelType.Reliable or DataChannelType.ReliableUnordered ? 0u : 3000u, "label-" + type,
                type == DataChannelType.Reliable ? "" : "proto"));
        Add("dcep", FuzzRecords.Join(opens));
        Add("dcep", FuzzRecords.Join([opens[0], [0x02]]));
        foreach (var o in opens) Add("dcep", FuzzRecords.Join([o]));

        // RTP written by our writers: extensions in both forms, CSRCs, padding.
        var buffer = new byte[4096];
        Span<byte> ext = stackalloc byte[64];
        var w1 = new RtpHeaderExtensionWriter(ext);
        w1.Add(1, "0"u8); w1.Add(3, [0x12, 0x34]); w1.Add(4, [1, 2, 3]);
        var extOne = ext[..w1.Finish()].ToArray();
        var w2 = new RtpHeaderExtensionWriter(ext, twoByte: true);
        w2.Add(1, "mid-with-long-value"u8); w2.Add(200, []);
        var extTwo = ext[..w2.Finish()].ToArray();
        foreach (var (extension, csrcs) in new[] { (extOne, Array.Empty<uint>()), (extTwo, new uint[] { 1, 2 }), (Array.Empty<byte>(), new uint[] { 7 }) })
        {
            var n = RtpPacketWriter.Write(new RtpHeader(96, 1234, 5678, RtpTargets.ReceiveSsrc, true), csrcs, extension, "payload"u8, buffer);
            Add("rtp", buffer[..n]);
            Add("srtp", [4, .. buffer.AsSpan(0, n)]);
            Add("srtp", [(byte)(4 | 3), .. buffer.AsSpan(0, n)]);
        }
        // SRTP packets protected with the targets' key, for the plain unprotect path.
        foreach (var (profileIndex, profile) in new[] { (0, SrtpProfile.AesCm128HmacSha1_80), (2, SrtpProfile.AeadAes128Gcm) })
        {
            using var ctx = RtpTargets.Context(profile);
            var n = RtpPacketWriter.Write(new RtpHeader(111, 1, 960, RtpTargets.ReceiveSsrc), "opus-payload"u8, buffer);
            if (ctx.ProtectRtp(buffer, n, out var protectedLength) == SrtpResult.Ok) Add("srtp", [(byte)profileIndex, .. buffer.AsSpan(0, protectedLength)]);
            var r = RtcpFeedback.WritePli(buffer, 1, 2);
            if (ctx.ProtectRtcp(buffer, r, out protectedLength) == SrtpResult.Ok) Add("srtcp", [(byte)profileIndex, .. buffer.AsSpan(0, protectedLength)]);
        }

        // Payloads of every packetizer, and frames for the assembler.
        byte[] annexB = [0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1F, 0xDA, 0, 0, 0, 1, 0x68, 0xCE, 0x3C, 0x80, 0, 0, 0, 1, 0x65,
            .. Enumerable.Range(0, 3000).Select(i => (byte)(i * 7 + 1))];
        var h264 = new List<byte[]>();
        var h264Packets = new List<byte[]>();
        var packetizer = new H264Packetizer(annexB, 1100);
        ushort seq = 100;
        while (packetizer.TryWriteNext(buffer, out var n, out var marker))
        {
            h264.Add(buffer[..n]);
            var rtpBuffer = new byte[n + 12];
            RtpPacketWriter.Write(new RtpHeader(102, seq++, 90000, RtpTargets.ReceiveSsrc, marker), buffer.AsSpan(0, n), rtpBuffer);
            h264Packets.Add(rtpBuffer);
        }
        foreach (var p in h264) Add("h264", p);
        Join("frame-assembler", 0, h264Packets);
        Join("frame-assembler", 0, h264Packets.AsEnumerable().Reverse());
        var vp8 = new Vp8Packetizer(Enumerable.Range(0, 2500).Select(i => (byte)i).ToArray(), 1000, 0x1234);
        while (vp8.TryWriteNext(buffer, out var n, out _)) Add("vp8", buffer[..n]);
        var opusLength = OpusPacketizer.Write([0xFC, 0xFF, 0xFE], buffer);
        Add("opus", buffer[..opusLength]);

        // RTCP: what an RtpSession sends (SR/RR + SDES, NACK), and every feedback writer.
        foreach (var compound in CaptureRtcp()) { Add("rtcp", compound); Add("srtcp", [4, .. compound]); }
        var single = new List<byte[]>
        {
            buffer[..RtcpFeedback.WritePli(buffer, 1, RtpTargets.SendSsrc)],
            buffer[..RtcpFeedback.WriteFir(buffer, 1, RtpTargets.SendSsrc, 3)],
            buffer[..RtcpFeedback.WriteRemb(buffer, 1, 1_500_000, [RtpTargets.SendSsrc, 5])],
            buffer[..RtcpFeedback.WriteNack(buffer, 1, RtpTargets.SendSsrc, [3, 4, 5, 9, 30])],
            buffer[..RtcpBye.Write(buffer, [RtpTargets.ReceiveSsrc], "done")],
            buffer[..RtcpApp.Write(buffer, 1, 9, "TEST"u8, [1, 2, 3, 4])],
            buffer[..RtcpSdes.WriteCname(buffer, RtpTargets.ReceiveSsrc, "cname@example")],
        };
        var statuses = Enumerable.Range(0, 40).Select(i => new TransportCcPacketStatus((ushort)(i + 1), i % 7 != 3,
            1_000_000 + i * (i % 5 == 0 ? 30_000 : 250))).ToArray();
        single.Add(buffer[..TransportCcFeedback.Write(buffer, 1, RtpTargets.SendSsrc, 0, statuses)]);
        single.Add(buffer[..TransportCcFeedback.Write(buffer, 1, RtpTargets.SendSsrc, 1, statuses.Where(s => s.Received).Take(3).ToArray())]);
        foreach (var s in single) Add("rtcp", s);
        Add("rtcp", [.. single.SelectMany(s => s)]);
        Add("srtcp", [4, .. single.SelectMany(s => s)]);

        // The JSON and frames of the session transports.
        foreach (var json in new[]
        {
            """{"type":"data","text":"hello"}""", """{"type":"pong","id":12345}""", """{"type":"bye"}""",
            """{"type":"offer","sdp":"v=0\r\n"}""",
                """{"type":"candidate","candidate":"candidate:1 1 udp 1 192.0.2.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}""",
            """{"type":"data","text":"\u00e9\ud83d\ude00","extra":[1,2.5e10,null,true,{"a":{}}]}""",
        }) Add("signaling-json", Encoding.UTF8.GetBytes(json));
        Add("signaling-json", [0x01, .. "binary"u8]);
        Add("signaling-json", [0x02, 5, .. "video"u8, 3, .. "VP8"u8, 1, 0, 0, 0x4E, 0x20, 0x10, 0x02, 0x00]);

        foreach (var (target, list) in seeds)
        {
            var dir = Path.Combine(root, target);
            Directory.CreateDirectory(dir);
            foreach (var old in Directory.EnumerateFiles(dir, "gen-*")) File.Delete(old);
            for (var i = 0; i < list.Count; i++) File.WriteAllBytes(Path.Combine(dir, $"gen-{i:D3}"), list[i]);
            yield return (target, list.Count);
        }
    }

    private sealed record Session(List<byte[]> Datagrams, List<byte[]> PlainRtp, string Offer, string Answer, byte VideoPt);

    private static Session CaptureSession()
    {
        var endA = StunIceTargets.RemoteEnd;
        var endB = StunIceTargets.LocalEnd;
        using var a = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = DtlsTargets.ClientCertificate,
            Ice = new IceAgentOptions { Role = IceRole.Controlling }
        });
        using var b = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = DtlsTargets.ServerCertificate,
            Ice = new IceAgentOptions { Role = IceRole.Controlled }
        });
        a.AddHostCandidate(endA);
        b.AddHostCandidate(endB);
        var audio = a.AddTrack(MediaKind.Audio);
        var video = a.AddTrack(MediaKind.Video);
        a.CreateDataChannel("chat", null, TimeSpan.Zero);
        var offer = a.CreateOffer(TimeSpan.Zero).ToString();
        var answer = b.CreateAnswer(SessionDescription.Parse(offer), TimeSpan.Zero).ToString();
        a.SetRemoteDescription(SessionDescription.Parse(answer), TimeSpan.Zero);
        var pa = new PeerTargets.Peer(a, endA, endB);
        var pb = new PeerTargets.Peer(b, endB, endA);
        var driver = new TwoPeerDriver(pa, pb);
        var datagrams = new List<byte[]>();
        driver.Link.AddFilter(null, m => { if (datagrams.Count < 2000) datagrams.Add(m.ToArray()); return false; }, _ => FilterAction.Pass);
        driver.RunUntil(() => a.State == ConnectionState.Connected && b.State == ConnectionState.Connected, TimeSpan.FromSeconds(10));
        driver.RunFor(TimeSpan.FromMilliseconds(500));
        var channel = pa.Events.OfType<DataChannelOpened>().FirstOrDefault()?.Channel;
        var random = new Random(7);
        for (var i = 0; i < 30; i++)
        {
            var frame = new byte[i % 10 == 0 ? 3000 : 400];
            random.NextBytes(frame);
            frame[0] = (byte)(i % 10 == 0 ? 0x10 : 0x11);
            a.SendFrame(video, frame, (uint)(i * 3000), driver.Now);
            a.SendFrame(audio, [0xFC, .. frame.AsSpan(0, 60)], (uint)(i * 960), driver.Now);
            channel?.Send(Encoding.UTF8.GetBytes($"message {i}"), i % 2 == 0, driver.Now);
            driver.RunFor(TimeSpan.FromMilliseconds(33));
        }
        driver.RunFor(TimeSpan.FromSeconds(2));
        var plain = new List<byte[]>();
        foreach (var track in pb.Events.OfType<RemoteTrackAdded>().Select(e => e.Track))
            while (plain.Count < 200 && track.Packets.TryRead(out var p)) { plain.Add(p.Data.ToArray()); p.Dispose(); }
        var videoPt = RtpPacket.TryRead(plain.FirstOrDefault(p => p.Length > 500) ?? [], out var vr) ? vr.PayloadType : (byte)96;
        return new Session(datagrams, plain, offer, answer, videoPt);
    }

    private static List<byte[]> CaptureIce()
    {
        using var a = new IceAgent(new IceAgentOptions
        {
            Role = IceRole.Controlling,
            LocalCredentials = StunIceTargets.RemoteCredentials,
            TieBreaker = 2,
            Random = new Random(1)
        });
        using var b = new IceAgent(new IceAgentOptions
        {
            Role = IceRole.Controlled,
            LocalCredentials = StunIceTargets.LocalCredentials,
            TieBreaker = 1,
            Random = new Random(1)
        });
        a.AddHostCandidate(StunIceTargets.RemoteEnd);
        b.AddHostCandidate(StunIceTargets.LocalEnd);
        var driver = new TwoPeerDriver(new StunIceTargets.AgentPeer(a, StunIceTargets.RemoteEnd, StunIceTargets.LocalEnd),
            new StunIceTargets.AgentPeer(b, StunIceTargets.LocalEnd, StunIceTargets.RemoteEnd));
        var captured = new List<byte[]>();
        driver.Link.AddFilter(LinkEnd.A, m => { if (captured.Count < 64) captured.Add(m.ToArray()); return false; }, _ => FilterAction.Pass);
        a.SetRemoteCredentials(StunIceTargets.LocalCredentials, driver.Now);
        b.SetRemoteCredentials(StunIceTargets.RemoteCredentials, driver.Now);
        IceCandidate.TryParse($"candidate:1 1 udp 2130706431 {StunIceTargets.LocalEnd.Address} {StunIceTargets.LocalEnd.Port} typ host", out var cb);
        IceCandidate.TryParse($"candidate:1 1 udp 2130706431 {StunIceTargets.RemoteEnd.Address} {StunIceTargets.RemoteEnd.Port} typ host", out var ca);
        a.AddRemoteCandidate(cb, driver.Now);
        b.AddRemoteCandidate(ca, driver.Now);
        driver.RunFor(TimeSpan.FromSeconds(8));
        return captured.Take(12).ToList();
    }

    private static byte[] CaptureTurnAllocate()
    {
        using var client = new TurnClient(TurnClientOptions.FromConfig(TurnServerConfig.Parse("turn:10.0.0.9:3478", "user", "pass")));
        client.Start(TimeSpan.Zero);
        var buffer = new byte[2048];
        return client.TryPollTransmit(buffer, out var n, out _) ? buffer[..n] : [];
    }

    private sealed record DtlsCapture(List<byte[]> ClientToServer, List<byte[]> ServerToClient);

    private static DtlsCapture CaptureDtls()
    {
        var c = new DtlsTargets.Peer(DtlsConnection.CreateClient(DtlsTargets.ClientOptions));
        var s = new DtlsTargets.Peer(DtlsConnection.CreateServer(DtlsTargets.ServerOptions, new DtlsCookieResponder(new byte[32]), [10, 0, 0, 1, 0x03, 0xE8]));
        var driver = new TwoPeerDriver(c, s);
        var toServer = new List<byte[]>();
        var toClient = new List<byte[]>();
        driver.Link.AddFilter(LinkEnd.A, m => { toServer.Add(m.ToArray()); return false; }, _ => FilterAction.Pass);
        driver.Link.AddFilter(LinkEnd.B, m => { toClient.Add(m.ToArray()); return false; }, _ => FilterAction.Pass);
        c.Connection.Start(driver.Now);
        driver.RunUntil(() => c.Connection.State == DtlsState.Connected && s.Connection.State == DtlsState.Connected, TimeSpan.FromSeconds(10));
        c.Connection.Send("hello"u8);
        s.Connection.Send("world"u8);
        driver.RunFor(TimeSpan.FromMilliseconds(100));
        c.Connection.Close(driver.Now);
        driver.RunFor(TimeSpan.FromMilliseconds(100));
        c.Connection.Dispose();
        s.Connection.Dispose();
        return new DtlsCapture(toServer, toClient);
    }

    private sealed record SctpCapture(List<byte[]> Handshake, List<byte[]> Established);

    private static SctpCapture CaptureSctp()
    {
        var handshake = new List<byte[]>();
        var established = new List<byte[]>();
        var a = new SctpTargets.Peer(new SctpAssociation(new SctpOptions { IsDtlsClient = true, OfferZeroChecksum = false, CookieSecret = new byte[32] }));
        var b = new SctpTargets.Peer(new SctpAssociation(new SctpOptions { IsDtlsClient = false, OfferZeroChecksum = false, CookieSecret = new byte[32] }));
        var driver = new TwoPeerDriver(a, b);
        a.Clock = b.Clock = () => driver.Now;
        driver.Link.AddFilter(LinkEnd.A,
            m => { (b.Association.State == SctpState.Established && handshake.Count >= 2 ? established : handshake).Add(m.ToArray()); return false; },
            _ => FilterAction.Pass);
        a.Association.Connect(driver.Now);
        var ch = a.Association.CreateDataChannel("fuzz", now: driver.Now);
        var unordered = a.Association.CreateDataChannel("u", new DataChannelOptions { Ordered = false, MaxRetransmits = 0 }, driver.Now);
        driver.RunUntil(() => ch.State == DataChannelState.Open && unordered.State == DataChannelState.Open, TimeSpan.FromSeconds(10));
        for (var i = 0; i < 8; i++) { ch.Send(new byte[i * 700 + 1], true, driver.Now); unordered.Send("x", driver.Now); }
        driver.RunFor(TimeSpan.FromSeconds(1));
        ch.Close(driver.Now);
        driver.RunFor(TimeSpan.FromSeconds(1));
        a.Association.Shutdown(driver.Now);
        driver.RunFor(TimeSpan.FromSeconds(1));
        return new SctpCapture(handshake, established.Take(40).ToList());
    }

    private static List<byte[]> CaptureRtcp()
    {
        var compounds = new List<byte[]>();
        var sender = new RtpSession();
        sender.AddSendStream(RtpTargets.SendSsrc, 90000, new RtxParameters(RtpTargets.RtxSsrc, 97));
        var receiver = new RtpSession();
        receiver.AddReceiveStream(RtpTargets.SendSsrc, 90000);
        var buffer = new byte[2048];
        var now = TimeSpan.Zero;
        for (ushort seq = 0; seq < 200; seq++)
        {
            now += TimeSpan.FromMilliseconds(20);
            var n = RtpPacketWriter.Write(new RtpHeader(96, seq, seq * 1800u, RtpTargets.SendSsrc), new byte[200], buffer);
            sender.OnRtpSent(buffer.AsSpan(0, n), now);
            if (seq % 17 != 5) receiver.HandleRtp(buffer.AsSpan(0, n), now); // losses: NACKs
            foreach (var s in new[] { sender, receiver })
            {
                if (s.PollTimeout() is { } t && t <= now) s.HandleTimeout(now);
                while (s.TryPollTransmit(buffer, out var w, out var kind))
                    if (kind == RtpTransmitKind.Rtcp && compounds.Count < 12) compounds.Add(buffer[..w]);
                while (s.TryPollEvent(out _)) { }
            }
        }
        return compounds;
    }
}
