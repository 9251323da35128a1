extern alias rtp;
using BenchmarkDotNet.Attributes;
using System.Globalization;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.Loader;
using System.Security.Cryptography;
using GcmCipher = rtp::Transport.Crypto.GcmCipher;
using GcmKernel = rtp::Transport.Crypto.GcmKernel;

namespace Transport.Bench;

/// <summary>
/// AES-128-GCM seal and open of one message on each GHASH kernel of the shared <c>GcmCipher</c> (VPCLMULQDQ on
/// 512-bit and 256-bit vectors, PCLMULQDQ on 128-bit vectors) and on the platform <see cref="AesGcm"/>, at 1 KiB,
/// 1200 B (a multiple of 16), 1201 B (not) and 64 KiB, with a 13-byte AAD as DTLS 1.2 records have.
/// Run: dotnet run -c Release --project bench -- --filter '*GcmKernel*' --job short; on a loaded machine the verb
/// <c>gcm-kernels [rounds]</c> (<see cref="Run"/>) is the steadier figure (thread CPU time, engines interleaved).
/// With <c>GCM_BASELINE=/path/to/Transport.Rtp.dll</c> (another build, e.g. main's bench output) its <c>GcmCipher</c>
/// runs as engine "Baseline" in the same process, loaded into its own <see cref="AssemblyLoadContext"/>.
/// </summary>
[MemoryDiagnoser]
public class GcmKernelBenchmarks
{
    private GcmCipher? _ours;
    private AesGcm? _platform;
    private SealFn? _baselineSeal;
    private OpenFn? _baselineOpen;

    private delegate void SealFn(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag, ReadOnlySpan<byte> aad);

    private delegate bool OpenFn(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext, ReadOnlySpan<byte> aad);

    private static Type? s_baseline;
    private byte[] _plain = null!;
    private byte[] _cipher = null!;
    private byte[] _output = null!;
    private readonly byte[] _nonce = new byte[12];
    private readonly byte[] _tag = new byte[16];
    private readonly byte[] _aad = new byte[13];

    /// <summary>The engine: a forced GcmCipher kernel, or "Platform" for AesGcm.</summary>
    [Params("Platform", "Vector128", "Vector256", "Vector512")]
    public string Engine { get; set; } = "";

    [Params(1024, 1200, 1201, 65536)]
    public int Length { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(3);
        byte[] key = new byte[16];
        random.NextBytes(key);
        random.NextBytes(_nonce);
        random.NextBytes(_aad);
        _plain = new byte[Length];
        random.NextBytes(_plain);
        _cipher = new byte[Length];
        _output = new byte[Length];
        if (Engine == "Platform") _platform = new AesGcm(key, 16);
        else if (Engine == "Baseline") CreateBaseline(key);
        else _ours = new GcmCipher(key, Enum.Parse<GcmKernel>(Engine));
        Seal();
        if (!Open()) throw new InvalidOperationException("the sealed message did not open");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _ours?.Dispose();
        _platform?.Dispose();
    }

    /// <summary>
    /// Thread CPU time (CLOCK_THREAD_CPUTIME_ID) per seal and per open for every engine and length, the engines taking
    /// turns round by round so that a change of load falls on all of them alike; prints the median over the rounds.
    /// </summary>
    public static int Run(string[] args)
    {
        var rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 15;
        string[] engines = Environment.GetEnvironmentVariable("GCM_BASELINE") is { Length: > 0 }
            ? ["Platform", "Baseline", "Vector128", "Vector256", "Vector512"]
            : ["Platform", "Vector128", "Vector256", "Vector512"];
        foreach (var length in new[] { 1024, 1200, 1201, 65536 })
        {
            var operations = Math.Max(20, 2_000_000 / length);
            var benches = engines.Select(e => new GcmKernelBenchmarks { Engine = e, Length = length }).ToArray();
            foreach (var b in benches) b.Setup();
            var seal = engines.Select(_ => new List<double>()).ToArray();
            var open = engines.Select(_ => new List<double>()).ToArray();
            for (var r = -3; r < rounds; r++) // three warm-up rounds
            {
                for (var e = 0; e < benches.Length; e++)
                {
                    var start = DatagramPathBenchmarks.ThreadCpuNs();
                    for (var i = 0; i < operations; i++) benches[e].Seal();
                    var middle = DatagramPathBenchmarks.ThreadCpuNs();
                    for (var i = 0; i < operations; i++) benches[e].Open();
                    var end = DatagramPathBenchmarks.ThreadCpuNs();
                    if (r < 0) continue;
                    seal[e].Add((middle - start) / (double)operations);
                    open[e].Add((end - middle) / (double)operations);
                }
            }

            for (var e = 0; e < benches.Length; e++)
            {
                seal[e].Sort();
                open[e].Sort();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{length,6} B {engines[e],-10} seal CPU {seal[e][rounds / 2],9:0} ns (range {seal[e][0]:0}-{seal[e][^1]:0}), " +
                    $"open CPU {open[e][rounds / 2],9:0} ns (range {open[e][0]:0}-{open[e][^1]:0})"));
                benches[e].Cleanup();
            }
        }

        return 0;
    }

    // The other build's GcmCipher: its constructor takes a span (no reflection Invoke), so a dynamic method makes it.
    private void CreateBaseline(byte[] key)
    {
        s_baseline ??= new AssemblyLoadContext("gcm-baseline").LoadFromAssemblyPath(Path.GetFullPath(Environment.GetEnvironmentVariable("GCM_BASELINE")!))
            .GetType("Transport.Crypto.GcmCipher", throwOnError: true)!;
        var ctor = s_baseline.GetConstructor(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance, [typeof(ReadOnlySpan<byte>)])!;
        var make = new DynamicMethod("MakeBaseline", typeof(object), [typeof(byte[])], s_baseline.Module, skipVisibility: true);
        var il = make.GetILGenerator();
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Call, typeof(ReadOnlySpan<byte>).GetMethod("op_Implicit", [typeof(byte[])])!);
        il.Emit(OpCodes.Newobj, ctor);
        il.Emit(OpCodes.Ret);
        var instance = make.Invoke(null, [key])!;
        Type rs = typeof(ReadOnlySpan<byte>), ws = typeof(Span<byte>);
        var seal = s_baseline.GetMethod("Encrypt", [rs, rs, ws, ws, rs])!;
        var open = s_baseline.GetMethod("TryDecrypt", [rs, rs, rs, ws, rs])!;
        _baselineSeal = seal.CreateDelegate<SealFn>(instance);
        _baselineOpen = open.CreateDelegate<OpenFn>(instance);
    }

    /// <summary>Encrypt and tag one message.</summary>
    [Benchmark]
    public void Seal()
    {
        if (_ours is not null) _ours.Encrypt(_nonce, _plain, _cipher, _tag, _aad);
        else if (_baselineSeal is not null) _baselineSeal(_nonce, _plain, _cipher, _tag, _aad);
        else _platform!.Encrypt(_nonce, _plain, _cipher, _tag, _aad);
    }

    /// <summary>Verify and decrypt one message (the platform's Decrypt throws on a bad tag; this one is genuine).</summary>
    [Benchmark]
    public bool Open()
    {
        if (_ours is not null) return _ours.TryDecrypt(_nonce, _cipher, _tag, _output, _aad);
        if (_baselineOpen is not null) return _baselineOpen(_nonce, _cipher, _tag, _output, _aad);
        _platform!.Decrypt(_nonce, _cipher, _tag, _output, _aad);
        return true;
    }
}
