using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;
using Transport.Streaming.Sessions;

namespace Transport.Streaming.Hosting;

/// <summary>
/// WHIP-style signaling (RFC 9725): <c>POST /whip</c> with an SDP offer answers 201 Created with the SDP answer and
/// the session's resource in Location, <c>/whip/{id}?secret=S</c>: S is an unguessable per-session token that only the
/// creator gets, and every request on the resource needs it (without it: 404, as for no session);
/// <c>GET</c> on it is the session's health as JSON; <c>PATCH</c> on it with <c>application/trickle-ice-sdpfrag</c> (RFC 8840)
/// trickles the client's candidates, and with <c>If-Match: *</c> and new credentials restarts ICE (RFC 9725 section
/// 4.3.2: 200 with our new credentials and candidates as a fragment, and a new ETag); <c>DELETE</c> on it ends the session. A full server answers 429 with
/// <c>{"status":"failed","meta":{"error":"concurrency_limit_reached","limit":N}}</c>. A well-formed offer of which no
/// section can be accepted answers 422 with <c>{"status":"failed","meta":{"error":"offer_rejected",...}}</c> naming why,
/// holding no session slot; a malformed one 400.
/// </summary>
public static class WhipEndpoints
{
    public const string SdpType = "application/sdp";
    public const string TrickleType = "application/trickle-ice-sdpfrag";

    /// <summary>The query parameter of a WHIP resource URL that carries the session's secret.</summary>
    public const string SecretParameter = "secret";

    /// <summary>
    /// Maps WHIP at <paramref name="pattern"/> and its resources at <c>pattern/{id}</c>; needs <c>AddWebRtcSessions</c>.
    /// Returns the group of the POST, GET, PATCH and DELETE endpoints (the CORS preflights are outside it, never behind
    /// a token), so conventions such as authorization can be added.
    /// </summary>
    public static IEndpointConventionBuilder MapWhip(this IEndpointRouteBuilder endpoints, string pattern = "/whip") =>
        MapOfferResource(endpoints, pattern, handler: null, realm: "whip", serverOffer: false);

    /// <summary>
    /// Maps WHEP playback (draft-ietf-wish-whep) at <paramref name="pattern"/>: a viewer POSTs its offer (recvonly audio
    /// and/or video) and gets what <paramref name="broadcast"/> publishes, on a session of its own with the resource
    /// lifecycle of WHIP (201 with Location and an ETag, PATCH for trickle and ICE restart with If-Match, DELETE, Link
    /// ICE servers, the bearer token of <see cref="WhipOptions.BearerToken"/>, the same limits). The viewer's key frame
    /// requests reach the publisher through the broadcast. The server-offer variant too: a POST without a body (no
    /// <c>Content-Type</c>) gets 201 with our offer (audio and video, sendrecv, and a data channel section), and the
    /// client sends its answer by PATCH with <c>application/sdp</c> (204; 409 when the session expects none). Needs
    /// <c>AddWebRtcSessions</c>.
    /// </summary>
    public static IEndpointConventionBuilder MapWhep(this IEndpointRouteBuilder endpoints, MediaBroadcast broadcast, string pattern = "/whep")
    {
        ArgumentNullException.ThrowIfNull(broadcast);
        return MapOfferResource(endpoints, pattern, () => new BroadcastViewerHandler(broadcast), realm: "whep", serverOffer: true);
    }

    private static IEndpointConventionBuilder MapOfferResource(IEndpointRouteBuilder endpoints, string pattern, Func<IStreamHandler>? handler,
        string realm, bool serverOffer)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentException.ThrowIfNullOrEmpty(pattern);
        var app = endpoints;
        var path = pattern.TrimEnd('/');
        var host = WebRtcHostingExtensions.GetHost(endpoints.ServiceProvider);
        var server = host.Server;
        var webRtc = host.Sessions;
        var options = host.Options.Whip;
        var origins = host.Options.AllowedOrigins;
        var limits = host.Limits;
        var secrets = new SessionSecrets();
        var links = options.IceServers.Select(i => i.ToLinkHeader()).ToArray();

