using System.Net.WebSockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Transport.Streaming.Sessions;

namespace Transport.Samples.EchoServer;

/// <summary>Options of the HTTP and WebSocket endpoints.</summary>
public sealed record EndpointOptions
{
    /// <summary>The server pings a WebSocket client this often. Default 15 s.</summary>
    public TimeSpan WebSocketKeepAliveInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>A WebSocket client that has not answered a ping within this is closed (reason TransportFailed). Default 10 s.</summary>
    public TimeSpan WebSocketKeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Options of the WebSocket stream transport (its <see cref="WebSocketTransportOptions.MaxMessageSize"/>: 1009 past it).</summary>
    public WebSocketTransportOptions WebSocket { get; init; } = new();

    /// <summary>
    /// The bearer token <c>GET /sessions</c> needs (<c>Authorization: Bearer TOKEN</c>); without it or with another,
    /// 401 and nothing about any session. Null (the default): <c>/sessions</c> is not served at all (404), since it
    /// names every session and its clients' addresses. The echo server's <c>--admin-token</c>.
    /// </summary>
    public string? AdminToken { get; init; }

    /// <summary>
    /// Origins whose pages may open <c>/ws</c> besides our own (<c>*</c>: any); another Origin is answered 403. A client
    /// that sends no Origin (not a browser) is served. Default none: our own origin only.
    /// </summary>
    public IReadOnlyList<string> AllowedOrigins { get; init; } = [];

    /// <summary>Retry-After of a 429, shared with the other endpoints.</summary>
    public HostingLimits Limits { get; init; } = new();
}

/// <summary>The thin hosting layer: maps the session library onto ASP.NET Core endpoints.</summary>
public static class StreamEndpoints
{
    /// <summary>
    /// <c>GET /sessions</c>: every session's health as JSON, only with the admin token (<see cref="EndpointOptions.AdminToken"/>). <c>GET /ws</c> (WebSocket upgrade): a session on the
    /// WebSocket stream transport; its query string becomes the handler's arguments. A full server answers 429
    /// with <c>{"status":"failed","meta":{"error":"concurrency_limit_reached","limit":N}}</c> (or <c>client_limit_reached</c>,
    /// <c>pending_limit_reached</c>) and <c>Retry-After</c>; a page of an origin not allowed, 403.
    /// </summary>
    public static IEndpointRouteBuilder MapStreamEndpoints(this IEndpointRouteBuilder app, StreamServer server, EndpointOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(server);
        options ??= new EndpointOptions();

        if (options.AdminToken is { } admin)
        {
            var expected = EdgeChecks.Digest(admin);
            app.MapGet("/sessions", (HttpContext context) =>
            {
                if (EdgeChecks.HasBearer(context.Request, expected)) return Results.Bytes(server.SessionsJson(), "application/json");
                context.Response.Headers.WWWAuthenticate = "Bearer realm=\"admin\"";
                return Results.Text("the admin token is required (Authorization: Bearer)", statusCode: StatusCodes.Status401Unauthorized);
            });
        }

        app.Map("/ws", async context =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                await context.Response.WriteAsync("a WebSocket upgrade is expected here", context.RequestAborted).ConfigureAwait(false);
                return;
            }
            if (!EdgeChecks.OriginAllowed(context.Request, options.AllowedOrigins))
            {
                await EdgeChecks.RefuseOriginAsync(context).ConfigureAwait(false);
                return;
            }
            if (!server.TryReserve(EdgeChecks.ClientKey(context), out var slot, out var refusal))
            {
                await EdgeChecks.RefuseAsync(context, refusal!, options.Limits).ConfigureAwait(false);
                return;
            }
            WebSocket socket;
            try
            {
                socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
                {
                    KeepAliveInterval = options.WebSocketKeepAliveInterval,
                    KeepAliveTimeout = options.WebSocketKeepAliveTimeout,
                }).ConfigureAwait(false);
            }
            catch
            {
                slot!.Dispose();
                throw;
            }
            var arguments = context.Request.Query.ToDictionary(q => q.Key, q => q.Value.ToString());
            var session = server.Start(slot!, new WebSocketSessionTransport(socket, options.WebSocket), arguments);
            // The WebSocket lives as long as this request: wait for the session (it ends on its own; never on RequestAborted alone).
            await session.Completion.ConfigureAwait(false);
        });
        return app;
    }
}
