namespace Transport.Rtp.Payloads;

/// <summary>A frame reported by <see cref="RtpFrameAssembler"/>.</summary>
/// <param name="Timestamp">RTP timestamp shared by the frame's packets.</param>
/// <param name="Complete">True when every packet from frame start to frame end arrived; false for a frame given up.</param>
/// <param name="KeyFrame">True when the codec marks the frame as a key frame (complete frames only).</param>
/// <param name="PacketCount">Packets received for the frame.</param>
/// <param name="Length">Bitstream bytes (0 for incomplete frames).</param>
public readonly record struct RtpFrameInfo(uint Timestamp, bool Complete, bool KeyFrame, int PacketCount, int Length);

/// <summary>
/// Reassembles codec frames from RTP packets of one SSRC: packets are grouped by timestamp and ordered by
/// (unwrapped) sequence number; a frame is complete when the packets from its start (the packet after the previous
/// frame's end, or one the codec marks as a start) to its end (marker bit) are all present. A frame still missing
/// packets when a newer timestamp arrives is reported as incomplete. Payload bytes are kept in reused buffers.
/// </summary>
public sealed class RtpFrameAssembler
{
    private readonly IRtpDepacketizer _depacketizer;
    private readonly int _maxPacketsPerFrame;
    private readonly List<Entry> _packets = new();
    private readonly Queue<(RtpFrameInfo Info, int Offset)> _ready = new();
    private byte[] _slab = new byte[16 * 1024];
    private int _slabUsed;
    private byte[] _output = new byte[64 * 1024];
    private int _outputUsed;
    private SequenceUnwrapper _sequences;
    private bool _hasCurrent;
    private uint _currentTimestamp;
    private long _lastEnd = long.MinValue; // extended sequence of the last reported frame end; MinValue before any

    private readonly record struct Entry(long Sequence, int Offset, int Length, bool Marker);

    /// <summary>Creates an assembler for one payload format.</summary>
    public RtpFrameAssembler(IRtpDepacketizer depacketizer, int maxPacketsPerFrame = 2048)
    {
        _depacketizer = depacketizer;
        _maxPacketsPerFrame = maxPacketsPerFrame;
    }

    /// <summary>Packets dropped because they belong to a frame already reported, duplicate one, or are malformed.</summary>
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
        if (sequence <= _lastEnd)
        {
            DroppedPackets++;
            return;
        }

        if (_hasCurrent && rtp.Timestamp != _currentTimestamp)
        {
            if (_packets.Count > 0 && sequence < _packets[0].Sequence)
            {
                // An older frame's straggler after a newer frame began: that frame was already given up.
                DroppedPackets++;
                return;
            }

            GiveUpCurrent();
        }

        if (!_hasCurrent)
        {
            _hasCurrent = true;
            _currentTimestamp = rtp.Timestamp;
        }

        if (!Insert(sequence, rtp.Payload, rtp.Marker))
        {
            DroppedPackets++;
            return;
        }

        if (_packets.Count > _maxPacketsPerFrame)
        {
            GiveUpCurrent();
            return;
        }

        TryComplete();
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

    private bool Insert(long sequence, ReadOnlySpan<byte> payload, bool marker)
    {
        int index = _packets.Count;
        while (index > 0 && _packets[index - 1].Sequence > sequence)
        {
            index--;
        }

        if (index > 0 && _packets[index - 1].Sequence == sequence)
        {
            return false;
        }

        if (_slabUsed + payload.Length > _slab.Length)
        {
            Array.Resize(ref _slab, Math.Max(_slab.Length * 2, _slabUsed + payload.Length));
        }

        payload.CopyTo(_slab.AsSpan(_slabUsed));
        _packets.Insert(index, new Entry(sequence, _slabUsed, payload.Length, marker));
        _slabUsed += payload.Length;
        return true;
    }

    private void TryComplete()
    {
        Entry first = _packets[0];
        bool startKnown = first.Sequence == _lastEnd + 1 || _depacketizer.IsFrameStart(_slab.AsSpan(first.Offset, first.Length));
        if (!startKnown)
        {
            return;
        }

        for (int i = 0; i < _packets.Count; i++)
        {
            Entry entry = _packets[i];
            if (i > 0 && entry.Sequence != _packets[i - 1].Sequence + 1)
            {
                return; // a gap before the end: wait (a retransmission may fill it)
            }

            if (_depacketizer.IsFrameEnd(_slab.AsSpan(entry.Offset, entry.Length), entry.Marker))
            {
                Emit(i + 1);
                return;
            }
        }
    }

    private void Emit(int packetCount)
    {
        int bound = 0;
        for (int i = 0; i < packetCount; i++)
        {
            bound += _depacketizer.MaxOutputLength(_packets[i].Length);
        }

        if (_outputUsed + bound > _output.Length)
        {
            Array.Resize(ref _output, Math.Max(_output.Length * 2, _outputUsed + bound));
        }

        int start = _outputUsed;
        int written = 0;
        for (int i = 0; i < packetCount; i++)
        {
            Entry entry = _packets[i];
            int n = _depacketizer.Depacketize(_slab.AsSpan(entry.Offset, entry.Length), _output.AsSpan(start + written));
            if (n < 0)
            {
                _lastEnd = _packets[packetCount - 1].Sequence;
                Report(incomplete: true);
                return;
            }

            written += n;
        }

        bool key = _depacketizer.IsKeyFrame(_slab.AsSpan(_packets[0].Offset, _packets[0].Length));
        _outputUsed += written;
        _ready.Enqueue((new RtpFrameInfo(_currentTimestamp, true, key, packetCount, written), start));
        CompleteFrames++;
        _lastEnd = _packets[packetCount - 1].Sequence;

        // Packets after the end with the same timestamp are not expected; drop them with the frame.
        DroppedPackets += _packets.Count - packetCount;
        ResetCurrent();
    }

    private void GiveUpCurrent()
    {
        if (_packets.Count > 0)
        {
            _lastEnd = _packets[^1].Sequence;
        }

        Report(incomplete: true);
    }

    private void Report(bool incomplete)
    {
        if (incomplete)
        {
            _ready.Enqueue((new RtpFrameInfo(_currentTimestamp, false, false, _packets.Count, 0), _outputUsed));
            IncompleteFrames++;
        }

        ResetCurrent();
    }

    private void ResetCurrent()
    {
        _packets.Clear();
        _slabUsed = 0;
        _hasCurrent = false;
    }
}
