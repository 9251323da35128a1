using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Transport.Streaming.Io;

/// <summary>
/// The Linux system calls the driver batches its datagrams with: <c>sendmmsg</c> and <c>recvmmsg</c> (many datagrams
/// per system call), UDP generic segmentation offload (<c>UDP_SEGMENT</c>: one send of a run of equal-sized
/// datagrams to one address, cut into datagrams by the kernel or the NIC) and generic receive offload
/// (<c>UDP_GRO</c>: such a run delivered as one buffer). The structures are the LP64 layouts of glibc and musl,
/// so only 64-bit Linux uses this path; everything else uses <see cref="Socket"/>'s own calls.
/// </summary>
internal static unsafe partial class LinuxUdp
{
    public const int SolUdp = 17, UdpSegment = 103, UdpGro = 104;
    public const int SolSocket = 1, SoReusePort = 15;
    public const int MsgTrunc = 0x20, MsgWaitForOne = 0x10000;
    public const int EIntr = 4, EIo = 5, EAgain = 11, EInval = 22, ENoProtoOpt = 92, EOpNotSupp = 95;

    /// <summary>Most segments in one GSO send (the kernel's UDP_MAX_SEGMENTS on older kernels).</summary>
    public const int MaxSegments = 64;

    /// <summary>Largest GSO send in bytes (the UDP payload limit, with room for the IPv6 header).</summary>
    public const int MaxGsoBytes = 65000;

    /// <summary>Room for one control message carrying a 16-bit or 32-bit value: CMSG_SPACE(4) on LP64.</summary>
    public const int ControlSpace = 24;

    /// <summary>True where the batched calls are used: 64-bit Linux.</summary>
    public static bool IsSupported { get; } = OperatingSystem.IsLinux() && IntPtr.Size == 8 && sizeof(MsgHdr) == 56 && sizeof(MMsgHdr) == 64;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct CMsgHdr
    {
        public nuint Length;
        public int Level;
        public int Type;
    }

    [LibraryImport("libc", EntryPoint = "sendmmsg", SetLastError = true)]
    private static partial int SendMMsgNative(int fd, MMsgHdr* messages, uint count, int flags);

    [LibraryImport("libc", EntryPoint = "recvmmsg", SetLastError = true)]
    private static partial int RecvMMsgNative(int fd, MMsgHdr* messages, uint count, int flags, void* timeout);

    [LibraryImport("libc", EntryPoint = "setsockopt", SetLastError = true)]
    private static partial int SetSockOptNative(int fd, int level, int name, void* value, uint length);

    /// <summary>sendmmsg: the number of messages sent, or -errno.</summary>
    public static int SendMany(SafeHandle socket, MMsgHdr* messages, int count)
    {
        var added = false;
        try
        {
            socket.DangerousAddRef(ref added);   // the descriptor cannot be closed (and reused) during the call
            while (true)
            {
                var n = SendMMsgNative((int)socket.DangerousGetHandle(), messages, (uint)count, 0);
                if (n >= 0) return n;
                var errno = Marshal.GetLastPInvokeError();
                if (errno != EIntr) return -errno;
            }
        }
        catch (ObjectDisposedException) { return -9; }   // EBADF: the driver is closing
        finally { if (added) socket.DangerousRelease(); }
    }

    /// <summary>recvmmsg with MSG_WAITFORONE on a blocking socket: waits for one datagram, takes what else is queued. The count, or -errno.</summary>
    public static int ReceiveMany(SafeHandle socket, MMsgHdr* messages, int count)
    {
        var added = false;
        try
        {
            socket.DangerousAddRef(ref added);
            var n = RecvMMsgNative((int)socket.DangerousGetHandle(), messages, (uint)count, MsgWaitForOne, null);
            return n >= 0 ? n : -Marshal.GetLastPInvokeError();
        }
        catch (ObjectDisposedException) { return -9; }
        finally { if (added) socket.DangerousRelease(); }
    }

    /// <summary>setsockopt with an int value; false when the kernel refuses (an older kernel without the option).</summary>
    public static bool TrySetOption(SafeHandle socket, int level, int name, int value)
    {
        var added = false;
        try
        {
            socket.DangerousAddRef(ref added);
            return SetSockOptNative((int)socket.DangerousGetHandle(), level, name, &value, sizeof(int)) == 0;
        }
        finally { if (added) socket.DangerousRelease(); }
    }

    /// <summary>Writes a control message with a 16-bit value (UDP_SEGMENT's segment size) at <paramref name="control"/>; returns its space.</summary>
    public static int WriteSegmentSize(byte* control, ushort segmentSize)
    {
        var header = (CMsgHdr*)control;
        header->Length = (nuint)(sizeof(CMsgHdr) + sizeof(ushort));
        header->Level = SolUdp;
        header->Type = UdpSegment;
        *(ushort*)(control + sizeof(CMsgHdr)) = segmentSize;
        return ControlSpace;
    }

    /// <summary>The GRO segment size in a received message's control data, or 0 when it came as a single datagram.</summary>
    public static int ReadGroSegmentSize(in MsgHdr header)
    {
        var p = (byte*)header.Control;
        var end = p + header.ControlLength;
        while (p + sizeof(CMsgHdr) <= end)
        {
            var c = (CMsgHdr*)p;
            if (c->Length < (nuint)sizeof(CMsgHdr)) return 0;
            if (c->Level == SolUdp && c->Type == UdpGro && c->Length >= (nuint)(sizeof(CMsgHdr) + sizeof(int))) return *(int*)(p + sizeof(CMsgHdr));
            p += (c->Length + 7) & ~(nuint)7;
        }
        return 0;
    }
}
