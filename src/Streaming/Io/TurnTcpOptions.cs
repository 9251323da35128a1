using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Transport.Streaming.Io;

/// <summary>
/// The <see cref="UdpDriver"/>'s connections to TURN servers over TCP and TLS (RFC 8656 section 3.1): one connection
/// per allocation, opened when the ICE agent first sends to the server, closed with the allocation. Everything is
/// bounded: the time to connect (and finish the TLS handshake), the bytes queued to send, the connections in all.
/// </summary>
public sealed record TurnTcpOptions
{
    /// <summary>Time to open the connection, TLS handshake included; past it the connection is given up (the agent told). Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Bytes queued on one connection (while it opens, or while the socket is slower than the sender) above which
    /// further transmits are dropped and counted (<see cref="UdpDriverCounters.TurnTcpDroppedQueueFull"/>): to SCTP a
    /// loss, which it answers by slowing down; nothing grows without bound. Default 1 MiB.
    /// </summary>
    public int MaxSendQueueBytes { get; init; } = 1024 * 1024;

    /// <summary>Connections to TURN servers open at once over all peers; past it transmits that would open one are dropped (counted). Default 4096.</summary>
    public int MaxConnections { get; init; } = 4096;

    /// <summary>Certificate checks of <c>turns:</c> servers.</summary>
    public TurnTlsOptions Tls { get; init; } = new();
}

/// <summary>
/// How the certificate of a <c>turns:</c> server is checked. By default as any TLS client does: the chain to a root the
/// system trusts, and the name (<see cref="Transport.Ice.Turn.TurnServerConfig.TlsServerName"/>, the URI's host). Set
/// one of the options to trust otherwise; a refused certificate closes the connection and the relay fails with the
/// reason (the <see cref="System.Net.Security.SslPolicyErrors"/> and chain status).
/// </summary>
public sealed record TurnTlsOptions
{
    /// <summary>
    /// Decides alone when set: the certificate is accepted when it returns true, whatever the other options say. The
    /// sender is the <see cref="SslStream"/>.
    /// </summary>
    public RemoteCertificateValidationCallback? RemoteCertificateValidation { get; init; }

    /// <summary>
    /// Roots trusted instead of the system's (a private CA, or a self-signed server certificate itself): the chain must
    /// end at one of them, and the name must match. Null: the system's roots.
    /// </summary>
    public X509Certificate2Collection? TrustedRoots { get; init; }

    /// <summary>
    /// SHA-256 digests (hexadecimal, case and ':' separators ignored) of server certificates accepted as they are
    /// (pinning): a certificate whose DER encoding hashes to one of them is accepted without chain or name check.
    /// </summary>
    public IReadOnlyCollection<string>? PinnedCertificateSha256 { get; init; }

    /// <summary>TLS protocols offered; default <see cref="System.Security.Authentication.SslProtocols.None"/> (the system's choice: TLS 1.2 and 1.3).</summary>
    public System.Security.Authentication.SslProtocols EnabledProtocols { get; init; } = System.Security.Authentication.SslProtocols.None;
}
