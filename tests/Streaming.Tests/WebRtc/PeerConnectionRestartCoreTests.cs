using System.Net;
using System.Text;
using Transport.Dtls;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// Renegotiation and ICE restart of two of our cores over the test kit's virtual link, on virtual time: the data
/// channel never stops, the DTLS and SCTP associations stay, and the new ICE generation takes over.
/// </summary>
public sealed class PeerConnectionRestartCoreTests
{
    private static readonly DtlsCertificate Certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50),
        DateTimeOffset.UnixEpoch.AddYears(80));

    private sealed class Adapter(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote) : CorePeer(core, local, remote)
    {
        public List<string> Messages => Events.OfType<DataChannelMessageReceived>().Select(m => Encoding.UTF8.GetString(m.Data)).ToList();
        public IEnumerable<ConnectionState> States => Events.OfType<ConnectionStateChanged>().Select(s => s.State);
    }

    // Two cores on 10.0.0.1 and 10.0.0.2, each with its host candidate; A controlling, B as given.
    private static (Adapter A, Adapter B) Peers(PeerConnectionOptions options, IceRole roleB = IceRole.Controlled)
    {
        var endA = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var endB = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        var a = new Adapter(new PeerConnectionCore(options with { Ice = options.Ice with { Role = IceRole.Controlling } }), endA, endB);
        var b = new Adapter(new PeerConnectionCore(options with { Ice = options.Ice with { Role = roleB } }), endB, endA);
        a.Core.AddHostCandidate(endA);
        b.Core.AddHostCandidate(endB);
        return (a, b);
    }

    private static (TwoPeerDriver Driver, Adapter A, Adapter B, DataChannel ChannelA, DataChannel ChannelB) Connect(VirtualLink? link = null)
    {
        var (adapterA, adapterB) =
            Peers(new PeerConnectionOptions { Certificate = Certificate, DtlsInitialRetransmitTimeout = TimeSpan.FromMilliseconds(200) });
        Exchange(adapterA, adapterB, TimeSpan.Zero, restart: false);
        var driver = new TwoPeerDriver(adapterA, adapterB, link);
        adapterA.Core.CreateDataChannel("chat", null, driver.Now);
        Assert.True(driver.RunUntil(() => adapterA.Events.OfType<DataChannelOpened>().Any() && adapterB.Events.OfType<DataChannelOpened>().Any(),
            TimeSpan.FromSeconds(20)));
        return (driver, adapterA, adapterB, adapterA.Events.OfType<DataChannelOpened>().Single().Channel,
            adapterB.Events.OfType<DataChannelOpened>().Single().Channel);
    }

    // One offer/answer round through SDP text, as signaling would carry it.
    private static (string OfferUfrag, string AnswerUfrag) Exchange(Adapter offerer, Adapter answerer, TimeSpan now, bool restart)
    {
        var offer = SessionDescription.Parse(offerer.Core.CreateOffer(now, new OfferOptions { IceRestart = restart }).ToString());
        var answer = SessionDescription.Parse(answerer.Core.CreateAnswer(offer, now).ToString());
        offerer.Core.SetRemoteDescription(answer, now);
        offerer.Drain();
        answerer.Drain();
        return (offer.Media[0].GetAttribute("ice-ufrag")!, answer.Media[0].GetAttribute("ice-ufrag")!);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AnIceRestartByEitherSideLosesNoMessageAndSelectsAPairOfTheNewGeneration(bool restartByA)
    {
        var lossy = new LinkConditions { Delay = TimeSpan.FromMilliseconds(10), Jitter = TimeSpan.FromMilliseconds(3), Loss = 0.03 };
        var (driver, a, b, channelA, channelB) = Connect(new VirtualLink(restartByA ? 5 : 6, lossy, lossy));
        var dtlsA = a.Core.Dtls;
        var sctpB = b.Core.Sctp;
        var (offerer, answerer) = restartByA ? (a, b) : (b, a);
        var oldOfferer = offerer.Core.Ice.LocalCredentials.Ufrag;
        var oldAnswerer = answerer.Core.Ice.LocalCredentials.Ufrag;

        var sent = 0;
        (string OfferUfrag, string AnswerUfrag)? restart = null;
        // A message each way every 5 ms of virtual time; the restart is negotiated after 100 ms, and the sending goes
        // on until both sides selected the new generation's pair, then 200 ms more.
        TimeSpan? doneAt = null;
        while (doneAt is null || driver.Now < doneAt + TimeSpan.FromMilliseconds(200))
        {
            channelA.Send($"a{sent}");
            channelB.Send($"b{sent}");
            sent++;
            driver.RunFor(TimeSpan.FromMilliseconds(5));
            if (sent == 20) restart = Exchange(offerer, answerer, driver.Now, restart: true);
            if (doneAt is null && a.Events.OfType<IceRestartCompleted>().Any() && b.Events.OfType<IceRestartCompleted>().Any()) doneAt = driver.Now;
            Assert.True(driver.Now < TimeSpan.FromSeconds(30), "the restart did not complete");
        }
        Assert.True(driver.RunUntil(() => a.Messages.Count == sent && b.Messages.Count == sent, TimeSpan.FromSeconds(20)),
            $"a got {a.Messages.Count}, b got {b.Messages.Count} of {sent}");
        Assert.Equal(Enumerable.Range(0, sent).Select(i => $"a{i}"), b.Messages);
        Assert.Equal(Enumerable.Range(0, sent).Select(i => $"b{i}"), a.Messages);

        var (offerUfrag, answerUfrag) = restart!.Value;
        Assert.NotEqual(oldOfferer, offerUfrag);
        Assert.NotEqual(oldAnswerer, answerUfrag);
        var doneOfferer = offerer.Events.OfType<IceRestartCompleted>().Single();
        var doneAnswerer = answerer.Events.OfType<IceRestartCompleted>().Single();
        Assert.Equal((offerUfrag, answerUfrag), (doneOfferer.LocalUsernameFragment, doneOfferer.RemoteUsernameFragment));
        Assert.Equal((answerUfrag, offerUfrag), (doneAnswerer.LocalUsernameFragment, doneAnswerer.RemoteUsernameFragment));
        Assert.True(offerer.Events.OfType<IceRestartStarted>().Single().ByUs);
        Assert.False(answerer.Events.OfType<IceRestartStarted>().Single().ByUs);
        Assert.Equal(offerUfrag, offerer.Core.Ice.LocalCredentials.Ufrag);
        // Same DTLS connection and SCTP association objects, never a state other than Connected after connecting.
        Assert.Same(dtlsA, a.Core.Dtls);
        Assert.Same(sctpB, b.Core.Sctp);
        Assert.Equal([ConnectionState.Connecting, ConnectionState.Connected], a.States);
        Assert.Equal([ConnectionState.Connecting, ConnectionState.Connected], b.States);
        Assert.Equal(1, a.Core.IceRestarts);
        Assert.True(doneOfferer.Elapsed < TimeSpan.FromSeconds(1), $"restart took {doneOfferer.Elapsed}");
    }

    /// <summary>An adapter whose addresses can change: a peer moving to another network.</summary>
    private sealed class MovableAdapter(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote) : IVirtualPeer
    {
        public PeerConnectionCore Core { get; } = core;
        public IPEndPoint Local { get; set; } = local;
        public IPEndPoint Remote { get; set; } = remote;
        public List<PeerConnectionEvent> Events { get; } = new();
        public void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now) { Core.HandleDatagram(datagram, Local, Remote, now); Drain(); }
        public void HandleTimeout(TimeSpan now) { Core.HandleTimeout(now); Drain(); }
        public bool TryPollTransmit(Span<byte> destination, out int written) => Core.TryPollTransmit(destination, out written, out _, out _);
        public TimeSpan? PollTimeout() => Core.PollTimeout();
        public void Drain() { while (Core.TryPollEvent(out var e)) Events.Add(e); }
        public IEnumerable<ConnectionState> States => Events.OfType<ConnectionStateChanged>().Select(s => s.State);
    }

    [Fact]
    public void AfterANetworkChangeARestartBringsADisconnectedConnectionBackToConnectedOnTheNewAddress()
    {
        var endA = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var endB = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        var endB2 = new IPEndPoint(IPAddress.Parse("10.0.9.2"), 2002);   // b's address on its new network
        // Not following the peer to its new address by itself (PeerMoveSilence 0): this test is about the restart
        // (IceNatRebindingTests has the following).
        var ice = new IceAgentOptions { DisconnectedTimeout = TimeSpan.FromSeconds(1), PeerMoveSilence = TimeSpan.Zero };
        var options = new PeerConnectionOptions { Certificate = Certificate };
        var a = new MovableAdapter(new PeerConnectionCore(options with { Ice = ice with { Role = IceRole.Controlling } }), endA, endB);
        var b = new MovableAdapter(new PeerConnectionCore(options with { Ice = ice with { Role = IceRole.Controlled } }), endB, endA);
        a.Core.AddHostCandidate(endA);
        b.Core.AddHostCandidate(endB);
        var offer = SessionDescription.Parse(a.Core.CreateOffer(TimeSpan.Zero).ToString());
        a.Core.SetRemoteDescription(SessionDescription.Parse(b.Core.CreateAnswer(offer, TimeSpan.Zero).ToString()), TimeSpan.Zero);
        var driver = new TwoPeerDriver(a, b);
        a.Core.CreateDataChannel("chat", null, driver.Now);
        Assert.True(driver.RunUntil(() => a.Events.OfType<DataChannelOpened>().Any() && b.Events.OfType<DataChannelOpened>().Any(), TimeSpan.FromSeconds(10)));
        var channelA = a.Events.OfType<DataChannelOpened>().Single().Channel;

        // b moves: its old address is gone, everything it sends now comes from endB2 and reaches it there.
        b.Core.AddHostCandidate(endB2);
        a.Remote = endB2;
        b.Local = endB2;
        channelA.Send("lost in the move");
        Assert.True(driver.RunUntil(() => a.Core.State == ConnectionState.Disconnected && b.Core.State == ConnectionState.Disconnected,
            TimeSpan.FromSeconds(5)));

        // b restarts ICE with its new candidate; both come back on the new path, nothing delivered twice or lost.
        var restartOffer = SessionDescription.Parse(b.Core.CreateOffer(driver.Now, new OfferOptions { IceRestart = true }).ToString());
        b.Core.SetRemoteDescription(SessionDescription.Parse(a.Core.CreateAnswer(restartOffer, driver.Now).ToString()), driver.Now);
        Assert.True(driver.RunUntil(() => a.Core.State == ConnectionState.Connected && b.Core.State == ConnectionState.Connected, TimeSpan.FromSeconds(5)),
            $"a {a.Core.State}, b {b.Core.State}: {a.Core.DescribeIce()}");
        Assert.Equal(endB2, a.Core.SelectedPair!.Remote.Address);
        Assert.Equal(endB2, b.Core.SelectedPair!.Local.Address);
        channelA.Send("after the move");
        Assert.True(driver.RunUntil(() => b.Events.OfType<DataChannelMessageReceived>().Count() == 2, TimeSpan.FromSeconds(5)));
        Assert.Equal(["lost in the move", "after the move"], b.Events.OfType<DataChannelMessageReceived>().Select(m => Encoding.UTF8.GetString(m.Data)));
        Assert.Equal([ConnectionState.Connecting, ConnectionState.Connected, ConnectionState.Disconnected, ConnectionState.Connected], a.States);
        Assert.Equal([ConnectionState.Connecting, ConnectionState.Connected, ConnectionState.Disconnected, ConnectionState.Connected], b.States);
        Assert.Equal("ICE restart selected a new pair", a.Events.OfType<ConnectionStateChanged>().Last().Reason.Detail);
    }

    [Fact]
    public void AudioKeepsFlowingOnTheSameTrackThroughARestartOfferedByTheAnswerer()
    {
        var (a, b) = Peers(new PeerConnectionOptions { Certificate = Certificate });
        var track = a.Core.AddTrack(Transport.Streaming.Jsep.MediaKind.Audio);
        Exchange(a, b, TimeSpan.Zero, restart: false);
        var driver = new TwoPeerDriver(a, b,
            new VirtualLink(3, new LinkConditions { Delay = TimeSpan.FromMilliseconds(5) }, new LinkConditions { Delay = TimeSpan.FromMilliseconds(5) }));
        Assert.True(driver.RunUntil(() => a.Core.State == ConnectionState.Connected && b.Core.State == ConnectionState.Connected, TimeSpan.FromSeconds(10)));
        var remote = b.Events.OfType<RemoteTrackAdded>().Single().Track;
        var srtp = a.Core.Srtp;

        // An Opus packet every 20 ms; b (the answerer) restarts after the fifth.
        for (var i = 0; i < 40; i++)
        {
            Assert.Equal(MediaSendResult.Sent, a.Core.SendFrame(track, [(byte)i, 1, 2, 3], (uint)(i * 960), driver.Now));
            driver.RunFor(TimeSpan.FromMilliseconds(20));
            if (i == 5) Exchange(b, a, driver.Now, restart: true);
        }
        driver.RunFor(TimeSpan.FromMilliseconds(100));
        Assert.Single(a.Events.OfType<IceRestartCompleted>());
        var frames = new List<byte>();
        while (remote.Frames.TryRead(out var frame)) using (frame) frames.Add(frame.Data.Span[0]);
        Assert.Equal(Enumerable.Range(0, 40).Select(i => (byte)i), frames);
        Assert.Single(b.Events.OfType<RemoteTrackAdded>());     // the same track, not a new one
        Assert.Same(srtp, a.Core.Srtp);
        Assert.Equal(track.Mid, a.Core.LocalTracks.Single().Mid);
    }

    [Fact]
    public void ReoffersWithoutChangesFromBothSidesKeepEverythingAndTwoRestartsInARowWork()
    {
        var (driver, a, b, channelA, channelB) = Connect();
        var dtls = (a.Core.Dtls, b.Core.Dtls);
        var ufrags = (a.Core.Ice.LocalCredentials.Ufrag, b.Core.Ice.LocalCredentials.Ufrag);
        Exchange(a, b, driver.Now, restart: false);
        driver.RunFor(TimeSpan.FromMilliseconds(50));
        Exchange(b, a, driver.Now, restart: false);
        driver.RunFor(TimeSpan.FromMilliseconds(50));
        Assert.Equal(ufrags, (a.Core.Ice.LocalCredentials.Ufrag, b.Core.Ice.LocalCredentials.Ufrag));
        Assert.Empty(a.Events.OfType<IceRestartStarted>());
        channelA.Send("after two re-offers");
        Assert.True(driver.RunUntil(() => b.Messages.Count == 1, TimeSpan.FromSeconds(5)));

        // Restart by b, then at once by a (before b's completed): the last generation wins, data still flows.
        Exchange(b, a, driver.Now, restart: true);
        driver.RunFor(TimeSpan.FromMilliseconds(1));
        var (last, _) = Exchange(a, b, driver.Now, restart: true);
        Assert.True(driver.RunUntil(() => a.Events.OfType<IceRestartCompleted>().Any(e => e.LocalUsernameFragment == last), TimeSpan.FromSeconds(10)));
        channelB.Send("after two restarts");
        Assert.True(driver.RunUntil(() => a.Messages.Count == 1, TimeSpan.FromSeconds(5)));
        Assert.Equal(dtls, (a.Core.Dtls, b.Core.Dtls));
        Assert.Equal(ConnectionState.Connected, a.Core.State);
        Assert.Equal(ConnectionState.Connected, b.Core.State);
        Assert.Equal(3, a.Core.LocalUsernameFragments.Count);
    }

    [Fact]
    public void GlareOnASubsequentOfferIsResolvedByThePoliteSideRollingBackAndAnswering()
    {
        var (driver, a, b, channelA, channelB) = Connect();
        var dtls = (a.Core.Dtls, b.Core.Dtls);
        // Both offer at once; each offer reaches the other side while its own waits for an answer.
        var offerA = SessionDescription.Parse(a.Core.CreateOffer(driver.Now).ToString());
        b.Core.CreateOffer(driver.Now);
        var glare = Assert.Throws<InvalidOperationException>(() => b.Core.CreateAnswer(offerA, driver.Now));
        Assert.Contains("roll it back", glare.Message, StringComparison.Ordinal);

        // B is polite: it withdraws its offer and answers A's; A (impolite) ignores B's offer and takes the answer.
        b.Core.Rollback(driver.Now);
        Assert.Equal(SignalingState.Stable, b.Core.SignalingState);
        var answer = SessionDescription.Parse(b.Core.CreateAnswer(offerA, driver.Now).ToString());
        a.Core.SetRemoteDescription(answer, driver.Now);
        Assert.Equal(SignalingState.Stable, a.Core.SignalingState);

        channelA.Send("after the glare");
        channelB.Send("back");
        Assert.True(driver.RunUntil(() => b.Messages.Count == 1 && a.Messages.Count == 1, TimeSpan.FromSeconds(5)));
        Assert.Equal(dtls, (a.Core.Dtls, b.Core.Dtls));
        // B may offer again afterwards (its withdrawn offer left nothing behind).
        Exchange(b, a, driver.Now, restart: false);
        Assert.Equal(ConnectionState.Connected, a.Core.State);
        Assert.Equal(ConnectionState.Connected, b.Core.State);
        Assert.Empty(a.Events.OfType<IceRestartStarted>());
    }

    [Fact]
    public void InitialGlareIsResolvedByRollingBackAndTheConnectionComesUp()
    {
        // Both think they are the offerer (both controlling): ICE's role conflict rule (RFC 8445 section 7.3.1.1) sorts it out.
        var (a, b) = Peers(new PeerConnectionOptions { Certificate = Certificate }, roleB: IceRole.Controlling);
        var driver = new TwoPeerDriver(a, b);
        var offerA = SessionDescription.Parse(a.Core.CreateOffer(driver.Now).ToString());
        b.Core.CreateOffer(driver.Now);
        b.Core.Rollback(driver.Now);
        var answer = SessionDescription.Parse(b.Core.CreateAnswer(offerA, driver.Now).ToString());
        Assert.Equal("passive", answer.Media[0].GetAttribute("setup"));   // B answers as any of ours would
        a.Core.SetRemoteDescription(answer, driver.Now);
        a.Core.CreateDataChannel("after-glare", null, driver.Now);
        Assert.True(driver.RunUntil(() => a.Events.OfType<DataChannelOpened>().Any() && b.Events.OfType<DataChannelOpened>().Any(), TimeSpan.FromSeconds(10)));
        Assert.Equal(ConnectionState.Connected, a.Core.State);
        Assert.Equal(ConnectionState.Connected, b.Core.State);
    }

    [Fact]
    public void AnOfferThatRestartedIceIsNotRolledBackAndNothingIsRolledBackInStable()
    {
        var (driver, a, b, channelA, _) = Connect();
        Assert.Throws<InvalidOperationException>(() => a.Core.Rollback(driver.Now));   // stable: nothing to withdraw
        var offer = SessionDescription.Parse(a.Core.CreateOffer(driver.Now, new OfferOptions { IceRestart = true }).ToString());
        var refused = Assert.Throws<InvalidOperationException>(() => a.Core.Rollback(driver.Now));
        Assert.Contains("restarted ICE", refused.Message, StringComparison.Ordinal);
        Assert.Equal(SignalingState.HaveLocalOffer, a.Core.SignalingState);
        // The exchange still completes as usual.
        a.Core.SetRemoteDescription(SessionDescription.Parse(b.Core.CreateAnswer(offer, driver.Now).ToString()), driver.Now);
        Assert.True(driver.RunUntil(() => a.Events.OfType<IceRestartCompleted>().Any(), TimeSpan.FromSeconds(10)));
        channelA.Send("still here");
        Assert.True(driver.RunUntil(() => b.Messages.Count == 1, TimeSpan.FromSeconds(5)));
    }
}
