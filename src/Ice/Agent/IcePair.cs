using System.Net;
using Transport.Ice.Stun;

namespace Transport.Ice;

/// <summary>A read-only view of a candidate pair for diagnostics and tests.</summary>
public sealed record IceCandidatePairInfo(IceCandidate Local, IceCandidate Remote, ulong Priority, IceCandidatePairState State, bool Nominated);

/// <summary>A candidate pair of one check list (RFC 8445 section 6.1.2).</summary>
internal sealed class IcePair
{
    public IcePair(IceGeneration generation, IceCandidate local, IceCandidate remote)
    {
        Generation = generation;
        Local = local;
        Remote = remote;
    }

    public IceGeneration Generation { get; }
    public IceCandidate Local { get; }
    /// <summary>Settable: a peer-reflexive remote candidate is replaced when the peer signals it (RFC 8838 section 11.4).</summary>
    public IceCandidate Remote { get; set; }
    public IPEndPoint LocalEndPoint => Local.Base;
    public IPEndPoint RemoteEndPoint => Remote.Address;
    /// <summary>An ICE-TCP pair (RFC 6544): its checks and data go over the RFC 4571 connection between the two endpoints.</summary>
    public bool IceTcp => Local.IsTcp;
    public string Foundation => Local.Foundation + "/" + Remote.Foundation;
    public IceCandidatePairState State { get; set; }
    public bool Nominated { get; set; }
    /// <summary>Controlled side: USE-CANDIDATE arrived before our check succeeded (RFC 8445 section 7.3.1.5).</summary>
    public bool NominateOnSuccess { get; set; }
    /// <summary>Controlling side: the next check on this pair carries USE-CANDIDATE.</summary>
    public bool NominationPending { get; set; }
    public bool InTriggeredQueue { get; set; }
    /// <summary>The ticket of the pair's live entry in <see cref="TriggeredCheckQueue"/>.</summary>
    public int TriggeredTicket { get; set; }
    /// <summary>The peer sent an authenticated check on this pair: it holds our password and sends from this address.</summary>
    public bool PeerChecked { get; set; }
    /// <summary>When our latest check on this pair was sent (null: never).</summary>
    public TimeSpan? LastCheckSentAt { get; set; }
    /// <summary>
    /// USERNAME of our checks on a pair the peer checks with our previous generation's credentials from its new
    /// generation's candidate (see IceAgent.HandleRequest): "theirNewUfrag:ourPreviousUfrag"; null for ordinary pairs.
    /// </summary>
    public string? BridgeUsername { get; set; }
    /// <summary>
    /// The peer's ufrag in its last request on this pair when it was not this generation's remote ufrag (a restart under way on its side), else null.
    /// </summary>
    public string? ForeignPeerUfrag { get; set; }
    /// <summary>That request carried USE-CANDIDATE.</summary>
    public bool ForeignPeerNominated { get; set; }
    /// <summary>
    /// Our check on the pair succeeded once (RFC 8445 section 7.2.5.3.2: it is in the valid list), even while a later check, such as the nominating one, is in
    /// flight.
    /// </summary>
    public bool Valid { get; set; }

    /// <summary>
    /// Round-trip time of the last check or consent check on this pair that was answered after a single request
    /// (Karn's rule: a retransmitted request's answer cannot be attributed to one send), or null before the first.
    /// </summary>
    public TimeSpan? RoundTripTime { get; private set; }

    /// <summary>Those samples smoothed as RFC 6298 section 2 does for SRTT: the first as it is, then 7/8 of the previous plus 1/8 of the new.</summary>
    public TimeSpan? SmoothedRoundTripTime { get; private set; }

    /// <summary>When an authenticated success response to our check or consent check on this pair last arrived (RFC 7675 consent), or null.</summary>
    public TimeSpan? LastResponseAt { get; set; }

    public void RecordRoundTrip(TimeSpan sample)
    {
        RoundTripTime = sample;
        SmoothedRoundTripTime = SmoothedRoundTripTime is { } s ? TimeSpan.FromTicks((7 * s.Ticks + sample.Ticks) / 8) : sample;
    }

