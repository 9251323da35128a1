using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Transport.Streaming.Io;

namespace Transport.Bench;

/// <summary>
/// What the kernel alone charges for the system calls the UDP driver makes, with no ICE and no driver code around
/// them: the CPU of a thread (the scheduler's exact clock) per datagram sent with sendmmsg, per blocking recvmmsg that
/// wakes for one datagram, and per further datagram a recvmmsg takes. <see cref="IceIdleAgentsRun"/> multiplies them
/// by the datagrams and calls of its idle period: the floor under any implementation that sends and receives those
/// datagrams when the timers say so, on this machine. Linux, 64-bit.
/// <c>dotnet run -c Release --project bench -- udp-floor</c>
/// </summary>
public static unsafe class UdpFloorRun
{
    public readonly record struct Floor(double SendPerDatagramUs, double WakePerCallUs, double ReceivePerDatagramUs, double SendToWaitingPeersUs)
    {
        /// <summary>
        /// The same, but each datagram sent as to peers on this machine that wait for it (loopback: the sending call
        /// also runs their receive path and wakes their threads).
        /// </summary>
        public double MicrosecondsPerSecondOnLoopback(double sentPerSecond, double receiveCallsPerSecond, double receivedPerSecond) =>
            MicrosecondsPerSecond(sentPerSecond, receiveCallsPerSecond, receivedPerSecond)
            + sentPerSecond * Math.Max(0, SendToWaitingPeersUs - SendPerDatagramUs);

        /// <summary>CPU microseconds per second for a traffic of so many datagrams and calls per second.</summary>
        public double MicrosecondsPerSecond(double sentPerSecond, double receiveCallsPerSecond, double receivedPerSecond) =>
            sentPerSecond * SendPerDatagramUs + receiveCallsPerSecond * WakePerCallUs
            + Math.Max(0, receivedPerSecond - receiveCallsPerSecond) * ReceivePerDatagramUs;
    }

