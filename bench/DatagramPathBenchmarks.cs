using System.Globalization;
using BenchmarkDotNet.Attributes;
using Transport.Sctp;
using Transport.Streaming.Jsep;
using Transport.Streaming.WebRtc;

namespace Transport.Bench;

/// <summary>
/// The peer connection's datagram path end to end, with no socket and no thread: two <see cref="PeerConnectionCore"/>s
/// whose datagrams are handed from one to the other in memory on virtual time, so that a run measures our code and
/// not the scheduler or the kernel (the <c>peer-connection</c> verb, over real sockets and two drivers, swings 3-6x
/// between runs on a shared machine).
/// <list type="bullet">
/// <item><see cref="DataChannel1KiB"/> / <see cref="DataChannel64KiB"/>: one operation is one data-channel message sent
/// by A (<see cref="DataChannel.Send(ReadOnlySpan{byte}, bool, TimeSpan?)"/>: one copy into SCTP's pool) and delivered
/// to B's application as a <see cref="DataChannelMessageLease"/>: SCTP, DTLS 1.3 record protection and ICE on both
/// sides, B's SACKs back to A; 4 MiB per invocation with at most 1 MiB buffered.</item>
/// <item><see cref="MediaPacket"/>: one operation is one video frame of one RTP packet (1000 B of VP8) sent by A:
/// packetized, SRTP-protected (AES_CM_128_HMAC_SHA1_80 or AEAD as negotiated), paced, sent over ICE, unprotected and
/// depacketized by B into a frame; virtual time moves 40 ms a frame, and the RTCP reports and transport-cc feedback
/// that fall due meanwhile are part of the operation.</item>
/// </list>
/// <c>dotnet run -c Release --project bench -- --filter '*DatagramPath*'</c>; on a loaded machine the CPU time per
/// operation (<see cref="Run"/>, verb <c>datagram-path</c>) is the steadier figure. The allocation of the copying and
/// zero-copy data-channel variants is <see cref="DataChannelAllocationBenchmarks"/>.
/// </summary>
[MemoryDiagnoser]
public class DatagramPathBenchmarks
{
    private const int BytesPerInvoke = 4 * 1024 * 1024;
    private const int FramesPerInvoke = 64;
    private static readonly TimeSpan FrameInterval = TimeSpan.FromMilliseconds(40);
    private InMemoryCorePair _pair = null!;
    private DataChannel? _channel;
    private LocalTrack _video = null!;
    private RemoteTrack? _remoteVideo;
    private readonly byte[] _message = new byte[65536];
    private readonly byte[] _frame = new byte[1000];
    private uint _rtpTimestamp;
    private long _received, _framesReceived;

    [GlobalSetup]
    public void Setup()
    {
        _pair = new InMemoryCorePair(leasedMessages: true, Drain);
        _video = _pair.A.AddTrack(MediaKind.Video, new LocalTrackOptions { Codecs = [CodecSpec.Vp8] });
        _pair.Negotiate();
        _pair.A.CreateDataChannel("bulk", null, _pair.Now);
        for (var i = 0; i < 100_000 && _channel is null; i++) _pair.Step();
        if (_channel is null) throw new InvalidOperationException("the data channel did not open");
        _frame[0] = 0x10;   // RFC 6386 frame tag: P bit 0, a key frame first
        for (var i = 0; i < 100 && _remoteVideo is null; i++) { SendFrame(); _pair.RunFor(FrameInterval); }
        if (_remoteVideo is null) throw new InvalidOperationException("the video track did not arrive");
        new Random(7).NextBytes(_frame.AsSpan(1));
        _frame[0] = 0x11;   // then inter frames (P bit 1)
        // Warm the windows, the pools and the estimator.
        for (var i = 0; i < 3; i++) { Transfer(1024); Transfer(65536); MediaPacket(); }
    }

    [GlobalCleanup]
    public void Cleanup() => _pair.Dispose();

    /// <summary>4096 messages of 1 KiB per invocation.</summary>
    [Benchmark(OperationsPerInvoke = BytesPerInvoke / 1024)]
    public void DataChannel1KiB() => Transfer(1024);

    /// <summary>64 messages of 64 KiB per invocation.</summary>
    [Benchmark(OperationsPerInvoke = BytesPerInvoke / 65536)]
    public void DataChannel64KiB() => Transfer(65536);

    /// <summary>64 frames of one packet each per invocation, 40 ms of virtual time apart.</summary>
    [Benchmark(OperationsPerInvoke = FramesPerInvoke)]
    public void MediaPacket()
    {
        var before = _framesReceived;
        for (var i = 0; i < FramesPerInvoke; i++)
        {
            SendFrame();
            _pair.RunFor(FrameInterval);
        }
        if (_framesReceived - before != FramesPerInvoke)
            throw new InvalidOperationException($"{_framesReceived - before} of {FramesPerInvoke} frames arrived");
    }

    private void SendFrame()
    {
        _rtpTimestamp += 3600;
        var result = _pair.A.SendFrame(_video, _frame, _rtpTimestamp, _pair.Now);
        if (result != MediaSendResult.Sent && _remoteVideo is not null) throw new InvalidOperationException($"frame not sent: {result}");
    }

