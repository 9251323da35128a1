using Microsoft.Extensions.Logging;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Io;
using Transport.Streaming.Jsep;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Sessions;

/// <summary>An accepted WebRTC offer: the session that runs on it and our SDP answer.</summary>
public sealed record WebRtcOfferAccepted(StreamSession Session, string Answer);

/// <summary>
/// Starts WebRTC sessions on one <see cref="UdpDriver"/> (one UDP port serves them all): the client offers, we
/// answer as the ICE-controlled side with one certificate shared by every connection. Signaling (WHIP, WebSocket)
/// lives in the hosting layer and calls
/// <see cref="AcceptOfferAsync(SessionSlot, string, IReadOnlyDictionary{string, string}?, IStreamHandler?, CancellationToken)"/> and
/// <see cref="AddRemoteCandidateAsync(string, string?, CancellationToken)"/>.
/// </summary>
public sealed class WebRtcSessions : IDisposable
{
    private readonly StreamServer _server;
    private readonly UdpDriver _driver;
    private readonly DtlsCertificate? _ownCertificate;
    private readonly PeerConnectionOptions _peerOptions;

    public WebRtcSessions(StreamServer server, UdpDriver driver, WebRtcTransportOptions? options = null)
        : this(server, driver, options, relay: null)
    {
    }

    /// <summary>As the other constructor, with a signaling <paramref name="relay"/> every session's client may use over its control channel.</summary>
    public WebRtcSessions(StreamServer server, UdpDriver driver, WebRtcTransportOptions? options, SignalingRelay? relay)
    {
        Relay = relay;
        _server = server ?? throw new ArgumentNullException(nameof(server));
        _driver = driver ?? throw new ArgumentNullException(nameof(driver));
        Options = options ?? new WebRtcTransportOptions();
        var pc = Options.PeerConnection;
        if (pc.Certificate is null)
        {
            var now = server.Time.GetUtcNow();
            _ownCertificate = DtlsCertificate.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        }
        _peerOptions = pc with
        {
            Certificate = pc.Certificate ?? _ownCertificate,
            Ice = pc.Ice with { Role = IceRole.Controlled }, // the client offers, so it controls (RFC 8829 section 5.2.1)
            // The sessions layer reads DataChannelMessageReceived into its own bounded queue: leases are not for it.
            LeasedMessages = false,
        };
    }

    /// <summary>The options in force.</summary>
    public WebRtcTransportOptions Options { get; }

    /// <summary>The signaling relay between clients (<c>join</c>, <c>signal</c>, <c>leave</c> on their control channels), or null.</summary>
    public SignalingRelay? Relay { get; }

    private bool GathersFromServers => _peerOptions.Ice.StunServers.Count > 0 || _peerOptions.Ice.TurnServers.Count > 0;

    /// <summary>
    /// <paramref name="sdp"/> with the <paramref name="candidates"/> (<c>candidate:...</c>) it lacks added to every
    /// media section that is not rejected (after its last candidate line, before <c>a=end-of-candidates</c>).
    /// </summary>
    internal static string WithCandidates(string sdp, IReadOnlyList<string> candidates)
    {
        var lines = sdp.Split("\r\n").ToList();
        var missing = candidates.Where(c => !lines.Contains("a=" + c, StringComparer.Ordinal)).Select(c => "a=" + c).ToArray();
        if (missing.Length == 0) return sdp;
        var result = new List<string>(lines.Count + missing.Length * 2);
        var inMedia = false;
        var rejected = false;
        var added = false;
        void Flush()
        {
            if (inMedia && !rejected && !added) result.AddRange(missing);
            added = false;
        }
        foreach (var line in lines)
        {
            if (line.StartsWith("m=", StringComparison.Ordinal))
            {
                Flush();
                inMedia = true;
                rejected = line.Split(' ') is [_, "0", ..];
            }
            else if (line.Length == 0)
            {
                Flush();
                inMedia = false;
            }
            else if (line == "a=end-of-candidates" && inMedia && !rejected && !added)
            {
                result.AddRange(missing);
                added = true;
            }
            result.Add(line);
        }
        Flush();
        return string.Join("\r\n", result);
    }

