using System.Text;
using Transport.Rtp.Rtcp;

namespace Transport.Rtp.Streams;

public sealed partial class RtpSession
{
    private const int MaxQueuedRetransmissions = 512;

    /// <summary>Handles a received (already unprotected) compound or reduced-size RTCP packet.</summary>
    internal void HandleRtcp(ReadOnlySpan<byte> compound, TimeSpan now)
    {
        Advance(now);
        if (!RtcpCompound.IsValid(compound, out _))
        {
            DroppedRtcp++;
            return;
        }

        Span<ushort> nacked = stackalloc ushort[256];
        foreach (RtcpPacket packet in RtcpCompound.Enumerate(compound))
        {
            switch (packet.PacketType)
            {
                case RtcpPacketType.SenderReport:
                case RtcpPacketType.ReceiverReport:
                    if (RtcpReport.TryRead(packet, out RtcpReport report))
                    {
                        if (report.IsSenderReport)
                        {
                            if (_receive.TryGetValue(report.Ssrc, out ReceiveStream? source))
                            {
                                source.Statistics.OnSenderReport(report.SenderInfo, _now);
                            }

                            Emit(new SenderReportReceived(report.Ssrc, report.SenderInfo));
                        }

                        for (int i = 0; i < report.BlockCount; i++)
                        {
                            OnReportBlock(report.Ssrc, report.GetBlock(i));
                        }
                    }

                    break;
                case RtcpPacketType.Bye:
                    if (RtcpBye.TryRead(packet, out RtcpBye bye))
                    {
                        string? reason = bye.Reason.IsEmpty ? null : Encoding.UTF8.GetString(bye.Reason);
                        for (int i = 0; i < bye.Count; i++)
                        {
                            uint ssrc = bye.GetSsrc(i);
                            _receive.Remove(ssrc);
                            Emit(new ByeReceived(ssrc, reason));
                        }
                    }

                    break;
                case RtcpPacketType.TransportFeedback:
                case RtcpPacketType.PayloadFeedback:
                    if (RtcpFeedback.TryRead(packet, out RtcpFeedback feedback))
                    {
                        OnFeedback(feedback, nacked);
                    }

                    break;
            }
        }
    }

    private void OnFeedback(in RtcpFeedback feedback, Span<ushort> scratch)
    {
        if (feedback.IsNack && _send.TryGetValue(feedback.MediaSsrc, out SendStream? stream))
        {
            int count = feedback.GetNackedSequences(scratch);
            int queued = 0;
            for (int i = 0; i < count; i++)
            {
                if (stream.Cache.Contains(scratch[i]))
                {
                    if (stream.Cache.Rtx is null && (ushort)(stream.LastSequence - scratch[i]) >= PlainResendWindow)
                    {
                        TooOldToResend++;
                        continue;
                    }

                    if (!stream.Cache.TryMarkResent(scratch[i], _now, MinRetransmitInterval))
                    {
                        RepeatedNacksIgnored++;
                        continue;
                    }

                    if (_retransmissions.Count >= MaxQueuedRetransmissions)
                    {
                        DroppedRetransmissions++;
                        continue;
                    }

                    _retransmissions.Enqueue((stream.Ssrc, scratch[i]));
                    queued++;
                }
            }

            Emit(new NackReceived(feedback.MediaSsrc, count, queued));
        }
        else if (feedback.IsPli && _send.ContainsKey(feedback.MediaSsrc))
        {
            Emit(new KeyFrameRequested(feedback.MediaSsrc, false));
        }
        else if (feedback.IsFir)
        {
            for (int i = 0; feedback.TryGetFirEntry(i, out uint ssrc, out byte sequence); i++)
            {
                // RFC 5104 section 4.3.1.2: a repeated FIR sequence number is the same request.
                if (_send.TryGetValue(ssrc, out SendStream? target) && target.LastFirSequence != sequence)
                {
                    target.LastFirSequence = sequence;
                    Emit(new KeyFrameRequested(ssrc, true));
                }
            }
        }
        else if (feedback.IsRemb && feedback.TryGetRemb(out ulong bitrate, out _))
        {
            Emit(new RembReceived(bitrate));
        }
        else if (feedback.IsTransportCc && TransportCcSender is { } sender)
        {
            OnTransportCcFeedback(feedback, sender);
        }
    }

    private TransportCcPacketStatus[]? _transportCcScratch;

    // A message may report up to 65535 numbers (after a long outage): the usual ones fit the kept scratch, a larger one
    // borrows from the pool for the moment.
    private void OnTransportCcFeedback(in RtcpFeedback feedback, TransportCcSender sender)
    {
        ReadOnlySpan<byte> fci = feedback.Fci;
        int statusCount = fci.Length >= 4 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(fci.Slice(2)) : 0;
        _transportCcScratch ??= new TransportCcPacketStatus[1024];
        TransportCcPacketStatus[] scratch = statusCount <= _transportCcScratch.Length
            ? _transportCcScratch
            : System.Buffers.ArrayPool<TransportCcPacketStatus>.Shared.Rent(statusCount);
        try
        {
            if (TransportCcFeedback.TryRead(fci, scratch, out int count, out byte feedbackCount))
            {
                sender.OnFeedback(scratch.AsSpan(0, count), feedbackCount, _now);
            }
            else
            {
                MalformedTransportCcFeedback++;
            }
        }
        finally
        {
            if (scratch != _transportCcScratch)
            {
                System.Buffers.ArrayPool<TransportCcPacketStatus>.Shared.Return(scratch);
            }
        }
    }

