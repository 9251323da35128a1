using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Runtime.Versioning;
using Transport.Sctp;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// Runs a <see cref="PeerConnectionCore"/> on the driver for the browser tests, keeps every event, optionally echoes
/// every data channel message back on the channel it came on (binary as binary, text as text), and remembers (on the
/// driver's clock) when the last datagram from the browser arrived: the lifecycle tests measure the liveness timers
/// from that instant.
/// </summary>
/// <param name="core">Our connection's core.</param>
/// <param name="echo">Whether received messages are sent back.</param>
/// <param name="echoOnlyWhenConnected">Echo only while the connection is <see cref="ConnectionState.Connected"/>
/// (the lifecycle tests stop echoing once it is not).</param>
internal sealed class TimedEchoPeer(PeerConnectionCore core, bool echo = true, bool echoOnlyWhenConnected = true) : IDatagramPeer
{
    private long _lastDatagramTicks = -1;

    public PeerConnectionCore Core { get; } = core;
    public ConcurrentQueue<PeerConnectionEvent> Events { get; } = new();

    /// <summary>Driver time of the last datagram received, or null before the first.</summary>
    public TimeSpan? LastDatagramAt => Interlocked.Read(ref _lastDatagramTicks) is var t && t >= 0 ? TimeSpan.FromTicks(t) : null;

    public IReadOnlyCollection<string> LocalUsernameFragments => Core.LocalUsernameFragments;

    public void HandleDatagram(ReadOnlySpan<byte> datagram, IPEndPoint local, IPEndPoint remote, TimeSpan now)
    {
        Interlocked.Exchange(ref _lastDatagramTicks, now.Ticks);
        Core.HandleDatagram(datagram, local, remote, now);
    }

    public void HandleTimeout(TimeSpan now) => Core.HandleTimeout(now);
    public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote) =>
        Core.TryPollTransmit(destination, out written, out local, out remote);
    public TimeSpan? PollTimeout() => Core.PollTimeout();
    /// <summary>
    /// Sans-IO core and concurrent queues only: never blocks, so the driver runs it on its own threads (timers stay punctual however busy the pool is).
    /// </summary>
    public bool RunsInline => true;

    public void AfterInput(TimeSpan now)
    {
        Core.AfterInput(now);
        while (Core.TryPollEvent(out var e))
        {
            Events.Enqueue(e);
            if (echo && e is DataChannelMessageReceived m && m.Channel.State == DataChannelState.Open
                && (!echoOnlyWhenConnected || Core.State == ConnectionState.Connected))
            {
                if (m.IsBinary) m.Channel.Send(m.Data, binary: true, now);
                else m.Channel.Send(System.Text.Encoding.UTF8.GetString(m.Data));
            }
        }
        Core.AfterInput(now); // send what the echo queued
    }

    public IEnumerable<ConnectionStateChanged> StateChanges => Events.OfType<ConnectionStateChanged>();
}

/// <summary>
/// One of our <see cref="PeerConnection"/>s (the public async API) echoing every message it receives with
/// <see cref="PeerConnection.SendAsync(DataChannel, ReadOnlyMemory{byte}, bool, CancellationToken)"/>, keeping every
/// event and every exception the application would see.
/// </summary>
internal sealed class AsyncEchoSession
{
    private readonly CancellationTokenSource _stop = new();

    private readonly Func<PeerConnectionEvent, Task>? _onEvent;

    /// <param name="connection">Our connection.</param>
    /// <param name="onEvent">Called for every event after the echo's own handling (e.g. to forward a key frame request).</param>
    public AsyncEchoSession(PeerConnection connection, Func<PeerConnectionEvent, Task>? onEvent = null)
    {
        Connection = connection;
        _onEvent = onEvent;
        Loop = Task.Run(RunAsync);
    }

    public PeerConnection Connection { get; }
    public Task Loop { get; }
    public ConcurrentQueue<PeerConnectionEvent> Events { get; } = new();
    public ConcurrentQueue<Exception> Errors { get; } = new();
    public IEnumerable<ConnectionState> States => Events.OfType<ConnectionStateChanged>().Select(s => s.State);

