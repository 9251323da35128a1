using System.Net;
using System.Text;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;
using Transport.Streaming.Sessions;
using Transport.Streaming.WebRtc;

namespace Transport.Fuzz;

/// <summary>
/// SDP, ICE SDP fragments and candidates, the JSON of the session transports, and the WHIP offer and PATCH paths on a
/// peer connection core (what WebRtcSessions does for the WHIP endpoints, without Kestrel).
/// </summary>
public static class SignalingTargets
{
    private static readonly DtlsCertificate Certificate = DtlsTargets.ServerCertificate;
    private static readonly Lazy<string> OurOffer = new(() =>
    {
        using var offerer = new PeerConnectionCore(new PeerConnectionOptions { Certificate = DtlsTargets.ClientCertificate });
        offerer.AddHostCandidate(StunIceTargets.RemoteEnd);
        offerer.AddTrack(MediaKind.Audio);
        offerer.AddTrack(MediaKind.Video);
        offerer.CreateDataChannel("data", null, TimeSpan.Zero);
        return offerer.CreateOffer(TimeSpan.Zero).ToString();
    });

    /// <summary>A real offer of ours (audio, video, data), for the seed corpus and the PATCH target.</summary>
    public static string Offer => OurOffer.Value;

    /// <summary>The targets.</summary>
    public static IEnumerable<FuzzTarget> All =>
    [
        new("sdp", Sdp, "SessionDescription.Parse (SdpParseException is the refusal), ToString must parse again to the same text, RemoteDescription.Read " +
            "and every attribute value parser"),
        new("ice-sdp", IceSdp, "IceSdpFragment.Parse and each candidate through SdpCandidate.Parse and IceCandidate.TryParse"),
        new("candidate", Candidate, "one candidate line: SdpCandidate.Parse (round trip through ToString) and IceCandidate.TryParse"),
        new("signaling-json", SignalingJson, "the client JSON of the sessions: the WebSocket stream's text and binary frames, the WebRTC control channel"),
        new("whip-offer", WhipOffer,
            "a WHIP POST body: parse, a track per offered kind, CreateAnswer on a fresh core (OfferRejectedException is the refusal); our answer must parse"),
        new("whip-patch", WhipPatch,
            "a WHIP PATCH body (RFC 8840 fragment) on a negotiated core: credentials check, each candidate with its mid, end-of-candidates"),
    ];

    private static string Text(ReadOnlySpan<byte> data) => Encoding.UTF8.GetString(data);

    /// <summary>Parses a session description, writes it and parses that again.</summary>
    public static void Sdp(ReadOnlySpan<byte> data)
    {
        SessionDescription sdp;
        try { sdp = SessionDescription.Parse(Text(data)); }
        catch (SdpParseException) { return; }
        var text = sdp.ToString();
        SessionDescription again;
        try { again = SessionDescription.Parse(text); }
        catch (SdpParseException e) { throw new FuzzPropertyException("our own serialization does not parse: " + e.Message); }
        if (again.ToString() != text) throw new FuzzPropertyException("parse -> write -> parse -> write is not stable");
        foreach (var m in sdp.Media)
            foreach (var a in m.Attributes)
            {
                try
                {
                    switch (a.Name)
                    {
                        case "rtpmap": SdpRtpMap.Parse(a.Value ?? ""); break;
                        case "fmtp": SdpFmtp.Parse(a.Value ?? ""); break;
                        case "rtcp-fb": SdpRtcpFeedback.Parse(a.Value ?? ""); break;
                        case "extmap": SdpExtMap.Parse(a.Value ?? ""); break;
                        case "ssrc": SdpSsrc.Parse(a.Value ?? ""); break;
                        case "fingerprint": SdpFingerprint.Parse(a.Value ?? ""); break;
                        case "candidate": SdpCandidate.Parse(a.Value ?? ""); break;
                    }
                }
                catch (SdpParseException) { }
            }
        try { RemoteDescription.Read(sdp); }
        catch (SdpParseException) { }
        catch (OfferRejectedException) { }
    }

    /// <summary>An RFC 8840 fragment and its candidates.</summary>
    public static void IceSdp(ReadOnlySpan<byte> data)
    {
        var fragment = IceSdpFragment.Parse(Text(data));
        if (fragment.Ufrag is { } u && fragment.Password is { } p)
        {
            try { IceSdpFragment.Validate(u, p); }
            catch (ArgumentException) { }
        }
        foreach (var c in fragment.Candidates) Candidate(c);
    }

