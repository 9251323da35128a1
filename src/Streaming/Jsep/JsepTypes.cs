using Transport.Streaming.Sdp;

namespace Transport.Streaming.Jsep;

/// <summary>ICE credentials of one side (RFC 8839 section 5.4).</summary>
public sealed record IceParameters(string UsernameFragment, string Password, bool Lite = false)
{
    /// <summary>Random credentials from a cryptographic source (RFC 8445 section 5.3 lengths), as the ICE agent makes them.</summary>
    public static IceParameters Generate(bool lite = false)
    {
        var c = Transport.Ice.IceCredentials.Generate();
        return new(c.Ufrag, c.Password, lite);
    }
}

/// <summary>Direction of a media section (RFC 8866 section 6.7).</summary>
public enum MediaDirection { SendRecv, SendOnly, RecvOnly, Inactive }

/// <summary>The kind of an m= section.</summary>
public enum MediaKind { Audio, Video, Application }

/// <summary>A codec we can send and receive, with the parameters we offer (RFC 8829 section 5.2.1).</summary>
public sealed record CodecSpec(string Name, int ClockRate, int? Channels, int PreferredPayloadType, string? Fmtp, IReadOnlyList<string> Feedback)
{
    /// <summary>Opus (RFC 7587): 48 kHz, 2 channels in SDP, in-band FEC.</summary>
    public static CodecSpec Opus { get; } = new("opus", 48000, 2, 111, "minptime=10;useinbandfec=1", ["transport-cc"]);
    /// <summary>VP8 (RFC 7741).</summary>
    public static CodecSpec Vp8 { get; } = new("VP8", 90000, null, 96, null, ["transport-cc", "nack", "nack pli", "ccm fir"]);
    /// <summary>H.264 constrained baseline, packetization mode 1 (RFC 6184).</summary>
    public static CodecSpec H264 { get; } = new("H264", 90000, null, 102, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        ["transport-cc", "nack", "nack pli", "ccm fir"]);

    /// <summary>Whether an offered rtpmap/fmtp describes this codec in a form we can use.</summary>
    public bool Matches(SdpRtpMap map, SdpFmtp? fmtp)
    {
        if (!string.Equals(map.Encoding, Name, StringComparison.OrdinalIgnoreCase) || map.ClockRate != ClockRate) return false;
        if (Channels is { } c && (map.Channels ?? 1) != c) return false;
        if (string.Equals(Name, "H264", StringComparison.OrdinalIgnoreCase))
        {
            // Only packetization mode 1 (non-interleaved; RFC 6184 section 6.3) and the baseline profiles are sent.
            var p = fmtp?.ToDictionary();
            if (p is null || p.GetValueOrDefault("packetization-mode") != "1") return false;
            var profile = p.GetValueOrDefault("profile-level-id");
            if (profile is null || profile.Length != 6) return false;
            var idc = profile[..2].ToLowerInvariant();
            // RFC 6184 section 8.1: profile-level-id is six hex digits; anything else names no profile we know.
            if (!byte.TryParse(profile.AsSpan(2, 2), System.Globalization.NumberStyles.AllowHexSpecifier,
                    System.Globalization.CultureInfo.InvariantCulture, out var constraints)) return false;
            if (idc != "42" && !(idc == "4d" && (constraints & 0x80) != 0)) return false;
        }
        return true;
    }
}

/// <summary>A codec as agreed for one m= section: our codec with the payload type of the offer.</summary>
public sealed record NegotiatedCodec(CodecSpec Codec, int PayloadType, string? Fmtp, int? RtxPayloadType);

/// <summary>What we put into one media section of our description.</summary>
public sealed record LocalMedia(MediaKind Kind, string Mid, MediaDirection Direction, IReadOnlyList<CodecSpec> Codecs)
{
    /// <summary>Our sending SSRC, when we send.</summary>
    public uint? Ssrc { get; init; }
    /// <summary>The SSRC of our retransmissions (RFC 4588), when RTX is used.</summary>
    public uint? RtxSsrc { get; init; }
    /// <summary>RTCP CNAME (RFC 7022).</summary>
    public string? Cname { get; init; }
    /// <summary>Media stream and track ids (RFC 8830).</summary>
    public string? StreamId { get; init; }
    public string? TrackId { get; init; }
}

/// <summary>Everything our side contributes to an offer or an answer.</summary>
public sealed record LocalSessionParameters(IceParameters Ice, SdpFingerprint Fingerprint)
{
    /// <summary>Media sections in order (offers); answers follow the remote offer's order.</summary>
    public IReadOnlyList<LocalMedia> Media { get; init; } = [];
    /// <summary>Whether to add (offer) or accept (answer) a data channel section.</summary>
    public bool DataChannel { get; init; } = true;
    /// <summary>The SCTP port (RFC 8841); 5000 as browsers use.</summary>
    public int SctpPort { get; init; } = 5000;
    /// <summary>
    /// The SCTP streams we ask for, written in an answer of the older form (<c>a=sctpmap:5000 webrtc-datachannel N</c>);
    /// 65535 as <c>SctpOptions.Streams</c> (RFC 8831 section 6.2).
    /// </summary>
    public int SctpStreams { get; init; } = 65535;
    /// <summary>Largest data channel message we accept (RFC 8841 section 6). Default 256 KiB.</summary>
    public long MaxMessageSize { get; init; } = 256 * 1024;
    /// <summary>
    /// SNAP (draft-hancke-tsvwg-snap): the base64 of our SCTP INIT chunk, written as <c>a=sctp-init</c> in the data
    /// channel section, or null for none. An answer carries it only when the offer carried a valid one, and it is always
    /// our own INIT, never the offer's echoed back.
    /// </summary>
    public string? SctpInit { get; init; }
    /// <summary>Candidates known when the description is made (the rest trickle).</summary>
    public IReadOnlyList<SdpCandidate> Candidates { get; init; } = [];
    /// <summary>Whether gathering is complete (adds a=end-of-candidates).</summary>
    public bool EndOfCandidates { get; init; }
    /// <summary>Answer with RTX (RFC 4588) where the offer has it.</summary>
    public bool UseRtx { get; init; } = true;
    /// <summary>
    /// Offer, and accept when offered, transport-wide congestion control: the transport-wide sequence number header
    /// extension and <c>a=rtcp-fb:PT transport-cc</c> on every codec. The peer then numbers its packets and we send
    /// the feedback its bandwidth estimator needs. Without it, <c>transport-cc</c> is left out of the codecs' rtcp-fb.
    /// </summary>
    public bool TransportCc { get; init; } = true;
    /// <summary>
    /// The DTLS role an earlier exchange established, or null for the initial one. An offer then says active
    /// (client) or passive (server) instead of actpass, and an answer keeps the role (RFC 8842 section 5.5).
    /// </summary>
    public DtlsRole? EstablishedRole { get; init; }
    /// <summary>
    /// Our DTLS role when we answer an actpass offer: <see cref="DtlsRole.Server"/> (default, a=setup:passive) or
    /// <see cref="DtlsRole.Client"/> (a=setup:active). See <see cref="JsepNegotiator.RoleFor"/> for why passive.
    /// </summary>
    public DtlsRole AnswerRole { get; init; } = DtlsRole.Server;
    /// <summary>ice-options tokens after <c>trickle</c> (SPED's, when offered or answered).</summary>
    public IReadOnlyList<string> ExtraIceOptions { get; init; } = [];
    /// <summary>Session id for the o= line.</summary>
    public ulong SessionId { get; init; } = (ulong)Random.Shared.NextInt64(1, long.MaxValue) >> 1;
}
