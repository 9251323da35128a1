using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Transport.Streaming.Io;

namespace Transport.Streaming.Tests.Io;

/// <summary>
/// A peer for driver tests: answers every datagram with "echo:" + its own name + the payload, records
/// timeouts, and can be told to block inside HandleDatagram (a slow consumer).
/// </summary>
internal sealed class ToyPeer(string name, params string[] fragments) : IDatagramPeer
{
    private readonly Outbox _out = new();
    public string Name { get; } = name;
    public ConcurrentQueue<(byte[] Data, IPEndPoint Remote, TimeSpan Now)> Received { get; } = new();
    public ConcurrentQueue<TimeSpan> Timeouts { get; } = new();
    public TimeSpan? Deadline { get; set; }
    /// <summary>Declares the peer non-blocking, so the driver may run it on its own I/O threads.</summary>
    public bool RunsInline { get; init; }
    /// <summary>What <see cref="IDatagramPeer.InlineNow"/> answers (a peer in the middle of heavy work says false).</summary>
    public bool InlineNow { get => Volatile.Read(ref _inlineNow); set => Volatile.Write(ref _inlineNow, value); }
    private bool _inlineNow = true;
    /// <summary>Whether each datagram was handled on a thread-pool thread (false: a driver thread), in order.</summary>
    public ConcurrentQueue<bool> DatagramOnPool { get; } = new();
    /// <summary>The threads HandleTimeout ran on, by name.</summary>
    public ConcurrentQueue<string?> TimeoutThreads { get; } = new();
    public ManualResetEventSlim? Gate { get; set; }
    public int ThreadsInside;
    public int MaxThreadsInside;

    public IReadOnlyCollection<string> LocalUsernameFragments { get; } = fragments;

    public void HandleDatagram(ReadOnlySpan<byte> datagram, IPEndPoint local, IPEndPoint remote, TimeSpan now)
    {
        var inside = Interlocked.Increment(ref ThreadsInside);
        InterlockedMax(ref MaxThreadsInside, inside);
        try
        {
            Gate?.Wait(TimeSpan.FromSeconds(10));
            DatagramOnPool.Enqueue(Thread.CurrentThread.IsThreadPoolThread);
            var copy = datagram.ToArray();
            Received.Enqueue((copy, remote, now));
            var reply = new byte[1 + Name.Length + copy.Length];
            reply[0] = 0x80; // looks like RTP so the other side's driver routes it by address
            Encoding.ASCII.GetBytes(Name, reply.AsSpan(1));
            copy.CopyTo(reply, 1 + Name.Length);
            _out.Enqueue(reply, remote);
        }
        finally { Interlocked.Decrement(ref ThreadsInside); }
    }

    public void HandleTimeout(TimeSpan now)
    {
        Timeouts.Enqueue(now);
        TimeoutThreads.Enqueue(Thread.CurrentThread.Name);
        Deadline = null;
    }

    /// <summary>The local endpoint to send from; null lets the driver choose.</summary>
    public IPEndPoint? Local { get; set; }

    public bool TryPollTransmit(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote)
    {
        local = Local;
        return _out.TryPoll(destination, out written, out remote);
    }

    public void Send(byte[] data, IPEndPoint remote) => _out.Enqueue(data, remote);

    public TimeSpan? PollTimeout() => Deadline;

    public void AfterInput(TimeSpan now) { }

    /// <summary>Checks the driver refused because another peer owns their 5-tuple.</summary>
    public ConcurrentQueue<(IPEndPoint Local, IPEndPoint Remote)> FiveTuplesInUse { get; } = new();

    public void OnFiveTupleInUse(IPEndPoint local, IPEndPoint remote, TimeSpan now) => FiveTuplesInUse.Enqueue((local, remote));

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while (value > (seen = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
    }

    /// <summary>A minimal STUN Binding request (RFC 8489) carrying only a USERNAME attribute.</summary>
    public static byte[] BindingRequest(string username)
    {
        var user = Encoding.UTF8.GetBytes(username);
        var padded = (user.Length + 3) & ~3;
        var message = new byte[20 + 4 + padded];
        BinaryPrimitives.WriteUInt16BigEndian(message, 0x0001);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), (ushort)(4 + padded));
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(4), 0x2112A442);
        Random.Shared.NextBytes(message.AsSpan(8, 12));
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(20), 0x0006);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(22), (ushort)user.Length);
        user.CopyTo(message, 24);
        return message;
    }
}
