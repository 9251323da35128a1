using System.Net;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// One of our peer connection cores as a peer of the test kit's virtual link: every datagram and timeout is followed
/// by a drain of its events into <see cref="Events"/>. Test classes derive from it to add their own views.
/// </summary>
internal class CorePeer(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote) : IVirtualPeer
{
    public PeerConnectionCore Core { get; } = core;
    public List<PeerConnectionEvent> Events { get; } = new();
    public void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now) { Core.HandleDatagram(datagram, local, remote, now); Drain(); }
    public void HandleTimeout(TimeSpan now) { Core.HandleTimeout(now); Drain(); }
    public bool TryPollTransmit(Span<byte> destination, out int written) => Core.TryPollTransmit(destination, out written, out _, out _);
    public TimeSpan? PollTimeout() => Core.PollTimeout();
    public void Drain() { while (Core.TryPollEvent(out var e)) Events.Add(e); }
}