    /// <summary>Moves 4 MiB in messages of <paramref name="size"/> bytes.</summary>
    private void Transfer(int size)
    {
        var count = BytesPerInvoke / size;
        var sent = 0;
        _received = 0;
        for (var guard = 0; _received < (long)count * size; guard++)
        {
            if (guard > 10_000_000) throw new InvalidOperationException($"stuck after {_received} of {(long)count * size} bytes");
            while (sent < count && _channel!.BufferedAmount < 1024 * 1024)
            {
                _channel.Send(_message.AsSpan(0, size), true, _pair.Now);
                sent++;
            }
            _pair.Step();
        }
    }

    private void Drain(PeerConnectionCore core)
    {
        while (core.TryPollEvent(out var e))
        {
            switch (e)
            {
                case DataChannelOpened o when ReferenceEquals(core, _pair.A):
                    _channel = o.Channel;
                    break;
                case RemoteTrackAdded t when ReferenceEquals(core, _pair.B) && t.Track.Kind == MediaKind.Video:
                    _remoteVideo = t.Track;
                    break;
                case DataChannelMessageLease lease:
                    _received += lease.Length;
                    lease.Dispose();
                    break;
            }
        }
        if (_remoteVideo is null || !ReferenceEquals(core, _pair.B)) return;
        while (_remoteVideo.Packets.TryRead(out var packet)) packet.Dispose();
        while (_remoteVideo.Frames.TryRead(out var frame))
        {
            if (frame.IsComplete) _framesReceived++;
            frame.Dispose();
        }
    }

    /// <summary>
    /// The form for a shared machine (verb <c>datagram-path [rounds=20]</c>): this thread's CPU time
    /// (CLOCK_THREAD_CPUTIME_ID) and the bytes it allocated per operation, one invocation of each benchmark per round
    /// after a warm-up one, in one process; prints the median and the range over the rounds. BenchmarkDotNet reads the
    /// wall clock, which on a loaded machine also counts the time other processes hold the cores; the thread's CPU time
    /// does not (what remains is their effect on caches and memory bandwidth, and a garbage collection run on this thread).
    /// </summary>
    public static int Run(string[] args)
    {
        var rounds = args.Length > 1 && !args[1].StartsWith("--", StringComparison.Ordinal) ? int.Parse(args[1], CultureInfo.InvariantCulture) : 20;
        var bench = new DatagramPathBenchmarks();
        bench.Setup();
        var cases = new (string Name, int Operations, Action Invoke)[]
        {
            ("DataChannel1KiB", BytesPerInvoke / 1024, bench.DataChannel1KiB),
            ("DataChannel64KiB", BytesPerInvoke / 65536, bench.DataChannel64KiB),
            ("MediaPacket", FramesPerInvoke, bench.MediaPacket),
        };
        // Warm-up: tiered compilation promotes the hot methods after 30 calls and a quiet 100 ms, in a background
        // thread that a loaded machine delays; and the media path takes about 300 invocations (13 minutes of virtual
        // time) to its steady cost: measured right after the set-up it was 2-3x slower (18-50 us against 8 us).
        var warm = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 10 || warm.Elapsed < TimeSpan.FromSeconds(3); i++)
            foreach (var c in cases) c.Invoke();
        for (var i = 0; i < 300; i++) bench.MediaPacket();
        foreach (var (name, operations, invoke) in cases)
        {
            var cpu = new List<double>(rounds);
            var wall = new List<double>(rounds);
            long allocated = 0;
            var datagrams = bench._pair.Datagrams;
            for (var r = 0; r < rounds; r++)
            {
                var bytes = GC.GetAllocatedBytesForCurrentThread();
                var clock = System.Diagnostics.Stopwatch.GetTimestamp();
                var start = ThreadCpuNs();
                invoke();
                cpu.Add((ThreadCpuNs() - start) / (double)operations);
                wall.Add(System.Diagnostics.Stopwatch.GetElapsedTime(clock).TotalNanoseconds / operations);
                allocated += GC.GetAllocatedBytesForCurrentThread() - bytes;
            }
            cpu.Sort();
            wall.Sort();
            var perOp = (bench._pair.Datagrams - datagrams) / (double)(rounds * operations);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{name,-17} CPU {cpu[cpu.Count / 2],8:0} ns/op median ({cpu[0]:0}-{cpu[^1]:0} over {rounds} rounds; wall median {wall[wall.Count / 2]:0}), " +
                $"{allocated / (double)(rounds * operations):0.0} B/op, {perOp:0.00} datagrams/op"));
        }
        bench.Cleanup();
        return 0;
    }

    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    // CLOCK_THREAD_CPUTIME_ID (3) on Linux: this thread's run time in nanoseconds.
    internal static long ThreadCpuNs() =>
        ClockGetTime(3, out var ts) == 0 ? ts.Seconds * 1_000_000_000 + ts.Nanoseconds : throw new PlatformNotSupportedException("clock_gettime");

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out Timespec timespec);
}
