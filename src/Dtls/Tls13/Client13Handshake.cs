using Transport.Dtls.Crypto;
using Transport.Dtls.Handshake;

namespace Transport.Dtls.Tls13;

/// <summary>
/// DTLS 1.3 client (RFC 9147 5, RFC 8446 4): ClientHello offering 1.3 (and 1.2 when allowed) with key shares;
/// HelloRetryRequest; ServerHello, EncryptedExtensions, CertificateRequest, Certificate, CertificateVerify,
/// Finished; our Certificate, CertificateVerify, Finished, retransmitted until the server's ACK. A 1.2 ServerHello
/// (or HelloVerifyRequest) hands over to the DTLS 1.2 client after the downgrade check.
/// </summary>
internal sealed class Client13Handshake(DtlsConnection connection) : Handshake13Role(connection)
{
    private enum Step { ServerHello, EncryptedExtensions, CertificateRequestOrCertificate, Certificate, CertificateVerify, Finished, Done }

    private readonly byte[] _random = NewRandom();
    private readonly Dictionary<DtlsNamedGroup, KeyExchange> _shares = new();
    private byte[] _cookie = [];
    private bool _retried;
    private Step _step = Step.ServerHello;
    private bool _certificateRequested;
    private byte[] _requestContext = [];
    private readonly List<DtlsSignatureScheme> _requestedSchemes = new();

    private bool Offers12 => Options.MinVersion == DtlsVersion.Dtls12;

    private IEnumerable<DtlsNamedGroup> Groups13 => Options.Groups.Where(KeyShare13.IsSupported);

    public override void Start()
    {
        foreach (var g in Groups13.Take(Options.KeyShareCount)) _shares[g] = KeyShare13.CreateClientShare(g);
        SendClientHello();
    }

    private void SendClientHello()
    {
        var w = new WireWriter();
        w.U16(0xFEFD);               // legacy_version: DTLS 1.2 (RFC 9147 5.3)
        w.Bytes(_random);
        w.Vector8([]);               // legacy_session_id
        w.Vector8([]);               // legacy_cookie
        var suites = w.BeginBlock(2);
        foreach (var s in Options.CipherSuites13) if (Suite13.TryGet(s, out _)) w.U16((ushort)s);
        if (Offers12)
            foreach (var s in Options.CipherSuites)
                if (CipherSuiteInfo.TryGet(s, out _)) w.U16((ushort)s);
        w.EndBlock(suites, 2);
        w.Vector8([0]);
        var ext = w.BeginBlock(2);
        Ext13.Write(w, Ext13.SupportedVersions, x =>
        {
            var b = x.BeginBlock(1);
            x.U16((ushort)DtlsVersion.Dtls13);
            if (Offers12) x.U16((ushort)DtlsVersion.Dtls12);
            x.EndBlock(b, 1);
        });
        Ext13.Write(w, Ext13.SupportedGroups, x =>
        {
            var b = x.BeginBlock(2);
            foreach (var g in Groups13) x.U16((ushort)g);
            x.EndBlock(b, 2);
        });
        Ext13.Write(w, Ext13.KeyShare, x =>
        {
            var b = x.BeginBlock(2);
            foreach (var (g, share) in _shares)
            {
                x.U16((ushort)g);
                x.Vector16(share.PublicKey);
            }
            x.EndBlock(b, 2);
        });
        Ext13.Write(w, Ext13.SignatureAlgorithms, x => WriteSchemes(x, VerifiableSchemes));
        if (Options.SrtpProfiles.Count > 0) WriteSrtp(w, Options.SrtpProfiles);
        if (_cookie.Length > 0) Ext13.Write(w, Ext13.Cookie, x => x.Vector16(_cookie));
        if (Offers12)
        {
            w.U16(ExtensionType.RenegotiationInfo); w.U16(1); w.U8(0);
            w.U16(ExtensionType.ExtendedMasterSecret); w.U16(0);
            w.U16(ExtensionType.EcPointFormats); w.U16(2); w.U8(1); w.U8(0);
        }
        w.EndBlock(ext, 2);
        // The DTLS 1.2 transcript gets it too, in case the server answers 1.2.
        var message = Connection.NewMessage(DtlsHandshakeType.ClientHello, w);
        AppendTranscript(DtlsHandshakeType.ClientHello, w.Written);
        Connection.SendFlight([message], expectReply: true);
    }

