using System.Net;

namespace Transport.Ice;

/// <summary>The connection state of the agent (the RTCIceConnectionState of W3C WebRTC, one enum).</summary>
public enum IceConnectionState
{
    /// <summary>Created; no checks yet.</summary>
    New,
    /// <summary>Checks are running; no pair selected and no data sent on a valid pair yet.</summary>
    Checking,
    /// <summary>
    /// A pair carries data: the selected pair, or before nomination the valid pair application data went on (RFC 8445
    /// section 12.1, <see cref="IceAgentOptions.SendBeforeNomination"/>). Consent and the liveness timers run on it.
    /// </summary>
    Connected,
    /// <summary>
    /// Nothing received on the pair in use for <see cref="IceAgentOptions.DisconnectedTimeout"/> (or, while data flowed,
    /// <see cref="IceAgentOptions.ReceiveSilenceTimeout"/>); sending continues.
    /// </summary>
    Disconnected,
    /// <summary>Terminal: consent expired, the failed timeout passed, or every pair failed. No data is sent.</summary>
    Failed,
    /// <summary>Terminal: closed by the application.</summary>
    Closed,
}

/// <summary>Why the state changed.</summary>
public enum IceStateReason
{
    /// <summary>Remote credentials and a pair are known: checks started.</summary>
    ChecksStarted,
    /// <summary>A nominated pair was selected.</summary>
    PairSelected,
    /// <summary>Nothing was received on the selected pair for DisconnectedTimeout.</summary>
    NoTraffic,
    /// <summary>Traffic arrived again on the selected pair.</summary>
    TrafficResumed,
    /// <summary>No authenticated response to consent checks for ConsentTimeout (RFC 7675 section 5.1).</summary>
    ConsentExpired,
    /// <summary>FailedTimeout passed in Disconnected.</summary>
    FailedTimeout,
    /// <summary>Every candidate pair failed after end-of-candidates.</summary>
    AllPairsFailed,
    /// <summary>The application closed the agent.</summary>
    Closed,
    /// <summary>
    /// The TURN allocation under the relayed candidate of the pair in use expired or was lost (see the
    /// <see cref="IceRelayErrorEvent"/> before it): Disconnected while the relay is allocated again (or no other pair
    /// can take over), Failed when re-allocation is off, its attempts ran out, or nothing carried data again within
    /// <see cref="IceAgentOptions.FailedTimeout"/>.
    /// </summary>
    RelayLost,
    /// <summary>
    /// Application data went out on a valid pair before any pair was selected (RFC 8445 section 12.1): that pair is in
    /// use, and consent (RFC 7675), keepalives and the Disconnected/Failed timers run on it from now on.
    /// </summary>
    ValidPairInUse,
    /// <summary>Application data was flowing and then nothing at all arrived for <see cref="IceAgentOptions.ReceiveSilenceTimeout"/>.</summary>
    ReceiveSilence,
    /// <summary>
    /// The peer's data now arrives on another valid pair (its NAT gave it a new address) while the selected pair went
    /// silent: that pair is selected (<see cref="IceAgentOptions.PeerMoveSilence"/>).
    /// </summary>
    PeerMoved,
    /// <summary>
    /// The ICE-TCP connection (RFC 6544) under the selected pair closed or failed (<see cref="IceAgent.IceTcpConnectionClosed"/>):
    /// another valid pair took over, or none was left and the agent went Disconnected at once instead of waiting for
    /// consent to expire.
    /// </summary>
    TransportClosed,
    /// <summary>
    /// The relay under the pair in use was lost (see <see cref="RelayLost"/>) and another pair carries the data now: a
    /// valid pair that was already there, or a pair of the relay's new allocation (see <see cref="IceRelayRecoveredEvent"/>).
    /// </summary>
    RelayRecovered,
}

/// <summary>The role of the agent (RFC 8445 section 6.1.1).</summary>
public enum IceRole
{
    /// <summary>Nominates pairs.</summary>
    Controlling,
    /// <summary>Follows the peer's nomination.</summary>
    Controlled,
}

