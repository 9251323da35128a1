namespace Transport.Ice;

/// <summary>
/// The clocks of the pair in use (the selected pair, or before nomination the valid pair data went on): when something
/// and when application data last arrived, when something was last sent, when consent was last refreshed and when the
/// next consent check is due (RFC 7675), when the agent went Disconnected; and from them the deadlines of consent
/// expiry, the consent check, the keepalive (RFC 8445 section 11), Disconnected, receive silence and Failed. Pure
/// bookkeeping on the caller's time: the agent sends the checks and makes the transitions. A timer of 0 is off.
/// </summary>
internal sealed class IceLiveness(IceAgentOptions options, Random random)
{
    // Receive silence: when application data last arrived, and when its current run began (a run: no gap longer than
    // ReceiveSilenceTimeout / ReceiveSilencePackets between two application datagrams).
    private TimeSpan? _lastDataAt;
    private TimeSpan _dataRunStart;
    // When application data was last sent: see KeepaliveDue.
    private TimeSpan? _lastDataSent;

    /// <summary>When anything was last received on the pair in use.</summary>
    public TimeSpan LastReceived { get; private set; }
    /// <summary>When anything was last sent on the pair in use.</summary>
    public TimeSpan LastSent { get; private set; }
    /// <summary>When consent was last refreshed (an authenticated response, or the start of the pair's use).</summary>
    public TimeSpan LastConsent { get; private set; }
    /// <summary>When the next consent check is due.</summary>
    public TimeSpan NextConsentAt { get; private set; }
    /// <summary>When the agent last went Disconnected (the Failed timer runs from here).</summary>
    public TimeSpan DisconnectedAt { get; private set; }

    /// <summary>A pair starts carrying data: every clock starts from <paramref name="now"/>, the next consent check is drawn.</summary>
    public void Reset(TimeSpan now)
    {
        LastReceived = now;
        LastSent = now;
        LastConsent = now;
        NextConsentAt = DrawConsentAt(now);
        _lastDataAt = null;
    }

    /// <summary>Something (STUN or data) arrived on the pair in use.</summary>
    public void Received(TimeSpan now) => LastReceived = now;

    /// <summary>Application data arrived on the pair in use: it extends or starts a run of data.</summary>
    public void DataReceived(TimeSpan now)
    {
        if (_lastDataAt is not { } last || now - last > ExpectedDataGap) _dataRunStart = now;
        _lastDataAt = now;
        LastReceived = now;
    }

    /// <summary>Something was sent on the pair in use (it defers the keepalive).</summary>
    public void Sent(TimeSpan now) => LastSent = now;

    /// <summary>Application data was sent on the pair in use (it defers the keepalive, and shortens the next one: see <see cref="KeepaliveDue"/>).</summary>
    public void DataSent(TimeSpan now)
    {
        LastSent = now;
        _lastDataSent = now;
    }

    /// <summary>Consent was refreshed at <paramref name="at"/> (RFC 7675: an authenticated response on the pair).</summary>
    public void ConsentRefreshed(TimeSpan at) => LastConsent = at;

    /// <summary>The next consent check goes at once (the pair's last answer may be old).</summary>
    public void CheckConsentNow(TimeSpan now) => NextConsentAt = now;

    /// <summary>
    /// Disconnected: a consent check goes at once when <see cref="IceAgentOptions.PeerMoveSilence"/> is on (a peer behind
    /// a rebound NAT is reached by it from its new address within a round trip, not at the next regular check).
    /// </summary>
    public void ProbeAtOnce(TimeSpan now)
    {
        if (options.PeerMoveSilence > TimeSpan.Zero && NextConsentAt > now) NextConsentAt = now;
    }

    /// <summary>The agent went Disconnected at <paramref name="now"/>.</summary>
    public void Disconnected(TimeSpan now) => DisconnectedAt = now;

    /// <summary>A consent check went out: the next is drawn, or while Disconnected (with PeerMoveSilence on) due in 0.4 x the interval.</summary>
    public void ConsentSent(TimeSpan now, bool disconnected) =>
        NextConsentAt = disconnected && options.PeerMoveSilence > TimeSpan.Zero ? now + options.ConsentInterval * 0.4 : DrawConsentAt(now);

    /// <summary>When consent expires (<see cref="IceAgentOptions.ConsentTimeout"/> after the last refresh), or null when off.</summary>
    public TimeSpan? ConsentExpiresAt => options.ConsentTimeout > TimeSpan.Zero ? LastConsent + options.ConsentTimeout : null;

