using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Transport.Rtp.Srtp;
using Transport.Rtp.Tests.Srtp;

namespace Transport.Bench;

/// <summary>
/// SRTP protect and unprotect of 1200-byte payloads, ours against libsrtp2 through P/Invoke in the same run.
/// Both sides do the same work per operation: copy the input packet into a work buffer, then protect (with a new
/// sequence number each time) or unprotect (cycling through 1024 pre-protected packets; every 1024 operations the
/// receiver forgets the stream, ours with an in-place reset, libsrtp with srtp_remove_stream).
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public unsafe class SrtpBenchmarks
{
    private const int PayloadLength = 1200;
    private const int RingSize = 1024;
    private const uint Ssrc = 0x11223344;

    private SrtpContext _ourSender = null!;
    private SrtpContext _ourReceiver = null!;
    private LibSrtp _libSender = null!;
    private LibSrtp _libReceiver = null!;
    private byte[] _plain = null!;
    private byte[] _work = null!;
    private byte[][] _ring = null!;
    private int _plainLength;
    private ushort _ourSequence;
    private ushort _libSequence;
    private int _ourCursor;
    private int _libCursor;

    [Params(SrtpProfile.AesCm128HmacSha1_80, SrtpProfile.AeadAes128Gcm)]
    public SrtpProfile Profile { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(1);
        byte[] key = new byte[SrtpProfileInfo.MasterKeyLength(Profile)];
        byte[] salt = new byte[SrtpProfileInfo.MasterSaltLength(Profile)];
        random.NextBytes(key);
        random.NextBytes(salt);
        _ourSender = SrtpContext.Create(Profile, key, salt);
        _ourReceiver = SrtpContext.Create(Profile, key, salt);
        _libSender = new LibSrtp(Profile, key, salt, outbound: true);
        _libReceiver = new LibSrtp(Profile, key, salt, outbound: false);

        _plainLength = 12 + PayloadLength;
        _plain = new byte[_plainLength];
        random.NextBytes(_plain);
        _plain[0] = 0x80;
        _plain[1] = 96;
        BinaryPrimitives.WriteUInt32BigEndian(_plain.AsSpan(8), Ssrc);
        _work = new byte[_plainLength + 64];

        // Pre-protected packets with sequence numbers 0..1023, produced by a separate context.
        using SrtpContext producer = SrtpContext.Create(Profile, key, salt);
        _ring = new byte[RingSize][];
        for (int i = 0; i < RingSize; i++)
        {
            byte[] packet = new byte[_plainLength + 64];
            _plain.CopyTo(packet, 0);
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)i);
            producer.ProtectRtp(packet, _plainLength, out int length);
            _ring[i] = packet[..length];
        }

        // A failed unprotect would be fast and meaningless: check that every operation really succeeds.
        int expectedProtected = _plainLength + SrtpProfileInfo.RtpTagLength(Profile);
        for (int i = 0; i < 2 * RingSize + 3; i++)
        {
            Verify(OursUnprotect(), _plainLength, "ours unprotect");
            Verify(LibSrtpUnprotect(), _plainLength, "libsrtp unprotect");
            Verify(OursProtect(), expectedProtected, "ours protect");
            Verify(LibSrtpProtect(), expectedProtected, "libsrtp protect");
        }

        _ourCursor = 0;
        _libCursor = 0;
    }

    private static void Verify(int actual, int expected, string what)
    {
        if (actual != expected)
        {
            throw new InvalidOperationException($"{what} returned {actual}, expected {expected}.");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _ourSender.Dispose();
        _ourReceiver.Dispose();
        _libSender.Dispose();
        _libReceiver.Dispose();
    }

    [Benchmark(Baseline = true), BenchmarkCategory("Protect")]
    public int LibSrtpProtect()
    {
        _plain.CopyTo(_work, 0);
        BinaryPrimitives.WriteUInt16BigEndian(_work.AsSpan(2), _libSequence++);
        return _libSender.ProtectRtp(_work, _plainLength);
    }

    [Benchmark, BenchmarkCategory("Protect")]
    public int OursProtect()
    {
        _plain.CopyTo(_work, 0);
        BinaryPrimitives.WriteUInt16BigEndian(_work.AsSpan(2), _ourSequence++);
        _ourSender.ProtectRtp(_work, _plainLength, out int length);
        return length;
    }

    [Benchmark(Baseline = true), BenchmarkCategory("Unprotect")]
    public int LibSrtpUnprotect()
    {
        int i = _libCursor++ & (RingSize - 1);
        if (i == 0)
        {
            _libReceiver.RemoveStream(Ssrc);
        }

        byte[] packet = _ring[i];
        packet.CopyTo(_work, 0);
        return _libReceiver.UnprotectRtp(_work, packet.Length);
    }

    [Benchmark, BenchmarkCategory("Unprotect")]
    public int OursUnprotect()
    {
        int i = _ourCursor++ & (RingSize - 1);
        if (i == 0)
        {
            _ourReceiver.ResetRtpState(Ssrc);
        }

        byte[] packet = _ring[i];
        packet.CopyTo(_work, 0);
        _ourReceiver.UnprotectRtp(_work.AsSpan(0, packet.Length), out int length);
        return length;
    }
}
