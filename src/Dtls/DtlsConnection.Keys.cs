using System.Security.Cryptography;
using Transport.Dtls.Crypto;
using Transport.Dtls.Handshake;
using Transport.Dtls.Records;

namespace Transport.Dtls;

// Transcript and key schedule (RFC 5246 sections 6.3, 7.4.9, 8.1; RFC 7627; RFC 6347 section 4.2.6).
public sealed partial class DtlsConnection
{
    private readonly MemoryStream _transcript = new();
    private int _nextSendSequence;
    private CipherSuiteInfo _suite;
    private byte[] _clientRandom = [];
    private byte[] _serverRandom = [];
    private byte[]? _masterSecret;

    internal void SetRandoms(byte[] client, byte[] server)
    {
        _clientRandom = client;
        _serverRandom = server;
    }

    internal void SetSuite(CipherSuiteInfo suite)
    {
        _suite = suite;
        CipherSuite = suite.Suite;
    }

    internal CipherSuiteInfo Suite => _suite;

    /// <summary>RFC 6347 4.2.1: the first ClientHello and the HelloVerifyRequest stay out of the transcript.</summary>
    internal void ResetTranscript() => _transcript.SetLength(0);

    internal void AppendTranscript(ReadOnlySpan<byte> framed) => _transcript.Write(framed);

    internal ReadOnlySpan<byte> Transcript => _transcript.GetBuffer().AsSpan(0, (int)_transcript.Length);

    internal byte[] TranscriptHash()
    {
        var hash = new byte[TlsPrf.HashLength(_suite.Hash)];
        TlsPrf.Hash(_suite.Hash, Transcript, hash);
        return hash;
    }

    /// <summary>Frames a handshake message with the next message_seq and adds it to the transcript.</summary>
    internal OutgoingMessage NewMessage(DtlsHandshakeType type, WireWriter body, ushort epoch = 0)
    {
        var framed = HandshakeHeader.Frame(type, _nextSendSequence++, body.Written);
        AppendTranscript(framed);
        return new OutgoingMessage(DtlsContentType.Handshake, epoch, framed);
    }

    /// <summary>Frames a handshake message with the next message_seq without the DTLS 1.2 transcript (DTLS 1.3 keeps its own).</summary>
    internal OutgoingMessage FrameMessage(DtlsHandshakeType type, ReadOnlySpan<byte> body, ushort epoch) =>
        new(DtlsContentType.Handshake, epoch, HandshakeHeader.Frame(type, _nextSendSequence++, body));

    internal static OutgoingMessage ChangeCipherSpec() => new(DtlsContentType.ChangeCipherSpec, 0, [1]);

    /// <summary>
    /// master_secret from the premaster secret: with RFC 7627 section 4 over the session hash (transcript through
    /// ClientKeyExchange), else RFC 5246 section 8.1 over the randoms.
    /// </summary>
    internal void DeriveMasterSecret(byte[] premaster, bool extended)
    {
        _masterSecret = new byte[48];
        ExtendedMasterSecret = extended;
        if (extended)
            TlsPrf.Derive(_suite.Hash, premaster, "extended master secret", TranscriptHash(), default, _masterSecret);
        else
            TlsPrf.Derive(_suite.Hash, premaster, "master secret", _clientRandom, _serverRandom, _masterSecret);
        CryptographicOperations.ZeroMemory(premaster);

        // RFC 5246 6.3: key_block = PRF(master, "key expansion", server_random + client_random); AEAD suites take
        // no MAC keys: client_write_key, server_write_key, client_write_IV, server_write_IV.
        int k = _suite.KeyLength, iv = _suite.IvLength;
        Span<byte> block = stackalloc byte[2 * (32 + 12)];
        block = block[..(2 * (k + iv))];
        TlsPrf.Derive(_suite.Hash, _masterSecret, "key expansion", _serverRandom, _clientRandom, block);
        var client = RecordCipher.Create(_suite.Suite, block[..k], block.Slice(2 * k, iv));
        var server = RecordCipher.Create(_suite.Suite, block.Slice(k, k), block.Slice(2 * k + iv, iv));
        CryptographicOperations.ZeroMemory(block);
        if (IsClient) InstallKeys(read: server, write: client);
        else InstallKeys(read: client, write: server);
    }

    /// <summary>verify_data = PRF(master_secret, finished_label, Hash(handshake_messages))[0..11] (RFC 5246 7.4.9).</summary>
    internal byte[] ComputeVerifyData(bool ofClient)
    {
        var data = new byte[12];
        TlsPrf.Derive(_suite.Hash, _masterSecret!, ofClient ? "client finished" : "server finished", TranscriptHash(), default, data);
        return data;
    }

    /// <summary>Both Finished verified: report the connection.</summary>
    internal void Complete()
    {
        var fingerprint = RemoteSha256Fingerprint;
        SrtpKeyingMaterial? keys = null;
        if (SrtpProfile is { } profile)
        {
            var length = 2 * (SrtpProfileInfo.KeyLength(profile) + SrtpProfileInfo.SaltLength(profile));
            var material = new byte[length];
            TlsPrf.Derive(_suite.Hash, _masterSecret!, "EXTRACTOR-dtls_srtp", _clientRandom, _serverRandom, material);
            keys = SrtpKeyingMaterial.Split(profile, material, IsClient);
        }
        Transition(DtlsState.Connected, new DtlsConnected(_suite.Suite, SrtpProfile, fingerprint, keys));
    }
}
