using System.Security.Cryptography;
using Transport.Dtls.Crypto;
using Transport.Dtls.Handshake;

namespace Transport.Dtls.Tls13;

/// <summary>
/// DTLS 1.3 server (RFC 9147 5, RFC 8446 4). Decides the version once the ClientHello is whole (it may span several
/// records and datagrams): without DTLS 1.3 in supported_versions the DTLS 1.2 server takes over. Otherwise: a
/// HelloRetryRequest when no offered key share fits (cookie only when <see cref="DtlsOptions.HelloRetryCookie"/>);
/// ServerHello, EncryptedExtensions, CertificateRequest, Certificate, CertificateVerify, Finished; then the
/// client's Certificate, CertificateVerify, Finished, which we ACK.
/// </summary>
internal sealed class Server13Handshake(DtlsConnection connection) : Handshake13Role(connection)
{
    private enum Step { ClientHello, Certificate, CertificateVerify, Finished, Done }

    private Step _step = Step.ClientHello;
    private DtlsNamedGroup? _retryGroup;
    private byte[]? _cookie;

    private IEnumerable<DtlsNamedGroup> Groups13 => Options.Groups.Where(KeyShare13.IsSupported);

    public override void HandleMessage(ReceivedMessage message)
    {
        switch (_step, message.Type)
        {
            case (Step.ClientHello, DtlsHandshakeType.ClientHello):
                OnClientHello(message);
                break;
            case (Step.Certificate, DtlsHandshakeType.Certificate):
                if (!AcceptCertificate13(message, allowEmpty: false, out _)) return;
                AppendTranscript(message);
                _step = Step.CertificateVerify;
                break;
            case (Step.CertificateVerify, DtlsHandshakeType.CertificateVerify):
                if (VerifyCertificateVerify(message, ofServer: false)) _step = Step.Finished;
                break;
            case (Step.Finished, DtlsHandshakeType.Finished):
                OnFinished(message);
                break;
            default:
                Unexpected(message);
                break;
        }
    }

