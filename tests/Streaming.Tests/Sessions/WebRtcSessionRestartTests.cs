using System.Diagnostics;
using System.Net;
using Transport.Ice;
using Transport.Streaming.Io;
using Transport.Streaming.Sessions;
using Transport.Streaming.Tests.WebRtc;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.Sessions;

/// <summary>A client of a running WebRTC session restarts ICE through <see cref="WebRtcSessions.AnswerSubsequentOfferAsync"/>.</summary>
public sealed class WebRtcSessionRestartTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task AClientsRestartOfferIsAnsweredAndTheSessionGoesOnOnTheNewGeneration()
    {
        await using var rig = WebRtcSessionTransportTests.Rig.Start(() => new LambdaHandler(WebRtcSessionTransportTests.EchoUntilBye));
        await using var clientDriver = new UdpDriver();
        clientDriver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await using var client = new PeerConnection(clientDriver,
            new PeerConnectionOptions { Certificate = RealPeerKit.Certificate, Ice = new IceAgentOptions { Role = IceRole.Controlling } });
        var offer = await client.CreateOfferAsync();
        Assert.True(rig.Server.TryReserve(out var slot, out _));
        var accepted = await rig.Sessions.AcceptOfferAsync(slot!, offer);
        await client.SetRemoteDescriptionAsync(accepted.Answer);
        await client.CreateDataChannelAsync("data").WaitAsync(Patience);

        var restart = await client.CreateOfferAsync(new OfferOptions { IceRestart = true });
        var answer = await rig.Sessions.AnswerSubsequentOfferAsync(accepted.Session.Id, restart);
        Assert.NotNull(answer);
        Assert.Null(await rig.Sessions.AnswerSubsequentOfferAsync("no-such-session", restart));
        await client.SetRemoteDescriptionAsync(answer!);

        var clock = Stopwatch.StartNew();
        IceRestartCompleted? done = null;
        await using (var e = client.ReadEventsAsync().GetAsyncEnumerator())
            while (done is null && clock.Elapsed < Patience && await e.MoveNextAsync().AsTask().WaitAsync(Patience))
                done = e.Current as IceRestartCompleted;
        Assert.NotNull(done);
        Assert.Equal(ConnectionState.Connected, client.State);
        Assert.False(accepted.Session.Completion.IsCompleted);
        var selected = await client.GetSelectedPairAsync();
        Assert.Equal(done!.LocalUsernameFragment, selected!.LocalUsernameFragment);
    }
}
