using System.Diagnostics.Metrics;
using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

using static RealPeerKit;

/// <summary>
/// Send guards of the async peer connection over real sockets: TrySend names the state, a message sent while
/// Disconnected is kept and delivered, a full buffer refuses with the bound, nothing is dropped silently; events as
/// an async stream; statistics and metrics.
/// </summary>
public sealed class PeerConnectionSendTests
{
    private static async Task<(DataChannel A, DataChannel B)> ConnectAsync(PeerConnection a, PeerConnection b)
    {
        var offer = await a.CreateOfferAsync();
        await a.SetRemoteDescriptionAsync(await b.CreateAnswerAsync(offer));
        var channel = await a.CreateDataChannelAsync("data").WaitAsync(Patience);
        var remote = (await NextAsync<DataChannelOpened>(b)).Channel;
        return (channel, remote);
    }

    [Fact]
    public async Task TrySendNamesTheStateAndEveryRefusalAndDeliversWhatItAccepted()
    {
        await using var pair = LoopbackPair.Create(new PeerConnectionOptions { MaxMessageSize = 64 * 1024, MaxBufferedAmount = 128 * 1024 });
        var (a, b) = (pair.A, pair.B);

        var early = a.TrySend(new DataChannelStub().Channel, [1, 2, 3]);
        Assert.Equal(SendStatus.NotConnected, early.Status);
        Assert.Equal(ConnectionState.New, early.State);

        var (channel, remote) = await ConnectAsync(a, b);
        Assert.Equal(SendStatus.TooLarge, a.TrySend(channel, new byte[64 * 1024 + 1]).Status);

        // Five 64 KiB messages at once against a 128 KiB bound: some are refused (at once, or as an event when their
        // turn came), the others all arrive. Nothing is lost without a word.
        var results = Enumerable.Range(0, 5).Select(i => a.TrySend(channel, Enumerable.Repeat((byte)i, 64 * 1024).ToArray())).ToList();
        var accepted = results.Count(r => r.Accepted);
        Assert.All(results.Where(r => !r.Accepted), r => Assert.Equal(SendStatus.BufferFull, r.Status));
        foreach (var refused in results.Where(r => !r.Accepted)) Assert.Contains("MaxBufferedAmount", refused.Reason, StringComparison.Ordinal);

        var received = 0;
        var failed = 0;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        var receiving = Task.Run(async () =>
        {
            try { await foreach (var e in b.ReadEventsAsync(cts.Token)) if (e is DataChannelMessageReceived { Data.Length: 64 * 1024 }) received++; }
            catch (OperationCanceledException) { }
        });
        var watching = Task.Run(async () =>
        {
            try { await foreach (var e in a.ReadEventsAsync(cts.Token)) if (e is DataChannelSendFailed { Result.Status: SendStatus.BufferFull }) failed++; }
            catch (OperationCanceledException) { }
        });
        await Task.WhenAll(receiving, watching);
        Assert.True(results.Count(r => !r.Accepted) + failed > 0, "the bound refused nothing");
        Assert.Equal(accepted - failed, received);

        await a.CloseAsync("done here");
        var late = a.TrySend(channel, [1]);
        Assert.Equal(SendStatus.NotConnected, late.Status);
        Assert.Equal(ConnectionState.Closed, late.State);
        Assert.Contains("done here", late.Reason, StringComparison.Ordinal);
        Assert.IsType<TransportNotConnectedException>(late.ToException());
    }

