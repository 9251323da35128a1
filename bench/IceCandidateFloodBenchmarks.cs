using System.Net;
using BenchmarkDotNet.Attributes;
using Transport.Ice;
using Transport.Ice.Stun;

namespace Transport.Bench;

/// <summary>
/// ICE work per remote candidate. <see cref="CheckFromANewAddress"/> is one authenticated check from an address the agent has not seen, with the limits raised
/// so the check list holds <see cref="Pairs"/> pairs: it forms one more pair, so its cost shows whether pairing grows with the list.
/// </summary>
[MemoryDiagnoser, MinColumn, MedianColumn, InvocationCount(1000)]
public class IceCandidateFloodBenchmarks
{
    private static readonly IPEndPoint LocalEndPoint = new(IPAddress.Parse("10.0.0.2"), 2000);
    private static readonly IceCredentials Local = new("bbbbbbbb", "bbbbbbbbbbbbbbbbbbbbbbbb");
    private static readonly IceCredentials Remote = new("aaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaa");
    private readonly byte[] _request = new byte[256];
    private readonly byte[] _response = new byte[1500];
    private IceAgent? _agent;
    private int _length, _next;

    /// <summary>Pairs in the check list when the check arrives.</summary>
    [Params(1_000, 35_000)]
    public int Pairs { get; set; }

    private static IPEndPoint Address(int i) => new(new IPAddress([198, 18, (byte)(i >> 8), (byte)i]), 10_000 + (i >> 16));

    internal static IceAgent NewAgent(IceLimits limits)
    {
        var agent = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled, LocalCredentials = Local, Random = new Random(1), Limits = limits });
        agent.AddHostCandidate(LocalEndPoint);
        agent.SetRemoteCredentials(Remote, TimeSpan.Zero);
        return agent;
    }

    internal static IceCandidate[] Candidates(int n)
    {
        var candidates = new IceCandidate[n];
        for (var i = 0; i < n; i++)
            candidates[i] = new IceCandidate(IceCandidateType.Host, Address(i), IceCandidate.ComputePriority(IceCandidateType.Host, 65535), "r" + i);
        return candidates;
    }

    // Each iteration starts again from a list of exactly Pairs pairs (its 1,000 checks add 1,000 more).
    [IterationSetup]
    public void Setup()
    {
        _agent?.Dispose();
        _agent = NewAgent(new IceLimits { MaxRemoteCandidates = 1_000_000, MaxPairs = 1_000_000 });
        for (var i = 0; i < Pairs; i++)
            _agent.AddRemoteCandidate(new IceCandidate(IceCandidateType.Host, Address(i), 1000, "f" + i), TimeSpan.Zero);
        _next = Pairs;
        using var key = StunKey.ShortTerm(Local.Password);
        var w = new StunMessageWriter(_request, StunMessageType.BindingRequest, Convert.FromHexString("0102030405060708090a0b0c"));
        w.AddString(StunAttributeType.Username, "bbbbbbbb:aaaaaaaa");
        w.AddUInt32(StunAttributeType.Priority, IceCandidate.ComputePriority(IceCandidateType.PeerReflexive, 65535));
        w.AddUInt64(StunAttributeType.IceControlling, 42);
        w.AddMessageIntegrity(key);
        w.AddFingerprint();
        _length = w.Length;
    }

    [GlobalCleanup]
    public void Cleanup() => _agent?.Dispose();

    /// <summary>An authenticated check from a new address: answered, a peer-reflexive pair formed and its triggered check queued.</summary>
    [Benchmark]
    public int CheckFromANewAddress()
    {
        var agent = _agent!;
        agent.HandleDatagram(_request.AsSpan(0, _length), LocalEndPoint, Address(_next++), TimeSpan.Zero);
        var total = 0;
        while (agent.TryPollTransmit(_response, out var written, out _)) total += written;
        while (agent.TryPollEvent(out _)) { }
        return total;
    }
}

/// <summary>A PATCH of 20,000 candidates into a fresh agent with the default limits (100 kept, the rest counted).</summary>
[MemoryDiagnoser, MinColumn, MedianColumn]
public class IceCandidateTrickleBenchmarks
{
    private readonly IceCandidate[] _candidates = IceCandidateFloodBenchmarks.Candidates(20_000);

    /// <summary>Creates the agent and adds the 20,000 candidates.</summary>
    [Benchmark]
    public long TrickleTwentyThousandCandidates()
    {
        using var agent = IceCandidateFloodBenchmarks.NewAgent(new IceLimits());
        foreach (var c in _candidates) agent.AddRemoteCandidate(c, TimeSpan.Zero);
        return agent.RemoteCandidatesDropped;
    }
}
