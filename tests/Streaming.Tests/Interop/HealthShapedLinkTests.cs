using System.Diagnostics;
using System.Runtime.Versioning;
using System.Text.Json;
using System.Threading.Channels;
using Transport.Samples.EchoServer;
using Transport.Streaming.Hosting;
using Transport.Streaming.Sessions;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// Graded health on a real, shaped link: the main program (the echo server, in this process, inside one network
/// namespace) and headless Chromium (its echo page with the fake camera, in another) joined by a veth pair. The link is
/// then shaped from outside the stack, by the kernel: nftables drops 20 % of the UDP the browser receives, then a
/// token bucket (<c>tc qdisc tbf</c>, 150 kbit/s, 1 s of queue) holds what the server sends, then the link is cut
/// (everything dropped both ways: with UDP alone dropped, ICE moves to our ICE-TCP candidate and recovers). The session's level must follow (seen through
/// <see cref="StreamServer.HealthChanged"/> and the grade the health check keeps): degraded or worse for loss with the reason <c>loss</c>, for the rate limit
/// with <c>delivery</c> or <c>rtt</c>, healthy again each time the shaping is removed, and dead (consent age) when nothing
/// passes. This kernel has no netem; loss and the rate limit are what nftables and tbf give.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(BrowserCollection.Name)]
public sealed class HealthShapedLinkTests(ITestOutputHelper output)
{
    private const string Nft = "/usr/sbin/nft";
    private const string Tc = "/usr/sbin/tc";
    private static readonly TimeSpan Phase = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task ChromiumsSessionIsGradedByTheShapedLinkWithTheMatchingReasonsAndRecovers()
    {
        foreach (var tool in new[] { Nft, Tc })
            if (!File.Exists(tool)) throw new InvalidOperationException($"{tool} is missing: install the Debian packages 'nftables' and 'iproute2'.");
        var subnet = $"10.79.{Random.Shared.Next(1, 250)}";
        string serverAddress = subnet + ".1", browserAddress = subnet + ".2";
        using var serverNs = NetworkNamespace.Create("rtc-hsrv");
        using var browserNs = NetworkNamespace.Create("rtc-hbrw");
        serverNs.ConnectVeth(browserNs, serverAddress, browserAddress);
        browserNs.AddDefaultRoute(serverAddress);

        var sessions = new WebRtcSessionsOptions
        {
            UdpPort = 0,
            UdpAddress = serverAddress,
            Health = new HealthThresholds
            {
                // Jitter is the browser's media as it reaches us, on a direction never shaped here and on a loaded
                // machine: not what this test is about. RTT thresholds above what 2 loaded cores add by themselves.
                JitterDegraded = null,
                JitterUnhealthy = null,
                RoundTripDegraded = TimeSpan.FromMilliseconds(500),
                RoundTripUnhealthy = TimeSpan.FromMilliseconds(1200),
                // Dead before ICE's own consent expiry (30 s) ends the session.
                ConsentAgeUnhealthy = TimeSpan.FromSeconds(12),
                ConsentAgeDead = TimeSpan.FromSeconds(15),
            },
        };
        sessions.Limits.DisconnectedLimit = null; // kept while disconnected, so that it can be seen dead
        // The grade of a sender that does not adapt: with congestion control (on by default) our echo follows the shaped
        // rate (71 kbit/s under 150 kbit/s) and its delivery stays near 100 %, so the rate phase would see nothing.
        var peer = sessions.Transport.PeerConnection;
        sessions.Transport = sessions.Transport with { PeerConnection = peer with { Media = peer.Media with { Congestion = null } } };
        var settings = new EchoServerSettings { Urls = $"http://{serverAddress}:0", Sessions = sessions, Relay = false };
        var instance = EchoServerInNamespace.Build(serverNs, settings);
        var changes = Channel.CreateUnbounded<SessionHealthChange>();
        instance.Server.HealthChanged += c => changes.Writer.TryWrite(c);
        var seen = new List<SessionHealthChange>();
        HeadlessChromium? chromium = null;
        try
        {
            await instance.App.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
            var origin = instance.App.Urls.First();
            // The page's origin is an address, not localhost: treated as secure so that getUserMedia works.
            chromium = await HeadlessChromium.LaunchAsync(browserNs, fakeMedia: true, "--unsafely-treat-insecure-origin-as-secure=" + origin);
            var page = await chromium.Browser.NewPageAsync();
            // The echo page: camera and microphone over WHIP, echoed back; pings answered; health shown.
            await page.GotoAsync(origin + "/");
            await page.WaitForFunctionAsync("() => window.app && app.sessionId", null, new() { Timeout = 60_000 });
            var id = await page.EvaluateAsync<string>("() => app.sessionId");
            Assert.True(await page.EvaluateAsync<bool>("() => !!app.media"),
                "no camera: " + await page.EvaluateAsync<string>("() => document.getElementById('note').textContent"));
            var session = instance.Server.Find(id) ?? throw new InvalidOperationException($"no session {id}");

            // Connected and echoing video, with the browser's transport-cc feedback on it, and healthy.
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < Phase && !(session.State == SessionState.Running && session.HealthGrade.Level == HealthLevel.Healthy &&
                   session.GetHealth().Connection is { MediaBitrateOut: >= 64_000, MediaDeliveryRate: not null }))
                await Task.Delay(200);
            Log("connected", session);
            Assert.Equal(SessionState.Running, session.State);
            Assert.True(session.GetHealth().Connection.MediaBitrateOut >= 64_000, "no video echoed: " + Json(session));
            Assert.Equal(HealthLevel.Healthy, session.HealthGrade.Level);

            // 1. 20 % of the UDP the browser receives is dropped: our media's loss, from its transport-cc feedback.
            var rules = Path.Combine(Path.GetTempPath(), $"{browserNs.Name}-loss.nft");
            await File.WriteAllTextAsync(rules, """
                table inet shape {
                  chain in { type filter hook input priority 0; policy accept; meta l4proto udp numgen random mod 100 < 20 drop; }
                }
                """);
            try { browserNs.Exec(Nft, "-f", rules); }
            finally { File.Delete(rules); }
            var lossy = await WaitForGrade(session, changes, seen, g => g.Level >= HealthLevel.Degraded && Has(g, "loss"), "20 % loss");
            Assert.Contains(seen, c => c.SessionId == id && c.To >= HealthLevel.Degraded);
            Assert.True(lossy.Reasons.First(r => r.Metric == "loss").Value >= 0.05);
            // The page was told (the control channel's health message, and its own poll of the resource).
            await page.WaitForFunctionAsync("() => ['degraded', 'unhealthy'].includes(document.getElementById('health').textContent)", null,
                new() { Timeout = 30_000 });
            browserNs.Exec(Nft, "delete", "table", "inet", "shape");
            await WaitForGrade(session, changes, seen, g => g.Level == HealthLevel.Healthy, "loss removed");
            Assert.Equal(HealthLevel.Healthy, seen.Last(c => c.SessionId == id).To);
            var before = seen.Count;

            // 2. What the server sends is held to 150 kbit/s behind 1 s of queue: less delivered, longer round trips.
            serverNs.Exec(Tc, "qdisc", "add", "dev", "veth-a", "root", "tbf", "rate", "150kbit", "burst", "16kb", "latency", "1000ms");
            var slow = await WaitForGrade(session, changes, seen, g => g.Level >= HealthLevel.Degraded && (Has(g, "delivery") || Has(g, "rtt")), "150 kbit/s");
            Assert.Contains(seen.Skip(before), c => c.SessionId == id && c.To >= HealthLevel.Degraded);
            output.WriteLine("rate limited: " + string.Join("; ", slow.Reasons.Select(r => r.Text)));
            serverNs.Exec(Tc, "qdisc", "del", "dev", "veth-a", "root");
            await WaitForGrade(session, changes, seen, g => g.Level == HealthLevel.Healthy, "rate limit removed");
            Assert.Equal(HealthLevel.Healthy, seen.Last(c => c.SessionId == id).To);

            // 3. The link is cut: nothing passes either way, UDP or TCP (with UDP alone dropped, ICE moves to our ICE-TCP
            // candidate and the session is healthy again within seconds). Disconnected (unhealthy), then dead by consent age.
            var drop = Path.Combine(Path.GetTempPath(), $"{browserNs.Name}-drop.nft");
            await File.WriteAllTextAsync(drop, """
                table inet cut {
                  chain in { type filter hook input priority 0; policy accept; iifname "veth-b" drop; }
                  chain out { type filter hook output priority 0; policy accept; oifname "veth-b" drop; }
                }
                """);
            try { browserNs.Exec(Nft, "-f", drop); }
            finally { File.Delete(drop); }
            var dead = await WaitForGrade(session, changes, seen, g => g.Level == HealthLevel.Dead, "link cut");
            Assert.Contains(dead.Reasons, r => r.Metric == "consent_age" && r.Level == HealthLevel.Dead);
            Assert.Equal(HealthLevel.Dead, seen.Last(c => c.SessionId == id).To);
            var path = seen.Where(c => c.SessionId == id).Select(c => HealthGrade.Name(c.From) + "->" + c.Grade.LevelName).ToArray();
            output.WriteLine("changes: " + string.Join(", ", path));
        }
        finally
        {
            foreach (var c in seen)
                output.WriteLine($"{c.At.TotalSeconds,7:0.0} s {c.SessionId[..6]} {HealthGrade.Name(c.From)} -> {c.Grade.LevelName}: " +
                    $"{string.Join("; ", c.Grade.Reasons.Select(r => r.Text))}");
            if (chromium is not null) await chromium.DisposeAsync();
            await EchoServerInNamespace.StopAsync(instance, output);
        }
    }

    private static bool Has(HealthGrade grade, string metric) => grade.Reasons.Any(r => r.Metric == metric);

    // Waits (at most Phase) until the grade the health check keeps for the session matches: looked at on each level
    // change the server raises, and at least every 250 ms (a new reason at the same level raises no change).
    private async Task<HealthGrade> WaitForGrade(StreamSession session, Channel<SessionHealthChange> changes, List<SessionHealthChange> seen,
        Func<HealthGrade, bool> match, string what)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            while (changes.Reader.TryRead(out var c)) seen.Add(c);
            var grade = session.HealthGrade;
            if (match(grade))
            {
                // The grade is kept before the change is raised: let the event of this level come in too.
                var raised = Stopwatch.StartNew();
                while (seen.LastOrDefault(c => c.SessionId == session.Id)?.To != grade.Level && raised.Elapsed < TimeSpan.FromSeconds(5))
                {
                    using var wait = new CancellationTokenSource(TimeSpan.FromMilliseconds(250));
                    try { if (await changes.Reader.WaitToReadAsync(wait.Token)) while (changes.Reader.TryRead(out var c)) seen.Add(c); }
                    catch (OperationCanceledException) { }
                }
                output.WriteLine($"{what}: {grade.LevelName} after {clock.Elapsed.TotalSeconds:0.0} s " +
                    $"({string.Join("; ", grade.Reasons.Select(r => r.Text))})");
                Log(what, session);
                return grade;
            }
            if (clock.Elapsed > Phase)
                throw new Xunit.Sdk.XunitException($"{what}: the grade did not match within {Phase.TotalSeconds} s; now {grade.LevelName} " +
                    $"({string.Join("; ", grade.Reasons.Select(r => r.Text))}); {Json(session)}");
            using var tick = new CancellationTokenSource(TimeSpan.FromMilliseconds(250));
            try { await changes.Reader.WaitToReadAsync(tick.Token); }
            catch (OperationCanceledException) { }
        }
    }

    private void Log(string what, StreamSession session) => output.WriteLine($"{what}: {Json(session)}");

    private static string Json(StreamSession session)
    {
        var c = session.GetHealth().Connection;
        return JsonSerializer.Serialize(new
        {
            c.State,
            rttMs = c.RoundTripTime?.TotalMilliseconds,
            consentS = c.ConsentAge?.TotalSeconds,
            c.LossFraction,
            c.MediaLossFraction,
            c.MediaDeliveryRate,
            c.MediaBitrateOut,
            c.SendBacklogBytes,
        });
    }
}
