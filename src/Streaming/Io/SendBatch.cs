using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Transport.Streaming.Io;

/// <summary>
/// The datagrams one thread produced during one run (a peer's batch on the pool, a burst of due timers on the
/// deadline thread, a burst of received datagrams on a receive thread), sent together when the run ends:
/// <c>sendmmsg</c> for all of them, and a run of equal-sized datagrams to one address (a data channel or a video
/// frame in flight) as one GSO send that the kernel cuts into datagrams. Order is kept per destination.
/// <para>
/// One per thread, created on first use. A thread that runs a burst of peers calls <see cref="Begin"/> and
/// <see cref="End"/> around it; a peer run outside any burst flushes at its own end
/// (<see cref="FlushUnlessDeferring"/>), so a datagram never waits beyond the run that produced it.
/// </para>
/// </summary>
internal sealed unsafe class SendBatch
{
    private const int Capacity = 128;
    private const int DataBytes = 128 * 1024;
    private const int NameBytes = 32;   // sockaddr_in6 is 28

    [ThreadStatic] private static SendBatch? t_batch;
    [ThreadStatic] private static int t_depth;

    private readonly byte[] _data = GC.AllocateUninitializedArray<byte>(DataBytes, pinned: true);
    private readonly byte[] _names = GC.AllocateArray<byte>(Capacity * NameBytes, pinned: true);
    private readonly byte[] _control = GC.AllocateArray<byte>(Capacity * LinuxUdp.ControlSpace, pinned: true);
    private readonly LinuxUdp.IoVec[] _iov = GC.AllocateArray<LinuxUdp.IoVec>(Capacity, pinned: true);
    private readonly LinuxUdp.MMsgHdr[] _messages = GC.AllocateArray<LinuxUdp.MMsgHdr>(Capacity, pinned: true);
    private readonly (int First, int Count)[] _groups = new (int, int)[Capacity];
    private readonly Entry[] _entries = new Entry[Capacity];
    private int _count, _used;

    private readonly record struct Entry(UdpDriver.BoundSocket Socket, SocketAddress Address, int Offset, int Length);

    /// <summary>This thread's batch.</summary>
    public static SendBatch ForThread => t_batch ??= new SendBatch();

    /// <summary>Starts a burst on this thread: sends wait for the matching <see cref="End"/>.</summary>
    public static void Begin() => t_depth++;

    /// <summary>Ends a burst; the outermost end sends what the burst produced.</summary>
    public static void End()
    {
        if (--t_depth == 0) t_batch?.Flush();
    }

    /// <summary>Sends what is waiting unless this thread is inside a burst (which sends at its end).</summary>
    public static void FlushUnlessDeferring()
    {
        if (t_depth == 0) t_batch?.Flush();
    }

    /// <summary>
    /// Room for the next datagram, at least <paramref name="size"/> bytes (sending first when the batch is full): the
    /// peer writes its transmit here, then <see cref="Commit"/> takes it into the batch; without a commit it is not sent.
    /// </summary>
    public Span<byte> Reserve(int size)
    {
        if (_count == Capacity || _used + size > DataBytes) Flush();
        return _data.AsSpan(_used, size);
    }

    /// <summary>Takes the <paramref name="length"/> bytes written at <see cref="Reserve"/> into the batch.</summary>
    public void Commit(UdpDriver.BoundSocket socket, SocketAddress address, int length)
    {
        _entries[_count++] = new Entry(socket, address, _used, length);
        _used += length;
    }

    /// <summary>Sends every waiting datagram: one sendmmsg per run of entries on one socket.</summary>
    public void Flush()
    {
        var i = 0;
        while (i < _count) i = SendRun(i);
        Array.Clear(_entries, 0, _count);   // no socket or address kept alive by a finished batch
        _count = 0;
        _used = 0;
    }

    private int SendRun(int start)
    {
        var socket = _entries[start].Socket;
        var data = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_data));
        var names = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_names));
        var control = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_control));
        var iov = (LinuxUdp.IoVec*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_iov));
        var messages = (LinuxUdp.MMsgHdr*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_messages));

        var m = 0;
        var j = start;
        var gso = socket.Gso;
        while (j < _count && _entries[j].Socket == socket)
        {
            var first = j;
            var size = _entries[j].Length;
            var bytes = size;
            j++;
            // A GSO run: same address, every segment the size of the first except possibly a shorter last one.
            while (gso && j < _count && j - first < LinuxUdp.MaxSegments && _entries[j].Socket == socket &&
                   _entries[j - 1].Length == size && _entries[j].Length <= size && _entries[j].Length > 0 &&
                   bytes + _entries[j].Length <= LinuxUdp.MaxGsoBytes && SameAddress(_entries[j].Address, _entries[first].Address))
            {
                bytes += _entries[j].Length;
                j++;
            }
            var address = _entries[first].Address;
            var name = names + m * NameBytes;
            address.Buffer.Span[..address.Size].CopyTo(new Span<byte>(name, NameBytes));
            iov[m] = new LinuxUdp.IoVec { Base = data + _entries[first].Offset, Length = (nuint)bytes };
            ref var h = ref messages[m].Header;
            h.Name = name;
            h.NameLength = (uint)address.Size;
            h.Iov = iov + m;
            h.IovLength = 1;
            h.Flags = 0;
            if (j - first > 1)
            {
                h.Control = control + m * LinuxUdp.ControlSpace;
                h.ControlLength = (nuint)LinuxUdp.WriteSegmentSize((byte*)h.Control, (ushort)size);
            }
            else
            {
                h.Control = null;
                h.ControlLength = 0;
            }
            messages[m].Length = 0;
            _groups[m] = (first, j - first);
            m++;
        }

        var counters = socket.Counters;
        var done = 0;
        while (done < m)
        {
            var n = LinuxUdp.SendMany(socket.Socket.SafeHandle, messages + done, m - done);
            if (n > 0)
            {
                Interlocked.Increment(ref counters._sendCalls);
                var datagrams = 0;
                for (var k = done; k < done + n; k++) datagrams += _groups[k].Count;
                Interlocked.Add(ref counters._sent, datagrams);
                done += n;
                continue;
            }
            var errno = -n;
            var (first, count) = _groups[done];
            if (count > 1 && errno is LinuxUdp.EIo or LinuxUdp.EInval or LinuxUdp.ENoProtoOpt or LinuxUdp.EOpNotSupp)
            {
                // This path cannot segment (no checksum offload on the device, an old kernel): off for this socket,
                // and this run goes out datagram by datagram.
                socket.Gso = false;
                for (var k = first; k < first + count; k++) SendOne(_entries[k]);
            }
            else
            {
                // Refused (no route, buffer full, socket closing): lost like on the network, and counted.
                Interlocked.Add(ref counters._sendErrors, count);
            }
            done++;
        }
        return j;
    }

    private void SendOne(in Entry e)
    {
        try
        {
            e.Socket.Socket.SendTo(_data.AsSpan(e.Offset, e.Length), SocketFlags.None, e.Address);
            Interlocked.Increment(ref e.Socket.Counters._sendCalls);
            Interlocked.Increment(ref e.Socket.Counters._sent);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            Interlocked.Increment(ref e.Socket.Counters._sendErrors);
        }
    }

    private static bool SameAddress(SocketAddress a, SocketAddress b) => ReferenceEquals(a, b) || a.Equals(b);
}
