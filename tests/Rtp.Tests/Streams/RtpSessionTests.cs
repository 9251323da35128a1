using System.Buffers.Binary;
using Transport.Rtp.Rtcp;
using Transport.Rtp.Streams;

namespace Transport.Rtp.Tests.Streams;

public class RtpSessionTests
{
    private static byte[] Rtp(ushort seq, uint ts, uint ssrc, byte pt = 96, int payload = 100)
    {
        byte[] buffer = new byte[12 + payload];
        RtpPacketWriter.Write(new RtpHeader(pt, seq, ts, ssrc), new byte[payload], buffer);
        return buffer;
    }

    private static List<RtpSessionEvent> Drain(RtpSession session)
    {
        var list = new List<RtpSessionEvent>();
        while (session.TryPollEvent(out RtpSessionEvent? e))
        {
            list.Add(e!);
        }

        return list;
    }

    private static List<(byte[] Data, RtpTransmitKind Kind)> Transmit(RtpSession session)
    {
        var list = new List<(byte[], RtpTransmitKind)>();
        byte[] buffer = new byte[1500];
        while (session.TryPollTransmit(buffer, out int n, out RtpTransmitKind kind))
        {
            list.Add((buffer[..n], kind));
        }

        return list;
    }

    [Fact]
    public void SenderAndReceiverExchangeReportsAndMeasureRoundTripTime()
    {
        var sender = new RtpSession(new RtpSessionOptions { LocalSsrc = 100, NtpOrigin = 0xE000_0000_0000_0000UL });
        var receiver = new RtpSession(new RtpSessionOptions { LocalSsrc = 200, NtpOrigin = 0x1000_0000_0000_0000UL });
        sender.AddSendStream(0xAAAA, 90_000);
        TimeSpan oneWay = TimeSpan.FromMilliseconds(40);
        TimeSpan now = TimeSpan.Zero;
        for (int i = 0; i < 50; i++, now += TimeSpan.FromMilliseconds(33))
        {
            byte[] packet = Rtp((ushort)i, (uint)(i * 3000), 0xAAAA);
            sender.OnRtpSent(packet, now);
            receiver.HandleRtp(packet, now + oneWay);
        }

        // The sender's report is due within 1.5 s.
        now = TimeSpan.FromSeconds(2);
        sender.HandleTimeout(now);
        var sr = Transmit(sender);
        Assert.Single(sr);
        var enumerator = RtcpCompound.Enumerate(sr[0].Data);
        Assert.True(enumerator.MoveNext());
        Assert.True(RtcpReport.TryRead(enumerator.Current, out RtcpReport report));
        Assert.True(report.IsSenderReport);
        Assert.Equal(50u, report.SenderInfo.PacketCount);
        Assert.Equal(5000u, report.SenderInfo.OctetCount);
        // RTP time extrapolated from the last packet (t = 1.617 s, ts 147000) to t = 2 s at 90 kHz.
        Assert.Equal(147_000u + (uint)(0.383 * 90_000), report.SenderInfo.RtpTimestamp);
        Assert.True(enumerator.MoveNext());
        Assert.True(RtcpSdes.TryGetCname(enumerator.Current, 0xAAAA, out _));

        receiver.HandleRtcp(sr[0].Data, now + oneWay);
        Assert.Contains(Drain(receiver), e => e is SenderReportReceived { Ssrc: 0xAAAA });

        // 100 ms later the receiver reports; the sender gets it after another 40 ms.
        TimeSpan rrTime = now + oneWay + TimeSpan.FromMilliseconds(100);
        receiver.HandleTimeout(rrTime + TimeSpan.FromSeconds(2));
        var rr = Transmit(receiver);
        Assert.Single(rr);
        // Deliver with the report's actual send time: the receiver sent at its "now"; compute arrival accordingly.
        sender.HandleRtcp(rr[0].Data, rrTime + TimeSpan.FromSeconds(2) + oneWay);
        var events = Drain(sender);
        RoundTripTimeMeasured rtt = Assert.Single(events.OfType<RoundTripTimeMeasured>());
        Assert.Equal(0xAAAAu, rtt.MediaSsrc);
        Assert.InRange(rtt.RoundTripTime.TotalMilliseconds, 79, 81);
        ReceptionReportReceived block = Assert.Single(events.OfType<ReceptionReportReceived>());
        Assert.Equal(0, block.Block.CumulativeLost);
        Assert.Equal(49u, block.Block.ExtendedHighestSequence);
    }