    [Fact]
    public async Task AMessageSentWhileDisconnectedIsBufferedAndDeliveredWhenTrafficResumes()
    {
        // A runs on virtual time: its disconnected timer fires when the test moves its clock, while B stays silent
        // (no keepalives, consent checks far apart), so A stays Disconnected until its own traffic gets answers.
        // PeerMoveSilence 0: A sends no consent check at once on Disconnected (B's answer would end it before the send).
        var clock = new ManualClock();
        await using var d1 = new UdpDriver(clock);
        await using var d2 = new UdpDriver();
        d1.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        d2.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await using var a = new PeerConnection(d1, new PeerConnectionOptions
        {
            Certificate = Certificate,
            Ice = new IceAgentOptions
            {
                Role = IceRole.Controlling,
                DisconnectedTimeout = TimeSpan.FromSeconds(2),
                FailedTimeout = TimeSpan.FromSeconds(60),
                PeerMoveSilence = TimeSpan.Zero
            }
        });
        await using var b = new PeerConnection(d2, new PeerConnectionOptions
        {
            Certificate = Certificate,
            Ice = new IceAgentOptions
            {
                Role = IceRole.Controlled,
                KeepaliveInterval = TimeSpan.Zero,
                ConsentInterval = TimeSpan.FromSeconds(60),
                ConsentTimeout = TimeSpan.Zero,
                DisconnectedTimeout = TimeSpan.Zero
            }
        });

        var phase = "connecting";
        try
        {
            var connecting = ConnectAsync(a, b);
            var started = System.Diagnostics.Stopwatch.StartNew();
            while (!connecting.IsCompleted && started.Elapsed < Patience)
            {
                // A's ICE pacing and retransmissions run on its clock, about as fast as real time. (Set-up itself
                // needs no timer; A's 2 s DisconnectedTimeout must not pass before the test moves the clock on.)
                clock.Advance(TimeSpan.FromMilliseconds(1));
                await Task.Delay(1);
            }
            var (channel, remote) = await connecting.WaitAsync(Patience);
            Assert.Equal(ConnectionState.Connected, a.State);

            // Let A's nomination (paced by Ta = 50 ms of its clock) select the pair: liveness timers run on a selected pair.
            for (var i = 0; i < 20; i++)
            {
                clock.Advance(TimeSpan.FromMilliseconds(10));
                await Task.Delay(5);
            }

            phase = "waiting for Disconnected";
            clock.Advance(TimeSpan.FromSeconds(3));   // nothing from B for longer than A's DisconnectedTimeout
            await NextAsync<ConnectionStateChanged>(a, s => s.State == ConnectionState.Disconnected);
            var result = a.TrySend(channel, "kept"u8);
            Assert.Equal(SendStatus.Buffered, result.Status);
            Assert.Equal(ConnectionState.Disconnected, result.State);

            phase = "waiting for the buffered message";
            var message = await NextAsync<DataChannelMessageReceived>(b);
            Assert.Equal("kept"u8.ToArray(), message.Data);
            phase = "back to Connected";
            await NextAsync<ConnectionStateChanged>(a, s => s.State == ConnectionState.Connected);   // B's SACK is traffic again
        }
        catch (OperationCanceledException e)
        {
            throw new TimeoutException($"Timed out while {phase}: A {a.State} ({a.Reason}), B {b.State} ({b.Reason}), A's clock " +
                $"{clock.GetUtcNow():HH:mm:ss.fff}", e);
        }
    }

    [Fact]
    public async Task StatisticsAndMetricsCountDatagramsAndBytes()
    {
        var measured = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (instrument.Meter == PeerConnection.Meter) l.EnableMeasurementEvents(instrument); };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            lock (measured) measured[instrument.Name] = measured.GetValueOrDefault(instrument.Name) + value;
        });
        listener.Start();

        await using var d1 = new UdpDriver();
        await using var d2 = new UdpDriver();
        d1.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        d2.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await using var a = new PeerConnection(d1,
            new PeerConnectionOptions { Certificate = Certificate, Ice = new IceAgentOptions { Role = IceRole.Controlling } });
        await using var b = new PeerConnection(d2,
            new PeerConnectionOptions { Certificate = Certificate, Ice = new IceAgentOptions { Role = IceRole.Controlled } });
        var (channel, _) = await ConnectAsync(a, b);
        await a.SendAsync(channel, new byte[5000]);
        await NextAsync<DataChannelMessageReceived>(b);

        var stats = await a.GetStatisticsAsync();
        Assert.True(stats.DatagramsSent >= 5 && stats.BytesSent > 5000, $"{stats}");
        Assert.True(stats.DatagramsReceived >= 4 && stats.BytesReceived > 500, $"{stats}");
        lock (measured)
        {
            Assert.True(measured.GetValueOrDefault("transport.webrtc.datagrams_sent") >= stats.DatagramsSent);
            Assert.True(measured.GetValueOrDefault("transport.webrtc.bytes_received") >= stats.BytesReceived);
        }
    }

    /// <summary>A channel object that never opened, for calls before any association exists.</summary>
    private sealed class DataChannelStub
    {
        public DataChannel Channel { get; } = CreateClosedChannel();

        private static DataChannel CreateClosedChannel()
        {
            var association = new SctpAssociation(new SctpOptions { IsDtlsClient = true });
            return association.CreateDataChannel("never", null, TimeSpan.Zero);
        }
    }
}
