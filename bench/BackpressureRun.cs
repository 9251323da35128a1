using System.Diagnostics;
using System.Globalization;
using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;

namespace Transport.Bench;

/// <summary>
/// A measured run of backpressure (<see cref="PeerConnectionOptions.MaxUnreadBytes"/>): two of our peer connections
/// in this process on 127.0.0.1; A sends N MiB (64 KiB messages, waiting on BufferedAmountLow when its channel holds
/// MaxBufferedAmount) to B, whose reader reads nothing for the first P seconds and then reads everything. Prints the
/// peak managed heap and the peak RSS above the baseline (sampled every 50 ms), and fails when a byte is lost, out
/// of order, or the transfer does not finish.
/// <c>dotnet run -c Release --project bench -- backpressure [megabytes=1024] [pause-seconds=10] [--unbounded]</c>
/// </summary>
public static class BackpressureRun
{
    private const int MessageSize = 64 * 1024;

    private static byte Pattern(long offset) => (byte)(offset * 131 + (offset >> 9) * 7 + (offset >> 17));

    public static async Task<int> RunAsync(string[] args)
    {
        var numbers = args.Skip(1).Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray();
        var megabytes = numbers.Length > 0 ? int.Parse(numbers[0], CultureInfo.InvariantCulture) : 1024;
        var pause = TimeSpan.FromSeconds(numbers.Length > 1 ? double.Parse(numbers[1], CultureInfo.InvariantCulture) : 10);
        var total = (long)megabytes << 20;
        using var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        // --unbounded: backpressure off (MaxUnreadBytes 0), the behaviour before it, to compare.
        var options = new PeerConnectionOptions { Certificate = certificate, MaxUnreadBytes = args.Contains("--unbounded") ? 0 : 4 << 20 };
        await using var d1 = new UdpDriver();
        await using var d2 = new UdpDriver();
        d1.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        d2.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await using var a = new PeerConnection(d1, options with { Ice = options.Ice with { Role = IceRole.Controlling } });
        await using var b = new PeerConnection(d2, options with { Ice = options.Ice with { Role = IceRole.Controlled } });
        using var cts = new CancellationTokenSource(pause + TimeSpan.FromMinutes(10));
        await a.SetRemoteDescriptionAsync(await b.CreateAnswerAsync(await a.CreateOfferAsync(cts.Token), cts.Token), cts.Token);
        var channel = await a.CreateDataChannelAsync("bulk", cancellationToken: cts.Token);
        while (await b.Events.ReadAsync(cts.Token) is not DataChannelOpened) { }
        channel.BufferedAmountLowThreshold = options.MaxBufferedAmount / 2;

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var baseHeap = GC.GetTotalMemory(false);
        var baseRss = process.WorkingSet64;
        long peakHeap = 0, peakRss = 0, peakUnread = 0;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                process.Refresh();
                peakHeap = Math.Max(peakHeap, GC.GetTotalMemory(false) - baseHeap);
                peakRss = Math.Max(peakRss, process.WorkingSet64 - baseRss);
                peakUnread = Math.Max(peakUnread, b.UnreadBytes);
                try { await Task.Delay(50, sampling.Token).ConfigureAwait(false); } catch (OperationCanceledException) { }
            }
        });

        var clock = Stopwatch.StartNew();
        var sending = Task.Run(async () =>
        {
            var buffer = new byte[MessageSize];
            for (long sent = 0; sent < total;)
            {
                for (var i = 0; i < MessageSize; i++) buffer[i] = Pattern(sent + i);
                try { await a.SendAsync(channel, buffer, cancellationToken: cts.Token).ConfigureAwait(false); sent += MessageSize; continue; }
                catch (InvalidOperationException) { } // MaxBufferedAmount reached: wait for the channel to drain
                while (await a.Events.ReadAsync(cts.Token).ConfigureAwait(false) is not DataChannelBufferedAmountLow) { }
            }
        });
        await Task.Delay(pause, cts.Token);
        var unreadAfterPause = b.UnreadBytes;
        var queuedAfterPause = b.Events.Count;
        long received = 0, mismatch = -1;
        while (received < total)
        {
            if (await b.Events.ReadAsync(cts.Token) is not DataChannelMessageReceived m) continue;
            if (mismatch < 0)
                for (var i = 0; i < m.Data.Length; i++) if (m.Data[i] != Pattern(received + i)) { mismatch = received + i; break; }
            received += m.Data.Length;
        }
        await sending;
        var elapsed = clock.Elapsed;
        await sampling.CancelAsync();
        await sampler;
        const double MiB = 1 << 20;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"backpressure: {megabytes} MiB, reader paused {pause.TotalSeconds:0} s, MaxUnreadBytes {options.MaxUnreadBytes / MiB:0.#} MiB, " +
            $"MaxBufferedAmount {options.MaxBufferedAmount / MiB:0.#} MiB"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  after the pause: B unread {unreadAfterPause / MiB:0.00} MiB, {queuedAfterPause} messages queued for the reader"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  received {received / MiB:0} MiB in {elapsed.TotalSeconds:0.0} s, first mismatch " +
            $"{(mismatch < 0 ? "none" : mismatch.ToString(CultureInfo.InvariantCulture))}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  peak above baseline: managed heap {peakHeap / MiB:0.0} MiB, RSS {peakRss / MiB:0.0} MiB, B unread {peakUnread / MiB:0.00} MiB"));
        var ok = received == total && mismatch < 0;
        Console.WriteLine(ok ? "  OK: nothing lost, in order" : "  FAILED");
        return ok ? 0 : 1;
    }
}
