using Transport.Dtls.Crypto;

namespace Transport.Dtls.Handshake;

/// <summary>
/// Client flights (RFC 6347 section 4.2.4): 1 ClientHello; 3 ClientHello with cookie; 5 Certificate,
/// ClientKeyExchange, CertificateVerify, ChangeCipherSpec, Finished. Expects 2 HelloVerifyRequest (optional),
/// 4 ServerHello .. ServerHelloDone, 6 ChangeCipherSpec, Finished.
/// </summary>
internal sealed class ClientHandshake(DtlsConnection connection) : HandshakeRole(connection)
{
    private enum Step { ServerHello, Certificate, ServerKeyExchange, CertificateRequestOrDone, ServerHelloDone, Finished, Done }

    private readonly byte[] _random = NewRandom();

    /// <summary>
    /// Continues a handshake whose ClientHello (offering DTLS 1.3 and 1.2) the 1.3 client sent, after the server
    /// chose 1.2: the same random, the ClientHello already in the transcript; the next message is the ServerHello
    /// (or a HelloVerifyRequest).
    /// </summary>
    public ClientHandshake(DtlsConnection connection, byte[] random) : this(connection) => _random = random;
    private byte[] _cookie = [];
    private Step _step = Step.ServerHello;
    private ServerHello? _serverHello;
    private byte[]? _premaster;
    private bool _certificateRequested;
    private List<DtlsSignatureScheme> _requestedSchemes = new();

    public override void Start() => SendClientHello();

    private void SendClientHello()
    {
        var w = new WireWriter();
        w.U16(0xFEFD);
        w.Bytes(_random);
        w.Vector8([]);        // no session resumption
        w.Vector8(_cookie);
        var suites = w.BeginBlock(2);
        foreach (var s in Options.CipherSuites)
            if (CipherSuiteInfo.TryGet(s, out _)) w.U16((ushort)s);
        w.EndBlock(suites, 2);
        w.Vector8([0]);       // compression: null only
        var ext = w.BeginBlock(2);
        // renegotiation_info, empty: a fresh handshake (RFC 5746 section 3.4).
        w.U16(ExtensionType.RenegotiationInfo); w.U16(1); w.U8(0);
        // extended_master_secret, always offered (RFC 7627 section 5.1).
        w.U16(ExtensionType.ExtendedMasterSecret); w.U16(0);
        w.U16(ExtensionType.SupportedGroups);
        var g = w.BeginBlock(2);
        var gl = w.BeginBlock(2);
        foreach (var group in Options.Groups) if (KeyExchange.IsSupported(group)) w.U16((ushort)group);
        w.EndBlock(gl, 2);
        w.EndBlock(g, 2);
        w.U16(ExtensionType.EcPointFormats); w.U16(2); w.U8(1); w.U8(0);
        w.U16(ExtensionType.SignatureAlgorithms);
        var sa = w.BeginBlock(2);
        WriteSchemes(w, VerifiableSchemes);
        w.EndBlock(sa, 2);
        if (Options.SrtpProfiles.Count > 0)
        {
            w.U16(ExtensionType.UseSrtp);
            var us = w.BeginBlock(2);
            var pl = w.BeginBlock(2);
            foreach (var p in Options.SrtpProfiles) w.U16((ushort)p);
            w.EndBlock(pl, 2);
            w.Vector8([]);    // no MKI
            w.EndBlock(us, 2);
        }
        w.EndBlock(ext, 2);
        Connection.SendFlight([Connection.NewMessage(DtlsHandshakeType.ClientHello, w)], expectReply: true);
    }

