using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Transport.Ice.Turn;

namespace Transport.Streaming.Io;

/// <summary>
/// One TCP connection (TLS for <c>turns:</c>) from a peer to a TURN server: opened on the peer's first transmit to it,
/// then a read loop (<see cref="PipeReader"/>, frames split with <see cref="TurnStreamFraming"/>) into the peer's
/// actor and a send loop (<see cref="PipeWriter"/>) draining a queue bounded in bytes. Transmits made while it opens
/// wait in that queue. It closes once, with a reason the peer is told.
/// </summary>
internal sealed class TurnStreamConnection
{
    private readonly UdpDriver _driver;
    private readonly TurnServerConfig? _config;
    private readonly Channel<(byte[] Buffer, int Length)> _sendQueue =
        Channel.CreateUnbounded<(byte[], int)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _closed = new();
    private Socket? _socket;
    private long _queuedBytes;
    private int _closing;
    private string? _refusal;

    public TurnStreamConnection(UdpDriver driver, PeerActor actor, IPEndPoint local, IPEndPoint server, TurnServerConfig? config)
    {
        _driver = driver;
        Actor = actor;
        Local = local;
        Server = server;
        _config = config;
    }

    public PeerActor Actor { get; }
    /// <summary>The peer's host address the transmits came from (the connection's own port is the system's choice).</summary>
    public IPEndPoint Local { get; }
    public IPEndPoint Server { get; }
    private bool Tls => _config is { Secure: true };

    public void Start() => _ = Task.Run(RunAsync);

    /// <summary>Queues one frame (from the peer's thread); past the bound it is dropped and counted.</summary>
    public void Send(ReadOnlySpan<byte> frame)
    {
        if (Volatile.Read(ref _closing) != 0 || frame.IsEmpty) { Interlocked.Increment(ref _driver.Counters._turnTcpDroppedClosed); return; }
        if (Interlocked.Read(ref _queuedBytes) + frame.Length > _driver.Options.TurnTcp.MaxSendQueueBytes)
        {
            Interlocked.Increment(ref _driver.Counters._turnTcpDroppedQueueFull);
            return;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(frame.Length);
        frame.CopyTo(buffer);
        Interlocked.Add(ref _queuedBytes, frame.Length);
        if (!_sendQueue.Writer.TryWrite((buffer, frame.Length)))
        {
            Interlocked.Add(ref _queuedBytes, -frame.Length);
            ArrayPool<byte>.Shared.Return(buffer);
            Interlocked.Increment(ref _driver.Counters._turnTcpDroppedClosed);
        }
    }

    private async Task RunAsync()
    {
        var reason = "the server closed the connection";
        Stream? stream = null;
        try
        {
            (stream, var error) = await OpenAsync().ConfigureAwait(false);
            if (stream is null)
            {
                reason = error!;
                Interlocked.Increment(ref _driver.Counters._turnTcpConnectFailed);
                return;
            }
            Interlocked.Increment(ref _driver.Counters._turnTcpOpened);
            var send = SendLoopAsync(stream);
            reason = await ReadLoopAsync(stream).ConfigureAwait(false);
            Close(reason);
            await send.ConfigureAwait(false);
        }
        finally
        {
            Close(reason);
            if (stream is not null)
            {
                try { await stream.DisposeAsync().ConfigureAwait(false); }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or AuthenticationException) { }
            }
            while (_sendQueue.Reader.TryRead(out var item)) ArrayPool<byte>.Shared.Return(item.Buffer);
        }
    }