    /// <summary>Pair priority (RFC 8445 section 6.1.2.3): 2^32*MIN(G,D) + 2*MAX(G,D) + (G&gt;D?1:0).</summary>
    public ulong PriorityFor(IceRole role)
    {
        ulong g = role == IceRole.Controlling ? Local.Priority : Remote.Priority;
        ulong d = role == IceRole.Controlling ? Remote.Priority : Local.Priority;
        return (Math.Min(g, d) << 32) + 2 * Math.Max(g, d) + (g > d ? 1UL : 0UL);
    }

    public bool Matches(IPEndPoint local, IPEndPoint remote, bool iceTcp = false) => iceTcp == IceTcp && LocalEndPoint.Equals(local)
        && RemoteEndPoint.Equals(remote);
}

/// <summary>
/// One generation of ICE state: credentials and the check list. An ICE restart (RFC 8445 section 9) starts a new
/// generation while the selected pair of the old one keeps carrying data.
/// </summary>
internal sealed class IceGeneration : IDisposable
{
    public IceGeneration(IceCredentials local)
    {
        Local = local;
        LocalKey = StunKey.ShortTerm(local.Password);
        LocalUsernamePrefix = System.Text.Encoding.UTF8.GetBytes(local.Ufrag + ":");
        CheckList = new IceCheckList(this);
    }

    public IceCredentials Local { get; }
    public StunKey LocalKey { get; }
    /// <summary>"localUfrag:" — the start of USERNAME in requests addressed to us.</summary>
    public byte[] LocalUsernamePrefix { get; }
    public IceCredentials? Remote { get; private set; }
    public StunKey? RemoteKey { get; private set; }
    /// <summary>"remoteUfrag:localUfrag" — USERNAME of our checks.</summary>
    public string? OutgoingUsername { get; private set; }
    public List<IceCandidate> RemoteCandidates { get; } = new();
    /// <summary>The check list of this generation (its pairs, their states and the triggered queue).</summary>
    public IceCheckList CheckList { get; }
    /// <summary>The pairs of <see cref="CheckList"/> (to read only; see <see cref="IceCheckList.Pairs"/>).</summary>
    public List<IcePair> Pairs => CheckList.Pairs;
    public bool RemoteEndOfCandidates { get; set; }
    public TimeSpan? FirstValidAt { get; set; }
    /// <summary>When the remote credentials of this generation were set (the hold of IceAgentOptions.ControlledCheckHold runs from here).</summary>
    public TimeSpan? RemoteSetAt { get; set; }
    /// <summary>An authenticated check of the peer arrived on this generation.</summary>
    public bool PeerCheckSeen { get; set; }

    public void SetRemote(IceCredentials remote)
    {
        Remote = remote;
        RemoteKey?.Dispose();
        RemoteKey = StunKey.ShortTerm(remote.Password);
        OutgoingUsername = remote.Ufrag + ":" + Local.Ufrag;
        RemoteUfragBytes = System.Text.Encoding.UTF8.GetBytes(remote.Ufrag);
    }

    public bool IsAddressedToUs(ReadOnlySpan<byte> username) => username.StartsWith(LocalUsernamePrefix);

    /// <summary>The part after the colon of an incoming USERNAME (the sender's ufrag).</summary>
    public static string SenderUfrag(ReadOnlySpan<byte> username)
    {
        var colon = username.IndexOf((byte)':');
        return colon < 0 ? "" : System.Text.Encoding.UTF8.GetString(username[(colon + 1)..]);
    }

    /// <summary>Whether the part after the colon of an incoming USERNAME is the remote ufrag of this generation (no allocation).</summary>
    public bool IsFromRemote(ReadOnlySpan<byte> username)
    {
        if (RemoteUfragBytes is null) return false;
        var colon = username.IndexOf((byte)':');
        return colon >= 0 && username[(colon + 1)..].SequenceEqual(RemoteUfragBytes);
    }

    /// <summary>The remote ufrag in UTF-8, compared without allocating against incoming USERNAMEs.</summary>
    public byte[]? RemoteUfragBytes { get; private set; }

    public void Dispose()
    {
        LocalKey.Dispose();
        RemoteKey?.Dispose();
    }
}