    /// <summary>One candidate line.</summary>
    public static void Candidate(ReadOnlySpan<byte> data) => Candidate(Text(data));

    private static void Candidate(string text)
    {
        IceCandidate.TryParse(text, out _);
        SdpCandidate c;
        try { c = SdpCandidate.Parse(text.StartsWith("a=", StringComparison.Ordinal) ? text[2..] : text); }
        catch (SdpParseException) { return; }
        _ = c.GetExtension("ufrag");
        var written = c.ToAttributeValue();
        try { SdpCandidate.Parse(written); }
        catch (SdpParseException e) { throw new FuzzPropertyException($"our own candidate text '{written}' does not parse: {e.Message}"); }
    }

    /// <summary>The client's JSON and binary frames of the session transports.</summary>
    public static void SignalingJson(ReadOnlySpan<byte> data)
    {
        WebSocketSessionTransport.ParseText(data);
        WebSocketFrames.TryRead(data, out _);
        WebRtcSessionTransport.ReadControl(data.ToArray());
    }

    private static PeerConnectionCore NewAnswerer()
    {
        var core = new PeerConnectionCore(new PeerConnectionOptions { Certificate = Certificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });
        core.AddHostCandidate(StunIceTargets.LocalEnd);
        return core;
    }

    /// <summary>What WebRtcSessions.AcceptOfferAsync does with a WHIP POST body.</summary>
    public static void WhipOffer(ReadOnlySpan<byte> data)
    {
        SessionDescription offer;
        try { offer = SessionDescription.Parse(Text(data)); }
        catch (SdpParseException) { return; }
        using var core = NewAnswerer();
        foreach (var kind in offer.Media.Where(m => !m.IsRejected).Select(m => m.Media).Distinct())
        {
            if (kind == "audio") core.AddTrack(MediaKind.Audio);
            else if (kind == "video") core.AddTrack(MediaKind.Video);
        }
        SessionDescription answer;
        try { answer = core.CreateAnswer(offer, TimeSpan.Zero); }
        catch (OfferRejectedException) { return; }
        catch (SdpParseException) { return; }
        try { SessionDescription.Parse(answer.ToString()); }
        catch (SdpParseException e) { throw new FuzzPropertyException("our answer does not parse: " + e.Message); }
        for (var i = 0; i < 100 && core.TryPollEvent(out _); i++) { }
        var buffer = new byte[2048];
        core.HandleTimeout(TimeSpan.FromMilliseconds(100));
        for (var i = 0; i < 1000 && core.TryPollTransmit(buffer, out _, out _, out _); i++) { }
    }

    /// <summary>What the WHIP PATCH handler does with a trickle fragment, on a core that answered our real offer.</summary>
    public static void WhipPatch(ReadOnlySpan<byte> data)
    {
        using var core = NewAnswerer();
        var offer = SessionDescription.Parse(Offer);
        core.CreateAnswer(offer, TimeSpan.Zero);
        var fragment = IceSdpFragment.Parse(Text(data));
        var now = TimeSpan.FromMilliseconds(10);
        if (fragment is { Ufrag: { } ufrag, Password: { } password } && ufrag != "fuzz")
        {
            try
            {
                IceSdpFragment.Validate(ufrag, password);
                core.CreateAnswer(SessionDescription.Parse(IceSdpFragment.WithCredentials(Offer, ufrag, password)), now);
            }
            catch (ArgumentException) { }
            catch (InvalidOperationException) { }
        }
        for (var i = 0; i < fragment.Candidates.Count; i++)
        {
            var mid = i < fragment.CandidateMids.Count ? fragment.CandidateMids[i] : null;
            var text = fragment.Candidates[i];
            if (text.StartsWith("a=", StringComparison.Ordinal)) text = text[2..];
            SdpCandidate parsed;
            try { parsed = SdpCandidate.Parse(text); }
            catch (SdpParseException) { continue; }
            core.AddRemoteCandidate(parsed, now, mid, null);
        }
        if (fragment.EndOfCandidates) core.AddRemoteCandidate(null, now);
        var buffer = new byte[2048];
        for (var step = 0; step < 20; step++)
        {
            now += TimeSpan.FromMilliseconds(50);
            core.HandleTimeout(now);
            for (var i = 0; i < 1000 && core.TryPollTransmit(buffer, out _, out _, out _); i++) { }
            for (var i = 0; i < 1000 && core.TryPollEvent(out _); i++) { }
        }
    }
}
