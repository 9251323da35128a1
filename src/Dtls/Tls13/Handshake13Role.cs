using System.Security.Cryptography;
using Transport.Dtls.Crypto;
using Transport.Dtls.Handshake;

namespace Transport.Dtls.Tls13;

/// <summary>Extension code points of TLS 1.3 (RFC 8446 4.2).</summary>
internal static class Ext13
{
    public const ushort SupportedVersions = 43, Cookie = 44, KeyShare = 51, SignatureAlgorithms = 13, SupportedGroups = 10, UseSrtp = 14;

    /// <summary>Reads an extensions block into type -> data; false when malformed or a type repeats (RFC 8446 4.2).</summary>
    public static bool TryParse(ReadOnlySpan<byte> block, out Dictionary<ushort, byte[]> extensions)
    {
        extensions = new();
        var r = new WireReader(block);
        while (!r.IsEmpty)
        {
            if (!r.TryU16(out var type) || !r.TryVector16(out var data)) return false;
            if (!extensions.TryAdd(type, data.ToArray())) return false;
        }
        return true;
    }

    public static void Write(WireWriter w, ushort type, Action<WireWriter> body)
    {
        w.U16(type);
        var b = w.BeginBlock(2);
        body(w);
        w.EndBlock(b, 2);
    }
}

/// <summary>What the key schedule and records need of a DTLS 1.3 suite.</summary>
internal readonly record struct Suite13(DtlsCipherSuite Suite, HashAlgorithmName Hash, int KeyLength)
{
    public static bool TryGet(DtlsCipherSuite suite, out Suite13 info)
    {
        info = suite switch
        {
            DtlsCipherSuite.TlsAes128GcmSha256 => new(suite, HashAlgorithmName.SHA256, 16),
            DtlsCipherSuite.TlsAes256GcmSha384 => new(suite, HashAlgorithmName.SHA384, 32),
            _ => default,
        };
        return info.KeyLength != 0;
    }
}

/// <summary>
/// What the DTLS 1.3 client and server share (RFC 8446 4, RFC 9147 5): the transcript over TLS-style message
/// headers (RFC 9147 5.2: without message_seq and fragment fields), the key schedule with the "dtls13" prefix,
/// epochs 2 (handshake) and 3 (application), Certificate / CertificateVerify / Finished, KeyUpdate.
/// </summary>
internal abstract class Handshake13Role(DtlsConnection connection) : HandshakeRole(connection)
{
    /// <summary>The ServerHello random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 4.1.3).</summary>
    protected static readonly byte[] HelloRetryRandom = SHA256.HashData("HelloRetryRequest"u8);

    /// <summary>The last eight bytes of a 1.2 ServerHello random from a 1.3-capable server (RFC 8446 4.1.3).</summary>
    protected static ReadOnlySpan<byte> DowngradeSentinel => "DOWNGRD\u0001"u8;

    /// <summary>Schemes we accept in a DTLS 1.3 CertificateVerify (no PKCS #1 v1.5 there, RFC 8446 4.4.3).</summary>
    protected static readonly DtlsSignatureScheme[] Schemes13 =
        [DtlsSignatureScheme.EcdsaSecp256r1Sha256, DtlsSignatureScheme.EcdsaSecp384r1Sha384, DtlsSignatureScheme.RsaPssRsaeSha256];

    protected const int MaxKeyUpdates = 1 << 16;
    private readonly MemoryStream _transcript = new();
    protected Tls13KeySchedule? Schedule { get; set; }
    protected Suite13 Suite { get; set; }
    private byte[]? _clientAppSecret, _serverAppSecret;
    private ulong _readEpoch = 3;

    protected void AppendTranscript(DtlsHandshakeType type, ReadOnlySpan<byte> body)
    {
        Span<byte> header = [(byte)type, (byte)(body.Length >> 16), (byte)(body.Length >> 8), (byte)body.Length];
        _transcript.Write(header);
        _transcript.Write(body);
    }

    protected void AppendTranscript(ReceivedMessage message) => AppendTranscript(message.Type, message.Body);

