using BenchmarkDotNet.Attributes;
using Transport.Dtls;
using Transport.Dtls.Records;
using Transport.Dtls.Tls13;

namespace Transport.Bench;

/// <summary>
/// DTLS record protection (AES-128-GCM, 1200-byte payload; our AES-NI/PCLMULQDQ engine, and the platform AesGcm
/// fallback for reference) and a full in-process handshake: fresh ephemeral X25519 keys, ECDSA P-256
/// signatures made and verified, peer certificates parsed and fingerprint-checked on every run. DTLS 1.3:
/// the same record and handshake figures with the unified header, x25519 and X25519MLKEM768.
/// Run: dotnet run -c Release --project bench -- --filter '*DtlsBenchmarks*' --job short
/// </summary>
[MemoryDiagnoser]
public class DtlsBenchmarks
{
    private AesGcmRecordCipher _seal = null!;
    private AesGcmRecordCipher _open = null!;
    private AesGcmRecordCipher _platformSeal = null!;
    private readonly byte[] _payload = new byte[1200];
    private readonly byte[] _record = new byte[1300];
    private readonly byte[] _plaintext = new byte[1300];
    private int _recordLength;
    private ulong _sequence;
    private DtlsCertificate _clientCert = null!;
    private DtlsCertificate _serverCert = null!;
    private DtlsCookieResponder _cookies = null!;
    private readonly byte[] _datagram = new byte[2048];

    [GlobalSetup]
    public void Setup()
    {
        var key = new byte[16];
        Random.Shared.NextBytes(key);
        Random.Shared.NextBytes(_payload);
        _seal = new AesGcmRecordCipher(key, [1, 2, 3, 4]);
        _open = new AesGcmRecordCipher(key, [1, 2, 3, 4]);
        _platformSeal = new AesGcmRecordCipher(key, [1, 2, 3, 4], allowIntrinsics: false);
        if (!_seal.UsesIntrinsics) throw new InvalidOperationException("expected the AES-NI/PCLMULQDQ record cipher on this machine");
        _recordLength = _seal.Seal(DtlsContentType.ApplicationData, 1, 7, _payload, _record);
        var notBefore = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        _clientCert = DtlsCertificate.CreateSelfSigned(notBefore, notBefore.AddYears(1));
        _serverCert = DtlsCertificate.CreateSelfSigned(notBefore, notBefore.AddYears(1));
        _cookies = new DtlsCookieResponder();
        _raw = new System.Security.Cryptography.AesGcm(key, 16);
        (_sender, _receiver) = Connect(new DtlsOptions
        {
            Certificate = _serverCert,
            RemoteFingerprint = _clientCert.Sha256Fingerprint,
            DeliverApplicationDataAsEvents = false,
            MaxVersion = DtlsVersion.Dtls12
        },
            DtlsVersion.Dtls12);
        (_sender13, _receiver13) =
            Connect(new DtlsOptions { Certificate = _serverCert, RemoteFingerprint = _clientCert.Sha256Fingerprint, DeliverApplicationDataAsEvents = false },
            DtlsVersion.Dtls13, DtlsNamedGroup.X25519);
        if (_sender13.Version != DtlsVersion.Dtls13) throw new InvalidOperationException("expected DTLS 1.3");
        var iv = new byte[12];
        var sn = new byte[16];
        Random.Shared.NextBytes(iv);
        Random.Shared.NextBytes(sn);
        _seal13 = new Dtls13RecordCipher(DtlsCipherSuite.TlsAes128GcmSha256, 3, key, iv, sn);
        _open13 = new Dtls13RecordCipher(DtlsCipherSuite.TlsAes128GcmSha256, 3, key, iv, sn);
        _record13Length = _seal13.Seal(DtlsContentType.ApplicationData, 7, _payload, _record13);
    }

    private Dtls13RecordCipher _seal13 = null!;
    private Dtls13RecordCipher _open13 = null!;
    private readonly byte[] _record13 = new byte[1300];
    private int _record13Length;
    private DtlsConnection _sender13 = null!;
    private DtlsConnection _receiver13 = null!;

    /// <summary>DTLS 1.3: seal one 1200-byte application record (unified header, AEAD, record-number encryption).</summary>
    [Benchmark]
    public int ProtectRecord1200Dtls13() => _seal13.Seal(DtlsContentType.ApplicationData, _sequence++ & 0xFFFFFFFFFFFF, _payload, _record13);

    /// <summary>DTLS 1.3: parse, unmask the sequence number, reconstruct it and open one 1200-byte record.</summary>
    [Benchmark]
    public int UnprotectRecord1200Dtls13()
    {
        Dtls13RecordHeader.TryRead(_record13.AsSpan(0, _record13Length), out var record, out _);
        _open13.Open(record, _plaintext, out _, out var n, out _);
        return n;
    }

    /// <summary>DTLS 1.3 through the connections, as <see cref="ConnectionSendReceive1200"/>.</summary>
    [Benchmark]
    public int ConnectionSendReceive1200Dtls13()
    {
        _sender13.Send(_payload);
        _sender13.TryPollTransmit(_datagram, out var n);
        _receiver13.HandleDatagram(_datagram.AsSpan(0, n), TimeSpan.Zero);
        _receiver13.TryReceive(_plaintext, out var m);
        return m;
    }

