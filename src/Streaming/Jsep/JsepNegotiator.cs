using System.Globalization;
using Transport.Streaming.Sdp;

namespace Transport.Streaming.Jsep;

/// <summary>Which DTLS role our side takes (RFC 8842 section 5).</summary>
public enum DtlsRole { Client, Server }

/// <summary>
/// Builds our offers and answers (RFC 8829 sections 5.2 and 5.3) with BUNDLE on one transport (RFC 9143),
/// rtcp-mux, and the data channel section (RFC 8841; answered in the older sctpmap form when offered in it).
/// </summary>
public static class JsepNegotiator
{
    private const string RtpProfile = "UDP/TLS/RTP/SAVPF";
    private const int MidExtensionId = 4;
    private const int TransportCcExtensionId = 3;   // the id Chromium offers it with

    /// <summary>
    /// Our DTLS role from the remote's a=setup. As the offerer, the answer's active or passive decides. As the
    /// answerer of an actpass offer, we take <paramref name="answerRole"/>: the server by default (we answer passive),
    /// so the offerer, which has our answer before its DTLS client starts, sends the first flight and nothing is lost
    /// (RFC 8842 section 5.3 allows either answer; an active answerer's ClientHello races its own answer to the
    /// offerer and is dropped when it wins, costing a retransmission timeout).
    /// </summary>
    public static DtlsRole RoleFor(bool weOffered, SdpSetup remoteSetup, DtlsRole answerRole = DtlsRole.Server) => (weOffered, remoteSetup) switch
    {
        (true, SdpSetup.Active) => DtlsRole.Server,
        (true, SdpSetup.Passive) => DtlsRole.Client,
        (true, _) => throw new SdpParseException(0, "a=setup:" + remoteSetup.ToSdp(), "an answer must say a=setup:active or passive"),
        (false, SdpSetup.ActPass) => answerRole,
        (false, SdpSetup.Passive) => DtlsRole.Client, // we answer active
        (false, SdpSetup.Active) => DtlsRole.Server,  // we answer passive
        _ => throw new SdpParseException(0, "a=setup:" + remoteSetup.ToSdp(), "holdconn is not supported"),
    };

    /// <summary>
    /// The a=setup of an offer (RFC 8842 section 5.2): actpass in an initial offer; in a subsequent offer that keeps
    /// the DTLS association, the value matching the role we already have (active for the client, passive for the
    /// server), so the answerer cannot move us to the other role.
    /// </summary>
    public static SdpSetup OfferSetup(DtlsRole? established) => established switch
    {
        DtlsRole.Client => SdpSetup.Active,
        DtlsRole.Server => SdpSetup.Passive,
        _ => SdpSetup.ActPass,
    };

    /// <summary>
    /// The a=setup of an answer (RFC 8842 section 5.3): to actpass, passive (we are the DTLS server) unless
    /// <paramref name="answerRole"/> asks for the client; to active, passive; to passive, active.
    /// Once a DTLS association exists (<paramref name="established"/>) the answer keeps our role (section 5.5); an
    /// offer that demands the other role would need a new association, which is not supported:
    /// <see cref="InvalidOperationException"/>.
    /// </summary>
    public static SdpSetup AnswerSetup(SdpSetup offered, DtlsRole? established, DtlsRole answerRole = DtlsRole.Server)
    {
        if (established is not { } role) return RoleFor(weOffered: false, offered, answerRole) == DtlsRole.Client ? SdpSetup.Active : SdpSetup.Passive;
        if (offered == SdpSetup.HoldConn) throw new SdpParseException(0, "a=setup:holdconn", "holdconn is not supported");
        if ((role == DtlsRole.Client && offered == SdpSetup.Active) || (role == DtlsRole.Server && offered == SdpSetup.Passive))
            throw new InvalidOperationException($"The offer's a=setup:{offered.ToSdp()} would make us the DTLS " +
                $"{(role == DtlsRole.Client ? "server" : "client")}, " +
                $"but the existing DTLS association has us as the {(role == DtlsRole.Client ? "client" : "server")}; a new DTLS association is not supported.");
        return role == DtlsRole.Client ? SdpSetup.Active : SdpSetup.Passive;
    }

