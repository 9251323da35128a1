using BenchmarkDotNet.Attributes;
using Transport.Rtp;
using Transport.Rtp.Rtcp;
using Transport.Rtp.Streams;

namespace Transport.Bench;

/// <summary>
/// RTP header parse (with CSRCs and RFC 8285 extensions), RTCP compound parse, and transport-cc feedback (recording
/// the arrivals of 100 ms of a 2.5 Mbit/s stream, 1 % lost, and writing its message; numbering as many and reading
/// their feedback): time and allocations.
/// </summary>
[MemoryDiagnoser]
public class RtpBenchmarks
{
    private byte[] _rtp = null!;
    private byte[] _rtcp = null!;
    private TransportCcPacketStatus[] _twcc = null!;
    private readonly TransportCcReceiver _receiver = new();
    private readonly TransportCcSender _sender = new();
    private readonly TransportCcPacketStatus[] _reported = new TransportCcPacketStatus[30];
    private readonly byte[] _feedback = new byte[1500];
    private ushort _transportSequence;
    private TimeSpan _now;

    [GlobalSetup]
    public void Setup()
    {
        byte[] extension = new byte[32];
        var writer = new RtpHeaderExtensionWriter(extension);
        writer.Add(1, [0x30]);                    // audio level
        writer.Add(3, [0x01, 0x02, 0x03]);        // abs-send-time
        writer.Add(5, [0x12, 0x34]);              // transport-wide sequence number
        int extensionLength = writer.Finish();
        _rtp = new byte[1300];
        int length = RtpPacketWriter.Write(new RtpHeader(96, 1234, 567890, 0xDEADBEEF, true), [1u, 2u],
            extension.AsSpan(0, extensionLength), new byte[1200], _rtp);
        _rtp = _rtp[..length];

        byte[] rtcp = new byte[1200];
        int offset = RtcpReport.WriteSenderReport(rtcp, 1, new SenderInfo(1, 2, 3, 4),
            [new ReportBlock(2, 3, 4, 5, 6, 7, 8), new ReportBlock(3, 3, 4, 5, 6, 7, 8)]);
        offset += RtcpSdes.WriteCname(rtcp.AsSpan(offset), 1, "abcdefghijklmnop");
        offset += RtcpFeedback.WriteNack(rtcp.AsSpan(offset), 1, 2, [10, 11, 13, 40, 41]);
        offset += RtcpFeedback.WritePli(rtcp.AsSpan(offset), 1, 2);
        offset += RtcpFeedback.WriteRemb(rtcp.AsSpan(offset), 1, 2_000_000, [2u]);
        var statuses = new TransportCcPacketStatus[40];
        for (int i = 0; i < statuses.Length; i++)
        {
            statuses[i] = new TransportCcPacketStatus((ushort)(100 + i), i % 7 != 3, 1_000_000 + i * 1_000);
        }

        offset += TransportCcFeedback.Write(rtcp.AsSpan(offset), 1, 2, 0, statuses);
        _rtcp = rtcp[..offset];
        _twcc = new TransportCcPacketStatus[64];
    }

    [Benchmark]
    public int RtpHeaderParse()
    {
        if (!RtpPacket.TryRead(_rtp, out RtpPacket packet))
        {
            return -1;
        }

        int sum = packet.SequenceNumber + (int)packet.Timestamp + (int)packet.Ssrc + packet.Payload.Length + (int)packet.GetCsrc(1);
        if (packet.TryGetExtension(5, out ReadOnlySpan<byte> transportSequence))
        {
            sum += transportSequence[1];
        }

        return sum;
    }

    [Benchmark]
    public int RtcpCompoundParse()
    {
        int sum = 0;
        Span<ushort> nacked = stackalloc ushort[64];
        foreach (RtcpPacket packet in RtcpCompound.Enumerate(_rtcp))
        {
            switch (packet.PacketType)
            {
                case RtcpPacketType.SenderReport:
                case RtcpPacketType.ReceiverReport:
                    if (RtcpReport.TryRead(packet, out RtcpReport report))
                    {
                        for (int i = 0; i < report.BlockCount; i++)
                        {
                            sum += (int)report.GetBlock(i).ExtendedHighestSequence;
                        }
                    }

                    break;
                case RtcpPacketType.SourceDescription:
                    if (RtcpSdes.TryGetCname(packet, 1, out ReadOnlySpan<byte> cname))
                    {
                        sum += cname.Length;
                    }

                    break;
                default:
                    if (RtcpFeedback.TryRead(packet, out RtcpFeedback feedback))
                    {
                        if (feedback.IsNack)
                        {
                            sum += feedback.GetNackedSequences(nacked);
                        }
                        else if (feedback.IsRemb && feedback.TryGetRemb(out ulong bitrate, out _))
                        {
                            sum += (int)bitrate;
                        }
                        else if (feedback.IsTransportCc && TransportCcFeedback.TryRead(feedback.Fci, _twcc, out int count, out _))
                        {
                            sum += count;
                        }
                        else
                        {
                            sum++;
                        }
                    }

                    break;
            }
        }

        return sum;
    }

    /// <summary>30 packets (100 ms at 2.5 Mbit/s, one in 100 lost) recorded, then their feedback written.</summary>
    [Benchmark(OperationsPerInvoke = 30)]
    public int TransportCcRecordAndFeedback()
    {
        for (int i = 0; i < 30; i++)
        {
            _transportSequence++;
            _now += TimeSpan.FromMicroseconds(3_333);
            if (_transportSequence % 100 != 0)
            {
                _receiver.OnPacket(_transportSequence, 0x1234, _now);
            }
        }

        return _receiver.TryWriteNow(_feedback, 1, _now, out int written) ? written : -1;
    }

    /// <summary>30 packets numbered, then the feedback on them (one in 100 lost) read into the sender's figures.</summary>
    [Benchmark(OperationsPerInvoke = 30)]
    public double TransportCcNumberAndReadFeedback()
    {
        for (int i = 0; i < 30; i++)
        {
            _now += TimeSpan.FromMicroseconds(3_333);
            ushort n = _sender.Number(1200, _now);
            _reported[i] = new TransportCcPacketStatus(n, n % 100 != 0, _now.Ticks / 10 + 20_000);
        }

        _sender.OnFeedback(_reported, (byte)_sender.FeedbackReceived, _now + TimeSpan.FromMilliseconds(30));
        return _sender.LossFraction;
    }
}
