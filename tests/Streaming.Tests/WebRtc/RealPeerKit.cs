using Transport.Dtls;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>What the tests of our peer connections over real sockets share: one certificate, one patience, and waiting for an event.</summary>
internal static class RealPeerKit
{
    /// <summary>How long a test waits for anything on loopback before it fails.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    /// <summary>One certificate for every connection (as browsers reuse theirs): generating one per test costs time.</summary>
    public static readonly DtlsCertificate Certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(365));

    /// <summary>The next event of type <typeparamref name="T"/> (matching <paramref name="match"/>), within <see cref="Patience"/>.</summary>
    public static async Task<T> NextAsync<T>(PeerConnection pc, Func<T, bool>? match = null) where T : PeerConnectionEvent
    {
        using var cts = new CancellationTokenSource(Patience);
        await foreach (var e in pc.ReadEventsAsync(cts.Token))
            if (e is T t && (match is null || match(t))) return t;
        throw new InvalidOperationException($"the events ended without a {typeof(T).Name}");
    }
}
