using System.Net;
using System.Text;
using Transport.Dtls;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.WebRtc;

using static RealPeerKit;

/// <summary>Two of our peer connections over real UDP sockets on 127.0.0.1, through the async API.</summary>
public sealed class PeerConnectionTests
{
    [Fact]
    public async Task ConnectsSendsAndClosesWithTypedErrorsAfterwards()
    {
        await using var pair = LoopbackPair.Create();
        var (a, b) = (pair.A, pair.B);

        var offer = await a.CreateOfferAsync();
        var answer = await b.CreateAnswerAsync(offer);
        await a.SetRemoteDescriptionAsync(answer);
        var channel = await a.CreateDataChannelAsync("chat").WaitAsync(Patience);
        Assert.Equal(DataChannelState.Open, channel.State);
        Assert.Equal(ConnectionState.Connected, a.State);

        var remoteChannel = (await NextAsync<DataChannelOpened>(b)).Channel;
        Assert.Equal("chat", remoteChannel.Label);
        await a.SendAsync(channel, "hello");
        var message = await NextAsync<DataChannelMessageReceived>(b);
        Assert.Equal("hello", Encoding.UTF8.GetString(message.Data));
        Assert.False(message.IsBinary);

        var tooBig = new byte[256 * 1024 + 1];
        var size = await Assert.ThrowsAsync<ArgumentException>(() => a.SendAsync(channel, tooBig));
        Assert.Contains("262144", size.Message, StringComparison.Ordinal);

        await a.CloseAsync("done");
        var closed = await NextAsync<ConnectionStateChanged>(b, s => s.State == ConnectionState.Closed);
        Assert.Equal(ConnectionLayer.Sctp, closed.Reason.Layer);
        Assert.Equal(ConnectionState.Closed, b.State);

        var error = await Assert.ThrowsAsync<TransportNotConnectedException>(() => a.SendAsync(channel, "late"));
        Assert.Equal("closed", error.State);
        Assert.Contains("done", error.Reason, StringComparison.Ordinal);
        await Assert.ThrowsAsync<TransportNotConnectedException>(() => b.CreateDataChannelAsync("after"));
    }

    [Fact]
    public async Task ItsInputsRunOnThePoolWhileItSetsUpAndInlineOnceConnected()
    {
        // With SPED the STUN checks carry the DTLS handshake: until Connected the driver must not run them on its receive
        // thread, which serves every other connection of the socket; afterwards they are consent and keepalives again.
        await using var pair = LoopbackPair.Create();
        var (a, b) = (pair.A, pair.B);
        Assert.True(a.DriverPeer.RunsInline && b.DriverPeer.RunsInline);
        Assert.False(a.DriverPeer.InlineNow);
        Assert.False(b.DriverPeer.InlineNow);
        await a.SetRemoteDescriptionAsync(await b.CreateAnswerAsync(await a.CreateOfferAsync()));
        await a.CreateDataChannelAsync("x").WaitAsync(Patience);
        await NextAsync<ConnectionStateChanged>(b, s => s.State == ConnectionState.Connected);
        Assert.True(a.DriverPeer.InlineNow);
        Assert.True(b.DriverPeer.InlineNow);
    }

    [Fact]
    public async Task HealthShowsThePairConsentAndTheRoundTripsOfIceAndSctp()
    {
        await using var pair = LoopbackPair.Create();
        var (a, b) = (pair.A, pair.B);
        var answer = await b.CreateAnswerAsync(await a.CreateOfferAsync());
        await a.SetRemoteDescriptionAsync(answer);
        var channel = await a.CreateDataChannelAsync("health").WaitAsync(Patience);
        for (var i = 0; i < 20; i++) await a.SendAsync(channel, new byte[500]);
        for (var i = 0; i < 20; i++) await NextAsync<DataChannelMessageReceived>(b);

        // Wait until everything sent was acknowledged (then SCTP has timed DATA) and ICE selected its pair.
        var until = System.Diagnostics.Stopwatch.StartNew();
        PeerConnectionHealth h;
        while (!((h = await a.GetHealthAsync()) is { SendIdle: true, SctpRoundTripTime: not null, IceRoundTripTime: not null, ConsentAge: not null })
            && until.Elapsed < Patience)
            await Task.Delay(20);
        Assert.Equal(ConnectionState.Connected, h.State);
        Assert.Equal(IceConnectionState.Connected, h.IceState);
        Assert.Matches(@"^127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+$", h.SelectedCandidatePair);
        Assert.NotNull(h.IceRoundTripTime);
        // Loopback: well under a second even on a loaded machine (the first sample is the connectivity check's, cold).
        Assert.InRange(h.IceRoundTripTime!.Value, TimeSpan.FromTicks(1), TimeSpan.FromSeconds(2));
        Assert.NotNull(h.SctpRoundTripTime);
        Assert.InRange(h.SctpRoundTripTime!.Value, TimeSpan.FromTicks(1), TimeSpan.FromSeconds(2));   // a SACK may wait 200 ms
        Assert.InRange(h.ConsentAge!.Value, TimeSpan.Zero, TimeSpan.FromSeconds(6));
        // 20 messages of 500 bytes went out (bundled: several to a packet) and were acknowledged.
        Assert.True(h.SctpPacketsSent > 0 && h.SctpPacketsReceived > 0, $"{h.SctpPacketsSent} sent, {h.SctpPacketsReceived} received");
        Assert.Equal(0, h.SctpOutboundBuffered);

        await a.DisposeAsync();
        var final = await a.GetHealthAsync();
        Assert.Equal(ConnectionState.Closed, final.State);
        Assert.Null(final.IceRoundTripTime);   // after dispose the layers are not touched
    }

    [Fact]
    public async Task ClosingBeforeConnectingFailsWhatWaitsWithTheState()
    {
        await using var d1 = new UdpDriver();
        d1.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var a = new PeerConnection(d1, new PeerConnectionOptions { Certificate = Certificate });
        await a.CreateOfferAsync();                                 // no answer ever comes
        var pending = a.CreateDataChannelAsync("never");
        await Task.Delay(50);
        Assert.False(pending.IsCompleted);
        await a.DisposeAsync();
        var error = await Assert.ThrowsAsync<TransportNotConnectedException>(() => pending.WaitAsync(Patience));
        Assert.Equal("closed", error.State);
        Assert.Equal(ConnectionState.Closed, a.State);
    }
}
