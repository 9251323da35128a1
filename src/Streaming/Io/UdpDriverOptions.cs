namespace Transport.Streaming.Io;

/// <summary>Options of the <see cref="UdpDriver"/>.</summary>
public sealed record UdpDriverOptions
{
    /// <summary>Largest datagram received or sent, in bytes. Default 2048 (WebRTC packets stay under 1500).</summary>
    public int MaxDatagramSize { get; init; } = 2048;

    /// <summary>
    /// Inputs queued per peer before new datagrams for that peer are dropped and counted (a slow peer never
    /// slows the others down and never grows memory without bound). Default 1024.
    /// </summary>
    public int InboxCapacity { get; init; } = 1024;

    /// <summary>The socket's kernel receive buffer (SO_RCVBUF) in bytes; 0 keeps the system default. Default 1 MiB.</summary>
    public int SocketReceiveBufferSize { get; init; } = 1 << 20;

    /// <summary>The socket's kernel send buffer (SO_SNDBUF) in bytes; 0 keeps the system default. Default 1 MiB.</summary>
    public int SocketSendBufferSize { get; init; } = 1 << 20;

    /// <summary>
    /// Each bound socket gets a receive thread of its own (blocking receives, no thread-pool hand-off before
    /// routing). Default true; set false for a driver with very many sockets, whose receives then run as async
    /// loops on the thread pool.
    /// </summary>
    public bool DedicatedReceiveThreads { get; init; } = true;

    /// <summary>
    /// Lets an idle peer that declares <see cref="IDatagramPeer.RunsInline"/> handle a STUN datagram or its timer
    /// directly on the driver's receive or deadline thread instead of through the thread pool. Default true: the
    /// keepalive and consent traffic of idle connections then costs no thread wake-ups.
    /// </summary>
    public bool InlineProcessing { get; init; } = true;

    /// <summary>
    /// On 64-bit Linux, datagrams go out in batches (<c>sendmmsg</c>; a run of equal-sized datagrams to one address as
    /// one UDP GSO send) at the end of each run of a peer or burst of the driver's threads, and come in with
    /// <c>recvmmsg</c> and UDP GRO (a run of segments from one sender in one buffer). Default true; false (and other
    /// systems) uses one <see cref="System.Net.Sockets.Socket"/> call per datagram. GSO switches itself off for a
    /// socket whose path refuses it, and the datagrams go out one by one.
    /// </summary>
    public bool BatchedIo { get; init; } = true;

    /// <summary>
    /// Sockets serving each bound address and port: a group bound with <c>SO_REUSEPORT</c> (Linux), each with a receive
    /// thread and a deadline thread of its own; the kernel spreads the remote 5-tuples over the group by its hash, and a
    /// connection lives on the member its datagrams arrive on (its timer and its sends follow it there), so connections
    /// are served on as many cores as there are members and share no lock on the hot path (routes are one lock-free
    /// read). Default 1: one socket and one receive thread per address, which is what a client, a test or a small
    /// server wants (a member costs two threads and kernel buffers); a server with many connections sets it to
    /// <see cref="Environment.ProcessorCount"/> (docs/driver.md: measured 1 against 2 on 2 cores). Other systems use 1.
    /// </summary>
    public int ReceiveSockets { get; init; } = 1;

    /// <summary>ICE-TCP (RFC 6544) listening sockets and their bounds; see <see cref="IceTcpOptions"/>.</summary>
    public IceTcpOptions IceTcp { get; init; } = new();

    /// <summary>TCP and TLS connections to TURN servers (<c>turn:...?transport=tcp</c>, <c>turns:</c>); see <see cref="TurnTcpOptions"/>.</summary>
    public TurnTcpOptions TurnTcp { get; init; } = new();

    /// <summary>
    /// Deadlines that are already due are handled at once, at most this many times in a row, before the driver re-arms the timer. Default 64.
    /// </summary>
    public int MaxImmediateTimeouts { get; init; } = 64;
}

/// <summary>
/// ICE-TCP (RFC 6544) on the <see cref="UdpDriver"/>: a listening TCP socket next to each bound UDP socket, whose
/// accepted connections carry RFC 4571 frames (2-byte length) to the peer whose ICE username fragment the first
/// frame's STUN Binding request names. Every resource is bounded: connections per remote address and in all, the
/// time a connection may take before the peer answers on it (slow loris), the frame size, and the bytes queued to
/// send on a slow connection.
/// </summary>
public sealed record IceTcpOptions
{
    /// <summary>Listen for ICE-TCP connections. Default true; peer connections then signal passive TCP host candidates.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>The TCP port; null (default) takes the UDP socket's port number (a port already taken is skipped and logged).</summary>
    public int? Port { get; init; }

    /// <summary>Connections open at once over all listeners; more are refused (closed at accept, counted). Default 1024.</summary>
    public int MaxConnections { get; init; } = 1024;

    /// <summary>Connections open at once from one remote IP address; more are refused (counted). Default 16.</summary>
    public int MaxConnectionsPerAddress { get; init; } = 16;

    /// <summary>
    /// How long an accepted connection may stay before its peer answered on it (an authenticated check was answered):
    /// a connection that sends nothing, an incomplete frame, or only checks nobody can authenticate is closed then
    /// (counted as slow). Default 10 s.
    /// </summary>
    public TimeSpan FirstFrameTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Bytes queued to send on one connection above which media (RTP/RTCP) frames are dropped (counted); the socket
    /// is slower than the stream. Default 256 KiB.
    /// </summary>
    public int SendQueueBytes { get; init; } = 256 * 1024;

    /// <summary>
    /// Bytes queued above which every frame, DTLS and STUN included, is dropped (counted): to DTLS and SCTP that is a
    /// loss, which SCTP's retransmission and congestion control answer as on UDP (it slows down); nothing grows
    /// without bound. Default 1 MiB.
    /// </summary>
    public int MaxSendQueueBytes { get; init; } = 1024 * 1024;
}
