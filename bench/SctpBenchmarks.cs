using BenchmarkDotNet.Attributes;
using Transport.Sctp;

namespace Transport.Bench;

/// <summary>
/// Two SCTP associations in memory (no DTLS, no sockets; RFC 9653 zero checksum as over DTLS): one
/// operation is one message (1 KiB or 64 KiB) sent by A and delivered by B; each invocation moves 4 MiB. With
/// <see cref="Loss"/> &gt; 0 a seeded fraction of packets in both directions is dropped (goodput).
/// </summary>
[MemoryDiagnoser]
public class SctpBenchmarks
{
    private const int BytesPerInvoke = 4 * 1024 * 1024;
    private SctpAssociation _a = null!, _b = null!;
    private readonly byte[] _packet = new byte[2048];
    private readonly byte[] _message = new byte[65536];
    private TimeSpan _now;
    private Random _random = null!;
    private long _received;

    [Params(0.0, 0.05)]
    public double Loss { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _a = new SctpAssociation(new SctpOptions { IsDtlsClient = true, ReceiveBufferSize = 4 * 1024 * 1024 });
        _b = new SctpAssociation(new SctpOptions { IsDtlsClient = false, ReceiveBufferSize = 4 * 1024 * 1024 });
        _random = new Random(42);
        _a.Connect(_now);
        _done = () => _a.State == SctpState.Established && _b.State == SctpState.Established;
        Pump();
        _done = TopUpAndCheck;
        // Warm the windows and the pools.
        for (var i = 0; i < 3; i++) { Transfer(1024); Transfer(65536); }
    }

    /// <summary>4096 messages of 1 KiB per invocation.</summary>
    [Benchmark(OperationsPerInvoke = BytesPerInvoke / 1024)]
    public void Messages1KiB() => Transfer(1024);

    /// <summary>64 messages of 64 KiB per invocation.</summary>
    [Benchmark(OperationsPerInvoke = BytesPerInvoke / 65536)]
    public void Messages64KiB() => Transfer(65536);

    private int _size, _count, _sent;
    private Func<bool> _done = null!;

    private void Transfer(int size)
    {
        _received = 0;
        _size = size;
        _count = BytesPerInvoke / size;
        _sent = 0;
        Pump();
    }

    private bool TopUpAndCheck()
    {
        while (_sent < _count && _a.OutboundBuffered < 1024 * 1024)
        {
            _a.SendMessage(1, Ppid.Binary, _message.AsSpan(0, _size), now: _now);
            _sent++;
        }
        return _received >= (long)_count * _size;
    }

    private void Pump()
    {
        while (!_done())
        {
            var any = false;
            _a.HandleTimeout(_now);
            while (_a.TryPollTransmit(_packet, out var n))
            {
                any = true;
                if (Loss == 0 || _random.NextDouble() >= Loss) _b.HandleDatagram(_packet.AsSpan(0, n), _now);
                Drain(_b);
            }
            _b.HandleTimeout(_now);
            while (_b.TryPollTransmit(_packet, out var n))
            {
                any = true;
                if (Loss == 0 || _random.NextDouble() >= Loss) _a.HandleDatagram(_packet.AsSpan(0, n), _now);
                Drain(_a);
            }
            if (any) continue;
            // Nothing to send: move virtual time to the next deadline (delayed SACK, T3-rtx).
            var next = Min(_a.PollTimeout(), _b.PollTimeout());
            if (next is null) throw new InvalidOperationException("idle before done");
            if (next.Value > _now) _now = next.Value;
            _a.HandleTimeout(_now);
            _b.HandleTimeout(_now);
        }
    }

    private void Drain(SctpAssociation s)
    {
        while (s.TryPollEvent(out var e))
            if (e.Kind == SctpEventKind.StreamMessage) _received += e.Data.Length;
    }

    private static TimeSpan? Min(TimeSpan? x, TimeSpan? y) => x is null ? y : y is null ? x : x < y ? x : y;
}
