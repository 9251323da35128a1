using System.Globalization;
using BenchmarkDotNet.Attributes;
using Transport.Sctp;
using Transport.Streaming.WebRtc;

namespace Transport.Bench;

/// <summary>
/// Bytes allocated per data channel message through two connected <see cref="PeerConnectionCore"/>s (ICE, DTLS 1.3,
/// SCTP, the data channel; the datagrams handed from one core to the other in memory, virtual time, no sockets, no
/// threads): one operation is one message (1 KiB or 64 KiB) sent by A and delivered to B's application, both
/// sides counted. <see cref="Mode"/>: <c>Copy</c> sends a span (one copy into SCTP's pool) and receives
/// <see cref="DataChannelMessageReceived"/> (a new array per message); <c>Lease</c> receives
/// <see cref="DataChannelMessageLease"/> (the pooled reassembly buffer, disposed by the reader); <c>ZeroCopy</c> also
/// sends without a copy (<see cref="DataChannel.Send(ReadOnlyMemory{byte}, IDisposable, bool, TimeSpan?)"/>).
/// <c>dotnet run -c Release --project bench -- --filter '*DataChannelAllocation*' --job short</c>, or the quick
/// measured run <c>dotnet run -c Release --project bench -- datachannel-alloc</c>.
/// </summary>
[MemoryDiagnoser]
public class DataChannelAllocationBenchmarks
{
    private const int BytesPerInvoke = 4 * 1024 * 1024;
    private InMemoryCorePair _pair = null!;
    private DataChannel? _channel;
    private readonly byte[] _message = new byte[65536];
    private readonly NoOwner _owner = new();
    private long _received;
    private int _messagesReceived;

    [Params("Copy", "Lease", "ZeroCopy")]
    public string Mode { get; set; } = "Copy";

    [GlobalSetup]
    public void Setup()
    {
        _pair = new InMemoryCorePair(leasedMessages: Mode != "Copy", Drain);
        _pair.Negotiate();
        _pair.A.CreateDataChannel("bulk", null, _pair.Now);
        for (var i = 0; i < 100_000 && _channel is null; i++) _pair.Step();
        if (_channel is null) throw new InvalidOperationException("the data channel did not open");
        // Warm the windows and the pools.
        for (var i = 0; i < 3; i++) { Transfer(1024); Transfer(65536); }
    }

    [GlobalCleanup]
    public void Cleanup() => _pair.Dispose();

    /// <summary>4096 messages of 1 KiB per invocation.</summary>
    [Benchmark(OperationsPerInvoke = BytesPerInvoke / 1024)]
    public void Messages1KiBEach() => Transfer(1024);

    /// <summary>64 messages of 64 KiB per invocation.</summary>
    [Benchmark(OperationsPerInvoke = BytesPerInvoke / 65536)]
    public void Messages64KiBEach() => Transfer(65536);

    /// <summary>Moves 4 MiB in messages of <paramref name="size"/> bytes; returns the messages delivered.</summary>
    public int Transfer(int size)
    {
        var count = BytesPerInvoke / size;
        var sent = 0;
        _received = 0;
        _messagesReceived = 0;
        for (var guard = 0; _received < (long)count * size; guard++)
        {
            if (guard > 10_000_000) throw new InvalidOperationException($"stuck after {_received} of {(long)count * size} bytes");
            while (sent < count && _channel!.BufferedAmount < 1024 * 1024)
            {
                if (Mode == "ZeroCopy") _channel.Send(_message.AsMemory(0, size), _owner, true, _pair.Now);
                else _channel.Send(_message.AsSpan(0, size), true, _pair.Now);
                sent++;
            }
            _pair.Step();
        }
        return _messagesReceived;
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
                case DataChannelMessageReceived m:
                    _received += m.Data.Length;
                    _messagesReceived++;
                    break;
                case DataChannelMessageLease lease:
                    _received += lease.Length;
                    _messagesReceived++;
                    lease.Dispose();
                    break;
            }
        }
    }

    private sealed class NoOwner : IDisposable
    {
        public void Dispose() { }
    }

    /// <summary>
    /// The quick form (verb <c>datachannel-alloc [rounds=8]</c>): bytes allocated per message (both cores, this thread)
    /// for each size and mode, after a warm-up, without BenchmarkDotNet's process per case.
    /// </summary>
    public static int Run(string[] args)
    {
        var rounds = args.Length > 1 && !args[1].StartsWith("--", StringComparison.Ordinal) ? int.Parse(args[1], CultureInfo.InvariantCulture) : 8;
        // --ticks: the runtime's allocation ticks (one per ~100 KB allocated) by type, to see where the bytes go.
        using var ticks = args.Contains("--ticks") ? new AllocationTicks() : null;
        foreach (var mode in new[] { "Copy", "Lease", "ZeroCopy" })
        {
            var bench = new DataChannelAllocationBenchmarks { Mode = mode };
            bench.Setup();
            foreach (var size in new[] { 1024, 65536 })
            {
                bench.Transfer(size);
                var before = GC.GetAllocatedBytesForCurrentThread();
                var clock = System.Diagnostics.Stopwatch.StartNew();
                long messages = 0;
                for (var r = 0; r < rounds; r++) messages += bench.Transfer(size);
                var seconds = clock.Elapsed.TotalSeconds;
                var perMessage = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)messages;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{mode,-8} {size,6} B: {perMessage,8:0.0} B allocated per message (both cores), {messages * size / seconds / 1e6:0.0} MB/s " +
                    $"on one thread (both cores' work)"));
            }
            bench.Cleanup();
            ticks?.Print(mode);
        }
        return 0;
    }

    internal sealed class AllocationTicks : System.Diagnostics.Tracing.EventListener
    {
        private readonly Dictionary<string, long> _bytes = new();

        protected override void OnEventSourceCreated(System.Diagnostics.Tracing.EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime")
                EnableEvents(source, System.Diagnostics.Tracing.EventLevel.Verbose, (System.Diagnostics.Tracing.EventKeywords)0x1);
        }

        protected override void OnEventWritten(System.Diagnostics.Tracing.EventWrittenEventArgs e)
        {
            if (e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.Payload is null) return;
            var type = e.PayloadNames!.IndexOf("TypeName") is var i and >= 0 ? e.Payload[i] as string ?? "?" : "?";
            var amount = e.PayloadNames.IndexOf("AllocationAmount64") is var j and >= 0 ? Convert.ToInt64(e.Payload[j], CultureInfo.InvariantCulture) : 100_000;
            lock (_bytes) _bytes[type] = _bytes.GetValueOrDefault(type) + amount;
        }

        public void Print(string mode)
        {
            lock (_bytes)
            {
                foreach (var (type, bytes) in _bytes.OrderByDescending(p => p.Value).Take(12))
                    if (mode != "warm-up") Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {mode} ticks: {bytes / 1024,8} KiB {type}"));
                _bytes.Clear();
            }
        }
    }
}