    /// <summary>When the next consent check is due, or null when off.</summary>
    public TimeSpan? ConsentCheckAt => options.ConsentInterval > TimeSpan.Zero ? NextConsentAt : null;

    /// <summary>When Connected becomes Disconnected for lack of input (<see cref="IceAgentOptions.DisconnectedTimeout"/>), or null when off.</summary>
    public TimeSpan? DisconnectedDue => options.DisconnectedTimeout > TimeSpan.Zero ? LastReceived + options.DisconnectedTimeout : null;

    /// <summary>When Disconnected becomes Failed (<see cref="IceAgentOptions.FailedTimeout"/>), or null when off.</summary>
    public TimeSpan? FailedDue => options.FailedTimeout > TimeSpan.Zero ? DisconnectedAt + options.FailedTimeout : null;

    /// <summary>
    /// RFC 8445 section 11: a keepalive when nothing was sent for KeepaliveInterval; then on the next multiple of
    /// KeepaliveAlignment (never before the interval passed), so idle agents' periodic sends share instants. Null when off.
    /// Right after application data stopped, the next one goes sooner: by 4/5 of ReceiveSilenceTimeout (2 s by default).
    /// A peer that saw our data flowing goes Disconnected (ReceiveSilence) that long after our last datagram while that
    /// datagram came within ReceiveSilenceTimeout / ReceiveSilencePackets of our last data (its rule, with our options
    /// standing for its own); a datagram later than that disarms its timer, and from then on only its
    /// DisconnectedTimeout matters, which the longer interval serves.
    /// </summary>
    public TimeSpan? KeepaliveDue
    {
        get
        {
            if (options.KeepaliveInterval <= TimeSpan.Zero) return null;
            var interval = options.KeepaliveInterval;
            var silence = options.ReceiveSilenceTimeout;
            if (_lastDataSent is { } data && silence > TimeSpan.Zero && silence * 0.8 < interval && LastSent - data <= ExpectedDataGap)
                interval = silence * 0.8;
            var due = (LastSent + interval).Ticks;
            var grid = options.KeepaliveAlignment.Ticks;
            return TimeSpan.FromTicks(grid <= 0 ? due : (due + grid - 1) / grid * grid);
        }
    }

    private TimeSpan ExpectedDataGap => options.ReceiveSilenceTimeout / options.ReceiveSilencePackets;

    /// <summary>
    /// Receive silence: only while data flows (see <see cref="IceAgentOptions.ReceiveSilenceTimeout"/>): a run of
    /// application data that has lasted the timeout itself (a DTLS handshake's burst does not arm it), still going when
    /// the last datagram of any kind arrived. Counted from that last datagram, so STUN from a live peer that stopped its
    /// data defers it and then disarms it. Null when not armed.
    /// </summary>
    public TimeSpan? ReceiveSilenceDue
    {
        get
        {
            var timeout = options.ReceiveSilenceTimeout;
            if (timeout <= TimeSpan.Zero || _lastDataAt is not { } data) return null;
            if (data - _dataRunStart < timeout || LastReceived - data > ExpectedDataGap) return null;
            return LastReceived + timeout;
        }
    }

    /// <summary>
    /// RFC 7675 section 5.1: uniformly in [0.8, 1.2] x the interval after <paramref name="now"/>. Then, when the window
    /// allows it, moved to the next multiple of ConsentAlignment on the agent's clock (or the previous one if the next
    /// leaves the window): the checks of many agents sharing a clock then fall on common instants, and a host with
    /// thousands of idle connections wakes a few times per alignment period instead of once per check. Still inside
    /// the window, still random among the multiples the window holds.
    /// </summary>
    public TimeSpan DrawConsentAt(TimeSpan now)
    {
        var interval = options.ConsentInterval.Ticks;
        var at = now.Ticks + (long)(interval * (0.8 + 0.4 * random.NextDouble()));
        var grid = options.ConsentAlignment.Ticks;
        if (grid <= 0) return TimeSpan.FromTicks(at);
        long earliest = now.Ticks + interval * 8 / 10, latest = now.Ticks + interval * 12 / 10;
        var up = (at + grid - 1) / grid * grid;
        if (up <= latest) return TimeSpan.FromTicks(up);
        var down = at / grid * grid;
        return TimeSpan.FromTicks(down >= earliest ? down : at);
    }
}
