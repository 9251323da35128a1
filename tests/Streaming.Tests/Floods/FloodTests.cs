using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Transport.Ice;
using Transport.Ice.Stun;
using Transport.Samples.EchoServer;
using Transport.Streaming.Sessions;
using Transport.Streaming.Tests.Hosting;
using Transport.Streaming.Tests.Io;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Floods;

/// <summary>
/// Floods as tests: the in-process echo server on 127.0.0.1 is flooded from other loopback addresses while a
/// legitimate client (our own peer connection over WHIP) echoes data-channel messages and media through it; nothing of
/// the client's is lost, and afterwards the process's heap is back near its baseline. Each flood is bounded in count
/// and time, and paced to the server (the sender waits whenever the server is a socket buffer behind) so the kernel
/// drops nothing and the figures are the server's. The figures go to the test output (lines <c>flood ...</c>).
/// </summary>
[Collection(RealTimeCollection.Name)]
public sealed class FloodTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    /// <summary>Each flood's own time bound (the counts below take 2-20 s here).</summary>
    private static readonly TimeSpan FloodLimit = TimeSpan.FromSeconds(90);
    /// <summary>Heap above the baseline allowed after a flood (a full collection on both sides).</summary>
    private const long HeapSlack = 24L << 20;
    /// <summary>Working set above the baseline allowed after a flood (the runtime keeps what it committed).</summary>
    private const long WorkingSetSlack = 384L << 20;

    /// <summary>
    /// Starts the host and the legitimate client, takes the baseline, runs <paramref name="flood"/> while sampling the
    /// peak, runs <paramref name="settle"/> (the limits' timeouts), checks the client and the memory, prints the figures.
    /// </summary>
    private async Task RunAsync(string name, EchoServerSettings settings, Func<EchoTestHost, Task<string>> flood,
        Func<EchoTestHost, Task<string>>? settle = null, long heapSlack = HeapSlack)
    {
        await using var host = await EchoTestHost.StartAsync(settings);
        await using var legit = await LegitimateClient.ConnectAsync(host, Patience);
        var warm = Stopwatch.StartNew();
        while (legit.Echoed < 25 && warm.Elapsed < Patience) await Task.Delay(20);   // about half a second of traffic first
        Assert.True(legit.Echoed >= 25, "the legitimate client's echo never started");
        host.Logs.Clear();   // the test host's capture of the log lines is the harness's memory, not the server's
        var baseline = MemoryFigures.AfterFullCollect();

        var watch = Stopwatch.StartNew();
        string figures;
        MemoryFigures peak;
        await using (var sampler = new MemorySampler())
        {
            figures = await flood(host);
            peak = sampler.Peak;
        }
        var took = watch.Elapsed;
        var settled = settle is null ? "" : "; " + await settle(host);
        var client = await legit.StopAndCheckAsync(Patience, output);
        var logLines = host.Logs.Count;
        host.Logs.Clear();
        var after = MemoryFigures.AfterFullCollect();
        output.WriteLine($"flood {name}: {figures}; flood {took.TotalSeconds:0.0} s{settled}; {logLines} log lines");
        output.WriteLine($"flood {name} memory: baseline {baseline}; peak {peak}; after {after}; heap after - baseline " +
            $"{MemoryFigures.MiB(after.Heap - baseline.Heap)} MiB");
        Assert.True(after.Heap - baseline.Heap < heapSlack, $"heap {MemoryFigures.MiB(after.Heap - baseline.Heap)} MiB above the baseline after the flood");
        Assert.True(after.WorkingSet - baseline.WorkingSet < WorkingSetSlack,
            $"working set {MemoryFigures.MiB(after.WorkingSet - baseline.WorkingSet)} MiB above the baseline after the flood");
        Assert.Single(host.Server.Sessions);   // the legitimate one, untouched
        _ = client;
    }

    private static long Handled(EchoTestHost host)
    {
        var c = host.Instance.Driver.Counters;
        return c.DroppedUnknownKind + c.DroppedUnknownPeer + c.UnroutedRequests + c.DroppedOversize;
    }

    /// <summary>
    /// Sends <paramref name="count"/> datagrams from <paramref name="sockets"/> in turn, paced to the server's count of datagrams it handled from unknown
    /// sources.
    /// </summary>
    private static async Task<TimeSpan> SendPacedAsync(EchoTestHost host, Socket[] sockets, IReadOnlyList<byte[]> datagrams, int count)
    {
        var target = host.Instance.UdpEndPoint;
        var before = Handled(host);
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            sockets[i % sockets.Length].SendTo(datagrams[i % datagrams.Count], target);
            // At most about 384 datagrams in the server's 2 MiB socket buffer (1,200 B ones take about 2.3 KiB each there).
            if (i % 128 == 127) await FloodKit.PaceAsync(() => Handled(host) - before, i + 1, 256, clock, FloodLimit);
        }
        await FloodKit.PaceAsync(() => Handled(host) - before, count, 0, clock, FloodLimit);
        return clock.Elapsed;
    }

    [Fact]
    public async Task AMillionGarbageDatagramsAreDroppedAndCounted()
    {
        const int Count = 1_000_000;
        await RunAsync("garbage-udp", new EchoServerSettings(), async host =>
        {
            var random = new Random(15);
            var datagrams = new List<byte[]>();
            for (var i = 0; i < 4096; i++)
            {
                byte[] d;
                switch (i % 4)
                {
                    case 0:   // random bytes, any first byte
                        d = new byte[random.Next(1, 1201)];
                        random.NextBytes(d);
                        break;
                    case 1:   // a STUN header cut short: type, length, magic cookie, part of a transaction id
                        d = new byte[random.Next(1, 31)];
                        random.NextBytes(d);
                        byte[] stun = [0x00, 0x01, 0x00, 0x20, 0x21, 0x12, 0xA4, 0x42];
                        stun.AsSpan(0, Math.Min(stun.Length, d.Length)).CopyTo(d);
                        break;
                    case 2:   // a DTLS 1.2 handshake record header, truncated
                        d = new byte[random.Next(1, 41)];
                        random.NextBytes(d);
                        byte[] dtls = [22, 0xFE, 0xFD, 0, 0];
                        dtls.AsSpan(0, Math.Min(dtls.Length, d.Length)).CopyTo(d);
                        break;
                    default:  // RTP/RTCP-looking: version 2, random rest
                        d = new byte[random.Next(1, 201)];
                        random.NextBytes(d);
                        d[0] = (byte)(0x80 | (d[0] & 0x3F));
                        break;
                }
                datagrams.Add(d);
            }
            var c = host.Instance.Driver.Counters;
            var routes0 = host.Instance.Driver.RouteCount;
            var (kind0, peer0, unrouted0, errors0) = (c.DroppedUnknownKind, c.DroppedUnknownPeer, c.UnroutedRequests, c.PeerErrors);
            var sockets = Enumerable.Range(0, 8).Select(i => FloodKit.UdpFrom(FloodKit.Source(i))).ToArray();
            try
            {
                var took = await SendPacedAsync(host, sockets, datagrams, Count);
                var (kind, peer, unrouted) = (c.DroppedUnknownKind - kind0, c.DroppedUnknownPeer - peer0, c.UnroutedRequests - unrouted0);
                Assert.Equal(Count, kind + peer + unrouted);
                Assert.Equal(0, unrouted);
                Assert.Equal(errors0, c.PeerErrors);
                Assert.Equal(routes0, host.Instance.Driver.RouteCount);
                return $"{Count} datagrams from 8 sources in {took.TotalSeconds:0.0} s ({Count / took.TotalSeconds:0} per s): {kind} dropped as no WebRTC " +
                    $"kind, {peer} as no known peer; routes {host.Instance.Driver.RouteCount}";
            }
            finally { foreach (var s in sockets) s.Dispose(); }
        });
    }

    private static byte[] BindingRequest(string username, StunKey key, Random random)
    {
        var buffer = new byte[256];
        var id = new byte[12];
        random.NextBytes(id);
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, id);
        w.AddString(StunAttributeType.Username, username);
        w.AddUInt32(StunAttributeType.Priority, 1_853_824_767);
        w.AddUInt64(StunAttributeType.IceControlling, (ulong)random.NextInt64());
        w.AddMessageIntegrity(key);
        w.AddFingerprint();
        return w.Written.ToArray();
    }

    private static string RandomIceString(Random random, int length)
    {
        const string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        return string.Create(length, random, (span, r) => { for (var i = 0; i < span.Length; i++) span[i] = chars[r.Next(chars.Length)]; });
    }

    [Fact]
    public async Task UnauthenticatedStunRequestsLeaveNoRoute()
    {
        const int Count = 200_000, Sources = 1000, LiveEvery = 10;
        await RunAsync("stun", new EchoServerSettings(), async host =>
        {
            var session = host.Server.Sessions.Single();
            var liveUfrag = host.Instance.WebRtc.LocalIceUfrag(session.Id)!;
            var random = new Random(15);
            // 2,000 distinct requests, sent in turn: random usernames, and every tenth with the live session's ufrag and
            // an integrity computed with a wrong password.
            var datagrams = new List<byte[]>();
            for (var i = 0; i < 2000; i++)
            {
                var key = StunKey.ShortTerm(RandomIceString(random, 24));
                var username = i % LiveEvery == 0 ? liveUfrag + ":" + RandomIceString(random, 4) : RandomIceString(random, 8) + ":"
                    + RandomIceString(random, 4);
                datagrams.Add(BindingRequest(username, key, random));
            }
            var driver = host.Instance.Driver;
            var c = driver.Counters;
            var routes0 = driver.RouteCount;
            var (peer0, unrouted0, errors0) = (c.DroppedUnknownPeer, c.UnroutedRequests, c.PeerErrors);
            var sockets = Enumerable.Range(0, Sources).Select(i => FloodKit.UdpFrom(FloodKit.Source(100 + i))).ToArray();
            try
            {
                // Socket i % 1000 sends datagram i % 2000: the live-ufrag ones come from 100 of the sources.
                var took = await SendPacedAsync(host, sockets, datagrams, Count);
                var (peer, unrouted) = (c.DroppedUnknownPeer - peer0, c.UnroutedRequests - unrouted0);
                Assert.Equal(Count / LiveEvery, unrouted);                    // handed to the live session's agent, which refused them
                Assert.Equal(Count - Count / LiveEvery, peer);                // no peer of that ufrag: dropped at once
                Assert.Equal(routes0, driver.RouteCount);                     // and not one route learnt
                Assert.Equal(errors0, c.PeerErrors);
                return $"{Count} Binding requests from {Sources} sources in {took.TotalSeconds:0.0} s ({Count / took.TotalSeconds:0} per s): {peer} " +
                       $"with an unknown ufrag dropped, " +
                       $"{unrouted} with the live ufrag and a wrong integrity handed to its agent unrouted; routes {routes0} before, {driver.RouteCount} after";
            }
            finally { foreach (var s in sockets) s.Dispose(); }
        });
    }

    /// <summary>A DTLS 1.2 ClientHello record (RFC 6347 section 4.2.2) with a random client random.</summary>
    private static byte[] ClientHello(Random random)
    {
        var body = new List<byte> { 0xFE, 0xFD };                                // client_version DTLS 1.2
        var r = new byte[32];
        random.NextBytes(r);
        body.AddRange(r);                                                         // random
        body.Add(0);                                                              // session_id
        body.Add(0);                                                              // cookie
        body.AddRange([0, 4, 0xC0, 0x2B, 0xC0, 0x2F]);                           // cipher_suites: ECDHE_ECDSA/RSA_AES_128_GCM
        body.AddRange([1, 0]);                                                    // compression: null
        byte[] extensions = [0, 10, 0, 4, 0, 2, 0, 23, 0, 14, 0, 5, 0, 2, 0, 1, 0];   // supported_groups P-256; use_srtp
        body.AddRange([0, (byte)extensions.Length]);
        body.AddRange(extensions);
        var n = body.Count;
        var handshake = new List<byte> { 1, 0, (byte)(n >> 8), (byte)n, 0, 0, 0, 0, 0, 0, (byte)(n >> 8), (byte)n };
        handshake.AddRange(body);
        var m = handshake.Count;
        var record = new List<byte> { 22, 0xFE, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, (byte)(m >> 8), (byte)m };
        record.AddRange(handshake);
        return [.. record];
    }

    [Fact]
    public async Task DtlsClientHellosFromAThousandPortsLeaveNothing()
    {
        const int Count = 100_000, Ports = 1000;
        await RunAsync("dtls-clienthello", new EchoServerSettings(), async host =>
        {
            var random = new Random(15);
            var datagrams = Enumerable.Range(0, 1000).Select(_ => ClientHello(random)).ToArray();
            var driver = host.Instance.Driver;
            var c = driver.Counters;
            var routes0 = driver.RouteCount;
            var (peer0, errors0) = (c.DroppedUnknownPeer, c.PeerErrors);
            // 1,000 source ports on 10 loopback addresses.
            var sockets = Enumerable.Range(0, Ports).Select(i => FloodKit.UdpFrom(FloodKit.Source(1200 + i % 10))).ToArray();
            try
            {
                var took = await SendPacedAsync(host, sockets, datagrams, Count);
                Assert.Equal(Count, c.DroppedUnknownPeer - peer0);
                Assert.Equal(errors0, c.PeerErrors);
                Assert.Equal(routes0, driver.RouteCount);
                return $"{Count} ClientHellos ({datagrams[0].Length} B) from {Ports} ports in {took.TotalSeconds:0.0} s ({Count / took.TotalSeconds:0} per " +
                    $"s): {c.DroppedUnknownPeer - peer0} dropped as no known peer; routes {driver.RouteCount}";
            }
            finally { foreach (var s in sockets) s.Dispose(); }
        });
    }

    private static string OfferWithoutCandidates() =>
        string.Join("\r\n", EdgeTestSupport.Offer.Split("\r\n").Where(l => !l.StartsWith("a=candidate:", StringComparison.Ordinal)));

    private static HttpRequestMessage Post(Uri whip, string offer)
    {
        var post = new HttpRequestMessage(HttpMethod.Post, whip) { Content = new StringContent(offer) };
        post.Content.Headers.ContentType = new MediaTypeHeaderValue("application/sdp");
        return post;
    }

    [Fact]
    public async Task WhipOffersThatNeverDoIceAreRefusedByThePerAddressLimitAndTheirSlotsComeBack()
    {
        const int Count = 10_000, PerClient = 10, Workers = 8;
        var connectTimeout = TimeSpan.FromSeconds(3);
        var settings = new EchoServerSettings();
        settings.Sessions.HealthCheckInterval = TimeSpan.FromMilliseconds(100);
        settings.Sessions.Limits =
            settings.Sessions.Limits with { MaxSessions = 100, MaxSessionsPerClient = PerClient, MaxPendingSessions = 20, ConnectTimeout = connectTimeout };
        var lastPost = Stopwatch.StartNew();
        using var handler = FloodKit.HandlerFrom(FloodKit.Source(2000));
        using var http = new HttpClient(handler);
        var offer = OfferWithoutCandidates();
        await RunAsync("whip-offers", settings, async host =>
        {
            // First, one at a time: the per-address limit answers 429 once the address holds its 10.
            var first = new List<int>();
            for (var i = 0; i < 2 * PerClient; i++)
            {
                using var r = await http.SendAsync(Post(host.Whip, offer));
                first.Add((int)r.StatusCode);
                if (r.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    Assert.Contains("client_limit_reached", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
                    Assert.NotNull(EdgeTestSupport.Header(r, "Retry-After"));
                }
            }
            Assert.Equal(Enumerable.Repeat(201, PerClient).Concat(Enumerable.Repeat(429, PerClient)), first);

            // Then the rest, eight at a time.
            var statuses = new ConcurrentDictionary<int, int>();
            var next = 2 * PerClient;
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => Task.Run(async () =>
            {
                while (Interlocked.Increment(ref next) <= Count && clock.Elapsed < FloodLimit)
                {
                    using var r = await http.SendAsync(Post(host.Whip, offer));
                    statuses.AddOrUpdate((int)r.StatusCode, 1, (_, n) => n + 1);
                }
            })));
            lastPost.Restart();
            var took = clock.Elapsed;
            var sent = statuses.Values.Sum();
            Assert.Equal(Count - 2 * PerClient, sent);
            // 429 for the address over its limit; 201 only for places the connect timeout gave back meanwhile (none
            // when the flood is over within the timeout).
            Assert.Contains(429, statuses.Keys);
            Assert.All(statuses.Keys, status => Assert.Contains(status, new[] { 201, 429 }));
            Assert.True(host.Server.Reserved <= 1 + PerClient, $"{host.Server.Reserved} places held");
            return $"{Count} offers from one address in {took.TotalSeconds:0.0} s ({sent / took.TotalSeconds:0} per s) after the first 20: " +
                   string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Value} x {s.Key}"))
                       + " (the first 20 one at a time: 10 x 201, then 429 client_limit_reached)";
        }, async host =>
        {
            // The connect timeout gives the places back: only the legitimate session holds one.
            var until = Stopwatch.StartNew();
            while (host.Server.Reserved > 1 && until.Elapsed < Patience) await Task.Delay(10);
            var back = lastPost.Elapsed;
            Assert.Equal(1, host.Server.Reserved);
            using var again = await http.SendAsync(Post(host.Whip, offer));
            Assert.Equal(HttpStatusCode.Created, again.StatusCode);
            while (host.Server.Reserved > 1 && until.Elapsed < 2 * Patience) await Task.Delay(10);
            Assert.Equal(1, host.Server.Reserved);
            return $"every place back {back.TotalMilliseconds:0} ms after the last offer (connect timeout {connectTimeout.TotalSeconds:0} s); a new " +
                $"offer from the address then 201";
        });
    }

    [Fact]
    public async Task IdleWebSocketsOnSignalAndWsHoldNoPlaceForever()
    {
        const int PerEndpoint = 1000, PerClient = 10, Workers = 16;
        var settings = new EchoServerSettings();
        settings.Sessions.HealthCheckInterval = TimeSpan.FromMilliseconds(100);
        // Signaling sockets per client: all 1000 from one address are let in here (the per-client cap has its own
        // test), so the idle ones are shown to go by the keepalive.
        settings.Sessions.Limits = settings.Sessions.Limits with
        {
            MaxSessions = 100,
            MaxSessionsPerClient = PerClient,
            MaxPendingSessions = 20,
            IdleLimit = TimeSpan.FromSeconds(2),
            MaxSignalingSocketsPerClient = 0
        };
        settings.Sessions.Signaling =
            settings.Sessions.Signaling with { KeepAliveInterval = TimeSpan.FromSeconds(1), KeepAliveTimeout = TimeSpan.FromSeconds(1) };
        settings.Sessions.Streams =
            settings.Sessions.Streams with { WebSocketKeepAliveInterval = TimeSpan.FromMilliseconds(500), WebSocketKeepAliveTimeout = TimeSpan.FromSeconds(1) };
        using var signalHandler = FloodKit.HandlerFrom(FloodKit.Source(3000));
        using var wsHandler = FloodKit.HandlerFrom(FloodKit.Source(3001));
        using var signalInvoker = new HttpMessageInvoker(signalHandler);
        using var wsInvoker = new HttpMessageInvoker(wsHandler);
        var sockets = new ConcurrentBag<(string Endpoint, ClientWebSocket Socket)>();
        try
        {
            await RunAsync("idle-websockets", settings, async host =>
            {
                var refused = new ConcurrentDictionary<string, int>();
                var closes = new ConcurrentDictionary<string, int>();
                var readers = new ConcurrentBag<Task>();
                var clock = Stopwatch.StartNew();
                async Task ReadUntilCloseAsync(string endpoint, ClientWebSocket socket)
                {
                    var buffer = new byte[4096];
                    using var bound = new CancellationTokenSource(Patience);
                    try
                    {
                        for (var i = 0; i < 1000; i++)
                        {
                            var r = await socket.ReceiveAsync(buffer, bound.Token);
                            if (r.MessageType != WebSocketMessageType.Close) continue;
                            closes.AddOrUpdate($"{endpoint} {(int?)socket.CloseStatus} {socket.CloseStatusDescription}", 1, (_, n) => n + 1);
                            return;
                        }
                    }
                    catch (Exception e) when (e is WebSocketException or OperationCanceledException)
                    {
                        closes.AddOrUpdate($"{endpoint} {e.GetType().Name} {(e as WebSocketException)?.WebSocketErrorCode}", 1, (_, n) => n + 1);
                    }
                }
                async Task OpenAsync(string endpoint, Uri uri, HttpMessageInvoker invoker, int count)
                {
                    var left = count;
                    await Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => Task.Run(async () =>
                    {
                        while (Interlocked.Decrement(ref left) >= 0 && clock.Elapsed < FloodLimit)
                        {
                            var ws = new ClientWebSocket();
                            ws.Options.CollectHttpResponseDetails = true;
                            try
                            {
                                using var bound = new CancellationTokenSource(Patience);
                                await ws.ConnectAsync(uri, invoker, bound.Token);
                                sockets.Add((endpoint, ws));
                                readers.Add(Task.Run(() => ReadUntilCloseAsync(endpoint, ws)));
                            }
                            catch (WebSocketException)
                            {
                                refused.AddOrUpdate($"{endpoint} {(int)ws.HttpStatusCode}", 1, (_, n) => n + 1);
                                ws.Dispose();
                            }
                        }
                    })));
                }
                await Task.WhenAll(OpenAsync("/signal", host.Signal, signalInvoker, PerEndpoint), OpenAsync("/ws", host.Ws, wsInvoker, PerEndpoint));
                var opened = clock.Elapsed;
                var signalOpen = sockets.Count(s => s.Endpoint == "/signal");
                var wsOpen = sockets.Count(s => s.Endpoint == "/ws");
                Assert.Equal(PerEndpoint, signalOpen);                                  // no session is held by a signaling socket without an offer
                // Each /ws socket is a session: 10 per address at a time (the idle limit frees places while the rest
                // are still being opened, so a few more than 10 get in over the whole run).
                Assert.InRange(wsOpen, PerClient, PerEndpoint / 2);
                Assert.Equal(PerEndpoint - wsOpen, refused.GetValueOrDefault("/ws 429"));
                Assert.True(host.Server.Reserved <= 1 + PerClient, $"{host.Server.Reserved} places held");

                // Nobody sends anything; each socket is read from its connect on (so the close is seen, and /ws answers
                // the server's WebSocket pings): /signal closes at its keepalive (a JSON ping, no pong), /ws at its idle limit.
                await Task.WhenAll(readers);
                var closed = clock.Elapsed;
                var summary = string.Join(", ", closes.OrderBy(c => c.Key).Select(c => $"{c.Value} x {c.Key}"));
                output.WriteLine("closes: " + summary);
                // /signal: 1008 at the keepalive. /ws: 1008 at the idle limit, or, should a reader be late to answer the
                // server's ping on a loaded machine, the connection aborted at the keepalive timeout.
                Assert.True(sockets.Count(s => s.Endpoint == "/signal") == closes.Where(c => c.Key.StartsWith("/signal 1008 ", StringComparison.Ordinal))
                    .Sum(c => c.Value), summary);
                Assert.True(sockets.Count(s => s.Endpoint == "/ws") == closes.Where(c => c.Key.StartsWith("/ws 1008 ", StringComparison.Ordinal)
                    || c.Key == "/ws WebSocketException ConnectionClosedPrematurely").Sum(c => c.Value), summary);
                return $"{2 * PerEndpoint} WebSockets opened in {opened.TotalSeconds:0.0} s: /signal {signalOpen} open, /ws {wsOpen} open and " +
                       string.Join(", ", refused.Select(r => $"{r.Value} x {r.Key}")) + $"; all closed by {closed.TotalSeconds:0.0} s: {summary}";
            }, async host =>
            {
                var until = Stopwatch.StartNew();
                while (host.Server.Reserved > 1 && until.Elapsed < Patience) await Task.Delay(10);
                Assert.Equal(1, host.Server.Reserved);
                foreach (var s in sockets) s.Socket.Dispose();
                sockets.Clear();
                // The places came back: a /ws socket from the same address is admitted again.
                using var again = new ClientWebSocket();
                await again.ConnectAsync(host.Ws, wsInvoker, new CancellationTokenSource(Patience).Token);
                Assert.Equal(WebSocketState.Open, again.State);
                await again.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", new CancellationTokenSource(Patience).Token);
                while (host.Server.Reserved > 1 && until.Elapsed < 2 * Patience) await Task.Delay(10);
                Assert.Equal(1, host.Server.Reserved);
                return "every place back, a new /ws socket from the address admitted";
            });
        }
        finally { foreach (var s in sockets) s.Socket.Dispose(); }
    }

    [Fact]
    public async Task OversizeBodiesGet413AndOversizeMessagesClose1009AndNothingElseIsDisturbed()
    {
        const int Bodies = 100, Messages = 50;
        using var handler = FloodKit.HandlerFrom(FloodKit.Source(4000));
        using var http = new HttpClient(handler);
        using var invoker = new HttpMessageInvoker(handler);
        await RunAsync("oversize", new EchoServerSettings(), async host =>
        {
            var clock = Stopwatch.StartNew();
            var big = new string('v', 1 << 20);
            var chunk = Encoding.UTF8.GetBytes(new string('x', 64 * 1024));
            async Task<string> RoundAsync()
            {
                // WHIP bodies of 1 MiB (the limit is 64 KiB), announced by Content-Length.
                int tooLarge = 0, closedAfter = 0;
                for (var i = 0; i < Bodies; i++)
                {
                    using var r = await http.SendAsync(Post(host.Whip, big));
                    if (r.StatusCode == HttpStatusCode.RequestEntityTooLarge) tooLarge++;
                    if (r.Headers.ConnectionClose == true) closedAfter++;
                }
                Assert.Equal(Bodies, tooLarge);
                // Every 413 closes its connection: the rest of the body is not drained (before, Kestrel kept the
                // connection and read the unread megabyte).
                Assert.Equal(Bodies, closedAfter);

                // 1 MiB messages on /signal (limit 64 KiB) and 2 MiB on /ws (limit 1 MiB): close 1009.
                var closes = new Dictionary<string, int>();
                foreach (var (endpoint, uri, size) in new[] { ("/signal", host.Signal, 1 << 20), ("/ws", host.Ws, 2 << 20) })
                {
                    for (var i = 0; i < Messages; i++)
                    {
                        using var ws = new ClientWebSocket();
                        using var bound = new CancellationTokenSource(Patience);
                        await ws.ConnectAsync(uri, invoker, bound.Token);
                        try
                        {
                            for (var sent = 0; sent < size; sent += chunk.Length)
                                await ws.SendAsync(chunk, WebSocketMessageType.Text, sent + chunk.Length >= size, bound.Token);
                        }
                        catch (WebSocketException) { }   // the server may close before it has all of it
                        var key = endpoint + " ";
                        try
                        {
                            var buffer = new byte[4096];
                            for (var j = 0; j < 100; j++)
                            {
                                var r = await ws.ReceiveAsync(buffer, bound.Token);
                                if (r.MessageType == WebSocketMessageType.Close) break;
                            }
                            key += (int?)ws.CloseStatus;
                        }
                        catch (WebSocketException e) { key += e.WebSocketErrorCode; }
                        closes[key] = closes.GetValueOrDefault(key) + 1;
                    }
                }
                Assert.Equal(Messages, closes.GetValueOrDefault("/signal 1009"));
                Assert.Equal(Messages, closes.GetValueOrDefault("/ws 1009"));
                var until = Stopwatch.StartNew();   // the last /ws session's teardown may still be running
                while (host.Server.Reserved > 1 && until.Elapsed < Patience) await Task.Delay(10);
                Assert.Equal(1, host.Server.Reserved);
                return $"{Bodies} WHIP bodies of 1 MiB: {tooLarge} x 413 ({closedAfter} with Connection: close); {Messages} messages of 1 MiB " +
                       $"on /signal and of 2 MiB on /ws: " +
                       string.Join(", ", closes.Select(c => $"{c.Value} x {c.Key}"));
            }

            // Two rounds: what the first leaves in the heap is pooled buffers (the second round reuses them), not a leak.
            var first = await RoundAsync();
            var afterFirst = MemoryFigures.AfterFullCollect();
            await RoundAsync();
            var afterSecond = MemoryFigures.AfterFullCollect();
            Assert.True(afterSecond.Heap - afterFirst.Heap < 8L << 20,
                $"the second round added {MemoryFigures.MiB(afterSecond.Heap - afterFirst.Heap)} MiB to the heap");
            return $"two rounds, each {first}; in {clock.Elapsed.TotalSeconds:0.0} s; heap after the first round {MemoryFigures.MiB(afterFirst.Heap)} MiB, " +
                $"after the second {MemoryFigures.MiB(afterSecond.Heap)} MiB";
        }, heapSlack: 48L << 20);   // the buffer pools (ArrayPool, Kestrel's) keep about 20 MiB of the first round's megabyte
                                    // buffers; the second round reuses them
    }
}
