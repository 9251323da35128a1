using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Transport.Streaming.Hosting;

/// <summary>
/// CORS (the Fetch standard's CORS protocol, which RFC 9725 asks WHIP endpoints and resources to support) on the
/// WHIP endpoint and its resources: a page from another origin sends <c>application/sdp</c>, <c>Authorization</c> and
/// <c>If-Match</c>, so its browser first asks with an OPTIONS preflight, and reads Location and ETag only when they are
/// exposed. Origins are allowed by <see cref="WebRtcSessionsOptions.AllowedOrigins"/>; a request from our own origin needs no
/// CORS and is always served.
/// </summary>
internal static class WhipCors
{
    private const string AllowedHeaders = "Authorization, Content-Type, If-Match";
    // What a page must read from our answers: the resource, the ICE session's entity tag, the ICE servers, and what
    // a PATCH takes (RFC 9725 sections 4.2 to 4.4).
    private const string ExposedHeaders = "Location, ETag, Link, Accept-Patch";

    /// <summary>OPTIONS on <paramref name="path"/> (methods <paramref name="methods"/>): the preflight, never behind the token.</summary>
    public static void MapPreflight(IEndpointRouteBuilder app, string path, string methods, IReadOnlyList<string> origins, TimeSpan maxAge) =>
        app.MapMethods(path, ["OPTIONS"], (HttpContext context) =>
        {
            var response = context.Response;
            response.Headers.Allow = methods;
            // A preflight carries no credentials (Fetch: CORS-preflight request), so the bearer token is not asked for.
            if (AllowedOrigin(context.Request, origins) is { } origin)
            {
                response.Headers.AccessControlAllowOrigin = origin;
                response.Headers.AccessControlAllowMethods = methods;
                response.Headers.AccessControlAllowHeaders = AllowedHeaders;
                response.Headers.AccessControlMaxAge = ((long)maxAge.TotalSeconds).ToString(CultureInfo.InvariantCulture);
                response.Headers.Vary = "Origin";
            }
            if (path.EndsWith("{id}", StringComparison.Ordinal)) response.Headers["Accept-Patch"] = WhipEndpoints.TrickleType;
            else response.Headers["Accept-Post"] = WhipEndpoints.SdpType;
            return Results.NoContent();
        });

    /// <summary>The CORS response headers of an actual request (POST, PATCH, DELETE, and the 401 before them).</summary>
    public static void AddResponseHeaders(HttpContext context, IReadOnlyList<string> origins)
    {
        if (AllowedOrigin(context.Request, origins) is not { } origin) return;
        var headers = context.Response.Headers;
        headers.AccessControlAllowOrigin = origin;
        headers.AccessControlExposeHeaders = ExposedHeaders;
        headers.Vary = "Origin";
    }

    /// <summary>
    /// The value of Access-Control-Allow-Origin for this request, or null: the request's Origin when it is ours or in
    /// the list, <c>*</c> when the list has <c>*</c>; nothing for a request without Origin (not from a browser's fetch).
    /// </summary>
    private static string? AllowedOrigin(HttpRequest request, IReadOnlyList<string> origins)
    {
        var origin = request.Headers.Origin.ToString();
        if (origin.Length == 0) return null;
        if (Same(origin, $"{request.Scheme}://{request.Host}")) return origin;
        foreach (var allowed in origins)
        {
            if (allowed == "*") return "*";
            if (Same(origin, allowed)) return origin;
        }
        return null;
    }

    // Origins compare by scheme, host and port (RFC 6454 section 5); host names are case-insensitive.
    private static bool Same(string a, string b) => string.Equals(a.TrimEnd('/'), b.TrimEnd('/'), StringComparison.OrdinalIgnoreCase);
}
