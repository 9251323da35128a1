using System.Runtime.InteropServices;
using Transport.Streaming.Sessions;
using Transport.TestKit;

namespace Transport.Streaming.Tests.Sessions;

/// <summary>
/// The test pattern: <see cref="Vp8FlatEncoder"/>'s frames decoded by libvpx (Debian's libvpx7, which Chromium also
/// uses) are exactly the colours asked for, macroblock by macroblock; <see cref="TestPatternSource"/> publishes only
/// while the broadcast has viewers and is not paused, on its clock.
/// </summary>
public sealed partial class TestPatternTests
{
    [Theory]
    [InlineData(320, 240, 0)]
    [InlineData(320, 240, 37)]
    [InlineData(100, 50, 5)]   // partial macroblocks on the right and at the bottom
    [InlineData(16, 16, 1)]
    public void Vp8FramesDecodeWithLibvpxToExactlyTheColoursOfTheirMacroblocks(int width, int height, int n)
    {
        var frame = TestPatternSource.RenderFrame(n, width, height);
        Assert.Equal(0, frame[0] & 1);                         // a key frame
        Assert.Equal(new byte[] { 0x9d, 0x01, 0x2a }, frame[3..6]);
        using var decoder = new Libvpx();
        var (y, u, v, yStride, uvStride, w, h) = decoder.Decode(frame);
        Assert.Equal((width, height), (w, h));
        var columns = (width + 15) / 16;
        var rows = (height + 15) / 16;
        var colours = new HashSet<(byte, byte, byte)>();
        for (var my = 0; my < rows; my++)
        {
            for (var mx = 0; mx < columns; mx++)
            {
                var want = TestPatternSource.Colour(n, mx, my, width, height);
                colours.Add(want);
                // Every visible pixel of the macroblock (luma) and of its chroma block.
                for (var py = my * 16; py < Math.Min(height, my * 16 + 16); py++)
                    for (var px = mx * 16; px < Math.Min(width, mx * 16 + 16); px++)
                        Assert.True(y[py * yStride + px] == want.Y, $"Y at ({px}, {py}) in macroblock ({mx}, {my}): {y[py * yStride + px]}, not {want.Y}");
                for (var py = my * 8; py < Math.Min((height + 1) / 2, my * 8 + 8); py++)
                    for (var px = mx * 8; px < Math.Min((width + 1) / 2, mx * 8 + 8); px++)
                        Assert.True((u[py * uvStride + px], v[py * uvStride + px]) == (want.U, want.V), $"UV at ({px}, {py}) in macroblock ({mx}, {my})");
            }
        }
        if (width >= 64) Assert.True(colours.Count >= 4, "the pattern has bars");
    }

    [Fact]
    public void TheBitstreamCarriesLargeAndNegativeDifferencesEveryTokenCategory()
    {
        // Neighbours from black to white and back: differences of every size, both signs, in all three planes.
        var values = new byte[] { 0, 255, 1, 254, 2, 128, 129, 120, 140, 100, 16, 235, 60, 61, 67, 50 };
        var frame = Vp8FlatEncoder.Encode(64, 64, (x, y) => (values[(x + 4 * y) % 16], values[(x * 3 + y) % 16], values[(x + y * 5) % 16]));
        using var decoder = new Libvpx();
        var (yp, up, vp, yStride, uvStride, _, _) = decoder.Decode(frame);
        for (var my = 0; my < 4; my++)
            for (var mx = 0; mx < 4; mx++)
            {
                Assert.Equal(values[(mx + 4 * my) % 16], yp[(my * 16 + 7) * yStride + mx * 16 + 7]);
                Assert.Equal(values[(mx * 3 + my) % 16], up[(my * 8 + 3) * uvStride + mx * 8 + 3]);
                Assert.Equal(values[(mx + my * 5) % 16], vp[(my * 8 + 3) * uvStride + mx * 8 + 3]);
            }
    }

