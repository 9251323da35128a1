using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Transport.Dtls;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming;
using Transport.Streaming.Io;
using Transport.Streaming.Jsep;
using Transport.Streaming.WebRtc;

namespace Transport.Samples.EchoServer;

/// <summary>What the client saw, in arrival order.</summary>
/// <param name="Kind">"data", "control" or "close".</param>
/// <param name="Text">The data as text, the control JSON, or the close state and reason.</param>
/// <param name="Length">The message length in bytes.</param>
/// <param name="At">When it arrived (the client's stopwatch).</param>
public sealed record ClientObservation(string Kind, string Text, int Length, TimeSpan At);

/// <summary>
/// An in-process WebRTC client of a stream session, over real UDP on its own driver: it offers with a
/// <c>control</c> and a <c>data</c> channel, answers the server's RTT pings, and records everything it receives in
/// order. The self-test and the tests use it; <see cref="WhipAsync"/> is its WHIP signaling. Signalled over WHIP and
/// with TURN servers (<see cref="WebRtcStreamClientOptions"/>), it restarts ICE by itself when its direct path dies,
/// onto its relayed candidates (<see cref="WhipIceRestartOptions"/>).
/// </summary>
public sealed class WebRtcStreamClient : IAsyncDisposable
{
    private readonly UdpDriver _driver;
    private readonly PeerConnection _pc;
    private readonly DtlsCertificate _certificate;
    private readonly WebRtcStreamClientOptions _options;
    private readonly IceRestartBudget _restartBudget;
    private readonly Channel<ClientObservation> _observations = Channel.CreateUnbounded<ClientObservation>();
    private readonly TaskCompletionSource<ConnectionStateChanged> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private Task _events = Task.CompletedTask;
    private int _vanished;

    private WebRtcStreamClient(UdpDriver driver, PeerConnection pc, DtlsCertificate certificate, WebRtcStreamClientOptions options)
    {
        _driver = driver;
        _pc = pc;
        _certificate = certificate;
        _options = options;
        _restartBudget = new IceRestartBudget(options.IceRestart.MaxPerMinute, TimeSpan.FromMinutes(1));
    }

    /// <summary>The client's peer connection.</summary>
    public PeerConnection PeerConnection => _pc;

    /// <summary>The control channel (JSON).</summary>
    public DataChannel Control { get; private set; } = null!;

    /// <summary>The data channel.</summary>
    public DataChannel Data { get; private set; } = null!;

    /// <summary>From the offer created to both channels open.</summary>
    public TimeSpan SetupTime { get; private set; }

    /// <summary>The WHIP resource (Location) when signaled with <see cref="WhipAsync"/>.</summary>
    public Uri? Resource { get; private set; }

    /// <summary>Everything received, in order (pings answered and left out).</summary>
    public ChannelReader<ClientObservation> Observations => _observations.Reader;

    /// <summary>Completes when the connection closed or failed, with that change.</summary>
    public Task<ConnectionStateChanged> Closed => _closed.Task;

    /// <summary>The client's stopwatch (the clock of <see cref="ClientObservation.At"/>).</summary>
    public TimeSpan Now => _clock.Elapsed;

    /// <summary>Pings answered with a pong.</summary>
    public int PingsAnswered => Volatile.Read(ref _pings);
    private int _pings;