    /// <summary>RFC 8446 4.4.1: after a HelloRetryRequest, ClientHello1 is replaced by message_hash(Hash(ClientHello1)).</summary>
    protected void ReplaceTranscriptWithMessageHash(HashAlgorithmName hash)
    {
        var ch1 = _transcript.ToArray();
        var digest = hash == HashAlgorithmName.SHA384 ? SHA384.HashData(ch1) : SHA256.HashData(ch1);
        _transcript.SetLength(0);
        AppendTranscript(DtlsHandshakeType.MessageHash, digest);
    }

    protected byte[] TranscriptHash() => Schedule!.HashData(_transcript.GetBuffer().AsSpan(0, (int)_transcript.Length));

    protected OutgoingMessage NewMessage13(DtlsHandshakeType type, WireWriter body, ushort epoch)
    {
        AppendTranscript(type, body.Written);
        return Connection.FrameMessage(type, body.Written, epoch);
    }

    protected void SetSuite(Suite13 suite)
    {
        Suite = suite;
        Connection.CipherSuite = suite.Suite;
        Connection.Version = DtlsVersion.Dtls13;
    }

    /// <summary>Handshake secret from the key exchange; handshake traffic keys (epoch 2) over Hash(ClientHello..ServerHello).</summary>
    protected void InstallHandshakeKeys(byte[] shared)
    {
        Schedule = new Tls13KeySchedule(Suite.Hash);
        Schedule.SetSharedSecret(shared);
        CryptographicOperations.ZeroMemory(shared);
        Schedule.DeriveHandshakeTrafficSecrets(TranscriptHash());
        Connection.Schedule13 = Schedule;
        var client = Cipher(Schedule.ClientHandshakeTrafficSecret!, 2);
        var server = Cipher(Schedule.ServerHandshakeTrafficSecret!, 2);
        Connection.InstallRead13(Connection.IsClient ? server : client);
        Connection.InstallWrite13(Connection.IsClient ? client : server);
    }

    private Dtls13RecordCipher Cipher(byte[] secret, ulong epoch)
    {
        var (key, iv, sn) = Schedule!.TrafficKeys(secret, Suite.KeyLength);
        return new Dtls13RecordCipher(Suite.Suite, epoch, key, iv, sn);
    }

    /// <summary>Application secrets (epoch 3) over Hash(ClientHello..server Finished); installs the read side.</summary>
    protected void DeriveApplicationKeys()
    {
        Schedule!.DeriveApplicationSecrets(TranscriptHash());
        _clientAppSecret = Schedule.ClientApplicationTrafficSecret;
        _serverAppSecret = Schedule.ServerApplicationTrafficSecret;
        Connection.InstallRead13(Cipher(Connection.IsClient ? _serverAppSecret! : _clientAppSecret!, 3));
    }

    /// <summary>Our application write epoch 3 (after our Finished was sent).</summary>
    protected void InstallApplicationWrite() =>
        Connection.InstallWrite13(Cipher(Connection.IsClient ? _clientAppSecret! : _serverAppSecret!, 3));

    protected byte[] FinishedData(bool ofServer) =>
        Schedule!.FinishedVerifyData(ofServer ? Schedule.ServerHandshakeTrafficSecret! : Schedule.ClientHandshakeTrafficSecret!, TranscriptHash());

    /// <summary>The content a CertificateVerify signs (RFC 8446 4.4.3): 64 spaces, context string, 0, transcript hash.</summary>
    protected byte[] SignedContent(bool ofServer)
    {
        var context = ofServer ? "TLS 1.3, server CertificateVerify"u8 : "TLS 1.3, client CertificateVerify"u8;
        var hash = TranscriptHash();
        var content = new byte[64 + context.Length + 1 + hash.Length];
        content.AsSpan(0, 64).Fill(0x20);
        context.CopyTo(content.AsSpan(64));
        hash.CopyTo(content.AsSpan(64 + context.Length + 1));
        return content;
    }

