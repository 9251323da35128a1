using System.Net;
using System.Net.Sockets;
using Transport.Ice;
using Transport.Ice.Stun;
using Transport.Ice.Turn;
using Transport.Samples.EchoServer;
using Transport.Streaming.Io;
using Transport.Streaming.Sessions;
using Transport.Streaming.WebRtc;
using Transport.TestKit;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Sessions;

/// <summary>
/// The server's own candidates beyond its host addresses, over real UDP on 127.0.0.1: a 1:1 NAT's public address,
/// server-reflexive candidates from a STUN server every session shares (its answers routed to the right session
/// through the one UDP port), and a relayed candidate from coturn that the client connects through.
/// </summary>
public sealed class ServerCandidatesTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private static WebRtcTransportOptions WithPeer(Func<PeerConnectionOptions, PeerConnectionOptions> change) =>
        new() { PeerConnection = change(new PeerConnectionOptions()) };

    private static async Task<(WebRtcStreamClient Client, string Answer, StreamSession Session)> ConnectAsync(WebRtcSessionTransportTests.Rig rig)
    {
        string? answer = null;
        StreamSession? session = null;
        var client = await WebRtcStreamClient.ConnectAsync(async (c, offer, ct) =>
        {
            answer = await rig.Signal(s => session = s)(c, offer, ct);
            return answer;
        }).WaitAsync(Patience);
        return (client, answer!, session!);
    }

    private static async Task EchoAsync(WebRtcStreamClient client, string text)
    {
        await client.SendTextAsync(text);
        var seen = await client.NextAsync(Patience);
        Assert.Equal(("data", text), (seen.Kind, seen.Text));
    }

    private static string[] Candidates(string sdp) => sdp.Split("\r\n").Where(l => l.StartsWith("a=candidate:", StringComparison.Ordinal)).ToArray();

    [Fact]
    public async Task APublicAddressIsAnnouncedAsServerReflexiveOfTheHostAndTheEchoStillWorks()
    {
        await using var rig = WebRtcSessionTransportTests.Rig.Start(() => new LambdaHandler(WebRtcSessionTransportTests.EchoUntilBye),
            transport: WithPeer(p => p with { PublicAddresses = [PublicAddress.Parse("203.0.113.7")] }));
        var port = rig.Driver.LocalEndPoints[0].Port;
        var (client, answer, _) = await ConnectAsync(rig);
        await using (client)
        {
            output.WriteLine(string.Join("\n", Candidates(answer)));
            Assert.Contains(Candidates(answer), c => c.EndsWith($" 203.0.113.7 {port} typ srflx raddr 127.0.0.1 rport {port}", StringComparison.Ordinal));
            Assert.Contains(Candidates(answer), c => c.EndsWith($" 127.0.0.1 {port} typ host", StringComparison.Ordinal));
            await EchoAsync(client, "through the host candidate");
        }
    }

    [Fact]
    public async Task EverySessionOnOneUdpPortGetsItsServerReflexiveCandidateFromTheStunServerTheyShare()
    {
        // A STUN server that answers as if a NAT mapped us to 198.51.100.1 (same port). Before answers were routed by
        // transaction id, the first session owned the route from the server and the others' answers were lost: their
        // gathering ran into the timeout and their answers carried no srflx candidate.
        using var stun = FakeStunServer.Start(IPAddress.Parse("198.51.100.1"));
        await using var rig = WebRtcSessionTransportTests.Rig.Start(() => new LambdaHandler(WebRtcSessionTransportTests.EchoUntilBye),
            transport: WithPeer(p => p with { Ice = p.Ice with { StunServers = [stun.EndPoint] } }) with { GatheringTimeout = TimeSpan.FromSeconds(15) });
        var port = rig.Driver.LocalEndPoints[0].Port;
        var clients = new List<WebRtcStreamClient>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var started = DateTime.UtcNow;
                var (client, answer, _) = await ConnectAsync(rig);
                clients.Add(client);
                var took = DateTime.UtcNow - started;
                output.WriteLine($"session {i}: {took.TotalMilliseconds:0} ms; " + string.Join(" | ", Candidates(answer)));
                Assert.Contains(Candidates(answer), c => c.EndsWith($" 198.51.100.1 {port} typ srflx raddr 127.0.0.1 rport {port}", StringComparison.Ordinal));
            }
            for (var i = 0; i < clients.Count; i++) await EchoAsync(clients[i], "client " + i);
            Assert.InRange(stun.Answered, 3, 3 * 7); // each session's gathering request (retransmissions at most)
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task WithCoturnAndTheRelayOnlyPolicyTheAnswerCarriesOnlyARelayedCandidateAndTheClientConnectsThroughIt()
    {
        using var coturn = CoturnServer.Start();
        var turn = TurnServerConfig.Parse($"turn:127.0.0.1:{coturn.EndPoint.Port}", CoturnServer.User, CoturnServer.Password);
        await using var rig = WebRtcSessionTransportTests.Rig.Start(() => new LambdaHandler(WebRtcSessionTransportTests.EchoUntilBye),
            transport: WithPeer(p => p with { Ice = p.Ice with { TurnServers = [turn], TransportPolicy = IceTransportPolicy.Relay } }));
        var (client, answer, session) = await ConnectAsync(rig);
        await using (client)
        {
            var candidates = Candidates(answer);
            output.WriteLine(string.Join("\n", candidates));
            Assert.NotEmpty(candidates);
            Assert.All(candidates, c => Assert.Contains(" typ relay raddr 127.0.0.1 ", c, StringComparison.Ordinal));
            await EchoAsync(client, "through coturn");
            // The client (controlling) nominates after its nomination timeout; data flowed on the valid pair before.
            var pc = ((WebRtcSessionTransport)session.Transport).PeerConnection;
            SelectedIcePair? pair = null;
            for (var i = 0; i < 200 && (pair = await pc.GetSelectedPairAsync()) is null; i++) await Task.Delay(50);
            Assert.NotNull(pair);
            Assert.Equal(IceCandidateType.Relayed, pair.Local.Type);
            Assert.InRange(pair.Local.Address.Port, coturn.MinRelayPort, coturn.MaxRelayPort);
        }
    }

    [Fact]
    public async Task ATurnServerGivesOneRelayPerUdpPortAndTheNextSessionGoesOnWithItsHostCandidate()
    {
        // A TURN allocation is keyed by the client's 5-tuple (RFC 8656 section 2.2): every session on one UDP port
        // shares it, so the server refuses a second allocation (437) while the first lives. The second session's
        // gathering ends at once with that error (its answer is not held for the timeout) and it connects on its host candidate.
        using var coturn = CoturnServer.Start();
        var turn = TurnServerConfig.Parse($"turn:127.0.0.1:{coturn.EndPoint.Port}", CoturnServer.User, CoturnServer.Password);
        await using var rig = WebRtcSessionTransportTests.Rig.Start(() => new LambdaHandler(WebRtcSessionTransportTests.EchoUntilBye),
            transport: WithPeer(p => p with { Ice = p.Ice with { TurnServers = [turn] } }) with { GatheringTimeout = TimeSpan.FromSeconds(15) });
        var (first, firstAnswer, _) = await ConnectAsync(rig);
        await using (first)
        {
            var started = DateTime.UtcNow;
            var (second, secondAnswer, _) = await ConnectAsync(rig);
            await using (second)
            {
                var took = DateTime.UtcNow - started;
                output.WriteLine($"first: {string.Join(" | ", Candidates(firstAnswer))}\nsecond ({took.TotalMilliseconds:0} ms): " +
                    $"{string.Join(" | ", Candidates(secondAnswer))}");
                Assert.Contains(Candidates(firstAnswer), c => c.Contains(" typ relay ", StringComparison.Ordinal));
                Assert.DoesNotContain(Candidates(secondAnswer), c => c.Contains(" typ relay ", StringComparison.Ordinal));
                Assert.True(took < TimeSpan.FromSeconds(10), $"the second answer took {took.TotalMilliseconds:0} ms");
                await EchoAsync(first, "first");
                await EchoAsync(second, "second");
            }
        }
    }

    [Fact]
    public void CandidatesGatheredLaterAreAddedToEverySectionOfTheAnswerThatIsNotRejected()
    {
        const string sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n" +
            "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\nm=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\n" +
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n";
        var relay = "candidate:2 1 udp 16777215 127.0.0.1 6000 typ relay raddr 127.0.0.1 rport 5000";
        var result = WebRtcSessions.WithCandidates(sdp, ["candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", relay]);
        var sections = result.Split("\r\nm=");
        Assert.Contains("a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=" + relay, sections[1], StringComparison.Ordinal);
        Assert.DoesNotContain("typ relay", sections[2], StringComparison.Ordinal);
        Assert.Contains("a=" + relay + "\r\na=end-of-candidates", sections[3], StringComparison.Ordinal);
        Assert.Equal(2, result.Split("\r\n").Count(l => l == "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"));
        Assert.EndsWith("\r\n", result, StringComparison.Ordinal);
    }

    /// <summary>A STUN server on 127.0.0.1 that answers Binding requests with a fixed mapped address (a NAT's), on a thread of its own.</summary>
    private sealed class FakeStunServer : IDisposable
    {
        private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        private readonly Thread _thread;
        private readonly IPAddress _mapped;
        private int _answered;

        private FakeStunServer(IPAddress mapped)
        {
            _mapped = mapped;
            _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _thread = new Thread(Run) { IsBackground = true, Name = "fake STUN server" };
        }

        public IPEndPoint EndPoint => (IPEndPoint)_socket.LocalEndPoint!;
        public int Answered => Volatile.Read(ref _answered);

        public static FakeStunServer Start(IPAddress mapped)
        {
            var server = new FakeStunServer(mapped);
            server._thread.Start();
            return server;
        }

        private void Run()
        {
            var buffer = new byte[2048];
            var reply = new byte[256];
            while (true)
            {
                EndPoint from = new IPEndPoint(IPAddress.Any, 0);
                int n;
                try { n = _socket.ReceiveFrom(buffer, ref from); }
                catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
                if (n < 20 || buffer[0] != 0 || buffer[1] != 1) continue; // Binding requests only
                var source = (IPEndPoint)from;
                var w = new StunMessageWriter(reply, StunMessageType.BindingSuccess, buffer.AsSpan(8, 12));
                w.AddXorAddress(StunAttributeType.XorMappedAddress, new IPEndPoint(_mapped, source.Port));
                w.AddFingerprint();
                _socket.SendTo(reply.AsSpan(0, w.Length), SocketFlags.None, source);
                Interlocked.Increment(ref _answered);
            }
        }

        public void Dispose()
        {
            _socket.Dispose();
            _thread.Join(TimeSpan.FromSeconds(5));
        }
    }
}