        // RFC 9725 section 4.5: with a token configured, every request on the endpoint and its resources must carry it
        // (RFC 6750 bearer); anything else is 401 before the request is looked at.
        var group = app.MapGroup("");
        // CORS headers go on every answer of the endpoint and its resources, the 401 included (so a page can read it).
        group.AddEndpointFilter(async (context, next) =>
        {
            WhipCors.AddResponseHeaders(context.HttpContext, origins);
            return await next(context).ConfigureAwait(false);
        });
        WhipCors.MapPreflight(app, path, "POST, OPTIONS", origins, options.CorsMaxAge);
        WhipCors.MapPreflight(app, path + "/{id}", "GET, PATCH, DELETE, OPTIONS", origins, options.CorsMaxAge);
        if (options.BearerToken is { } token)
        {
            var expected = EdgeChecks.Digest(token);
            group.AddEndpointFilter(async (context, next) =>
                EdgeChecks.HasBearer(context.HttpContext.Request, expected) ? await next(context).ConfigureAwait(false)
                    : (object?)Unauthorized(context.HttpContext, realm));
        }

        group.MapPost(path, async (HttpContext context) =>
        {
            // The server-offer variant (WHEP): a POST without a body gets our offer; the client PATCHes its answer.
            if (serverOffer && context.Request.ContentLength is null or 0 && string.IsNullOrEmpty(context.Request.ContentType))
                return await OfferAsync(context).ConfigureAwait(false);
            if (!IsType(context.Request, SdpType))
                return Results.Text($"the offer must be sent as {SdpType}", statusCode: StatusCodes.Status415UnsupportedMediaType);
            // The body first, within its size and time limits, and only then a place: a slow or huge body holds none.
            var (offer, status) = await EdgeChecks.ReadBodyAsync(context, limits).ConfigureAwait(false);
            if (offer is null) return BodyRefused(context, status, limits);
            // An offer counts against its client's rate once it is read (a refused body costs no token).
            var client = ClientKey.For(context);
            if (EdgeChecks.TakeOffer(host, client) is { } rate) return TooMany(context, rate.Json, rate.RetryAfter);
            if (!server.TryReserve(client, out var slot, out var refusal)) return TooMany(context, refusal!.ToJson(), limits.RetryAfter);
            var arguments = context.Request.Query.ToDictionary(q => q.Key, q => q.Value.ToString());
            WebRtcOfferAccepted accepted;
            try { accepted = await webRtc.AcceptOfferAsync(slot!, offer, arguments, handler?.Invoke(), context.RequestAborted).ConfigureAwait(false); }
            catch (SdpParseException e) { return Results.Text("malformed offer: " + e.Message, statusCode: StatusCodes.Status400BadRequest); }
            // A well-formed offer with nothing we can accept: 422 with the reasons, instead of a 201 whose answer rejects
            // every section (the client would fail in setRemoteDescription). AcceptOfferAsync already gave the slot back.
            catch (OfferRejectedException e)
            {
                return Results.Text(RejectionJson(e), "application/json", System.Text.Encoding.UTF8, StatusCodes.Status422UnprocessableEntity);
            }
            // The secret rides in the resource URL (RFC 9725 leaves the URL to the server; clients use Location as given).
            var location = $"{path}/{accepted.Session.Id}?{SecretParameter}={secrets.Issue(accepted.Session)}";
            context.Response.Headers.ETag = EntityTag(accepted.Session.Id, webRtc.LocalIceUfrag(accepted.Session.Id)
                ?? IceSdpFragment.Parse(accepted.Answer).Ufrag);
            // RFC 9725 section 4.4: the ICE servers the client may use, one Link header each.
            if (links.Length > 0) context.Response.Headers.Link = links;
            return new CreatedSdp(location, accepted.Answer);
        });

