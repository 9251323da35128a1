using System.Net;

namespace Transport.Streaming.Tests.Io;

/// <summary>What a test peer queued to send, handed to the driver one datagram per TryPollTransmit.</summary>
internal sealed class Outbox
{
    private readonly Queue<(byte[] Data, IPEndPoint Remote)> _queue = new();

    public void Enqueue(byte[] data, IPEndPoint remote) => _queue.Enqueue((data, remote));

    public bool TryPoll(Span<byte> destination, out int written, out IPEndPoint remote)
    {
        if (_queue.TryDequeue(out var item))
        {
            item.Data.CopyTo(destination);
            written = item.Data.Length;
            remote = item.Remote;
            return true;
        }
        written = 0;
        remote = null!;
        return false;
    }
}
