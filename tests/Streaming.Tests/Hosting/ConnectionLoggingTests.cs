using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Transport.Samples.EchoServer;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.Hosting;

/// <summary>
/// At the default level the server logs each connection's way up (first check, valid and selected pair, DTLS with
/// its role and suite, SCTP, data channels) under the session id with the times since the offer.
/// </summary>
public sealed class ConnectionLoggingTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task TheServerLogsEachConnectionsMilestonesAtInformationInOrder()
    {
        await using var host = await EchoTestHost.StartAsync();
        using var http = new HttpClient();
        await using var client = await WebRtcStreamClient.ConnectAsync(WebRtcStreamClient.WhipAsync(http, host.Whip)).WaitAsync(Patience);
        await client.SendTextAsync("logged");
        Assert.Equal("logged", (await client.NextAsync(Patience)).Text);
        var id = client.Resource!.Segments[^1];

        // The milestones are logged on the connection's thread: wait (bounded) for the channel and for the nomination,
        // which may come after data already flows on the first valid pair (RFC 8445 section 12.1).
        // We answer passive, so we are the DTLS server: the browser's ClientHello may start our DTLS before our own
        // check of the pair has succeeded (PairValid), so those two have no fixed order; both precede DtlsConnected.
        string[] expected = ["DtlsConnected", "SctpEstablished", "DataChannelOpened"];
        var waiting = Stopwatch.StartNew();
        List<string> lines;
        while (!((lines = Lines()).Any(l => l.Contains("DataChannelOpened", StringComparison.Ordinal))
            && lines.Any(l => l.Contains("PairSelected", StringComparison.Ordinal)))
               && waiting.Elapsed < Patience)
            await Task.Delay(10);
        foreach (var line in lines) output.WriteLine(line);

        List<string> Lines() =>
            host.Logs.Where(l => l.Level == LogLevel.Information && l.Message.StartsWith($"Peer connection {id}: ", StringComparison.Ordinal))
            .Select(l => l.Message).ToList();
        var positions = expected.Select(m => lines.FindIndex(l => l.Contains($": {m} at ", StringComparison.Ordinal))).ToList();
        Assert.All(positions.Zip(expected), p => Assert.True(p.First >= 0, $"{p.Second} was not logged"));
        Assert.Equal(positions.Order(), positions);
        foreach (var before in new[] { "PairValid", "DtlsStarted" })
        {
            var at = lines.FindIndex(l => l.Contains($": {before} at ", StringComparison.Ordinal));
            Assert.True(at >= 0 && at < positions[0], $"{before} was not logged before DtlsConnected");
        }
        Assert.Contains(lines, l => l.Contains("PairSelected at ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("FirstCheckSent at ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("FirstCheckReceived at ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("DtlsConnected at ", StringComparison.Ordinal) && l.Contains("as server", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("-> Connected", StringComparison.Ordinal));
        Assert.All(lines.Where(l => l.Contains(" at ", StringComparison.Ordinal)), l => Assert.Matches(@" at \d+\.\d ms since the offer", l));
    }

    [Theory]
    [InlineData("debug", LogLevel.Debug)]
    [InlineData("Warning", LogLevel.Warning)]
    [InlineData("none", LogLevel.None)]
    public void TheLogLevelIsAnOption(string given, LogLevel expected)
    {
        Assert.Equal(LogLevel.Information, new EchoServerSettings().LogLevel);
        Assert.Equal(expected, EchoServerSettings.Parse(["--log-level", given]).LogLevel);
    }

    [Theory]
    [InlineData("loud")]
    [InlineData("2")]
    public void AnUnknownLogLevelIsRefused(string given) =>
        Assert.Throws<ArgumentException>(() => EchoServerSettings.Parse(["--log-level", given]));
}
