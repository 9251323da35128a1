using System.Net;

namespace Transport.Ice;

public sealed partial class IceAgent
{
    /// <summary>
    /// The ICE-TCP connection (RFC 6544) between <paramref name="local"/> (our passive TCP candidate) and
    /// <paramref name="remote"/> closed, was reset or failed: nothing more can go on it, so its pairs fail at once
    /// instead of when consent expires (30 s). When the pair in use was one of them, the best other valid pair takes
    /// over (<see cref="IceStateReason.TransportClosed"/>; the controlling agent nominates it); without one the agent
    /// goes Disconnected at once with that reason, and fails <see cref="IceAgentOptions.FailedTimeout"/> later unless
    /// the peer comes back on another pair (a new connection, another candidate, an ICE restart). The same rule as a
    /// lost relay's (IceAgent.PairInUse.cs). Unknown endpoints are ignored.
    /// </summary>
    public void IceTcpConnectionClosed(IPEndPoint local, IPEndPoint remote, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(remote);
        now = Clamp(now);
        if (_disposed || State is IceConnectionState.Failed or IceConnectionState.Closed) return;
        var liveness = LivenessPair;
        var lostInUse = false;
        var any = false;
        foreach (var g in new[] { _current, _previous })
        {
            if (g is null || FindPair(g, local, remote, iceTcp: true) is not { } pair) continue;
            any = true;
            pair.State = IceCandidatePairState.Failed;
            pair.NominationPending = false;
            _transactions.Cancel(pair, static (t, p) => t.Pair == p, now);
            if (pair == liveness) lostInUse = true;
        }
        if (!any) return;
        if (lostInUse) LosePairInUse(IceStateReason.TransportClosed, mayRecover: true, now);
        if (State is IceConnectionState.Failed) return;
        CheckAllFailed(now);
    }
}