        async Task<IResult> OfferAsync(HttpContext context)
        {
            var client = ClientKey.For(context);
            if (EdgeChecks.TakeOffer(host, client) is { } rate) return TooMany(context, rate.Json, rate.RetryAfter);
            if (!server.TryReserve(client, out var slot, out var refusal)) return TooMany(context, refusal!.ToJson(), limits.RetryAfter);
            var arguments = context.Request.Query.ToDictionary(q => q.Key, q => q.Value.ToString());
            var offered = await webRtc.OfferAsync(slot!, [MediaKind.Audio, MediaKind.Video], arguments, handler?.Invoke(),
                context.RequestAborted).ConfigureAwait(false);
            var location = $"{path}/{offered.Session.Id}?{SecretParameter}={secrets.Issue(offered.Session)}";
            context.Response.Headers.ETag = EntityTag(offered.Session.Id, IceSdpFragment.Parse(offered.Answer).Ufrag);
            if (links.Length > 0) context.Response.Headers.Link = links;
            return new CreatedSdp(location, offered.Answer);
        }

        // A resource named without its secret, or with another, is answered as no resource: nothing tells whether the
        // session exists, and another client's session cannot be ended, restarted or read.
        bool Owns(HttpContext context, string id) => secrets.Verify(id, context.Request.Query[SecretParameter].ToString());

        group.MapGet(path + "/{id}", (HttpContext context, string id) =>
        {
            if (!Owns(context, id) || server.Find(id) is null) return Results.NotFound();
            // This session's health only, as one element of GET /sessions: what the page draws.
            using var all = System.Text.Json.JsonDocument.Parse(server.SessionsJson());
            foreach (var s in all.RootElement.EnumerateArray())
                if (s.TryGetProperty("id", out var sid) && sid.GetString() == id) return Results.Text(s.GetRawText(), "application/json");
            return Results.NotFound();
        });

        group.MapMethods(path + "/{id}", ["PATCH"], async (HttpContext context, string id) =>
        {
            if (!Owns(context, id) || server.Find(id) is null) return Results.NotFound();
            if (serverOffer && IsType(context.Request, SdpType))
            {
                // The client's answer to our offer (server-offer variant).
                var (sdp, sdpStatus) = await EdgeChecks.ReadBodyAsync(context, limits).ConfigureAwait(false);
                if (sdp is null) return BodyRefused(context, sdpStatus, limits);
                try { return await webRtc.AcceptAnswerAsync(id, sdp, context.RequestAborted).ConfigureAwait(false) ? Results.NoContent() : Results.NotFound(); }
                catch (SdpParseException e) { return Results.Text("malformed answer: " + e.Message, statusCode: StatusCodes.Status400BadRequest); }
                catch (InvalidOperationException e) { return Results.Text("no answer expected: " + e.Message, statusCode: StatusCodes.Status409Conflict); }
                catch (ArgumentException e) { return Results.Text("answer refused: " + e.Message, statusCode: StatusCodes.Status400BadRequest); }
            }
            if (!IsType(context.Request, TrickleType))
                return Results.Text($"trickle ICE is sent as {TrickleType}", statusCode: StatusCodes.Status415UnsupportedMediaType);
            // RFC 9725 section 4.3.1: If-Match names the ICE session the request is for ("*" for a restart): another -> 412.
            var ifMatch = context.Request.Headers.IfMatch.ToString().Trim();
            if (ifMatch.Length > 0 && ifMatch != "*" && ifMatch != EntityTag(id, webRtc.LocalIceUfrag(id)))
                return Results.StatusCode(StatusCodes.Status412PreconditionFailed);
            var (text, status) = await EdgeChecks.ReadBodyAsync(context, limits).ConfigureAwait(false);
            if (text is null) return BodyRefused(context, status, limits);
            // RFC 8840 section 4.4: credentials, a=candidate and a=end-of-candidates lines.
            var fragment = IceSdpFragment.Parse(text);
            string? answer = null;
            // RFC 9725 section 4.3.2: "If-Match: *" with credentials other than the session's is an ICE restart.
            if (ifMatch == "*" && fragment is { Ufrag: { } ufrag, Password: { } password } &&
                ufrag != webRtc.RemoteIceUfrag(id))
            {
                try { answer = await webRtc.RestartIceAsync(id, ufrag, password, context.RequestAborted).ConfigureAwait(false); }
                catch (ArgumentException e) { return Results.Text("bad ICE credentials: " + e.Message, statusCode: StatusCodes.Status400BadRequest); }
                catch (InvalidOperationException e) { return Results.Text("cannot restart ICE now: " + e.Message, statusCode: StatusCodes.Status409Conflict); }
                if (answer is null) return Results.NotFound();
            }
            for (var i = 0; i < fragment.Candidates.Count; i++)
            {
                // With its section's mid: a candidate of a bundled section other than the BUNDLE tag's is ignored.
                var mid = i < fragment.CandidateMids.Count ? fragment.CandidateMids[i] : null;
                try { await webRtc.AddRemoteCandidateAsync(id, fragment.Candidates[i], mid, null, context.RequestAborted).ConfigureAwait(false); }
                catch (SdpParseException e) { return Results.Text("malformed candidate: " + e.Message, statusCode: StatusCodes.Status400BadRequest); }
            }
            if (fragment.EndOfCandidates) await webRtc.AddRemoteCandidateAsync(id, null, context.RequestAborted).ConfigureAwait(false);
            if (answer is null) return Results.NoContent();
            // 200 with our new credentials and candidates, and the new ICE session's entity tag.
            context.Response.Headers.ETag = EntityTag(id, webRtc.LocalIceUfrag(id));   // read once when the answer was made
            return Results.Text(IceSdpFragment.FromDescription(answer), TrickleType, System.Text.Encoding.UTF8, StatusCodes.Status200OK);
        });