    public override void HandleMessage(ReceivedMessage message)
    {
        switch (_step, message.Type)
        {
            case (Step.ServerHello, DtlsHandshakeType.ServerHello):
                OnServerHello(message);
                break;
            case (Step.ServerHello, DtlsHandshakeType.HelloVerifyRequest) when Offers12 && !_retried:
                HandOverTo12(message);
                break;
            case (Step.EncryptedExtensions, DtlsHandshakeType.EncryptedExtensions):
                OnEncryptedExtensions(message);
                break;
            case (Step.CertificateRequestOrCertificate, DtlsHandshakeType.CertificateRequest):
                OnCertificateRequest(message);
                break;
            case (Step.CertificateRequestOrCertificate or Step.Certificate, DtlsHandshakeType.Certificate):
                if (!AcceptCertificate13(message, allowEmpty: false, out _)) return;
                AppendTranscript(message);
                _step = Step.CertificateVerify;
                break;
            case (Step.CertificateVerify, DtlsHandshakeType.CertificateVerify):
                if (VerifyCertificateVerify(message, ofServer: true)) _step = Step.Finished;
                break;
            case (Step.Finished, DtlsHandshakeType.Finished):
                OnFinished(message);
                break;
            default:
                Unexpected(message);
                break;
        }
    }

    private void HandOverTo12(ReceivedMessage message)
    {
        var role = new ClientHandshake(Connection, _random);
        Connection.ReplaceRole(role);
        Dispose();
        role.HandleMessage(message);
    }

    private void OnServerHello(ReceivedMessage message)
    {
        var r = new WireReader(message.Body);
        if (!r.TryU16(out _) || !r.TryBytes(32, out var random) || !r.TryVector8(out var sessionEcho) || !r.TryU16(out var suiteValue)
            || !r.TryU8(out var compression) || !r.TryVector16(out var extBlock) || !r.IsEmpty
            || !Ext13.TryParse(extBlock, out var ext))
        {
            // A 1.2 ServerHello may lack extensions altogether: let the 1.2 client judge it.
            if (Offers12 && !_retried) { CheckDowngradeThen12(message); return; }
            DecodeError(message);
            return;
        }
        if (!ext.TryGetValue(Ext13.SupportedVersions, out var sv))
        {
            if (Offers12 && !_retried) { CheckDowngradeThen12(message); return; }
            Connection.Fail(DtlsStateReason.NoCommonParameters, DtlsAlertDescription.ProtocolVersion, "The server does not speak DTLS 1.3.");
            return;
        }
        if (sv.Length != 2 || ((sv[0] << 8) | sv[1]) != (ushort)DtlsVersion.Dtls13 || compression != 0 || !sessionEcho.IsEmpty)
        {
            Connection.Fail(DtlsStateReason.ProtocolViolation, DtlsAlertDescription.IllegalParameter, "Bad ServerHello for DTLS 1.3.");
            return;
        }
        var suite = (DtlsCipherSuite)suiteValue;
        if (!Options.CipherSuites13.Contains(suite) || !Suite13.TryGet(suite, out var info) || (_retried && Suite.Suite != suite))
        {
            Connection.Fail(DtlsStateReason.NoCommonParameters, DtlsAlertDescription.IllegalParameter,
                $"Server chose a suite we did not offer: 0x{suiteValue:X4}.");
            return;
        }
        if (!ext.TryGetValue(Ext13.KeyShare, out var ks))
        {
            Connection.Fail(DtlsStateReason.ProtocolViolation, DtlsAlertDescription.MissingExtension, "ServerHello without key_share.");
            return;
        }
        if (random.SequenceEqual(HelloRetryRandom))
        {
            OnHelloRetryRequest(message, info, ks, ext);
            return;
        }
        var k = new WireReader(ks);
        if (!k.TryU16(out var g) || !k.TryVector16(out var serverShare) || !k.IsEmpty) { DecodeError(message); return; }
        var group = (DtlsNamedGroup)g;
        if (!_shares.TryGetValue(group, out var share))
        {
            Connection.Fail(DtlsStateReason.NoCommonParameters, DtlsAlertDescription.IllegalParameter, $"Server chose a key share we did not send: {g}.");
            return;
        }
        var shared = share.DeriveSecret(serverShare);
        if (shared is null)
        {
            Connection.Fail(DtlsStateReason.ProtocolViolation, DtlsAlertDescription.IllegalParameter, "Invalid server key share.");
            return;
        }
        SetSuite(info);
        Connection.Group = group;
        Connection.SetRandoms(_random, random.ToArray());
        AppendTranscript(message);
        InstallHandshakeKeys(shared);
        Dispose();
        _step = Step.EncryptedExtensions;
    }

    private void CheckDowngradeThen12(ReceivedMessage message)
    {
        // RFC 8446 4.1.3: a 1.3-capable server that answers 1.2 marks its random; seeing the mark means an attacker
        // removed 1.3 from our offer.
        if (message.Body.Length >= 34 && message.Body.AsSpan(2 + 24, 8).SequenceEqual(DowngradeSentinel))
        {
            Connection.Fail(DtlsStateReason.ProtocolViolation, DtlsAlertDescription.IllegalParameter,
                "Downgrade detected: the server can speak DTLS 1.3 but answered 1.2.");
            return;
        }
        HandOverTo12(message);
    }

