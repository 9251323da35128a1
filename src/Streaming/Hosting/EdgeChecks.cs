using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Transport.Streaming.Io;
using Transport.Streaming.Sessions;

namespace Transport.Streaming.Hosting;

/// <summary>Checks shared by the endpoints: secrets, origins, bounded bodies, refusals.</summary>
internal static class EdgeChecks
{
    /// <summary>A new unguessable token: 256 random bits, base64url (RFC 4648 section 5), safe in a path segment and in JSON.</summary>
    public static string NewToken() =>
        Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    // Tokens are compared as digests in constant time: neither the token's content nor its length leaks through timing.
    public static byte[] Digest(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));

    public static bool Matches(string? given, byte[] expected) =>
        given is not null && CryptographicOperations.FixedTimeEquals(Digest(given), expected);

    /// <summary>The request carries <c>Authorization: Bearer</c> with this token (RFC 6750 section 2.1).</summary>
    public static bool HasBearer(HttpRequest request, byte[] expected)
    {
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && Matches(header[7..].Trim(), expected);
    }

    /// <summary>
    /// A WebSocket upgrade may go on: no Origin (not a browser, which always sends one, RFC 6455 section 4.1 item 8),
    /// our own origin, or one of <paramref name="allowed"/> (<c>*</c>: any). Otherwise a page of another site could
    /// drive the endpoint with its visitor's browser (cross-site WebSocket hijacking, RFC 6455 section 10.2).
    /// </summary>
    public static bool OriginAllowed(HttpRequest request, IReadOnlyList<string> allowed)
    {
        var origin = request.Headers.Origin.ToString();
        if (origin.Length == 0 || SameOrigin(origin, $"{request.Scheme}://{request.Host}")) return true;
        foreach (var a in allowed)
            if (a == "*" || SameOrigin(origin, a)) return true;
        return false;
    }

    // Origins compare by scheme, host and port (RFC 6454 section 5); host names are case-insensitive.
    public static bool SameOrigin(string a, string b) => string.Equals(a.TrimEnd('/'), b.TrimEnd('/'), StringComparison.OrdinalIgnoreCase);

    /// <summary>403 for a WebSocket upgrade from an origin not allowed.</summary>
    public static Task RefuseOriginAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        return context.Response.WriteAsync("this origin may not open a WebSocket here", context.RequestAborted);
    }

    /// <summary>429 with the refusal's JSON and <c>Retry-After</c> in whole seconds (RFC 6585 section 4, RFC 9110 section 10.2.3).</summary>
    public static Task RefuseAsync(HttpContext context, AdmissionRefusal refusal, WebRtcServerLimits limits) =>
        RefuseAsync(context, refusal.ToJson(), limits.RetryAfter);

    /// <summary>429 with <paramref name="json"/> and <c>Retry-After</c> of <paramref name="retryAfter"/> in whole seconds (at least 1 when not zero).</summary>
    public static async Task RefuseAsync(HttpContext context, byte[] json, TimeSpan retryAfter)
    {
        context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
        context.Response.Headers.RetryAfter = RetryAfterSeconds(retryAfter);
        context.Response.ContentType = "application/json";
        await context.Response.Body.WriteAsync(json, context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>A Retry-After value: whole seconds, rounded up (RFC 9110 section 10.2.3 has no fractions).</summary>
    public static string RetryAfterSeconds(TimeSpan retryAfter) =>
        Math.Ceiling(Math.Max(0, retryAfter.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Takes one offer from the client's bucket (<see cref="OfferRateLimiter"/>): null when allowed, else the refusal:
    /// <c>{"status":"failed","meta":{"error":"rate_limit_reached","limit":BURST,"retryAfterSeconds":N}}</c> and its Retry-After.
    /// </summary>
    public static (byte[] Json, TimeSpan RetryAfter)? TakeOffer(WebRtcSessionsHost host, string? client)
    {
        if (host.RateLimiter.TryAcquire(client, out var retryAfter)) return null;
        var seconds = Math.Ceiling(retryAfter.TotalSeconds);
        var json = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new
        {
            status = "failed",
            meta = new { error = "rate_limit_reached", limit = host.Limits.OfferBurst, retryAfterSeconds = seconds },
        });
        return (json, retryAfter);
    }

    /// <summary>
    /// Reads a request body of at most <see cref="WebRtcServerLimits.MaxRequestBodySize"/> bytes within
    /// <see cref="WebRtcServerLimits.RequestBodyTimeout"/>: the text, or the status to answer (413 too large, 408 too slow).
    /// Content-Length is checked before a byte is read, the running length at every read.
    /// </summary>
    public static async Task<(string? Text, int Status)> ReadBodyAsync(HttpContext context, WebRtcServerLimits limits)
    {
        var max = limits.MaxRequestBodySize;
        if (context.Request.ContentLength > max) return (null, StatusCodes.Status413PayloadTooLarge);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        deadline.CancelAfter(limits.RequestBodyTimeout);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(max + 1, 16 * 1024));
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    // Grow only up to the limit plus one byte: one byte more is enough to know the body is too large.
                    var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, max + 1));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                var n = await context.Request.Body.ReadAsync(buffer.AsMemory(length), deadline.Token).ConfigureAwait(false);
                if (n == 0) break;
                length += n;
                if (length > max) return (null, StatusCodes.Status413PayloadTooLarge);
            }
            return (Encoding.UTF8.GetString(buffer, 0, length), StatusCodes.Status200OK);
        }
        catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
        {
            return (null, StatusCodes.Status408RequestTimeout);
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }
}

/// <summary>
/// Per-session secrets handed to a session's creator only (a WHIP resource's token, a signaling resume token), kept
/// as digests while the session runs and forgotten when it ends.
/// </summary>
internal sealed class SessionSecrets
{
    // Sized by the sessions held at once: gives its storage back once drained (ShrinkingDictionary).
    private readonly ShrinkingDictionary<string, byte[]> _digests = new(StringComparer.Ordinal);

    /// <summary>A new secret for <paramref name="session"/>; it is forgotten when the session ends.</summary>
    public string Issue(StreamSession session)
    {
        var token = EdgeChecks.NewToken();
        _digests[session.Id] = EdgeChecks.Digest(token);
        _ = session.Completion.ContinueWith(_ => _digests.TryRemove(session.Id, out var _), TaskScheduler.Default);
        return token;
    }

    /// <summary>True when <paramref name="token"/> is the secret of session <paramref name="id"/> (constant-time compare).</summary>
    public bool Verify(string id, string? token) => _digests.TryGetValue(id, out var d) && EdgeChecks.Matches(token, d);
}
