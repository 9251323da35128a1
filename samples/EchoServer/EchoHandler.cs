using System.Runtime.CompilerServices;
using Transport.Streaming.Sessions;

namespace Transport.Samples.EchoServer;

/// <summary>
/// Echoes every data message and media frame back. The text message "bye" makes it say "goodbye" and end the
/// stream on purpose (EndStream), which the client sees as goodbye, then end_stream, then the close. With a
/// <see cref="MediaBroadcast"/>, the first session whose client sends media becomes its publisher (one at a time):
/// its frames also go to the WHEP viewers (<c>/whep</c>), and their key frame requests reach its client.
/// </summary>
public sealed class EchoHandler(MediaBroadcast? broadcast = null) : IStreamHandler
{
    private static readonly object PublisherGate = new();
    private static EchoHandler? s_publisher;

    public async IAsyncEnumerable<StreamOutput> RunAsync(StreamContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        Action? askClient = null;
        try
        {
            await foreach (var input in context.Inputs.WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                switch (input)
                {
                    case DataInput { IsText: true } text when text.Text == "bye":
                        yield return DataOutput.FromText("goodbye", text.Channel);
                        yield return new EndStream("the client said bye");
                        yield break;
                    case DataInput data:
                        yield return new DataOutput(data.Data, data.IsText, data.Channel);
                        break;
                    case MediaInput media:
                        if (broadcast is not null && (askClient is not null || TryBecomePublisher()))
                        {
                            if (askClient is null)
                            {
                                askClient = () => _ = context.RequestKeyFrameAsync("video", CancellationToken.None).AsTask();
                                broadcast.KeyFrameNeeded += askClient;
                                askClient();
                            }
                            broadcast.Publish(media.Frame);
                        }
                        yield return new MediaOutput(media.Frame);
                        break;
                }
            }
        }
        finally
        {
            if (askClient is not null)
            {
                broadcast!.KeyFrameNeeded -= askClient;
                lock (PublisherGate) if (s_publisher == this) s_publisher = null;
            }
        }
    }

    /// <summary>True while a session publishes into the broadcast (the test pattern stays quiet then).</summary>
    public static bool HasPublisher
    {
        get { lock (PublisherGate) return s_publisher is not null; }
    }

    private bool TryBecomePublisher()
    {
        lock (PublisherGate)
        {
            if (s_publisher is not null) return false;
            s_publisher = this;
            return true;
        }
    }
}