    [Fact]
    public void MissingPacketsAreNackedAndTheSenderRetransmitsThemAsRtx()
    {
        var sender = new RtpSession(new RtpSessionOptions { LocalSsrc = 1 });
        var receiver = new RtpSession(new RtpSessionOptions { LocalSsrc = 2 });
        sender.AddSendStream(0xAAAA, 90_000, new RtxParameters(0xBBBB, 97));
        TimeSpan now = TimeSpan.FromMilliseconds(10);
        var sent = new Dictionary<ushort, byte[]>();
        for (ushort seq = 65530; seq != 6; seq++)
        {
            byte[] packet = Rtp(seq, seq * 10u, 0xAAAA);
            packet[20] = (byte)seq; // distinguishable payload
            sent[seq] = packet;
            sender.OnRtpSent(packet, now);
            if (seq is not (65534 or 65535 or 2))
            {
                receiver.HandleRtp(packet, now);
            }
        }

        var nack = Transmit(receiver);
        Assert.Single(nack);
        Assert.True(RtcpCompound.IsValid(nack[0].Data, out int count));
        Assert.Equal(2, count); // empty RR heading the NACK

        sender.HandleRtcp(nack[0].Data, now);
        NackReceived received = Assert.Single(Drain(sender).OfType<NackReceived>());
        Assert.Equal((3, 3), (received.Requested, received.Retransmitting));
        var retransmissions = Transmit(sender).Where(t => t.Kind == RtpTransmitKind.RtpRetransmission).ToList();
        Assert.Equal(3, retransmissions.Count);
        byte[] restored = new byte[200];
        var restoredSequences = new List<ushort>();
        foreach ((byte[] data, _) in retransmissions)
        {
            Assert.True(RtpPacket.TryRead(data, out RtpPacket rtx));
            Assert.Equal(0xBBBBu, rtx.Ssrc);
            Assert.Equal(97, rtx.PayloadType);
            int n = RetransmissionCache.UnwrapRtx(data, 96, 0xAAAA, restored);
            Assert.True(RtpPacket.TryRead(restored.AsSpan(0, n), out RtpPacket original));
            restoredSequences.Add(original.SequenceNumber);
            Assert.Equal(sent[original.SequenceNumber], restored[..n]);
            receiver.HandleRtp(restored.AsSpan(0, n), now);
        }

        Assert.Equal(new ushort[] { 65534, 65535, 2 }, restoredSequences);

        // Nothing missing any more: no NACK later even after the retry interval.
        receiver.HandleTimeout(now + TimeSpan.FromMilliseconds(150));
        Assert.DoesNotContain(Transmit(receiver), t => t.Data.Length > 0 && HasNack(t.Data));
    }

    [Fact]
    public void ARepeatedNackIsNotAnsweredAgainWithinTheIntervalFromWhenTheRetransmissionLeft()
    {
        var sender = new RtpSession(new RtpSessionOptions { LocalSsrc = 1 }) { MinRetransmitInterval = TimeSpan.FromMilliseconds(100) };
        var receiver = new RtpSession(new RtpSessionOptions { LocalSsrc = 2 });
        sender.AddSendStream(0xAAAA, 90_000, new RtxParameters(0xBBBB, 97));
        TimeSpan t0 = TimeSpan.FromMilliseconds(10);
        for (ushort seq = 1; seq <= 10; seq++)
        {
            byte[] packet = Rtp(seq, seq * 10u, 0xAAAA);
            sender.OnRtpSent(packet, t0);
            if (seq != 5) receiver.HandleRtp(packet, t0);
        }

        byte[] nack = Assert.Single(Transmit(receiver)).Data;
        int Answered(TimeSpan at)
        {
            sender.HandleRtcp(nack, at);
            return Assert.Single(Drain(sender).OfType<NackReceived>()).Retransmitting;
        }

        Assert.Equal(1, Answered(t0));
        byte[] rtx = Assert.Single(Transmit(sender), t => t.Kind == RtpTransmitKind.RtpRetransmission).Data;
        sender.OnRetransmissionSent(rtx, t0 + TimeSpan.FromMilliseconds(80));   // it waited 80 ms in a pacer
        Assert.Equal(0, Answered(t0 + TimeSpan.FromMilliseconds(150)));          // 70 ms after it left: on its way
        Assert.Equal(1, sender.RepeatedNacksIgnored);
        Assert.DoesNotContain(Transmit(sender), t => t.Kind == RtpTransmitKind.RtpRetransmission);
        Assert.Equal(1, Answered(t0 + TimeSpan.FromMilliseconds(190)));          // 110 ms: lost again, resent
        sender.OnRetransmissionSent([1, 2, 3], t0);                              // malformed: ignored
    }

