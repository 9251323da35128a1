using System.Buffers.Binary;
using System.Text;
using Transport.Rtp;
using Transport.Streaming.Jsep;
using Transport.Streaming.WebRtc;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// <see cref="RemoteTrackSet"/> alone: tracks added with their events, BUNDLE demultiplexing of RTP packets to them
/// (RFC 9143 section 9.2: signalled SSRCs, the mid header extension, a payload type only one section uses; RTX SSRCs
/// learned by their payload type, RFC 4588), ending tracks once, and the PLIs waiting to be sent; on virtual time.
/// </summary>
public sealed class RemoteTrackSetTests
{
    private const int MidId = 4;
    private static readonly TimeSpan T1 = TimeSpan.FromMilliseconds(100), T2 = TimeSpan.FromMilliseconds(250);

    private static RemoteTrack Video(string mid, int? midExtension = MidId) =>
        new(MediaKind.Video, mid, [new NegotiatedCodec(CodecSpec.Vp8, 96, null, 97)], "stream", "video" + mid, 16, 16)
        {
            MidExtensionId = midExtension,
            MidBytes = Encoding.ASCII.GetBytes(mid),
        };

    private static RemoteTrack Audio(string mid) =>
        new(MediaKind.Audio, mid, [new NegotiatedCodec(CodecSpec.Opus, 111, null, null)], "stream", "audio" + mid, 16, 16)
        {
            MidBytes = Encoding.ASCII.GetBytes(mid),
        };

