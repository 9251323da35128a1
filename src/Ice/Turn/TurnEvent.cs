using Transport.Ice.Stun;

namespace Transport.Ice.Turn;

/// <summary>Where a <see cref="TurnClient"/> stands.</summary>
public enum TurnClientState
{
    /// <summary>Created; <see cref="TurnClient.Start"/> not called.</summary>
    Idle,
    /// <summary>Allocate in progress (including the 401 round trip and redirects).</summary>
    Allocating,
    /// <summary>The allocation exists; data can be relayed.</summary>
    Allocated,
    /// <summary>Deallocating (Refresh with LIFETIME 0) after <see cref="TurnClient.Close"/>.</summary>
    Closing,
    /// <summary>Closed by the application.</summary>
    Closed,
    /// <summary>Allocate failed (error response, authentication, timeout).</summary>
    Failed,
    /// <summary>The allocation expired or the server dropped it.</summary>
    Expired,
}

/// <summary>Why an operation of the TURN client failed.</summary>
public enum TurnFailureKind
{
    /// <summary>The server answered with an error code (see the code and reason).</summary>
    ErrorResponse,
    /// <summary>The credentials were refused (401 after a request with credentials, or 441).</summary>
    Authentication,
    /// <summary>No response within the transaction timeout (RFC 8489 section 6.2.1: 39.5 s by default).</summary>
    Timeout,
    /// <summary>The response carried comprehension-required attributes we do not know (RFC 8489 section 6.3.1).</summary>
    UnknownAttributes,
    /// <summary>A success response lacked what the method requires (e.g. XOR-RELAYED-ADDRESS).</summary>
    MalformedResponse,
    /// <summary>More 300 redirects or 438 answers than the options allow.</summary>
    TooManyRetries,
    /// <summary>The TCP connection to the server closed (<see cref="TurnClient.ConnectionClosed"/>).</summary>
    ConnectionClosed,
}

/// <summary>Something the <see cref="TurnClient"/> reports; drain with <see cref="TurnClient.TryPollEvent"/>.</summary>
public abstract record TurnEvent;

/// <summary>The allocation exists (RFC 8656 section 7.3).</summary>
/// <param name="RelayedAddress">The relayed transport address peers send to (the relay candidate of ICE).</param>
/// <param name="AdditionalRelayedAddress">The IPv6 relayed address of a dual allocation, else null.</param>
/// <param name="MappedAddress">Our address as the server saw it (XOR-MAPPED-ADDRESS: a server-reflexive candidate).</param>
/// <param name="Lifetime">The lifetime the server granted.</param>
public sealed record TurnAllocated(StunAddress RelayedAddress, StunAddress? AdditionalRelayedAddress, StunAddress MappedAddress, TimeSpan Lifetime) : TurnEvent;

/// <summary>Allocate failed; the client is <see cref="TurnClientState.Failed"/>.</summary>
/// <param name="Kind">What went wrong.</param>
/// <param name="ErrorCode">The STUN error code (e.g. 401, 437, 486), or 0 when no error response was received.</param>
/// <param name="Reason">The server's reason phrase, or what happened.</param>
public sealed record TurnAllocationFailed(TurnFailureKind Kind, int ErrorCode, string Reason) : TurnEvent;

/// <summary>A Refresh succeeded: the allocation now lasts <paramref name="Lifetime"/> from now.</summary>
public sealed record TurnAllocationRefreshed(TimeSpan Lifetime) : TurnEvent;

/// <summary>The allocation is gone: it ran out of lifetime, or a Refresh was refused (437 Allocation Mismatch and the like).</summary>
/// <param name="ErrorCode">The code of the refused Refresh, or 0 when the lifetime simply ran out.</param>
/// <param name="Reason">What happened.</param>
public sealed record TurnAllocationExpired(int ErrorCode, string Reason) : TurnEvent;

/// <summary>A permission for the peer's IP address is installed or refreshed (RFC 8656 section 9).</summary>
public sealed record TurnPermissionCreated(StunAddress Peer) : TurnEvent;

/// <summary>CreatePermission failed; the peer's packets will not be relayed.</summary>
public sealed record TurnPermissionFailed(StunAddress Peer, TurnFailureKind Kind, int ErrorCode, string Reason) : TurnEvent;

/// <summary>A channel is bound to the peer (RFC 8656 section 12); data to it now goes as ChannelData.</summary>
public sealed record TurnChannelBound(StunAddress Peer, ushort Channel) : TurnEvent;

/// <summary>ChannelBind failed; data to the peer keeps going in Send indications.</summary>
public sealed record TurnChannelBindFailed(StunAddress Peer, ushort Channel, TurnFailureKind Kind, int ErrorCode, string Reason) : TurnEvent;

/// <summary>Data from a peer through the relay (a Data indication or ChannelData). The bytes are a copy.</summary>
/// <param name="Peer">The peer's address (XOR-PEER-ADDRESS, or the address bound to the channel).</param>
/// <param name="Data">The payload.</param>
/// <param name="Channel">The channel it came on, or 0 for a Data indication.</param>
public sealed record TurnPeerData(StunAddress Peer, byte[] Data, ushort Channel) : TurnEvent;

/// <summary>The client is closed (after <see cref="TurnClient.Close"/>); the allocation was deleted or abandoned.</summary>
public sealed record TurnClosed(string Reason) : TurnEvent;
