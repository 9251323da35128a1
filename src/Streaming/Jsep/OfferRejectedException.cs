namespace Transport.Streaming.Jsep;

/// <summary>
/// A well-formed offer of which no section can be accepted (RFC 8829 section 5.3.1 would reject every m= section,
/// leaving nothing to connect): no data channel in a form we run, no audio or video codec in common. The message
/// and <see cref="Reasons"/> say, per offered section, why; a signaling layer returns them to the client (WHIP: 422)
/// instead of an answer that would fail in the client's setRemoteDescription.
/// </summary>
public sealed class OfferRejectedException : InvalidOperationException
{
    /// <summary>Rejects an offer for <paramref name="reasons"/>, one per offered section.</summary>
    public OfferRejectedException(IReadOnlyList<string> reasons)
        : base("Nothing in the offer can be accepted: " + string.Join("; ", reasons ?? throw new ArgumentNullException(nameof(reasons))))
    {
        Reasons = reasons;
    }

    /// <summary>Why each offered section was rejected (<c>m=KIND mid M: reason</c>).</summary>
    public IReadOnlyList<string> Reasons { get; }
}
