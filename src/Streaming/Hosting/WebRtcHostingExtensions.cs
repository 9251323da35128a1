using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Transport.Streaming.Io;
using Transport.Streaming.Sessions;

namespace Transport.Streaming.Hosting;

/// <summary>
/// Registers WebRTC and WebSocket stream sessions in an ASP.NET Core application:
/// <code>
/// builder.Services.AddWebRtcSessions&lt;MyHandler&gt;();   // binds the "WebRtc" configuration section
/// var app = builder.Build();
/// app.MapWhip("/whip");
/// app.MapSignaling("/signal");
/// app.MapStreamSessions("/ws");
/// app.MapSessionAdmin("/sessions");
/// </code>
/// Registered: <see cref="WebRtcSessionsHost"/>, <see cref="StreamServer"/>, <see cref="UdpDriver"/>,
/// <see cref="WebRtcSessions"/> (singletons, made and bound on first use or at start), and a hosted service that
/// disposes them when the application stops. The clock is the registered <see cref="TimeProvider"/>, else the system's.
/// </summary>
public static class WebRtcHostingExtensions
{
    /// <summary>
    /// Sessions run a new <typeparamref name="THandler"/> each (constructor arguments from the services); options from
    /// the application's <c>WebRtc</c> configuration section, then <paramref name="configure"/>.
    /// </summary>
    public static IServiceCollection AddWebRtcSessions<THandler>(this IServiceCollection services, Action<WebRtcSessionsOptions>? configure = null)
        where THandler : class, IStreamHandler =>
        services.AddWebRtcSessions(HandlerFactory<THandler>(), configure);

    /// <summary>
    /// As <see cref="AddWebRtcSessions{THandler}(IServiceCollection, Action{WebRtcSessionsOptions}?)"/>, options from <paramref name="configuration"/> (the
    /// section itself).
    /// </summary>
    public static IServiceCollection AddWebRtcSessions<THandler>(this IServiceCollection services, IConfiguration configuration,
        Action<WebRtcSessionsOptions>? configure = null)
        where THandler : class, IStreamHandler =>
        services.AddWebRtcSessions(configuration, HandlerFactory<THandler>(), configure);

    /// <summary>
    /// Sessions run the handler <paramref name="handlerFactory"/> makes for each; options from the application's
    /// <c>WebRtc</c> configuration section (when an <see cref="IConfiguration"/> is registered), then <paramref name="configure"/>.
    /// </summary>
    public static IServiceCollection AddWebRtcSessions(this IServiceCollection services, Func<IServiceProvider, IStreamHandler> handlerFactory,
        Action<WebRtcSessionsOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<WebRtcSessionsOptions>().Configure<IServiceProvider>((options, provider) =>
        {
            if (provider.GetService<IConfiguration>() is { } configuration)
                WebRtcConfiguration.Bind(configuration.GetSection(WebRtcSessionsOptions.SectionName), options);
        });
        return services.AddCore(handlerFactory, configure);
    }

    /// <summary>
    /// As <see cref="AddWebRtcSessions(IServiceCollection, Func{IServiceProvider, IStreamHandler}, Action{WebRtcSessionsOptions}?)"/>, options from
    /// <paramref name="configuration"/> (the section itself).
    /// </summary>
    public static IServiceCollection AddWebRtcSessions(this IServiceCollection services, IConfiguration configuration,
        Func<IServiceProvider, IStreamHandler> handlerFactory, Action<WebRtcSessionsOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<WebRtcSessionsOptions>().Configure(options => WebRtcConfiguration.Bind(configuration, options));
        return services.AddCore(handlerFactory, configure);
    }

    /// <summary>Exactly these options, bound from no configuration (the caller has already read its own).</summary>
    public static IServiceCollection AddWebRtcSessions(this IServiceCollection services, WebRtcSessionsOptions options,
        Func<IServiceProvider, IStreamHandler> handlerFactory)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(options);
        services.AddSingleton<IOptions<WebRtcSessionsOptions>>(Microsoft.Extensions.Options.Options.Create(options));
        return services.AddCore(handlerFactory, null);
    }

    private static IServiceCollection AddCore(this IServiceCollection services, Func<IServiceProvider, IStreamHandler> handlerFactory,
        Action<WebRtcSessionsOptions>? configure)
    {
        ArgumentNullException.ThrowIfNull(handlerFactory);
        if (configure is not null) services.Configure(configure);
        services.TryAddSingleton(provider => new WebRtcSessionsHost(
            provider.GetRequiredService<IOptions<WebRtcSessionsOptions>>().Value,
            () => handlerFactory(provider),
            provider.GetService<TimeProvider>(),
            provider.GetService<ILoggerFactory>()));
        services.TryAddSingleton(provider => provider.GetRequiredService<WebRtcSessionsHost>().Server);
        services.TryAddSingleton(provider => provider.GetRequiredService<WebRtcSessionsHost>().Driver);
        services.TryAddSingleton(provider => provider.GetRequiredService<WebRtcSessionsHost>().Sessions);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, WebRtcSessionsLifetime>());
        return services;
    }

    private static Func<IServiceProvider, IStreamHandler> HandlerFactory<THandler>() where THandler : class, IStreamHandler
    {
        var make = ActivatorUtilities.CreateFactory<THandler>([]);
        return provider => make(provider, null);
    }

    internal static WebRtcSessionsHost GetHost(IServiceProvider services) =>
        services.GetService<WebRtcSessionsHost>()
        ?? throw new InvalidOperationException("WebRTC sessions are not registered: call builder.Services.AddWebRtcSessions(...) " +
            "before mapping their endpoints.");

    /// <summary>Makes the sessions (binding the UDP port) when the application starts; ends them when it stops.</summary>
    private sealed class WebRtcSessionsLifetime(WebRtcSessionsHost host) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public async Task StopAsync(CancellationToken cancellationToken) => await host.DisposeAsync().ConfigureAwait(false);
    }
}
