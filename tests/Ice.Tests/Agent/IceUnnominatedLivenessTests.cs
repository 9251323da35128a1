using Transport.Ice.Stun;
using Transport.TestKit;

namespace Transport.Ice.Tests.Agent;

/// <summary>
/// Data may flow on a valid pair before nomination (RFC 8445 section 12.1). A controlled agent whose
/// controlling peer never nominates (aiortc sends no USE-CANDIDATE) must still run consent (RFC 7675), keepalives and
/// the Disconnected/Failed timers on the pair it sends on. A is the peer here: its nominating checks are dropped on
/// the link, and its data is put on the link directly, so only B, the agent under test, decides anything.
/// </summary>
public sealed class IceUnnominatedLivenessTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(20);

    private static TimeSpan S(double s) => TimeSpan.FromSeconds(s);

    private static (AgentPeer A, AgentPeer B, TwoPeerDriver D) NeverNominated(TimeSpan? receiveSilence = null)
    {
        var a = new IceAgentOptions { Role = IceRole.Controlling, TieBreaker = 2, Random = new Random(1) };
        var b = new IceAgentOptions
        {
            Role = IceRole.Controlled,
            TieBreaker = 1,
            Random = new Random(2),
            KeepaliveInterval = S(1),
            KeepaliveAlignment = TimeSpan.Zero,
            DisconnectedTimeout = S(2),
            FailedTimeout = S(5),
            ReceiveSilenceTimeout = receiveSilence ?? TimeSpan.Zero,
        };
        var (pa, pb, d) = AgentPeer.Pair(a, b);
        // The controlling peer's USE-CANDIDATE never reaches B.
        d.Link.AddFilter(LinkEnd.A, m => StunMessage.TryRead(m.Span, out var s) && s.HasUseCandidate, _ => FilterAction.Drop);
        return (pa, pb, d);
    }

    /// <summary>Media both ways every 20 ms until <paramref name="until"/>; A's goes straight onto the link.</summary>
    private static void MediaBothWays(AgentPeer a, AgentPeer b, TwoPeerDriver d, TimeSpan until, Func<TimeSpan, bool>? peerSends = null)
    {
        while (d.Now < until)
        {
            b.SendData([0x80, 0x60, 1], d.Now);
            if (b.Agent.LivenessPairInUse() && (peerSends?.Invoke(d.Now) ?? true)) d.Link.Send(LinkEnd.A, new byte[] { 0x80, 0x60, 2 }, d.Now);
            d.RunFor(Tick);
        }
    }

    [Fact]
    public void APeerThatNeverNominatesAndGoesSilentGivesDisconnectedAndFailedAtTheConfiguredTimes()
    {
        var (a, b, d) = NeverNominated();
        MediaBothWays(a, b, d, S(8));
        Assert.Null(b.Agent.SelectedLocal);                       // never nominated
        Assert.Equal(b.Local, b.Agent.ActiveLocal!.Address);      // but the pair in use is known
        Assert.Equal(a.Local, b.Agent.ActiveRemote!.Address);
        var inUse = b.StateChanges.Single(e => e.State == IceConnectionState.Connected);
        Assert.Equal(IceStateReason.ValidPairInUse, inUse.Reason);
        // Consent checks ran on the unnominated pair: a Binding request from B every 4-6 s after data started.
        var consentChecks = a.ReceivedStun.Where(s => s.Type == StunMessageType.BindingRequest.Value && s.At > inUse.At + S(3)).ToList();
        Assert.NotEmpty(consentChecks);
        Assert.InRange(consentChecks[0].At - inUse.At, S(4), S(6.1));
        Assert.NotNull(b.Agent.LastConsentAt);
        Assert.InRange(d.Now - b.Agent.LastConsentAt!.Value, TimeSpan.Zero, S(4));

        d.Link.Cut = true;
        var last = b.Agent.LastReceivedAt!.Value;
        Assert.True(d.RunUntil(() => b.State == IceConnectionState.Failed, S(20)));
        var disconnected = b.StateChanges.Single(e => e.State == IceConnectionState.Disconnected);
        var failed = b.StateChanges.Single(e => e.State == IceConnectionState.Failed);
        Assert.Equal(IceStateReason.NoTraffic, disconnected.Reason);
        Assert.Equal(last + S(2), disconnected.At);
        Assert.Equal(disconnected.At + S(5), failed.At);
        Assert.Equal(IceStateReason.FailedTimeout, failed.Reason);
        Assert.Equal(IceSendStatus.Failed, b.Agent.TrySend(d.Now).Status);
    }

    [Fact]
    public void KeepalivesGoOnTheUnnominatedPairWhenNothingElseIsSent()
    {
        var (a, b, d) = NeverNominated();
        MediaBothWays(a, b, d, S(2));
        // B stops sending; A's data keeps coming. B must keep its side of the path alive (RFC 8445 section 11).
        var from = d.Now;
        while (d.Now < from + S(5))
        {
            d.Link.Send(LinkEnd.A, new byte[] { 0x80, 0x60, 2 }, d.Now);
            d.RunFor(Tick);
        }
        var indications = a.ReceivedStun.Where(s => s.Type == StunMessageType.BindingIndication.Value && s.At > from).ToList();
        Assert.InRange(indications.Count, 4, 6);   // one per second of silence on B's side
        Assert.Equal(IceConnectionState.Connected, b.State);
    }

    [Fact]
    public void ConsentExpiresOnTheUnnominatedPairWhenThePeerStopsAnsweringAndSendingStops()
    {
        var (a, b, d) = NeverNominated();
        MediaBothWays(a, b, d, S(1));
        // From now on no success response of A reaches B; A's data still does, so B is never Disconnected.
        d.Link.AddFilter(LinkEnd.A, m => StunMessage.TryRead(m.Span, out var s) && s.Type == StunMessageType.BindingSuccess, _ => FilterAction.Drop);
        var lastConsent = b.Agent.LastConsentAt!.Value;
        MediaBothWays(a, b, d, S(40), _ => b.State != IceConnectionState.Failed);
        var failed = b.StateChanges.Single(e => e.State == IceConnectionState.Failed);
        Assert.Equal(IceStateReason.ConsentExpired, failed.Reason);
        Assert.Equal(lastConsent + S(30), failed.At);
        Assert.DoesNotContain(b.StateChanges, e => e.State == IceConnectionState.Disconnected);
        Assert.Null(b.Agent.SelectedLocal);
        // RFC 7675 section 5.1: nothing more is sent on the pair.
        var sentAfter = a.ReceivedStun.Count(s => s.At > failed.At + d.Link.AToB.Delay) + a.ApplicationData.Count(x => x.At > failed.At + d.Link.AToB.Delay);
        Assert.Equal(0, sentAfter);
        Assert.Equal(IceSendStatus.Failed, b.Agent.TrySend(d.Now).Status);
    }

    [Fact]
    public void NominationOfThePairInUseLetsTheTimersGoOnWithoutAStateChange()
    {
        var (a, b, d) = AgentPeer.Pair(
            new IceAgentOptions { Role = IceRole.Controlling, TieBreaker = 2, Random = new Random(1), NominationTimeout = S(1) },
            new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 1, Random = new Random(2) });
        // A's nomination is held back for 3 s (dropped on the link), then passes; its retransmission nominates.
        d.Link.AddFilter(LinkEnd.A, m => d.Now < S(3) && StunMessage.TryRead(m.Span, out var s) && s.HasUseCandidate, _ => FilterAction.Drop);
        MediaBothWays(a, b, d, S(2.9));
        Assert.Null(b.Agent.SelectedLocal);
        var consentBefore = b.Agent.LastConsentAt;
        Assert.True(d.RunUntil(() => b.Agent.SelectedLocal is not null, S(10)));
        var connected = b.StateChanges.Where(e => e.State == IceConnectionState.Connected).ToList();
        Assert.Single(connected);
        Assert.Equal(IceStateReason.ValidPairInUse, connected[0].Reason);
        Assert.Single(b.Events.OfType<IceSelectedPairChangedEvent>());
        Assert.Equal(consentBefore, b.Agent.LastConsentAt);   // consent carried on, not restarted by the selection
    }

    /// <summary>
    /// Chaos seed 75 (docs/chaos.md): at 27 % loss each way every request of the controlling agent's nominating check
    /// (or its answer) was lost; the transaction timed out about 10 s later and failed the pair, the only valid one,
    /// while the peer's traffic still came on it. The agent stayed Connected but had no pair to send on (CanSendData
    /// false) until the peer's next consent check gave it a triggered check: seconds without media or data. A valid
    /// pair that is the only one data can go on stays valid when a check on it times out, and the nomination is tried again.
    /// </summary>
    [Fact]
    public void ANominatingCheckThatTimesOutLeavesTheOnlyValidPairUsableAndNominationIsTriedAgain()
    {
        var (a, b, d) = AgentPeer.Pair(
            new IceAgentOptions { Role = IceRole.Controlling, TieBreaker = 2, Random = new Random(1), NominationTimeout = S(0.5) },
            new IceAgentOptions { Role = IceRole.Controlled, TieBreaker = 1, Random = new Random(2) });
        // Every USE-CANDIDATE request of A is lost for the first 14 s: the first nominating transaction times out.
        d.Link.AddFilter(LinkEnd.A, m => d.Now < S(14) && StunMessage.TryRead(m.Span, out var s) && s.HasUseCandidate, _ => FilterAction.Drop);
        TimeSpan? usableAt = null, unusableAt = null;
        while (d.Now < S(14))
        {
            // Data both ways on the valid pair (RFC 8445 section 12.1), as a peer connection sends DTLS and media.
            if (a.Agent.CanSendData)
            {
                usableAt ??= d.Now;
                a.SendData([0x80, 0x60, 1], d.Now);
            }
            else if (usableAt is not null) unusableAt ??= d.Now;
            if (b.Agent.CanSendData) b.SendData([0x80, 0x60, 2], d.Now);
            d.RunFor(Tick);
        }
        Assert.NotNull(usableAt);
        Assert.True(unusableAt is null, $"A had no pair to send on from {unusableAt} (usable since {usableAt})");
        Assert.Equal(IceConnectionState.Connected, a.State);
        Assert.Null(a.Agent.SelectedLocal);   // not nominated yet: every nominating check was lost
        // The nomination goes on once its checks get through.
        Assert.True(d.RunUntil(() => a.Agent.SelectedLocal is not null && b.Agent.SelectedLocal is not null, S(10)));
        Assert.True(a.Agent.CanSendData);
    }
}

internal static class LivenessPairExtensions
{
    public static bool LivenessPairInUse(this IceAgent agent) => agent.ActiveLocal is not null;
}
