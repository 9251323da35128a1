using System.Net;
using System.Net.Sockets;

namespace Transport.Ice;

/// <summary>
/// What a remote party can make one <see cref="IceAgent"/> hold (<see cref="IceAgentOptions.Limits"/>; Kestrel's
/// server limits are the model). Whatever is over a limit is dropped and counted
/// (<see cref="IceAgent.RemoteCandidatesDropped"/>, <see cref="IceAgent.PairsDropped"/>), never thrown. docs/ice.md
/// lists the defaults and why.
/// </summary>
public sealed record IceLimits
{
    /// <summary>
    /// Remote candidates per check list, signalled and peer-reflexive together (default 100; RFC 8445 section 6.1.2.5
    /// asks to limit the check list: a browser signals fewer than ten). Further ones are dropped and counted.
    /// </summary>
    public int MaxRemoteCandidates { get; init; } = 100;

    /// <summary>Candidate pairs per check list (default 500, RFC 8445 section 6.1.2.5). A pair over it is not formed, and counted.</summary>
    public int MaxPairs { get; init; } = 500;

    /// <summary>
    /// Outgoing STUN transactions held at once: checks, consent checks, gathering requests (default 500). Pacing by Ta
    /// (50 ms) and a check's life (about 10 s with the default retransmissions) keep about 200 in flight at most, so the
    /// bound only matters with other options. At the bound the next check waits for one to end; a consent check or a
    /// gathering request is not sent, and counted (<see cref="IceAgent.TransactionsRefused"/>).
    /// </summary>
    public int MaxPendingTransactions { get; init; } = 500;

    /// <summary>
    /// Remote candidates in private ranges (RFC 1918 10/8, 172.16/12, 192.168/16; RFC 6598 100.64/10; link-local
    /// 169.254/16 and fe80::/10; RFC 4193 fc00::/7) are used (default true: a LAN peer needs them). A public server may
    /// deny them so a peer cannot make it check addresses inside its own network.
    /// </summary>
    public bool AllowPrivateAddresses { get; init; } = true;

    /// <summary>
    /// Further remote addresses to refuse (returns true to deny), after the ones always refused: unspecified,
    /// multicast, broadcast, port 0, and the agent's own local candidates.
    /// </summary>
    public Func<IPEndPoint, bool>? DenyAddress { get; init; }

    internal void Validate()
    {
        if (MaxRemoteCandidates < 1) throw new ArgumentOutOfRangeException(nameof(MaxRemoteCandidates), "MaxRemoteCandidates must be at least 1.");
        if (MaxPairs < 1) throw new ArgumentOutOfRangeException(nameof(MaxPairs), "MaxPairs must be at least 1.");
        if (MaxPendingTransactions < 1) throw new ArgumentOutOfRangeException(nameof(MaxPendingTransactions), "MaxPendingTransactions must be at least 1.");
    }

    /// <summary>
    /// Whether a remote candidate's address may be checked. Never: the unspecified address, multicast, IPv4 broadcast
    /// or port 0 (a check there would go to many hosts or none: RFC 8445 section 5.1.1.1 gathers none of them).
    /// </summary>
    internal bool Allows(IPEndPoint address)
    {
        if (address.Port == 0) return false;
        var ip = address.Address;
        if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
        if (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any) || ip.Equals(IPAddress.Broadcast)) return false;
        if (ip.AddressFamily == AddressFamily.InterNetworkV6 && ip.IsIPv6Multicast) return false;
        if (ip.AddressFamily == AddressFamily.InterNetwork)
        {
            Span<byte> b = stackalloc byte[4];
            ip.TryWriteBytes(b, out _);
            if (b[0] is >= 224 and <= 239) return false;   // RFC 5771 multicast
            if (!AllowPrivateAddresses && IsPrivateIPv4(b)) return false;
        }
        else if (!AllowPrivateAddresses && (ip.IsIPv6LinkLocal || ip.IsIPv6UniqueLocal || ip.IsIPv6SiteLocal)) return false;
        return DenyAddress?.Invoke(address) != true;
    }

    private static bool IsPrivateIPv4(ReadOnlySpan<byte> b) =>
        b[0] == 10 || (b[0] == 172 && (b[1] & 0xF0) == 16) || (b[0] == 192 && b[1] == 168)
        || (b[0] == 100 && (b[1] & 0xC0) == 64) || (b[0] == 169 && b[1] == 254);
}
