using System.Net.WebSockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Transport.Streaming.Sessions;

namespace Transport.Streaming.Hosting;

/// <summary>Maps the WebSocket stream sessions and the session list onto ASP.NET Core endpoints.</summary>
public static class StreamEndpoints
{
    /// <summary>
    /// <c>GET pattern</c> (WebSocket upgrade): a session on the WebSocket stream transport; its query string becomes the
    /// handler's arguments. A full server answers 429 with <c>{"status":"failed","meta":{"error":"concurrency_limit_reached","limit":N}}</c>
    /// (or <c>client_limit_reached</c>, <c>pending_limit_reached</c>, <c>rate_limit_reached</c>) and <c>Retry-After</c>;
    /// a page of an origin not allowed (<see cref="WebRtcSessionsOptions.AllowedOrigins"/>), 403. A message over
    /// <see cref="WebRtcServerLimits.MaxStreamMessageSize"/> closes the socket with 1009. Needs
    /// <c>AddWebRtcSessions</c>; no <c>UseWebSockets</c> is needed.
    /// </summary>
    public static IEndpointConventionBuilder MapStreamSessions(this IEndpointRouteBuilder endpoints, string pattern = "/ws")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var host = WebRtcHostingExtensions.GetHost(endpoints.ServiceProvider);
        var options = host.Options;
        var transport = host.Limits.ApplyTo(options.Streams.WebSocket);
        return endpoints.Map(pattern, WebSocketPipeline(endpoints, async context =>
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
            var client = ClientKey.For(context);
            if (EdgeChecks.TakeOffer(host, client) is { } rate)
            {
                await EdgeChecks.RefuseAsync(context, rate.Json, rate.RetryAfter).ConfigureAwait(false);
                return;
            }
            if (!host.Server.TryReserve(client, out var slot, out var refusal))
            {
                await EdgeChecks.RefuseAsync(context, refusal!, host.Limits).ConfigureAwait(false);
                return;
            }
            WebSocket socket;
            try
            {
                socket = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
                {
                    KeepAliveInterval = options.Streams.WebSocketKeepAliveInterval,
                    KeepAliveTimeout = options.Streams.WebSocketKeepAliveTimeout,
                }).ConfigureAwait(false);
            }
            catch
            {
                slot!.Dispose();
                throw;
            }
            var arguments = context.Request.Query.ToDictionary(q => q.Key, q => q.Value.ToString());
            var session = host.Server.Start(slot!, new WebSocketSessionTransport(socket, transport), arguments);
            // The WebSocket lives as long as this request: wait for the session (it ends on its own; never on RequestAborted alone).
            await session.Completion.ConfigureAwait(false);
        }));
    }

    /// <summary>
    /// <c>GET pattern</c>: every session's health as JSON, only with the admin token
    /// (<see cref="WebRtcSessionsOptions.AdminToken"/>, <c>Authorization: Bearer TOKEN</c>; else 401 and nothing about
    /// any session). With no admin token configured it answers 404: the list names every session and its clients' addresses.
    /// </summary>
    public static IEndpointConventionBuilder MapSessionAdmin(this IEndpointRouteBuilder endpoints, string pattern = "/sessions")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var host = WebRtcHostingExtensions.GetHost(endpoints.ServiceProvider);
        var expected = host.Options.AdminToken is { } admin ? EdgeChecks.Digest(admin) : null;
        return endpoints.MapGet(pattern, (HttpContext context) =>
        {
            if (expected is null) return Results.NotFound();
            if (EdgeChecks.HasBearer(context.Request, expected)) return Results.Bytes(host.Server.SessionsJson(), "application/json");
            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"admin\"";
            return Results.Text("the admin token is required (Authorization: Bearer)", statusCode: StatusCodes.Status401Unauthorized);
        });
    }

    /// <summary>The WebSocket middleware in front of <paramref name="handler"/>, so the application need not call <c>UseWebSockets</c>.</summary>
    internal static RequestDelegate WebSocketPipeline(IEndpointRouteBuilder endpoints, RequestDelegate handler)
    {
        var branch = endpoints.CreateApplicationBuilder();
        branch.UseWebSockets();
        branch.Run(handler);
        return branch.Build();
    }
}