    public override void HandleMessage(ReceivedMessage message)
    {
        switch (_step, message.Type)
        {
            case (Step.ServerHello, DtlsHandshakeType.HelloVerifyRequest):
                OnHelloVerifyRequest(message);
                break;
            case (Step.ServerHello, DtlsHandshakeType.ServerHello):
                OnServerHello(message);
                break;
            case (Step.Certificate, DtlsHandshakeType.Certificate):
                Connection.AppendTranscript(message.Framed());
                if (!AcceptPeerCertificate(message, allowEmpty: false, out _)) return;
                if (Connection.RemoteKey!.IsRsa != Connection.Suite.UsesRsa) { BadCert(); return; }
                _step = Step.ServerKeyExchange;
                break;
            case (Step.ServerKeyExchange, DtlsHandshakeType.ServerKeyExchange):
                Connection.AppendTranscript(message.Framed());
                OnServerKeyExchange(message);
                break;
            case (Step.CertificateRequestOrDone, DtlsHandshakeType.CertificateRequest):
                Connection.AppendTranscript(message.Framed());
                OnCertificateRequest(message);
                break;
            case (Step.CertificateRequestOrDone or Step.ServerHelloDone, DtlsHandshakeType.ServerHelloDone):
                Connection.AppendTranscript(message.Framed());
                if (message.Body.Length != 0) { DecodeError(message); return; }
                Connection.PeerFlightEnded(message.Sequence);
                SendFlight5();
                break;
            case (Step.Finished, DtlsHandshakeType.Finished):
                OnFinished(message);
                break;
            default:
                Unexpected(message);
                break;
        }
    }

    private void BadCert() => Connection.Fail(DtlsStateReason.BadCertificate, DtlsAlertDescription.UnsupportedCertificate,
        "The server certificate's key does not fit the negotiated cipher suite.");

    private void OnHelloVerifyRequest(ReceivedMessage message)
    {
        var r = new WireReader(message.Body);
        if (!r.TryU16(out _) || !r.TryVector8(out var cookie) || cookie.IsEmpty) { DecodeError(message); return; }
        _cookie = cookie.ToArray();
        // RFC 6347 4.2.1: the HelloVerifyRequest and the first ClientHello are not part of the transcript. The
        // server answered statelessly, so its next records may reuse low sequence numbers: start a fresh window.
        Connection.ResetTranscript();
        Connection.ResetEpochZeroReadWindow();
        SendClientHello();
    }

    private void OnServerHello(ReceivedMessage message)
    {
        Connection.AppendTranscript(message.Framed());
        var hello = ServerHello.Parse(message.Body);
        if (hello is null) { DecodeError(message); return; }
        var suite = (DtlsCipherSuite)hello.CipherSuite;
        if (!Options.CipherSuites.Contains(suite) || !CipherSuiteInfo.TryGet(suite, out var info))
        {
            Connection.Fail(DtlsStateReason.NoCommonParameters, DtlsAlertDescription.IllegalParameter,
                $"Server chose a suite we did not offer: 0x{hello.CipherSuite:X4}.");
            return;
        }
        if (hello.Extensions.RenegotiationNotEmpty)
        {
            Connection.Fail(DtlsStateReason.ProtocolViolation, DtlsAlertDescription.HandshakeFailure, "Non-empty renegotiation_info in an initial handshake.");
            return;
        }
        if (hello.Extensions.UseSrtp)
        {
            // RFC 5764 4.1.1: exactly one profile, one we offered.
            if (hello.Extensions.SrtpProfiles.Count != 1 || !Options.SrtpProfiles.Contains(hello.Extensions.SrtpProfiles[0]))
            {
                Connection.Fail(DtlsStateReason.NoCommonParameters, DtlsAlertDescription.IllegalParameter, "Server chose an SRTP profile we did not offer.");
                return;
            }
            Connection.SrtpProfile = hello.Extensions.SrtpProfiles[0];
        }
        _serverHello = hello;
        Connection.Version = DtlsVersion.Dtls12;
        Connection.SetSuite(info);
        Connection.SetRandoms(_random, hello.Random);
        _step = Step.Certificate;
    }

