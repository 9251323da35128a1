using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Ice.Turn;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// <see cref="PeerConnectionOptions.IceRestartOnDirectPathLoss"/> (issue 20, "an ICE restart onto a relay when the
/// direct path dies"), two of our cores over the test kit's virtual link on virtual time: the direct pair goes silent
/// (the link is cut), the connection asks once for an ICE restart (<see cref="IceRestartNeeded"/>), and the restart
/// the application then negotiates brings it back; without relays configured, or with the option off, nothing is asked.
/// </summary>
public sealed class IceRestartOntoRelayCoreTests
{
    private static readonly DtlsCertificate Certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));
    private static readonly IPEndPoint EndA = new(IPAddress.Parse("10.0.0.1"), 1000);
    private static readonly IPEndPoint EndB = new(IPAddress.Parse("10.0.0.2"), 2000);

    private static (TwoPeerDriver Driver, CorePeer A, CorePeer B) Connect(bool option, bool relays)
    {
        // The TURN server is never reached on the virtual link (its Allocates go nowhere): what matters is that one is configured.
        var ice = new IceAgentOptions { TurnServers = relays ? [TurnServerConfig.Parse("turn:192.0.2.9:3478", "u", "p")] : [] };
        var options = new PeerConnectionOptions { Certificate = Certificate, IceRestartOnDirectPathLoss = option, Ice = ice };
        var a = new CorePeer(new PeerConnectionCore(options with { Ice = ice with { Role = IceRole.Controlling } }), EndA, EndB);
        var b = new CorePeer(new PeerConnectionCore(options with { Ice = ice with { Role = IceRole.Controlled } }), EndB, EndA);
        a.Core.AddHostCandidate(EndA);
        b.Core.AddHostCandidate(EndB);
        var driver = new TwoPeerDriver(a, b);
        Exchange(a, b, driver.Now, restart: false);
        a.Core.CreateDataChannel("chat", null, driver.Now);
        Assert.True(driver.RunUntil(() => a.Events.OfType<DataChannelOpened>().Any() && b.Events.OfType<DataChannelOpened>().Any(), TimeSpan.FromSeconds(20)));
        return (driver, a, b);
    }

    private static void Exchange(CorePeer offerer, CorePeer answerer, TimeSpan now, bool restart)
    {
        var offer = SessionDescription.Parse(offerer.Core.CreateOffer(now, new OfferOptions { IceRestart = restart }).ToString());
        var answer = SessionDescription.Parse(answerer.Core.CreateAnswer(offer, now).ToString());
        offerer.Core.SetRemoteDescription(answer, now);
        offerer.Drain();
        answerer.Drain();
    }

    [Fact]
    public void WhenTheDirectPairDiesWithRelaysConfiguredTheConnectionAsksOnceForAnIceRestartAndTheNegotiatedRestartBringsItBack()
    {
        var (driver, a, b) = Connect(option: true, relays: true);
        Assert.Equal(IceCandidateType.Host, a.Core.Ice.ActiveLocal!.Type);
        var cutAt = driver.Now;
        driver.Link.Cut = true;
        Assert.True(driver.RunUntil(() => a.Events.OfType<IceRestartNeeded>().Any(), TimeSpan.FromSeconds(10)));
        var needed = a.Events.OfType<IceRestartNeeded>().Single();
        // Asked when the connection went Disconnected (nothing received for the 5 s DisconnectedTimeout).
        var disconnected = a.Events.OfType<ConnectionStateChanged>().Last();
        Assert.Equal((ConnectionState.Disconnected, disconnected.At), (disconnected.State, needed.At));
        Assert.InRange(needed.At - cutAt, TimeSpan.Zero, TimeSpan.FromSeconds(5.1)); // + what was in flight on the 10 ms link
        Assert.Contains("relays are configured", needed.Reason);
        // Once per disconnection: still one after more silence.
        driver.RunFor(TimeSpan.FromSeconds(3));
        Assert.Single(a.Events.OfType<IceRestartNeeded>());

        // The application negotiates the restart (the path is back here; a relay pair would carry it otherwise).
        driver.Link.Cut = false;
        Exchange(a, b, driver.Now, restart: true);
        Assert.True(driver.RunUntil(() => a.Events.OfType<IceRestartCompleted>().Any() && a.Core.State == ConnectionState.Connected, TimeSpan.FromSeconds(10)));
        Assert.Single(a.Events.OfType<IceRestartStarted>());
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void WithoutRelaysOrWithTheOptionOffNothingIsAsked(bool option, bool relays)
    {
        var (driver, a, b) = Connect(option, relays);
        driver.Link.Cut = true;
        Assert.True(driver.RunUntil(() => a.Core.State == ConnectionState.Disconnected, TimeSpan.FromSeconds(10)));
        driver.RunFor(TimeSpan.FromSeconds(2));
        Assert.Empty(a.Events.OfType<IceRestartNeeded>());
        Assert.Empty(b.Events.OfType<IceRestartNeeded>());
    }
}
