using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Transport.Streaming.Sessions;

/// <summary>What a handler gets: the session id, its arguments, its inputs and its health.</summary>
public sealed class StreamContext
{
    private readonly ChannelReader<StreamInput> _inputs;
    private readonly StreamSession _session;

    internal StreamContext(StreamSession session, ChannelReader<StreamInput> inputs, IReadOnlyDictionary<string, string> arguments)
    {
        _session = session;
        _inputs = inputs;
        Arguments = arguments;
    }

    /// <summary>The session id (also in every log line of the session).</summary>
    public string SessionId => _session.Id;

    /// <summary>The arguments the client gave when it started the session (query string or JSON).</summary>
    public IReadOnlyDictionary<string, string> Arguments { get; }

    /// <summary>The client's data messages and media frames, in arrival order. Ends when the client can send no more.</summary>
    public IAsyncEnumerable<StreamInput> Inputs => ReadInputs(CancellationToken.None);

    /// <summary>The names of the tracks the session can send media on ("audio", "video"; none for a data-only client).</summary>
    public IReadOnlySet<string> OutgoingTracks => _session.Transport is IMediaSessionTransport media ? media.OutgoingTracks : EmptyTracks;

    private static readonly IReadOnlySet<string> EmptyTracks = new HashSet<string>();

    /// <summary>
    /// Asks the client for a key frame of the media it sends on <paramref name="track"/> (RTCP PLI). False when the
    /// session has no such incoming track (or no media at all).
    /// </summary>
    public ValueTask<bool> RequestKeyFrameAsync(string track = "video", CancellationToken cancellationToken = default) =>
        _session.Transport is IMediaSessionTransport media ? media.RequestKeyFrameAsync(track, cancellationToken) : ValueTask.FromResult(false);

    /// <summary>The session's health now.</summary>
    public SessionHealth Health => _session.GetHealth();

    /// <summary>
    /// The graded health as the server's health check last saw it (every
    /// <see cref="StreamServerOptions.HealthCheckInterval"/>): level and reasons. Healthy until the first check.
    /// </summary>
    public HealthGrade HealthGrade => _session.HealthGrade;

    /// <summary>
    /// Completes with the new grade at the next change of level the health check sees (e.g. to lower what the handler
    /// sends when it becomes degraded, and raise it again when healthy); cancelled by <paramref name="cancellationToken"/>.
    /// With <see cref="StreamServerOptions.HealthInputs"/> the same changes also come as <see cref="HealthInput"/> items.
    /// </summary>
    public Task<HealthGrade> WaitForHealthChangeAsync(CancellationToken cancellationToken = default) =>
        _session.NextHealthChange.WaitAsync(cancellationToken);

    private async IAsyncEnumerable<StreamInput> ReadInputs([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _session.Stopping);
        var token = linked.Token;
        var healthInputs = _session.Server.Options.HealthInputs;
        Task<bool>? waiting = null; // one wait on the channel at a time, kept across health items
        while (true)
        {
            // A health change first (the signal is taken before looking, so none is missed), then the client's inputs.
            var signal = healthInputs ? _session.HealthSignal : null;
            if (healthInputs && _session.TakeHealthInput() is { } health)
            {
                yield return health;
                continue;
            }
            if (_inputs.TryRead(out var item))
            {
                _session.MarkInputTaken();
                yield return item;
                continue;
            }
            bool more;
            try
            {
                waiting ??= _inputs.WaitToReadAsync(token).AsTask();
                if (signal is not null && await Task.WhenAny(waiting, signal).ConfigureAwait(false) != waiting) continue;
                more = await waiting.ConfigureAwait(false);
                waiting = null;
            }
            catch (OperationCanceledException) { yield break; }
            catch (ChannelClosedException) { yield break; }
            if (!more) yield break;
        }
    }
}
