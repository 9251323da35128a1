namespace Transport.Sctp;

/// <summary>
/// The retransmission timeout of RFC 9260 section 6.3: SRTT and RTTVAR from round-trip samples (6.3.1 C1-C3 with
/// RTO.Alpha = 1/8 and RTO.Beta = 1/4), bounded by RTO.Min and RTO.Max (C6, C7), doubled on expiry (6.3.3 E2) up to a
/// cap, and, before the first sample, RTO.Initial or a value derived from a round trip measured on the same path by
/// another layer (<see cref="SctpAssociation.SeedRoundTripTime"/>). Karn's rule (C5: no sample from a retransmitted
/// chunk) is the sender's to apply: it decides which samples reach <see cref="Measure"/>.
/// </summary>
internal sealed class RetransmissionTimeout
{
    private readonly TimeSpan _initial, _min, _max, _backoffCap;
    private TimeSpan? _pathRtt;

    /// <summary>
    /// <paramref name="maxBackoff"/> (<see cref="SctpOptions.MaxTimerBackoff"/>) caps what <see cref="BackOff"/> doubles
    /// to; null: RTO.Max.
    /// </summary>
    public RetransmissionTimeout(TimeSpan initial, TimeSpan min, TimeSpan max, TimeSpan? maxBackoff = null)
    {
        _initial = initial;
        _min = min;
        _max = max;
        _backoffCap = maxBackoff is { } b && b < max ? b : max;
        Value = initial;
    }

    /// <summary>From the association's options.</summary>
    public RetransmissionTimeout(SctpOptions o) : this(o.RtoInitial, o.RtoMin, o.RtoMax, o.MaxTimerBackoff) { }

    /// <summary>The current RTO.</summary>
    public TimeSpan Value { get; private set; }
    /// <summary>SRTT, or null before the first sample.</summary>
    public TimeSpan? Srtt { get; private set; }
    /// <summary>RTTVAR, or null before the first sample.</summary>
    public TimeSpan? Rttvar { get; private set; }
    /// <summary>RTO.Initial as configured.</summary>
    public TimeSpan Initial => _initial;

    /// <summary>
    /// A round trip measured on the same path before any sample of our own (ignored when not positive or once a
    /// sample was taken). It changes <see cref="Value"/> only through <see cref="FirstRto"/> and <see cref="Restart"/>.
    /// </summary>
    public bool SeedPathRtt(TimeSpan rtt)
    {
        if (rtt <= TimeSpan.Zero || Srtt is not null) return false;
        _pathRtt = rtt;
        return true;
    }

    /// <summary>
    /// The RTO before the first sample: RTO.Initial, or with a seeded path round trip R the value a first sample R
    /// gives (C2: SRTT + 4 RTTVAR with RTTVAR = R/2, so 3 R), within RTO.Min and RTO.Max.
    /// </summary>
    public TimeSpan FirstRto() => _pathRtt is { } r ? Clamp(r + 4 * (r / 2)) : _initial;

    /// <summary>Sets the RTO to <see cref="FirstRto"/> (the association starts sending).</summary>
    public void Restart() => Value = FirstRto();

    /// <summary>A round-trip sample <paramref name="r"/> (C2 for the first, C3 after), then RTO = SRTT + 4 RTTVAR, bounded.</summary>
    public void Measure(TimeSpan r)
    {
        if (Srtt is not { } srtt || Rttvar is not { } rttvar)
        {
            Srtt = r;
            Rttvar = r / 2;
        }
        else
        {
            var diff = srtt - r;
            Rttvar = rttvar * 0.75 + (diff < TimeSpan.Zero ? -diff : diff) * 0.25;
            Srtt = srtt * 0.875 + r * 0.125;
        }
        Value = Clamp(Srtt.Value + 4 * Rttvar.Value);
    }

    /// <summary>
    /// T3-rtx expired (6.3.3 E2): RTO = RTO x 2, at most RTO.Max and the back-off cap, but never below the RTO as it
    /// stands (a path whose measured RTO exceeds the cap keeps it).
    /// </summary>
    public void BackOff()
    {
        var cap = _backoffCap < Value ? Value : _backoffCap;
        Value = Value * 2 > cap ? cap : Value * 2;
    }

    /// <summary>T2-shutdown expired: RTO = RTO x 2, at most RTO.Max (the back-off cap does not apply).</summary>
    public void DoubleUpToMax() => Value = Doubled(Value, _max);

    /// <summary><paramref name="rto"/> x 2, at most <paramref name="max"/> (T1-init keeps its own RTO this way).</summary>
    public static TimeSpan Doubled(TimeSpan rto, TimeSpan max) => rto * 2 > max ? max : rto * 2;

    private TimeSpan Clamp(TimeSpan rto) => rto < _min ? _min : rto > _max ? _max : rto;
}
