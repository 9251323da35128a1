using System.Buffers.Binary;
using System.Text;

namespace Transport.Streaming.Sessions;

/// <summary>
/// The WebSocket stream transport's wire format. Text frames carry JSON: control messages
/// (<c>{"type":"end_stream","reason":..}</c>, <c>error</c>, <c>output</c>) and text data
/// (<c>{"type":"data","text":..}</c>). Binary frames start with a kind byte:
/// <code>
/// 0x00 | data bytes                                                       a binary data message
/// 0x01 | track length (1) | track | codec length (1) | codec | flags (1) | duration in us (4, big endian) | payload   a media frame
/// </code>
/// Flags: bit 0 = key frame.
/// </summary>
public static class WebSocketFrames
{
    public const byte BinaryData = 0x00;
    public const byte Media = 0x01;

    /// <summary>The header length of a media frame with these names.</summary>
    public static int MediaHeaderLength(string track, string codec) =>
        1 + 1 + Encoding.UTF8.GetByteCount(track) + 1 + Encoding.UTF8.GetByteCount(codec) + 1 + 4;

    /// <summary>Writes a media frame; returns its length.</summary>
    public static int WriteMedia(MediaFrame frame, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(frame);
        var track = Encoding.UTF8.GetBytes(frame.Track);
        var codec = Encoding.UTF8.GetBytes(frame.Codec);
        if (track.Length > 255 || codec.Length > 255) throw new ArgumentException("Track and codec names are at most 255 bytes.", nameof(frame));
        var o = 0;
        destination[o++] = Media;
        destination[o++] = (byte)track.Length;
        track.CopyTo(destination[o..]); o += track.Length;
        destination[o++] = (byte)codec.Length;
        codec.CopyTo(destination[o..]); o += codec.Length;
        destination[o++] = frame.KeyFrame ? (byte)1 : (byte)0;
        var micros = frame.Duration.Ticks / 10;
        BinaryPrimitives.WriteUInt32BigEndian(destination[o..], (uint)Math.Clamp(micros, 0, uint.MaxValue)); o += 4;
        frame.Payload.Span.CopyTo(destination[o..]);
        return o + frame.Payload.Length;
    }

    /// <summary>Reads a binary frame into an input; false for a malformed frame.</summary>
    public static bool TryRead(ReadOnlySpan<byte> frame, out StreamInput? input)
    {
        input = null;
        if (frame.IsEmpty) return false;
        if (frame[0] == BinaryData)
        {
            input = new DataInput(frame[1..].ToArray(), false);
            return true;
        }
        if (frame[0] != Media) return false;
        var o = 1;
        if (frame.Length < o + 1) return false;
        int trackLength = frame[o++];
        if (frame.Length < o + trackLength + 1) return false;
        var track = Encoding.UTF8.GetString(frame.Slice(o, trackLength)); o += trackLength;
        int codecLength = frame[o++];
        if (frame.Length < o + codecLength + 5) return false;
        var codec = Encoding.UTF8.GetString(frame.Slice(o, codecLength)); o += codecLength;
        var key = (frame[o++] & 1) != 0;
        var duration = TimeSpan.FromTicks(BinaryPrimitives.ReadUInt32BigEndian(frame[o..]) * 10L); o += 4;
        input = new MediaInput(new MediaFrame(track, codec, frame[o..].ToArray(), duration, key));
        return true;
    }
}
