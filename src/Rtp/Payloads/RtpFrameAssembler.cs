using System.Buffers;

namespace Transport.Rtp.Payloads;

/// <summary>A frame reported by <see cref="RtpFrameAssembler"/>.</summary>
/// <param name="Timestamp">RTP timestamp shared by the frame's packets.</param>
/// <param name="Complete">True when every packet from frame start to frame end arrived; false for a frame given up.</param>
/// <param name="KeyFrame">True when the codec marks the frame as a key frame (complete frames only).</param>
/// <param name="PacketCount">Packets received for the frame.</param>
/// <param name="Length">Bitstream bytes (0 for incomplete frames).</param>
/// <param name="FirstSequence">Unwrapped sequence number of the frame's first packet received (orders frames).</param>
public readonly record struct RtpFrameInfo(uint Timestamp, bool Complete, bool KeyFrame, int PacketCount, int Length, long FirstSequence);

/// <summary>
/// Reassembles codec frames from RTP packets of one SSRC. Packets are grouped by timestamp and ordered by
/// unwrapped sequence number; up to <see cref="MaxPendingFrames"/> frames are assembled at once so a
/// retransmission can still complete a frame after the next one started. A frame is complete when the packets
/// from its start (the packet after a seen frame end, or one the codec marks as a start) to its end (marker bit)
/// are contiguous. When too many frames are pending the oldest is given up and reported with Complete = false.
/// Payload bytes live in pooled buffers; frames are reported in completion order.
/// </summary>
public sealed class RtpFrameAssembler
{
    private const int RecentCount = 64;
    private readonly IRtpDepacketizer _depacketizer;
    private readonly int _maxPacketsPerFrame;
    private readonly List<PendingFrame> _pending = new();
    private readonly Stack<PendingFrame> _spare = new();
    private readonly Queue<(RtpFrameInfo Info, int Offset)> _ready = new();
    private readonly long[] _recentEnds = new long[RecentCount];
    private readonly uint[] _recentFinished = new uint[RecentCount];
    private int _recentEndsNext;
    private int _recentFinishedNext;
    private int _recentFinishedCount;
    private byte[] _output = new byte[64 * 1024];
    private int _outputUsed;
    private SequenceUnwrapper _sequences;

    private readonly record struct Entry(long Sequence, int Offset, int Length, bool Marker);

    private sealed class PendingFrame
    {
        public uint Timestamp;
        public readonly List<Entry> Packets = new();
        public byte[] Bytes = ArrayPool<byte>.Shared.Rent(4096);
        public int Used;
    }

    /// <summary>Creates an assembler for one payload format.</summary>
    public RtpFrameAssembler(IRtpDepacketizer depacketizer, int maxPacketsPerFrame = 2048, int maxPendingFrames = 8)
    {
        _depacketizer = depacketizer;
        _maxPacketsPerFrame = maxPacketsPerFrame;
        MaxPendingFrames = maxPendingFrames;
        Array.Fill(_recentEnds, long.MinValue);
    }

    /// <summary>Frames assembled at once; a new frame beyond this gives up the oldest.</summary>
    public int MaxPendingFrames { get; }

    /// <summary>Packets dropped: duplicates, packets of frames already reported, malformed packets.</summary>
    public long DroppedPackets { get; private set; }

    /// <summary>Frames reported complete.</summary>
    public long CompleteFrames { get; private set; }

    /// <summary>Frames reported incomplete.</summary>
    public long IncompleteFrames { get; private set; }

    /// <summary>Adds one (already unprotected) RTP packet.</summary>
    public void Push(ReadOnlySpan<byte> rtpPacket)
    {
        if (!RtpPacket.TryRead(rtpPacket, out RtpPacket rtp) || rtp.Payload.IsEmpty)
        {
            DroppedPackets++;
            return;
        }

        long sequence = _sequences.Unwrap(rtp.SequenceNumber);
        PendingFrame? frame = Find(rtp.Timestamp);
        if (frame is null)
        {
            if (WasFinished(rtp.Timestamp))
            {
                DroppedPackets++;
                return;
            }

            frame = _spare.Count > 0 ? _spare.Pop() : new PendingFrame();
            frame.Timestamp = rtp.Timestamp;
            _pending.Add(frame);
            if (_pending.Count > MaxPendingFrames)
            {
                GiveUp(Oldest());
            }
        }

        if (!Insert(frame, sequence, rtp.Payload, rtp.Marker))
        {
            DroppedPackets++;
            return;
        }

        if (_depacketizer.IsFrameEnd(rtp.Payload, rtp.Marker))
        {
            _recentEnds[_recentEndsNext] = sequence;
            _recentEndsNext = (_recentEndsNext + 1) % RecentCount;
        }

        if (frame.Packets.Count > _maxPacketsPerFrame)
        {
            GiveUp(frame);
            return;
        }

        // A new frame end may also reveal the start of the following frame: retry until nothing completes.
        bool progressed = TryComplete(frame);
        while (progressed)
        {
            progressed = false;
            for (int i = 0; i < _pending.Count && !progressed; i++)
            {
                progressed = TryComplete(_pending[i]);
            }
        }
    }

