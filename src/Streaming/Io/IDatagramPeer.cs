using System.Net;

namespace Transport.Streaming.Io;

/// <summary>
/// A sans-IO machine (an ICE agent, or a composition on top of one) as the <see cref="UdpDriver"/> runs it.
/// The driver calls these methods from one logical thread at a time per peer, so implementations need no locks.
/// </summary>
public interface IDatagramPeer
{
    /// <summary>
    /// The local ICE username fragments of this peer. The first STUN request from an unknown remote address is
    /// routed to the peer whose fragment stands before the colon of its USERNAME (RFC 8445 section 7.2.2).
    /// </summary>
    IReadOnlyCollection<string> LocalUsernameFragments { get; }

    /// <summary>A datagram arrived on <paramref name="local"/> from <paramref name="remote"/>. The span is valid only during the call.</summary>
    void HandleDatagram(ReadOnlySpan<byte> datagram, IPEndPoint local, IPEndPoint remote, TimeSpan now);

    /// <summary>
    /// One RFC 4571 frame read from an ICE-TCP connection (RFC 6544) that a peer opened to the driver's listening
    /// socket <paramref name="local"/> from <paramref name="remote"/>. Default: ignored (a peer without ICE-TCP).
    /// </summary>
    void HandleIceTcpFrame(ReadOnlySpan<byte> frame, IPEndPoint local, IPEndPoint remote, TimeSpan now) { }

    /// <summary>
    /// A datagram the driver already classified by its first byte (RFC 7983, <paramref name="kind"/>): what the driver
    /// calls, so that the class is read once per datagram. Default: <see cref="HandleDatagram(ReadOnlySpan{byte}, IPEndPoint, IPEndPoint, TimeSpan)"/>.
    /// </summary>
    void HandleDatagram(ReadOnlySpan<byte> datagram, DatagramKind kind, IPEndPoint local, IPEndPoint remote, TimeSpan now) =>
        HandleDatagram(datagram, local, remote, now);

    /// <summary>
    /// An ICE-TCP frame the driver already classified; default: <see cref="HandleIceTcpFrame(ReadOnlySpan{byte}, IPEndPoint, IPEndPoint, TimeSpan)"/>.
    /// </summary>
    void HandleIceTcpFrame(ReadOnlySpan<byte> frame, DatagramKind kind, IPEndPoint local, IPEndPoint remote, TimeSpan now) =>
        HandleIceTcpFrame(frame, local, remote, now);