/// <summary>State of a candidate pair (RFC 8445 section 6.1.2.6).</summary>
public enum IceCandidatePairState
{
    /// <summary>Waiting for a pair of the same foundation to succeed.</summary>
    Frozen,
    /// <summary>Ready to be checked.</summary>
    Waiting,
    /// <summary>A check is outstanding.</summary>
    InProgress,
    /// <summary>A check succeeded: the pair is valid.</summary>
    Succeeded,
    /// <summary>The check failed.</summary>
    Failed,
}

/// <summary>
/// An output of the agent; drained with <see cref="IceAgent.TryPollEvent"/>. A closed hierarchy (the sealed records
/// below): <see cref="Kind"/> names which one, <see cref="At"/> is the time of the call that caused it, and a state
/// change is one <see cref="IceStateChangedEvent"/> with its reason (docs/cores.md).
/// </summary>
public abstract record IceEvent
{
    private protected IceEvent(TimeSpan at) => At = at;

    /// <summary>When it happened: the <c>now</c> of the call that caused it.</summary>
    public TimeSpan At { get; init; }

    /// <summary>Which event this is.</summary>
    public abstract IceEventKind Kind { get; }
}

/// <summary>The kinds of <see cref="IceEvent"/>, one per sealed record.</summary>
public enum IceEventKind
{
    /// <summary><see cref="IceStateChangedEvent"/>.</summary>
    StateChanged,
    /// <summary><see cref="IceCandidateGatheredEvent"/>.</summary>
    CandidateGathered,
    /// <summary><see cref="IceGatheringCompleteEvent"/>.</summary>
    GatheringComplete,
    /// <summary><see cref="IceSelectedPairChangedEvent"/>.</summary>
    SelectedPairChanged,
    /// <summary><see cref="IceValidPairEvent"/>.</summary>
    ValidPair,
    /// <summary><see cref="IceRoleChangedEvent"/>.</summary>
    RoleChanged,
    /// <summary><see cref="IceRemoteCandidateLearnedEvent"/>.</summary>
    RemoteCandidateLearned,
    /// <summary><see cref="IceRelayErrorEvent"/>.</summary>
    RelayError,
    /// <summary><see cref="IceCandidatePairsRemovedEvent"/>.</summary>
    CandidatePairsRemoved,
    /// <summary><see cref="IceRelayRecoveredEvent"/>.</summary>
    RelayRecovered,
    /// <summary><see cref="IceRemoteAddressReleasedEvent"/>.</summary>
    RemoteAddressReleased,
}

/// <summary>
/// The connection state changed. <paramref name="LastReceivedAge"/> is the age of the last packet received on the selected pair, when there is one.
/// </summary>
public sealed record IceStateChangedEvent(TimeSpan At, IceConnectionState Previous, IceConnectionState State, IceStateReason Reason,
    TimeSpan? LastReceivedAge) : IceEvent(At)
{
    /// <inheritdoc/>
    public override IceEventKind Kind => IceEventKind.StateChanged;
}

/// <summary>A local candidate is ready to be signalled (trickle ICE).</summary>
public sealed record IceCandidateGatheredEvent(TimeSpan At, IceCandidate Candidate) : IceEvent(At)
{
    /// <inheritdoc/>
    public override IceEventKind Kind => IceEventKind.CandidateGathered;
}

/// <summary>Gathering finished: signal end-of-candidates.</summary>
public sealed record IceGatheringCompleteEvent(TimeSpan At) : IceEvent(At)
{
    /// <inheritdoc/>
    public override IceEventKind Kind => IceEventKind.GatheringComplete;
}

/// <summary>
/// A pair was selected (nomination), or the selection moved (an ICE restart). The valid pair data goes on before any
/// nomination is not announced here: see <see cref="IceAgent.ActiveLocal"/> and <see cref="IceStateReason.ValidPairInUse"/>.
/// </summary>
public sealed record IceSelectedPairChangedEvent(TimeSpan At, IceCandidate Local, IceCandidate Remote) : IceEvent(At)
{
    /// <inheritdoc/>
    public override IceEventKind Kind => IceEventKind.SelectedPairChanged;
}