    /// <summary>
    /// Queues an RTCP BYE for every send stream (RFC 3550 section 6.6), sent with a report by the next
    /// <see cref="TryPollTransmit"/>.
    /// </summary>
    public void SendBye(string? reason = null)
    {
        _byePending = true;
        _byeReason = reason;
    }

    /// <summary>
    /// Produces the next datagram to send, if any: first queued retransmissions (RTP), then due NACKs, then the
    /// periodic report (SR when we send, else RR, with SDES CNAME; RFC 3550 section 6.1 compound rules).
    /// </summary>
    public bool TryPollTransmit(Span<byte> destination, out int written, out RtpTransmitKind kind)
    {
        written = 0;
        kind = RtpTransmitKind.Rtcp;
        while (_retransmissions.TryDequeue(out (uint Ssrc, ushort Sequence) item))
        {
            if (_send.TryGetValue(item.Ssrc, out SendStream? stream) && stream.Cache.TryGetRetransmission(item.Sequence, destination, out written))
            {
                kind = RtpTransmitKind.RtpRetransmission;
                return true;
            }
        }

        if (_byePending)
        {
            written = WriteReport(destination, full: true);
            Span<uint> ssrcs = stackalloc uint[Math.Min(31, Math.Max(1, _send.Count))];
            int count = 0;
            foreach (SendStream stream in _send.Values)
            {
                if (count < ssrcs.Length)
                {
                    ssrcs[count++] = stream.Ssrc;
                }
            }

            if (count == 0)
            {
                ssrcs[count++] = _options.LocalSsrc;
            }

            int bye = written < 0 ? -1 : RtcpBye.Write(destination.Slice(written), ssrcs[..count], _byeReason);
            _byePending = false;
            if (bye < 0)
            {
                written = 0;
                return false;
            }

            written += bye;
            return true;
        }

        bool reportDue = _nextReport is { } at && at <= _now;
        int nackLength = 0;
        Span<byte> nackArea = _scratch;
        Span<ushort> due = stackalloc ushort[64];
        if (_options.EnableNack)
        {
            foreach (ReceiveStream stream in _receive.Values)
            {
                int n = stream.Nack.Poll(_now, due);
                if (n > 0)
                {
                    int length = RtcpFeedback.WriteNack(nackArea.Slice(nackLength), ReportSsrc(), stream.Statistics.Ssrc, due[..n]);
                    if (length > 0)
                    {
                        nackLength += length;
                    }
                }
            }
        }

        if (!reportDue && nackLength == 0)
        {
            return false;
        }

        written = WriteReport(destination, full: reportDue);
        if (written < 0 || written + nackLength > destination.Length)
        {
            written = 0;
            return false;
        }

        nackArea.Slice(0, nackLength).CopyTo(destination.Slice(written));
        written += nackLength;
        if (reportDue)
        {
            _nextReport = _now + ReportDelay();
        }

        return true;
    }

    private uint ReportSsrc()
    {
        foreach (SendStream stream in _send.Values)
        {
            return stream.Ssrc;
        }

        return _options.LocalSsrc;
    }

    /// <summary>SR/RR with report blocks plus SDES (full), or an empty RR heading a feedback-only compound.</summary>
    private int WriteReport(Span<byte> destination, bool full)
    {
        Span<ReportBlock> blocks = stackalloc ReportBlock[31];
        int blockCount = 0;
        if (full)
        {
            foreach (ReceiveStream stream in _receive.Values)
            {
                if (blockCount == blocks.Length)
                {
                    break;
                }

                blocks[blockCount++] = stream.Statistics.CreateReportBlock(_now);
            }
        }

        int offset = 0;
        bool first = true;
        ulong ntp = NtpTime.FromMonotonic(_options.NtpOrigin, _now);
        foreach (SendStream stream in _send.Values)
        {
            if (!full || !stream.Sent)
            {
                continue;
            }

            // The RTP timestamp that corresponds to "now" on this stream's clock (RFC 3550 section 6.4.1).
            uint rtp = stream.LastRtpTimestamp + (uint)((_now - stream.LastSendTime).Ticks * stream.ClockRate / TimeSpan.TicksPerSecond);
            var info = new SenderInfo(ntp, rtp, stream.PacketCount, stream.OctetCount);
            int n = RtcpReport.WriteSenderReport(destination.Slice(offset), stream.Ssrc, info, first ? blocks[..blockCount] : []);
            if (n < 0)
            {
                return -1;
            }

            offset += n;
            first = false;
        }

        if (first)
        {
            int n = RtcpReport.WriteReceiverReport(destination.Slice(offset), ReportSsrc(), blocks[..blockCount]);
            if (n < 0)
            {
                return -1;
            }

            offset += n;
        }

        if (full)
        {
            int n = RtcpSdes.WriteCname(destination.Slice(offset), ReportSsrc(), _options.Cname);
            if (n < 0)
            {
                return -1;
            }

            offset += n;
        }

        return offset;
    }
}
