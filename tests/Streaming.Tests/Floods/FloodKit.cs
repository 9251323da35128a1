using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Transport.Samples.EchoServer;
using Transport.Streaming.Tests.Hosting;
using Transport.Streaming.WebRtc;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Floods;

/// <summary>What the flood tests share: loopback sources, memory figures, the legitimate client.</summary>
internal static class FloodKit
{
    /// <summary>127.0.(1 + i / 250).(1 + i % 250): a loopback source address of its own for each i below 62,500.</summary>
    public static IPAddress Source(int i) => new([127, 0, (byte)(1 + i / 250), (byte)(1 + i % 250)]);

    /// <summary>
    /// An HTTP handler whose connections come from <paramref name="source"/> (a loopback address of its own, so the per-address limits see another client).
    /// </summary>
    public static SocketsHttpHandler HandlerFrom(IPAddress source) => new()
    {
        ConnectCallback = async (context, ct) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                socket.Bind(new IPEndPoint(source, 0));
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Parse(context.DnsEndPoint.Host), context.DnsEndPoint.Port), ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };

    /// <summary>A UDP socket bound to <paramref name="source"/>:0 with a large send buffer.</summary>
    public static Socket UdpFrom(IPAddress source)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { SendBufferSize = 1 << 20 };
        socket.Bind(new IPEndPoint(source, 0));
        return socket;
    }

    /// <summary>
    /// Waits until <paramref name="handled"/> (the server's count of datagrams it took off its socket) has come within
    /// <paramref name="slack"/> of <paramref name="target"/>: the sender never runs more than a socket buffer ahead of
    /// the server, so the kernel drops nothing (the legitimate client's media included). Bounded by <paramref name="limit"/>.
    /// </summary>
    public static async Task PaceAsync(Func<long> handled, long target, int slack, Stopwatch clock, TimeSpan limit)
    {
        for (var spins = 0; handled() < target - slack; spins++)
        {
            if (clock.Elapsed > limit) throw new TimeoutException($"the server handled {handled()} of {target} datagrams within {limit.TotalSeconds:0} s");
            if (spins < 50) Thread.Yield();
            else await Task.Delay(1);
        }
    }
}

/// <summary>Heap (after a full collection) and working set of the test process, which hosts the server.</summary>
internal readonly record struct MemoryFigures(long Heap, long WorkingSet)
{
    public static MemoryFigures AfterFullCollect()
    {
        for (var i = 0; i < 3; i++)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        using var self = Process.GetCurrentProcess();
        return new(GC.GetTotalMemory(forceFullCollection: true), self.WorkingSet64);
    }

    public static MemoryFigures Now()
    {
        using var self = Process.GetCurrentProcess();
        return new(GC.GetTotalMemory(forceFullCollection: false), self.WorkingSet64);
    }

    public static string MiB(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("0.0");

    public override string ToString() => $"heap {MiB(Heap)} MiB, working set {MiB(WorkingSet)} MiB";
}

/// <summary>Samples the process's memory every 50 ms while a flood runs: the peak.</summary>
internal sealed class MemorySampler : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long _heap, _workingSet;

    public MemorySampler()
    {
        _loop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                var now = MemoryFigures.Now();
                Interlocked.Exchange(ref _heap, Math.Max(Interlocked.Read(ref _heap), now.Heap));
                Interlocked.Exchange(ref _workingSet, Math.Max(Interlocked.Read(ref _workingSet), now.WorkingSet));
                try { await Task.Delay(50, _stop.Token); } catch (OperationCanceledException) { }
            }
        });
    }

    public MemoryFigures Peak => new(Interlocked.Read(ref _heap), Interlocked.Read(ref _workingSet));

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}

/// <summary>
/// The legitimate client: our own peer connection over WHIP from 127.0.0.1, with audio, video and a data channel.
/// While a flood runs it sends a numbered text message, an Opus-sized audio frame and (every other tick) a VP8 frame
/// every 20 ms; the echo server sends each back. Afterwards every message must have come back once, in order.
/// </summary>
internal sealed class LegitimateClient : IAsyncDisposable
{
    private readonly HttpClient _http = new();
    private readonly CancellationTokenSource _stop = new();
    private WebRtcStreamClient _client = null!;
    private Task _sending = Task.CompletedTask, _reading = Task.CompletedTask;
    private long _sent, _echoed, _outOfOrder, _audioSent, _videoSent;

