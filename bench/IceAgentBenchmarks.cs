using System.Net;
using BenchmarkDotNet.Attributes;
using Transport.Ice;
using Transport.Ice.Stun;

namespace Transport.Bench;

/// <summary>
/// Processing one authenticated Binding request (a consent check from the peer on the
/// selected pair) and producing its response. Goal: 0 B allocated.
/// </summary>
[MemoryDiagnoser, MinColumn, MedianColumn]
public class IceAgentBenchmarks
{
    private static readonly IPEndPoint LocalEndPoint = new(IPAddress.Parse("10.0.0.2"), 2000);
    private static readonly IPEndPoint PeerEndPoint = new(IPAddress.Parse("10.0.0.1"), 1000);
    private readonly byte[] _request = new byte[256];
    private readonly byte[] _response = new byte[1500];
    private IceAgent _agent = null!;
    private int _length;

    [GlobalSetup]
    public void Setup()
    {
        var local = new IceCredentials("bbbbbbbb", "bbbbbbbbbbbbbbbbbbbbbbbb");
        var remote = new IceCredentials("aaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaa");
        _agent = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled, LocalCredentials = local, Random = new Random(1) });
        _agent.AddHostCandidate(LocalEndPoint);
        _agent.SetRemoteCredentials(remote, TimeSpan.Zero);
        _agent.AddRemoteCandidate(new IceCandidate(IceCandidateType.Host, PeerEndPoint,
            IceCandidate.ComputePriority(IceCandidateType.Host, 65535), "1"), TimeSpan.Zero);

        using var key = StunKey.ShortTerm(local.Password);
        var w = new StunMessageWriter(_request, StunMessageType.BindingRequest, Convert.FromHexString("0102030405060708090a0b0c"));
        w.AddString(StunAttributeType.Username, "bbbbbbbb:aaaaaaaa");
        w.AddUInt32(StunAttributeType.Priority, IceCandidate.ComputePriority(IceCandidateType.PeerReflexive, 65535));
        w.AddUInt64(StunAttributeType.IceControlling, 42);
        w.AddMessageIntegrity(key);
        w.AddFingerprint();
        _length = w.Length;

        // Warm up: the first request creates the pair and a triggered check; drain everything once.
        _agent.HandleDatagram(_request.AsSpan(0, _length), LocalEndPoint, PeerEndPoint, TimeSpan.Zero);
        while (_agent.TryPollTransmit(_response, out _, out _)) { }
        while (_agent.TryPollEvent(out _)) { }
        if (ProcessRequest() == 0) throw new InvalidOperationException("The agent did not answer.");
    }

    [GlobalCleanup]
    public void Cleanup() => _agent.Dispose();

    /// <summary>
    /// HandleDatagram (parse, FINGERPRINT, USERNAME, MESSAGE-INTEGRITY, role, pair lookup, response with XOR-MAPPED-ADDRESS, integrity and fingerprint) and
    /// TryPollTransmit.
    /// </summary>
    [Benchmark]
    public int ProcessRequest()
    {
        _agent.HandleDatagram(_request.AsSpan(0, _length), LocalEndPoint, PeerEndPoint, TimeSpan.Zero);
        var total = 0;
        while (_agent.TryPollTransmit(_response, out var written, out _)) total += written;
        return total;
    }
}
