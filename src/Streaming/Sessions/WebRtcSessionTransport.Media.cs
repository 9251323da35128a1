using System.Collections.Concurrent;
using Transport.Streaming.Jsep;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Sessions;

/// <summary>
/// The media half: the client's tracks become <see cref="MediaInput"/> frames (depacketized below), and
/// <see cref="MediaOutput"/> frames go out on the session's own tracks, packetized and SRTP-protected by the peer
/// connection, with RTP timestamps advanced by each frame's duration.
/// </summary>
public sealed partial class WebRtcSessionTransport
{
    private readonly ConcurrentDictionary<string, LocalTrack> _localTracks = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<LocalTrack, uint> _nextTimestamp = new();
    private readonly ConcurrentDictionary<string, RemoteTrack> _remoteTracks = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<Task> _trackReaders = new();
    private long _framesIn, _framesOut, _framesDropped;

    /// <summary>Media frames received from the client and handed to the handler.</summary>
    public long MediaFramesReceived => Interlocked.Read(ref _framesIn);

    /// <summary>Media frames sent to the client.</summary>
    public long MediaFramesSent => Interlocked.Read(ref _framesOut);

    /// <summary>Media frames not sent (send queue full) or not delivered (incomplete).</summary>
    public long MediaFramesDropped => Interlocked.Read(ref _framesDropped);

    /// <summary>The track name of a kind, as handlers see it ("audio", "video").</summary>
    public static string TrackName(MediaKind kind) => kind == MediaKind.Audio ? "audio" : "video";

    /// <summary>Registers one of our outgoing tracks (added before the answer) under its name.</summary>
    internal void AddLocalTrack(LocalTrack track) => _localTracks.TryAdd(TrackName(track.Kind), track);

    private async Task RemoteTracksLoopAsync()
    {
        try
        {
            await foreach (var track in _pc.RemoteTracks.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                _remoteTracks.TryAdd(TrackName(track.Kind), track);
                lock (_trackReaders) _trackReaders.Add(Task.Run(() => ReadFramesAsync(track)));
            }
        }
        catch (OperationCanceledException) { }
    }

