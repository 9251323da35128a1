using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Transport.Ice.Stun;

namespace Transport.Bench;

/// <summary>
/// The STUN hot paths of ICE: decode a typical connectivity check, build one with
/// MESSAGE-INTEGRITY and FINGERPRINT, check MESSAGE-INTEGRITY, check FINGERPRINT. Goals: decode at most 40 ns,
/// build at most 1 us, integrity check at most 700 ns, 0 B allocated.
/// </summary>
[MemoryDiagnoser, MinColumn, MedianColumn]
public class StunBenchmarks
{
    private readonly byte[] _transactionId = Convert.FromHexString("b7e7a701bc34d686fa87dfae");
    private readonly byte[] _request = new byte[256];
    private readonly byte[] _output = new byte[256];
    private readonly byte[] _mac = new byte[20];
    private StunKey _key = null!;
    private IncrementalHash _platformHmac = null!;
    private int _length;

    [GlobalSetup]
    public void Setup()
    {
        _key = StunKey.ShortTerm("VOkJxbRl1RmTxUk/WvJxBt");
        _platformHmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA1, _key.Bytes);
        _length = Build(_request);
        if (!StunMessage.TryRead(_request.AsSpan(0, _length), out var m) || !m.CheckMessageIntegrity(_key) || !m.CheckFingerprint())
            throw new InvalidOperationException("The benchmark request does not verify.");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _key.Dispose();
        _platformHmac.Dispose();
    }

    private int Build(Span<byte> destination)
    {
        var w = new StunMessageWriter(destination, StunMessageType.BindingRequest, _transactionId);
        w.AddString(StunAttributeType.Username, "r7Xq:L2pA");
        w.AddUInt32(StunAttributeType.Priority, 0x6e0001ff);
        w.AddUInt64(StunAttributeType.IceControlling, 0x932ff9b151263b36);
        w.AddFlag(StunAttributeType.UseCandidate);
        w.AddMessageIntegrity(_key);
        w.AddFingerprint();
        return w.Length;
    }

    /// <summary>Parse and read USERNAME, PRIORITY, ICE-CONTROLLING and USE-CANDIDATE.</summary>
    [Benchmark]
    public ulong DecodeBindingRequest()
    {
        if (!StunMessage.TryRead(_request.AsSpan(0, _length), out var m)) return 0;
        m.TryGetUsername(out var user);
        m.TryGetPriority(out var priority);
        m.TryGetIceControlling(out var tie);
        return (ulong)user.Length + priority + tie + (m.HasUseCandidate ? 1UL : 0UL);
    }

    /// <summary>Write the same request with MESSAGE-INTEGRITY and FINGERPRINT.</summary>
    [Benchmark]
    public int BuildBindingRequest() => Build(_output);

    /// <summary>Parse and check MESSAGE-INTEGRITY (HMAC-SHA1, constant-time compare).</summary>
    [Benchmark]
    public bool CheckMessageIntegrity() =>
        StunMessage.TryRead(_request.AsSpan(0, _length), out var m) && m.CheckMessageIntegrity(_key);

    /// <summary>
    /// Reference, not a goal: the platform's HMAC-SHA1 (OpenSSL through IncrementalHash, state kept per key) over
    /// the same bytes that <see cref="CheckMessageIntegrity"/> hashes, to compare with our pre-hashed-pad HMAC.
    /// </summary>
    [Benchmark]
    public int PlatformHmacSha1Reference()
    {
        _platformHmac.AppendData(_request.AsSpan(0, _length - 32));
        _platformHmac.GetHashAndReset(_mac);
        return _mac[0];
    }

    /// <summary>Parse and check FINGERPRINT (CRC-32).</summary>
    [Benchmark]
    public bool CheckFingerprint() =>
        StunMessage.TryRead(_request.AsSpan(0, _length), out var m) && m.CheckFingerprint();
}
