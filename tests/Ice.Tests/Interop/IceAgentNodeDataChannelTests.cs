using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit.Abstractions;
using Transport.TestKit;

namespace Transport.Ice.Tests.Interop;

/// <summary>
/// Our agent against an independent ICE implementation: libjuice inside libdatachannel (npm node-datachannel
/// 0.33.4, ../shared/INTEROP.md) on 127.0.0.1, in both roles: libdatachannel offers (controlling) and we answer
/// (controlled), or we offer (controlling, regular nomination) and it answers. Both sides must reach ICE
/// connected, and libjuice must answer our consent checks. Needs node 20 and npm; the package
/// is installed once into a temp directory. The node process is killed by id in Dispose.
/// </summary>
public sealed partial class IceAgentNodeDataChannelTests(ITestOutputHelper output) : IDisposable
{
    private const string PackageVersion = "0.33.4";
    private Process? _node;
    private Socket? _socket;
    private readonly BlockingCollection<string> _lines = new();
    private readonly System.Text.StringBuilder _stderr = new();

    public void Dispose()
    {
        try { if (_node is { HasExited: false }) { _node.Kill(entireProcessTree: true); _node.WaitForExit(5000); } }
        catch (InvalidOperationException) { }
        _node?.Dispose();
        _socket?.Dispose();
    }

    private static string Find(string name) => NodePackages.Find(name);

    private static string PrepareNodeDirectory()
    {
        var source = NodePackages.RepositoryPath("tests", "Ice.Tests", "Interop", "node");
        return NodePackages.Prepare("transport-ice-node-datachannel-" + PackageVersion,
            File.ReadAllText(Path.Combine(source, "package.json")), source, ["peer.mjs"]);
    }

    private static string OurDescription(IceAgent agent, IceCandidate candidate, string setup) => string.Join("\r\n",
        "v=0", "o=- 1 0 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0", "a=mid:0",
        $"a=ice-ufrag:{agent.LocalCredentials.Ufrag}", $"a=ice-pwd:{agent.LocalCredentials.Password}",
        // A placeholder fingerprint: DTLS is not under test and never starts here.
        "a=fingerprint:sha-256 " + string.Join(':', Enumerable.Repeat("AB", 32)),
        $"a=setup:{setup}", "a=sctp-port:5000", "a=" + candidate.ToSdp(), "a=end-of-candidates", "");

    [GeneratedRegex(@"a=ice-ufrag:(\S+)")] private static partial Regex Ufrag();
    [GeneratedRegex(@"a=ice-pwd:(\S+)")] private static partial Regex Pwd();