    // TCP connect and, for turns:, the TLS handshake, within ConnectTimeout: the stream, or null and why not.
    private async Task<(Stream? Stream, string? Error)> OpenAsync()
    {
        var options = _driver.Options.TurnTcp;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_closed.Token, _driver.Stopping);
        timeout.CancelAfter(options.ConnectTimeout);
        var socket = new Socket(Server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket = socket;
        if (Volatile.Read(ref _closing) != 0) { socket.Dispose(); return (null, "closed before it opened"); }
        var what = Tls ? "TLS" : "TCP";
        try
        {
            if (!Local.Address.Equals(IPAddress.Any) && !Local.Address.Equals(IPAddress.IPv6Any) && Local.AddressFamily == Server.AddressFamily)
                socket.Bind(new IPEndPoint(Local.Address, 0));
            await socket.ConnectAsync(Server, timeout.Token).ConfigureAwait(false);
            var network = new NetworkStream(socket, ownsSocket: true);
            if (!Tls) return (network, null);
            var ssl = new SslStream(network, leaveInnerStreamOpen: false);
            try
            {
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = _config!.TlsServerName,
                    RemoteCertificateValidationCallback = Validate,
                    EnabledSslProtocols = options.Tls.EnabledProtocols,
                }, timeout.Token).ConfigureAwait(false);
            }
            catch
            {
                await ssl.DisposeAsync().ConfigureAwait(false);
                throw;
            }
            return (ssl, null);
        }
        catch (AuthenticationException e)
        {
            socket.Dispose();
            if (_refusal is not null)
            {
                Interlocked.Increment(ref _driver.Counters._turnTlsRefused);
                return (null, $"TLS to {Server}: the server's certificate was refused ({_refusal})");
            }
            return (null, $"TLS to {Server}: the handshake failed: {e.Message}");
        }
        catch (OperationCanceledException)
        {
            socket.Dispose();
            return (null, Volatile.Read(ref _closing) != 0 || _driver.Stopping.IsCancellationRequested
                ? "closed before it opened"
                : $"{what} to {Server}: not open within {options.ConnectTimeout.TotalSeconds:0.#} s");
        }
        catch (SocketException e)
        {
            socket.Dispose();
            return (null, $"TCP to {Server}: {e.SocketErrorCode}");
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            socket.Dispose();
            return (null, $"{what} to {Server}: {e.Message}");
        }
    }

    // The certificate check of TurnTlsOptions; what made it fail is kept for the reason the peer is given.
    private bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        var tls = _driver.Options.TurnTcp.Tls;
        if (tls.RemoteCertificateValidation is { } callback)
        {
            // The application's code: what it throws refuses the certificate with the reason, it does not escape.
            try
            {
                if (callback(sender, certificate, chain, errors)) return true;
                _refusal = $"the validation callback said no; {errors}";
            }
#pragma warning disable CA1031 // the application's callback: any exception is a refusal with its reason
            catch (Exception e) { _refusal = $"the validation callback threw {e.GetType().Name}: {e.Message}"; }
#pragma warning restore CA1031
            return false;
        }
        if (certificate is null) { _refusal = "no certificate"; return false; }
        if (tls.PinnedCertificateSha256 is { Count: > 0 } pins)
        {
            var digest = Convert.ToHexString(SHA256.HashData(certificate.GetRawCertData()));
            foreach (var pin in pins)
                if (string.Equals(pin.Replace(":", "", StringComparison.Ordinal), digest, StringComparison.OrdinalIgnoreCase)) return true;
            if (tls.TrustedRoots is null) { _refusal = $"SHA-256 {digest} is not pinned"; return false; }
        }
        if (tls.TrustedRoots is { } roots)
        {
            if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
            {
                _refusal = $"{errors}: not issued to '{_config?.TlsServerName}'";
                return false;
            }
            using var custom = new X509Chain();
            custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            custom.ChainPolicy.CustomTrustStore.AddRange(roots);
            custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            if (chain is not null)
                foreach (var element in chain.ChainElements)
                    if (element.Certificate is { } c && !ReferenceEquals(c, certificate)) custom.ChainPolicy.ExtraStore.Add(c);
            using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            if (custom.Build(leaf)) return true;
            _refusal = "not issued by a trusted root: " + ChainStatus(custom);
            return false;
        }
        if (errors == SslPolicyErrors.None) return true;
        _refusal = (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0
            ? $"{errors}: not issued to '{_config?.TlsServerName}'"
            : $"{errors}: {ChainStatus(chain)}";
        return false;
    }

    private static string ChainStatus(X509Chain? chain)
    {
        if (chain is null || chain.ChainStatus.Length == 0) return "no chain status";
        return string.Join(", ", chain.ChainStatus.Select(s => s.Status.ToString()));
    }

    // Frames to the peer until the stream ends or breaks: the reason it ended.
    private async Task<string> ReadLoopAsync(Stream stream)
    {
        var reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 8192, leaveOpen: true));
        var token = _closed.Token;
        var max = _driver.Options.MaxDatagramSize;
        try
        {
            while (!token.IsCancellationRequested)
            {
                var result = await reader.ReadAsync(token).ConfigureAwait(false);
                var buffer = result.Buffer;
                while (true)
                {
                    var status = TurnStreamFraming.TryReadFrame(ref buffer, out var frame);
                    if (status == TurnFrameStatus.NeedMoreData) break;
                    if (status == TurnFrameStatus.Invalid)
                    {
                        Interlocked.Increment(ref _driver.Counters._turnTcpClosedInvalid);
                        reader.AdvanceTo(buffer.Start, buffer.End);
                        return "the server sent bytes that are neither STUN nor ChannelData";
                    }
                    if (frame.Length > max) { Interlocked.Increment(ref _driver.Counters._turnTcpDroppedOversize); continue; }
                    Deliver(frame);
                }
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted) return "the server closed the connection";
            }
            return "closed";
        }
        catch (OperationCanceledException) { return "closed"; }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or AuthenticationException)
        {
            return e.InnerException is SocketException s ? $"the connection broke: {s.SocketErrorCode}" : $"the connection broke: {e.Message}";
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    private void Deliver(in ReadOnlySequence<byte> frame)
    {
        var length = (int)frame.Length;
        var buffer = _driver.Buffers.Rent();
        frame.CopyTo(buffer);
        Interlocked.Increment(ref _driver.Counters._turnTcpFramesReceived);
        // Classified once here (RFC 7983), the class handed down: STUN may run inline on this thread; ChannelData (data)
        // goes through the inbox.
        if (!Actor.DeliverTurnFrame(this, buffer, length, DatagramClassifier.Classify(buffer[0]), out var taken))
            Interlocked.Increment(ref _driver.Counters._droppedInboxFull);
        if (!taken) _driver.Buffers.Return(buffer);
    }

    private async Task SendLoopAsync(Stream stream)
    {
        var writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
        var reader = _sendQueue.Reader;
        var token = _closed.Token;
        try
        {
            while (await reader.WaitToReadAsync(token).ConfigureAwait(false))
            {
                // A batch in one write (one TLS record per flush at most 16 KiB each); the queue fills while the flush waits.
                for (var i = 0; i < 256 && reader.TryRead(out var item); i++)
                {
                    writer.Write(item.Buffer.AsSpan(0, item.Length));
                    Interlocked.Add(ref _queuedBytes, -item.Length);
                    ArrayPool<byte>.Shared.Return(item.Buffer);
                    Interlocked.Increment(ref _driver.Counters._turnTcpFramesSent);
                }
                var flush = await writer.FlushAsync(token).ConfigureAwait(false);
                if (flush.IsCompleted || flush.IsCanceled) break;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException
            or ChannelClosedException or AuthenticationException)
        { }
        finally
        {
            try { await writer.CompleteAsync().ConfigureAwait(false); }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException
                or AuthenticationException)
            { }
            Close("the connection broke while sending");
        }
    }

    /// <summary>Closes the connection (idempotent, any thread): both loops end; the peer is told why.</summary>
    public void Close(string reason)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0) return;
        _sendQueue.Writer.TryComplete();
        try { _closed.Cancel(); }
        catch (ObjectDisposedException) { }
        if (_socket is { } socket)
        {
            try { socket.Shutdown(SocketShutdown.Both); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            socket.Dispose();
        }
        _driver.OnTurnConnectionClosed(this, reason);
    }
}