    private static bool HasNack(byte[] compound)
    {
        foreach (RtcpPacket p in RtcpCompound.Enumerate(compound))
        {
            if (RtcpFeedback.TryRead(p, out RtcpFeedback f) && f.IsNack)
            {
                return true;
            }
        }

        return false;
    }

    [Fact]
    public void NackGeneratorRetriesBoundedTimesAndBoundsTheMissingList()
    {
        var nack = new NackGenerator { MaxRetries = 2, MaxMissing = 100 };
        nack.OnPacket(0, TimeSpan.Zero);
        nack.OnPacket(5000, TimeSpan.Zero);
        Assert.Equal(100, nack.MissingCount);
        Span<ushort> due = stackalloc ushort[200];
        Assert.Equal(100, nack.Poll(TimeSpan.Zero, due));
        Assert.Equal(4900, due[0]);
        Assert.Equal(0, nack.Poll(TimeSpan.FromMilliseconds(50), due));
        Assert.Equal(100, nack.Poll(TimeSpan.FromMilliseconds(100), due));
        Assert.Equal(0, nack.Poll(TimeSpan.FromMilliseconds(300), due));
        Assert.Equal(0, nack.MissingCount);
    }

    [Fact]
    public void PliFirRembAndByeAreSurfacedAtOnce()
    {
        var session = new RtpSession();
        session.AddSendStream(0xAAAA, 90_000);
        session.HandleRtp(Rtp(1, 0, 0xCCCC), TimeSpan.Zero);
        byte[] buffer = new byte[200];
        int n = 0;
        n += RtcpReport.WriteReceiverReport(buffer.AsSpan(n), 0xCCCC, []);
        n += RtcpFeedback.WritePli(buffer.AsSpan(n), 0xCCCC, 0xAAAA);
        n += RtcpFeedback.WriteFir(buffer.AsSpan(n), 0xCCCC, 0xAAAA, 1);
        n += RtcpFeedback.WriteFir(buffer.AsSpan(n), 0xCCCC, 0xAAAA, 1); // same request repeated
        n += RtcpFeedback.WriteRemb(buffer.AsSpan(n), 0xCCCC, 1_000_000, [0xAAAAu]);
        n += RtcpBye.Write(buffer.AsSpan(n), [0xCCCCu], "bye");
        session.HandleRtcp(buffer.AsSpan(0, n), TimeSpan.FromMilliseconds(5));
        var events = Drain(session);
        Assert.Equal(2, events.OfType<KeyFrameRequested>().Count());
        // Each stamped with the time of the packet that carried it (the event's At is part of its equality).
        var at = TimeSpan.FromMilliseconds(5);
        Assert.Contains(new KeyFrameRequested(0xAAAA, false) { At = at }, events);
        Assert.Contains(new KeyFrameRequested(0xAAAA, true) { At = at }, events);
        Assert.Contains(new RembReceived(1_000_000) { At = at }, events);
        Assert.Contains(new ByeReceived(0xCCCC, "bye") { At = at }, events);
        Assert.All(events, e => Assert.Equal(at, e.At));
        Assert.Equal(2, events.Count(e => e.Kind == RtpEventKind.KeyFrameRequested));
        Assert.Single(events, e => e.Kind == RtpEventKind.ByeReceived);
        Assert.Null(session.GetReceiveStatistics(0xCCCC));

        session.HandleRtcp(new byte[] { 0x80, 201, 0, 9 }, TimeSpan.FromMilliseconds(6));
        Assert.Equal(1, session.DroppedRtcp);
    }