    /// <summary>
    /// Like <see cref="TryPollTransmit(Span{byte}, out int, out IPEndPoint?, out IPEndPoint)"/>; <paramref name="iceTcp"/>
    /// true sends the bytes as one RFC 4571 frame on the ICE-TCP connection between the two endpoints instead of a
    /// UDP datagram. Default: the UDP form.
    /// </summary>
    bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote, out bool iceTcp)
    {
        iceTcp = false;
        return TryPollTransmit(destination, out written, out local, out remote);
    }

    /// <summary>
    /// Like the forms above, with the path the bytes take: a UDP datagram, an RFC 4571 frame on an ICE-TCP connection,
    /// or bytes written as they are to the TCP (or TLS) connection to a TURN server, which the driver opens on the first
    /// such transmit from <paramref name="local"/> to <paramref name="remote"/> (<see cref="TransmitKind.TurnStream"/>).
    /// The driver calls this form. Default: the ICE-TCP form.
    /// </summary>
    bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote, out TransmitKind kind)
    {
        var sent = TryPollTransmit(destination, out written, out local, out remote, out bool iceTcp);
        kind = iceTcp ? TransmitKind.IceTcp : TransmitKind.Udp;
        return sent;
    }

    /// <summary>
    /// One whole frame (a STUN message or a padded ChannelData message, RFC 8656 section 12.5) read from the TCP or TLS
    /// connection the driver opened from <paramref name="local"/> to the TURN server <paramref name="server"/> for this
    /// peer's <see cref="TransmitKind.TurnStream"/> transmits. Default: ignored.
    /// </summary>
    void HandleTurnStreamFrame(ReadOnlySpan<byte> frame, IPEndPoint local, IPEndPoint server, TimeSpan now) { }

    /// <summary>
    /// A TURN server's frame the driver already classified (RFC 7983); default:
    /// <see cref="HandleTurnStreamFrame(ReadOnlySpan{byte}, IPEndPoint, IPEndPoint, TimeSpan)"/>.
    /// </summary>
    void HandleTurnStreamFrame(ReadOnlySpan<byte> frame, DatagramKind kind, IPEndPoint local, IPEndPoint server, TimeSpan now) =>
        HandleTurnStreamFrame(frame, local, server, now);

    /// <summary>
    /// The connection to the TURN server <paramref name="server"/> closed, or could not be opened (<paramref name="reason"/>
    /// says why: refused, reset, a TLS certificate refused, a timeout). The server deletes the allocation with its
    /// connection (RFC 8656 section 3.1), so the peer learns its relay is gone. Default: nothing.
    /// </summary>
    void OnTurnConnectionClosed(IPEndPoint local, IPEndPoint server, string reason, TimeSpan now) { }

    /// <summary>
    /// The ICE-TCP connection (RFC 6544) between the driver's listening endpoint <paramref name="local"/> and
    /// <paramref name="remote"/>, whose frames went to this peer, closed (the remote end closed or reset it, a write
    /// failed, or a bad frame closed it): nothing more can go on it, so its pairs can fail at once instead of when
    /// consent expires. Not called when the peer itself stopped or the driver stops. Default: nothing.
    /// </summary>
    void OnIceTcpConnectionClosed(IPEndPoint local, IPEndPoint remote, TimeSpan now) { }

    /// <summary>
    /// The configured TURN server the peer's stream transmits from <paramref name="local"/> to <paramref name="server"/>
    /// are for: the driver reads <c>turns:</c> (TLS) and the TLS server name from it when it opens the connection.
    /// Default null: plain TCP.
    /// </summary>
    Transport.Ice.Turn.TurnServerConfig? FindTurnServer(IPEndPoint local, IPEndPoint server) => null;

    /// <summary>The deadline from <see cref="PollTimeout"/> passed.</summary>
    void HandleTimeout(TimeSpan now);

    /// <summary>Writes the next datagram to send into <paramref name="destination"/>, with the addresses to use.</summary>
    bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote);

    /// <summary>The next deadline, or null.</summary>
    TimeSpan? PollTimeout();

    /// <summary>Called after every input, once transmits are drained: the place to hand events to the application.</summary>
    void AfterInput(TimeSpan now);

    /// <summary>
    /// True when every method returns quickly and never blocks (a sans-IO core whose events go to non-blocking
    /// queues). The driver may then run the peer's STUN datagrams and timer expiries on its own receive and deadline
    /// threads, saving a thread hand-off per input (<see cref="UdpDriverOptions.InlineProcessing"/>). A peer that may
    /// block or run long keeps the default, false, and always runs on the thread pool, so it never delays others.
    /// </summary>
    bool RunsInline => false;

    /// <summary>
    /// For a peer that <see cref="RunsInline"/>: whether its inputs may run inline right now. Read by the driver's
    /// threads before each inline run, without the peer's thread, so it must be safe to read from any thread. A peer
    /// returns false while an input can mean heavy work, so that work goes to the pool and never holds the receive or
    /// deadline thread that serves every other peer of the socket: a peer connection during its set-up, whose STUN
    /// checks carry its DTLS handshake (SPED), i.e. a signature and a key exchange per connection. Default true.
    /// </summary>
    bool InlineNow => true;

    /// <summary>
    /// A remote address the peer no longer uses (ICE released it: its pairs failed or its check list was dropped).
    /// The driver polls these after every input and forgets the routes it learnt for them on this peer, so datagrams
    /// from there are routed again only by an authenticated check's answer. Default: none.
    /// </summary>
    bool TryPollReleasedRemote(out IPEndPoint remote)
    {
        remote = null!;
        return false;
    }

    /// <summary>
    /// A connectivity check from <paramref name="local"/> to <paramref name="remote"/> was not sent: another peer on
    /// that socket owns the 5-tuple (datagrams from there go to it), so the pair cannot work for this peer. Default:
    /// nothing (the check is lost, as on the network).
    /// </summary>
    void OnFiveTupleInUse(IPEndPoint local, IPEndPoint remote, TimeSpan now) { }
}

/// <summary>The path a transmit of an <see cref="IDatagramPeer"/> takes.</summary>
public enum TransmitKind
{
    /// <summary>A UDP datagram from the bound socket of the local endpoint.</summary>
    Udp,
    /// <summary>One RFC 4571 frame on the ICE-TCP connection between the two endpoints (RFC 6544).</summary>
    IceTcp,
    /// <summary>
    /// Bytes for the TCP or TLS connection to a TURN server (RFC 8656 section 3.1), written as they are (they are
    /// already framed: STUN, or ChannelData padded to four bytes); opened by the driver on the first one.
    /// </summary>
    TurnStream,
}
