using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Transport.Streaming.Sessions;

namespace Transport.Samples.EchoServer;

/// <summary>
/// <c>--self-test</c>: starts the server on 127.0.0.1, connects an in-process WebRTC client over real UDP with WHIP,
/// streams 1 KiB data messages and media frames for a few seconds (progress line), says "bye" so the handler ends with EndStream, and
/// checks the client got goodbye, then end_stream, then the close. Prints set-up time, throughput and teardown time.
/// An Opus-sized audio track and a VP8-sized video track stream alongside and are echoed back frame by frame.
/// </summary>
public static class SelfTest
{
    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; }
        catch (IOException) { return "unknown"; }
    }

    public static async Task<int> RunAsync(EchoServerSettings settings, TextWriter output)
    {
        var defaults = new EchoServerSettings();
        var quiet = settings with
        {
            Urls = settings.Urls == defaults.Urls ? "http://127.0.0.1:0" : settings.Urls,
            Sessions = settings.Sessions with { UdpPort = settings.Sessions.UdpPort == defaults.Sessions.UdpPort ? 0 : settings.Sessions.UdpPort },
        };
        var instance = EchoServerApp.Build(quiet, logging => logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
        var failures = new List<string>();
        await instance.App.StartAsync().ConfigureAwait(false);
        try
        {
            var http = new Uri(instance.App.Urls.First());
            output.WriteLine($"self-test: server on {http} (UDP {instance.UdpEndPoint}); streaming for {settings.SelfTestSeconds:0.#} s");
            using var httpClient = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            StreamSession? session = null;
            var setup = Stopwatch.StartNew();
            await using var client = await WebRtcStreamClient.ConnectAsync(async (c, offer, ct) =>
            {
                var answer = await WebRtcStreamClient.WhipAsync(httpClient, new Uri(http, "/whip"))(c, offer, ct).ConfigureAwait(false);
                session = instance.Server.Find(c.Resource!.Segments[^1]);
                return answer;
            }, withMedia: true).WaitAsync(TimeSpan.FromSeconds(15)).ConfigureAwait(false);
            var setupTime = setup.Elapsed;
            output.WriteLine($"connected: set-up {setupTime.TotalMilliseconds:0.0} ms (offer -> both channels open " +
                $"{client.SetupTime.TotalMilliseconds:0.0} ms), session {session?.Id}");

            // Stream: a sender paced by the channel's buffered amount, the echoes counted as they come back.
            var payload = new byte[1024];
            long sent = 0, echoed = 0;
            var streaming = Stopwatch.StartNew();
            var duration = TimeSpan.FromSeconds(settings.SelfTestSeconds);
            var receiver = Task.Run(async () =>
            {
                while (Interlocked.Read(ref echoed) < Interlocked.Read(ref sent) || streaming.Elapsed < duration)
                {
                    var o = await client.NextAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
                    if (o.Kind != "data") throw new InvalidOperationException($"unexpected {o.Kind} while streaming: {o.Text}");
                    Interlocked.Add(ref echoed, o.Length);
                }
            });
            // Media alongside: a 20 ms Opus-sized audio frame and a 33 ms VP8-sized video frame (key frame every 30), echoed back.
            long audioSent = 0, videoSent = 0;
            var media = Task.Run(async () =>
            {
                var audio = new byte[160];
                var video = new byte[4000];
                var clock = Stopwatch.StartNew();
                TimeSpan nextAudio = TimeSpan.Zero, nextVideo = TimeSpan.Zero;
                while (clock.Elapsed < duration)
                {
                    if (clock.Elapsed >= nextAudio)
                    {
                        if (await client.SendFrameAsync(client.Audio!, audio, (uint)(audioSent * 960)).ConfigureAwait(false)
                            == Transport.Streaming.WebRtc.MediaSendResult.Sent)
                            audioSent++;
                        nextAudio += TimeSpan.FromMilliseconds(20);
                    }
                    if (clock.Elapsed >= nextVideo)
                    {
                        video[0] = (byte)(videoSent % 30 == 0 ? 0x10 : 0x11); // VP8: bit 0 clear on a key frame
                        if (await client.SendFrameAsync(client.Video!, video, (uint)(videoSent * 3000)).ConfigureAwait(false)
                            == Transport.Streaming.WebRtc.MediaSendResult.Sent)
                            videoSent++;
                        nextVideo += TimeSpan.FromMilliseconds(33);
                    }
                    await Task.Delay(2).ConfigureAwait(false);
                }
            });
            var nextProgress = TimeSpan.FromMilliseconds(500);
            while (streaming.Elapsed < duration)
            {
                if (client.DataBufferedAmount > 256 * 1024 || sent - Interlocked.Read(ref echoed) > 1024 * 1024) { await Task.Delay(1).ConfigureAwait(false); }
                else { await client.SendBinaryAsync(payload).ConfigureAwait(false); sent += payload.Length; }
                if (streaming.Elapsed >= nextProgress)
                {
                    nextProgress += TimeSpan.FromMilliseconds(500);
                    output.Write(string.Create(CultureInfo.InvariantCulture,
                        $"\r  {streaming.Elapsed.TotalSeconds,4:0.0} s  sent {sent / 1e6,7:0.00} MB  echoed {Interlocked.Read(ref echoed) / 1e6,7:0.00} MB  " +
                        $"media frames echoed {client.AudioFramesReceived} audio {client.VideoFramesReceived} video"));
                }
            }
            await receiver.WaitAsync(TimeSpan.FromSeconds(15)).ConfigureAwait(false);
            await media.WaitAsync(TimeSpan.FromSeconds(15)).ConfigureAwait(false);
            var mediaWait = Stopwatch.StartNew();
            while ((client.AudioFramesReceived < audioSent || client.VideoFramesReceived < videoSent) && mediaWait.Elapsed < TimeSpan.FromSeconds(3))
                await Task.Delay(10).ConfigureAwait(false);
            var seconds = streaming.Elapsed.TotalSeconds;
            output.WriteLine();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"throughput: {sent / 1e6:0.00} MB sent and {echoed / 1e6:0.00} MB echoed in {seconds:0.00} s = {echoed / seconds / 1e6:0.00} MB/s echoed " +
                $"({echoed * 8 / seconds / 1e6:0.0} Mbit/s)"));
            if (echoed != sent) failures.Add($"echoed {echoed} of {sent} bytes");

            // End: the handler says goodbye and ends the stream; the client must see exactly that order.
            var bye = Stopwatch.StartNew();
            await client.SendTextAsync("bye").ConfigureAwait(false);
            var seen = new List<ClientObservation>();
            while (seen.Count == 0 || seen[^1].Kind != "close") seen.Add(await client.NextAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false));
            var closedAfter = bye.Elapsed;
            var order = string.Join(" | ", seen.Select(o => o.Kind == "close" ? "close" : o.Kind + ":" + o.Text));
            output.WriteLine("end: " + order);
            if (seen.Count != 3 || seen[0].Text != "goodbye" || !seen[1].Text.Contains("\"end_stream\"", StringComparison.Ordinal) || seen[2].Kind != "close")
                failures.Add("expected goodbye, end_stream, close; got " + order);
            if (session is null) failures.Add("the server's session was not found");
            else
            {
                var reason = await session.Completion.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
                var teardown = session.TeardownDuration!.Value;
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"teardown: {teardown.TotalMilliseconds:0.0} ms on the server (end decided -> everything released); bye -> client saw the close " +
                    $"{closedAfter.TotalMilliseconds:0.0} ms; reason {reason}"));
                if (reason.Kind != SessionEndKind.EndStream) failures.Add("the session ended with " + reason);
                // The goal is 100 ms (the tests assert it on warm code). This one session runs the teardown path for the
                // first time in the process (JIT) on a machine that may be loaded: over the goal is reported, over 1 s fails.
                if (teardown > TimeSpan.FromSeconds(1)) failures.Add($"teardown took {teardown.TotalMilliseconds:0} ms (over 1 s)");
                else if (teardown > TimeSpan.FromMilliseconds(100))
                    output.WriteLine($"note: teardown over the 100 ms goal (first, cold run; load average {LoadAverage()})");
            }
            if (instance.Server.Reserved != 0) failures.Add($"{instance.Server.Reserved} slots still reserved");
            // The echo's own sending is under congestion control: a video frame the server's pacer could not take
            // (MediaSendResult.Congested: the estimate was still ramping up) is refused and counted there, not lost.
            var refused = session?.Transport is WebRtcSessionTransport t ? t.MediaFramesDropped : 0;
            output.WriteLine($"media: {audioSent} audio and {videoSent} video frames sent, {client.AudioFramesReceived} and {client.VideoFramesReceived} " +
                $"echoed back ({client.MediaBytesReceived / 1e3:0} kB), {refused} refused by the server's congestion control (counted)");
            if (audioSent == 0 || videoSent == 0 || client.AudioFramesReceived + client.VideoFramesReceived + refused < audioSent + videoSent)
                failures.Add($"media: {client.AudioFramesReceived}/{audioSent} audio and {client.VideoFramesReceived}/{videoSent} video frames " +
                    $"echoed, {refused} refused and counted");
        }
        catch (Exception e)
        {
            failures.Add(e.GetType().Name + ": " + e.Message);
        }
        finally
        {
            await instance.App.StopAsync().ConfigureAwait(false);
            await instance.App.DisposeAsync().ConfigureAwait(false);
        }
        foreach (var f in failures) output.WriteLine("FAILED: " + f);
        output.WriteLine(failures.Count == 0 ? "self-test: OK" : "self-test: FAILED");
        return failures.Count == 0 ? 0 : 1;
    }
}