    /// <summary>
    /// Connects: binds 127.0.0.1:0, offers, hands the offer to <paramref name="signal"/> (which returns the answer),
    /// and waits until both channels are open.
    /// </summary>
    public static async Task<WebRtcStreamClient> ConnectAsync(Func<WebRtcStreamClient, string, CancellationToken, Task<string>> signal,
        CancellationToken cancellationToken = default) =>
        await ConnectAsync(signal, withMedia: false, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// As <see cref="ConnectAsync(Func{WebRtcStreamClient, string, CancellationToken, Task{string}}, CancellationToken)"/>, with an audio (Opus) and a video
    /// (VP8) track when <paramref name="withMedia"/>.
    /// </summary>
    public static async Task<WebRtcStreamClient> ConnectAsync(
        Func<WebRtcStreamClient, string, CancellationToken, Task<string>> signal, bool withMedia, CancellationToken cancellationToken = default) =>
        await ConnectAsync(signal, new WebRtcStreamClientOptions { WithMedia = withMedia }, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// As <see cref="ConnectAsync(Func{WebRtcStreamClient, string, CancellationToken, Task{string}}, CancellationToken)"/>
    /// with <paramref name="options"/>: where the socket is, TURN servers, media, and the automatic ICE restart over
    /// WHIP when the direct path dies (<see cref="WhipIceRestartOptions"/>; on by default, it acts only with TURN servers).
    /// </summary>
    public static async Task<WebRtcStreamClient> ConnectAsync(
        Func<WebRtcStreamClient, string, CancellationToken, Task<string>> signal, WebRtcStreamClientOptions options,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(signal);
        ArgumentNullException.ThrowIfNull(options);
        var withMedia = options.WithMedia;
        UdpDriver driver;
        if (options.CreateDriver is { } create) driver = create();
        else
        {
            driver = new UdpDriver();
            try { driver.Bind(options.Bind); }
            catch { await driver.DisposeAsync().ConfigureAwait(false); throw; }
        }
        var now = DateTimeOffset.UtcNow;
        var certificate = DtlsCertificate.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
        WebRtcStreamClient? client = null;
        try
        {
            var pc = new PeerConnection(driver, new PeerConnectionOptions
            {
                Certificate = certificate,
                // The connection asks for a restart (IceRestartNeeded) when its direct pair dies and relays are configured.
                IceRestartOnDirectPathLoss = options.IceRestart.Automatic,
                Ice = new IceAgentOptions { Role = IceRole.Controlling, TurnServers = options.TurnServers },
            });
            client = new WebRtcStreamClient(driver, pc, certificate, options);
            var started = client._clock.Elapsed;
            if (withMedia)
            {
                client.Audio = await pc.AddTrackAsync(MediaKind.Audio, null, cancellationToken).ConfigureAwait(false);
                client.Video = await pc.AddTrackAsync(MediaKind.Video, new LocalTrackOptions { Codecs = [CodecSpec.Vp8] },
                    cancellationToken).ConfigureAwait(false);
                client._media = Task.Run(client.MediaLoopAsync, CancellationToken.None);
            }
            var offer = await pc.CreateOfferAsync(cancellationToken).ConfigureAwait(false);
            client._lastOffer = offer;
            var answer = await signal(client, offer, cancellationToken).ConfigureAwait(false);
            await pc.SetRemoteDescriptionAsync(answer, cancellationToken).ConfigureAwait(false);
            var control = pc.CreateDataChannelAsync("control", null, cancellationToken);
            var data = pc.CreateDataChannelAsync("data", null, cancellationToken);
            client.Control = await control.ConfigureAwait(false);
            client.Data = await data.ConfigureAwait(false);
            client.SetupTime = client._clock.Elapsed - started;
            client._events = Task.Run(client.EventLoopAsync, CancellationToken.None);
            return client;
        }
        catch
        {
            if (client is not null) await client.DisposeAsync().ConfigureAwait(false);
            else { await driver.DisposeAsync().ConfigureAwait(false); certificate.Dispose(); }
            throw;
        }
    }

    /// <summary>WHIP signaling (RFC 9725 section 4.2): POST the offer as application/sdp, expect 201, an answer and a Location.</summary>
    /// <param name="bearerToken">Sent as <c>Authorization: Bearer</c> on the POST and on every later request to the
    /// resource (RFC 9725 section 4.5), when not null.</param>
    public static Func<WebRtcStreamClient, string, CancellationToken, Task<string>> WhipAsync(HttpClient http, Uri endpoint, string? bearerToken = null) =>
        async (client, offer, ct) =>
    {
        using var content = new StringContent(offer, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/sdp");
        using var post = new HttpRequestMessage(HttpMethod.Post, endpoint) { Content = content };
        client._whipToken = bearerToken;
        client._whipHttp = http;
        client.Authorize(post);
        using var response = await http.SendAsync(post, ct).ConfigureAwait(false);
        var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Created)
            throw new WhipRefusedException(response.StatusCode, body);
        client.Resource = response.Headers.Location is { } l ? new Uri(endpoint, l) : throw new InvalidOperationException("201 without a Location");
        client._whipAnswer = body;
        client.WhipEntityTag = response.Headers.ETag?.ToString();
        client.WhipIceServers = response.Headers.TryGetValues("Link", out var links)
            ? links.Where(l => l.Contains("rel=\"ice-server\"", StringComparison.Ordinal)).ToList() : [];
        return body;
    };

    private string? _whipToken;
    private HttpClient? _whipHttp;

    private void Authorize(HttpRequestMessage request)
    {
        if (_whipToken is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _whipToken);
    }

    /// <summary>The ICE servers the WHIP endpoint offered (its <c>Link: ...; rel="ice-server"</c> header values, RFC 9725 section 4.4).</summary>
    public IReadOnlyList<string> WhipIceServers { get; private set; } = [];

    private string? _whipAnswer;

    /// <summary>The WHIP resource's entity tag (ETag of the POST, then of the last ICE restart), or null.</summary>
    public string? WhipEntityTag { get; private set; }
    private TaskCompletionSource<IceRestartCompleted>? _restart;

    /// <summary>
    /// Restarts ICE over WHIP (RFC 9725 section 4.3.2), as a client does when its network changed: an offer with new
    /// credentials, whose credentials and candidates go as a fragment in a <c>PATCH</c> with <c>If-Match: *</c>; the
    /// server's 200 fragment (its new credentials and candidates) becomes the answer. Returns when the answer is
    /// applied; the task it gives completes when the new generation's pair is selected. After a refusal or a failed
    /// request the restart offer stays pending (an offer that restarted ICE cannot be rolled back): the next call
    /// sends the same credentials again.
    /// </summary>
    /// <exception cref="InvalidOperationException">The client was not signalled over WHIP, or another restart is running.</exception>
    /// <exception cref="WhipIceRestartRefusedException">The server did not answer 200 with a fragment carrying its credentials.</exception>
    public async Task<Task<IceRestartCompleted>> RestartIceOverWhipAsync(HttpClient http, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(http);
        if (Resource is null || _whipAnswer is null) throw new InvalidOperationException("not signalled over WHIP");
        if (Interlocked.CompareExchange(ref _restarting, 1, 0) != 0) throw new InvalidOperationException("another ICE restart is running");
        try { return await RestartCoreAsync(http, cancellationToken).ConfigureAwait(false); }
        finally { Volatile.Write(ref _restarting, 0); }
    }

    private int _restarting;
    private string? _pendingRestartOffer;

    private async Task<Task<IceRestartCompleted>> RestartCoreAsync(HttpClient http, CancellationToken cancellationToken)
    {
        var offer = _pendingRestartOffer;
        TaskCompletionSource<IceRestartCompleted> done;
        if (offer is not null && Volatile.Read(ref _restart) is { } waiting) done = waiting;
        else
        {
            done = new TaskCompletionSource<IceRestartCompleted>(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _restart, done);
            offer = await _pc.CreateOfferAsync(new OfferOptions { IceRestart = true }, cancellationToken).ConfigureAwait(false);
            _pendingRestartOffer = offer;
        }
        using var patch = new HttpRequestMessage(HttpMethod.Patch, Resource)
        {
            Content = new StringContent(IceSdpFragment.FromDescription(offer), Encoding.UTF8)
        };
        Authorize(patch);
        patch.Content.Headers.ContentType = new MediaTypeHeaderValue("application/trickle-ice-sdpfrag");
        patch.Headers.TryAddWithoutValidation("If-Match", "*");
        using var response = await http.SendAsync(patch, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        var fragment = IceSdpFragment.Parse(body);
        if (response.StatusCode != HttpStatusCode.OK || fragment is not { Ufrag: { } ufrag, Password: { } password })
            throw new WhipIceRestartRefusedException(response.StatusCode, body);
        var answer = IceSdpFragment.WithCredentials(_whipAnswer!, ufrag, password);
        await _pc.SetRemoteDescriptionAsync(answer, cancellationToken).ConfigureAwait(false);
        _pendingRestartOffer = null;
        foreach (var candidate in fragment.Candidates) await _pc.AddRemoteCandidateAsync(candidate, cancellationToken).ConfigureAwait(false);
        if (fragment.EndOfCandidates) await _pc.AddRemoteCandidateAsync(null, cancellationToken).ConfigureAwait(false);
        _whipAnswer = answer;
        _lastOffer = offer;
        WhipEntityTag = response.Headers.ETag?.ToString() ?? WhipEntityTag;
        return done.Task;
    }

    /// <summary>Each automatic ICE restart, as it ends (or is not sent), on the thread that ended it.</summary>
    public event Action<WhipIceRestartAttempt>? IceRestartAttempted;

    /// <summary>The automatic ICE restarts so far (the last 64), oldest first.</summary>
    public IReadOnlyList<WhipIceRestartAttempt> IceRestartAttempts => [.. _attempts];
    private readonly System.Collections.Concurrent.ConcurrentQueue<WhipIceRestartAttempt> _attempts = new();

    /// <summary>The ICE restarts that completed (a new generation's pair selected), the last 64, oldest first.</summary>
    public IReadOnlyList<IceRestartCompleted> IceRestartsCompleted => [.. _completed];
    private readonly System.Collections.Concurrent.ConcurrentQueue<IceRestartCompleted> _completed = new();

    /// <summary>Our candidates as gathered (host, then relayed ones as their allocations succeed), the first 64.</summary>
    public IReadOnlyList<IceCandidate> LocalCandidates => [.. _candidates];
    private readonly System.Collections.Concurrent.ConcurrentQueue<IceCandidate> _candidates = new();

    // The peer connection asked for an ICE restart (its direct pair died, relays are configured): sent over WHIP on
    // its own task (the event loop goes on reading), at most one at a time and MaxPerMinute a minute.
    private void OnRestartNeeded(IceRestartNeeded needed)
    {
        var at = _clock.Elapsed;
        if (!_options.IceRestart.Automatic) return;
        if (Resource is null || _whipAnswer is null || _whipHttp is not { } http) { Report(new(at, needed.Reason, WhipIceRestartOutcome.NoSignaling)); return; }
        if (Interlocked.CompareExchange(ref _restarting, 1, 0) != 0) { Report(new(at, needed.Reason, WhipIceRestartOutcome.Busy)); return; }
        bool allowed;
        lock (_restartBudget) allowed = _restartBudget.TryTake(at);
        if (!allowed)
        {
            Volatile.Write(ref _restarting, 0);
            Report(new(at, needed.Reason, WhipIceRestartOutcome.OverBudget));
            return;
        }
        _ = Task.Run(async () =>
        {
            try
            {
                using var timeout = new CancellationTokenSource(_options.IceRestart.Timeout);
                await RestartCoreAsync(http, timeout.Token).ConfigureAwait(false);
                Report(new(at, needed.Reason, WhipIceRestartOutcome.Restarted, _clock.Elapsed - at));
            }
            catch (WhipIceRestartRefusedException e) { Report(new(at, needed.Reason, WhipIceRestartOutcome.Refused, Error: e)); }
            // Never escapes: a request that failed or timed out, a connection that closed meanwhile, a bad answer.
            catch (Exception e) { Report(new(at, needed.Reason, WhipIceRestartOutcome.Failed, Error: e)); }
            finally { Volatile.Write(ref _restarting, 0); }
        }, CancellationToken.None);
    }

    // Candidates gathered after the offer (a relay allocated after it, a relay allocated again after a loss) go to the
    // server as trickle PATCHes of the resource (RFC 9725 section 4.3.1: If-Match names the ICE session), one at a time.
    private readonly SemaphoreSlim _trickleGate = new(1, 1);
    private string? _lastOffer;
    private int _trickled, _trickleFailures;

    /// <summary>Candidates sent to the WHIP server by a trickle PATCH after the offer (answered 204).</summary>
    public int CandidatesTrickled => Volatile.Read(ref _trickled);

    /// <summary>Trickle PATCHes not answered 204 (412 after a restart changed the ICE session, a failed request).</summary>
    public int TrickleFailures => Volatile.Read(ref _trickleFailures);

    private void OnCandidateGathered(IceCandidate candidate)
    {
        if (!_options.TrickleOverWhip || Resource is null || _whipHttp is not { } http || _lastOffer is not { } offer) return;
        var line = candidate.ToSdp();
        if (offer.Contains(line, StringComparison.Ordinal)) return;   // in the offer already
        _ = Task.Run(() => TrickleAsync(http, offer, line), CancellationToken.None);
    }

    private async Task TrickleAsync(HttpClient http, string offer, string candidate)
    {
        await _trickleGate.WaitAsync().ConfigureAwait(false);
        try
        {
            // The offer's credentials, m= line and mid (RFC 8840 section 4.4), with only the new candidate.
            var fragment = new StringBuilder();
            foreach (var line in IceSdpFragment.FromDescription(offer).Split("\r\n", StringSplitOptions.RemoveEmptyEntries))
                if (!line.StartsWith("a=candidate:", StringComparison.Ordinal) && line != "a=end-of-candidates") fragment.Append(line).Append("\r\n");
            fragment.Append("a=").Append(candidate).Append("\r\n");
            using var patch = new HttpRequestMessage(HttpMethod.Patch, Resource) { Content = new StringContent(fragment.ToString(), Encoding.UTF8) };
            Authorize(patch);
            patch.Content.Headers.ContentType = new MediaTypeHeaderValue("application/trickle-ice-sdpfrag");
            if (WhipEntityTag is { } tag) patch.Headers.TryAddWithoutValidation("If-Match", tag);
            using var timeout = new CancellationTokenSource(_options.IceRestart.Timeout);
            using var response = await http.SendAsync(patch, timeout.Token).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.NoContent) Interlocked.Increment(ref _trickled);
            else Interlocked.Increment(ref _trickleFailures);
        }
        // Never escapes: a failed or timed-out request, a client disposed meanwhile.
        catch (Exception) { Interlocked.Increment(ref _trickleFailures); }
        finally { _trickleGate.Release(); }
    }

    private void Report(WhipIceRestartAttempt attempt)
    {
        _attempts.Enqueue(attempt);
        while (_attempts.Count > 64) _attempts.TryDequeue(out _);
        if (_options.Logger is { } log)
        {
            if (attempt.Outcome == WhipIceRestartOutcome.Restarted)
                log.LogInformation("ICE restart over WHIP ({Reason}): answered and applied in {Milliseconds:0.0} ms",
                    attempt.Reason, attempt.Took!.Value.TotalMilliseconds);
            else
                log.LogWarning("ICE restart over WHIP ({Reason}): {Outcome} {Error}", attempt.Reason, attempt.Outcome, attempt.Error?.Message);
        }
        IceRestartAttempted?.Invoke(attempt);
    }

    /// <summary>The server's graded-health notices (<c>health</c>, <c>lower_rate</c>, <c>restart_ice</c> JSON), in arrival order.</summary>
    public IReadOnlyCollection<string> HealthNotices => _healthNotices;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _healthNotices = new();

    private static bool IsHealthNotice(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("type", out var t) &&
                (t.ValueEquals("health") || t.ValueEquals("lower_rate") || t.ValueEquals("restart_ice"));
        }
        catch (JsonException) { return false; }
    }

    /// <summary>Our audio track (with media), else null.</summary>
    public LocalTrack? Audio { get; private set; }

    /// <summary>Our video track (with media), else null.</summary>
    public LocalTrack? Video { get; private set; }

    /// <summary>Complete media frames received, by track kind ("audio", "video").</summary>
    public long AudioFramesReceived => Interlocked.Read(ref _audioFrames);
    public long VideoFramesReceived => Interlocked.Read(ref _videoFrames);
    public long MediaBytesReceived => Interlocked.Read(ref _mediaBytes);
    private long _audioFrames, _videoFrames, _mediaBytes;
    private Task _media = Task.CompletedTask;

    /// <summary>Sends one encoded frame on <paramref name="track"/> with an RTP timestamp.</summary>
    public Task<MediaSendResult> SendFrameAsync(LocalTrack track, ReadOnlyMemory<byte> frame, uint rtpTimestamp,
        CancellationToken cancellationToken = default) =>
        _pc.SendFrameAsync(track, frame, rtpTimestamp, cancellationToken);

    private async Task MediaLoopAsync()
    {
        var readers = new List<Task>();
        await foreach (var track in _pc.RemoteTracks.ReadAllAsync().ConfigureAwait(false))
        {
            readers.Add(Task.Run(async () =>
            {
                await foreach (var frame in track.Frames.ReadAllAsync().ConfigureAwait(false))
                {
                    using (frame)
                    {
                        if (!frame.IsComplete) continue;
                        Interlocked.Add(ref _mediaBytes, frame.Length);
                        if (track.Kind == MediaKind.Audio) Interlocked.Increment(ref _audioFrames); else Interlocked.Increment(ref _videoFrames);
                    }
                }
            }));
        }
        await Task.WhenAll(readers).ConfigureAwait(false);
    }

    /// <summary>Sends text on the data channel.</summary>
    public Task SendTextAsync(string text, CancellationToken cancellationToken = default) => _pc.SendAsync(Data, text, cancellationToken);

    /// <summary>Sends bytes on the data channel.</summary>
    public Task SendBinaryAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        _pc.SendAsync(Data, data, binary: true, cancellationToken);

    /// <summary>Bytes queued on the data channel and not yet sent (for pacing a sender).</summary>
    public long DataBufferedAmount => Data.BufferedAmount;

    /// <summary>Takes the next observation, or fails after <paramref name="timeout"/>.</summary>
    public async Task<ClientObservation> NextAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try { return await _observations.Reader.ReadAsync(cts.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { throw new TimeoutException($"nothing arrived within {timeout.TotalSeconds:0.#} s"); }
        catch (ChannelClosedException) { throw new InvalidOperationException("the client's connection ended and everything was read"); }
    }

    /// <summary>Disappears without a word: the socket is closed before anything (ABORT, close_notify) can be sent.</summary>
    public async Task VanishAsync()
    {
        if (Interlocked.Exchange(ref _vanished, 1) != 0) return;
        await _driver.DisposeAsync().ConfigureAwait(false);
    }

    private async Task EventLoopAsync()
    {
        try
        {
            await foreach (var e in _pc.Events.ReadAllAsync().ConfigureAwait(false))
            {
                switch (e)
                {
                    case DataChannelMessageReceived m when m.Channel.Label == "control":
                        var json = Encoding.UTF8.GetString(m.Data);
                        if (TryPing(json, out var id))
                        {
                            Interlocked.Increment(ref _pings);
                            try { await _pc.SendAsync(Control, $"{{\"type\":\"pong\",\"id\":{id}}}").ConfigureAwait(false); }
                            catch (Exception ex) when (ex is TransportNotConnectedException or DataChannelNotOpenException or ObjectDisposedException) { }
                            break;
                        }
                        if (IsHealthNotice(json))
                        {
                            // The server's graded-health notices (health, lower_rate, restart_ice) are kept apart:
                            // they come whenever the session changes level, not in the stream's order.
                            _healthNotices.Enqueue(json);
                            break;
                        }
                        _observations.Writer.TryWrite(new("control", json, m.Data.Length, _clock.Elapsed));
                        break;
                    case DataChannelMessageReceived m:
                        _observations.Writer.TryWrite(new("data", m.IsBinary ? "" : Encoding.UTF8.GetString(m.Data), m.Data.Length, _clock.Elapsed));
                        break;
                    case IceRestartCompleted r:
                        _completed.Enqueue(r);
                        while (_completed.Count > 64) _completed.TryDequeue(out _);
                        Volatile.Read(ref _restart)?.TrySetResult(r);
                        break;
                    case IceRestartNeeded n:
                        OnRestartNeeded(n);
                        break;
                    case LocalCandidateGathered g:
                        if (_candidates.Count < 64) _candidates.Enqueue(g.Candidate);
                        OnCandidateGathered(g.Candidate);
                        break;
                    case ConnectionStateChanged { State: ConnectionState.Closed or ConnectionState.Failed } s:
                        _observations.Writer.TryWrite(new("close", $"{s.State}: {s.Reason}", 0, _clock.Elapsed));
                        _closed.TrySetResult(s);
                        break;
                }
            }
        }
        finally
        {
            _observations.Writer.TryComplete();
            _closed.TrySetResult(new ConnectionStateChanged(TimeSpan.Zero, _pc.State, _pc.State,
                _pc.Reason ?? new ConnectionReason(ConnectionLayer.Application, "events ended")));
        }
    }

    private static bool TryPing(string json, out long id)
    {
        id = 0;
        if (!json.Contains("\"ping\"", StringComparison.Ordinal)) return false;
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.TryGetProperty("type", out var t) && t.ValueEquals("ping") &&
                   doc.RootElement.TryGetProperty("id", out var i) && i.TryGetInt64(out id);
        }
        catch (JsonException) { return false; }
    }

    /// <summary>Closes (SCTP ABORT, DTLS close_notify) and releases the socket.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Volatile.Read(ref _vanished) == 0) await _pc.DisposeAsync().ConfigureAwait(false);
        await _driver.DisposeAsync().ConfigureAwait(false);
        if (Volatile.Read(ref _vanished) != 0)
        {
            try { await _pc.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false); }
            catch (Exception e) when (e is TimeoutException or ObjectDisposedException) { }
        }
        try { await Task.WhenAll(_events, _media).WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false); } catch (TimeoutException) { }
        _certificate.Dispose();
    }
}

/// <summary>The WHIP endpoint did not answer 201 Created.</summary>
public sealed class WhipRefusedException(HttpStatusCode status, string body) : Exception($"WHIP refused with {(int)status}: {body}")
{
    public HttpStatusCode Status { get; } = status;
    public string Body { get; } = body;
}