    private async Task ReadFramesAsync(RemoteTrack track)
    {
        var name = TrackName(track.Kind);
        uint? last = null;
        try
        {
            await foreach (var frame in track.Frames.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                using (frame)
                {
                    if (!frame.IsComplete) { Interlocked.Increment(ref _framesDropped); continue; }
                    var codec = CodecOf(track, frame.PayloadType);
                    // The duration is the timestamp step to the previous frame (RFC 3550 section 5.1), or one typical frame.
                    var duration = last is { } l && codec is not null && frame.Timestamp != l
                        ? TimeSpan.FromSeconds((uint)(frame.Timestamp - l) / (double)codec.Codec.ClockRate)
                        : track.Kind == MediaKind.Audio ? TimeSpan.FromMilliseconds(20) : TimeSpan.FromMilliseconds(33);
                    last = frame.Timestamp;
                    Interlocked.Add(ref _bytesIn, frame.Length);
                    Interlocked.Increment(ref _framesIn);
                    await _inputs.Writer.WriteAsync(new MediaInput(new MediaFrame(name, codec?.Codec.Name ?? "unknown", frame.Data.ToArray(), duration,
                        frame.IsKeyFrame)), _stop.Token).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException) { }
        catch (System.Threading.Channels.ChannelClosedException) { }
    }

    // The worst interarrival jitter of the client's tracks, in time (each track's in RTP units over its clock rate).
    private TimeSpan? WorstJitter()
    {
        TimeSpan? worst = null;
        foreach (var track in _remoteTracks.Values)
        {
            if (Volatile.Read(ref track.PacketsReceived) == 0) continue;
            var clockRate = track.Codecs.Count > 0 ? track.Codecs[0].Codec.ClockRate : track.Kind == MediaKind.Audio ? 48000 : 90000;
            if (clockRate <= 0) continue;
            var jitter = TimeSpan.FromSeconds(Volatile.Read(ref track.Jitter) / (double)clockRate);
            if (worst is null || jitter > worst) worst = jitter;
        }
        return worst;
    }

    private static NegotiatedCodec? CodecOf(RemoteTrack track, byte payloadType)
    {
        foreach (var c in track.Codecs) if (c.PayloadType == payloadType) return c;
        return track.Codecs.Count > 0 ? track.Codecs[0] : null;
    }

    private async ValueTask SendMediaAsync(MediaOutput media, CancellationToken cancellationToken)
    {
        var frame = media.Frame;
        if (!_localTracks.TryGetValue(frame.Track, out var track))
            throw new ArgumentException($"The session has no outgoing '{frame.Track}' track (the client's offer had none); tracks: " +
                $"{string.Join(", ", _localTracks.Keys)}.", nameof(media));
        // A frame of another codec than the one negotiated on the track (a broadcast whose publisher and viewer chose
        // differently) cannot be packetized as it: counted as dropped, not sent as garbage.
        if (track.Codec is { } negotiated && !string.IsNullOrEmpty(frame.Codec) && frame.Codec != "unknown" &&
            !frame.Codec.Equals(negotiated.Codec.Name, StringComparison.OrdinalIgnoreCase))
        {
            Interlocked.Increment(ref _framesDropped);
            return;
        }
        var clockRate = track.Codec?.Codec.ClockRate ?? (track.Kind == MediaKind.Audio ? 48000 : 90000);
        var timestamp = _nextTimestamp.GetOrAdd(track, _ => (uint)Random.Shared.Next());
        _nextTimestamp[track] = unchecked(timestamp + (uint)Math.Round(frame.Duration.TotalSeconds * clockRate));
        MediaSendResult result;
        try { result = await _pc.SendFrameAsync(track, frame.Payload, timestamp, cancellationToken).ConfigureAwait(false); }
        catch (ObjectDisposedException) { throw new TransportNotConnectedException("closed", EndedDetail()); }
        if (result == MediaSendResult.Sent)
        {
            Interlocked.Increment(ref _framesOut);
            Interlocked.Add(ref _bytesOut, frame.Payload.Length);
            Interlocked.Add(ref _mediaBytesOut, frame.Payload.Length);
            Interlocked.Exchange(ref _lastSent, _time.GetTimestamp());
        }
        else Interlocked.Increment(ref _framesDropped); // QueueFull / Invalid: counted on the track as well
    }

    /// <summary>
    /// The client asked for a key frame of what we send (PLI/FIR): pass the request on to its own video track (an
    /// echo's source); with no such track (a WHEP viewer), the handler gets a <see cref="KeyFrameRequest"/> input.
    /// </summary>
    private async Task OnKeyFrameRequestAsync(LocalTrack track)
    {
        if (!_remoteTracks.TryGetValue("video", out var video))
        {
            _inputs.Writer.TryWrite(new KeyFrameRequest(TrackName(track.Kind)));
            return;
        }
        try { await _pc.RequestKeyFrameAsync(video, _stop.Token).ConfigureAwait(false); }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or TransportNotConnectedException) { }
    }

    /// <inheritdoc/>
    public IReadOnlySet<string> OutgoingTracks => _localTracks.Keys.ToHashSet(StringComparer.OrdinalIgnoreCase);

    /// <inheritdoc/>
    public async ValueTask<bool> RequestKeyFrameAsync(string track, CancellationToken cancellationToken)
    {
        if (!_remoteTracks.TryGetValue(track, out var remote)) return false;
        try { await _pc.RequestKeyFrameAsync(remote, cancellationToken).ConfigureAwait(false); return true; }
        catch (Exception e) when (e is ObjectDisposedException or TransportNotConnectedException) { return false; }
    }
}
