using System.Buffers;
using System.Net;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Transport.Streaming.Io;

/// <summary>The receive thread of <see cref="UdpDriverOptions.BatchedIo"/>: recvmmsg and UDP GRO on 64-bit Linux.</summary>
public sealed partial class UdpDriver
{
    private const int GroSlotSize = 65536;
    private const int NameSpace = 128;      // sockaddr_storage
    private const int ControlSpace = 64;

    // One system call takes every datagram already queued (up to the slots); a GRO slot holds a whole run of
    // segments from one sender. The datagrams of one call are handled as one burst: the answers they cause go
    // out together when it ends (SendBatch).
    // Optimized from the first call: the loop runs for the socket's lifetime (tiering would swap it mid-loop, OSR).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private unsafe void BatchedReceiveThread(BoundSocket bound)
    {
        var slots = bound.Gro ? 8 : 32;
        var slotSize = bound.Gro ? GroSlotSize : Options.MaxDatagramSize;
        var data = GC.AllocateUninitializedArray<byte>(slots * slotSize, pinned: true);
        var names = GC.AllocateArray<byte>(slots * NameSpace, pinned: true);
        var control = GC.AllocateArray<byte>(slots * ControlSpace, pinned: true);
        var iov = GC.AllocateArray<LinuxUdp.IoVec>(slots, pinned: true);
        var messages = GC.AllocateArray<LinuxUdp.MMsgHdr>(slots, pinned: true);
        var pData = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(data));
        var pNames = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(names));
        var pControl = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(control));
        var pIov = (LinuxUdp.IoVec*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(iov));
        var pMessages = (LinuxUdp.MMsgHdr*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(messages));
        for (var i = 0; i < slots; i++)
        {
            pIov[i] = new LinuxUdp.IoVec { Base = pData + i * slotSize, Length = (nuint)slotSize };
            pMessages[i].Header.Name = pNames + i * NameSpace;
            pMessages[i].Header.Iov = pIov + i;
            pMessages[i].Header.IovLength = 1;
            pMessages[i].Header.Control = pControl + i * ControlSpace;
        }

        var address = new SocketAddress(bound.LocalEndPoint.AddressFamily);
        var expectedFamily = BitConverter.ToUInt16(address.Buffer.Span);   // AF_INET or AF_INET6 in the kernel's numbering
        var expectedLength = address.Size;                                  // sockaddr_in or sockaddr_in6
        var buffer = Buffers.Rent();
        var token = _stop.Token;
        var errors = 0;
        try
        {
            while (!token.IsCancellationRequested)
            {
                for (var i = 0; i < slots; i++)
                {
                    pMessages[i].Header.NameLength = NameSpace;
                    pMessages[i].Header.ControlLength = ControlSpace;
                    pMessages[i].Header.Flags = 0;
                    pMessages[i].Length = 0;
                }
                var n = LinuxUdp.ReceiveMany(bound.Socket.SafeHandle, pMessages, slots);
                if (token.IsCancellationRequested) break;
                if (n < 0)
                {
                    if (n == -LinuxUdp.EIntr || n == -LinuxUdp.EAgain) continue;
                    if (n == -9) break;   // EBADF: closed under us
                    // ICMP errors reported on a UDP socket concern one earlier send; keep receiving (an error that
                    // repeats backs off instead of spinning).
                    LogReceiveError(bound.LocalEndPoint, (System.Net.Sockets.SocketError)(-n));
                    BackOff(ref errors);
                    continue;
                }
                errors = 0;
                if (n == 0) continue;
                Interlocked.Increment(ref Counters._receiveCalls);
                SendBatch.Begin();
                try
                {
                    for (var k = 0; k < n; k++)
                    {
                        ref var h = ref pMessages[k].Header;
                        var length = (int)pMessages[k].Length;
                        if ((h.Flags & LinuxUdp.MsgTrunc) != 0)
                        {
                            Interlocked.Increment(ref Counters._received);
                            Interlocked.Increment(ref Counters._droppedOversize);
                            continue;
                        }
                        // The sender's address as the kernel wrote it (the layout SocketAddress uses on Linux). A
                        // message without one of the socket's family and size is not a datagram from anyone we could
                        // answer: counted, never routed.
                        if (h.NameLength != (uint)expectedLength || *(ushort*)h.Name != expectedFamily)
                        {
                            Interlocked.Increment(ref Counters._received);
                            Interlocked.Increment(ref Counters._droppedUnknownPeer);
                            continue;
                        }
                        new ReadOnlySpan<byte>(h.Name, expectedLength).CopyTo(address.Buffer.Span);
                        var segment = bound.Gro ? LinuxUdp.ReadGroSegmentSize(h) : 0;
                        if (segment <= 0 || segment > length) segment = Math.Max(length, 1);
                        var slot = new ReadOnlySpan<byte>(pData + k * slotSize, length);
                        for (var offset = 0; offset < length || (length == 0 && offset == 0); offset += segment)
                        {
                            var part = slot.Slice(offset, Math.Min(segment, length - offset));
                            Interlocked.Increment(ref Counters._received);
                            if (part.Length > Options.MaxDatagramSize)
                            {
                                Interlocked.Increment(ref Counters._droppedOversize);
                                continue;
                            }
                            part.CopyTo(buffer);
                            if (SafeDispatch(bound, buffer, part.Length, address)) buffer = Buffers.Rent();
                            if (length == 0) break;
                        }
                    }
                }
                finally { SendBatch.End(); }
            }
        }
        finally
        {
            Buffers.Return(buffer);
            // The kernel reads and writes these through raw pointers on every call: pinned is not enough, they must
            // stay reachable until the loop ends (else the GC frees them under the pointers and the kernel writes
            // into memory that has become other objects). Test: TheReceiveBuffersSurviveGarbageCollections...
            GC.KeepAlive(data);
            GC.KeepAlive(names);
            GC.KeepAlive(control);
            GC.KeepAlive(iov);
            GC.KeepAlive(messages);
        }
    }

    /// <summary><see cref="Dispatch"/>, except that a bug in routing never ends a receive loop (and with a thread, the process): logged and counted.</summary>
    private bool SafeDispatch(BoundSocket bound, byte[] buffer, int length, SocketAddress address)
    {
        try { return Dispatch(bound, buffer, length, address); }
        catch (Exception e)
        {
            Interlocked.Increment(ref Counters._peerErrors);
            LogDispatchError(bound.LocalEndPoint, e);
            return false;
        }
    }

    [Microsoft.Extensions.Logging.LoggerMessage(Level = Microsoft.Extensions.Logging.LogLevel.Error,
        Message = "A datagram on {Local} could not be dispatched; it is dropped and the receive loop goes on")]
    private partial void LogDispatchError(IPEndPoint local, Exception exception);

    /// <summary>After the 16th receive error in a row, waits 1 ms more per error (at most 100 ms): never a busy loop.</summary>
    private static void BackOff(ref int errors)
    {
        if (++errors > 16) Thread.Sleep(Math.Min(errors - 16, 100));
    }
}