/// <summary>
/// The first valid pair of the current generation (our check on it succeeded). With
/// <see cref="IceAgentOptions.SendBeforeNomination"/> application data may go on it from now on (RFC 8445 section
/// 12.1), before a pair is selected: a layer above can start its handshake without waiting for nomination.
/// <paramref name="RoundTripTime"/> is the check's round trip (null when unknown): the scale of the layer above's
/// first retransmission timeout.
/// </summary>
public sealed record IceValidPairEvent(TimeSpan At, IceCandidate Local, IceCandidate Remote, TimeSpan? RoundTripTime = null) : IceEvent(At)
{
    /// <inheritdoc/>
    public override IceEventKind Kind => IceEventKind.ValidPair;
}

/// <summary>The role changed to resolve a role conflict (RFC 8445 section 7.3.1.1).</summary>
public sealed record IceRoleChangedEvent(TimeSpan At, IceRole Role) : IceEvent(At)
{
    /// <inheritdoc/>
    public override IceEventKind Kind => IceEventKind.RoleChanged;
}

/// <summary>A peer-reflexive remote candidate was learnt from a check (RFC 8445 section 7.3.1.3).</summary>
public sealed record IceRemoteCandidateLearnedEvent(TimeSpan At, IceCandidate Candidate) : IceEvent(At)
{
    /// <inheritdoc/>
    public override IceEventKind Kind => IceEventKind.RemoteCandidateLearned;
}

/// <summary>What went wrong with a TURN relay of the agent.</summary>
public enum IceRelayError
{
    /// <summary>
    /// The Allocate failed (wrong credentials, an error code such as 486, a timeout): no relayed candidate from this server (a re-allocation attempt after a
    /// loss: another follows while attempts remain).
    /// </summary>
    AllocationFailed,
    /// <summary>
    /// The allocation expired, a Refresh was refused or the TCP connection closed: the relayed candidate and its pairs are removed, and the relay is allocated
    /// again (<see cref="IceAgentOptions.RelayReallocationAttempts"/>).
    /// </summary>
    AllocationExpired,
    /// <summary>A CreatePermission was refused or timed out: the pairs towards that IP will fail.</summary>
    PermissionFailed,
}

/// <summary>
/// A TURN relay of the agent failed, with the reason. Never thrown: the agent goes on with its other candidates.
/// </summary>
/// <param name="At">When.</param>
/// <param name="Server">The configured server.</param>
/// <param name="HostBase">The host candidate (socket) the relay was allocated from.</param>
/// <param name="Error">What failed.</param>
/// <param name="FailureKind">The TURN client's failure kind (Authentication, ErrorResponse, Timeout, ...), or null for an expiry.</param>
/// <param name="ErrorCode">The STUN error code (401, 437, 486, ...) or 0 when none was received.</param>
/// <param name="Reason">The server's reason phrase or what happened.</param>
/// <param name="Candidate">The relayed candidate that was removed (expiry), or null.</param>
public sealed record IceRelayErrorEvent(TimeSpan At, Turn.TurnServerConfig Server, IPEndPoint HostBase, IceRelayError Error,
    Turn.TurnFailureKind? FailureKind, int ErrorCode,
    string Reason, IceCandidate? Candidate) : IceEvent(At)
{
    /// <inheritdoc/>
    public override IceEventKind Kind => IceEventKind.RelayError;
}

/// <summary>
/// The pairs of a local candidate left the check lists (its relay's allocation was lost): <paramref name="Count"/> pairs,
/// for <paramref name="Reason"/>. No check or datagram goes on them any more; a trickle-capable peer may be told the
/// candidate is gone, though nothing requires it (its checks to the candidate simply go unanswered).
/// </summary>
public sealed record IceCandidatePairsRemovedEvent(TimeSpan At, IceCandidate Local, int Count, string Reason) : IceEvent(At)
{
    /// <inheritdoc/>
    public override IceEventKind Kind => IceEventKind.CandidatePairsRemoved;
}

