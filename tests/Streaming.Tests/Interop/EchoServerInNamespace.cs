using System.Runtime.Versioning;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Transport.Samples.EchoServer;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Interop;

/// <summary>The main program built inside a test's network namespace: its UDP socket and Kestrel's listening socket both live there.</summary>
[SupportedOSPlatform("linux")]
internal static class EchoServerInNamespace
{
    /// <summary>
    /// Builds the echo server with <paramref name="settings"/> inside <paramref name="ns"/> (the UDP port is bound by
    /// Build, on the namespace's thread) and makes Kestrel create its listening socket inside it too (a socket stays
    /// in the namespace it was made in). Not started.
    /// </summary>
    public static EchoServerInstance Build(NetworkNamespace ns, EchoServerSettings settings, Action<ILoggingBuilder>? logging = null)
    {
        var instance = ns.CreateInside(() => EchoServerApp.Build(settings, logging ?? (_ => { })));
        instance.App.Services.GetRequiredService<IOptions<SocketTransportOptions>>().Value.CreateBoundListenSocket =
            endpoint => ns.CreateInside(() => SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint));
        return instance;
    }

    /// <summary>Stops the echo server (at most 15 s, a longer stop is written to <paramref name="output"/>) and disposes it.</summary>
    public static async Task StopAsync(EchoServerInstance instance, ITestOutputHelper output)
    {
        try { await instance.App.StopAsync().WaitAsync(TimeSpan.FromSeconds(15)); }
        catch (TimeoutException) { output.WriteLine("the echo server did not stop within 15 s"); }
        await instance.App.DisposeAsync();
    }
}
