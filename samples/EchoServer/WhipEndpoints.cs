using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;
using Transport.Streaming.Sessions;

namespace Transport.Samples.EchoServer;

/// <summary>
/// WHIP-style signaling (RFC 9725): <c>POST /whip</c> with an SDP offer answers 201 Created with the SDP answer and
/// the session's resource in Location; <c>PATCH</c> on it with <c>application/trickle-ice-sdpfrag</c> (RFC 8840)
/// trickles the client's candidates, and with <c>If-Match: *</c> and new credentials restarts ICE (RFC 9725 section
/// 4.3.2: 200 with our new credentials and candidates as a fragment, and a new ETag); <c>DELETE</c> on it ends the session. A full server answers 429 with
/// <c>{"status":"failed","meta":{"error":"concurrency_limit_reached","limit":N}}</c>.
/// </summary>
public static class WhipEndpoints
{
    public const string SdpType = "application/sdp";
    public const string TrickleType = "application/trickle-ice-sdpfrag";

    public static IEndpointRouteBuilder MapWhip(this IEndpointRouteBuilder app, StreamServer server, WebRtcSessions webRtc, string path = "/whip")
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(webRtc);

        app.MapPost(path, async (HttpContext context) =>
        {
            if (!IsType(context.Request, SdpType))
                return Results.Text($"the offer must be sent as {SdpType}", statusCode: StatusCodes.Status415UnsupportedMediaType);
            if (!server.TryReserve(out var slot, out var refusal))
                return Results.Text(System.Text.Encoding.UTF8.GetString(refusal!.ToJson()), "application/json", System.Text.Encoding.UTF8, StatusCodes.Status429TooManyRequests);
            string offer;
            try { offer = await new StreamReader(context.Request.Body).ReadToEndAsync(context.RequestAborted).ConfigureAwait(false); }
            catch { slot!.Dispose(); throw; }
            var arguments = context.Request.Query.ToDictionary(q => q.Key, q => q.Value.ToString());
            WebRtcOfferAccepted accepted;
            try { accepted = await webRtc.AcceptOfferAsync(slot!, offer, arguments, context.RequestAborted).ConfigureAwait(false); }
            catch (SdpParseException e) { return Results.Text("malformed offer: " + e.Message, statusCode: StatusCodes.Status400BadRequest); }
            var location = $"{path}/{accepted.Session.Id}";
            context.Response.Headers.ETag = EntityTag(accepted.Session.Id, IceSdpFragment.Parse(accepted.Answer).Ufrag);
            context.Response.Headers.AccessControlExposeHeaders = "Location, ETag";
            return new CreatedSdp(location, accepted.Answer);
        });

        app.MapMethods(path + "/{id}", ["PATCH"], async (HttpContext context, string id) =>
        {
            if (!IsType(context.Request, TrickleType))
                return Results.Text($"trickle ICE is sent as {TrickleType}", statusCode: StatusCodes.Status415UnsupportedMediaType);
            if (server.Find(id) is null) return Results.NotFound();
            // RFC 9725 section 4.3.1: If-Match names the ICE session the request is for ("*" for a restart): another -> 412.
            var ifMatch = context.Request.Headers.IfMatch.ToString().Trim();
            if (ifMatch.Length > 0 && ifMatch != "*" && ifMatch != EntityTag(id, webRtc.LocalIceUfrag(id)))
                return Results.StatusCode(StatusCodes.Status412PreconditionFailed);
            var text = await new StreamReader(context.Request.Body).ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
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
            foreach (var candidate in fragment.Candidates)
            {
                try { await webRtc.AddRemoteCandidateAsync(id, candidate, context.RequestAborted).ConfigureAwait(false); }
                catch (SdpParseException e) { return Results.Text("malformed candidate: " + e.Message, statusCode: StatusCodes.Status400BadRequest); }
            }
            if (fragment.EndOfCandidates) await webRtc.AddRemoteCandidateAsync(id, null, context.RequestAborted).ConfigureAwait(false);
            if (answer is null) return Results.NoContent();
            // 200 with our new credentials and candidates, and the new ICE session's entity tag.
            var ours = IceSdpFragment.Parse(answer);
            context.Response.Headers.ETag = EntityTag(id, ours.Ufrag);
            context.Response.Headers.AccessControlExposeHeaders = "ETag";
            return Results.Text(IceSdpFragment.FromDescription(answer), TrickleType, System.Text.Encoding.UTF8, StatusCodes.Status200OK);
        });

        app.MapDelete(path + "/{id}", async (string id) =>
        {
            if (server.Find(id) is not { } session) return Results.NotFound();
            session.RequestEnd(new SessionEndReason(SessionEndKind.ClientClosed, "WHIP DELETE"));
            try { await session.Completion.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false); }
            catch (TimeoutException) { }
            return Results.Ok();
        });
        return app;
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
