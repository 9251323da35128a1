using System.Buffers;
using Transport.Ice.Turn;

namespace Transport.Ice.Tests.Turn;

/// <summary>ChannelData (RFC 8656 section 12.4) and the TCP stream framing of RFC 8656 section 12.5.</summary>
public sealed class ChannelDataTests
{
    [Fact]
    public void WritesTheHeaderAndPadsOnlyWhenAsked()
    {
        var buffer = new byte[16];
        Assert.Equal(7, ChannelData.Write(buffer, 0x4001, "abc"u8, padded: false));
        Assert.Equal(new byte[] { 0x40, 0x01, 0x00, 0x03, (byte)'a', (byte)'b', (byte)'c' }, buffer[..7]);
        buffer.AsSpan().Fill(0xEE);
        Assert.Equal(8, ChannelData.Write(buffer, 0x4FFF, "abc"u8, padded: true));
        Assert.Equal(new byte[] { 0x4F, 0xFF, 0x00, 0x03, (byte)'a', (byte)'b', (byte)'c', 0 }, buffer[..8]);
    }

    [Fact]
    public void ReadsWithOrWithoutPadding()
    {
        Assert.True(ChannelData.TryRead(new byte[] { 0x40, 0x00, 0x00, 0x01, 7 }, out var unpadded));
        Assert.Equal(0x4000, unpadded.Channel);
        Assert.Equal(new byte[] { 7 }, unpadded.Data.ToArray());
        Assert.True(ChannelData.TryRead(new byte[] { 0x40, 0x00, 0x00, 0x01, 7, 0, 0, 0 }, out var padded));
        Assert.Equal(new byte[] { 7 }, padded.Data.ToArray());
        Assert.True(ChannelData.TryRead(new byte[] { 0x40, 0x00, 0x00, 0x00 }, out var empty));
        Assert.True(empty.Data.IsEmpty);
    }

    [Theory]
    [InlineData(new byte[] { 0x40, 0x00, 0x00 })]                          // shorter than the header
    [InlineData(new byte[] { 0x40, 0x00, 0x00, 0x02, 1 })]                 // less data than the length
    [InlineData(new byte[] { 0x40, 0x00, 0x00, 0x01, 7, 0, 0, 0, 0 })]     // more than three bytes of padding
    [InlineData(new byte[] { 0x50, 0x00, 0x00, 0x00 })]                    // channel 0x5000 is reserved
    [InlineData(new byte[] { 0x3F, 0xFF, 0x00, 0x00 })]                    // below 0x4000
    public void RefusesMalformedMessages(byte[] datagram) => Assert.False(ChannelData.TryRead(datagram, out _));

    [Fact]
    public void RefusesToWriteAChannelOutsideTheRange() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => ChannelData.Write(new byte[8], 0x3FFF, default, false));

    [Fact]
    public void SplitsAStreamIntoStunAndPaddedChannelDataFrames()
    {
        // A STUN header with 4 bytes of attributes, then ChannelData with 5 bytes (padded to 8), then ChannelData with 4.
        var stun = new byte[24];
        stun[1] = 0x17; stun[3] = 4;
        var stream = new List<byte>(stun);
        var cd = new byte[12];
        ChannelData.Write(cd, 0x4000, "hello"u8, padded: true);
        stream.AddRange(cd);
        var cd2 = new byte[8];
        ChannelData.Write(cd2, 0x4001, "four"u8, padded: true);
        stream.AddRange(cd2);
        var bytes = stream.ToArray();

        // Fed in three segments, split at awkward places.
        var sequence = Segments(bytes, 3, 22);
        var lengths = new List<int>();
        while (TurnStreamFraming.TryReadFrame(ref sequence, out var frame) == TurnFrameStatus.Complete) lengths.Add((int)frame.Length);
        Assert.Equal(new[] { 24, 12, 8 }, lengths);
        Assert.Equal(0, sequence.Length);
    }

    [Fact]
    public void WaitsForTheWholeFrame()
    {
        var cd = new byte[12];
        ChannelData.Write(cd, 0x4000, "hello"u8, padded: true);
        for (var cut = 0; cut < cd.Length; cut++)
        {
            var partial = new ReadOnlySequence<byte>(cd, 0, cut);
            Assert.Equal(TurnFrameStatus.NeedMoreData, TurnStreamFraming.TryReadFrame(ref partial, out _));
            Assert.Equal(cut, partial.Length);
            Assert.Equal(TurnFrameStatus.NeedMoreData, TurnStreamFraming.TryReadFrame(cd.AsSpan(0, cut), out _));
        }
        Assert.Equal(TurnFrameStatus.Complete, TurnStreamFraming.TryReadFrame(cd, out var length));
        Assert.Equal(12, length);
    }

    [Theory]
    [InlineData(new byte[] { 0x80, 0, 0, 0 })]   // first bits 10: neither
    [InlineData(new byte[] { 0x00, 1, 0, 3 })]   // STUN length not a multiple of four
    [InlineData(new byte[] { 0x7F, 0, 0, 0 })]   // 01 prefix but not a valid channel
    public void RefusesAStreamThatIsNeitherStunNorChannelData(byte[] prefix) =>
        Assert.Equal(TurnFrameStatus.Invalid, TurnStreamFraming.GetFrameLength(prefix, out _));

    private static ReadOnlySequence<byte> Segments(byte[] bytes, params int[] cuts)
    {
        var first = new Segment(bytes.AsMemory(0, cuts[0]), 0);
        var last = first;
        var start = cuts[0];
        foreach (var cut in cuts.Skip(1).Append(bytes.Length))
        {
            last = last.Append(bytes.AsMemory(start, cut - start));
            start = cut;
        }
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long index) { Memory = memory; RunningIndex = index; }
        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
