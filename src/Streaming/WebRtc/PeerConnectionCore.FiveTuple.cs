using System.Net;
using Transport.Ice;

namespace Transport.Streaming.WebRtc;

public sealed partial class PeerConnectionCore
{
    // (local socket, remote address) pairs the driver refused: another connection on the same socket owns the 5-tuple.
    private HashSet<(IPEndPoint Local, IPEndPoint Remote)>? _tuplesInUse;

    /// <summary>Candidate pairs found unusable because another connection on the same local socket uses their 5-tuple.</summary>
    public int FiveTuplesInUse => _tuplesInUse?.Count ?? 0;

    /// <summary>
    /// Checks every candidate pair against <paramref name="inUse"/> (true: another connection on the local socket
    /// already talks to that remote address and port, so datagrams from there reach that connection, not us). When
    /// every pair is taken the connection fails at once: a <see cref="FiveTupleInUse"/> event, then
    /// <see cref="ConnectionStateChanged"/> to Failed with the reason, and ICE stops. Pairs from a relayed candidate
    /// (their 5-tuple is the TURN server's) are never taken. Returns the conflict when it failed, else null.
    /// </summary>
    public FiveTupleInUse? CheckFiveTuples(Func<IPEndPoint, IPEndPoint, bool> inUse, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(inUse);
        Advance(now);
        if (_state is ConnectionState.Failed or ConnectionState.Closed or ConnectionState.Connected or ConnectionState.Disconnected) return null;
        var pairs = Ice.CandidatePairs;
        if (pairs.Count == 0) return null;
        (IPEndPoint Local, IPEndPoint Remote)? first = null;
        foreach (var p in pairs)
        {
            if (p.Local.Type == IceCandidateType.Relayed) return null;
            var key = (p.Local.Base, p.Remote.Address);
            if (_tuplesInUse?.Contains(key) != true)
            {
                if (!inUse(key.Base, key.Address)) return null;
                if ((_tuplesInUse ??= new()).Count < IceLimitsForTuples) _tuplesInUse.Add(key);
            }
            first ??= key;
        }
        return FailFiveTupleInUse(first!.Value.Local, first.Value.Remote, now);
    }

    /// <summary>
    /// The driver refused a connectivity check from <paramref name="local"/> to <paramref name="remote"/>: another
    /// connection on that socket owns the 5-tuple (it started at the same time as this one, so the check made when
    /// the description was applied did not see it yet). When no pair is left the connection fails as in
    /// <see cref="CheckFiveTuples"/>.
    /// </summary>
    public void OnFiveTupleInUse(IPEndPoint local, IPEndPoint remote, TimeSpan now)
    {
        if ((_tuplesInUse ??= new()).Count < IceLimitsForTuples) _tuplesInUse.Add((local, remote));
        CheckFiveTuples((l, r) => _tuplesInUse.Contains((l, r)), now);
    }

    private const int IceLimitsForTuples = 1024;

    private FiveTupleInUse FailFiveTupleInUse(IPEndPoint local, IPEndPoint remote, TimeSpan now)
    {
        var e = new FiveTupleInUse(now, local, remote);
        _events.Enqueue(e);
        Transition(ConnectionState.Failed, new ConnectionReason(ConnectionLayer.Ice, e.Message));
        _closing = true;
        Ice.Close(now);
        return e;
    }
}

/// <summary>
/// Every candidate pair of the connection uses a 5-tuple (local socket, remote address and port) that another
/// connection on the same local socket already uses: datagrams from <paramref name="Remote"/> reach that connection,
/// so this one cannot work. The connection fails at once with this reason instead of timing out.
/// </summary>
public sealed record FiveTupleInUse(TimeSpan At, IPEndPoint Local, IPEndPoint Remote) : PeerConnectionEvent(At)
{
    /// <summary>The reason as the Failed state carries it.</summary>
    public string Message => $"5-tuple in use: {Local} -> {Remote} belongs to another connection on this socket (one remote address and port per local socket)";
}

/// <summary>
/// Thrown by the call that starts a connection (<see cref="PeerConnection.CreateAnswerAsync(string, CancellationToken)"/>,
/// <see cref="PeerConnection.SetRemoteDescriptionAsync"/>, <see cref="PeerConnection.AddRemoteCandidateAsync(string?, CancellationToken)"/>)
/// when it failed because every candidate pair's 5-tuple is already used by another connection on the same local
/// socket (<see cref="FiveTupleInUse"/>). The connection is Failed.
/// </summary>
public sealed class FiveTupleInUseException(FiveTupleInUse conflict) : InvalidOperationException(conflict.Message)
{
    /// <summary>Our local socket's address.</summary>
    public IPEndPoint Local { get; } = conflict.Local;

    /// <summary>The remote address and port another connection on that socket already uses.</summary>
    public IPEndPoint Remote { get; } = conflict.Remote;
}
