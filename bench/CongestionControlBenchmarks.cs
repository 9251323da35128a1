using BenchmarkDotNet.Attributes;
using Transport.Rtp.Congestion;
using Transport.Rtp.Rtcp;
using Transport.Rtp.Streams;
using Transport.Streaming.Jsep;
using Transport.Streaming.WebRtc;

namespace Transport.Bench;

/// <summary>
/// Send-side congestion control per packet: the estimator (numbering a packet, then its share of reading a
/// 30-packet transport-cc feedback through the trendline detector, the AIMD and loss controllers, the acknowledged
/// rate and the probe and ALR bookkeeping), against the same work without an estimator; and the pacer (queue a
/// 1100-byte video packet, let it out on the budget, charge it). Each benchmark is 30 packets (one feedback's worth,
/// 100 ms of a 2.5 Mbit/s stream); BenchmarkDotNet divides by 30.
/// </summary>
[MemoryDiagnoser]
public class CongestionControlBenchmarks
{
    private const int Packets = 30;
    private readonly TransportCcSender _plain = new();
    private readonly TransportCcSender _withEstimator =
        new() { Estimator = new SendSideBandwidthEstimator(new CongestionControlOptions { ProbeAtStart = false }) };
    private readonly TransportCcPacketStatus[] _reported = new TransportCcPacketStatus[Packets];
    private MediaPacer _pacer = null!;
    private readonly byte[] _packet = new byte[1100];
    private readonly byte[] _destination = new byte[1500];
    private TimeSpan _now;
    private long _arrival;
    private byte _count;

    [GlobalSetup]
    public void Setup()
    {
        var options = new CongestionControlOptions { StartBitrate = 100_000_000, MaxBitrate = 100_000_000, ProbeAtStart = false };
        _pacer = new MediaPacer(options, 512, 1228) { Estimator = new SendSideBandwidthEstimator(options) };
    }

    private int NumberAndReadFeedback(TransportCcSender sender)
    {
        // 30 packets 3.3 ms apart; they arrive with a small wobble of the delay (the detector sees groups and a trend).
        for (int i = 0; i < Packets; i++)
        {
            ushort n = sender.Number(1100, _now);
            _arrival += 3_333 + (i % 3 == 0 ? 200 : -100);
            _reported[i] = new TransportCcPacketStatus(n, i != 17, _arrival);
            _now += TimeSpan.FromMicroseconds(3_333);
        }
        sender.OnFeedback(_reported, _count++, _now + TimeSpan.FromMilliseconds(30));
        return (int)sender.PacketsReceived;
    }

    /// <summary>Numbering and feedback without an estimator (the baseline).</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Packets)]
    public int FeedbackWithoutEstimator() => NumberAndReadFeedback(_plain);

    /// <summary>Numbering and feedback with the estimator: the difference is the estimator's cost per packet.</summary>
    [Benchmark(OperationsPerInvoke = Packets)]
    public int FeedbackWithEstimator() => NumberAndReadFeedback(_withEstimator);

    /// <summary>Queue, release and charge one video packet in the pacer.</summary>
    [Benchmark(OperationsPerInvoke = Packets)]
    public int PacerQueueAndRelease()
    {
        int sent = 0;
        for (int i = 0; i < Packets; i++)
        {
            _pacer.TryReserve(MediaKind.Video, out var slot);
            _packet.CopyTo(slot);
            _pacer.Commit(MediaKind.Video, _packet.Length);
        }
        _now += TimeSpan.FromMilliseconds(5);
        while (_pacer.TryPoll(_now, _destination, out int written, out _))
        {
            _pacer.OnSent(written);
            sent += written;
        }
        return sent;
    }
}
