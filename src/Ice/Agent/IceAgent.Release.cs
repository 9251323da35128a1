using System.Net;

namespace Transport.Ice;

// IceRemoteAddressReleasedEvent: a remote address that no pair of the live check lists can use any more is announced
// once, so the layer below can forget what it keeps per remote address (a flood of peer-reflexive candidates must not
// leave routes behind for the life of the session).
public sealed partial class IceAgent
{
    /// <summary>Remote addresses announced as released (diagnostics).</summary>
    public long RemoteAddressesReleased { get; private set; }

    /// <summary>True when the pair in use, or a pair of the current or previous check list that has not failed, goes to <paramref name="address"/>.</summary>
    private bool RemoteAddressInUse(IPEndPoint address)
    {
        if (LivenessPair is { } live && live.Remote.Address.Equals(address)) return true;
        if (Selected is { } selected && selected.Remote.Address.Equals(address)) return true;
        foreach (var g in new[] { _current, _previous })
            if (g is not null)
                foreach (var p in g.Pairs)
                    if (p.State != IceCandidatePairState.Failed && p.Remote.Address.Equals(address)) return true;
        return false;
    }

    /// <summary>A pair failed: its remote address is released when nothing else uses it.</summary>
    private void ReleaseRemoteIfUnused(IcePair failed, TimeSpan now)
    {
        if (failed.Local.Type == IceCandidateType.Relayed) return;   // its datagrams went to the TURN server, not to the address
        Release(failed.Remote.Address, now);
    }

    /// <summary>A check list was dropped: each of its remote addresses that nothing else uses is released.</summary>
    private void ReleaseGeneration(IceGeneration dropped, TimeSpan now)
    {
        HashSet<IPEndPoint>? seen = null;
        foreach (var p in dropped.Pairs)
        {
            if (p.Local.Type == IceCandidateType.Relayed || p.State is IceCandidatePairState.Frozen) continue;   // never sent to
            seen ??= new HashSet<IPEndPoint>();
            if (seen.Add(p.Remote.Address)) Release(p.Remote.Address, now);
        }
    }

    private void Release(IPEndPoint address, TimeSpan now)
    {
        if (RemoteAddressInUse(address)) return;
        RemoteAddressesReleased++;
        Emit(new IceRemoteAddressReleasedEvent(now, address));
    }
}
