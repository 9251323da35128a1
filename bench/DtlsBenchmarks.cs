using BenchmarkDotNet.Attributes;
using Transport.Dtls;
using Transport.Dtls.Records;

namespace Transport.Bench;

/// <summary>
/// DTLS record protection (AES-128-GCM, 1200-byte payload; our AES-NI/PCLMULQDQ engine, and the platform AesGcm
/// fallback for reference) and a full in-process handshake (issue 4): fresh ephemeral X25519 keys, ECDSA P-256
/// signatures made and verified, peer certificates parsed and fingerprint-checked on every run.
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
        (_sender, _receiver) = Connect(new DtlsOptions { Certificate = _serverCert, RemoteFingerprint = _clientCert.Sha256Fingerprint, DeliverApplicationDataAsEvents = false });
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

    private (DtlsConnection Client, DtlsConnection Server) Connect(DtlsOptions serverOptions)
    {
        var client = DtlsConnection.CreateClient(new DtlsOptions { Certificate = _clientCert, RemoteFingerprint = _serverCert.Sha256Fingerprint });
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
    public int ProtectRecord1200PlatformAesGcm() => _platformSeal.Seal(DtlsContentType.ApplicationData, 1, _sequence++ & DtlsRecordHeader.MaxSequence, _payload, _record);

    /// <summary>Parse and open one 1200-byte record.</summary>
    [Benchmark]
    public int UnprotectRecord1200()
    {
        DtlsRecordHeader.TryRead(_record.AsSpan(0, _recordLength), out var record, out _);
        _open.Open(record, _plaintext, out var n);
        return n;
    }

    /// <summary>Client and server in one process, reused certificates, cookie exchange included, until both are connected.</summary>
    [Benchmark]
    public DtlsState FullHandshake()
    {
        var (client, server) = Connect(new DtlsOptions { Certificate = _serverCert, RemoteFingerprint = _clientCert.Sha256Fingerprint });
        client.Dispose();
        server.Dispose();
        return client.State;
    }
}
