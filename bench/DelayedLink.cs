using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Transport.Streaming.Tests.Interop;

namespace Transport.Bench;

/// <summary>
/// Two network namespaces, A (10.99.0.1) and B (10.99.0.2), joined by one link that delays every packet by a fixed
/// time each way: a veth pair with <c>tc qdisc add dev ... root netem delay</c> on each end (INTEROP.md) when the
/// kernel has netem; otherwise (this machine's kernel is built without CONFIG_NET_SCH_NETEM) a TUN device in each
/// namespace and <see cref="TunDelayLine"/>, a relay in a process of its own (so that the peers' garbage collections
/// do not stall the link) that holds each IP packet for the delay before writing it to the other side. Each namespace has a default route over the link
/// (Chromium gathers its host candidates from the interfaces a route goes through). Needs root. Disposing deletes both namespaces.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DelayedLink : IDisposable
{
    public const string AddressA = "10.99.0.1", AddressB = "10.99.0.2";

    private Process? _relay;

    private DelayedLink(NetworkNamespace a, NetworkNamespace b, string how)
    {
        A = a;
        B = b;
        How = how;
    }

    /// <summary>After <see cref="Dispose"/>, the TUN relay's counts ("packets, worst lateness"), or null (netem).</summary>
    public string? RelayReport { get; private set; }
    public NetworkNamespace A { get; }
    public NetworkNamespace B { get; }
    /// <summary>What carries the delay (netem or the TUN relay), for the report.</summary>
    public string How { get; private set; }

    public static DelayedLink Create(TimeSpan oneWay)
    {
        var a = NetworkNamespace.Create("st-a");
        var b = NetworkNamespace.Create("st-b");
        var link = new DelayedLink(a, b, "");
        try
        {
            var ms = (int)oneWay.TotalMilliseconds;
            try
            {
                a.ConnectVeth(b, AddressA, AddressB, "va", "vb");
                a.Exec("tc", "qdisc", "add", "dev", "va", "root", "netem", "delay", $"{ms}ms");
                b.Exec("tc", "qdisc", "add", "dev", "vb", "root", "netem", "delay", $"{ms}ms");
                link.How = $"veth pair, tc netem delay {ms}ms on each end";
            }
            catch (InvalidOperationException e) when (e.Message.Contains("qdisc kind is unknown", StringComparison.Ordinal))
            {
                a.Exec("ip", "link", "del", "va");   // takes vb with it
                link.StartRelay(ms);
                link.How = $"no netem in this kernel: TUN devices joined by a relay process holding each packet {ms} ms";
            }
            a.AddDefaultRoute(AddressB);
            b.AddDefaultRoute(AddressA);
            return link;
        }
        catch
        {
            link.Dispose();
            throw;
        }
    }

    private void StartRelay(int ms)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var info = new ProcessStartInfo(self) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") info.ArgumentList.Add(typeof(DelayedLink).Assembly.Location);
        foreach (var arg in new[] { "setup-time-relay", A.Name, B.Name, ms.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            info.ArgumentList.Add(arg);
        _relay = Process.Start(info) ?? throw new InvalidOperationException("could not start the relay");
        var ready = _relay.StandardOutput.ReadLineAsync();
        if (!ready.Wait(TimeSpan.FromSeconds(60)) || ready.Result != "ready")
            throw new InvalidOperationException("the TUN relay did not start: " + (ready.IsCompletedSuccessfully ? ready.Result : "no answer in 60 s"));
    }

    public void Dispose()
    {
        if (_relay is { } relay)
        {
            relay.StandardInput.Close();
            var report = relay.StandardOutput.ReadLineAsync();
            if (report.Wait(TimeSpan.FromSeconds(10)) && report.Result is { } r && r.Split(' ') is [var packets, var late, var worst])
                RelayReport = $"delay line: {packets} packets, {late} of them written more than 5 ms after their due time, the worst {worst} ms";
            if (!relay.WaitForExit(10_000)) relay.Kill();
            relay.Dispose();
        }
        A.Dispose();
        B.Dispose();
    }
}

/// <summary>
/// A userspace netem: TUN device <c>ta</c> in namespace A (10.99.0.1, peer 10.99.0.2) and <c>tb</c> in B (the
/// reverse), and for each direction a reader thread that stamps every IP packet the kernel routes into one device
/// and a writer thread that writes it to the other device when its delay has passed (order kept: the delay is
/// fixed). Addresses are the same on both sides, so packets pass unchanged. Precision: the threads run SCHED_FIFO when
/// permitted and the writer sleeps until the due time (about 1 ms late at most); otherwise a loaded machine adds its
/// scheduling delay. The worst lateness is reported (<see cref="MaxLateness"/>).
/// </summary>
[SupportedOSPlatform("linux")]
public sealed unsafe partial class TunDelayLine : IDisposable
{
    private const int ORdwr = 2, IffTun = 0x0001, IffNoPi = 0x1000;
    private const uint TunSetIff = 0x400454ca;
    private const short PollIn = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd { public int Fd; public short Events; public short Revents; }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(int fd, nuint request, byte* arg);
    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, byte* buffer, nint count);
    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, byte* buffer, nint count);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll(PollFd* fds, nuint count, int timeoutMs);
    [LibraryImport("libc")]
    private static partial int close(int fd);
    [LibraryImport("libc", SetLastError = true)]
    private static partial int sched_setscheduler(int pid, int policy, int* param);

    private const int SchedFifo = 1;

    // The relay's threads mostly sleep; real-time priority keeps other processes' load (a loaded 2-core machine) from
    // delaying them. Where that is not permitted they run at normal priority (lateness is reported either way).
    private static void TryRealTime()
    {
        var priority = 10;
        _ = sched_setscheduler(0, SchedFifo, &priority);
    }

    private readonly int _fdA, _fdB;
    private readonly TimeSpan _delay;
    private readonly List<Thread> _threads = new();
    private volatile bool _stop;
    private long _maxLatenessTicks, _packets, _late;

    private TunDelayLine(int fdA, int fdB, TimeSpan delay)
    {
        _fdA = fdA;
        _fdB = fdB;
        _delay = delay;
    }

    /// <summary>The latest a packet was written after its due time so far.</summary>
    public TimeSpan MaxLateness => TimeSpan.FromTicks(Interlocked.Read(ref _maxLatenessTicks) * TimeSpan.TicksPerSecond / Stopwatch.Frequency);
    public long Packets => Interlocked.Read(ref _packets);
    /// <summary>Packets written more than 5 ms after their due time.</summary>
    public long Late => Interlocked.Read(ref _late);

    /// <summary>
    /// The relay's own process (<c>Transport.Bench setup-time-relay NS-A NS-B DELAY-MS</c>, started by
    /// <see cref="DelayedLink"/>): a garbage collection in the process that runs the peers would otherwise stall the
    /// link too. Prints "ready" once the devices are up, runs until its stdin closes, then prints its counts.
    /// </summary>
    public static int RunRelayProcess(string[] args)
    {
        using var line = Create(args[1], args[2], TimeSpan.FromMilliseconds(int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture)));
        Console.WriteLine("ready");
        while (Console.In.ReadLine() is not null) { }
        Console.WriteLine(System.FormattableString.Invariant($"{line.Packets} {line.Late} {line.MaxLateness.TotalMilliseconds:0.0}"));
        return 0;
    }

    public static TunDelayLine Create(string nsA, string nsB, TimeSpan delay)
    {
        var fdA = Inside(nsA, () => OpenTun("ta"));
        int fdB;
        try { fdB = Inside(nsB, () => OpenTun("tb")); }
        catch { close(fdA); throw; }
        var line = new TunDelayLine(fdA, fdB, delay);
        try
        {
            Ip($"-n {nsA} addr add {DelayedLink.AddressA} peer {DelayedLink.AddressB} dev ta");
            Ip($"-n {nsB} addr add {DelayedLink.AddressB} peer {DelayedLink.AddressA} dev tb");
            Ip($"-n {nsA} link set ta up");
            Ip($"-n {nsB} link set tb up");
            line.Start(fdA, fdB, "A->B");
            line.Start(fdB, fdA, "B->A");
            return line;
        }
        catch
        {
            line.Dispose();
            throw;
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    private static T Inside<T>(string ns, Func<T> create)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var handle = File.OpenHandle($"/var/run/netns/{ns}");
                if (setns((int)handle.DangerousGetHandle(), 0x40000000) != 0)
                    throw new InvalidOperationException($"setns({ns}) failed with errno {Marshal.GetLastPInvokeError()}");
                result = create();
            }
            catch (Exception e) { error = e; }
        })
        { IsBackground = true };
        thread.Start();
        if (!thread.Join(TimeSpan.FromSeconds(30))) throw new TimeoutException("opening the TUN device took over 30 s");
        if (error is not null) throw new InvalidOperationException(error.Message, error);
        return result;
    }

    private static void Ip(string args)
    {
        using var p = Process.Start(new ProcessStartInfo("ip", args) { RedirectStandardError = true, UseShellExecute = false })
            ?? throw new InvalidOperationException("could not start ip");
        if (!p.WaitForExit(10_000)) { p.Kill(); throw new InvalidOperationException($"ip {args} hung"); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"ip {args} failed: {p.StandardError.ReadToEnd()}");
    }

    // TUNSETIFF creates the device in the namespace of the thread that opened /dev/net/tun.
    private static int OpenTun(string name)
    {
        var fd = open("/dev/net/tun", ORdwr);
        if (fd < 0) throw new InvalidOperationException($"open /dev/net/tun failed with errno {Marshal.GetLastPInvokeError()}");
        var ifreq = stackalloc byte[40];
        new Span<byte>(ifreq, 40).Clear();
        System.Text.Encoding.ASCII.GetBytes(name, new Span<byte>(ifreq, 15));
        *(short*)(ifreq + 16) = IffTun | IffNoPi;
        if (ioctl(fd, TunSetIff, ifreq) < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            close(fd);
            throw new InvalidOperationException($"TUNSETIFF {name} failed with errno {errno}");
        }
        return fd;
    }

    private void Start(int from, int to, string name)
    {
        var queue = new BlockingCollection<(long Due, byte[] Packet, int Length)>(4096);
        var delayTicks = (long)(_delay.TotalSeconds * Stopwatch.Frequency);
        var reader = new Thread(() =>
        {
            var buffer = new byte[65536];
            TryRealTime();
            var pfd = new PollFd { Fd = from, Events = PollIn };
            while (!_stop)
            {
                if (poll(&pfd, 1, 50) <= 0) continue;
                nint n;
                fixed (byte* p = buffer) n = read(from, p, buffer.Length);
                if (n <= 0) continue;
                // A full queue (4096 packets in flight) drops, like a router's. Pooled copies: no garbage to collect.
                var copy = ArrayPool<byte>.Shared.Rent((int)n);
                buffer.AsSpan(0, (int)n).CopyTo(copy);
                if (!queue.TryAdd((Stopwatch.GetTimestamp() + delayTicks, copy, (int)n))) ArrayPool<byte>.Shared.Return(copy);
            }
            queue.CompleteAdding();
        })
        { IsBackground = true, Name = "tun read " + name, Priority = ThreadPriority.Highest };
        var writer = new Thread(() =>
        {
            TryRealTime();
            foreach (var (due, packet, length) in queue.GetConsumingEnumerable())
            {
                for (var wait = due - Stopwatch.GetTimestamp(); wait > 0; wait = due - Stopwatch.GetTimestamp())
                    Thread.Sleep(Math.Max(1, (int)(wait * 1000 / Stopwatch.Frequency)));
                var late = Stopwatch.GetTimestamp() - due;
                if (late > Interlocked.Read(ref _maxLatenessTicks)) Interlocked.Exchange(ref _maxLatenessTicks, late);
                Interlocked.Increment(ref _packets);
                if (late > Stopwatch.Frequency / 200) Interlocked.Increment(ref _late);
                if (!_stop)
                    fixed (byte* p = packet) write(to, p, length);
                ArrayPool<byte>.Shared.Return(packet);
            }
        })
        { IsBackground = true, Name = "tun write " + name, Priority = ThreadPriority.Highest };
        _threads.Add(reader);
        _threads.Add(writer);
        reader.Start();
        writer.Start();
    }

    public void Dispose()
    {
        _stop = true;
        foreach (var t in _threads) t.Join(TimeSpan.FromSeconds(2));
        close(_fdA);
        close(_fdB);
    }
}
