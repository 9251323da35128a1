using System.Net;
using Microsoft.Extensions.Logging;
using Transport.Ice.Turn;
using Transport.Streaming.Io;

namespace Transport.Samples.EchoServer;

/// <summary>How a <see cref="WebRtcStreamClient"/> is made: its socket, its TURN servers, its ICE restarts.</summary>
public sealed record WebRtcStreamClientOptions
{
    /// <summary>An audio (Opus) and a video (VP8) track besides the channels. Default false.</summary>
    public bool WithMedia { get; init; }

    /// <summary>Where the client's UDP socket is bound. Default 127.0.0.1, any port.</summary>
    public IPEndPoint Bind { get; init; } = new(IPAddress.Loopback, 0);

    /// <summary>
    /// Makes the client's driver, bound (for example inside a network namespace: a socket stays in the namespace it
    /// was created in). Null (the default): a new <see cref="UdpDriver"/> bound on <see cref="Bind"/>.
    /// </summary>
    public Func<UdpDriver>? CreateDriver { get; init; }

    /// <summary>TURN servers of the client's ICE agent: relayed candidates besides the host one. Default none.</summary>
    public IReadOnlyList<TurnServerConfig> TurnServers { get; init; } = [];

    /// <summary>
    /// Candidates gathered after the offer (relayed ones, whose allocation takes a round trip or two to the TURN server,
    /// and a relay allocated again after a loss) are sent to the WHIP server as trickle PATCHes (RFC 9725 section
    /// 4.3.1). Default true.
    /// </summary>
    public bool TrickleOverWhip { get; init; } = true;

    /// <summary>ICE restarts over WHIP when the direct path dies. Default: automatic, at most 3 a minute.</summary>
    public WhipIceRestartOptions IceRestart { get; init; } = new();

    /// <summary>Where the client logs its ICE restarts (Information when done, Warning when refused, failed or skipped). Default none.</summary>
    public ILogger? Logger { get; init; }
}

/// <summary>
/// The client's ICE restart onto a relay: when its direct pair dies (nothing received: Disconnected) and TURN servers
/// are configured, the peer connection asks for a restart (<c>PeerConnectionOptions.IceRestartOnDirectPathLoss</c>,
/// <c>IceRestartNeeded</c>) and the client, signalled over WHIP, sends it as a <c>PATCH</c> of its resource
/// (RFC 9725 section 4.3.2: <c>If-Match: *</c>, an <c>application/trickle-ice-sdpfrag</c> body with new
/// ice-ufrag/ice-pwd and its candidates, relayed ones included); the server's 200 fragment is the answer. Each
/// attempt is reported (<see cref="WebRtcStreamClient.IceRestartAttempted"/>, <see cref="WebRtcStreamClient.IceRestartAttempts"/>).
/// </summary>
public sealed record WhipIceRestartOptions
{
    /// <summary>Restart automatically when the peer connection asks for it (see the type). Default true.</summary>
    public bool Automatic { get; init; } = true;

    /// <summary>
    /// At most this many automatic restarts in any 60 s; another asked for within that minute is not sent (outcome
    /// <see cref="WhipIceRestartOutcome.OverBudget"/>). Default 3.
    /// </summary>
    public int MaxPerMinute
    {
        get;
        init => field = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "0 or more");
    } = 3;

    /// <summary>How long one restart's PATCH may take until its answer is applied. Default 10 s.</summary>
    public TimeSpan Timeout
    {
        get;
        init => field = value > TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "more than 0");
    } = TimeSpan.FromSeconds(10);
}

/// <summary>What became of one automatic ICE restart.</summary>
public enum WhipIceRestartOutcome
{
    /// <summary>The server answered 200 with its new credentials; the answer is applied (the new pair follows).</summary>
    Restarted,
    /// <summary>
    /// The server answered otherwise (<see cref="WhipIceRestartRefusedException"/>: 404 for a resource without its
    /// secret or gone, 401 without the token, 409, 400).
    /// </summary>
    Refused,
    /// <summary>No answer (the request failed or timed out) or the answer could not be applied.</summary>
    Failed,
    /// <summary>Not sent: <see cref="WhipIceRestartOptions.MaxPerMinute"/> restarts were already made in the last minute.</summary>
    OverBudget,
    /// <summary>Not sent: another restart was still running.</summary>
    Busy,
    /// <summary>Not sent: the client was not signalled over WHIP (nothing to PATCH).</summary>
    NoSignaling,
}

/// <summary>One automatic ICE restart of a <see cref="WebRtcStreamClient"/>.</summary>
/// <param name="At">When the peer connection asked (the client's stopwatch).</param>
/// <param name="Reason">Why it asked (the <c>IceRestartNeeded</c> reason: which direct pair received nothing for how long).</param>
/// <param name="Outcome">What became of it.</param>
/// <param name="Took">From the ask to the server's answer applied (<see cref="WhipIceRestartOutcome.Restarted"/>), else null.</param>
/// <param name="Error">The refusal (<see cref="WhipIceRestartRefusedException"/>) or failure, else null.</param>
public sealed record WhipIceRestartAttempt(TimeSpan At, string Reason, WhipIceRestartOutcome Outcome, TimeSpan? Took = null, Exception? Error = null);

/// <summary>The WHIP server did not answer an ICE restart's PATCH with 200 and its new credentials.</summary>
public sealed class WhipIceRestartRefusedException(HttpStatusCode status, string body)
    : Exception($"the WHIP server refused the ICE restart with {(int)status}: {body}")
{
    /// <summary>The server's status (200 only when the body carried no credentials).</summary>
    public HttpStatusCode Status { get; } = status;

    /// <summary>The server's body.</summary>
    public string Body { get; } = body;
}

/// <summary>
/// At most <see cref="Max"/> takes in any <see cref="Window"/> (a sliding window over the times of the last takes;
/// holds at most <see cref="Max"/> of them). Not thread-safe.
/// </summary>
public sealed class IceRestartBudget
{
    private readonly Queue<TimeSpan> _taken = new();

    public IceRestartBudget(int max, TimeSpan window)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(max);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(window, TimeSpan.Zero);
        (Max, Window) = (max, window);
    }

    public int Max { get; }
    public TimeSpan Window { get; }

    /// <summary>Takes one at <paramref name="now"/> if fewer than <see cref="Max"/> were taken in the window before it.</summary>
    public bool TryTake(TimeSpan now)
    {
        while (_taken.Count > 0 && now - _taken.Peek() >= Window) _taken.Dequeue();
        if (_taken.Count >= Max) return false;
        _taken.Enqueue(now);
        return true;
    }
}
