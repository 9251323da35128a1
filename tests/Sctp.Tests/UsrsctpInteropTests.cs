using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Transport.Sctp.Tests;

/// <summary>
/// Interop with usrsctp's <c>tsctp</c> (Debian libusrsctp-examples), which speaks SCTP over UDP encapsulation
/// (RFC 6951) on loopback. Our association runs in a small UDP loop here; the core never sees a socket.
/// </summary>
public sealed partial class UsrsctpInteropTests
{
    private const string Tsctp = "/usr/lib/usrsctp/tsctp";

    private static void RequireTsctp() =>
        Assert.True(File.Exists(Tsctp), $"{Tsctp} is missing: install the Debian package libusrsctp-examples (apt-get install -y libusrsctp-examples).");

    [GeneratedRegex(@"(\d+), (\d+), (\d+), (\d+), [0-9.]+, [0-9.]+, \d+")]
    private static partial Regex ServerSummary();

    [Theory]
    [InlineData("")]                // reliable, ordered
    [InlineData("-u")]              // unordered
    [InlineData("-P 2 -t 1")]       // partial reliability: at most one retransmission (RFC 3758 via usrsctp)
    [InlineData("-l 5000 -f 1000")] // messages fragmented by usrsctp at 1000 bytes
    [InlineData("loss")]            // 5 % of datagrams dropped both ways: usrsctp retransmits, we send gap blocks
    public void TsctpClientConnectsSendsAndShutsDownCleanly(string extra)
    {
        RequireTsctp();
        using var loop = new UdpLoop(new SctpOptions { LocalPort = 5000, RemotePort = 0, OfferZeroChecksum = false, IsDtlsClient = false });
        if (extra == "loss") { loop.Loss = 0.05; extra = ""; }
        var tsctpUdp = FreeUdpPort();
        const int count = 300;
        var length = extra.Contains("-l ") ? 5000 : 1200;
        var lengthArg = extra.Contains("-l ") ? "" : $"-l {length} ";
        using var tsctp = TsctpProcess.Start($"-E {tsctpUdp} -U {loop.Port} -L 127.0.0.1 {lengthArg}-n {count} {extra} -p 5000 127.0.0.1");
        long bytes = 0;
        var messages = 0;
        loop.Remote = new IPEndPoint(IPAddress.Loopback, tsctpUdp);
        loop.OnEvent = e => { if (e.Kind == SctpEventKind.StreamMessage) { messages++; bytes += e.Data.Length; } };
        // 60 s: a lost tail is recovered only by usrsctp's T3 timer (RTO 1 s or more, doubled per expiry).
        var done = loop.Run(() => loop.Association.State is SctpState.Terminated or SctpState.Failed, TimeSpan.FromSeconds(60));
        var c = loop.Association.Counters;
        Assert.True(done, $"association is {loop.Association.State} after 60 s; received {messages} messages " +
            $"({c.PacketsReceived} packets in, {c.PacketsSent} out, {c.DuplicateTsn} duplicate TSNs, {c.OutOfWindowTsn} out of window, " +
            $"{c.ReceiveBufferFull} refused for a full buffer, {c.BadChecksum} bad checksums, {c.Malformed} malformed, {loop.DroppedDatagrams} " +
            $"dropped); tsctp: {tsctp.Tail()}");
        Assert.Equal(SctpState.Terminated, loop.Association.State);
        Assert.Equal("shutdown complete", loop.Association.CloseReason);
        Assert.Equal(count, messages);
        if (loop.Loss > 0) Assert.True(loop.DroppedDatagrams > 0, "the loss variant dropped nothing");
        Assert.Equal((long)count * length, bytes);
        Assert.True(tsctp.WaitForExit(TimeSpan.FromSeconds(10)), "tsctp did not exit after the shutdown");
        Assert.Equal(0, tsctp.ExitCode);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.05)] // we retransmit from usrsctp's gap blocks and T3; usrsctp reassembles
    public void OurClientConnectsToTsctpServerSendsAndShutsDownCleanly(double loss)
    {
        RequireTsctp();
        var tsctpUdp = FreeUdpPort();
        const int sctpPort = 5001;
        using var tsctp = TsctpProcess.Start($"-E {tsctpUdp} -L 127.0.0.1 -p {sctpPort}");
        var options = new SctpOptions { LocalPort = 5002, RemotePort = sctpPort, OfferZeroChecksum = false };
        using var loop = new UdpLoop(options);
        loop.Remote = new IPEndPoint(IPAddress.Loopback, tsctpUdp);
        // tsctp answers INIT with ABORT until its listening socket is bound: retry a few times with a new association.
        for (var attempt = 0; attempt < 10; attempt++)
        {
            if (attempt > 0) loop.Association = new SctpAssociation(options);
            loop.Association.Connect(loop.Now);
            if (loop.Run(() => loop.Association.State is SctpState.Established or SctpState.Terminated or SctpState.Failed, TimeSpan.FromSeconds(5))
                && loop.Association.State == SctpState.Established) break;
            loop.Run(() => false, TimeSpan.FromMilliseconds(200));
        }
        Assert.True(loop.Association.State == SctpState.Established,
            $"not established: {loop.Association.State} ({loop.Association.CloseReason}); tsctp: {tsctp.Tail()}");
        loop.Loss = loss;
        const int count = 500, length = 1000;
        var payload = new byte[length];
        for (var i = 0; i < count; i++)
        {
            payload[0] = (byte)i;
            loop.Association.SendMessage(0, 0, payload);
            if (i % 50 == 49) loop.Run(() => loop.Association.OutboundBuffered < 64 * 1024, TimeSpan.FromSeconds(10));
        }
        Assert.True(loop.Run(() => loop.Association.IsIdle, TimeSpan.FromSeconds(30)), $"data not acknowledged; tsctp: {tsctp.Tail()}");
        if (loss > 0) Assert.True(loop.Association.Counters.Retransmissions > 0 && loop.DroppedDatagrams > 0);
        loop.Association.Shutdown(loop.Now);
        Assert.True(loop.Run(() => loop.Association.State is SctpState.Terminated or SctpState.Failed, TimeSpan.FromSeconds(15)));
        Assert.Equal("shutdown complete", loop.Association.CloseReason);
        // tsctp prints "length, messages, ..., bytes, seconds, rate, ..." when the association ends.
        Match m = Match.Empty;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed < TimeSpan.FromSeconds(10) && !(m = ServerSummary().Match(tsctp.Output)).Success)
            loop.Run(() => false, TimeSpan.FromMilliseconds(100));
        Assert.True(m.Success, "tsctp printed no summary: " + tsctp.Tail());
        Assert.Equal(count, int.Parse(m.Groups[2].Value));
        Assert.Equal((long)count * length, long.Parse(m.Groups[4].Value));
    }

    private static int FreeUdpPort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    /// <summary>A tsctp process on loopback whose output is collected; killed by id on dispose.</summary>
    private sealed class TsctpProcess : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();

        private TsctpProcess(Process p) => _process = p;

        public static TsctpProcess Start(string arguments)
        {
            var psi = new ProcessStartInfo(Tsctp, arguments)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            var p = new Process { StartInfo = psi };
            var t = new TsctpProcess(p);
            p.OutputDataReceived += (_, e) =>
            {
                if (e.Data is { } d && !d.StartsWith("[S]", StringComparison.Ordinal)) lock (t._output) t._output.AppendLine(d);
                else if (e.Data is { } x) t.Collect(x);
            };
            p.ErrorDataReceived += (_, e) => { if (e.Data is { } d) t.Collect(d); };
            p.Start();
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            return t;
        }

        // usrsctp's debug lines are noisy; keep only text outside the "[S][time]" debug prefixes.
        private void Collect(string line)
        {
            var cleaned = Regex.Replace(line, @"\[S\]\[[0-9.]+\][^\[]*", "");
            if (cleaned.Length > 0) lock (_output) _output.AppendLine(cleaned);
        }

        public string Output { get { lock (_output) return _output.ToString(); } }
        public string Tail() { var o = Output; return o.Length > 600 ? o[^600..] : o; }
        public bool WaitForExit(TimeSpan t) => _process.WaitForExit(t);
        public int ExitCode => _process.ExitCode;

        public void Dispose()
        {
            try { if (!_process.HasExited) { _process.Kill(); _process.WaitForExit(5000); } }
            catch (InvalidOperationException) { }
            _process.Dispose();
        }
    }

    /// <summary>Carries one association over a UDP socket on 127.0.0.1 with real time.</summary>
    private sealed class UdpLoop : IDisposable
    {
        private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly byte[] _rx = new byte[65536];
        private readonly byte[] _tx = new byte[65536];

        private readonly Random _random = new(17);

        /// <summary>Fraction of datagrams dropped in each direction (after the handshake), to exercise recovery against usrsctp.</summary>
        public double Loss { get; set; }
        public int DroppedDatagrams { get; private set; }

        private bool Drop()
        {
            if (Loss <= 0 || Association.State != SctpState.Established || _random.NextDouble() >= Loss) return false;
            DroppedDatagrams++;
            return true;
        }

        public UdpLoop(SctpOptions options)
        {
            Association = new SctpAssociation(options);
            // usrsctp sends bursts larger than the default 208 KiB receive buffer holds while this loop is busy (a cold
            // JIT, a loaded machine); the kernel drops the overflow, and a lost tail is then only recovered by usrsctp's
            // T3 timer, whose backed-off RTO can exceed the test's patience. Loss is exercised on purpose by Loss.
            _socket.ReceiveBufferSize = 4 << 20;
            _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        }

        public SctpAssociation Association { get; set; }
        public int Port => ((IPEndPoint)_socket.LocalEndPoint!).Port;
        public IPEndPoint? Remote { get; set; }
        public Action<SctpEvent>? OnEvent { get; set; }
        public TimeSpan Now => _clock.Elapsed;

        public bool Run(Func<bool> until, TimeSpan limit)
        {
            var end = Now + limit;
            while (true)
            {
                Flush();
                if (until()) return true;
                if (Now >= end) return false;
                var wait = end - Now;
                if (Association.PollTimeout() is { } t) wait = t - Now < wait ? t - Now : wait;
                if (wait < TimeSpan.Zero) wait = TimeSpan.Zero;
                if (wait > TimeSpan.FromMilliseconds(50)) wait = TimeSpan.FromMilliseconds(50);
                if (_socket.Poll((int)(wait.TotalMilliseconds * 1000), SelectMode.SelectRead))
                {
                    EndPoint from = new IPEndPoint(IPAddress.Any, 0);
                    int n;
                    try { n = _socket.ReceiveFrom(_rx, ref from); }
                    catch (SocketException) { continue; } // ICMP port unreachable while the peer starts
                    Remote ??= (IPEndPoint)from;
                    if (!Drop()) Association.HandleDatagram(_rx.AsSpan(0, n), Now);
                }
                if (Association.PollTimeout() is { } due && due <= Now) Association.HandleTimeout(Now);
            }
        }

        private void Flush()
        {
            while (Association.TryPollEvent(out var e)) OnEvent?.Invoke(e);
            Association.HandleTimeout(Now);
            while (Association.TryPollTransmit(_tx, out var n))
                if (Remote is { } r && !Drop()) _socket.SendTo(_tx.AsSpan(0, n), SocketFlags.None, r);
            while (Association.TryPollEvent(out var e)) OnEvent?.Invoke(e);
        }

        public void Dispose() => _socket.Dispose();
    }
}