/// <summary>
/// A lost relay was allocated again (<see cref="IceAgentOptions.RelayReallocationAttempts"/>), on <paramref name="Server"/>:
/// the same server, or another after a fail-over (<see cref="IceAgentOptions.RelayFailoverAfter"/>). Its
/// new relayed candidate <paramref name="Candidate"/> (also reported by an <see cref="IceCandidateGatheredEvent"/>, to
/// signal) is paired with the remote candidates, after <paramref name="Attempts"/> Allocate attempts.
/// </summary>
public sealed record IceRelayRecoveredEvent(TimeSpan At, Turn.TurnServerConfig Server, IPEndPoint HostBase, IceCandidate Candidate, int Attempts) : IceEvent(At)
{
    /// <inheritdoc/>
    public override IceEventKind Kind => IceEventKind.RelayRecovered;
}

/// <summary>What <see cref="IceAgent.HandleDatagram(ReadOnlySpan{byte}, IPEndPoint, IPEndPoint, TimeSpan)"/> did with a datagram.</summary>
public enum IceReceiveResult
{
    /// <summary>A STUN message for ICE, consumed.</summary>
    Stun,
    /// <summary>Not STUN, from a valid pair: application data (DTLS, SRTP) for the layer above.</summary>
    ApplicationData,
    /// <summary>Dropped and counted (see <see cref="IceAgent.DroppedCount(IceDropReason)"/>).</summary>
    Dropped,
}

/// <summary>What the caller already knows of a datagram it hands to the agent (RFC 7983 section 7: its first byte).</summary>
public enum IceInputKind
{
    /// <summary>Not classified: the agent reads the first byte (0-3 is STUN).</summary>
    Unclassified,
    /// <summary>STUN (first byte 0-3).</summary>
    Stun,
    /// <summary>Anything else (DTLS, RTP/RTCP): application data when it comes from a valid pair.</summary>
    NotStun,
}

/// <summary>Why a datagram was dropped.</summary>
public enum IceDropReason
{
    /// <summary>Looked like STUN but did not parse.</summary>
    Malformed,
    /// <summary>A request without valid FINGERPRINT.</summary>
    BadFingerprint,
    /// <summary>A request without USERNAME and MESSAGE-INTEGRITY, with an unknown USERNAME, or failing integrity: no answer (no amplification).</summary>
    Unauthenticated,
    /// <summary>A request that is not a Binding or lacks PRIORITY.</summary>
    BadRequest,
    /// <summary>A response that matches none of our transactions.</summary>
    UnknownTransaction,
    /// <summary>A response to a check that fails integrity, or comes from another address than the request went to.</summary>
    BadResponse,
    /// <summary>Application data from an address that is not on a valid pair.</summary>
    UnknownPeer,
    /// <summary>Arrived after the agent failed or closed.</summary>
    NotRunning,
    /// <summary>A datagram to a local address the agent does not have.</summary>
    UnknownLocalAddress,
    /// <summary>
    /// A datagram from a TURN server that the agent's TURN client dropped (malformed, unknown channel or transaction, no permission; see its counters).
    /// </summary>
    TurnDropped,
}

/// <summary>Result of <see cref="IceAgent.TrySend(TimeSpan)"/>.</summary>
public enum IceSendStatus
{
    /// <summary>Send the payload from <see cref="IceSendResult.Local"/> to <see cref="IceSendResult.Remote"/>.</summary>
    Send,
    /// <summary>No pair is selected yet (state New or Checking).</summary>
    NotConnected,
    /// <summary>The agent failed (for example consent expired): sending stopped.</summary>
    Failed,
    /// <summary>The agent is closed.</summary>
    Closed,
}

/// <summary>Where to send application data, or why not; <see cref="State"/> names the agent's state.</summary>
public readonly record struct IceSendResult(IceSendStatus Status, IceConnectionState State, IPEndPoint? Local, IPEndPoint? Remote)
{
    /// <summary>True when the payload may be sent.</summary>
    public bool CanSend => Status == IceSendStatus.Send;

    /// <summary>
    /// True when the selected pair's local candidate is relayed: <see cref="Local"/> is then the relayed address,
    /// no socket of the driver. Send with
    /// <see cref="IceAgent.TrySend(ReadOnlySpan{byte}, Span{byte}, TimeSpan, out int, out IceTransmitPath)"/>, which wraps the
    /// payload for the TURN server.
    /// </summary>
    public bool Relayed { get; init; }

    /// <summary>
    /// True when the selected pair is an ICE-TCP pair (RFC 6544): send on the TCP connection between
    /// <see cref="Local"/> and <see cref="Remote"/>, each payload behind its RFC 4571 2-byte length.
    /// </summary>
    public bool IceTcp { get; init; }
}

