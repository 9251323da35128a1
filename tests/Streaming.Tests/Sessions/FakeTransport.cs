using System.Collections.Concurrent;
using System.Text;
using System.Threading.Channels;
using Transport.Streaming.Sessions;

namespace Transport.Streaming.Tests.Sessions;

/// <summary>An in-memory transport that records, in order, everything the session did to it.</summary>
internal sealed class FakeTransport : ISessionTransport
{
    private readonly Channel<StreamInput> _inputs = Channel.CreateUnbounded<StreamInput>();
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<SessionEndReason> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ConcurrentQueue<string> Log { get; } = new();
    public TransportHealth Health { get; set; } = new("connected");
    public bool Disposed { get; private set; }
    public SessionEndReason? ClosedWith { get; private set; }

    public string Kind => "fake";
    public ChannelReader<StreamInput> Inputs => _inputs.Reader;
    public Task Connected => _connected.Task;
    public Task<SessionEndReason> Ended => _ended.Task;

    public void Connect() => _connected.TrySetResult();
    public void ClientSends(string text) => _inputs.Writer.TryWrite(new DataInput(Encoding.UTF8.GetBytes(text), true));
    public void ClientLeaves(string why) { _inputs.Writer.TryComplete(); _ended.TrySetResult(new SessionEndReason(SessionEndKind.ClientClosed, why)); }

    public ValueTask SendAsync(StreamOutput output, CancellationToken cancellationToken)
    {
        if (ClosedWith is not null) throw new TransportNotConnectedException("closed", "closed by the session");
        Log.Enqueue(output switch
        {
            DataOutput d => "data:" + Encoding.UTF8.GetString(d.Data.Span),
            MediaOutput m => "media:" + m.Frame.Track,
            _ => "other",
        });
        return ValueTask.CompletedTask;
    }

    public ValueTask SendControlAsync(ReadOnlyMemory<byte> json, CancellationToken cancellationToken)
    {
        Log.Enqueue("control:" + Encoding.UTF8.GetString(json.Span));
        return ValueTask.CompletedTask;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask CloseAsync(SessionEndReason reason)
    {
        ClosedWith = reason;
        Log.Enqueue("close:" + reason.Kind);
        _inputs.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }

    public TransportHealth GetHealth() => Health;

    public ValueTask DisposeAsync()
    {
        Disposed = true;
        return ValueTask.CompletedTask;
    }
}

/// <summary>A handler built from a delegate.</summary>
internal sealed class LambdaHandler(Func<StreamContext, CancellationToken, IAsyncEnumerable<StreamOutput>> run) : IStreamHandler, IStreamHandlerLifecycle
{
    public List<string> Hooks { get; } = new();
    public IAsyncEnumerable<StreamOutput> RunAsync(StreamContext context, CancellationToken cancellationToken) => run(context, cancellationToken);
    public ValueTask OnStartAsync(StreamContext context, CancellationToken cancellationToken) { Hooks.Add("start"); return ValueTask.CompletedTask; }
    public ValueTask OnShutdownAsync(StreamContext context, SessionEndReason reason) { Hooks.Add("shutdown:" + reason.Kind); return ValueTask.CompletedTask; }
}
