using System.Buffers;
using System.Runtime.CompilerServices;
using Transport.Sctp;

namespace Transport.Streaming.WebRtc;

/// <summary>
/// A received data channel message in SCTP's own reassembly buffer, lent to the application
/// (<see cref="PeerConnectionOptions.LeasedMessages"/>): no copy, and in a steady stream no allocation, since both
/// the buffer and this object are pooled.
/// <para>
/// Ownership: the application reads <see cref="Memory"/> (or <see cref="Span"/>) and calls <see cref="Dispose"/> once,
/// from any thread, when it no longer needs the bytes. After that the buffer goes back to the connection and this
/// object back to a pool, to carry a later message: like an array returned to <see cref="ArrayPool{T}"/>, neither may be
/// used any more. Reading the lease after <see cref="Dispose"/> throws <see cref="ObjectDisposedException"/> (until the
/// object is handed out again; a reference kept after Dispose may then see a later message, so do not keep one).
/// Disposing twice is harmless while the object is still in the pool. A lease never disposed is not a leak of the
/// connection: its buffer is collected with it, and the pool allocates another; with
/// <see cref="PeerConnectionOptions.MaxUnreadBytes"/> its bytes stay counted as unread, so an application that keeps
/// leases makes the peer wait at that bound rather than growing memory.
/// </para>
/// </summary>
public sealed record DataChannelMessageLease : PeerConnectionEvent, IMemoryOwner<byte>
{
    private const int Live = 0, Disposed = 1;
    private byte[]? _buffer;
    private ReceiveBufferReturns? _returns;
    private int _length;
    private int _unread;
    private int _state = Disposed;
    private DataChannel? _channel;

    private DataChannelMessageLease() : base(TimeSpan.Zero) { }

    /// <summary>The channel it arrived on.</summary>
    public DataChannel Channel => _channel ?? throw Gone();

    /// <summary>True for a binary message, false for a string (UTF-8).</summary>
    public bool IsBinary { get; private set; }

    /// <summary>The message's length in bytes (0 for an empty message).</summary>
    public int Length => Volatile.Read(ref _state) == Live ? _length : throw Gone();

    /// <summary>The message's bytes (writable: they are the application's until <see cref="Dispose"/>).</summary>
    public Memory<byte> Memory => Volatile.Read(ref _state) == Live ? new Memory<byte>(_buffer, 0, _length) : throw Gone();

    /// <summary>The message's bytes as a span.</summary>
    public Span<byte> Span => Volatile.Read(ref _state) == Live ? new Span<byte>(_buffer, 0, _length) : throw Gone();

    /// <summary>A copy of the message (allocates: for keeping it after <see cref="Dispose"/>).</summary>
    public byte[] ToArray() => Span.ToArray();

