#pragma warning disable SYSLIB5006 // MLKem: measured only where the platform supports it
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Asn1.X9;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Kems;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Math;
using Org.BouncyCastle.Security;
using Transport.Dtls;
using Transport.Dtls.Crypto;
using Transport.Ice;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using BcX25519 = Org.BouncyCastle.Math.EC.Rfc7748.X25519;

namespace Transport.Bench;

/// <summary>
/// What one connection set-up costs the answering side (the server of <see cref="ScaleRun"/>), step by step, in CPU time of
/// the measuring thread (CLOCK_THREAD_CPUTIME_ID: other processes' load does not count, only what it does to caches):
/// two <see cref="PeerConnectionCore"/>s set up in memory on virtual time (A offers, is ICE controlling and DTLS client and
/// opens a data channel; B answers, as the server does), B's calls timed and filed by what they handled (creating B, the
/// answer, STUN, the DTLS handshake, SCTP and DCEP over DTLS, timers). Then each cryptographic primitive a handshake uses, on
/// the platform (.NET on OpenSSL) and on BouncyCastle, in the same run. No sockets, threads or driver: the difference to
/// <see cref="ScaleRun"/>'s CPU per set-up is the driver, the runtime and the kernel.
/// <c>dotnet run -c Release --project bench -- setup-cost [set-ups=300] [primitive-runs=300]</c>
/// </summary>
public static class SetupCostRun
{
    private static readonly IPEndPoint EndA = new(IPAddress.Parse("10.0.0.1"), 1000), EndB = new(IPAddress.Parse("10.0.0.2"), 2000);