    protected WireWriter Certificate13Body(ReadOnlySpan<byte> context)
    {
        var w = new WireWriter();
        w.Vector8(context);
        var list = w.BeginBlock(3);
        w.Vector24(Options.Certificate.Der.Span);
        w.Vector16([]);
        w.EndBlock(list, 3);
        return w;
    }

    /// <summary>Reads a 1.3 Certificate (RFC 8446 4.4.2) and checks the fingerprint; false after failing.</summary>
    protected bool AcceptCertificate13(ReceivedMessage message, bool allowEmpty, out bool empty)
    {
        empty = false;
        var r = new WireReader(message.Body);
        if (!r.TryVector8(out _) || !r.TryVector24(out var list) || !r.IsEmpty) { DecodeError(message); return false; }
        var l = new WireReader(list);
        if (l.IsEmpty)
        {
            empty = true;
            if (allowEmpty) return true;
            Connection.Fail(DtlsStateReason.BadCertificate, (DtlsAlertDescription)116, "The peer sent no certificate."); // certificate_required
            return false;
        }
        if (!l.TryVector24(out var der) || der.IsEmpty || !l.TryVector16(out _)) { DecodeError(message); return false; }
        return AcceptCertificateDer(der);
    }

    protected WireWriter CertificateVerifyBody(DtlsSignatureScheme scheme, bool ofServer)
    {
        var w = new WireWriter();
        w.U16((ushort)scheme);
        w.Vector16(Options.Certificate.Sign(scheme, SignedContent(ofServer)));
        return w;
    }

    /// <summary>Verifies the peer's CertificateVerify over the transcript so far; false after failing.</summary>
    protected bool VerifyCertificateVerify(ReceivedMessage message, bool ofServer)
    {
        var r = new WireReader(message.Body);
        if (!TryReadSignature(ref r, out var scheme, out var signature) || !r.IsEmpty) { DecodeError(message); return false; }
        if (Array.IndexOf(Schemes13, scheme) < 0 || !Connection.RemoteKey!.Verify(scheme, SignedContent(ofServer), signature))
        {
            Connection.Fail(DtlsStateReason.VerificationFailed, DtlsAlertDescription.DecryptError, "CertificateVerify does not verify.");
            return false;
        }
        Connection.PeerSignatureScheme = scheme;
        AppendTranscript(message);
        return true;
    }

    /// <summary>Verifies the peer's Finished; false after failing.</summary>
    protected bool VerifyFinished(ReceivedMessage message, bool ofServer)
    {
        var expected = FinishedData(ofServer);
        if (!CryptographicOperations.FixedTimeEquals(expected, message.Body))
        {
            Connection.Fail(DtlsStateReason.VerificationFailed, DtlsAlertDescription.DecryptError,
                (ofServer ? "Server" : "Client") + " Finished does not verify.");
            return false;
        }
        AppendTranscript(message);
        return true;
    }

    protected static void WriteSrtp(WireWriter w, IEnumerable<SrtpProtectionProfile> profiles) =>
        Ext13.Write(w, Ext13.UseSrtp, x =>
        {
            var b = x.BeginBlock(2);
            foreach (var p in profiles) x.U16((ushort)p);
            x.EndBlock(b, 2);
            x.Vector8([]);
        });

    /// <summary>use_srtp (RFC 5764 4.1.1): SRTPProtectionProfiles&lt;2..2^16-1&gt;, srtp_mki&lt;0..255&gt;.</summary>
    internal static bool TryReadSrtpProfiles(byte[] data, List<SrtpProtectionProfile> into)
    {
        var r = new WireReader(data);
        if (!r.TryVector16(out var list) || (list.Length & 1) != 0 || !r.TryVector8(out _) || !r.IsEmpty) return false;
        var l = new WireReader(list);
        while (l.TryU16(out var v)) into.Add((SrtpProtectionProfile)v);
        return true;
    }

    protected static bool TryReadSchemes(byte[] data, List<DtlsSignatureScheme> into)
    {
        var r = new WireReader(data);
        if (!r.TryVector16(out var list) || (list.Length & 1) != 0 || !r.IsEmpty) return false;
        var l = new WireReader(list);
        while (l.TryU16(out var v)) into.Add((DtlsSignatureScheme)v);
        return true;
    }

