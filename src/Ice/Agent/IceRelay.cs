using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Transport.Ice.Turn;

namespace Transport.Ice;

/// <summary>
/// One relayed candidate's allocation (RFC 8445 section 5.1.1.2): the host socket it is allocated from, the TURN
/// server it is on now, the <see cref="TurnClient"/> of the current allocation, the relayed candidate, the checks held
/// while their permission is on its way, the refused peers, and the recovery after a loss (<see cref="Recovery"/>).
/// The agent (IceAgent.Relay.cs) pumps the client and acts on its events.
/// </summary>
internal sealed class IceRelay
{
    /// <summary>Checks held while their permission is on its way (the server would drop them): bounded, oldest dropped.</summary>
    public const int MaxHeld = 64;

    public IceRelay(TurnServerConfig config, IceCandidate host, TurnClient client, RelayRecovery recovery)
    {
        Config = Configured = config;
        Host = host;
        Client = client;
        Recovery = recovery;
        ConfiguredEndPoint = ServerEndPoint = config.TryGetEndPoint()!;
    }

    /// <summary>The server the relay was configured for (its kind is preferred on a fail-over).</summary>
    public TurnServerConfig Configured { get; }
    /// <summary>The server the relay is on: the configured one, or another after a fail-over (<see cref="RelayRecovery"/>).</summary>
    public TurnServerConfig Config { get; private set; }
    /// <summary>The server's address (a re-allocation starts there again, not at a redirect's alternate).</summary>
    public IPEndPoint ConfiguredEndPoint { get; private set; }
    /// <summary>Unique among the relayed candidates (RFC 8445 section 5.1.2.1): the host's, minus 1024 per earlier relay of that host.</summary>
    public ushort LocalPreference { get; init; }
    public IceCandidate Host { get; }
    /// <summary>The TURN client of the current allocation (a new one for each re-allocation).</summary>
    public TurnClient Client { get; private set; }
    /// <summary>Back-off and fail-over of the re-allocation after a loss.</summary>
    public RelayRecovery Recovery { get; }
    /// <summary>Where the transmits go: the server, or the alternate after a 300 redirect.</summary>
    public IPEndPoint ServerEndPoint { get; set; }
    public bool Tcp => Client.Options.Transport == TurnTransport.Tcp;
    public IceCandidate? Candidate { get; set; }
    /// <summary>Counted in the pending gathering requests until the allocation succeeds or fails.</summary>
    public bool Gathering { get; set; } = true;
    public bool Live => Client.State is TurnClientState.Allocating or TurnClientState.Allocated or TurnClientState.Closing;
    /// <summary>Allocated, being allocated, or lost and being allocated again: the relay occupies its server for its host socket.</summary>
    public bool Occupies => Live || Recovery.Recovering;
    public AddressFamily Family => Host.Address.AddressFamily;
    private List<(byte[] Buffer, int Length, IPEndPoint Peer)> Held { get; } = new();
    /// <summary>IPs whose permission the server refused: not asked again, their pairs failed.</summary>
    public HashSet<IPAddress> Refused { get; } = new();

    public int HeldCount => Held.Count;

    /// <summary>
    /// Holds a datagram (a rented buffer, owned from now on) until <paramref name="peer"/>'s permission; the oldest is
    /// dropped past <see cref="MaxHeld"/>.
    /// </summary>
    public void Hold(byte[] buffer, int length, IPEndPoint peer)
    {
        if (Held.Count >= MaxHeld) { ArrayPool<byte>.Shared.Return(Held[0].Buffer); Held.RemoveAt(0); }
        Held.Add((buffer, length, peer));
    }

    /// <summary>Takes the held datagrams to <paramref name="ip"/> (buffers owned by the caller from now on).</summary>
    public List<(byte[] Buffer, int Length, IPEndPoint Peer)> TakeHeld(IPAddress ip)
    {
        var taken = new List<(byte[] Buffer, int Length, IPEndPoint Peer)>();
        for (var i = 0; i < Held.Count; i++)
        {
            if (!Held[i].Peer.Address.Equals(ip)) continue;
            taken.Add(Held[i]);
            Held.RemoveAt(i--);
        }
        return taken;
    }

    /// <summary>Drops the held datagrams to <paramref name="ip"/>, or all of them when null.</summary>
    public void ReleaseHeld(IPAddress? ip)
    {
        for (var i = 0; i < Held.Count; i++)
        {
            if (ip is not null && !Held[i].Peer.Address.Equals(ip)) continue;
            ArrayPool<byte>.Shared.Return(Held[i].Buffer);
            Held.RemoveAt(i--);
        }
    }

    /// <summary>A new allocation: a new TURN client on <see cref="Config"/> from the same host socket (over TCP a new connection).</summary>
    public void Renew(TurnClient client)
    {
        ReleaseHeld(null);
        Refused.Clear();
        Client.Dispose();
        Client = client;
        ServerEndPoint = ConfiguredEndPoint;
    }