    public static int Run()
    {
        if (!OperatingSystem.IsLinux() || IntPtr.Size != 8)
        {
            Console.WriteLine("udp-floor measures Linux system calls (64-bit); nothing to do here");
            return 0;
        }
        var f = Measure();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"kernel CPU per datagram sent (sendmmsg, 49 destinations a call): {f.SendPerDatagramUs:0.00} us, {f.SendToWaitingPeersUs:0.00} us when each " +
            $"destination has a receive waiting in this machine (loopback delivery and wake-up); per blocking recvmmsg woken by one datagram: " +
            $"{f.WakePerCallUs:0.00} us; per further datagram of a recvmmsg: {f.ReceivePerDatagramUs:0.00} us"));
        return 0;
    }

    public static Floor Measure()
    {
        // Warm-up, then the median of five measurements of each.
        SendCost(200);
        var send = Median(Enumerable.Range(0, 5).Select(_ => SendCost(1000)));
        var wake = Median(Enumerable.Range(0, 5).Select(_ => WakeCost(150)));
        var receive = Median(Enumerable.Range(0, 5).Select(_ => ReceiveCost(1000)));
        var waiting = Median(Enumerable.Range(0, 5).Select(_ => SendToWaitingCost(60)));
        return new Floor(send, wake, receive, waiting);
    }

    private static double Median(IEnumerable<double> values)
    {
        var a = values.OrderBy(v => v).ToArray();
        return a[a.Length / 2];
    }

    // sendmmsg of 49 datagrams of 100 bytes to 49 sockets of this process that nobody waits on (no wake-up is charged
    // to the sender); the receivers are drained between calls, outside the measured time.
    private static double SendCost(int rounds)
    {
        var receivers = Enumerable.Range(0, 49).Select(_ => Bound()).ToArray();
        var drain = new byte[2048];
        try { return TimedSends(receivers, rounds, () => { foreach (var receiver in receivers) receiver.Receive(drain); }); }
        finally { foreach (var receiver in receivers) receiver.Dispose(); }
    }

    // sendmmsg of 49 datagrams to 49 sockets that each have an asynchronous receive pending (the .NET socket engine's
    // epoll thread, as the peers of the idle-agents run use): on loopback the sender's call runs their receive path and
    // wakes the waiting thread. A pause after each call lets the receivers go back to sleep.
    private static double SendToWaitingCost(int rounds)
    {
        var receivers = Enumerable.Range(0, 49).Select(_ => Bound()).ToArray();
        using var stop = new CancellationTokenSource();
        var loops = receivers.Select(r => Task.Run(() => PendingReceives.LoopAsync(r, stop.Token))).ToArray();
        Thread.Sleep(50);
        try { return TimedSends(receivers, rounds, () => Thread.Sleep(10)); }
        finally
        {
            stop.Cancel();
            foreach (var receiver in receivers) receiver.Dispose();
            Task.WaitAll(loops, TimeSpan.FromSeconds(5));
        }
    }

    // One sendmmsg of a 100-byte datagram to each receiver, <paramref name="rounds"/> times, then afterEachCall
    // (outside the measured time): the calling thread's CPU per datagram, in microseconds.
    private static double TimedSends(Socket[] receivers, int rounds, Action afterEachCall)
    {
        const int size = 100;
        var n = receivers.Length;
        using var sender = Bound();
        var nameBytes = new byte[n * 16];
        for (var i = 0; i < n; i++) ((IPEndPoint)receivers[i].LocalEndPoint!).Serialize().Buffer.Span[..16].CopyTo(nameBytes.AsSpan(i * 16));
        var payload = new byte[size];
        var messages = new LinuxUdp.MMsgHdr[n];
        var iov = new LinuxUdp.IoVec[n];
        double cpu = 0;
        fixed (byte* pName = nameBytes, pPayload = payload)
        fixed (LinuxUdp.MMsgHdr* pMessages = messages)
        fixed (LinuxUdp.IoVec* pIov = iov)
        {
            for (var i = 0; i < n; i++)
            {
                pIov[i] = new LinuxUdp.IoVec { Base = pPayload, Length = size };
                pMessages[i].Header.Name = pName + i * 16;
                pMessages[i].Header.NameLength = 16;
                pMessages[i].Header.Iov = pIov + i;
                pMessages[i].Header.IovLength = 1;
            }
            for (var r = 0; r < rounds; r++)
            {
                var t0 = ThreadCpuNs();
                var sent = LinuxUdp.SendMany(sender.SafeHandle, pMessages, n);
                cpu += ThreadCpuNs() - t0;
                if (sent != n) throw new InvalidOperationException($"sendmmsg returned {sent}");
                afterEachCall();
            }
        }
        return cpu / 1000.0 / (rounds * (double)n);
    }

    // A thread blocked in recvmmsg (MSG_WAITFORONE), woken by one datagram every 4 ms: its CPU per call.
    private static double WakeCost(int datagrams)
    {
        using var receiver = Bound();
        using var sender = Bound();
        double cpu = 0;
        var got = 0;
        var thread = new Thread(() =>
        {
            var data = new byte[4 * 2048];
            var messages = new LinuxUdp.MMsgHdr[4];
            var iov = new LinuxUdp.IoVec[4];
            fixed (byte* pData = data)
            fixed (LinuxUdp.MMsgHdr* pMessages = messages)
            fixed (LinuxUdp.IoVec* pIov = iov)
            {
                for (var i = 0; i < 4; i++)
                {
                    pIov[i] = new LinuxUdp.IoVec { Base = pData + i * 2048, Length = 2048 };
                    pMessages[i].Header.Iov = pIov + i;
                    pMessages[i].Header.IovLength = 1;
                }
                var t0 = ThreadCpuNs();
                while (got < datagrams)
                {
                    var n = LinuxUdp.ReceiveMany(receiver.SafeHandle, pMessages, 4);
                    if (n <= 0) break;
                    got += n;
                }
                cpu = ThreadCpuNs() - t0;
            }
        })
        { IsBackground = true, Name = "udp-floor receiver" };
        thread.Start();
        Thread.Sleep(20);
        var payload = new byte[100];
        for (var i = 0; i < datagrams; i++)
        {
            sender.SendTo(payload, receiver.LocalEndPoint!);
            Thread.Sleep(4);
        }
        if (!thread.Join(TimeSpan.FromSeconds(5))) throw new InvalidOperationException("the receiver did not take every datagram");
        return cpu / 1000.0 / Math.Max(1, got);
    }

    // 32 datagrams already queued, taken by one recvmmsg: CPU per datagram.
    private static double ReceiveCost(int rounds)
    {
        const int n = 32;
        using var receiver = Bound();
        using var sender = Bound();
        var payload = new byte[100];
        var data = new byte[n * 2048];
        var messages = new LinuxUdp.MMsgHdr[n];
        var iov = new LinuxUdp.IoVec[n];
        double cpu = 0;
        fixed (byte* pData = data)
        fixed (LinuxUdp.MMsgHdr* pMessages = messages)
        fixed (LinuxUdp.IoVec* pIov = iov)
        {
            for (var i = 0; i < n; i++)
            {
                pIov[i] = new LinuxUdp.IoVec { Base = pData + i * 2048, Length = 2048 };
                pMessages[i].Header.Iov = pIov + i;
                pMessages[i].Header.IovLength = 1;
            }
            for (var r = 0; r < rounds; r++)
            {
                for (var i = 0; i < n; i++) sender.SendTo(payload, receiver.LocalEndPoint!);
                var t0 = ThreadCpuNs();
                var got = LinuxUdp.ReceiveMany(receiver.SafeHandle, pMessages, n);
                cpu += ThreadCpuNs() - t0;
                if (got != n) throw new InvalidOperationException($"recvmmsg returned {got}");
            }
        }
        return cpu / 1000.0 / (rounds * (double)n);
    }

    private static Socket Bound()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return s;
    }

    // CLOCK_THREAD_CPUTIME_ID (3): this thread's run time, exact, in nanoseconds.
    private static long ThreadCpuNs()
    {
        var ts = stackalloc long[2];
        return ClockGetTime(3, ts) == 0 ? ts[0] * 1_000_000_000 + ts[1] : 0;
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, long* timespec);
}

/// <summary>A receive always pending on a socket until cancelled (outside the unsafe class: no await there).</summary>
internal static class PendingReceives
{
    public static async Task LoopAsync(Socket socket, CancellationToken token)
    {
        var buffer = new byte[2048];
        try { while (true) await socket.ReceiveAsync(buffer, SocketFlags.None, token).ConfigureAwait(false); }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
    }
}
