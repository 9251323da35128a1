using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using Microsoft.Extensions.Logging;
using Transport.Ice;
using Transport.Ice.Turn;
using Transport.Samples.EchoServer;
using Transport.Streaming.Hosting;
using Transport.Streaming.Io;
using Transport.Streaming.Tests.Hosting;
using Transport.Streaming.WebRtc;
using Transport.TestKit;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// The ICE restart onto a relay when the direct path dies (issue 20), end to end with our own signaling: our WHIP
/// client and our echo server (the main program, in this process) in two network namespaces joined by a veth pair
/// (10.83.N.2 the client, 10.83.N.1 the server), coturn in the server's namespace on an address of its own
/// (10.83.N.3, UDP), reachable from both. The client has coturn as its TURN server; its direct host pair carries a
/// reliable ordered data channel with a numbered message every 10 ms, echoed. Then nftables in the client's namespace
/// drops all UDP between the client and the server's address (TCP, the WHIP signaling, still passes; coturn's address
/// is untouched). The client's connection goes Disconnected, asks for a restart, sends it as a WHIP PATCH with new
/// credentials and its relayed candidate, and the new generation selects the relayed pair: every message arrives
/// exactly once, in order; the session is never released (the restart renews its disconnected grace).
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class WhipRestartOntoRelayTests(ITestOutputHelper output)
{
    private const string Nft = "/usr/sbin/nft";

    [Fact]
    public async Task WhenTheDirectUdpPathDiesOurWhipClientRestartsIceOntoTheRelayAndNoMessageIsLost()
    {
        if (!File.Exists(Nft)) throw new InvalidOperationException($"{Nft} is missing: install the Debian package 'nftables'.");
        var subnet = $"10.83.{Random.Shared.Next(1, 250)}";
        string serverAddress = subnet + ".1", clientAddress = subnet + ".2", turnAddress = subnet + ".3";
        using var serverNs = NetworkNamespace.Create("rtc-rsrv");
        using var clientNs = NetworkNamespace.Create("rtc-rcli");
        serverNs.ConnectVeth(clientNs, serverAddress, clientAddress);
        serverNs.Exec("ip", "addr", "add", turnAddress + "/24", "dev", "veth-a");
        using var coturn = CoturnServer.StartIn(new CoturnServer.Placement(serverNs.Name, IPAddress.Parse(turnAddress),
            () => serverNs.CreateInside(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))));

        var sessions = new WebRtcSessionsOptions { UdpPort = 0, UdpAddress = serverAddress };   // no host candidate on coturn's address
        var logs = new ConcurrentQueue<(LogLevel, string)>();
        var settings = new EchoServerSettings { Urls = $"http://{serverAddress}:0", Sessions = sessions, Relay = false, TestPattern = false };
        var instance = EchoServerInNamespace.Build(serverNs, settings,
            logging => logging.AddProvider(new CapturingLoggerProvider(logs)));
        // The client's HTTP connections are made inside its namespace too.
        using var http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var socket = clientNs.CreateInside(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch { socket.Dispose(); throw; }
            },
        });
        WebRtcStreamClient? client = null;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(180));
        var sending = true;
        Task sender = Task.CompletedTask, reader = Task.CompletedTask;
        try
        {
            await instance.App.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
            var whip = new Uri(new Uri(instance.App.Urls.First()), "/whip");
            var turn = TurnServerConfig.Parse($"turn:{turnAddress}:3478?transport=udp", CoturnServer.User, CoturnServer.Password);
            client = await WebRtcStreamClient.ConnectAsync(WebRtcStreamClient.WhipAsync(http, whip), new WebRtcStreamClientOptions
            {
                CreateDriver = () => clientNs.CreateInside(() =>
                {
                    var driver = new UdpDriver();
                    driver.Bind(new IPEndPoint(IPAddress.Parse(clientAddress), 0));
                    return driver;
                }),
                TurnServers = [turn],
            }).WaitAsync(TimeSpan.FromSeconds(60));
            var id = client.Resource!.Segments[^1];

            // The numbered stream (one message every 10 ms, queued while Disconnected) and its echoes, with their times.
            var echoes = new ConcurrentQueue<(int N, TimeSpan At)>();
            var sent = 0;
            var c = client;
            sender = Task.Run(async () =>
            {
                while (Volatile.Read(ref sending) && !stop.IsCancellationRequested)
                {
                    await c.SendTextAsync(sent.ToString(CultureInfo.InvariantCulture), stop.Token);
                    Interlocked.Increment(ref sent);
                    await Task.Delay(10, stop.Token);
                }
            });
            reader = Task.Run(async () =>
            {
                try
                {
                    await foreach (var o in c.Observations.ReadAllAsync(stop.Token))
                        if (o.Kind == "data") echoes.Enqueue((int.Parse(o.Text, CultureInfo.InvariantCulture), o.At));
                }
                catch (OperationCanceledException) { }
            });
            await WaitUntil(() => echoes.Count >= 100, TimeSpan.FromSeconds(30), "100 echoes on the direct path");
            await WaitUntil(() => client.LocalCandidates.Any(x => x.Type == IceCandidateType.Relayed), TimeSpan.FromSeconds(30),
                "the client's relayed candidate");
            SelectedIcePair? before = null;
            await WaitUntil(async () => (before = await client.PeerConnection.GetSelectedPairAsync()) is not null, TimeSpan.FromSeconds(30), "a selected pair");
            Assert.Equal(IceCandidateType.Host, before!.Local.Type);
            Assert.Equal(IPAddress.Parse(serverAddress), before.Remote.Address.Address);
            var relayed = client.LocalCandidates.First(x => x.Type == IceCandidateType.Relayed);
            // A stream that has flowed for a while (ICE's receive silence, 2.5 s, is armed only after that long of data).
            await WaitUntil(() => echoes.Count >= 400 && client.Now - echoes.First().At >= TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(30),
                "4 s of echoes on the direct path");
            output.WriteLine($"direct pair {before.Local.Address} -> {before.Remote.Address}; relayed candidate {relayed.Address}");

            // The cut: all UDP between the client and the server's address, both ways (not TCP, not coturn's address).
            var rules = Path.Combine(Path.GetTempPath(), $"{clientNs.Name}-cut.nft");
            await File.WriteAllTextAsync(rules, $$"""
                table inet cut {
                  chain out { type filter hook output priority 0; policy accept; ip daddr {{serverAddress}} meta l4proto udp counter drop; }
                  chain in { type filter hook input priority 0; policy accept; ip saddr {{serverAddress}} meta l4proto udp counter drop; }
                }
                """);
            var cutAt = client.Now;
            try { clientNs.Exec(Nft, "-f", rules); }
            finally { File.Delete(rules); }

            // Back on the relayed pair through the restart, and the stream flowing again.
            var after = TimeSpan.FromMilliseconds(100);
            SelectedIcePair? now = null;
            try
            {
                await WaitUntil(async () => client.IceRestartsCompleted.Count > 0 &&
                    (now = await client.PeerConnection.GetSelectedPairAsync()) is { Local.Type: IceCandidateType.Relayed } &&
                    echoes.Count(e => e.At > cutAt + after) >= 100, TimeSpan.FromSeconds(60), "the relayed pair after the restart, 100 echoes on it");
            }
            catch (TimeoutException)
            {
                output.WriteLine(await client.PeerConnection.DescribeIceAsync());
                output.WriteLine("attempts: " + string.Join("; ", client.IceRestartAttempts));
                output.WriteLine(NftCounters(clientNs));
                foreach (var (level, message) in logs) output.WriteLine($"{level}: {message}");
                output.WriteLine(coturn.Output);
                throw;
            }
            var resumed = echoes.First(e => e.At > cutAt + after).At - cutAt;
            // The server's side of it: its pair in use goes to the client's relayed address (its health snapshot).
            var relayedAddress = relayed.Address.ToString();
            await WaitUntil(
                () => instance.Server.Find(id)?.GetHealth().Connection.SelectedCandidatePair?.EndsWith(relayedAddress, StringComparison.Ordinal) == true,
                TimeSpan.FromSeconds(30), "the server's pair to the client's relayed address");
            Volatile.Write(ref sending, false);
            await sender.WaitAsync(TimeSpan.FromSeconds(30));
            var total = Volatile.Read(ref sent);
            await WaitUntil(() => echoes.Count >= total, TimeSpan.FromSeconds(60), $"all {total} echoes");

            // Every message exactly once, in order; one restart, asked because the direct pair died, onto the relay.
            Assert.Equal(Enumerable.Range(0, total), echoes.Select(e => e.N));
            var attempt = Assert.Single(client.IceRestartAttempts);
            Assert.Equal(WhipIceRestartOutcome.Restarted, attempt.Outcome);
            Assert.Contains("the direct pair", attempt.Reason, StringComparison.Ordinal);
            Assert.Contains("relays are configured", attempt.Reason, StringComparison.Ordinal);
            var completed = Assert.Single(client.IceRestartsCompleted);
            Assert.Equal(IceCandidateType.Relayed, completed.Local.Type);
            Assert.Equal(relayed.Address, now!.Local.Address);
            Assert.Equal(IceCandidateType.Relayed, (await client.PeerConnection.GetSelectedPairAsync())!.Local.Type);
            Assert.Equal(ConnectionState.Connected, client.PeerConnection.State);
            Assert.NotNull(instance.Server.Find(id));   // the session was kept through the outage
            Assert.Equal((1, 0), (client.CandidatesTrickled, client.TrickleFailures));   // the relayed candidate, after the offer
            Assert.InRange(resumed, TimeSpan.Zero, TimeSpan.FromSeconds(30));
            output.WriteLine($"cut -> restart asked (Disconnected) {(attempt.At - cutAt).TotalSeconds:0.00} s; PATCH answered and applied " +
                $"{attempt.Took!.Value.TotalMilliseconds:0} ms later; relayed pair selected {completed.Elapsed.TotalMilliseconds:0} ms after the restart " +
                $"began; data flowing again {resumed.TotalSeconds:0.00} s after the cut; {total} messages, each echoed once, in order");
            output.WriteLine("restart asked because " + attempt.Reason);
            output.WriteLine(NftCounters(clientNs));
        }
        finally
        {
            Volatile.Write(ref sending, false);
            await stop.CancelAsync();
            // The sender ends with the cancellation (or with the connection, if it failed: the test has failed then).
            try { await Task.WhenAll(sender, reader).WaitAsync(TimeSpan.FromSeconds(10)); }
            catch (Exception e) { output.WriteLine("sender/reader ended with " + e.GetType().Name); }
            if (client is not null) await client.DisposeAsync();
            await EchoServerInNamespace.StopAsync(instance, output);
        }
    }

    // Polls a condition every 50 ms (bounded by the limit): the connections run on their own threads.
    private static Task WaitUntil(Func<bool> condition, TimeSpan limit, string what) => WaitUntil(() => Task.FromResult(condition()), limit, what);

    private static async Task WaitUntil(Func<Task<bool>> condition, TimeSpan limit, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            if (deadline.Elapsed > limit) throw new TimeoutException($"{what}: not within {limit.TotalSeconds} s");
            await Task.Delay(50);
        }
    }

    private static string NftCounters(NetworkNamespace ns)
    {
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "netns", "exec", ns.Name, Nft, "list", "table", "inet", "cut" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var text = p.StandardOutput.ReadToEnd();
        p.WaitForExit(10_000);
        return text;
    }
}