    /// <summary>
    /// A subsequent offer on a negotiated session (RFC 8829 section 5.2.2): the sections of <paramref name="previous"/>
    /// (our last local description, offer or answer) in the same order with the same mids, codecs, directions and
    /// tracks, rejected sections still rejected, and the transport attributes (ICE credentials and candidates,
    /// fingerprint, a=setup for our established DTLS role) taken from <paramref name="local"/>. The o= line keeps the
    /// session id and increments the version (RFC 3264 section 8).
    /// </summary>
    public static SessionDescription CreateSubsequentOffer(SessionDescription previous, LocalSessionParameters local)
    {
        ArgumentNullException.ThrowIfNull(previous);
        ArgumentNullException.ThrowIfNull(local);
        if (local.EstablishedRole is null) throw new ArgumentException("A subsequent offer needs the established DTLS role.", nameof(local));
        var sdp = previous.Clone();
        sdp.Origin = previous.Origin with { SessionVersion = previous.Origin.SessionVersion + 1 };
        foreach (var name in TransportAttributes) sdp.RemoveAttributes(name);
        var setup = OfferSetup(local.EstablishedRole);
        foreach (var m in sdp.Media)
        {
            if (m.IsRejected) continue;
            foreach (var name in TransportAttributes) m.RemoveAttributes(name);
            AddTransport(m, local, setup);
        }
        return sdp;
    }

    // Per-transport attributes rewritten in a subsequent offer; everything else of a section stays as negotiated.
    private static readonly string[] TransportAttributes =
        ["candidate", "end-of-candidates", "ice-ufrag", "ice-pwd", "ice-options", "fingerprint", "setup"];

    /// <summary>An offer: our media sections in order, then the data channel section, all in one BUNDLE group.</summary>
    public static SessionDescription CreateOffer(LocalSessionParameters local)
    {
        ArgumentNullException.ThrowIfNull(local);
        var sdp = NewSession(local);
        var mids = new List<string>();
        foreach (var media in local.Media)
        {
            var codecs = new List<NegotiatedCodec>();
            var pt = 96;
            var used = new HashSet<int>();
            foreach (var c in media.Codecs)
            {
                var p = used.Add(c.PreferredPayloadType) ? c.PreferredPayloadType : NextFree(used, ref pt);
                int? rtx = local.UseRtx && media.Kind == MediaKind.Video ? NextFree(used, ref pt) : null;
                codecs.Add(new NegotiatedCodec(c, p, c.Fmtp, rtx));
            }
            sdp.Media.Add(BuildRtpSection(local, media.Kind, media.Mid, media.Direction, codecs, media, MidExtensionId,
                local.TransportCc ? TransportCcExtensionId : null, OfferSetup(local.EstablishedRole)));
            mids.Add(media.Mid);
        }
        if (local.DataChannel)
        {
            var mid = local.Media.Count.ToString(CultureInfo.InvariantCulture);
            while (mids.Contains(mid)) mid += "d";
            sdp.Media.Add(BuildDataSection(local, mid, OfferSetup(local.EstablishedRole), DataChannelSdpForm.Rfc8841, DataChannelSection.UdpProfile));
            mids.Add(mid);
        }
        if (mids.Count == 0) throw new InvalidOperationException("An offer needs at least one media section or a data channel.");
        sdp.Attributes.Insert(0, new SdpAttribute("group", "BUNDLE " + string.Join(' ', mids)));
        return sdp;
    }

