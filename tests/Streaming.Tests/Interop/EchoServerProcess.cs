using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.Versioning;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// The main program (EchoServer.dll, built next to the tests) started inside a <see cref="NetworkNamespace"/> with
/// <c>ip netns exec</c>: the fresh namespace has only its own loopback, so the default ports are free there. Killed
/// by its process id on dispose, even when the test failed.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class EchoServerProcess : IDisposable
{
    private readonly Process _process;

    private EchoServerProcess(Process process) => _process = process;

    public ConcurrentQueue<string> Output { get; } = new();

    public string Url { get; private init; } = "";

    public static Task<EchoServerProcess> StartAsync(NetworkNamespace ns, params string[] extra) =>
        StartAtAsync(ns, "http://127.0.0.1:8080", extra);

    /// <summary>As <see cref="StartAsync"/>, listening on <paramref name="urls"/> (<c>--urls</c>); <see cref="Url"/> is <paramref name="url"/>.</summary>
    public static Task<EchoServerProcess> StartAtAsync(NetworkNamespace ns, string url, string[] extra, string? urls = null) =>
        StartCoreAsync(ns, url, urls ?? url, extra);

    private static async Task<EchoServerProcess> StartCoreAsync(NetworkNamespace ns, string url, string urls, string[] extra)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "EchoServer.dll");
        if (!File.Exists(dll)) throw new InvalidOperationException(dll + " is missing (the test project references samples/EchoServer)");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", ns.Name, dotnet, dll, "--urls", urls, "--udp-port", "50000", .. extra]) start.ArgumentList.Add(a);
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the echo server");
        var server = new EchoServerProcess(process) { Url = url };
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            server.Output.Enqueue(e.Data);
            if (e.Data.Contains("Now listening on", StringComparison.Ordinal)) ready.TrySetResult();
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) server.Output.Enqueue("stderr: " + e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var exited = process.WaitForExitAsync();
            var first = await Task.WhenAny(ready.Task, exited, Task.Delay(TimeSpan.FromSeconds(60)));
            if (first != ready.Task)
                throw new InvalidOperationException("the echo server did not start: " + string.Join("\n", server.Output));
            return server;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
        _process.WaitForExit(5000);
        _process.Dispose();
    }
}
