using System.Text.Json;

namespace Transport.Streaming.Sessions;

/// <summary>A media frame as handlers see it: one encoded frame of one track (packetization happens below).</summary>
/// <param name="Track">The track's name (e.g. "audio", "video" or an m= section's mid).</param>
/// <param name="Codec">The codec name as in SDP (e.g. "opus", "VP8", "H264").</param>
/// <param name="Payload">The encoded frame.</param>
/// <param name="Duration">How long the frame plays (used for pacing and RTP timestamps).</param>
/// <param name="KeyFrame">Whether a decoder can start at this frame.</param>
public sealed record MediaFrame(string Track, string Codec, ReadOnlyMemory<byte> Payload, TimeSpan Duration, bool KeyFrame = false);

/// <summary>What a handler receives.</summary>
public abstract record StreamInput;

/// <summary>A data message from the client: on a data channel (WebRTC) or a binary/text frame (WebSocket).</summary>
public sealed record DataInput(ReadOnlyMemory<byte> Data, bool IsText, string Channel = "") : StreamInput
{
    /// <summary>The data as UTF-8 text.</summary>
    public string Text => System.Text.Encoding.UTF8.GetString(Data.Span);
}

/// <summary>A media frame from the client.</summary>
public sealed record MediaInput(MediaFrame Frame) : StreamInput;

/// <summary>
/// The client asked for a key frame of what we send on <paramref name="Track"/> (RTCP PLI or FIR) and no track of its
/// own feeds that one (an echo's requests go straight to the client's own video instead).
/// </summary>
public sealed record KeyFrameRequest(string Track) : StreamInput;

/// <summary>
/// The session's graded health changed level (<see cref="HealthGrader"/>): in the handler's inputs only with
/// <see cref="StreamServerOptions.HealthInputs"/> (off by default, so handlers that expect only the client's data and
/// media see nothing new). Raised by the server's health check, before the client is told. A handler that has not read
/// its inputs for a while gets one item for all the changes meanwhile: <paramref name="From"/> is the level it was last
/// told (healthy at the start), <paramref name="Grade"/> the latest; changes that came back to the level it was last
/// told give no item. Not counted in <see cref="SessionHealth.PendingInputs"/>, and taking it is not taking client input.
/// </summary>
/// <param name="From">The level the handler last saw.</param>
/// <param name="Grade">The new level and the reasons for it.</param>
public sealed record HealthInput(HealthLevel From, HealthGrade Grade) : StreamInput
{
    /// <summary>The new level.</summary>
    public HealthLevel Level => Grade.Level;
}

/// <summary>What a handler yields.</summary>
public abstract record StreamOutput;

/// <summary>A data message to the client.</summary>
public sealed record DataOutput(ReadOnlyMemory<byte> Data, bool IsText, string Channel = "") : StreamOutput
{
    public static DataOutput FromText(string text, string channel = "") => new(System.Text.Encoding.UTF8.GetBytes(text), true, channel);
}

/// <summary>A media frame to the client; packetized and paced below.</summary>
public sealed record MediaOutput(MediaFrame Frame) : StreamOutput;

/// <summary>An additional output: a JSON value sent on the control channel as <c>{"type":"output","data":...}</c>.</summary>
public sealed record AdditionalOutput(JsonElement Data) : StreamOutput
{
    public static AdditionalOutput From<T>(T value) => new(JsonSerializer.SerializeToElement(value));
}

/// <summary>
/// Ends the stream on purpose: everything yielded before it is delivered first, then the client gets an
/// <c>end_stream</c> control message with <paramref name="Reason"/>, then the close.
/// </summary>
public sealed record EndStream(string Reason = "completed") : StreamOutput;