    /// <summary>
    /// An answer to <paramref name="offer"/>: every offered section in the offer's order; audio and video take
    /// our codecs that the offer has (with its payload types), or are rejected (port 0) when none match;
    /// our setup follows <see cref="AnswerSetup"/> (passive to an actpass offer unless <see cref="LocalSessionParameters.AnswerRole"/> says client).
    /// </summary>
    public static SessionDescription CreateAnswer(SessionDescription offer, LocalSessionParameters local)
    {
        ArgumentNullException.ThrowIfNull(offer);
        ArgumentNullException.ThrowIfNull(local);
        var remote = RemoteDescription.Read(offer);
        var setup = AnswerSetup(remote.Setup, local.EstablishedRole, local.AnswerRole);
        var sdp = NewSession(local);
        var bundled = new List<string>();
        var refusals = new List<string>();
        void Reject(MediaDescription m, string why)
        {
            sdp.Media.Add(Rejected(m));
            refusals.Add($"m={m.Media} mid {m.Mid}: {why}");
        }
        var localByKind = local.Media.GroupBy(m => m.Kind).ToDictionary(g => g.Key, g => new Queue<LocalMedia>(g));
        foreach (var m in offer.Media)
        {
            var mid = m.Mid ?? throw new SdpParseException(0, "m=" + m.Media, "every section needs a=mid for BUNDLE");
            if (m.IsRejected) { Reject(m, "rejected by the offerer (port 0)"); continue; }
            if (m.Media == "application")
            {
                if (!local.DataChannel) { Reject(m, "data channels are not enabled here"); continue; }
                if (!DataChannelSection.TryRead(m, out var form, out _, out var refusal)) { Reject(m, refusal); continue; }
                if (remote.DataChannelMid != mid) { Reject(m, "only one data channel section is supported"); continue; }
                sdp.Media.Add(BuildDataSection(local, mid, setup, form, m.Protocol));
                bundled.Add(mid);
                continue;
            }
            MediaKind? kind = m.Media switch { "audio" => MediaKind.Audio, "video" => MediaKind.Video, _ => null };
            if (kind is null) { Reject(m, "only audio, video and application sections are supported"); continue; }
            LocalMedia? ours = localByKind.TryGetValue(kind.Value, out var q) && q.Count > 0 ? q.Dequeue() : null;
            var codecs = RemoteDescription.Intersect(m, ours?.Codecs ?? Defaults(kind.Value), local.UseRtx);
            if (codecs.Count == 0)
            {
                Reject(m, "no codec in common (we take " + string.Join(", ", (ours?.Codecs ?? Defaults(kind.Value)).Select(c => c.Name)) + ")");
                continue;
            }
            var direction = AnswerDirection(RemoteDescription.DirectionOf(m),
                weSend: ours is not null && ours.Direction is MediaDirection.SendRecv or MediaDirection.SendOnly);
            var midExt = m.GetExtMaps().FirstOrDefault(e => e.Uri == RemoteDescription.MidExtensionUri)?.Id;
            var ccExt = local.TransportCc ? m.GetExtMaps().FirstOrDefault(e => e.Uri == RemoteDescription.TransportCcExtensionUri)?.Id : null;
            sdp.Media.Add(BuildRtpSection(local, kind.Value, mid, direction, codecs, ours, midExt, ccExt, setup));
            bundled.Add(mid);
        }
        if (bundled.Count == 0) throw new OfferRejectedException(refusals);
        sdp.Attributes.Insert(0, new SdpAttribute("group", "BUNDLE " + string.Join(' ', bundled)));
        return sdp;
    }

    private static IReadOnlyList<CodecSpec> Defaults(MediaKind kind) =>
        kind == MediaKind.Audio ? [CodecSpec.Opus] : [CodecSpec.Vp8, CodecSpec.H264];

    private static MediaDirection AnswerDirection(MediaDirection offered, bool weSend) => offered switch
    {
        MediaDirection.SendRecv => weSend ? MediaDirection.SendRecv : MediaDirection.RecvOnly,
        MediaDirection.SendOnly => MediaDirection.RecvOnly,
        MediaDirection.RecvOnly => weSend ? MediaDirection.SendOnly : MediaDirection.Inactive,
        _ => MediaDirection.Inactive,
    };

    private static int NextFree(HashSet<int> used, ref int pt)
    {
        while (!used.Add(pt)) pt++;
        return pt;
    }

    private static SessionDescription NewSession(LocalSessionParameters local)
    {
        var sdp = new SessionDescription(SdpOrigin.Create(local.SessionId));
        if (local.Ice.Lite) sdp.AddAttribute("ice-lite");
        sdp.AddAttribute("msid-semantic", " WMS");
        return sdp;
    }

    private static MediaDescription Rejected(MediaDescription offered)
    {
        var m = new MediaDescription(offered.Media, 0, offered.Protocol, offered.Formats.Take(1)) { Connection = new SdpConnection("IN", "IP4", "0.0.0.0") };
        if (offered.Mid is { } mid) m.AddAttribute("mid", mid);
        return m;
    }

    private static void AddTransport(MediaDescription m, LocalSessionParameters local, SdpSetup setup)
    {
        var first = local.Candidates.FirstOrDefault(c => c.Transport == "udp");
        if (first is not null)
        {
            m.Port = first.Port;
            m.Connection = new SdpConnection("IN", first.Address.Contains(':', StringComparison.Ordinal) ? "IP6" : "IP4", first.Address);
        }
        else m.Connection = new SdpConnection("IN", "IP4", "0.0.0.0");
        foreach (var c in local.Candidates) m.AddAttribute("candidate", c.ToAttributeValue());
        if (local.EndOfCandidates) m.AddAttribute("end-of-candidates");
        m.AddAttribute("ice-ufrag", local.Ice.UsernameFragment);
        m.AddAttribute("ice-pwd", local.Ice.Password);
        m.AddAttribute("ice-options", local.ExtraIceOptions.Count == 0 ? "trickle" : "trickle " + string.Join(' ', local.ExtraIceOptions));
        m.AddAttribute("fingerprint", local.Fingerprint.ToString());
        m.AddAttribute("setup", setup.ToSdp());
    }