        group.MapDelete(path + "/{id}", async (HttpContext context, string id) =>
        {
            if (!Owns(context, id) || server.Find(id) is not { } session) return Results.NotFound();
            session.RequestEnd(new SessionEndReason(SessionEndKind.ClientClosed, "WHIP DELETE"));
            try { await session.Completion.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false); }
            catch (TimeoutException) { }
            return Results.Ok();
        });
        return group;
    }

    private static IResult TooMany(HttpContext context, byte[] json, TimeSpan retryAfter)
    {
        context.Response.Headers.RetryAfter = EdgeChecks.RetryAfterSeconds(retryAfter);
        return Results.Text(System.Text.Encoding.UTF8.GetString(json), "application/json", System.Text.Encoding.UTF8, StatusCodes.Status429TooManyRequests);
    }

    /// <summary>
    /// The 422 body of an offer with nothing we can accept:
    /// <c>{"status":"failed","meta":{"error":"offer_rejected","message":"...","reasons":["m=application mid 0: ..."]}}</c>.
    /// </summary>
    internal static string RejectionJson(OfferRejectedException e) =>
        System.Text.Json.JsonSerializer.Serialize(new { status = "failed", meta = new { error = "offer_rejected", message = e.Message, reasons = e.Reasons } });

    // 413 and 408 close the connection (RFC 9110 sections 15.5.14 and 15.5.9): the rest of a refused body is not read,
    // so a client cannot make the server drain megabytes it will never use.
    private static IResult BodyRefused(HttpContext context, int status, WebRtcServerLimits limits)
    {
        context.Response.Headers.Connection = "close";
        return status == StatusCodes.Status413PayloadTooLarge
            ? Results.Text($"the body is over {limits.MaxRequestBodySize} bytes", statusCode: status)
            : Results.Text($"the body was not read within {limits.RequestBodyTimeout.TotalSeconds:0.###} s", statusCode: status);
    }

    private static IResult Unauthorized(HttpContext context, string realm)
    {
        var given = context.Request.Headers.Authorization.Count > 0;
        context.Response.Headers.WWWAuthenticate = given ? $"Bearer realm=\"{realm}\", error=\"invalid_token\"" : $"Bearer realm=\"{realm}\"";
        return Results.Text(given ? "the bearer token is not valid" : "a bearer token is required", statusCode: StatusCodes.Status401Unauthorized);
    }

    // The entity tag of a session's current ICE session: the session id and our ICE ufrag, which each restart renews.
    private static string EntityTag(string id, string? ufrag) => $"\"{id}.{ufrag}\"";

    private static bool IsType(HttpRequest request, string type) =>
        request.ContentType is { } t && t.Split(';')[0].Trim().Equals(type, StringComparison.OrdinalIgnoreCase);

    /// <summary>201 Created with the SDP answer and the resource's Location (RFC 9725 section 4.2).</summary>
    private sealed class CreatedSdp(string location, string answer) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = StatusCodes.Status201Created;
            httpContext.Response.Headers.Location = location;
            httpContext.Response.ContentType = SdpType;
            return httpContext.Response.WriteAsync(answer);
        }
    }
}