    private void OnClientHello(ReceivedMessage message)
    {
        var hello = ClientHello13.Parse(message.Body);
        if (hello is null) { DecodeError(message); return; }
        var offers13 = hello.Versions.Contains((ushort)DtlsVersion.Dtls13);
        if (!offers13)
        {
            if (_retryGroup is null && Options.MinVersion == DtlsVersion.Dtls12)
            {
                // A DTLS 1.2 client: the 1.2 machine answers this very ClientHello.
                var role = new ServerHandshake(Connection);
                Connection.ReplaceRole(role);
                role.HandleMessage(message);
                return;
            }
            Connection.Fail(DtlsStateReason.NoCommonParameters, DtlsAlertDescription.ProtocolVersion, "The client does not offer DTLS 1.3.");
            return;
        }
        Suite13 suite = default;
        foreach (var s in Options.CipherSuites13)
            if (hello.CipherSuites.Contains((ushort)s) && Suite13.TryGet(s, out var info)) { suite = info; break; }
        var allowed = hello.SignatureSchemes.Where(s => Array.IndexOf(Schemes13, s) >= 0).ToList();
        var scheme = Options.Certificate.ChooseScheme(allowed);
        if (suite.KeyLength == 0 || scheme is null)
        {
            Connection.Fail(DtlsStateReason.NoCommonParameters, DtlsAlertDescription.HandshakeFailure,
                "No common DTLS 1.3 cipher suite or signature scheme with the client.");
            return;
        }
        if (_retryGroup is { } expectedGroup)
        {
            // RFC 8446 4.1.2: the second ClientHello carries exactly the share asked for, and our cookie.
            if (hello.Shares.Count != 1 || hello.Shares[0].Group != expectedGroup || suite.Suite != Suite.Suite)
            {
                Connection.Fail(DtlsStateReason.ProtocolViolation, DtlsAlertDescription.IllegalParameter,
                    "The second ClientHello does not follow the HelloRetryRequest.");
                return;
            }
            if (_cookie is not null && (hello.Cookie is null || !CryptographicOperations.FixedTimeEquals(hello.Cookie, _cookie)))
            {
                Connection.Fail(DtlsStateReason.ProtocolViolation, DtlsAlertDescription.IllegalParameter, "The second ClientHello does not echo our cookie.");
                return;
            }
        }
        (DtlsNamedGroup Group, byte[] Key)? chosen = null;
        foreach (var g in Groups13)
        {
            var i = hello.Shares.FindIndex(s => s.Group == g);
            if (i >= 0) { chosen = hello.Shares[i]; break; }
        }
        if (chosen is null)
        {
            foreach (var g in Groups13)
                if (hello.Groups.Contains(g) && _retryGroup is null) { SendHelloRetryRequest(message, suite, g); return; }
            Connection.Fail(DtlsStateReason.NoCommonParameters, DtlsAlertDescription.HandshakeFailure, "No common key exchange group with the client.");
            return;
        }
        if (!KeyShare13.TryRespond(chosen.Value.Group, chosen.Value.Key, out var serverShare, out var shared))
        {
            Connection.Fail(DtlsStateReason.ProtocolViolation, DtlsAlertDescription.IllegalParameter, "Invalid client key share.");
            return;
        }
        SrtpProtectionProfile? profile = null;
        if (hello.SrtpProfiles is { } offered)
            foreach (var p in Options.SrtpProfiles)
                if (offered.Contains(p)) { profile = p; break; }

        SetSuite(suite);
        Connection.Group = chosen.Value.Group;
        Connection.SrtpProfile = profile;
        var serverRandom = NewRandom();
        Connection.SetRandoms(hello.Random, serverRandom);
        AppendTranscript(message);

        var flight = new List<OutgoingMessage>(6);
        var sh = ServerHelloStart(serverRandom, hello.SessionId, suite.Suite);
        var ext = sh.BeginBlock(2);
        Ext13.Write(sh, Ext13.SupportedVersions, x => x.U16((ushort)DtlsVersion.Dtls13));
        Ext13.Write(sh, Ext13.KeyShare, x =>
        {
            x.U16((ushort)chosen.Value.Group);
            x.Vector16(serverShare);
        });
        sh.EndBlock(ext, 2);
        flight.Add(NewMessage13(DtlsHandshakeType.ServerHello, sh, 0));
        InstallHandshakeKeys(shared);

        var ee = new WireWriter();
        var eb = ee.BeginBlock(2);
        if (profile is { } chosenProfile) WriteSrtp(ee, [chosenProfile]);
        ee.EndBlock(eb, 2);
        flight.Add(NewMessage13(DtlsHandshakeType.EncryptedExtensions, ee, 2));
        if (Options.RequireClientCertificate)
        {
            var cr = new WireWriter();
            cr.Vector8([]);
            var cb = cr.BeginBlock(2);
            Ext13.Write(cr, Ext13.SignatureAlgorithms, x => WriteSchemes(x, Schemes13));
            cr.EndBlock(cb, 2);
            flight.Add(NewMessage13(DtlsHandshakeType.CertificateRequest, cr, 2));
        }
        flight.Add(NewMessage13(DtlsHandshakeType.Certificate, Certificate13Body([]), 2));
        flight.Add(NewMessage13(DtlsHandshakeType.CertificateVerify, CertificateVerifyBody(scheme.Value, ofServer: true), 2));
        var finished = new WireWriter();
        finished.Bytes(FinishedData(ofServer: true));
        flight.Add(NewMessage13(DtlsHandshakeType.Finished, finished, 2));
        DeriveApplicationKeys();
        Connection.PeerFlightEnded(message.Sequence);
        Connection.ClearAckable();
        Connection.SendFlight(flight, expectReply: true);
        InstallApplicationWrite();
        _step = Options.RequireClientCertificate ? Step.Certificate : Step.Finished;
    }

    private void SendHelloRetryRequest(ReceivedMessage message, Suite13 suite, DtlsNamedGroup group)
    {
        Suite = suite;
        _retryGroup = group;
        AppendTranscript(message);
        ReplaceTranscriptWithMessageHash(suite.Hash);
        var hello = ClientHello13.Parse(message.Body)!;
        var w = ServerHelloStart(HelloRetryRandom, hello.SessionId, suite.Suite);
        var ext = w.BeginBlock(2);
        Ext13.Write(w, Ext13.SupportedVersions, x => x.U16((ushort)DtlsVersion.Dtls13));
        Ext13.Write(w, Ext13.KeyShare, x => x.U16((ushort)group));
        if (Options.HelloRetryCookie)
        {
            _cookie = NewRandom();
            Ext13.Write(w, Ext13.Cookie, x => x.Vector16(_cookie));
        }
        w.EndBlock(ext, 2);
        Connection.HelloRetryRequests++;
        Connection.PeerFlightEnded(message.Sequence);
        // No timer: a lost HelloRetryRequest is resent when the client resends its ClientHello.
        Connection.SendFlight([NewMessage13(DtlsHandshakeType.ServerHello, w, 0)], expectReply: false);
    }

