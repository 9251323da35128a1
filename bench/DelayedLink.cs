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
/// namespace and <see cref="TunDelayLine"/>, a relay in this process that holds each IP packet for the delay before
/// writing it to the other side. Each namespace has a default route over the link (Chromium gathers its host
/// candidates from the interfaces a route goes through). Needs root. Disposing deletes both namespaces.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class DelayedLink : IDisposable
{
    public const string AddressA = "10.99.0.1", AddressB = "10.99.0.2";

    private TunDelayLine? _tun;

    private DelayedLink(NetworkNamespace a, NetworkNamespace b, string how)
    {
        A = a;
        B = b;
        How = how;
    }

    /// <summary>The TUN relay when it carries the delay (no netem), else null.</summary>
    public TunDelayLine? Tun => _tun;
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
                link._tun = TunDelayLine.Create(a, b, oneWay);
                link.How = $"no netem in this kernel: TUN devices joined by a relay holding each packet {ms} ms";
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

    public void Dispose()
    {
        _tun?.Dispose();
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
    private long _maxLatenessTicks, _packets;

    private TunDelayLine(int fdA, int fdB, TimeSpan delay)
    {
        _fdA = fdA;
        _fdB = fdB;
        _delay = delay;
    }

    /// <summary>The latest a packet was written after its due time so far.</summary>
    public TimeSpan MaxLateness => TimeSpan.FromTicks(Interlocked.Read(ref _maxLatenessTicks) * TimeSpan.TicksPerSecond / Stopwatch.Frequency);
    public long Packets => Interlocked.Read(ref _packets);

    public static TunDelayLine Create(NetworkNamespace a, NetworkNamespace b, TimeSpan delay)
    {
        var fdA = a.CreateInside(() => OpenTun("ta"));
        int fdB;
        try { fdB = b.CreateInside(() => OpenTun("tb")); }
        catch { close(fdA); throw; }
        var line = new TunDelayLine(fdA, fdB, delay);
        try
        {
            a.Exec("ip", "addr", "add", DelayedLink.AddressA, "peer", DelayedLink.AddressB, "dev", "ta");
            b.Exec("ip", "addr", "add", DelayedLink.AddressB, "peer", DelayedLink.AddressA, "dev", "tb");
            a.Exec("ip", "link", "set", "ta", "up");
            b.Exec("ip", "link", "set", "tb", "up");
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
        var queue = new BlockingCollection<(long Due, byte[] Packet)>(4096);
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
                // A full queue (4096 packets in flight) drops, like a router's.
                queue.TryAdd((Stopwatch.GetTimestamp() + delayTicks, buffer.AsSpan(0, (int)n).ToArray()));
            }
            queue.CompleteAdding();
        }) { IsBackground = true, Name = "tun read " + name, Priority = ThreadPriority.Highest };
        var writer = new Thread(() =>
        {
            TryRealTime();
            foreach (var (due, packet) in queue.GetConsumingEnumerable())
            {
                for (var wait = due - Stopwatch.GetTimestamp(); wait > 0; wait = due - Stopwatch.GetTimestamp())
                    Thread.Sleep(Math.Max(1, (int)(wait * 1000 / Stopwatch.Frequency)));
                var late = Stopwatch.GetTimestamp() - due;
                if (late > Interlocked.Read(ref _maxLatenessTicks)) Interlocked.Exchange(ref _maxLatenessTicks, late);
                Interlocked.Increment(ref _packets);
                if (_stop) break;
                fixed (byte* p = packet) write(to, p, packet.Length);
            }
        }) { IsBackground = true, Name = "tun write " + name, Priority = ThreadPriority.Highest };
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
