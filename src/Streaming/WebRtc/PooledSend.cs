using System.Buffers;
using Transport.Sctp;

namespace Transport.Streaming.WebRtc;

/// <summary>
/// One message of <see cref="PeerConnection.TrySend(DataChannel, ReadOnlySpan{byte}, bool)"/> on its way: the work item
/// the connection's thread takes and then the owner of the bytes SCTP sends from (<see cref="IDisposable"/>), pooled with
/// its buffer, so a steady stream allocates nothing. Two references: the send queue's (until <see cref="Complete"/> or
/// <see cref="Abandon"/>) and SCTP's (until it disposes the owner, or the run gives it back when SCTP did not take it).
/// </summary>
internal sealed class PooledSend : IDisposable
{
    private PeerConnection? _owner;
    private byte[]? _buffer;              // our pooled copy, or
    private IMemoryOwner<byte>? _lent;    // the application's memory (TrySend with an owner: no copy)
    private int _references;

    public DataChannel Channel { get; private set; } = null!;
    public ReadOnlyMemory<byte> Data { get; private set; }
    public bool Binary { get; private set; }
    public int Length => Data.Length;

    public static PooledSend Copy(PeerConnection owner, DataChannel channel, ReadOnlySpan<byte> data, bool binary)
    {
        var work = Pool.Rent();
        var buffer = SendBuffers.Rent(data.Length);
        data.CopyTo(buffer);
        work.Init(owner, channel, binary, buffer, null, new ReadOnlyMemory<byte>(buffer, 0, data.Length));
        return work;
    }

    public static PooledSend Lend(PeerConnection owner, DataChannel channel, IMemoryOwner<byte> message, bool binary)
    {
        var work = Pool.Rent();
        work.Init(owner, channel, binary, null, message, message.Memory);
        return work;
    }

    private void Init(PeerConnection owner, DataChannel channel, bool binary, byte[]? buffer, IMemoryOwner<byte>? lent, ReadOnlyMemory<byte> data)
    {
        _owner = owner;
        Channel = channel;
        Binary = binary;
        _buffer = buffer;
        _lent = lent;
        Data = data;
        Volatile.Write(ref _references, 2);
    }

    public void Complete() => Release();

    public void Abandon()
    {
        // Never ran: neither the actor nor SCTP will let go of it.
        _owner?.ForgetPendingSend(Length);
        Release();
        Release();
    }

    /// <summary>SCTP is done with the bytes (or did not take them).</summary>
    public void Dispose() => Release();

    private void Release()
    {
        if (Interlocked.Decrement(ref _references) != 0) return;
        if (_buffer is { } buffer) SendBuffers.Return(buffer);
        var lent = _lent;
        _buffer = null;
        _lent = null;
        _owner = null;
        Channel = null!;
        Data = default;
        Pool.Return(this);
        lent?.Dispose();   // the application's; SCTP counts a throw (SctpCounters.OwnerDisposeFailures)
    }

    // Lock-free (the sender's thread rents while the connection's thread returns: a lock there convoys when the holder is
    // preempted, as the lease pool's did on a loaded machine) and bounded; a ConcurrentQueue reuses its ring once grown.
    private static class Pool
    {
        private const int MaxRetained = 8192;
        private static readonly System.Collections.Concurrent.ConcurrentQueue<PooledSend> Free = new();
        private static int _count;

        public static PooledSend Rent()
        {
            if (!Free.TryDequeue(out var w)) return new PooledSend();
            Interlocked.Decrement(ref _count);
            return w;
        }

        public static void Return(PooledSend work)
        {
            if (Interlocked.Increment(ref _count) > MaxRetained) { Interlocked.Decrement(ref _count); return; }
            Free.Enqueue(work);
        }
    }
}

/// <summary>
/// Thread-safe pool of send buffers in power-of-two size classes, shared by every connection (a message is copied on
/// the caller's thread and freed on the connection's). Each class keeps at most 8 MiB (and at least 4 arrays), so the
/// pool holds a bounded amount whatever the traffic was. Lock-free, as <see cref="PooledSend"/>'s own pool.
/// </summary>
internal static class SendBuffers
{
    private const int MinClass = 6;             // 64 bytes
    private const long BytesPerClass = 8 << 20;
    private static readonly System.Collections.Concurrent.ConcurrentQueue<byte[]>[] Classes =
        Enumerable.Range(0, 31).Select(_ => new System.Collections.Concurrent.ConcurrentQueue<byte[]>()).ToArray();
    private static readonly int[] Counts = new int[31];

    private static int ClassOf(int size) => Math.Max(MinClass, 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)Math.Max(1, size - 1)));

    public static byte[] Rent(int size)
    {
        var k = ClassOf(size);
        if (!Classes[k].TryDequeue(out var a)) return new byte[1 << k];
        Interlocked.Decrement(ref Counts[k]);
        return a;
    }

    public static void Return(byte[] array)
    {
        if (!System.Numerics.BitOperations.IsPow2(array.Length) || array.Length < 1 << MinClass) return;
        var k = System.Numerics.BitOperations.Log2((uint)array.Length);
        var max = (int)Math.Max(4, BytesPerClass >> k);
        if (Interlocked.Increment(ref Counts[k]) > max) { Interlocked.Decrement(ref Counts[k]); return; }
        Classes[k].Enqueue(array);
    }
}