    /// <summary>The SNAP attribute (draft-hancke-tsvwg-snap): <c>a=sctp-init:&lt;base64 of an SCTP INIT chunk&gt;</c>.</summary>
    public const string SctpInitAttribute = "sctp-init";

    // Our offers use the RFC 8841 form; an answer uses the offer's form and proto (RFC 8829 section 5.3.1).
    private static MediaDescription BuildDataSection(LocalSessionParameters local, string mid, SdpSetup setup, DataChannelSdpForm form, string profile)
    {
        var m = DataChannelSection.Create(form, profile, local.SctpPort);
        AddTransport(m, local, setup);
        m.AddAttribute("mid", mid);
        DataChannelSection.AddSctpAttributes(m, form, local.SctpPort, local.SctpStreams);
        m.AddAttribute("max-message-size", local.MaxMessageSize.ToString(CultureInfo.InvariantCulture));
        if (local.SctpInit is { } init) m.AddAttribute(SctpInitAttribute, init);
        return m;
    }

    private static MediaDescription BuildRtpSection(LocalSessionParameters local, MediaKind kind, string mid, MediaDirection direction,
        IReadOnlyList<NegotiatedCodec> codecs, LocalMedia? media, int? midExtensionId, int? transportCcExtensionId, SdpSetup setup)
    {
        var formats = new List<string>();
        foreach (var c in codecs)
        {
            formats.Add(c.PayloadType.ToString(CultureInfo.InvariantCulture));
            if (c.RtxPayloadType is { } r) formats.Add(r.ToString(CultureInfo.InvariantCulture));
        }
        var m = new MediaDescription(kind == MediaKind.Audio ? "audio" : "video", 9, RtpProfile, formats);
        AddTransport(m, local, setup);
        m.AddAttribute("mid", mid);
        if (transportCcExtensionId is { } cc) m.AddAttribute("extmap", new SdpExtMap(cc, RemoteDescription.TransportCcExtensionUri).ToString());
        if (midExtensionId is { } id) m.AddAttribute("extmap", new SdpExtMap(id, RemoteDescription.MidExtensionUri).ToString());
        m.AddAttribute(direction switch
        {
            MediaDirection.SendRecv => "sendrecv",
            MediaDirection.SendOnly => "sendonly",
            MediaDirection.RecvOnly => "recvonly",
            _ => "inactive",
        });
        var sends = direction is MediaDirection.SendRecv or MediaDirection.SendOnly;
        if (sends && media?.StreamId is { } stream) m.AddAttribute("msid", stream + " " + (media.TrackId ?? mid));
        m.AddAttribute("rtcp-mux");
        m.AddAttribute("rtcp-rsize");
        foreach (var c in codecs)
        {
            m.AddAttribute("rtpmap", new SdpRtpMap(c.PayloadType, c.Codec.Name, c.Codec.ClockRate, c.Codec.Channels).ToString());
            foreach (var fb in c.Codec.Feedback)
                if (fb != RemoteDescription.TransportCcFeedback || transportCcExtensionId is not null) m.AddAttribute("rtcp-fb", $"{c.PayloadType} {fb}");
            if ((c.Fmtp ?? c.Codec.Fmtp) is { } f) m.AddAttribute("fmtp", $"{c.PayloadType} {f}");
            if (c.RtxPayloadType is { } r)
            {
                m.AddAttribute("rtpmap", $"{r} rtx/{c.Codec.ClockRate}");
                m.AddAttribute("fmtp", $"{r} apt={c.PayloadType}");
            }
        }
        if (sends && media?.Ssrc is { } ssrc)
        {
            if (media.RtxSsrc is { } rtxSsrc && codecs.Any(c => c.RtxPayloadType is not null))
                m.AddAttribute("ssrc-group", $"FID {ssrc} {rtxSsrc}");
            foreach (var s in media.RtxSsrc is { } r2 && codecs.Any(c => c.RtxPayloadType is not null) ? new[] { ssrc, r2 } : new[] { ssrc })
            {
                if (media.Cname is { } cname) m.AddAttribute("ssrc", $"{s} cname:{cname}");
                if (media.StreamId is { } st) m.AddAttribute("ssrc", $"{s} msid:{st} {media.TrackId ?? mid}");
            }
        }
        return m;
    }
}
