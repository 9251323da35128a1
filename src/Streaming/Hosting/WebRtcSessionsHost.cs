using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging;
using Transport.Streaming.Io;
using Transport.Streaming.Sessions;

namespace Transport.Streaming.Hosting;

/// <summary>
/// What <see cref="WebRtcHostingExtensions.AddWebRtcSessions(IServiceCollection, Func{IServiceProvider, IStreamHandler}, Action{WebRtcSessionsOptions}?)"/>
/// registers and the endpoint mappings use: the session server, the UDP driver of every WebRTC session, the WebRTC
/// session starter, the offer rate limiter, with the options in force. Disposed when the application stops.
/// </summary>
public sealed class WebRtcSessionsHost : IAsyncDisposable
{
    private int _disposed;

    public WebRtcSessionsHost(WebRtcSessionsOptions options, Func<IStreamHandler> handlerFactory, TimeProvider? time = null, ILoggerFactory? loggers = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(handlerFactory);
        options.Validate();
        Options = options;
        time ??= TimeProvider.System;
        loggers ??= NullLoggerFactory.Instance;
        Server = new StreamServer(handlerFactory, options.ToServerOptions(), time, loggers);
        try
        {
            Driver = BindUdp(options, time, loggers);
        }
        catch
        {
            Server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
        Relay = options.Relay.Enabled ? new SignalingRelay(options.Relay, time) : null;
        Sessions = new WebRtcSessions(Server, Driver, options.Limits.ApplyTo(options.Transport), Relay);
        RateLimiter = new OfferRateLimiter(options.Limits, time);
    }

    /// <summary>The options in force.</summary>
    public WebRtcSessionsOptions Options { get; }

    /// <summary>The limits in force (<see cref="WebRtcSessionsOptions.Limits"/>).</summary>
    public WebRtcServerLimits Limits => Options.Limits;

    /// <summary>The session server of every WebRTC and WebSocket session.</summary>
    public StreamServer Server { get; }

    /// <summary>The UDP driver every WebRTC session shares.</summary>
    public UdpDriver Driver { get; }

    /// <summary>The signaling relay between clients (<see cref="WebRtcSessionsOptions.Relay"/>), or null when it is off.</summary>
    public SignalingRelay? Relay { get; }

    /// <summary>Starts WebRTC sessions on <see cref="Driver"/>.</summary>
    public WebRtcSessions Sessions { get; }

    /// <summary>The offers of each client (<see cref="ClientKey"/>), token bucket.</summary>
    public OfferRateLimiter RateLimiter { get; }

    /// <summary>The UDP endpoint every WebRTC session uses.</summary>
    public IPEndPoint UdpEndPoint => Driver.LocalEndPoints[0];

    // The one place the UDP port is bound: WebRtc:UdpAddress (addresses, or * for every address of the host: one
    // socket each, UdpDriver.BindAll) and WebRtc:UdpPort.
    private static UdpDriver BindUdp(WebRtcSessionsOptions options, TimeProvider time, ILoggerFactory loggers)
    {
        var driver = new UdpDriver(time, null, loggers.CreateLogger<UdpDriver>());
        try
        {
            var addresses = options.ParseUdpAddresses();
            if (addresses.Count == 0) driver.BindAll(options.UdpPort);
            else foreach (var address in addresses) driver.Bind(new IPEndPoint(address, options.UdpPort));
        }
        catch
        {
            driver.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
        return driver;
    }

    /// <summary>Ends every session, then closes the UDP port. Idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await Server.DisposeAsync().ConfigureAwait(false);
        await Driver.DisposeAsync().ConfigureAwait(false);
        Sessions.Dispose();
    }
}