/// <summary>
/// Where the datagram that <see cref="IceAgent.TryPollTransmit"/> (or
/// <see cref="IceAgent.TrySend(ReadOnlySpan{byte}, Span{byte}, TimeSpan, out int, out IceTransmitPath)"/>) wrote goes: from
/// <see cref="Local"/> to <see cref="Remote"/>, over UDP unless <see cref="Tcp"/> or <see cref="IceTcp"/> says otherwise.
/// The output every core has (the bytes and their count) plus what only ICE must say: the path (docs/cores.md).
/// </summary>
public readonly record struct IceTransmitPath(IPEndPoint Local, IPEndPoint Remote)
{
    /// <summary>
    /// True when the bytes go to a TURN server over TCP (RFC 8656 section 12.5): write them as they are to the
    /// TCP connection from <see cref="Local"/>'s address to <see cref="Remote"/> (open it on the first such
    /// transmit), and hand each frame read from it (split with <see cref="Turn.TurnStreamFraming"/>) to
    /// <see cref="IceAgent.HandleStreamFrame"/> with the same two endpoints.
    /// </summary>
    public bool Tcp { get; init; }

    /// <summary>
    /// True when the bytes go on an ICE-TCP connection (RFC 6544) between <see cref="Local"/> (our passive TCP
    /// candidate) and <see cref="Remote"/> (the peer's end of the connection it opened), as one RFC 4571 frame
    /// (<see cref="IceTcpFraming"/>). Frames read from that connection go to <see cref="IceAgent.HandleIceTcpFrame"/>.
    /// </summary>
    public bool IceTcp { get; init; }
}

/// <summary>Which timer <see cref="IceAgent.PollTimeout(out IceTimer)"/> returned.</summary>
public enum IceTimer
{
    /// <summary>No deadline.</summary>
    None,
    /// <summary>The next paced connectivity check (Ta).</summary>
    Check,
    /// <summary>A retransmission or timeout of a check, consent check or gathering request.</summary>
    Retransmission,
    /// <summary>The controlling agent's nomination timeout.</summary>
    Nomination,
    /// <summary>Consent expiry (RFC 7675).</summary>
    ConsentExpiry,
    /// <summary>The next consent check.</summary>
    ConsentCheck,
    /// <summary>The next keepalive.</summary>
    Keepalive,
    /// <summary>The Disconnected timeout.</summary>
    Disconnected,
    /// <summary>The Failed timeout (also: the deadline of a relay's recovery while no pair carries data).</summary>
    Failed,
    /// <summary>A TURN client's timer: a retransmission, a refresh of the allocation, a permission or a channel, or an expiry.</summary>
    Relay,
    /// <summary>The receive-silence timer (<see cref="IceAgentOptions.ReceiveSilenceTimeout"/>).</summary>
    ReceiveSilence,
    /// <summary>The next re-allocation attempt of a lost relay (<see cref="IceAgentOptions.RelayReallocationAttempts"/>).</summary>
    RelayReallocation,
}

/// <summary>
/// The agent no longer uses <paramref name="Address"/> as a remote address: every pair to it failed, or the check list
/// that held it was dropped (an ICE restart completed), and it is not the address of the pair in use. A layer that
/// learnt something per remote address (the UDP driver's routes) may forget it; should the address come back (a new
/// check, a new candidate), the agent uses it again as it would a new one.
/// </summary>
public sealed record IceRemoteAddressReleasedEvent(TimeSpan At, IPEndPoint Address) : IceEvent(At)
{
    /// <inheritdoc/>
    public override IceEventKind Kind => IceEventKind.RemoteAddressReleased;
}