    /// <summary>DTLS 1.3 full handshake both sides with x25519 (mutual ECDSA P-256 authentication, ACK included).</summary>
    [Benchmark]
    public DtlsState FullHandshakeDtls13X25519() => Handshake(DtlsVersion.Dtls13, DtlsNamedGroup.X25519);

    /// <summary>DTLS 1.3 full handshake both sides with X25519MLKEM768 (ML-KEM-768 key generation, encapsulation, decapsulation).</summary>
    [Benchmark]
    public DtlsState FullHandshakeDtls13Hybrid() => Handshake(DtlsVersion.Dtls13, DtlsNamedGroup.X25519MLKEM768);

    private DtlsState Handshake(DtlsVersion version, DtlsNamedGroup group)
    {
        var (client, server) =
            Connect(new DtlsOptions { Certificate = _serverCert, RemoteFingerprint = _clientCert.Sha256Fingerprint, MaxVersion = version, Groups = [group] },
            version, group);
        client.Dispose();
        server.Dispose();
        return client.State;
    }

    /// <summary>
    /// Through the connections: Send, TryPollTransmit, HandleDatagram, TryReceive of one 1200-byte record
    /// (protect + unprotect + anti-replay + queues).
    /// </summary>
    [Benchmark]
    public int ConnectionSendReceive1200()
    {
        _sender.Send(_payload);
        _sender.TryPollTransmit(_datagram, out var n);
        _receiver.HandleDatagram(_datagram.AsSpan(0, n), TimeSpan.Zero);
        _receiver.TryReceive(_plaintext, out var m);
        return m;
    }

    private (DtlsConnection Client, DtlsConnection Server) Connect(DtlsOptions serverOptions, DtlsVersion version = DtlsVersion.Dtls12,
        DtlsNamedGroup group = DtlsNamedGroup.X25519)
    {
        var client = DtlsConnection.CreateClient(new DtlsOptions
        {
            Certificate = _clientCert,
            RemoteFingerprint = _serverCert.Sha256Fingerprint,
            MaxVersion = version,
            Groups = [group]
        });
        var server = DtlsConnection.CreateServer(serverOptions, _cookies, [127, 0, 0, 1]);
        client.Start(TimeSpan.Zero);
        for (var round = 0; round < 20 && (client.State != DtlsState.Connected || server.State != DtlsState.Connected); round++)
        {
            while (client.TryPollTransmit(_datagram, out var n)) server.HandleDatagram(_datagram.AsSpan(0, n), TimeSpan.Zero);
            while (server.TryPollTransmit(_datagram, out var n)) client.HandleDatagram(_datagram.AsSpan(0, n), TimeSpan.Zero);
        }
        if (client.State != DtlsState.Connected || server.State != DtlsState.Connected) throw new InvalidOperationException("handshake did not complete");
        return (client, server);
    }

    private System.Security.Cryptography.AesGcm _raw = null!;
    private readonly byte[] _nonce = new byte[12];
    private readonly byte[] _tag = new byte[16];
    private readonly byte[] _aad = new byte[13];
    private DtlsConnection _sender = null!;
    private DtlsConnection _receiver = null!;

    /// <summary>The floor: the .NET AesGcm call alone on the same payload, to separate crypto from record overhead.</summary>
    [Benchmark(Baseline = true)]
    public void RawAesGcmEncrypt1200() => _raw.Encrypt(_nonce, _payload, _plaintext.AsSpan(0, 1200), _tag, _aad);

    /// <summary>Seal one 1200-byte application_data record.</summary>
    [Benchmark]
    public int ProtectRecord1200() => _seal.Seal(DtlsContentType.ApplicationData, 1, _sequence++ & DtlsRecordHeader.MaxSequence, _payload, _record);

    /// <summary>Reference, not a goal: the same record sealed through the platform AesGcm (the fallback engine).</summary>
    [Benchmark]
    public int ProtectRecord1200PlatformAesGcm() => _platformSeal.Seal(DtlsContentType.ApplicationData, 1,
        _sequence++ & DtlsRecordHeader.MaxSequence, _payload, _record);

    /// <summary>Parse and open one 1200-byte record.</summary>
    [Benchmark]
    public int UnprotectRecord1200()
    {
        DtlsRecordHeader.TryRead(_record.AsSpan(0, _recordLength), out var record, out _);
        _open.Open(record, _plaintext, out var n);
        return n;
    }

    /// <summary>DTLS 1.2: client and server in one process, reused certificates, cookie exchange included, until both are connected.</summary>
    [Benchmark]
    public DtlsState FullHandshake()
    {
        var (client, server) =
            Connect(new DtlsOptions { Certificate = _serverCert, RemoteFingerprint = _clientCert.Sha256Fingerprint, MaxVersion = DtlsVersion.Dtls12 });
        client.Dispose();
        server.Dispose();
        return client.State;
    }
}
