using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Transport.Streaming.Sdp;
using Transport.Streaming.Sessions;

namespace Transport.Samples.EchoServer;

/// <summary>
/// WHIP-style signaling (RFC 9725): <c>POST /whip</c> with an SDP offer answers 201 Created with the SDP answer and
/// the session's resource in Location; <c>PATCH</c> on it with <c>application/trickle-ice-sdpfrag</c> (RFC 8840)
/// trickles the client's candidates; <c>DELETE</c> on it ends the session. A full server answers 429 with
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
            context.Response.Headers.ETag = $"\"{accepted.Session.Id}\"";
            context.Response.Headers.AccessControlExposeHeaders = "Location, ETag";
            return new CreatedSdp(location, accepted.Answer);
        });

        app.MapMethods(path + "/{id}", ["PATCH"], async (HttpContext context, string id) =>
        {
            if (!IsType(context.Request, TrickleType))
                return Results.Text($"trickle ICE is sent as {TrickleType}", statusCode: StatusCodes.Status415UnsupportedMediaType);
            if (server.Find(id) is null) return Results.NotFound();
            var fragment = await new StreamReader(context.Request.Body).ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
            foreach (var raw in fragment.Split('\n'))
            {
                var line = raw.TrimEnd('\r');
                // RFC 8840 section 4.4: the fragment carries a=candidate and a=end-of-candidates lines (ICE restarts are not supported).
                if (line.StartsWith("a=candidate:", StringComparison.Ordinal))
                {
                    try { await webRtc.AddRemoteCandidateAsync(id, line[2..], context.RequestAborted).ConfigureAwait(false); }
                    catch (SdpParseException e) { return Results.Text("malformed candidate: " + e.Message, statusCode: StatusCodes.Status400BadRequest); }
                }
                else if (line == "a=end-of-candidates")
                    await webRtc.AddRemoteCandidateAsync(id, null, context.RequestAborted).ConfigureAwait(false);
            }
            return Results.NoContent();
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