    private void OnFinished(ReceivedMessage message)
    {
        if (!VerifyFinished(message, ofServer: false)) return;
        _step = Step.Done;
        Connection.PeerFlightEnded(message.Sequence);
        Connection.StopRetransmitting(forgetFlight: true);
        // RFC 9147 5.8.4 / 7: the client's last flight gets an explicit ACK (our epoch 3 is current now).
        Connection.SendAck13();
        Complete13();
    }

    // The fixed part of a ServerHello, which a HelloRetryRequest shares with its own random (RFC 8446 section 4.1.3,
    // DTLS legacy_version 0xFEFD per RFC 9147 section 5.3): version, random, the client's session id echoed, the
    // suite, no compression. The extensions follow.
    private static WireWriter ServerHelloStart(ReadOnlySpan<byte> random, ReadOnlySpan<byte> sessionId, DtlsCipherSuite suite)
    {
        var w = new WireWriter();
        w.U16(0xFEFD);
        w.Bytes(random);
        w.Vector8(sessionId);
        w.U16((ushort)suite);
        w.U8(0);
        return w;
    }
}

/// <summary>The parts of a ClientHello the DTLS 1.3 server reads (RFC 8446 4.1.2, RFC 9147 5.3).</summary>
internal sealed class ClientHello13
{
    public byte[] Random = [];
    public byte[] SessionId = [];
    public readonly List<ushort> CipherSuites = new();
    public readonly List<ushort> Versions = new();
    public readonly List<DtlsNamedGroup> Groups = new();
    public readonly List<(DtlsNamedGroup Group, byte[] Key)> Shares = new();
    public readonly List<DtlsSignatureScheme> SignatureSchemes = new();
    public List<SrtpProtectionProfile>? SrtpProfiles;
    public byte[]? Cookie;

    /// <summary>A vector (length of <paramref name="lengthBytes"/>) of 16-bit values; false when malformed.</summary>
    private static bool TryU16List(byte[] data, int lengthBytes, Action<ushort> add)
    {
        var x = new WireReader(data);
        ReadOnlySpan<byte> list;
        if (!(lengthBytes == 1 ? x.TryVector8(out list) : x.TryVector16(out list)) || (list.Length & 1) != 0) return false;
        var l = new WireReader(list);
        while (l.TryU16(out var v)) add(v);
        return true;
    }

    public static ClientHello13? Parse(ReadOnlySpan<byte> body)
    {
        var r = new WireReader(body);
        var m = new ClientHello13();
        if (!r.TryU16(out _) || !r.TryBytes(32, out var random) || !r.TryVector8(out var sid) || !r.TryVector8(out _)
            || !r.TryVector16(out var suites) || (suites.Length & 1) != 0 || !r.TryVector8(out _))
            return null;
        m.Random = random.ToArray();
        m.SessionId = sid.ToArray();
        var s = new WireReader(suites);
        while (s.TryU16(out var v)) m.CipherSuites.Add(v);
        if (r.IsEmpty) return m;
        if (!r.TryVector16(out var block) || !r.IsEmpty || !Ext13.TryParse(block, out var ext)) return null;
        if (ext.TryGetValue(Ext13.SupportedVersions, out var sv) && !TryU16List(sv, 1, m.Versions.Add)) return null;
        if (ext.TryGetValue(Ext13.SupportedGroups, out var sg) && !TryU16List(sg, 2, v => m.Groups.Add((DtlsNamedGroup)v))) return null;
        if (ext.TryGetValue(Ext13.KeyShare, out var ks))
        {
            var x = new WireReader(ks);
            if (!x.TryVector16(out var list) || !x.IsEmpty) return null;
            var l = new WireReader(list);
            while (!l.IsEmpty)
            {
                if (!l.TryU16(out var g) || !l.TryVector16(out var key) || key.IsEmpty) return null;
                if (m.Shares.Exists(e => e.Group == (DtlsNamedGroup)g)) return null; // RFC 8446 4.2.8: one share per group
                m.Shares.Add(((DtlsNamedGroup)g, key.ToArray()));
            }
        }
        if (ext.TryGetValue(Ext13.SignatureAlgorithms, out var sa) && !TryU16List(sa, 2, v => m.SignatureSchemes.Add((DtlsSignatureScheme)v))) return null;
        if (ext.TryGetValue(Ext13.UseSrtp, out var srtp))
        {
            m.SrtpProfiles = new();
            if (!Handshake13Role.TryReadSrtpProfiles(srtp, m.SrtpProfiles)) return null;
        }
        if (ext.TryGetValue(Ext13.Cookie, out var cookie))
        {
            var x = new WireReader(cookie);
            if (!x.TryVector16(out var value)) return null;
            m.Cookie = value.ToArray();
        }
        return m;
    }
}