    private void OnServerKeyExchange(ReceivedMessage message)
    {
        // RFC 8422 5.4: ECParameters (curve_type named_curve, NamedCurve) + ECPoint public + signature.
        var r = new WireReader(message.Body);
        if (!r.TryU8(out var curveType) || curveType != 3 || !r.TryU16(out var group) || !r.TryVector8(out var point))
        {
            DecodeError(message);
            return;
        }
        var paramsLength = message.Body.Length - r.Remaining;
        if (!TryReadSignature(ref r, out var scheme, out var signature) || !r.IsEmpty) { DecodeError(message); return; }
        var named = (DtlsNamedGroup)group;
        if (!Options.Groups.Contains(named) || !KeyExchange.IsSupported(named))
        {
            Connection.Fail(DtlsStateReason.NoCommonParameters, DtlsAlertDescription.IllegalParameter, $"Server chose a group we did not offer: {group}.");
            return;
        }
        // Signed: client_random + server_random + ServerECDHParams.
        var signed = new byte[64 + paramsLength];
        _random.CopyTo(signed, 0);
        _serverHello!.Random.CopyTo(signed, 32);
        message.Body.AsSpan(0, paramsLength).CopyTo(signed.AsSpan(64));
        if (!IsVerifiable(scheme) || !Connection.RemoteKey!.Verify(scheme, signed, signature))
        {
            Connection.Fail(DtlsStateReason.VerificationFailed, DtlsAlertDescription.DecryptError, "ServerKeyExchange signature does not verify.");
            return;
        }
        Connection.PeerSignatureScheme = scheme;
        Ephemeral = KeyExchange.Create(named);
        Connection.Group = named;
        _premaster = Ephemeral.DeriveSecret(point);
        if (_premaster is null)
        {
            Connection.Fail(DtlsStateReason.ProtocolViolation, DtlsAlertDescription.IllegalParameter, "Invalid server ECDHE public value.");
            return;
        }
        _step = Step.CertificateRequestOrDone;
    }

    private void OnCertificateRequest(ReceivedMessage message)
    {
        // RFC 5246 7.4.4: certificate_types<1..2^8-1>, supported_signature_algorithms<2..2^16-2>, certificate_authorities<0..2^16-1>.
        var r = new WireReader(message.Body);
        if (!r.TryVector8(out _) || !r.TryVector16(out var schemes) || (schemes.Length & 1) != 0 || !r.TryVector16(out _)) { DecodeError(message); return; }
        var s = new WireReader(schemes);
        while (s.TryU16(out var v)) _requestedSchemes.Add((DtlsSignatureScheme)v);
        _certificateRequested = true;
        _step = Step.ServerHelloDone;
    }

    private void SendFlight5()
    {
        var flight = new List<OutgoingMessage>(5);
        if (_certificateRequested) flight.Add(Connection.NewMessage(DtlsHandshakeType.Certificate, CertificateBody()));
        var cke = new WireWriter();
        cke.Vector8(Ephemeral!.PublicKey);
        flight.Add(Connection.NewMessage(DtlsHandshakeType.ClientKeyExchange, cke));
        // RFC 7627: session_hash covers the transcript through ClientKeyExchange; the server must echo the extension.
        Connection.DeriveMasterSecret(_premaster!, _serverHello!.Extensions.ExtendedMasterSecret);
        _premaster = null;
        if (_certificateRequested)
        {
            if (Options.Certificate.ChooseScheme(_requestedSchemes) is not { } scheme)
            {
                Connection.Fail(DtlsStateReason.NoCommonParameters, DtlsAlertDescription.HandshakeFailure,
                    "No signature scheme the server accepts fits our certificate.");
                return;
            }
            var cv = new WireWriter();
            cv.U16((ushort)scheme);
            cv.Vector16(Options.Certificate.Sign(scheme, Connection.Transcript));
            flight.Add(Connection.NewMessage(DtlsHandshakeType.CertificateVerify, cv));
        }
        flight.Add(DtlsConnection.ChangeCipherSpec());
        var finished = new WireWriter();
        finished.Bytes(Connection.ComputeVerifyData(ofClient: true));
        flight.Add(Connection.NewMessage(DtlsHandshakeType.Finished, finished, epoch: 1));
        Connection.ActivateWriteEpoch();
        _step = Step.Finished;
        Connection.SendFlight(flight, expectReply: true);
    }

    private void OnFinished(ReceivedMessage message)
    {
        var expected = Connection.ComputeVerifyData(ofClient: false);
        if (message.Body.Length != 12 || !System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(expected, message.Body))
        {
            Connection.Fail(DtlsStateReason.VerificationFailed, DtlsAlertDescription.DecryptError, "Server Finished does not verify.");
            return;
        }
        Connection.AppendTranscript(message.Framed());
        _step = Step.Done;
        Connection.StopRetransmitting(forgetFlight: true);
        Connection.Complete();
    }
}
