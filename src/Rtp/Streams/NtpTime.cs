namespace Transport.Rtp.Streams;

/// <summary>
/// NTP timestamps (RFC 3550 section 4: seconds since 1900 in the upper 32 bits, fraction in the lower) derived
/// from the caller's monotonic clock plus a fixed origin, so the core never reads a wall clock.
/// </summary>
public static class NtpTime
{
    /// <summary>The 64-bit NTP timestamp of <paramref name="now"/> given the NTP time at monotonic zero.</summary>
    public static ulong FromMonotonic(ulong originNtp, TimeSpan now) =>
        originNtp + (ulong)((UInt128)(ulong)Math.Max(0, now.Ticks) * (UInt128)(1UL << 32) / TimeSpan.TicksPerSecond);

    /// <summary>The middle 32 bits (16.16 fixed point seconds), the form LSR and DLSR use (RFC 3550 section 6.4.1).</summary>
    public static uint Compact(ulong ntp) => (uint)(ntp >> 16);

    /// <summary>A duration as 1/65536 seconds (DLSR units).</summary>
    public static uint ToCompactDuration(TimeSpan duration) =>
        (uint)Math.Min(uint.MaxValue, Math.Max(0, duration.Ticks) * 65536 / TimeSpan.TicksPerSecond);

    /// <summary>A 1/65536-second count as a duration.</summary>
    public static TimeSpan FromCompactDuration(uint units) => TimeSpan.FromTicks((long)units * TimeSpan.TicksPerSecond / 65536);
}
