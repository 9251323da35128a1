using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Transport.Samples.EchoServer;
using Transport.Streaming.Hosting;
using Transport.Streaming.Io;
using Transport.Streaming.Sessions;
using static Transport.Streaming.Tests.Hosting.EdgeTestSupport;

namespace Transport.Streaming.Tests.Hosting;

/// <summary>
/// The hosting library on its own. A minimal application with only <c>AddWebRtcSessions</c> and the Map*
/// calls serves WHIP and signaling; options and limits bind from configuration (in-memory, environment-style keys,
/// the echo server's command line), times as hh:mm:ss or seconds, and reach the session server and every peer connection.
/// </summary>
public sealed class HostingLibraryTests
{
    /// <summary>A handler of the test's own: echoes data messages.</summary>
    private sealed class Echo : IStreamHandler
    {
        public async IAsyncEnumerable<StreamOutput> RunAsync(StreamContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await foreach (var input in context.Inputs.WithCancellation(cancellationToken).ConfigureAwait(false))
                if (input is DataInput data) yield return new DataOutput(data.Data, data.IsText, data.Channel);
        }
    }

    [Fact]
    public async Task AMinimalAppWithOnlyAddWebRtcSessionsAndTheMapCallsServesWhipAndSignaling()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["WebRtc:UdpPort"] = "0" });
        builder.Services.AddWebRtcSessions<Echo>();
        await using var app = builder.Build();
        app.MapWhip("/whip");
        app.MapSignaling("/signal");
        app.MapStreamSessions("/ws");
        app.MapSessionAdmin("/sessions");
        await app.StartAsync();
        var http = new Uri(app.Urls.First());
        var server = app.Services.GetRequiredService<StreamServer>();
        Assert.Same(app.Services.GetRequiredService<WebRtcSessionsHost>().Driver, app.Services.GetRequiredService<UdpDriver>());
        Assert.Equal(IPAddress.Loopback, app.Services.GetRequiredService<UdpDriver>().LocalEndPoints[0].Address);

        // WHIP: an in-process WebRTC client connects over UDP and its data comes back.
        using var httpClient = new HttpClient { Timeout = Patience };
        await using (var client = await WebRtcStreamClient.ConnectAsync(WebRtcStreamClient.WhipAsync(httpClient, new Uri(http, "/whip"))).WaitAsync(Patience))
        {
            await client.SendTextAsync("hello library");
            ClientObservation seen;
            do seen = await client.NextAsync(Patience);
            while (seen.Kind != "data");
            Assert.Equal("hello library", seen.Text);
        }

        // Signaling: an offer is answered with a session id and a resume token.
        using var ws = new System.Net.WebSockets.ClientWebSocket();
        await ws.ConnectAsync(new Uri($"ws://{http.Authority}/signal"), default);
        await SendJsonAsync(ws, new { type = "offer", sdp = Offer });
        var answer = await ReceiveJsonAsync(ws);
        Assert.Equal("answer", answer.GetProperty("type").GetString());
        Assert.NotNull(server.Find(answer.GetProperty("session").GetString()!));
        Assert.False(string.IsNullOrEmpty(answer.GetProperty("resume").GetString()));

        // No admin token configured: the session list is not served.
        using (var list = await httpClient.GetAsync(new Uri(http, "/sessions")))
            Assert.Equal(HttpStatusCode.NotFound, list.StatusCode);

        // Stopping the application ends the sessions: the server admits no more.
        await app.StopAsync();
        Assert.False(server.TryReserve(out _, out var refusal));
        Assert.Equal("server_shutting_down", refusal!.Error);
    }

    [Fact]
    public async Task ConfigurationReachesTheLimitsTheServerAndEveryPeerConnection()
    {
        const string Prefix = "TRANSPORT_HOSTING_TEST_";
        Environment.SetEnvironmentVariable(Prefix + "WebRtc__Limits__MaxSessionsPerClient", "3");
        Environment.SetEnvironmentVariable(Prefix + "WebRtc__Limits__IdleLimit", "90");
        try
        {
            var configuration = new ConfigurationBuilder()
                .AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["WebRtc:UdpPort"] = "0",
                    ["WebRtc:Limits:MaxSessions"] = "7",
                    ["WebRtc:Limits:ConnectTimeout"] = "00:00:07",     // hh:mm:ss
                    ["WebRtc:Limits:RequestBodyTimeout"] = "2.5",      // seconds, not days
                    ["WebRtc:Limits:SessionTimeLimit"] = "600",
                    ["WebRtc:Limits:DisconnectedLimit"] = "none",
                    ["WebRtc:Limits:OffersPerSecond"] = "0.5",
                    ["WebRtc:Limits:MaxRemoteCandidates"] = "12",
                    ["WebRtc:Limits:AllowPrivateAddresses"] = "false",
                    ["WebRtc:Limits:MaxDataChannels"] = "16",
                    ["WebRtc:Limits:MaxChannelLabelLength"] = "64",
                    ["WebRtc:Limits:DtlsMaxHandshakeBuffer"] = "32768",
                    ["WebRtc:Limits:MaxStreamMessageSize"] = "4096",
                    ["WebRtc:AllowedOrigins:0"] = "https://app.example",
                    ["WebRtc:Whip:BearerToken"] = "t0ken",
                    ["WebRtc:Signaling:KeepAliveInterval"] = "3",
                })
                .AddEnvironmentVariables(Prefix)   // WebRtc__Limits__X, as the environment gives it
                .Build();
            var services = new ServiceCollection().AddLogging().AddSingleton<IConfiguration>(configuration);
            services.AddWebRtcSessions(_ => new Echo());
            await using var provider = services.BuildServiceProvider();
            var options = provider.GetRequiredService<IOptions<WebRtcSessionsOptions>>().Value;
            var limits = options.Limits;
            Assert.Equal(7, limits.MaxSessions);
            Assert.Equal(3, limits.MaxSessionsPerClient);
            Assert.Equal(TimeSpan.FromSeconds(7), limits.ConnectTimeout);
            Assert.Equal(TimeSpan.FromSeconds(2.5), limits.RequestBodyTimeout);
            Assert.Equal(TimeSpan.FromSeconds(90), limits.IdleLimit);
            Assert.Equal(TimeSpan.FromMinutes(10), limits.SessionTimeLimit);
            Assert.Null(limits.DisconnectedLimit);
            Assert.Equal(0.5, limits.OffersPerSecond);
            Assert.Equal(20, limits.MaxPendingSessions); // unset: the default
            Assert.Equal(["https://app.example"], options.AllowedOrigins);
            Assert.Equal("t0ken", options.Whip.BearerToken);
            Assert.Equal(TimeSpan.FromSeconds(3), options.Signaling.KeepAliveInterval);

            var host = provider.GetRequiredService<WebRtcSessionsHost>();
            var server = host.Server.Options;
            Assert.Equal((7, 3, TimeSpan.FromSeconds(7), TimeSpan.FromSeconds(90)),
                (server.MaxConcurrentSessions, server.MaxSessionsPerClient, server.ConnectTimeout, server.IdleLimit));
            Assert.Null(server.DisconnectedLimit);
            var pc = provider.GetRequiredService<WebRtcSessions>().Options.PeerConnection;
            Assert.Equal(12, pc.Ice.Limits.MaxRemoteCandidates);
            Assert.False(pc.Ice.Limits.AllowPrivateAddresses);
            Assert.Equal(500, pc.Ice.Limits.MaxPairs);
            Assert.Equal(16, pc.Sctp.Limits.MaxChannels);
            Assert.Equal(64, pc.Sctp.Limits.MaxLabelLength);
            Assert.Equal(32768, pc.DtlsMaxHandshakeBuffer);
            Assert.Equal(4096, limits.ApplyTo(new WebSocketTransportOptions()).MaxMessageSize);
        }
        finally
        {
            Environment.SetEnvironmentVariable(Prefix + "WebRtc__Limits__MaxSessionsPerClient", null);
            Environment.SetEnvironmentVariable(Prefix + "WebRtc__Limits__IdleLimit", null);
        }
    }

    [Fact]
    public void AMisspeltKeyOrABadTimeOrAnOutOfRangeLimitIsAClearError()
    {
        static WebRtcSessionsHost Resolve(string key, string value)
        {
            var configuration = new ConfigurationBuilder()
                .AddInMemoryCollection(new Dictionary<string, string?> { ["WebRtc:UdpPort"] = "0", [key] = value }).Build();
            var services = new ServiceCollection().AddLogging();
            services.AddWebRtcSessions(configuration.GetSection("WebRtc"), _ => new Echo());
            using var provider = services.BuildServiceProvider();
            return provider.GetRequiredService<WebRtcSessionsHost>();
        }
        Assert.Contains("MaxSesions", Assert.Throws<InvalidOperationException>(() => Resolve("WebRtc:Limits:MaxSesions", "5")).Message,
            StringComparison.Ordinal);
        Assert.Contains("ConnectTimeout", Assert.Throws<InvalidOperationException>(() => Resolve("WebRtc:Limits:ConnectTimeout", "soon")).Message,
            StringComparison.Ordinal);
        Assert.Equal("MaxSessions", Assert.Throws<ArgumentOutOfRangeException>(() => Resolve("WebRtc:Limits:MaxSessions", "-1")).ParamName);
    }

    [Fact]
    public void TheEchoServerReadsConfigurationThenConfigurationKeysOnItsCommandLineThenItsFlags()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["WebRtc:Limits:MaxSessions"] = "50",
            ["WebRtc:Limits:OfferBurst"] = "3",
            ["WebRtc:Limits:ConnectTimeout"] = "8",
        }).Build();
        var s = EchoServerSettings.Parse(["--WebRtc:Limits:OfferBurst=9", "--WebRtc:Limits:ConnectTimeout", "3", "--max-sessions", "4", "--offers-per-second",
            "0.25", "--session-time-limit", "60"], configuration);
        var limits = s.Sessions.Limits;
        Assert.Equal(4, limits.MaxSessions);                        // the flag over the configuration
        Assert.Equal(9, limits.OfferBurst);                         // the command-line key over the configuration
        Assert.Equal(TimeSpan.FromSeconds(3), limits.ConnectTimeout);
        Assert.Equal(0.25, limits.OffersPerSecond);
        Assert.Equal(TimeSpan.FromSeconds(60), limits.SessionTimeLimit);
        Assert.Equal(50, EchoServerSettings.Parse([], configuration).Sessions.Limits.MaxSessions);
        Assert.Throws<ArgumentException>(() => EchoServerSettings.Parse(["--WebRtc:Limits:Bogus=1"]));
        Assert.Throws<ArgumentException>(() => EchoServerSettings.Parse(["--offers-per-second", "-1"]));
    }

    [Fact]
    public void TheLimitsApplyToTheSessionServerAndThePeerConnectionsDefaultsDocumented()
    {
        var limits = new WebRtcServerLimits();
        var server = limits.ApplyTo(new StreamServerOptions());
        Assert.Equal((100, 10, 20, TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(5)),
            (server.MaxConcurrentSessions, server.MaxSessionsPerClient, server.MaxPendingSessions, server.ConnectTimeout, server.IdleLimit));
        var pc = limits.ApplyTo(new WebRtcTransportOptions()).PeerConnection;
        Assert.Equal((100, 500, true), (pc.Ice.Limits.MaxRemoteCandidates, pc.Ice.Limits.MaxPairs, pc.Ice.Limits.AllowPrivateAddresses));
        Assert.Equal((64 * 1024, 4 << 20, 256 * 1024), (pc.DtlsMaxHandshakeBuffer, pc.MaxUnreadBytes, pc.MaxMessageSize));
        Assert.Equal((1024, 1024, 1024), (pc.Sctp.Limits.MaxChannels, pc.Sctp.Limits.MaxLabelLength, pc.Sctp.Limits.MaxProtocolLength));
        // What the transport options said besides the limits is kept.
        Assert.Equal(TimeSpan.FromMilliseconds(400), pc.Sctp.RtoMin);
        Assert.Equal((5, 1.0, 10_000), (limits.OfferBurst, limits.OffersPerSecond, limits.MaxRateLimitedClients));
    }
}
