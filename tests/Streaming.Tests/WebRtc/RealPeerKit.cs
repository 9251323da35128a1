using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>What the tests of our peer connections over real sockets share: one certificate, one patience, and waiting for an event.</summary>
internal static class RealPeerKit
{
    /// <summary>How long a test waits for anything on loopback before it fails.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    /// <summary>One certificate for every connection (as browsers reuse theirs): generating one per test costs time.</summary>
    public static readonly DtlsCertificate Certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1),
        DateTimeOffset.UtcNow.AddDays(365));

    /// <summary>The next event of type <typeparamref name="T"/> (matching <paramref name="match"/>), within <see cref="Patience"/>.</summary>
    public static async Task<T> NextAsync<T>(PeerConnection pc, Func<T, bool>? match = null) where T : PeerConnectionEvent
    {
        using var cts = new CancellationTokenSource(Patience);
        await foreach (var e in pc.ReadEventsAsync(cts.Token))
            if (e is T t && (match is null || match(t))) return t;
        throw new InvalidOperationException($"the events ended without a {typeof(T).Name}");
    }
}

/// <summary>
/// Two of our peer connections on 127.0.0.1, each on a UDP driver of its own: A controlling, B controlled, both with
/// <see cref="RealPeerKit.Certificate"/> and the given options otherwise. Disposing closes the connections, then the drivers.
/// </summary>
internal sealed class LoopbackPair(UdpDriver driverA, UdpDriver driverB, PeerConnection a, PeerConnection b) : IAsyncDisposable
{
    public PeerConnection A => a;
    public PeerConnection B => b;

    public static LoopbackPair Create(PeerConnectionOptions? options = null)
    {
        var o = (options ?? new PeerConnectionOptions()) with { Certificate = RealPeerKit.Certificate };
        var d1 = new UdpDriver();
        var d2 = new UdpDriver();
        d1.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        d2.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return new LoopbackPair(d1, d2,
            new PeerConnection(d1, o with { Ice = o.Ice with { Role = IceRole.Controlling } }),
            new PeerConnection(d2, o with { Ice = o.Ice with { Role = IceRole.Controlled } }));
    }

    public async ValueTask DisposeAsync()
    {
        await b.DisposeAsync();
        await a.DisposeAsync();
        await driverB.DisposeAsync();
        await driverA.DisposeAsync();
    }
}
