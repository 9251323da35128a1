using System.Security.Cryptography;
using Transport.Dtls.Crypto;

namespace Transport.Dtls.Handshake;

/// <summary>
/// Server flights (RFC 6347 section 4.2.4): 4 ServerHello, Certificate, ServerKeyExchange, CertificateRequest,
/// ServerHelloDone; 6 ChangeCipherSpec, Finished. Flight 2 (HelloVerifyRequest) is stateless, in
/// <see cref="DtlsCookieResponder"/>, so this object exists only once a cookie verified.
/// </summary>
internal sealed class ServerHandshake(DtlsConnection connection) : HandshakeRole(connection)
{
    private enum Step { ClientHello, Certificate, ClientKeyExchange, CertificateVerify, Finished, Done }

    private Step _step = Step.ClientHello;
    private bool _clientSentCertificate;
    private bool _extendedMasterSecret;
    private byte[] _clientRandom = [];

    public override void HandleMessage(ReceivedMessage message)
    {
        switch (_step, message.Type)
        {
            case (Step.ClientHello, DtlsHandshakeType.ClientHello):
                OnClientHello(message);
                break;
            case (Step.Certificate, DtlsHandshakeType.Certificate):
                Connection.AppendTranscript(message.Framed());
                if (!AcceptPeerCertificate(message, allowEmpty: !Options.RequireClientCertificate, out var empty)) return;
                _clientSentCertificate = !empty;
                _step = Step.ClientKeyExchange;
                break;
            case (Step.Certificate, DtlsHandshakeType.ClientKeyExchange) when !Options.RequireClientCertificate:
            case (Step.ClientKeyExchange, DtlsHandshakeType.ClientKeyExchange):
                OnClientKeyExchange(message);
                break;
            case (Step.CertificateVerify, DtlsHandshakeType.CertificateVerify):
                OnCertificateVerify(message);
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
        var hello = ClientHello.Parse(message.Body);
        if (hello is null) { DecodeError(message); return; }
        Connection.AppendTranscript(message.Framed());
        if (hello.Version > 0xFEFD)
        {
            // Only DTLS 1.0 offered (RFC 6347 4.1: versions count down, 1.2 is {254, 253}).
            Connection.Fail(DtlsStateReason.NoCommonParameters, DtlsAlertDescription.ProtocolVersion, "The client offers only DTLS 1.0.");
            return;
        }
        var ext = hello.Extensions;
        if (ext.RenegotiationNotEmpty)
        {
            Connection.Fail(DtlsStateReason.ProtocolViolation, DtlsAlertDescription.HandshakeFailure, "Non-empty renegotiation_info in an initial handshake.");
            return;
        }
        var cert = Options.Certificate;
        CipherSuiteInfo suite = default;
        foreach (var s in Options.CipherSuites)
            if (hello.CipherSuites.Contains((ushort)s) && CipherSuiteInfo.TryGet(s, out var info) && info.UsesRsa == cert.IsRsa)
            {
                suite = info;
                break;
            }
        // Without supported_groups, RFC 8422 5.1.1 lets us assume secp256r1.
        var offered = ext.Groups.Count > 0 ? ext.Groups : [DtlsNamedGroup.Secp256r1];
        DtlsNamedGroup? group = null;
        foreach (var g in Options.Groups)
            if (offered.Contains(g) && KeyExchange.IsSupported(g)) { group = g; break; }
        // Without signature_algorithms, RFC 5246 7.4.1.4.1 defaults to SHA-1, which we do not sign with; assume SHA-256.
        var peerSchemes = ext.SignatureSchemes.Count > 0 ? ext.SignatureSchemes
            : [DtlsSignatureScheme.EcdsaSecp256r1Sha256, DtlsSignatureScheme.RsaPkcs1Sha256];
        var scheme = cert.ChooseScheme(peerSchemes);
        if (suite.KeyLength == 0 || group is null || scheme is null)
        {
            Connection.Fail(DtlsStateReason.NoCommonParameters, DtlsAlertDescription.HandshakeFailure,
                "No common cipher suite, group or signature scheme with the client.");
            return;
        }
        SrtpProtectionProfile? profile = null;
        if (ext.UseSrtp)
            foreach (var p in Options.SrtpProfiles)
                if (ext.SrtpProfiles.Contains(p)) { profile = p; break; }

        _clientRandom = hello.Random;
        var serverRandom = NewRandom();
        // RFC 8446 4.1.3 (RFC 9147 5.3): a server able to speak DTLS 1.3 that negotiates 1.2 says so in the last
        // eight bytes of its random, so a 1.3 client detects a downgrade.
        if (Options.MaxVersion == DtlsVersion.Dtls13) "DOWNGRD\u0001"u8.CopyTo(serverRandom.AsSpan(24));
        Connection.Version = DtlsVersion.Dtls12;
        _extendedMasterSecret = ext.ExtendedMasterSecret;
        Connection.SetSuite(suite);
        Connection.SetRandoms(hello.Random, serverRandom);
        Connection.SrtpProfile = profile;
        Connection.Group = group;

        var flight = new List<OutgoingMessage>(5);
        var sh = new WireWriter();
        sh.U16(0xFEFD);
        sh.Bytes(serverRandom);
        sh.Vector8([]);
        sh.U16((ushort)suite.Suite);
        sh.U8(0);
        var block = sh.BeginBlock(2);
        if (ext.RenegotiationInfo || hello.CipherSuites.Contains(ExtensionType.RenegotiationScsv))
        {
            sh.U16(ExtensionType.RenegotiationInfo); sh.U16(1); sh.U8(0);
        }
        if (_extendedMasterSecret) { sh.U16(ExtensionType.ExtendedMasterSecret); sh.U16(0); }
        if (ext.PointFormats) { sh.U16(ExtensionType.EcPointFormats); sh.U16(2); sh.U8(1); sh.U8(0); }
        if (profile is { } chosen)
        {
            sh.U16(ExtensionType.UseSrtp); sh.U16(5); sh.U16(2); sh.U16((ushort)chosen); sh.U8(0);
        }
        sh.EndBlock(block, 2);
        flight.Add(Connection.NewMessage(DtlsHandshakeType.ServerHello, sh));
        flight.Add(Connection.NewMessage(DtlsHandshakeType.Certificate, CertificateBody()));

        Ephemeral = KeyExchange.Create(group.Value);
        var ske = new WireWriter();
        ske.U8(3);                                  // named_curve
        ske.U16((ushort)group.Value);
        ske.Vector8(Ephemeral.PublicKey);
        var signed = new byte[64 + ske.Length];
        hello.Random.CopyTo(signed, 0);
        serverRandom.CopyTo(signed, 32);
        ske.Written.CopyTo(signed.AsSpan(64));
        ske.U16((ushort)scheme.Value);
        ske.Vector16(cert.Sign(scheme.Value, signed));
        flight.Add(Connection.NewMessage(DtlsHandshakeType.ServerKeyExchange, ske));

        if (Options.RequireClientCertificate)
        {
            var cr = new WireWriter();
            cr.Vector8([64, 1]);                    // ecdsa_sign, rsa_sign
            WriteSchemes(cr, VerifiableSchemes);
            cr.Vector16([]);                        // any issuer: certificates are self-signed, fingerprints authenticate
            flight.Add(Connection.NewMessage(DtlsHandshakeType.CertificateRequest, cr));
        }
        flight.Add(Connection.NewMessage(DtlsHandshakeType.ServerHelloDone, new WireWriter()));
        Connection.PeerFlightEnded(message.Sequence);
        _step = Step.Certificate;
        Connection.SendFlight(flight, expectReply: true);
    }

    private void OnClientKeyExchange(ReceivedMessage message)
    {
        Connection.AppendTranscript(message.Framed());
        var r = new WireReader(message.Body);
        if (!r.TryVector8(out var point) || !r.IsEmpty) { DecodeError(message); return; }
        var premaster = Ephemeral!.DeriveSecret(point);
        if (premaster is null)
        {
            Connection.Fail(DtlsStateReason.ProtocolViolation, DtlsAlertDescription.IllegalParameter, "Invalid client ECDHE public value.");
            return;
        }
        Connection.DeriveMasterSecret(premaster, _extendedMasterSecret);
        _step = _clientSentCertificate ? Step.CertificateVerify : Step.Finished;
    }

    private void OnCertificateVerify(ReceivedMessage message)
    {
        // RFC 5246 7.4.8: the signature covers every handshake message before this one.
        var r = new WireReader(message.Body);
        if (!TryReadSignature(ref r, out var scheme, out var signature) || !r.IsEmpty) { DecodeError(message); return; }
        if (!IsVerifiable(scheme) || !Connection.RemoteKey!.Verify(scheme, Connection.Transcript, signature))
        {
            Connection.Fail(DtlsStateReason.VerificationFailed, DtlsAlertDescription.DecryptError, "CertificateVerify does not verify.");
            return;
        }
        Connection.PeerSignatureScheme = scheme;
        Connection.AppendTranscript(message.Framed());
        _step = Step.Finished;
    }

    private void OnFinished(ReceivedMessage message)
    {
        var expected = Connection.ComputeVerifyData(ofClient: true);
        if (message.Body.Length != 12 || !CryptographicOperations.FixedTimeEquals(expected, message.Body))
        {
            Connection.Fail(DtlsStateReason.VerificationFailed, DtlsAlertDescription.DecryptError, "Client Finished does not verify.");
            return;
        }
        Connection.AppendTranscript(message.Framed());
        var finished = new WireWriter();
        finished.Bytes(Connection.ComputeVerifyData(ofClient: false));
        var flight = new List<OutgoingMessage> { DtlsConnection.ChangeCipherSpec(), Connection.NewMessage(DtlsHandshakeType.Finished, finished, epoch: 1) };
        Connection.PeerFlightEnded(message.Sequence);
        _step = Step.Done;
        // Flight 6 is the last: no timer, but it is kept to answer a retransmitted flight 5 (RFC 6347 4.2.4).
        Connection.SendFlight(flight, expectReply: false);
        Connection.ActivateWriteEpoch();
        Connection.Complete();
    }
}