    private async Task RunAsync()
    {
        try
        {
            await foreach (var e in Connection.Events.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                Events.Enqueue(e);
                if (_onEvent is not null)
                {
                    try { await _onEvent(e).ConfigureAwait(false); }
                    catch (OperationCanceledException) when (_stop.IsCancellationRequested) { return; }
                    catch (Exception x) { Errors.Enqueue(x); }
                }
                if (e is not DataChannelMessageReceived m) continue;
                try { await Connection.SendAsync(m.Channel, m.Data, m.IsBinary, _stop.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested) { return; }
                catch (Exception x) { Errors.Enqueue(x); }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested) { }
        catch (Exception x) { Errors.Enqueue(x); }
    }

    /// <summary>Waits (bounded) until the connection reaches <paramref name="state"/>; false on timeout.</summary>
    public async Task<bool> WaitForStateAsync(ConnectionState state, TimeSpan patience)
    {
        var end = Stopwatch.StartNew();
        while (Connection.State != state && end.Elapsed < patience) await Task.Delay(1);
        return Connection.State == state;
    }

    public async Task StopAsync()
    {
        _stop.Cancel();
        try { await Loop.WaitAsync(TimeSpan.FromSeconds(5)); }
        catch (TimeoutException) { }
    }
}

/// <summary>The Chromium processes started inside a namespace, found and killed by pid (SIGKILL), not closed politely.</summary>
[SupportedOSPlatform("linux")]
internal static class ChromiumProcesses
{
    /// <summary>The pids of the Chromium processes (browser, zygotes, renderers, utility/network service) in <paramref name="ns"/>.</summary>
    public static IReadOnlyList<int> In(NetworkNamespace ns)
    {
        using var p = Process.Start(new ProcessStartInfo("ip", $"netns pids {ns.Name}") { RedirectStandardOutput = true, UseShellExecute = false })
            ?? throw new InvalidOperationException("could not start ip");
        var text = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(10_000)) { p.Kill(); throw new InvalidOperationException("ip netns pids hung"); }
        var pids = new List<int>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(line, out var pid) || pid == Environment.ProcessId) continue;
            string cmdline;
            try { cmdline = File.ReadAllText($"/proc/{pid}/cmdline"); }
            catch (IOException) { continue; }      // already gone
            catch (UnauthorizedAccessException) { continue; }
            if (cmdline.Contains("chromium", StringComparison.Ordinal)) pids.Add(pid);
        }
        return pids;
    }

    /// <summary>SIGKILLs every Chromium process of <paramref name="ns"/> and waits (bounded) until they are gone; returns how many.</summary>
    public static int KillAll(NetworkNamespace ns, TimeSpan patience)
    {
        var pids = In(ns);
        foreach (var pid in pids)
        {
            try { using var process = Process.GetProcessById(pid); process.Kill(); } // SIGKILL on Unix
            catch (ArgumentException) { }           // exited meanwhile
            catch (InvalidOperationException) { }
        }
        var clock = Stopwatch.StartNew();
        while (pids.Any(pid => Directory.Exists($"/proc/{pid}") && !IsZombie(pid)) && clock.Elapsed < patience) Thread.Sleep(5);
        return pids.Count;
    }

    /// <summary>Sends SIG<paramref name="signal"/> (e.g. STOP, CONT) to every Chromium process of <paramref name="ns"/>; returns their pids.</summary>
    public static int[] Signal(NetworkNamespace ns, string signal)
    {
        var pids = In(ns).ToArray();
        if (pids.Length == 0) return pids;
        using var p = Process.Start(new ProcessStartInfo("kill", $"-{signal} {string.Join(' ', pids)}")
        {
            RedirectStandardError = true,
            UseShellExecute = false
        })
            ?? throw new InvalidOperationException("could not start kill");
        if (!p.WaitForExit(10_000)) { p.Kill(); throw new InvalidOperationException("kill hung"); }
        return pids;
    }

    private static bool IsZombie(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/stat").Split(") ", 2) is [_, var rest] && rest.StartsWith('Z'); }
        catch (IOException) { return true; }
    }
}

/// <summary>Percentiles of measured times.</summary>
internal static class Percentiles
{
    public static double Of(IReadOnlyList<double> values, double p)
    {
        if (values.Count == 0) return double.NaN;
        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(p / 100 * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }
}