    /// <summary>Moves the relay to another configured server (fail-over); the next <see cref="Renew"/> allocates there.</summary>
    public void MoveTo(TurnServerConfig server)
    {
        Config = server;
        ConfiguredEndPoint = ServerEndPoint = server.TryGetEndPoint()!;
    }
}

/// <summary>
/// The re-allocation of one lost relay: attempts with a doubling back-off (<see cref="IceAgentOptions.RelayReallocationDelay"/>
/// to <see cref="IceAgentOptions.RelayReallocationMaxDelay"/>, at most <see cref="IceAgentOptions.RelayReallocationAttempts"/>),
/// and when to fail over to another server (<see cref="IceAgentOptions.RelayFailoverAfter"/> failed attempts in a row on
/// one server). Pure bookkeeping on the caller's time: it sends nothing.
/// </summary>
internal sealed class RelayRecovery(int maxAttempts, TimeSpan delay, TimeSpan maxDelay, int failoverAfter)
{
    /// <summary>Lost and being allocated again: an attempt is due at <see cref="RetryAt"/> or in flight.</summary>
    public bool Recovering { get; private set; }
    /// <summary>Re-allocation attempts made since the loss.</summary>
    public int Attempts { get; private set; }
    /// <summary>Failed attempts in a row on the current server.</summary>
    public int FailuresOnServer { get; private set; }
    /// <summary>When the next attempt is due, or null.</summary>
    public TimeSpan? RetryAt { get; private set; }

    public static RelayRecovery From(IceAgentOptions o) =>
        new(o.RelayReallocationAttempts, o.RelayReallocationDelay, o.RelayReallocationMaxDelay, o.RelayFailoverAfter);

    /// <summary>The allocation was lost: false when re-allocation is off (nothing scheduled), else the first attempt is scheduled.</summary>
    public bool Lost(TimeSpan now)
    {
        Attempts = 0;
        FailuresOnServer = 0;
        if (maxAttempts == 0) { Recovering = false; RetryAt = null; return false; }
        Schedule(now);
        return true;
    }

    /// <summary>True when an attempt is due by <paramref name="now"/>.</summary>
    public bool Due(TimeSpan now) => RetryAt is { } at && at <= now;

    /// <summary>An attempt starts now.</summary>
    public void BeginAttempt()
    {
        RetryAt = null;
        Attempts++;
    }

    /// <summary>
    /// The attempt failed: the next one is scheduled (none once the attempts ran out, then <see cref="Recovering"/> is
    /// false). True when it should go to another server: the failures in a row on this one reached the fail-over count.
    /// </summary>
    public bool AttemptFailed(TimeSpan now)
    {
        FailuresOnServer++;
        Schedule(now);
        return Recovering && failoverAfter > 0 && FailuresOnServer >= failoverAfter;
    }

    /// <summary>The relay moved to another server: its failures in a row start again from zero.</summary>
    public void MovedServer() => FailuresOnServer = 0;

    /// <summary>An allocation succeeded: recovery is over.</summary>
    public void Succeeded()
    {
        Recovering = false;
        RetryAt = null;
        Attempts = 0;
        FailuresOnServer = 0;
    }

    /// <summary>The wait before attempt number <paramref name="attemptsMade"/> + 1: the delay doubled per attempt made, capped.</summary>
    public TimeSpan DelayAfter(int attemptsMade)
    {
        var d = delay;
        for (var i = 0; i < attemptsMade && d < maxDelay; i++) d += d;
        return d > maxDelay ? maxDelay : d;
    }

    private void Schedule(TimeSpan now)
    {
        if (Attempts >= maxAttempts)
        {
            Recovering = false;
            RetryAt = null;
            return;
        }
        Recovering = true;
        RetryAt = now + DelayAfter(Attempts);
    }

    /// <summary>
    /// The server a relay fails over to from <paramref name="current"/>: among <paramref name="servers"/> of the host's
    /// address family that no other relay of the host <paramref name="occupied"/> (one allocation per host socket and
    /// server), first those of the same kind as <paramref name="kind"/> (transport and TLS), then any other, each in the
    /// configured order starting after the current one (so repeated fail-overs go round the list); null when none.
    /// </summary>
    public static TurnServerConfig? NextServer(IReadOnlyList<TurnServerConfig> servers, TurnServerConfig current, TurnServerConfig kind,
        AddressFamily family, Func<TurnServerConfig, bool> occupied)
    {
        var start = 0;
        for (var i = 0; i < servers.Count; i++)
            if (ReferenceEquals(servers[i], current) || servers[i].Equals(current)) { start = i + 1; break; }
        TurnServerConfig? other = null;
        for (var k = 0; k < servers.Count; k++)
        {
            var s = servers[(start + k) % servers.Count];
            if (s.Equals(current) || s.TryGetEndPoint() is not { } ep || ep.AddressFamily != family || occupied(s)) continue;
            if (SameKind(s, kind)) return s;
            other ??= s;
        }
        return other;
    }

    private static bool SameKind(TurnServerConfig a, TurnServerConfig b) => a.Transport == b.Transport && a.Secure == b.Secure;
}
