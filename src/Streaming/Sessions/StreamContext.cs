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

    private async IAsyncEnumerable<StreamInput> ReadInputs([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _session.Stopping);
        var token = linked.Token;
        while (true)
        {
            StreamInput item;
            try
            {
                if (!await _inputs.WaitToReadAsync(token).ConfigureAwait(false)) yield break;
                if (!_inputs.TryRead(out item!)) continue;
            }
            catch (OperationCanceledException) { yield break; }
            catch (ChannelClosedException) { yield break; }
            _session.MarkInputTaken();
            yield return item;
        }
    }
}
