using System.Diagnostics;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Hosting;

/// <summary>
/// The main program's <c>--self-test</c>, run as the README runs it: a separate process, real UDP on 127.0.0.1. It
/// streams as fast as it can, so it runs alone (with the browser tests), not beside the timing-sensitive tests.
/// </summary>
[Collection(Interop.BrowserCollection.Name)]
public sealed class SelfTestTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TheSelfTestConnectsStreamsEndsWithEndStreamAndExitsWithZero()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "EchoServer.dll");
        Assert.True(File.Exists(dll), dll + " is missing");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { dll, "--self-test", "--self-test-seconds", "2" }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        try
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            await process.WaitForExitAsync(bound.Token);
            var text = await stdout;
            output.WriteLine(text);
            output.WriteLine(await stderr);
            Assert.Equal(0, process.ExitCode);
            Assert.Contains("self-test: OK", text, StringComparison.Ordinal);
            Assert.Matches(@"connected: set-up [\d.]+ ms", text);
            Assert.Matches(@"throughput: [\d.]+ MB sent and [\d.]+ MB echoed", text);
            Assert.Contains("end: data:goodbye | control:{\"type\":\"end_stream\",\"reason\":\"the client said bye\"} | close", text, StringComparison.Ordinal);
            Assert.Matches(@"teardown: [\d.]+ ms on the server", text);
            Assert.Matches(@"\r +[\d.]+ s +sent +[\d.]+ MB +echoed", text); // the progress line
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }
}