    /// <summary>
    /// Answers <paramref name="offer"/> and starts a session on <paramref name="slot"/>. A malformed offer throws
    /// <see cref="Sdp.SdpParseException"/>, one with nothing we can accept <see cref="OfferRejectedException"/> (naming
    /// why, per section); either gives the slot back at once. The connection logs its milestones under the session id.
    /// </summary>
    public Task<WebRtcOfferAccepted> AcceptOfferAsync(SessionSlot slot, string offer, IReadOnlyDictionary<string, string>? arguments = null,
        CancellationToken cancellationToken = default) =>
        AcceptOfferAsync(slot, offer, arguments, handler: null, cancellationToken);

    /// <summary>
    /// As <see cref="AcceptOfferAsync(SessionSlot, string, IReadOnlyDictionary{string, string}?, CancellationToken)"/>,
    /// with the session's own <paramref name="handler"/> (null: one from the server's factory), e.g. a WHEP viewer's.
    /// </summary>
    public async Task<WebRtcOfferAccepted> AcceptOfferAsync(SessionSlot slot, string offer, IReadOnlyDictionary<string, string>? arguments,
        IStreamHandler? handler, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(slot);
        ArgumentNullException.ThrowIfNull(offer);
        PeerConnection? pc = null;
        string id;
        try
        {
            var parsed = Sdp.SessionDescription.Parse(offer);
            // The session id is chosen now so that the connection's log lines (milestones, state) carry it from the first.
            id = Guid.NewGuid().ToString("N");
            pc = new PeerConnection(_driver, _peerOptions, _server.Loggers.CreateLogger<PeerConnection>()) { Name = id };
            var tracks = new List<LocalTrack>();
            if (Options.AnswerMediaWithTracks)
            {
                // One outgoing track per offered audio/video kind, added before the answer so it carries them (RFC 8829 section 5.3.1).
                foreach (var kind in parsed.Media.Where(m => !m.IsRejected).Select(m => m.Media).Distinct())
                {
                    if (kind == "audio") tracks.Add(await pc.AddTrackAsync(MediaKind.Audio, null, cancellationToken).ConfigureAwait(false));
                    else if (kind == "video") tracks.Add(await pc.AddTrackAsync(MediaKind.Video, null, cancellationToken).ConfigureAwait(false));
                }
            }
            var answer = await pc.CreateAnswerAsync(parsed, cancellationToken).ConfigureAwait(false);
            if (GathersFromServers && Options.GatheringTimeout > TimeSpan.Zero)
            {
                // Server-reflexive and relayed candidates come after the answer: WHIP and most clients take none
                // trickled from us, so the answer waits for them (bounded) and carries them.
                var (candidates, _) = await pc.GatherCandidatesAsync(Options.GatheringTimeout, cancellationToken).ConfigureAwait(false);
                answer = WithCandidates(answer, candidates);
            }
            var transport = new WebRtcSessionTransport(pc, Options, _server.Time);
            transport.SetNegotiated(parsed, answer);
            foreach (var track in tracks) transport.AddLocalTrack(track);
            if (Relay is { } relay) transport.Relay = relay.Attach(id, arguments, transport.SendControlAsync, transport.Ended);
            pc = null; // the transport owns it now
            return new WebRtcOfferAccepted(_server.Start(slot, transport, arguments, id, handler), answer);
        }
        catch
        {
            if (pc is not null) await pc.DisposeAsync().ConfigureAwait(false);
            slot.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Starts a session from our offer (the server-offer variant of WHEP: the client POSTs no offer and answers ours):
    /// one outgoing track of each kind in <paramref name="kinds"/> and a data channel section, our candidates in the
    /// offer. The session connects once <see cref="AcceptAnswerAsync"/> gives it the client's answer, within the
    /// connect timeout. The returned record's <see cref="WebRtcOfferAccepted.Answer"/> is our offer. Gives the slot
    /// back when it fails.
    /// </summary>
    public async Task<WebRtcOfferAccepted> OfferAsync(SessionSlot slot, IReadOnlyList<MediaKind> kinds, IReadOnlyDictionary<string, string>? arguments,
        IStreamHandler? handler, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(slot);
        ArgumentNullException.ThrowIfNull(kinds);
        PeerConnection? pc = null;
        try
        {
            var id = Guid.NewGuid().ToString("N");
            pc = new PeerConnection(_driver, _peerOptions, _server.Loggers.CreateLogger<PeerConnection>()) { Name = id };
            var tracks = new List<LocalTrack>();
            foreach (var kind in kinds.Distinct()) tracks.Add(await pc.AddTrackAsync(kind, null, cancellationToken).ConfigureAwait(false));
            var offer = await pc.CreateOfferAsync(cancellationToken).ConfigureAwait(false);
            if (GathersFromServers && Options.GatheringTimeout > TimeSpan.Zero)
            {
                var (candidates, _) = await pc.GatherCandidatesAsync(Options.GatheringTimeout, cancellationToken).ConfigureAwait(false);
                offer = WithCandidates(offer, candidates);
            }
            // The local description's ufrag is the resource's entity tag; the remote one comes with the answer.
            var transport = new WebRtcSessionTransport(pc, Options, _server.Time) { LocalOffer = offer };
            foreach (var track in tracks) transport.AddLocalTrack(track);
            pc = null; // the transport owns it now
            return new WebRtcOfferAccepted(_server.Start(slot, transport, arguments, id, handler), offer);
        }
        catch
        {
            if (pc is not null) await pc.DisposeAsync().ConfigureAwait(false);
            slot.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The client's answer to our offer of <see cref="OfferAsync"/>. False when no WebRTC session has that id; throws
    /// <see cref="InvalidOperationException"/> when the session was not started by our offer or has its answer
    /// already, <see cref="Sdp.SdpParseException"/> for a malformed answer.
    /// </summary>
    public async Task<bool> AcceptAnswerAsync(string sessionId, string answer, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(answer);
        if (_server.Find(sessionId)?.Transport is not WebRtcSessionTransport transport) return false;
        if (transport.LocalOffer is not { } localOffer) throw new InvalidOperationException("The session was not started by our offer.");
        if (transport.RemoteOffer is not null) throw new InvalidOperationException("The session has its remote description already.");
        var parsed = Sdp.SessionDescription.Parse(answer); // malformed: SdpParseException before anything changes
        try { await transport.PeerConnection.SetRemoteDescriptionAsync(answer, cancellationToken).ConfigureAwait(false); }
        catch (ObjectDisposedException) { return false; }
        // The remote description (here the client's answer) and our local one (our offer), read once as for a WHIP answer.
        transport.SetNegotiated(parsed, localOffer);
        return true;
    }

    /// <summary>
    /// A trickled candidate of the client (<c>candidate:...</c>, with or without <c>a=</c>), or null for
    /// end-of-candidates. Returns false when no WebRTC session has that id.
    /// </summary>
    public Task<bool> AddRemoteCandidateAsync(string sessionId, string? candidate, CancellationToken cancellationToken = default) =>
        AddRemoteCandidateAsync(sessionId, candidate, null, null, cancellationToken);

    /// <summary>
    /// A trickled candidate with the section it belongs to (<c>sdpMid</c>, <c>sdpMLineIndex</c>): one of a bundled
    /// section other than the BUNDLE tag's is ignored (that transport is dropped once BUNDLE is accepted).
    /// Returns false when no WebRTC session has that id.
    /// </summary>
    public async Task<bool> AddRemoteCandidateAsync(string sessionId, string? candidate, string? sdpMid, int? sdpMLineIndex,
        CancellationToken cancellationToken = default)
    {
        if (_server.Find(sessionId)?.Transport is not WebRtcSessionTransport transport) return false;
        if (candidate is not null && candidate.StartsWith("a=", StringComparison.Ordinal)) candidate = candidate[2..];
        try { await transport.PeerConnection.AddRemoteCandidateAsync(candidate, sdpMid, sdpMLineIndex, cancellationToken).ConfigureAwait(false); }
        catch (ObjectDisposedException) { return false; }
        return true;
    }

    /// <summary>
    /// Answers a subsequent offer from the client of session <paramref name="sessionId"/>: a renegotiation, and with
    /// new ICE credentials an ICE restart (the client's network changed, or it called <c>restartIce()</c>). The session
    /// goes on undisturbed; the client's new candidates may then trickle through <see cref="AddRemoteCandidateAsync(string, string?, CancellationToken)"/>.
    /// Returns the answer, or null when no WebRTC session has that id. A malformed offer throws
    /// <see cref="Sdp.SdpParseException"/>; one that would change the DTLS association throws
    /// <see cref="InvalidOperationException"/>.
    /// </summary>
    public async Task<string?> AnswerSubsequentOfferAsync(string sessionId, string offer, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(offer);
        if (_server.Find(sessionId)?.Transport is not WebRtcSessionTransport) return null;
        return await AnswerParsedOfferAsync(sessionId, Sdp.SessionDescription.Parse(offer), cancellationToken).ConfigureAwait(false);
    }

    private async Task<string?> AnswerParsedOfferAsync(string sessionId, Sdp.SessionDescription offer, CancellationToken cancellationToken)
    {
        if (_server.Find(sessionId)?.Transport is not WebRtcSessionTransport transport) return null;
        string answer;
        try { answer = await transport.PeerConnection.CreateAnswerAsync(offer, cancellationToken).ConfigureAwait(false); }
        catch (ObjectDisposedException) { return null; }
        transport.SetNegotiated(offer, answer);
        return answer;
    }

    /// <summary>
    /// The ICE username fragment of the client's last offer in session <paramref name="sessionId"/>, or null when no
    /// WebRTC session has that id. A fragment with other credentials asks for an ICE restart.
    /// </summary>
    public string? RemoteIceUfrag(string sessionId) =>
        _server.Find(sessionId)?.Transport is WebRtcSessionTransport { RemoteOffer: not null } t ? t.RemoteIceUfrag : null;

    /// <summary>
    /// The ICE username fragment of our last answer in session <paramref name="sessionId"/> (it changes with each ICE
    /// restart: WHIP names the ICE session's entity tag after it), or null when no WebRTC session has that id.
    /// </summary>
    public string? LocalIceUfrag(string sessionId) =>
        _server.Find(sessionId)?.Transport is WebRtcSessionTransport { RemoteOffer: not null } t ? t.LocalIceUfrag : null;

    /// <summary>
    /// An ICE restart signalled by fragment rather than by a whole offer, as WHIP does (RFC 9725 section 4.3.2: a
    /// <c>PATCH</c> with the client's new credentials): the client's last offer with these credentials and without its
    /// old candidates is answered as a subsequent offer (<see cref="AnswerSubsequentOfferAsync"/>). Returns the answer,
    /// whose credentials and candidates are ours for the new generation (<see cref="IceSdpFragment.FromDescription"/>
    /// makes the response fragment of it), or null when no WebRTC session has that id. The client's new candidates
    /// then trickle through <see cref="AddRemoteCandidateAsync(string, string?, CancellationToken)"/>; data keeps flowing on the old pair meanwhile.
    /// </summary>
    /// <exception cref="ArgumentException">The credentials are not valid ICE credentials (RFC 8839 section 5.4).</exception>
    public async Task<string?> RestartIceAsync(string sessionId, string ufrag, string password, CancellationToken cancellationToken = default)
    {
        IceSdpFragment.Validate(ufrag, password);
        if (_server.Find(sessionId)?.Transport is not WebRtcSessionTransport { RemoteOffer: { } last }) return null;
        return await AnswerParsedOfferAsync(sessionId, IceSdpFragment.WithCredentials(last, ufrag, password), cancellationToken).ConfigureAwait(false);
    }

    public void Dispose() => _ownCertificate?.Dispose();
}