/// <summary>WHIP endpoint options.</summary>
public sealed record WhipOptions
{
    /// <summary>
    /// The bearer token (RFC 6750) every WHIP request (POST, PATCH, DELETE) must carry in <c>Authorization</c>
    /// (RFC 9725 section 4.5); without it or with another, 401 with <c>WWW-Authenticate: Bearer</c>. Null (the
    /// default): no authentication.
    /// </summary>
    public string? BearerToken { get; set; }

    /// <summary>ICE servers given to clients as <c>Link</c> headers of the 201 (RFC 9725 section 4.4). Default none.</summary>
    public IReadOnlyList<WhipIceServer> IceServers { get; set; } = [];

    /// <summary>How long a browser may cache a preflight's answer (<c>Access-Control-Max-Age</c>). Default 10 minutes.</summary>
    public TimeSpan CorsMaxAge { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>
/// One ICE server for WHIP clients: a <c>stun:</c>, <c>stuns:</c>, <c>turn:</c> or <c>turns:</c> URI (RFC 7064,
/// RFC 7065), with the long-term credentials of a TURN server.
/// </summary>
public sealed record WhipIceServer
{
    public WhipIceServer(string url, string? username = null, string? credential = null)
    {
        ArgumentNullException.ThrowIfNull(url);
        var scheme = url.Split(':', 2)[0].ToLowerInvariant();
        if (scheme is not ("stun" or "stuns" or "turn" or "turns") || url.Length <= scheme.Length + 1)
            throw new ArgumentException($"'{url}' is not a stun:, stuns:, turn: or turns: URI", nameof(url));
        if (url.Any(c => c is '<' or '>' or '"' || char.IsWhiteSpace(c) || char.IsControl(c)))
            throw new ArgumentException($"'{url}' has a character a Link header cannot carry", nameof(url));
        if (scheme.StartsWith("stun", StringComparison.Ordinal) && (username is not null || credential is not null))
            throw new ArgumentException("a STUN server takes no credentials", nameof(username));
        if ((username is null) != (credential is null))
            throw new ArgumentException("a TURN server needs both a username and a credential, or neither", nameof(username));
        foreach (var value in new[] { username, credential })
            if (value is not null && value.Any(char.IsControl)) throw new ArgumentException("credentials cannot hold control characters", nameof(credential));
        (Url, Username, Credential) = (url, username, credential);
    }

    public string Url { get; }
    public string? Username { get; }
    public string? Credential { get; }

    /// <summary>
    /// The Link header value (RFC 8288, RFC 9725 section 4.4):
    /// <c>&lt;turn:host?transport=udp&gt;; rel="ice-server"; username="u"; credential="p"; credential-type="password"</c>.
    /// </summary>
    public string ToLinkHeader() =>
        Username is null
            ? $"<{Url}>; rel=\"ice-server\""
            : $"<{Url}>; rel=\"ice-server\"; username=\"{Quote(Username)}\"; credential=\"{Quote(Credential!)}\"; credential-type=\"password\"";

    // RFC 9110 section 5.6.4 quoted-string: backslash-escape the quote and the backslash.
    private static string Quote(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);

    /// <summary>Parses <c>URL</c> or <c>URL|username|credential</c> (the echo server's <c>--ice-server</c>).</summary>
    public static WhipIceServer Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split('|');
        return parts.Length switch
        {
            1 => new WhipIceServer(parts[0]),
            3 => new WhipIceServer(parts[0], parts[1], parts[2]),
            _ => throw new ArgumentException($"'{text}' is neither URL nor URL|username|credential", nameof(text)),
        };
    }
}
