using System.Net;

namespace Transport.Ice;

public sealed partial class IceAgent
{
    /// <summary>
    /// The ICE-TCP connection (RFC 6544) between <paramref name="local"/> (our passive TCP candidate) and
    /// <paramref name="remote"/> closed, was reset or failed: nothing more can go on it, so its pairs fail at once
    /// instead of when consent expires (30 s). When the pair in use was one of them, the best other valid pair takes
    /// over (as when the peer moves, <see cref="IceStateReason.TransportClosed"/>); without one the agent goes
    /// Disconnected at once with that reason, and the Failed timer runs from now (the peer may still come back on
    /// another pair, or restart ICE). Unknown endpoints are ignored.
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
            foreach (var o in _outgoing)
                if (o.Pair == pair && !o.Transaction.IsCompleted) o.Transaction.Cancel(now);
            if (pair == liveness) lostInUse = true;
        }
        if (!any) return;
        _outgoing.RemoveAll(o => o.Transaction.IsCompleted);
        if (lostInUse)
        {
            if (Selected is null)
            {
                // Before nomination: the next valid pair carries the data, or none does until one becomes valid.
                if (EarlyPair() is { } other) UseEarlyPair(other, now);
                else
                {
                    _disconnectedAt = now;
                    Transition(IceConnectionState.Disconnected, IceStateReason.TransportClosed, now);
                }
            }
            else if (BestValid(_current) is { } other)
            {
                Select(other, now, IceStateReason.TransportClosed);
            }
            else
            {
                _disconnectedAt = now;
                Transition(IceConnectionState.Disconnected, IceStateReason.TransportClosed, now);
                ProbeAtOnce(now);
            }
        }
        CheckAllFailed(now);
    }
}