    // An RTP packet (RFC 3550 5.1) with, when given, the RFC 8285 one-byte mid element, and a small payload.
    private static byte[] Rtp(byte payloadType, uint ssrc, string? mid = null)
    {
        var extension = mid is null ? 0 : 4 + ((1 + mid.Length + 3) & ~3);
        var packet = new byte[RtpPacket.FixedHeaderLength + extension + 8];
        packet[0] = (byte)(0x80 | (mid is null ? 0 : 0x10));
        packet[1] = payloadType;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), 7);
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(4), 90_000);
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(8), ssrc);
        if (mid is not null)
        {
            packet[12] = 0xBE;
            packet[13] = 0xDE;
            BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(14), (ushort)((extension - 4) / 4));
            packet[16] = (byte)((MidId << 4) | (mid.Length - 1));
            Encoding.ASCII.GetBytes(mid, packet.AsSpan(17));
        }
        return packet;
    }

    private static readonly (RemoteTrack? Track, bool IsRtx, bool Learned) None = (null, false, false);

    private static (RemoteTrack? Track, bool IsRtx, bool Learned) Find(RemoteTrackSet set, byte[] packet)
    {
        Assert.True(RtpPacket.TryRead(packet, out var rtp));
        var track = set.Find(rtp, out var isRtx, out var learned);
        return (track, isRtx, learned);
    }

    [Fact]
    public void AnAddedTrackIsAnnouncedAndItsSignalledSsrcsRouteMediaAndRtx()
    {
        var events = new Queue<PeerConnectionEvent>();
        var set = new RemoteTrackSet(events);
        var video = Video("0");
        set.Add(video, ssrc: 1111, rtxSsrc: 2222, T1);
        var added = Assert.IsType<RemoteTrackAdded>(Assert.Single(events));
        Assert.Equal((T1, video), (added.At, added.Track));
        Assert.Equal((1111u, (uint?)2222), (video.Ssrc, video.RtxSsrc));
        Assert.Equal((video, false, false), Find(set, Rtp(96, 1111)));
        Assert.Equal((video, true, false), Find(set, Rtp(97, 2222)));
        Assert.True(set.TryGetBySsrc(1111, out var bySsrc));
        Assert.Same(video, bySsrc);
        Assert.False(set.TryGetBySsrc(2222, out _));   // an RTX SSRC is not a media SSRC (RTCP BYE names the media one)
        Assert.True(set.HasMid("0"));
        Assert.False(set.HasMid("1"));
    }

    [Fact]
    public void WithoutSignalledSsrcsTheMidExtensionBindsTheMediaSsrcThenTheRtxOneByItsPayloadType()
    {
        var set = new RemoteTrackSet(new Queue<PeerConnectionEvent>());
        var a = Video("0");
        var b = Video("1");
        set.Add(a, null, null, T1);
        set.Add(b, null, null, T1);
        Assert.Equal(None, Find(set, Rtp(96, 6000)));          // no mid, and two sections use 96: ambiguous
        Assert.Equal((b, false, true), Find(set, Rtp(96, 5001, mid: "1")));   // learned: the caller registers its statistics
        Assert.Equal(5001u, b.Ssrc);
        Assert.Equal((b, true, false), Find(set, Rtp(97, 5002, mid: "1")));
        Assert.Equal((uint?)5002, b.RtxSsrc);
        Assert.Equal((b, false, false), Find(set, Rtp(96, 5001)));             // by its SSRC from now on, no mid needed
        Assert.Equal(None, Find(set, Rtp(96, 5003, mid: "1")));   // a second media SSRC is not bound
        Assert.Equal(0u, a.Ssrc);
    }

    [Fact]
    public void APayloadTypeOnlyOneSectionUsesRoutesAPacketWithoutMid()
    {
        var set = new RemoteTrackSet(new Queue<PeerConnectionEvent>());
        var audio = Audio("0");
        var video = Video("1", midExtension: null);
        set.Add(audio, null, null, T1);
        set.Add(video, null, null, T1);
        Assert.Equal((audio, false, true), Find(set, Rtp(111, 42)));
        Assert.Equal((video, true, false), Find(set, Rtp(97, 43)));
        Assert.Equal(None, Find(set, Rtp(100, 44)));   // no section uses 100
    }

    [Fact]
    public void ATrackEndsOnceAndEndingAllEndsOnlyTheOthers()
    {
        var events = new Queue<PeerConnectionEvent>();
        var set = new RemoteTrackSet(events);
        var a = Video("0");
        var b = Audio("1");
        set.Add(a, 1, null, T1);
        set.Add(b, 2, null, T1);
        events.Clear();
        Assert.False(set.AllEnded);
        set.End(a, "RTCP BYE", T1);
        set.End(a, "again", T2);
        var ended = Assert.IsType<RemoteTrackEnded>(Assert.Single(events));
        Assert.Equal((T1, a, "RTCP BYE"), (ended.At, ended.Track, ended.Reason));
        Assert.False(set.AllEnded);
        events.Clear();
        set.EndAll("connection closed", T2);
        ended = Assert.IsType<RemoteTrackEnded>(Assert.Single(events));
        Assert.Equal((T2, b, "connection closed"), (ended.At, ended.Track, ended.Reason));
        Assert.True(set.AllEnded);
        Assert.Equal("RTCP BYE", a.Ended.Result);
        Assert.True(new RemoteTrackSet(new Queue<PeerConnectionEvent>()).AllEnded);   // none: all ended, as Enumerable.All says
    }

    [Fact]
    public void PendingPlisAreTakenInTrackOrderEachOnce()
    {
        var set = new RemoteTrackSet(new Queue<PeerConnectionEvent>());
        var a = Video("0");
        var b = Video("1");
        var c = Audio("2");
        set.Add(a, 1, null, T1);
        set.Add(b, 2, null, T1);
        set.Add(c, 3, null, T1);
        Assert.False(set.AnyPliPending);
        Assert.Null(set.TakePendingPli());
        c.PliPending = true;
        a.PliPending = true;
        Assert.True(set.AnyPliPending);
        Assert.Same(a, set.TakePendingPli());
        Assert.False(a.PliPending);
        Assert.Same(c, set.TakePendingPli());
        Assert.Null(set.TakePendingPli());
        Assert.False(set.AnyPliPending);
    }
}