    public WebRtcStreamClient Client => _client;
    public long Sent => Interlocked.Read(ref _sent);
    public long Echoed => Interlocked.Read(ref _echoed);

    public static async Task<LegitimateClient> ConnectAsync(EchoTestHost host, TimeSpan patience)
    {
        var legit = new LegitimateClient();
        try
        {
            legit._client = await WebRtcStreamClient.ConnectAsync(WebRtcStreamClient.WhipAsync(legit._http, host.Whip), withMedia: true).WaitAsync(patience);
        }
        catch
        {
            await legit.DisposeAsync();
            throw;
        }
        legit._reading = Task.Run(legit.ReadAsync);
        legit._sending = Task.Run(legit.SendAsync);
        return legit;
    }

    private async Task SendAsync()
    {
        var video = new byte[2500];
        var audio = new byte[120];
        for (var i = 0; i < 1_000_000 && !_stop.IsCancellationRequested; i++)
        {
            try
            {
                await _client.SendTextAsync("m" + i, _stop.Token);
                Interlocked.Increment(ref _sent);
                if (await _client.SendFrameAsync(_client.Audio!, audio, (uint)(i * 960), _stop.Token) == MediaSendResult.Sent)
                    Interlocked.Increment(ref _audioSent);
                if (i % 2 == 0)
                {
                    video[0] = (byte)(i % 100 == 0 ? 0x10 : 0x11);   // VP8 payload header: a key frame every 50 frames
                    if (await _client.SendFrameAsync(_client.Video!, video, (uint)(i / 2 * 3600), _stop.Token) == MediaSendResult.Sent)
                        Interlocked.Increment(ref _videoSent);
                }
                await Task.Delay(20, _stop.Token);
            }
            catch (OperationCanceledException) { return; }
            catch (Exception e)
            {
                SendError = e.GetType().Name + ": " + e.Message;   // reported and failed by StopAndCheckAsync
                return;
            }
        }
    }

    /// <summary>Why sending stopped before the end (the connection ended), or null.</summary>
    public string? SendError { get; private set; }

    private async Task ReadAsync()
    {
        long expected = 0;
        await foreach (var o in _client.Observations.ReadAllAsync())
        {
            if (o.Kind != "data") continue;
            if (o.Text != "m" + expected) Interlocked.Increment(ref _outOfOrder);
            expected++;
            Interlocked.Exchange(ref _echoed, expected);
        }
    }

    /// <summary>Stops sending, waits (bounded) for every echo, and reports; asserts nothing lost or reordered.</summary>
    public async Task<string> StopAndCheckAsync(TimeSpan patience, ITestOutputHelper output)
    {
        await _stop.CancelAsync();
        await _sending;
        var watch = Stopwatch.StartNew();
        while ((Echoed < Sent || _client.AudioFramesReceived < Interlocked.Read(ref _audioSent)
            || _client.VideoFramesReceived < Interlocked.Read(ref _videoSent))
               && watch.Elapsed < patience)
            await Task.Delay(20);
        var report = $"legitimate client: {Sent} messages sent, {Echoed} echoed, {Interlocked.Read(ref _outOfOrder)} out of order; " +
                     $"audio {_client.AudioFramesReceived}/{Interlocked.Read(ref _audioSent)}, video " +
                     $"{_client.VideoFramesReceived}/{Interlocked.Read(ref _videoSent)} frames back; " +
                     $"state {_client.PeerConnection.State}" + (SendError is null ? "" : "; sending failed: " + SendError);
        output.WriteLine(report);
        Assert.Null(SendError);
        Assert.Equal(ConnectionState.Connected, _client.PeerConnection.State);
        Assert.True(Sent >= 10, "the legitimate client hardly sent anything: " + report);
        Assert.Equal(Sent, Echoed);
        Assert.Equal(0, Interlocked.Read(ref _outOfOrder));
        // Media is not retransmitted (no NACK from this client): with the sender paced to the server, nothing should
        // be lost on loopback, but allow a frame or two to a scheduling hiccup of a loaded machine.
        Assert.True(_client.AudioFramesReceived >= Interlocked.Read(ref _audioSent) - 2, report);
        Assert.True(_client.VideoFramesReceived >= Interlocked.Read(ref _videoSent) - 2, report);
        return report;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try { await _sending; } catch (OperationCanceledException) { }
        if (_client is not null) await _client.DisposeAsync();
        try { await _reading.WaitAsync(TimeSpan.FromSeconds(5)); } catch (TimeoutException) { }
        _http.Dispose();
        _stop.Dispose();
    }
}
