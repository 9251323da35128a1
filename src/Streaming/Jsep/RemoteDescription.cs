using Transport.Streaming.Sdp;

namespace Transport.Streaming.Jsep;

/// <summary>A remote media section as we understood it.</summary>
public sealed record RemoteMedia(
    MediaKind Kind,
    string? Mid,
    MediaDirection Direction,
    bool Rejected,
    IReadOnlyList<NegotiatedCodec> Codecs,
    IReadOnlyList<uint> Ssrcs,
    int? MidExtensionId);

/// <summary>
/// What a remote description tells us (RFC 8829 section 5.8): ICE credentials, DTLS fingerprint and setup role,
/// candidates, the BUNDLE group, the data channel's SCTP parameters, and each media section's codecs.
/// All of it must be the same across a BUNDLE group (RFC 9143), so it is read once.
/// </summary>
public sealed record RemoteDescription(
    IceParameters Ice,
    IReadOnlyList<SdpFingerprint> Fingerprints,
    SdpSetup Setup,
    IReadOnlyList<SdpCandidate> Candidates,
    bool EndOfCandidates,
    IReadOnlyList<string> Bundle,
    string? DataChannelMid,
    int? SctpPort,
    long MaxMessageSize,
    IReadOnlyList<RemoteMedia> Media)
{
    /// <summary>RFC 8841 section 6.1: without the attribute, the peer takes 64 KiB.</summary>
    public const long DefaultMaxMessageSize = 64 * 1024;

    /// <summary>
    /// Reads a remote description. Missing ICE credentials, a missing fingerprint, or a section outside the
    /// BUNDLE group raise <see cref="SdpParseException"/> naming what is missing.
    /// </summary>
    public static RemoteDescription Read(SessionDescription sdp, IReadOnlyList<CodecSpec>? codecs = null)
    {
        ArgumentNullException.ThrowIfNull(sdp);
        var accepted = sdp.Media.Where(m => !m.IsRejected).ToList();
        if (accepted.Count == 0) throw new SdpParseException(0, "", "no accepted media section");
        var first = accepted[0];
        string Need(string name) =>
            first.GetAttribute(name) ?? sdp.GetAttribute(name) ?? throw new SdpParseException(0, "", $"a={name} is missing");
        var ice = new IceParameters(Need("ice-ufrag"), Need("ice-pwd"), sdp.HasAttribute("ice-lite"));
        // RFC 8839 section 5.4: 4 to 256 (ufrag) and 22 to 256 (pwd) ice-chars. Checked here so a remote value the
        // ICE agent's SASLprep would refuse (a TAB, a control character) is a typed parse error, not a crash later.
        try { IceSdpFragment.Validate(ice.UsernameFragment, ice.Password); }
        catch (ArgumentException e) { throw new SdpParseException(0, "", e.Message.Split(" (Parameter", 2)[0] + " (RFC 8839 section 5.4)"); }
        var fingerprints = first.GetAttributes("fingerprint").Concat(sdp.GetAttributes("fingerprint")).Select(SdpFingerprint.Parse).ToList();
        if (fingerprints.Count == 0) throw new SdpParseException(0, "", "a=fingerprint is missing");
        var setup = first.GetSetup() ?? sdp.GetSetup() ?? SdpSetup.ActPass; // RFC 8842 section 5.3: absent means actpass in an offer
        var bundle = sdp.BundleGroup;
        foreach (var m in accepted)
            if (bundle.Count > 0 && (m.Mid is null || !bundle.Contains(m.Mid)))
                throw new SdpParseException(0, "", $"media section '{m.Mid}' is not in the BUNDLE group; only BUNDLE on one transport is supported");
        if (bundle.Count == 0 && accepted.Count > 1)
            throw new SdpParseException(0, "", "several media sections without a=group:BUNDLE; only BUNDLE on one transport is supported");

        // RFC 9143 section 7: every bundled section uses the transport of the BUNDLE-tag section (the first mid of the
        // group). Candidates in the other sections describe transports the peer drops once BUNDLE is accepted (Firefox
        // gathers one per media type in its offer), so checks to them are wasted and DTLS may start on one of them.
        var tag = TagOf(sdp, accepted, bundle);
        var candidates = sdp.Media[tag].GetCandidates().ToList();
        var end = sdp.Media[tag].HasAttribute("end-of-candidates");

        string? dataMid = null;
        int? sctpPort = null;
        long maxMessage = DefaultMaxMessageSize;
        string? sctpInit = null;
        var media = new List<RemoteMedia>();
        foreach (var m in sdp.Media)
        {
            if (m.Media == "application")
            {
                // The first data channel section in either form (RFC 8841, or DTLS/SCTP with a=sctpmap) is ours.
                if (m.IsRejected || dataMid is not null || !DataChannelSection.TryRead(m, out _, out var port, out _)) continue;
                dataMid = m.Mid;
                sctpPort = port;
                maxMessage = m.GetMaxMessageSize() ?? DefaultMaxMessageSize;
                sctpInit = m.GetAttribute(JsepNegotiator.SctpInitAttribute);
                continue;
            }
            var kind = m.Media switch
            {
                "audio" => MediaKind.Audio,
                "video" => MediaKind.Video,
                _ => (MediaKind?)null,
            };
            if (kind is null) continue;
            var ours = codecs ?? (kind == MediaKind.Audio ? [CodecSpec.Opus] : [CodecSpec.Vp8, CodecSpec.H264]);
            media.Add(new RemoteMedia(
                kind.Value, m.Mid, DirectionOf(m), m.IsRejected,
                m.IsRejected ? [] : Intersect(m, ours, useRtx: true),
                m.GetSsrcs().Select(s => s.Ssrc).Distinct().ToList(),
                m.GetExtMaps().FirstOrDefault(e => e.Uri == MidExtensionUri)?.Id));
        }
        return new RemoteDescription(ice, fingerprints, setup, candidates, end, bundle, dataMid, sctpPort, maxMessage, media)
        {
            BundleTag = sdp.Media[tag].Mid,
            BundleTagIndex = tag,
            SctpInit = sctpInit,
            IceOptions = ReadIceOptions(sdp.Media[tag].GetAttribute("ice-options") ?? sdp.GetAttribute("ice-options")),
        };
    }

    /// <summary>The a=ice-options tokens of the transport (RFC 8839 section 5.6: the BUNDLE-tag section's, else the session's).</summary>
    public IReadOnlyList<string> IceOptions { get; init; } = [];

    private static string[] ReadIceOptions(string? value) =>
        value is null ? [] : value.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>
    /// The data channel section's <c>a=sctp-init</c> value as written (SNAP, draft-hancke-tsvwg-snap), or null; read it
    /// with <c>SctpInitParameters.TryParseBase64</c>, which refuses an invalid one with a reason.
    /// </summary>
    public string? SctpInit { get; init; }

    /// <summary>
    /// The mid of the section whose transport the BUNDLE group uses (RFC 9143 section 7: the first mid of the group
    /// that is not rejected; without a group, the only accepted section). <see cref="Candidates"/> are its candidates.
    /// </summary>
    public string? BundleTag { get; init; }

    /// <summary>The index of the <see cref="BundleTag"/> section among the description's m= lines (a trickled candidate's sdpMLineIndex).</summary>
    public int BundleTagIndex { get; init; }

    /// <summary>
    /// This description with the transport of section <paramref name="mid"/> of <paramref name="sdp"/> (the same
    /// description) as the BUNDLE's: when our answer tags another section than the offer did (we rejected the
    /// offer's tagged section), the offerer moves to the transport of the section our answer tags.
    /// </summary>
    public RemoteDescription WithBundleTag(SessionDescription sdp, string mid)
    {
        ArgumentNullException.ThrowIfNull(sdp);
        for (var i = 0; i < sdp.Media.Count; i++)
            if (sdp.Media[i].Mid == mid && !sdp.Media[i].IsRejected)
                return this with
                {
                    Candidates = sdp.Media[i].GetCandidates().ToList(),
                    EndOfCandidates = sdp.Media[i].HasAttribute("end-of-candidates"),
                    BundleTag = mid,
                    BundleTagIndex = i,
                };
        return this;
    }

    private static int TagOf(SessionDescription sdp, List<MediaDescription> accepted, IReadOnlyList<string> bundle)
    {
        foreach (var mid in bundle)
            for (var i = 0; i < sdp.Media.Count; i++)
                if (sdp.Media[i].Mid == mid && !sdp.Media[i].IsRejected) return i;
        return sdp.Media.IndexOf(accepted[0]);
    }

    /// <summary>The RTP header extension carrying the mid (RFC 9143 section 15), needed to demultiplex BUNDLE.</summary>
    public const string MidExtensionUri = "urn:ietf:params:rtp-hdrext:sdes:mid";

    /// <summary>
    /// The transport-wide sequence number header extension (draft-holmer-rmcat-transport-wide-cc-extensions-01
    /// section 2): with <c>a=rtcp-fb:* transport-cc</c> it makes the sender (Chromium) estimate the bandwidth from
    /// our feedback.
    /// </summary>
    public const string TransportCcExtensionUri = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

    /// <summary>The rtcp-fb value of transport-wide congestion control feedback.</summary>
    public const string TransportCcFeedback = "transport-cc";

    internal static MediaDirection DirectionOf(SdpSection m) =>
        m.HasAttribute("sendonly") ? MediaDirection.SendOnly :
        m.HasAttribute("recvonly") ? MediaDirection.RecvOnly :
        m.HasAttribute("inactive") ? MediaDirection.Inactive : MediaDirection.SendRecv;

    /// <summary>Our codecs, in our order of preference, with the payload types the remote section uses for them.</summary>
    internal static List<NegotiatedCodec> Intersect(MediaDescription m, IReadOnlyList<CodecSpec> ours, bool useRtx)
    {
        var maps = m.GetRtpMaps().ToList();
        var fmtps = new Dictionary<int, SdpFmtp>();
        foreach (var f in m.GetFmtps())
            // RFC 8866 section 6.15 gives one a=fmtp per format; two would leave the codec's parameters ambiguous.
            if (!fmtps.TryAdd(f.PayloadType, f))
                throw new SdpParseException(0, "a=fmtp:" + f.PayloadType.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    $"two a=fmtp lines for payload type {f.PayloadType} in media section '{m.Mid}'");
        var result = new List<NegotiatedCodec>();
        foreach (var codec in ours)
            foreach (var map in maps)
            {
                if (!m.Formats.Contains(map.PayloadType.ToString(System.Globalization.CultureInfo.InvariantCulture))) continue;
                var fmtp = fmtps.GetValueOrDefault(map.PayloadType);
                if (!codec.Matches(map, fmtp)) continue;
                int? rtx = null;
                if (useRtx)
                    foreach (var r in maps)
                        if (string.Equals(r.Encoding, "rtx", StringComparison.OrdinalIgnoreCase) &&
                            fmtps.GetValueOrDefault(r.PayloadType)?.ToDictionary().GetValueOrDefault("apt")
                                == map.PayloadType.ToString(System.Globalization.CultureInfo.InvariantCulture))
                            rtx = r.PayloadType;
                result.Add(new NegotiatedCodec(codec, map.PayloadType, fmtp?.Parameters, rtx));
                break; // the first matching payload type of the remote's preference order
            }
        return result;
    }
}