    private void OnHelloRetryRequest(ReceivedMessage message, Suite13 info, byte[] keyShare, Dictionary<ushort, byte[]> ext)
    {
        if (_retried)
        {
            Connection.Fail(DtlsStateReason.ProtocolViolation, DtlsAlertDescription.UnexpectedMessage, "A second HelloRetryRequest.");
            return;
        }
        if (keyShare.Length != 2) { DecodeError(message); return; }
        var group = (DtlsNamedGroup)((keyShare[0] << 8) | keyShare[1]);
        if (!Groups13.Contains(group) || _shares.ContainsKey(group))
        {
            Connection.Fail(DtlsStateReason.NoCommonParameters, DtlsAlertDescription.IllegalParameter,
                $"HelloRetryRequest for a group we cannot use: {group}.");
            return;
        }
        _retried = true;
        Suite = info;
        // RFC 8446 4.4.1: ClientHello1 becomes message_hash; then the HelloRetryRequest.
        ReplaceTranscriptWithMessageHash(info.Hash);
        AppendTranscript(message);
        if (ext.TryGetValue(Ext13.Cookie, out var cookie))
        {
            var c = new WireReader(cookie);
            if (!c.TryVector16(out var value) || value.IsEmpty || !c.IsEmpty) { DecodeError(message); return; }
            _cookie = value.ToArray();
        }
        foreach (var s in _shares.Values) s.Dispose();
        _shares.Clear();
        _shares[group] = KeyShare13.CreateClientShare(group);
        Connection.HelloRetryRequests++;
        Connection.PeerFlightEnded(message.Sequence);
        // The server answered statelessly for all we know: restart our epoch-0 read window.
        SendClientHello();
    }

    private void OnEncryptedExtensions(ReceivedMessage message)
    {
        var r = new WireReader(message.Body);
        if (!r.TryVector16(out var block) || !r.IsEmpty || !Ext13.TryParse(block, out var ext)) { DecodeError(message); return; }
        if (ext.TryGetValue(Ext13.UseSrtp, out var srtp))
        {
            var profiles = new List<SrtpProtectionProfile>();
            if (!TryReadSrtpProfiles(srtp, profiles) || profiles.Count != 1 || !Options.SrtpProfiles.Contains(profiles[0]))
            {
                Connection.Fail(DtlsStateReason.NoCommonParameters, DtlsAlertDescription.IllegalParameter, "Server chose an SRTP profile we did not offer.");
                return;
            }
            Connection.SrtpProfile = profiles[0];
        }
        AppendTranscript(message);
        _step = Step.CertificateRequestOrCertificate;
    }

    private void OnCertificateRequest(ReceivedMessage message)
    {
        var r = new WireReader(message.Body);
        if (!r.TryVector8(out var context) || !r.TryVector16(out var block) || !r.IsEmpty || !Ext13.TryParse(block, out var ext)
            || !ext.TryGetValue(Ext13.SignatureAlgorithms, out var sa) || !TryReadSchemes(sa, _requestedSchemes))
        {
            DecodeError(message);
            return;
        }
        _requestContext = context.ToArray();
        _certificateRequested = true;
        AppendTranscript(message);
        _step = Step.Certificate;
    }

    private void OnFinished(ReceivedMessage message)
    {
        if (!VerifyFinished(message, ofServer: true)) return;
        DeriveApplicationKeys();
        var flight = new List<OutgoingMessage>(3);
        if (_certificateRequested)
        {
            flight.Add(NewMessage13(DtlsHandshakeType.Certificate, Certificate13Body(_requestContext), 2));
            var allowed = _requestedSchemes.Where(s => Array.IndexOf(Schemes13, s) >= 0).ToList();
            if (Options.Certificate.ChooseScheme(allowed) is not { } scheme)
            {
                Connection.Fail(DtlsStateReason.NoCommonParameters, DtlsAlertDescription.HandshakeFailure,
                    "No signature scheme the server accepts fits our certificate.");
                return;
            }
            flight.Add(NewMessage13(DtlsHandshakeType.CertificateVerify, CertificateVerifyBody(scheme, ofServer: false), 2));
        }
        var finished = new WireWriter();
        finished.Bytes(FinishedData(ofServer: false));
        flight.Add(NewMessage13(DtlsHandshakeType.Finished, finished, 2));
        Connection.PeerFlightEnded(message.Sequence);
        Connection.SendFlight(flight, expectReply: true);
        Connection.AwaitAck();
        Connection.ClearAckable();
        InstallApplicationWrite();
        _step = Step.Done;
        Complete13();
    }

    public override void Dispose()
    {
        foreach (var s in _shares.Values) s.Dispose();
        _shares.Clear();
    }
}