    [Theory]
    [InlineData(IceRole.Controlled)]
    [InlineData(IceRole.Controlling)]
    public void LibjuiceAndOurAgentConnectAndConsentIsAnswered(IceRole ourRole)
    {
        var dir = PrepareNodeDirectory();
        var weOffer = ourRole == IceRole.Controlling;
        var psi = new ProcessStartInfo(Find("node"), weOffer ? "peer.mjs answerer" : "peer.mjs offerer")
        {
            WorkingDirectory = dir,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        _node = Process.Start(psi)!;
        _node.OutputDataReceived += (_, e) => { if (e.Data is not null) _lines.Add(e.Data); };
        _node.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        _node.BeginOutputReadLine();
        _node.BeginErrorReadLine();

        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var local = (IPEndPoint)_socket.LocalEndPoint!;
        using var agent = new IceAgent(new IceAgentOptions
        {
            Role = ourRole,
            ConsentInterval = TimeSpan.FromSeconds(1),
            ConsentTimeout = TimeSpan.FromSeconds(3),
            DisconnectedTimeout = TimeSpan.Zero, // libjuice's own keepalive cadence is not under test
        });
        var ourCandidate = agent.AddHostCandidate(local);
        var clock = Stopwatch.StartNew();
        var nodeIce = new List<string>();

        void HandleLine(string line)
        {
            using var json = JsonDocument.Parse(line);
            var kind = json.RootElement.GetProperty("kind").GetString();
            switch (kind)
            {
                case "description":
                    var sdp = json.RootElement.GetProperty("sdp").GetString()!;
                    agent.SetRemoteCredentials(new IceCredentials(Ufrag().Match(sdp).Groups[1].Value, Pwd().Match(sdp).Groups[1].Value), clock.Elapsed);
                    foreach (var l in sdp.Split("\r\n"))
                        if (IceCandidate.TryParse(l, out var c)) agent.AddRemoteCandidate(c, clock.Elapsed);
                    if (weOffer) break; // that was libdatachannel's answer
                    var answer = OurDescription(agent, ourCandidate, "active");
                    _node.StandardInput.WriteLine(JsonSerializer.Serialize(new { kind = "answer", sdp = answer }));
                    _node.StandardInput.Flush();
                    break;
                case "candidate":
                    if (IceCandidate.TryParse(json.RootElement.GetProperty("candidate").GetString()!, out var trickled))
                        agent.AddRemoteCandidate(trickled, clock.Elapsed);
                    break;
                case "ice":
                    nodeIce.Add(json.RootElement.GetProperty("state").GetString()!);
                    break;
            }
        }

        if (weOffer)
        {
            _node.StandardInput.WriteLine(JsonSerializer.Serialize(new { kind = "offer", sdp = OurDescription(agent, ourCandidate, "actpass") }));
            _node.StandardInput.Flush();
        }
        var buffer = new byte[1500];
        bool Pump(Func<bool> until, TimeSpan limit)
        {
            var deadline = clock.Elapsed + limit;
            while (clock.Elapsed < deadline)
            {
                while (_lines.TryTake(out var line)) HandleLine(line);
                if (until()) return true;
                var now = clock.Elapsed;
                if (agent.PollTimeout() is { } due && due <= now) agent.HandleTimeout(now);
                while (agent.TryPollTransmit(buffer, out var length, out var t)) _socket.SendTo(buffer.AsSpan(0, length), SocketFlags.None, t.Remote);
                if (_socket.Poll(2000, SelectMode.SelectRead))
                {
                    while (_socket.Available > 0)
                    {
                        EndPoint from = new IPEndPoint(IPAddress.Any, 0);
                        var n = _socket.ReceiveFrom(buffer, ref from);
                        agent.HandleDatagram(buffer.AsSpan(0, n), local, (IPEndPoint)from, clock.Elapsed);
                    }
                }
                if (_node.HasExited) throw new InvalidOperationException($"node exited with {_node.ExitCode}:\n{_stderr}");
            }
            return until();
        }

        var connected = Pump(() => agent.State == IceConnectionState.Connected && nodeIce.Any(s => s is "connected" or "completed"), TimeSpan.FromSeconds(20));
        Assert.True(connected, $"agent {agent.State}, libjuice ICE states [{string.Join(", ", nodeIce)}]; node stderr:\n{_stderr}");
        output.WriteLine($"connected after {clock.Elapsed.TotalMilliseconds:F0} ms; libjuice: {string.Join(" -> ", nodeIce)}; " +
            $"selected remote {agent.SelectedRemote}");
        Assert.Equal(IPAddress.Loopback, agent.SelectedRemote!.Address.Address);

        // ConsentTimeout is 3 s: staying up for 5 s proves libjuice answers our consent checks with valid integrity.
        Pump(() => false, TimeSpan.FromSeconds(5));
        Assert.True(agent.State == IceConnectionState.Connected, $"agent {agent.State}; libjuice ICE states [{string.Join(", ", nodeIce)}]");
        Assert.Equal(0, agent.DroppedCount(IceDropReason.Unauthenticated));
        Assert.Equal(0, agent.DroppedCount(IceDropReason.BadResponse));
        Assert.Equal(0, agent.DroppedCount(IceDropReason.BadFingerprint));
    }
}