    [Fact]
    public async Task TheSourcePublishesOnItsClockOnlyWhileSomebodyWatchesAndNobodyElsePublishes()
    {
        var clock = new ManualClock();
        var broadcast = new MediaBroadcast();
        var paused = false;
        await using var source = new TestPatternSource(broadcast, () => Volatile.Read(ref paused), framesPerSecond: 25, time: clock);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0, source.Ticks);                          // not started: nothing runs
        source.Start();
        async Task Step(int ticks)
        {
            for (var i = 0; i < ticks; i++)
            {
                var seen = source.Ticks;
                clock.Advance(TimeSpan.FromMilliseconds(20));
                // The loop runs on the thread pool: each tick is taken (published from, or not) before the next.
                var end = DateTime.UtcNow + TimeSpan.FromSeconds(10);
                while (source.Ticks == seen && DateTime.UtcNow < end) await Task.Delay(1);
                Assert.True(source.Ticks > seen, "the source did not take the tick");
            }
        }
        await Step(10);
        Assert.Equal(0, broadcast.FramesPublished);           // nobody watches
        using (var viewer = broadcast.Subscribe())
        {
            await Step(50);                                     // 1 s
            Assert.Equal(50, source.AudioFramesPublished);
            Assert.InRange(source.VideoFramesPublished, 24, 26);
            var frames = new List<MediaFrame>();
            await foreach (var f in viewer.ReadAllAsync(new CancellationTokenSource(TimeSpan.FromSeconds(2)).Token))
            {
                frames.Add(f);
                if (frames.Count == 75) break;
            }
            var video = frames.Where(f => f.Track == "video").ToList();
            Assert.All(video, f => Assert.True(f.KeyFrame && f.Codec == "VP8" && f.Duration == TimeSpan.FromMilliseconds(40)));
            Assert.NotEqual(video[0].Payload.ToArray(), video[1].Payload.ToArray()); // it moves
            Assert.All(frames.Where(f => f.Track == "audio"), f => Assert.Equal(TestPatternSource.OpusSilence.ToArray(), f.Payload.ToArray()));
            Volatile.Write(ref paused, true);
            var before = broadcast.FramesPublished;
            await Step(25);
            Assert.Equal(before, broadcast.FramesPublished);     // a publisher sends: the pattern is quiet
        }
    }

    /// <summary>libvpx's VP8 decoder (vpx_codec_dec_init_ver, vpx_codec_decode, vpx_codec_get_frame), for the tests.</summary>
    private sealed partial class Libvpx : IDisposable
    {
        private const string Library = "libvpx.so.7";
        private const int DecoderAbiVersion = 12; // VPX_DECODER_ABI_VERSION of libvpx 1.x (3 + 4 + VPX_IMAGE_ABI_VERSION 5)
        private readonly IntPtr _context = Marshal.AllocHGlobal(512);

        [LibraryImport(Library)] private static partial IntPtr vpx_codec_vp8_dx();
        [LibraryImport(Library)] private static partial int vpx_codec_dec_init_ver(IntPtr context, IntPtr iface, IntPtr config, long flags, int version);
        [LibraryImport(Library)] private static partial int vpx_codec_decode(IntPtr context, ReadOnlySpan<byte> data, uint size, IntPtr user, long deadline);
        [LibraryImport(Library)] private static partial IntPtr vpx_codec_get_frame(IntPtr context, ref IntPtr iterator);
        [LibraryImport(Library)] private static partial int vpx_codec_destroy(IntPtr context);

        public Libvpx()
        {
            Marshal.Copy(new byte[512], 0, _context, 512);
            try
            {
                var status = vpx_codec_dec_init_ver(_context, vpx_codec_vp8_dx(), IntPtr.Zero, 0, DecoderAbiVersion);
                if (status != 0) throw new InvalidOperationException($"vpx_codec_dec_init_ver failed: {status}");
            }
            catch (DllNotFoundException e)
            {
                throw new InvalidOperationException($"{Library} is missing: install the Debian package 'libvpx7' (test.sh does).", e);
            }
        }

        public (byte[] Y, byte[] U, byte[] V, int YStride, int UvStride, int Width, int Height) Decode(byte[] frame)
        {
            var status = vpx_codec_decode(_context, frame, (uint)frame.Length, IntPtr.Zero, 0);
            Assert.True(status == 0, $"libvpx refused the frame: error {status}");
            var iterator = IntPtr.Zero;
            var image = vpx_codec_get_frame(_context, ref iterator);
            Assert.True(image != IntPtr.Zero, "libvpx gave no picture");
            // vpx_image_t: fmt, cs, range, w, h, bit_depth, d_w, d_h, r_w, r_h, x/y_chroma_shift (12 ints), planes[4], stride[4].
            int width = Marshal.ReadInt32(image, 24), height = Marshal.ReadInt32(image, 28);
            int yStride = Marshal.ReadInt32(image, 80), uStride = Marshal.ReadInt32(image, 84);
            var y = new byte[yStride * height];
            var u = new byte[uStride * ((height + 1) / 2)];
            var v = new byte[u.Length];
            Marshal.Copy(Marshal.ReadIntPtr(image, 48), y, 0, y.Length);
            Marshal.Copy(Marshal.ReadIntPtr(image, 56), u, 0, u.Length);
            Marshal.Copy(Marshal.ReadIntPtr(image, 64), v, 0, v.Length);
            return (y, u, v, yStride, uStride, width, height);
        }

        public void Dispose()
        {
            vpx_codec_destroy(_context);
            Marshal.FreeHGlobal(_context);
        }
    }
}