    /// <summary>
    /// Takes the next reported frame, copying its bitstream into <paramref name="destination"/>. False when none is
    /// ready; throws when <paramref name="destination"/> is shorter than the frame (see <see cref="PeekLength"/>).
    /// </summary>
    public bool TryPollFrame(Span<byte> destination, out RtpFrameInfo frame)
    {
        if (!_ready.TryPeek(out (RtpFrameInfo Info, int Offset) next))
        {
            frame = default;
            return false;
        }

        if (next.Info.Length > destination.Length)
        {
            throw new ArgumentException($"The frame needs {next.Info.Length} bytes.", nameof(destination));
        }

        _ready.Dequeue();
        _output.AsSpan(next.Offset, next.Info.Length).CopyTo(destination);
        if (_ready.Count == 0)
        {
            _outputUsed = 0;
        }

        frame = next.Info;
        return true;
    }

    /// <summary>Length of the next frame to poll, or -1 when none is ready.</summary>
    public int PeekLength() => _ready.TryPeek(out (RtpFrameInfo Info, int Offset) next) ? next.Info.Length : -1;

    /// <summary>Frames currently being assembled.</summary>
    public int PendingFrames => _pending.Count;

    private PendingFrame? Find(uint timestamp)
    {
        foreach (PendingFrame frame in _pending)
        {
            if (frame.Timestamp == timestamp)
            {
                return frame;
            }
        }

        return null;
    }

    private PendingFrame Oldest()
    {
        PendingFrame oldest = _pending[0];
        foreach (PendingFrame frame in _pending)
        {
            if (frame.Packets.Count > 0 && (oldest.Packets.Count == 0 || frame.Packets[0].Sequence < oldest.Packets[0].Sequence))
            {
                oldest = frame;
            }
        }

        return oldest;
    }

    private bool WasFinished(uint timestamp)
    {
        for (int i = 0; i < _recentFinishedCount; i++)
        {
            if (_recentFinished[i] == timestamp)
            {
                return true;
            }
        }

        return false;
    }

    private bool IsKnownEnd(long sequence)
    {
        foreach (long end in _recentEnds)
        {
            if (end == sequence)
            {
                return true;
            }
        }

        return false;
    }

    private static bool Insert(PendingFrame frame, long sequence, ReadOnlySpan<byte> payload, bool marker)
    {
        List<Entry> packets = frame.Packets;
        int index = packets.Count;
        while (index > 0 && packets[index - 1].Sequence > sequence)
        {
            index--;
        }

        if (index > 0 && packets[index - 1].Sequence == sequence)
        {
            return false;
        }

        if (frame.Used + payload.Length > frame.Bytes.Length)
        {
            byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(frame.Bytes.Length * 2, frame.Used + payload.Length));
            frame.Bytes.AsSpan(0, frame.Used).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(frame.Bytes);
            frame.Bytes = larger;
        }

        payload.CopyTo(frame.Bytes.AsSpan(frame.Used));
        packets.Insert(index, new Entry(sequence, frame.Used, payload.Length, marker));
        frame.Used += payload.Length;
        return true;
    }

    private bool TryComplete(PendingFrame frame)
    {
        List<Entry> packets = frame.Packets;
        Entry first = packets[0];
        bool startKnown = IsKnownEnd(first.Sequence - 1) || _depacketizer.IsFrameStart(frame.Bytes.AsSpan(first.Offset, first.Length));
        if (!startKnown)
        {
            return false;
        }

        for (int i = 0; i < packets.Count; i++)
        {
            Entry entry = packets[i];
            if (i > 0 && entry.Sequence != packets[i - 1].Sequence + 1)
            {
                return false; // a gap before the end: wait (a retransmission may fill it)
            }

            if (_depacketizer.IsFrameEnd(frame.Bytes.AsSpan(entry.Offset, entry.Length), entry.Marker))
            {
                Emit(frame, i + 1);
                return true;
            }
        }

        return false;
    }

    private void Emit(PendingFrame frame, int packetCount)
    {
        List<Entry> packets = frame.Packets;
        int bound = 0;
        for (int i = 0; i < packetCount; i++)
        {
            bound += _depacketizer.MaxOutputLength(packets[i].Length);
        }

        if (_outputUsed + bound > _output.Length)
        {
            Array.Resize(ref _output, Math.Max(_output.Length * 2, _outputUsed + bound));
        }

        int start = _outputUsed;
        int written = 0;
        for (int i = 0; i < packetCount; i++)
        {
            Entry entry = packets[i];
            int n = _depacketizer.Depacketize(frame.Bytes.AsSpan(entry.Offset, entry.Length), _output.AsSpan(start + written));
            if (n < 0)
            {
                GiveUp(frame);
                return;
            }

            written += n;
        }

        bool key = _depacketizer.IsKeyFrame(frame.Bytes.AsSpan(packets[0].Offset, packets[0].Length));
        _outputUsed += written;
        _ready.Enqueue((new RtpFrameInfo(frame.Timestamp, true, key, packetCount, written, packets[0].Sequence), start));
        CompleteFrames++;

        // Packets after the end with the same timestamp are not expected; they go with the frame.
        DroppedPackets += packets.Count - packetCount;
        Finish(frame);
    }

    private void GiveUp(PendingFrame frame)
    {
        long first = frame.Packets.Count > 0 ? frame.Packets[0].Sequence : 0;
        _ready.Enqueue((new RtpFrameInfo(frame.Timestamp, false, false, frame.Packets.Count, 0, first), _outputUsed));
        IncompleteFrames++;
        Finish(frame);
    }

    private void Finish(PendingFrame frame)
    {
        _recentFinished[_recentFinishedNext] = frame.Timestamp;
        _recentFinishedNext = (_recentFinishedNext + 1) % RecentCount;
        _recentFinishedCount = Math.Min(_recentFinishedCount + 1, RecentCount);
        _pending.Remove(frame);
        frame.Packets.Clear();
        frame.Used = 0;
        _spare.Push(frame);
    }
}