    [Fact]
    public void EveryEventRecordIsSealedWithItsOwnKind()
    {
        var types = typeof(RtpSessionEvent).Assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(RtpSessionEvent))).ToList();
        Assert.All(types, t => Assert.True(t.IsSealed, t.Name));
        var kinds = types.Select(t => ((RtpSessionEvent)System.Runtime.CompilerServices.RuntimeHelpers.GetUninitializedObject(t)).Kind).Order();
        Assert.Equal(Enum.GetValues<RtpEventKind>().Order(), kinds);
        Assert.Empty(typeof(RtpSessionEvent).GetConstructors());
    }

    [Fact]
    public void HandleDatagramTellsRtpFromRtcpAndPollTimeoutNamesEachTimer()
    {
        var session = new RtpSession(new RtpSessionOptions { LocalSsrc = 2 });
        session.AddSendStream(0xAAAA, 90_000);
        Assert.NotNull(session.PollTimeout(out var timer));
        Assert.Equal(RtpTimer.Report, timer);

        // RTP through the one input verb: 0, 1, 3 of 0xCCCC; 2 is missing, so a NACK is due at once.
        var now = TimeSpan.FromMilliseconds(30);
        foreach (ushort seq in new ushort[] { 0, 1, 3 }) session.HandleDatagram(Rtp(seq, seq * 3000u, 0xCCCC), now);
        Assert.NotNull(session.GetReceiveStatistics(0xCCCC));
        Assert.Equal(now, session.PollTimeout(out timer));
        Assert.Equal(RtpTimer.Nack, timer);
        Assert.Contains(Transmit(session), t => t.Kind == RtpTransmitKind.Rtcp && HasNack(t.Data));
        Assert.True(session.PollTimeout(out _) > now); // sent: its retry (or the report) comes later

        // RTCP through the same verb: a PLI becomes an event stamped with its time.
        byte[] buffer = new byte[100];
        int n = RtcpReport.WriteReceiverReport(buffer, 0xCCCC, []);
        n += RtcpFeedback.WritePli(buffer.AsSpan(n), 0xCCCC, 0xAAAA);
        var later = TimeSpan.FromMilliseconds(40);
        session.HandleDatagram(buffer.AsSpan(0, n), later);
        var pli = Assert.IsType<KeyFrameRequested>(Assert.Single(Drain(session), e => e.Kind == RtpEventKind.KeyFrameRequested));
        Assert.Equal((0xAAAAu, later), (pli.MediaSsrc, pli.At));

        // A BYE waits to be sent: due now.
        session.SendBye();
        Assert.Equal(later, session.PollTimeout(out timer));
        Assert.Equal(RtpTimer.Transmit, timer);
    }
}

public class RtpSessionRtxTests
{
    [Fact]
    public void RtxPacketsAreUnwrappedToTheMediaStreamAndNeverBecomeAStreamOfTheirOwn()
    {
        var session = new RtpSession();
        session.AddReceiveStream(0xAAAA, 90_000);
        session.AddReceiveRtx(0xBBBB, 0xAAAA, 96);
        byte[] media = new byte[40];
        RtpPacketWriter.Write(new RtpHeader(96, 500, 1234, 0xAAAA), new byte[20], media);
        var cache = new RetransmissionCache(16) { Rtx = new RtxParameters(0xBBBB, 97) };
        cache.Store(media.AsSpan(0, 32));
        byte[] rtx = new byte[64];
        Assert.True(cache.TryGetRetransmission(500, rtx, out int n));

        session.HandleRtp(rtx.AsSpan(0, n), TimeSpan.FromMilliseconds(1));
        Assert.Null(session.GetReceiveStatistics(0xBBBB));

        byte[] restored = new byte[64];
        Assert.True(session.TryUnwrapRtx(rtx.AsSpan(0, n), restored, out int k));
        Assert.Equal(media[..32], restored[..k]);
        session.HandleRtp(restored.AsSpan(0, k), TimeSpan.FromMilliseconds(2));
        Assert.Equal(1, session.GetReceiveStatistics(0xAAAA)!.PacketsReceived);
        Assert.False(session.TryUnwrapRtx(media.AsSpan(0, 32), restored, out _)); // not an RTX stream
    }
}
