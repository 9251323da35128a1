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

    /// <summary>Options of the WebSocket stream transport.</summary>
    public WebSocketTransportOptions WebSocket { get; init; } = new();
}

/// <summary>The thin hosting layer: maps the session library onto ASP.NET Core endpoints.</summary>
public static class StreamEndpoints
{
    /// <summary>
    /// <c>GET /sessions</c>: every session's health as JSON. <c>GET /ws</c> (WebSocket upgrade): a session on the
    /// WebSocket stream transport; its query string becomes the handler's arguments. A full server answers 429
    /// with <c>{"status":"failed","meta":{"error":"concurrency_limit_reached","limit":N}}</c>.
    /// </summary>
    public static IEndpointRouteBuilder MapStreamEndpoints(this IEndpointRouteBuilder app, StreamServer server, EndpointOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(server);
        options ??= new EndpointOptions();

        app.MapGet("/sessions", () => Results.Bytes(server.SessionsJson(), "application/json"));

        app.Map("/ws", async context =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                await context.Response.WriteAsync("a WebSocket upgrade is expected here", context.RequestAborted).ConfigureAwait(false);
                return;
            }
            if (!server.TryReserve(out var slot, out var refusal))
            {
                context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
                context.Response.ContentType = "application/json";
                await context.Response.Body.WriteAsync(refusal!.ToJson(), context.RequestAborted).ConfigureAwait(false);
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
