namespace Transport.Ice;

// The one rule for losing the pair in use (the selected pair, or before nomination the valid pair data went on) to
// something that ends the path outright: its ICE-TCP connection closed (IceAgent.TcpClosed.cs) or its relay's
// allocation was lost (IceAgent.Relay.cs). Consent expiry and the liveness timers are not this: they end a path that
// may only be silent.
public sealed partial class IceAgent
{
    // The pair in use was lost and nothing took over: since when, and why. The agent fails FailedTimeout after the
    // loss unless a pair carries data again (Select, UseEarlyPair); meanwhile no AllPairsFailed (the peer may come back
    // on a new connection, the relay on a new allocation).
    private (TimeSpan Since, IceStateReason Cause)? _outage;

    /// <summary>
    /// The pair in use can carry nothing more (<paramref name="cause"/>: <see cref="IceStateReason.TransportClosed"/> or
    /// <see cref="IceStateReason.RelayLost"/>); its pairs already failed or left the check lists. The rule:
    /// <list type="number">
    /// <item>The best other valid pair (current generation, else the previous one's) takes the data at once: selected
    /// when a pair was selected (the controlling agent then nominates it, so the peer moves too), else used as the
    /// valid pair data goes on. Its last answer may be old: consent is asked there at once. Connected (with
    /// <see cref="IceStateReason.RelayRecovered"/> after a relay loss, <see cref="IceStateReason.TransportClosed"/>
    /// after a closed connection).</item>
    /// <item>None, and <paramref name="mayRecover"/> is false (a relay with re-allocation off): Failed with the cause.</item>
    /// <item>None: Disconnected with the cause, nothing to send on, and Failed <see cref="IceAgentOptions.FailedTimeout"/>
    /// later unless a pair carries data again (a new allocation's pair, a new ICE-TCP connection's, an ICE restart).</item>
    /// </list>
    /// </summary>
    private void LosePairInUse(IceStateReason cause, bool mayRecover, TimeSpan now)
    {
        var hadSelection = Selected is not null;
        Selected = null;
        _dataPair = null;
        var takeover = cause == IceStateReason.RelayLost ? IceStateReason.RelayRecovered : cause;
        if ((BestValid(_current) ?? (_previous is { } previous ? BestValid(previous) : null)) is { } other)
        {
            if (hadSelection)
            {
                Select(other, now, takeover);
                // The controlling agent nominates it (the peer still has the lost pair selected); a controlled one waits for the peer's.
                if (Role.Role == IceRole.Controlling && Mode.SendsChecks && !other.Nominated && other.Generation == _current)
                {
                    other.NominationPending = true;
                    EnqueueTriggered(other, front: true);
                }
            }
            else
            {
                _dataPair = other;
                ResetLiveness(now);
                if (State == IceConnectionState.Disconnected) Transition(IceConnectionState.Connected, takeover, now);
                Role.ConsiderNomination(this, now);
            }
            _liveness.CheckConsentNow(now);
            return;
        }
        if (!mayRecover)
        {
            Transition(IceConnectionState.Failed, cause, now);
            StopEverything();
            return;
        }
        _outage = (now, cause);
        _liveness.Disconnected(now);
        Transition(IceConnectionState.Disconnected, cause, now);
    }

    /// <summary>When the outage after losing the pair in use fails the agent, or null (no outage, a pair in use again, or FailedTimeout off).</summary>
    private TimeSpan? OutageFailedAt() =>
        _outage is { } o && LivenessPair is null && Options.FailedTimeout > TimeSpan.Zero ? o.Since + Options.FailedTimeout : null;

    /// <summary>The outage lasted FailedTimeout: Failed (RelayLost after a relay loss, FailedTimeout after a closed connection).</summary>
    private void FailOutage(TimeSpan now)
    {
        var reason = _outage is { Cause: IceStateReason.RelayLost } ? IceStateReason.RelayLost : IceStateReason.FailedTimeout;
        Transition(IceConnectionState.Failed, reason, now);
        StopEverything();
    }

    /// <summary>
    /// The reason of Connected again after an outage of <paramref name="cause"/>: RelayRecovered after a relay loss, else
    /// <paramref name="otherwise"/>.
    /// </summary>
    private static IceStateReason RecoveredReason(IceStateReason cause, IceStateReason otherwise) =>
        cause == IceStateReason.RelayLost ? IceStateReason.RelayRecovered : otherwise;
}
