namespace Transport.Streaming.Sessions;

/// <summary>
/// A test pattern published into a <see cref="MediaBroadcast"/> while it has viewers and nothing else publishes (the
/// main program's WHEP endpoint without a WHIP publisher): VP8 video of colour bars scrolling sideways with a white
/// square bouncing across them (<see cref="Vp8FlatEncoder"/>, every frame a key frame, so a viewer starts at once and
/// a lost frame costs one frame), and Opus silence on <c>audio</c> every 20 ms. Frames go out on the given
/// <see cref="TimeProvider"/>'s clock; nothing is produced while there is no viewer or the <c>paused</c> callback says so.
/// <see cref="Start"/> starts it, dispose stops it.
/// </summary>
public sealed class TestPatternSource : IAsyncDisposable
{
    /// <summary>An Opus packet of 20 ms of silence (RFC 6716: TOC 0xF8, CELT fullband 20 ms, mono, one frame).</summary>
    public static ReadOnlyMemory<byte> OpusSilence { get; } = new byte[] { 0xF8, 0xFF, 0xFE };

    private static readonly TimeSpan AudioInterval = TimeSpan.FromMilliseconds(20);

    private readonly MediaBroadcast _broadcast;
    private readonly Func<bool> _paused;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private PeriodicTimer? _timer;
    private Task? _loop;
    private long _videoFrames, _audioFrames, _ticks;

    /// <summary>
    /// A source of <paramref name="width"/> x <paramref name="height"/> at <paramref name="framesPerSecond"/> (1-50); it runs once <see cref="Start"/> is
    /// called.
    /// </summary>
    public TestPatternSource(MediaBroadcast broadcast, Func<bool>? paused = null, int width = 320, int height = 240, int framesPerSecond = 25,
        TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(broadcast);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 16);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 16);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(width, 4096);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(height, 4096);
        ArgumentOutOfRangeException.ThrowIfLessThan(framesPerSecond, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(framesPerSecond, 50);
        _broadcast = broadcast;
        _paused = paused ?? (() => false);
        _time = time ?? TimeProvider.System;
        (Width, Height, FramesPerSecond) = (width, height, framesPerSecond);
    }

    /// <summary>Starts publishing (its clock counts from now); idempotent. Nothing runs before, nor after <see cref="DisposeAsync"/>.</summary>
    public void Start()
    {
        lock (_gate)
        {
            if (_loop is not null || _stop.IsCancellationRequested) return;
            _start = _time.GetTimestamp();
            _timer = new PeriodicTimer(AudioInterval, _time); // made here, not on the loop: its first tick counts from now
            _loop = Task.Run(() => RunAsync(_timer));
        }
    }

    public int Width { get; }
    public int Height { get; }
    public int FramesPerSecond { get; }

    /// <summary>Video frames published so far.</summary>
    public long VideoFramesPublished => Interlocked.Read(ref _videoFrames);

    /// <summary>Audio frames published so far.</summary>
    public long AudioFramesPublished => Interlocked.Read(ref _audioFrames);

    /// <summary>Ticks of its 20 ms timer the source has handled (published on, or not: no viewer, paused).</summary>
    public long Ticks => Interlocked.Read(ref _ticks);

    private long _start;

    /// <summary>The pattern's frame <paramref name="n"/> as a VP8 key frame.</summary>
    public static byte[] RenderFrame(int n, int width, int height) => Vp8FlatEncoder.Encode(width, height, (x, y) => Colour(n, x, y, width, height));

    /// <summary>
    /// The colour (Y, U, V) of macroblock (<paramref name="x"/>, <paramref name="y"/>) in frame <paramref name="n"/>: eight
    /// bars that move one macroblock every 4 frames, under a white 3x3-macroblock square that bounces sideways, one
    /// macroblock a frame.
    /// </summary>
    public static (byte Y, byte U, byte V) Colour(int n, int x, int y, int width, int height)
    {
        int columns = (width + 15) / 16, rows = (height + 15) / 16;
        var span = Math.Max(1, columns - 3);
        var phase = n % (2 * span);
        var square = phase < span ? phase : 2 * span - phase;
        var top = Math.Max(0, rows / 2 - 1);
        if (x >= square && x < square + 3 && y >= top && y < top + 3) return (235, 128, 128);
        // The classic bars (white, yellow, cyan, green, magenta, red, blue, black), BT.601 studio range.
        var bar = ((x + n / 4) * 8 / Math.Max(1, columns)) % 8;
        return Bars[bar];
    }

    private static readonly (byte Y, byte U, byte V)[] Bars =
    [
        (180, 128, 128), (162, 44, 142), (131, 156, 44), (112, 72, 58),
        (84, 184, 198), (65, 100, 212), (35, 212, 114), (16, 128, 128),
    ];

    private async Task RunAsync(PeriodicTimer timer)
    {
        var token = _stop.Token;
        var frameInterval = TimeSpan.FromSeconds(1.0 / FramesPerSecond);
        var nextVideo = TimeSpan.Zero;
        var n = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(token).ConfigureAwait(false))
            {
                var now = _time.GetElapsedTime(_start);
                if (_broadcast.Viewers == 0 || _paused()) nextVideo = now;
                else
                {
                    _broadcast.Publish(new MediaFrame("audio", "opus", OpusSilence, AudioInterval));
                    Interlocked.Increment(ref _audioFrames);
                    if (now >= nextVideo)
                    {
                        // One frame per tick at most: a late tick does not send a burst.
                        nextVideo = now - nextVideo > frameInterval ? now + frameInterval : nextVideo + frameInterval;
                        _broadcast.Publish(new MediaFrame("video", "VP8", RenderFrame(n++, Width, Height), frameInterval, KeyFrame: true));
                        Interlocked.Increment(ref _videoFrames);
                    }
                }
                Interlocked.Increment(ref _ticks);
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>Stops publishing.</summary>
    public async ValueTask DisposeAsync()
    {
        Task? loop;
        lock (_gate)
        {
            if (_stop.IsCancellationRequested) return;
            _stop.Cancel();
            loop = _loop;
        }
        if (loop is not null) await loop.ConfigureAwait(false);
        _timer?.Dispose();
        _stop.Dispose();
    }
}