    /// <summary>Gives the buffer back to the connection (and, with backpressure, reopens the window by its bytes).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _state, Disposed) != Live) return;
        var buffer = _buffer!;
        var returns = _returns!;
        var unread = _unread;
        _buffer = null;
        _returns = null;
        _channel = null;
        returns.Return(buffer, unread);
        LeasePool.Return(this);
    }

    private ObjectDisposedException Gone() => new(nameof(DataChannelMessageLease),
        "The lease was disposed: its buffer went back to the connection (copy the bytes to keep them).");

    internal static DataChannelMessageLease Rent(TimeSpan at, DataChannel channel, bool binary, byte[] buffer, int length, int unread,
        ReceiveBufferReturns returns)
    {
        var lease = LeasePool.Rent();
        lease.At = at;
        lease._channel = channel;
        lease.IsBinary = binary;
        lease._buffer = buffer;
        lease._length = length;
        lease._unread = unread;
        lease._returns = returns;
        Volatile.Write(ref lease._state, Live);
        return lease;
    }

    // A pooled object: equal only to itself (its contents change with each message it carries).
    /// <inheritdoc />
    public bool Equals(DataChannelMessageLease? other) => ReferenceEquals(this, other);

    /// <inheritdoc />
    public override int GetHashCode() => RuntimeHelpers.GetHashCode(this);

    /// <inheritdoc />
    protected override bool PrintMembers(System.Text.StringBuilder builder)
    {
        if (base.PrintMembers(builder)) builder.Append(", ");
        if (Volatile.Read(ref _state) == Live)
            builder.Append("Channel = ").Append(_channel?.Label).Append(", Length = ").Append(_length).Append(", IsBinary = ").Append(IsBinary);
        else builder.Append("disposed");
        return true;
    }

    /// <summary>
    /// The lease objects, shared by every connection: FIFO (a disposed object is reused as late as possible, so a stale
    /// reference most likely throws), lock-free (the reader's thread returns while the connection's rents; a lock there
    /// convoyed on a loaded machine) and bounded (what is beyond the bound is left to the collector).
    /// </summary>
    private static class LeasePool
    {
        private const int MaxRetained = 16384;
        private static readonly System.Collections.Concurrent.ConcurrentQueue<DataChannelMessageLease> Free = new();
        private static int _count;

        public static DataChannelMessageLease Rent()
        {
            // Keep a few in the pool before reusing any, so a reference kept just after Dispose still throws.
            if (Volatile.Read(ref _count) > 16 && Free.TryDequeue(out var lease))
            {
                Interlocked.Decrement(ref _count);
                return lease;
            }
            return new DataChannelMessageLease();
        }

        public static void Return(DataChannelMessageLease lease)
        {
            if (Interlocked.Increment(ref _count) > MaxRetained) { Interlocked.Decrement(ref _count); return; }
            Free.Enqueue(lease);
        }

        public static int Count => Volatile.Read(ref _count);
    }

    /// <summary>Lease objects waiting in the shared pool (for tests).</summary>
    internal static int PooledCount => LeasePool.Count;
}

/// <summary>
/// Where the leases of one connection give their buffers back, from any thread: the connection's thread moves them into
/// SCTP's pool (and releases their unread bytes) on its next turn, which every datagram gives it. Only when the unread
/// bytes returned since the last turn reach <see cref="WakeThreshold"/> (a quarter of the unread bound: less would not
/// reopen the window enough for SCTP to advertise it) is the connection woken for them; a wake per lease cost a turn of
/// the connection per message.
/// </summary>
internal sealed class ReceiveBufferReturns
{
    // What a connection keeps of returned buffers between two turns; beyond it they go to the collector.
    private const int MaxHeld = 8192;
    // Lock-free: the reader's thread returns while the connection's thread drains.
    private readonly System.Collections.Concurrent.ConcurrentQueue<byte[]> _arrays = new();
    private int _held;
    private long _unread;
    private int _woken;
    private long _outstanding;

    /// <summary>Called when the returned unread bytes reach <see cref="WakeThreshold"/>: the owner schedules a turn of the connection.</summary>
    public Action? Wake { get; set; }

    /// <summary>Returned unread bytes that wake the connection (long.MaxValue: never, without backpressure).</summary>
    public long WakeThreshold { get; set; } = long.MaxValue;

    /// <summary>Leases handed out and not yet disposed.</summary>
    public long Outstanding => Interlocked.Read(ref _outstanding);

    public void Lent() => Interlocked.Increment(ref _outstanding);

    public void Return(byte[] buffer, int unread)
    {
        Interlocked.Decrement(ref _outstanding);
        if (Interlocked.Increment(ref _held) <= MaxHeld) _arrays.Enqueue(buffer);
        else Interlocked.Decrement(ref _held);
        var pending = unread > 0 ? Interlocked.Add(ref _unread, unread) : Interlocked.Read(ref _unread);
        if (pending >= WakeThreshold && Interlocked.Exchange(ref _woken, 1) == 0) Wake?.Invoke();
    }

    /// <summary>On the connection's thread: the returned buffers go to SCTP's pool and their unread bytes are released.</summary>
    public void Drain(SctpAssociation? sctp)
    {
        Volatile.Write(ref _woken, 0);
        var unread = Interlocked.Exchange(ref _unread, 0);
        while (_arrays.TryDequeue(out var a))
        {
            Interlocked.Decrement(ref _held);
            sctp?.ReturnReceiveBuffer(a);
        }
        if (unread > 0) sctp?.ReleaseReceived((int)Math.Min(unread, int.MaxValue));
    }
}