    /// <summary>Both Finished verified (server) or ours sent (client): report the connection with the SRTP keys.</summary>
    protected void Complete13()
    {
        var fingerprint = Connection.RemoteSha256Fingerprint;
        SrtpKeyingMaterial? keys = null;
        if (Connection.SrtpProfile is { } profile)
        {
            var length = 2 * (SrtpProfileInfo.KeyLength(profile) + SrtpProfileInfo.SaltLength(profile));
            keys = SrtpKeyingMaterial.Split(profile, Schedule!.Export("EXTRACTOR-dtls_srtp", default, length), Connection.IsClient);
        }
        Connection.Transition(DtlsState.Connected, new DtlsConnected(Suite.Suite, Connection.SrtpProfile, fingerprint, keys));
        // Nothing after the handshake hashes the transcript (KeyUpdate derives from the application secrets; tickets
        // are ignored): its buffer (the whole handshake, certificates included, 4-8 KiB) goes.
        _transcript.SetLength(0);
        _transcript.Capacity = 0;
        // The server's flight ended with the client's Finished and its ACK went in epoch 3: the handshake epoch's
        // keys go (a client Finished resent because our ACK was lost is answered from the record numbers kept).
        if (!Connection.IsClient) Connection.DropHandshakeEpoch13();
    }

    /// <summary>Messages after the handshake (RFC 8446 4.6): KeyUpdate moves the read epoch; NewSessionTicket is ignored.</summary>
    public void HandlePostHandshake(ReceivedMessage message)
    {
        switch (message.Type)
        {
            case DtlsHandshakeType.NewSessionTicket:
                Connection.SendAck13();
                Connection.ClearAckable();
                break;
            case DtlsHandshakeType.KeyUpdate:
                if (message.Body.Length != 1 || message.Body[0] > 1) { DecodeError(message); return; }
                // RFC 9147 8: the peer's next records use epoch + 1 with the next traffic secret; acknowledge it.
                if (_readEpoch >= MaxKeyUpdates)
                {
                    Connection.Fail(DtlsStateReason.ProtocolViolation, DtlsAlertDescription.UnexpectedMessage, "Too many key updates.");
                    return;
                }
                _readEpoch++;
                if (Connection.IsClient) _serverAppSecret = Schedule!.NextTrafficSecret(_serverAppSecret!);
                else _clientAppSecret = Schedule!.NextTrafficSecret(_clientAppSecret!);
                Connection.InstallRead13(Cipher(Connection.IsClient ? _serverAppSecret! : _clientAppSecret!, _readEpoch));
                Connection.SendAck13();
                Connection.ClearAckable();
                Connection.KeyUpdatesReceived++;
                if (message.Body[0] == 1) Connection.UpdateKeys(requestPeer: false);
                break;
            default:
                Unexpected(message);
                break;
        }
    }

    /// <summary>Sends KeyUpdate (RFC 9147 8); returns the message to resend until acknowledged, then switch epochs.</summary>
    internal OutgoingMessage StartKeyUpdate(bool requestPeer)
    {
        var w = new WireWriter();
        w.U8(requestPeer ? 1 : 0);
        return Connection.FrameMessage(DtlsHandshakeType.KeyUpdate, w.Written, (ushort)Connection.CurrentWriteEpoch13);
    }

    /// <summary>Our KeyUpdate was acknowledged: write with the next secret in the next epoch.</summary>
    internal void FinishKeyUpdate()
    {
        var next = Connection.CurrentWriteEpoch13 + 1;
        if (Connection.IsClient) _clientAppSecret = Schedule!.NextTrafficSecret(_clientAppSecret!);
        else _serverAppSecret = Schedule!.NextTrafficSecret(_serverAppSecret!);
        Connection.InstallWrite13(Cipher(Connection.IsClient ? _clientAppSecret! : _serverAppSecret!, next));
    }
}
