using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Transport.Streaming.Sessions;

namespace Transport.Samples.EchoServer;

/// <summary>
/// What a remote party can make the HTTP and WebSocket endpoints hold, in the spirit of Kestrel's
/// <c>KestrelServerLimits</c>. The limits on sessions (in total, per client address, not yet connected, connect timeout,
/// idle limit) are on <see cref="StreamServerOptions"/>; README "Limits and defaults" lists both.
/// </summary>
public sealed record HostingLimits
{
    /// <summary>
    /// The largest WHIP POST or PATCH body (an SDP offer, an ICE fragment). A larger Content-Length is answered 413 at
    /// once; a body that grows past it while read (chunked) is answered 413 as soon as it does. Default 64 KiB (a
    /// browser's offer with audio, video and data is about 6 KiB).
    /// </summary>
    public int MaxRequestBodySize { get; init; } = 64 * 1024;

    /// <summary>
    /// The time to read a whole WHIP body; past it 408. No session place is reserved while a body is read, so a slow
    /// body holds none. Default 10 s.
    /// </summary>
    public TimeSpan RequestBodyTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The largest message on <c>/signal</c>; a larger one closes the socket with 1009 (RFC 6455 section 7.4.1). Default 64 KiB.</summary>
    public int MaxSignalingMessageSize { get; init; } = 64 * 1024;

    /// <summary>The <c>Retry-After</c> of a 429 (RFC 9110 section 10.2.3). Default 5 s.</summary>
    public TimeSpan RetryAfter { get; init; } = TimeSpan.FromSeconds(5);

    internal void Validate()
    {
        if (MaxRequestBodySize <= 0) throw new ArgumentOutOfRangeException(nameof(MaxRequestBodySize));
        if (MaxSignalingMessageSize <= 0) throw new ArgumentOutOfRangeException(nameof(MaxSignalingMessageSize));
        if (RequestBodyTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(RequestBodyTimeout));
        if (RetryAfter < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(RetryAfter));
    }
}

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

    /// <summary>The key a client's sessions are counted under: its IP address (IPv4-mapped IPv6 as IPv4).</summary>
    public static string? ClientKey(HttpContext context) =>
        context.Connection.RemoteIpAddress is { } ip ? (ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip).ToString() : null;

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
    public static async Task RefuseAsync(HttpContext context, AdmissionRefusal refusal, HostingLimits limits)
    {
        context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
        context.Response.Headers.RetryAfter = Math.Ceiling(limits.RetryAfter.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        context.Response.ContentType = "application/json";
        await context.Response.Body.WriteAsync(refusal.ToJson(), context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads a request body of at most <see cref="HostingLimits.MaxRequestBodySize"/> bytes within
    /// <see cref="HostingLimits.RequestBodyTimeout"/>: the text, or the status to answer (413 too large, 408 too slow).
    /// Content-Length is checked before a byte is read, the running length at every read.
    /// </summary>
    public static async Task<(string? Text, int Status)> ReadBodyAsync(HttpContext context, HostingLimits limits)
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
    private readonly ConcurrentDictionary<string, byte[]> _digests = new(StringComparer.Ordinal);

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