    public static int Run(string[] args)
    {
        var setups = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 300;
        var runs = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 300;
        Console.WriteLine($"setup-cost: {setups} set-ups in memory, {runs} runs per primitive; {Environment.ProcessorCount} cores, load {Load()}");
        var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50), DateTimeOffset.UnixEpoch.AddYears(80));
        var clientCertificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50), DateTimeOffset.UnixEpoch.AddYears(80));

        // Warm-up: the JIT's tiers behind (the same number of set-ups again, then the primitives once).
        var steps = new Steps();
        for (var i = 0; i < Math.Max(50, setups / 2); i++) SetUp(certificate, clientCertificate, steps);
        Primitives(certificate, clientCertificate, Math.Max(20, runs / 5), print: false);
        Thread.Sleep(500);

        steps = new Steps();
        for (var i = 0; i < setups; i++) SetUp(certificate, clientCertificate, steps);
        steps.Print(setups);
        Console.WriteLine();
        Primitives(certificate, clientCertificate, runs, print: true);
        Console.WriteLine($"load at the end {Load()}");
        return 0;
    }

    private sealed class Steps
    {
        private readonly Dictionary<string, (long Nanos, long Bytes, long Calls)> _steps = new(StringComparer.Ordinal);
        private readonly List<string> _order = new();
        private long _start, _bytes;

        public void Begin()
        {
            _bytes = GC.GetAllocatedBytesForCurrentThread();
            _start = ThreadCpu.Nanos();
        }

        private long _nanos, _allocated;

        public void End(string step)
        {
            Stop();
            File(step);
        }

        public void Stop()
        {
            _nanos = ThreadCpu.Nanos() - _start;
            _allocated = GC.GetAllocatedBytesForCurrentThread() - _bytes;
        }

        public void File(string step)
        {
            var (nanos, bytes) = (_nanos, _allocated);
            if (!_steps.TryGetValue(step, out var s)) _order.Add(step);
            _steps[step] = (s.Nanos + nanos, s.Bytes + bytes, s.Calls + 1);
        }

        public void Print(int setups)
        {
            Console.WriteLine("| Step (answering side, per set-up) | CPU µs | calls | allocated KiB |");
            Console.WriteLine("| --- | ---: | ---: | ---: |");
            long total = 0, bytes = 0;
            foreach (var step in _order)
            {
                var s = _steps[step];
                total += s.Nanos;
                bytes += s.Bytes;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {step} | {s.Nanos / 1000.0 / setups:0.0} | {(double)s.Calls / setups:0.#} | {s.Bytes / 1024.0 / setups:0.0} |"));
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| total | {total / 1000.0 / setups:0.0} | | {bytes / 1024.0 / setups:0.0} |"));
        }
    }

    // One set-up: A (not timed) offers and opens a channel, B (timed) answers and serves; until B's channel is open and
    // nothing moves any more.
    private static void SetUp(DtlsCertificate serverCertificate, DtlsCertificate clientCertificate, Steps steps)
    {
        var packet = new byte[2048];
        var now = TimeSpan.Zero;
        using var a = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = clientCertificate,
            Ice = new IceAgentOptions { Role = IceRole.Controlling },
        });
        a.AddHostCandidate(EndA);
        var offerText = a.CreateOffer(now).ToString();

        steps.Begin();
        var b = new PeerConnectionCore(new PeerConnectionOptions { Certificate = serverCertificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });
        b.AddHostCandidate(EndB);
        steps.End("create the connection");

        steps.Begin();
        var answerText = b.CreateAnswer(SessionDescription.Parse(offerText), now).ToString();
        steps.End("answer (offer parsed, answer built and written)");

        a.SetRemoteDescription(SessionDescription.Parse(answerText), now);
        a.CreateDataChannel("scale", null, now);
        var open = false;
        for (var guard = 0; ; guard++)
        {
            if (guard > 10_000) throw new InvalidOperationException("the set-up did not finish");
            var moved = false;
            while (a.TryPollTransmit(packet, out var n, out _, out _))
            {
                moved = true;
                var before = Phase(b);
                steps.Begin();
                b.HandleDatagram(packet.AsSpan(0, n), EndB, EndA, now);
                steps.Stop();
                // A datagram that started DTLS (the ClientHello) is the handshake's.
                steps.File("receive: " + Classify(packet[0], b, before == IcePhase && b.Dtls is not null ? HandshakePhase : before));
                steps.Begin();
                while (b.TryPollEvent(out var e)) open |= e is DataChannelOpened;
                steps.End("events");
            }
            while (true)
            {
                var phase = Phase(b);
                steps.Begin();
                var sent = b.TryPollTransmit(packet, out var n, out _, out _);
                steps.Stop();
                steps.File(sent ? "send: " + Classify(packet[0], b, phase) : "polls that found nothing");
                if (!sent) break;
                moved = true;
                a.HandleDatagram(packet.AsSpan(0, n), EndA, EndB, now);
            }
            while (a.TryPollEvent(out _)) { }
            if (moved) continue;
            if (open) break;
            var next = Min(a.PollTimeout(), b.PollTimeout()) ?? now + TimeSpan.FromMilliseconds(10);
            if (next > now) now = next;
            a.HandleTimeout(now);
            steps.Begin();
            b.HandleTimeout(now);
            steps.End("timers");
        }
        steps.Begin();
        b.Dispose();
        steps.End("dispose");
    }

    // By the phase B is in when the call begins (SPED carries the first DTLS flights inside STUN checks, so a STUN
    // datagram may be the handshake's) and by what the datagram is.
    private static string Classify(byte first, PeerConnectionCore b, string? phase = null) =>
        (phase ?? Phase(b)) + (first switch { <= 3 => ", STUN", >= 20 and <= 63 => ", DTLS records", _ => ", other" });

    private const string IcePhase = "ICE, before DTLS", HandshakePhase = "DTLS handshake";

    private static string Phase(PeerConnectionCore b) =>
        b.Dtls is null ? IcePhase : b.Dtls.State != DtlsState.Connected ? HandshakePhase : "SCTP and DCEP";

    private static TimeSpan? Min(TimeSpan? x, TimeSpan? y) => x is null ? y : y is null ? x : x < y ? x : y;

    private static void Primitives(DtlsCertificate certificate, DtlsCertificate clientCertificate, int runs, bool print)
    {
        var results = new List<(string Name, double Micros)>();
        void Measure(string name, Action action)
        {
            action();
            var best = long.MaxValue;
            // The median of 5 blocks of runs/5: robust to a preemption in one block.
            var blocks = new List<long>();
            for (var block = 0; block < 5; block++)
            {
                var start = ThreadCpu.Nanos();
                for (var i = 0; i < Math.Max(1, runs / 5); i++) action();
                blocks.Add(ThreadCpu.Nanos() - start);
            }
            blocks.Sort();
            best = Math.Min(best, blocks[2]);
            results.Add((name, best / 1000.0 / Math.Max(1, runs / 5)));
        }

        var content = new byte[130];
        RandomNumberGenerator.Fill(content);
        var der = clientCertificate.Der;
        var signature = clientCertificate.Sign(DtlsSignatureScheme.EcdsaSecp256r1Sha256, content);

        // ECDSA P-256 (CertificateVerify: the server signs once, verifies the client's once, after importing its key).
        Measure("ECDSA P-256 sign (platform: OpenSSL)", () => certificate.Sign(DtlsSignatureScheme.EcdsaSecp256r1Sha256, content));
        var ecParameters = clientCertificate.Certificate.GetECDsaPrivateKey()!.ExportParameters(true);
        var bcCurve = ECNamedCurveTable.GetByName("P-256");
        var domain = new ECDomainParameters(bcCurve);
        var bcPrivate = new ECPrivateKeyParameters(new BigInteger(1, ecParameters.D), domain);
        var random = new SecureRandom();
        Measure("ECDSA P-256 sign (BouncyCastle)", () =>
        {
            var signer = SignerUtilities.GetSigner("SHA-256withECDSA");
            signer.Init(true, new ParametersWithRandom(bcPrivate, random));
            signer.BlockUpdate(content, 0, content.Length);
            signer.GenerateSignature();
        });
        Measure("peer key import (platform: libcrypto EC_KEY, as used)", () => PeerPublicKey.TryRead(der)!.Dispose());
        Measure("peer key import (platform: .NET ECParameters)", () => PeerPublicKey.TryRead(der, allowNative: false)!.Dispose());
        using (var key = PeerPublicKey.TryRead(der)!)
            Measure("ECDSA P-256 verify (platform: OpenSSL)", () => key.Verify(DtlsSignatureScheme.EcdsaSecp256r1Sha256, content, signature));
        var point = new byte[65];
        point[0] = 4;
        ecParameters.Q.X!.CopyTo(point, 1);
        ecParameters.Q.Y!.CopyTo(point, 33);
        Measure("peer key import + ECDSA P-256 verify (platform, as used)", () =>
        {
            using var key = PeerPublicKey.TryRead(der)!;
            key.Verify(DtlsSignatureScheme.EcdsaSecp256r1Sha256, content, signature);
        });
        Measure("peer key import + ECDSA P-256 verify (BouncyCastle)", () =>
        {
            var q = bcCurve.Curve.DecodePoint(point);   // checks the point is on the curve
            var signer = SignerUtilities.GetSigner("SHA-256withECDSA");
            signer.Init(false, new ECPublicKeyParameters(q, domain));
            signer.BlockUpdate(content, 0, content.Length);
            if (!signer.VerifySignature(signature)) throw new InvalidOperationException("BouncyCastle did not verify");
        });

        // X25519: one key pair and one shared secret per side and handshake.
        var peer = new byte[32];
        using (var other = new X25519KeyExchange()) other.PublicKey.CopyTo(peer, 0);
        Measure("X25519 key pair + secret (platform: libcrypto EVP, as used)", () =>
        {
            using var x = new X25519KeyExchange();
            x.DeriveSecret(peer);
        });
        Measure("X25519 key pair + secret (BouncyCastle)", () =>
        {
            var priv = new byte[32];
            var pub = new byte[32];
            var secret = new byte[32];
            RandomNumberGenerator.Fill(priv);
            BcX25519.ScalarMultBase(priv, 0, pub, 0);
            BcX25519.CalculateAgreement(priv, 0, peer, 0, secret, 0);
        });

        // ML-KEM-768: the client generates and decapsulates, the server encapsulates.
        var generator = new MLKemKeyPairGenerator();
        generator.Init(new MLKemKeyGenerationParameters(new SecureRandom(), MLKemParameters.ml_kem_768));
        var pair = generator.GenerateKeyPair();
        var ek = ((MLKemPublicKeyParameters)pair.Public).GetEncoded();
        var ciphertext = new byte[KeyShare13.MlKemCiphertextLength];
        var kemSecret = new byte[32];
        Measure("ML-KEM-768 key generation (BouncyCastle)", () =>
        {
            var g = new MLKemKeyPairGenerator();
            g.Init(new MLKemKeyGenerationParameters(new SecureRandom(), MLKemParameters.ml_kem_768));
            g.GenerateKeyPair();
        });
        Measure("ML-KEM-768 encapsulation, key parsed (BouncyCastle)", () =>
        {
            var key = MLKemPublicKeyParameters.FromEncoding(MLKemParameters.ml_kem_768, ek);
            var e = new MLKemEncapsulator(MLKemParameters.ml_kem_768);
            e.Init(new ParametersWithRandom(key, new SecureRandom()));
            e.Encapsulate(ciphertext, kemSecret);
        });
        Measure("ML-KEM-768 decapsulation (BouncyCastle)", () =>
        {
            var d = new MLKemDecapsulator(MLKemParameters.ml_kem_768);
            d.Init(pair.Private);
            d.Decapsulate(ciphertext, kemSecret);
        });
        Measure("BouncyCastle new SecureRandom() (made per ML-KEM operation)", () => new SecureRandom().NextInt());
        if (MLKem.IsSupported)
        {
            using var platformKey = MLKem.GenerateKey(MLKemAlgorithm.MLKem768);
            var platformEk = platformKey.ExportEncapsulationKey();
            Measure("ML-KEM-768 key generation (platform)", () => MLKem.GenerateKey(MLKemAlgorithm.MLKem768).Dispose());
            Measure("ML-KEM-768 encapsulation, key parsed (platform)", () =>
            {
                using var key = MLKem.ImportEncapsulationKey(MLKemAlgorithm.MLKem768, platformEk);
                key.Encapsulate(ciphertext, kemSecret);
            });
            Measure("ML-KEM-768 decapsulation (platform)", () => platformKey.Decapsulate(ciphertext, kemSecret));
        }
        else if (print)
            Console.WriteLine("ML-KEM-768 on the platform: MLKem.IsSupported is false (the libcrypto .NET loaded has no ML-KEM; OpenSSL 3.5 brings it)");

        // The server's whole key share answer for the hybrid group, as used.
        var clientShare = new byte[KeyShare13.MlKemEncapsulationKeyLength + 32];
        ek.CopyTo(clientShare, 0);
        peer.CopyTo(clientShare, KeyShare13.MlKemEncapsulationKeyLength);
        Measure("X25519MLKEM768 server key share answer (as used)", () => KeyShare13.TryRespond(DtlsNamedGroup.X25519MLKEM768, clientShare, out _, out _));

        // Hashes and the rest.
        Measure("SHA-256 fingerprint of a certificate (string)", () => DtlsFingerprint.Compute(der.Span, DtlsFingerprint.Sha256));
        var prk = new byte[32];
        var okm = new byte[32];
        Measure("HKDF-Expand, 32 bytes (platform)", () => HKDF.Expand(HashAlgorithmName.SHA256, prk, okm, "tls13 c hs traffic"u8));
        Measure("HKDF-Expand, 32 bytes (HMAC by hand: two SHA256.HashData)", () => ExpandByHand(prk, "tls13 c hs traffic"u8, okm));
        Measure("HMAC-SHA256 one-shot, 40 bytes (platform)", () => HMACSHA256.HashData(prk, content.AsSpan(0, 40), okm));
        Measure("SHA-256 one-shot, 4 KiB (platform)", () => SHA256.HashData(new byte[4096]));

        if (!print) return;
        Console.WriteLine("| Primitive | CPU µs per operation |");
        Console.WriteLine("| --- | ---: |");
        foreach (var (name, micros) in results) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {micros:0.0} |"));
    }

    // HKDF-Expand (RFC 5869 section 2.3) for one block: HMAC(prk, info || 0x01) (RFC 2104) on two one-shot hashes.
    private static void ExpandByHand(ReadOnlySpan<byte> prk, ReadOnlySpan<byte> info, Span<byte> output)
    {
        Span<byte> inner = stackalloc byte[64 + 64 + 1];
        Span<byte> outer = stackalloc byte[64 + 32];
        inner[..64].Fill(0x36);
        outer[..64].Fill(0x5c);
        for (var i = 0; i < prk.Length; i++) { inner[i] ^= prk[i]; outer[i] ^= prk[i]; }
        info.CopyTo(inner[64..]);
        inner[64 + info.Length] = 1;
        SHA256.HashData(inner[..(65 + info.Length)], outer[64..]);
        SHA256.HashData(outer, output);
    }

    private static string Load()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "?"; }
    }

    /// <summary>The calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID), in nanoseconds.</summary>
    private static unsafe class ThreadCpu
    {
        public static long Nanos()
        {
            if (!OperatingSystem.IsLinux()) return System.Diagnostics.Stopwatch.GetTimestamp() * 1_000_000_000 / System.Diagnostics.Stopwatch.Frequency;
            var ts = stackalloc long[2];
            return ClockGetTime(3, ts) == 0 ? ts[0] * 1_000_000_000 + ts[1] : 0;
        }

        [DllImport("libc", EntryPoint = "clock_gettime")]
        private static extern int ClockGetTime(int clock, long* timespec);
    }
}
