using System.Runtime.CompilerServices;
using Transport.Streaming.Sessions;

namespace Transport.Samples.EchoServer;

/// <summary>
/// Echoes every data message and media frame back. The text message "bye" makes it say "goodbye" and end the
/// stream on purpose (EndStream), which the client sees as goodbye, then end_stream, then the close.
/// </summary>
public sealed class EchoHandler : IStreamHandler
{
    public async IAsyncEnumerable<StreamOutput> RunAsync(StreamContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
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
                    yield return new MediaOutput(media.Frame);
                    break;
            }
        }
    }
}
