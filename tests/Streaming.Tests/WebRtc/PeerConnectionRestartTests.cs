using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using Transport.Ice;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;
using Xunit.Abstractions;

namespace Transport.Streaming.Tests.WebRtc;

using static RealPeerKit;

/// <summary>
/// ICE restart and renegotiation between two of our <see cref="PeerConnection"/>s over real UDP sockets on 127.0.0.1,
/// through the async API, with messages flowing both ways the whole time. Times are printed on lines "restart:".
/// </summary>
public sealed class PeerConnectionRestartTests(ITestOutputHelper output)
{
    /// <summary>Keeps every event of a connection (the single reader of its event stream).</summary>
    private sealed class Collector
    {
        private readonly Task _loop;
        public Collector(PeerConnection pc) => _loop = Task.Run(async () =>
        {
            await foreach (var e in pc.ReadEventsAsync()) Events.Enqueue(e);
        });
        public ConcurrentQueue<PeerConnectionEvent> Events { get; } = new();
        public List<string> Messages => Events.OfType<DataChannelMessageReceived>().Select(m => Encoding.UTF8.GetString(m.Data)).ToList();
        public IEnumerable<ConnectionState> States => Events.OfType<ConnectionStateChanged>().Select(s => s.State);

        public async Task<T> WaitForAsync<T>(Func<T, bool>? match = null) where T : PeerConnectionEvent
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < Patience)
            {
                if (Events.OfType<T>().FirstOrDefault(e => match is null || match(e)) is { } found) return found;
                if (_loop.IsCompleted) break;
                await Task.Delay(2);
            }
            throw new TimeoutException($"no {typeof(T).Name} within {Patience} (events: {string.Join(", ", Events.Select(e => e.GetType().Name).Distinct())})");
        }
    }

    private static string UfragOf(string sdp) =>
        sdp.Split('\n').Select(l => l.Trim()).First(l => l.StartsWith("a=ice-ufrag:", StringComparison.Ordinal))["a=ice-ufrag:".Length..];

    [Fact]
    public async Task RestartsByEachSideLoseNoMessageAndMoveTheSelectedPairToTheNewGeneration()
    {
        await using var pair = LoopbackPair.Create();
        var (a, b) = (pair.A, pair.B);
        var ea = new Collector(a);
        var eb = new Collector(b);

        var offer = await a.CreateOfferAsync();
        await a.SetRemoteDescriptionAsync(await b.CreateAnswerAsync(offer));
        var channelA = await a.CreateDataChannelAsync("steady").WaitAsync(Patience);
        var channelB = (await eb.WaitForAsync<DataChannelOpened>()).Channel;
        // The channel may open on the first valid pair, before nomination (RFC 8445 section 12.1): wait for the selection.
        var firstPair = await SelectedAsync(a);
        Assert.Equal(UfragOf(offer), firstPair!.LocalUsernameFragment);

        // Both sides send a numbered message every millisecond or so until told to stop.
        using var stop = new CancellationTokenSource();
        var sent = 0;
        var pump = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await a.SendAsync(channelA, $"m{sent}");
                await b.SendAsync(channelB, $"m{sent}");
                sent++;
                await Task.Delay(1);
            }
        });
        await WaitUntilAsync(() => sent >= 50);

        // 1. A restarts: its offer carries new credentials, B answers with new ones.
        var restartOffer = await a.CreateOfferAsync(new OfferOptions { IceRestart = true });
        var restartAnswer = await b.CreateAnswerAsync(restartOffer);
        await a.SetRemoteDescriptionAsync(restartAnswer);
        var doneA = await ea.WaitForAsync<IceRestartCompleted>();
        var doneB = await eb.WaitForAsync<IceRestartCompleted>();
        output.WriteLine($"restart: by A over UDP 127.0.0.1: new pair selected after {doneA.Elapsed.TotalMilliseconds:0.0} ms on A, " +
            $"{doneB.Elapsed.TotalMilliseconds:0.0} ms on B");
        Assert.Equal((UfragOf(restartOffer), UfragOf(restartAnswer)), (doneA.LocalUsernameFragment, doneA.RemoteUsernameFragment));
        Assert.NotEqual(UfragOf(offer), UfragOf(restartOffer));
        var pairA = await a.GetSelectedPairAsync();
        var pairB = await b.GetSelectedPairAsync();
        Assert.Equal(UfragOf(restartOffer), pairA!.LocalUsernameFragment);
        Assert.Equal(UfragOf(restartAnswer), pairB!.LocalUsernameFragment);
        Assert.True(pairA.SelectedAt > firstPair.SelectedAt);
        var mark = sent;
        await WaitUntilAsync(() => sent >= mark + 50);

        // 2. B restarts the browser way (RestartIce marks its next offer); its candidates trickle separately, one
        // of them is stale (the old generation's ufrag, a port nobody listens on) and must be ignored.
        b.RestartIce();
        var offerB = await b.CreateOfferAsync();
        var ufragB = UfragOf(offerB);
        var lines = offerB.Split("\r\n");
        var candidates = lines.Where(l => l.StartsWith("a=candidate:", StringComparison.Ordinal)).Select(l => l[2..]).Distinct().ToList();
        Assert.NotEmpty(candidates);
        var withoutCandidates = string.Join("\r\n", lines.Where(l => !l.StartsWith("a=candidate:", StringComparison.Ordinal)));
        var answerA = await a.CreateAnswerAsync(withoutCandidates);
        await b.SetRemoteDescriptionAsync(answerA);
        await a.AddRemoteCandidateAsync($"candidate:99 1 udp 2130706431 127.0.0.1 9 typ host ufrag {UfragOf(restartAnswer)}");
        foreach (var c in candidates) await a.AddRemoteCandidateAsync($"{c} ufrag {ufragB}");
        var secondB = await eb.WaitForAsync<IceRestartCompleted>(e => e.LocalUsernameFragment == ufragB);
        var secondA = await ea.WaitForAsync<IceRestartCompleted>(e => e.LocalUsernameFragment == UfragOf(answerA));
        output.WriteLine($"restart: by B over UDP 127.0.0.1: new pair selected after {secondB.Elapsed.TotalMilliseconds:0.0} ms on B, " +
            $"{secondA.Elapsed.TotalMilliseconds:0.0} ms on A");
        Assert.NotEqual(9, secondA.Remote.Address.Port);
        Assert.Equal(ufragB, (await b.GetSelectedPairAsync())!.LocalUsernameFragment);
        Assert.Equal(ufragB, (await a.GetSelectedPairAsync())!.RemoteUsernameFragment);

        mark = sent;
        await WaitUntilAsync(() => sent >= mark + 50);
        stop.Cancel();
        await pump.WaitAsync(Patience);
        await WaitUntilAsync(() => ea.Messages.Count == sent && eb.Messages.Count == sent);
        Assert.Equal(Enumerable.Range(0, sent).Select(i => $"m{i}"), eb.Messages);
        Assert.Equal(Enumerable.Range(0, sent).Select(i => $"m{i}"), ea.Messages);
        output.WriteLine($"restart: {sent} messages each way, all delivered in order across two restarts");
        Assert.Equal([ConnectionState.Connecting, ConnectionState.Connected], ea.States);
        Assert.Equal([ConnectionState.Connecting, ConnectionState.Connected], eb.States);
        Assert.Equal(SignalingState.Stable, a.SignalingState);
    }

    [Fact]
    public async Task CallsOutOfTurnThrowInvalidOperationAndAnUnansweredRestartLeavesDataOnTheOldPair()
    {
        await using var pair = LoopbackPair.Create();
        var (a, b) = (pair.A, pair.B);
        var eb = new Collector(b);
        var offer = await a.CreateOfferAsync();
        var answer = await b.CreateAnswerAsync(offer);
        await Assert.ThrowsAsync<InvalidOperationException>(() => b.SetRemoteDescriptionAsync(offer));   // b has no offer pending
        await a.SetRemoteDescriptionAsync(answer);
        await Assert.ThrowsAsync<InvalidOperationException>(() => a.SetRemoteDescriptionAsync(answer));  // twice
        var channel = await a.CreateDataChannelAsync("x").WaitAsync(Patience);

        var reoffer = await a.CreateOfferAsync(new OfferOptions { IceRestart = true });
        Assert.Equal(SignalingState.HaveLocalOffer, a.SignalingState);
        await Assert.ThrowsAsync<InvalidOperationException>(() => a.CreateOfferAsync());
        var glare = await b.CreateOfferAsync();
        await Assert.ThrowsAsync<InvalidOperationException>(() => a.CreateAnswerAsync(glare));
        // Glare is refused (no rollback). a's restart offer never gets its answer: its new ICE generation has no remote
        // credentials, and data keeps going on the pair of the old one.
        await a.SendAsync(channel, "still fine");
        var message = await eb.WaitForAsync<DataChannelMessageReceived>();
        Assert.Equal("still fine", Encoding.UTF8.GetString(message.Data));
        Assert.Equal(ConnectionState.Connected, a.State);
        GC.KeepAlive(reoffer);
    }

    private static async Task<SelectedIcePair> SelectedAsync(PeerConnection pc)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Patience)
        {
            if (await pc.GetSelectedPairAsync() is { } pair) return pair;
            await Task.Delay(2);
        }
        throw new TimeoutException("no pair selected within " + Patience);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > Patience) throw new TimeoutException("condition not met within " + Patience);
            await Task.Delay(2);
        }
    }
}
