using System.Diagnostics.CodeAnalysis;
using Transport.Rtp;

namespace Transport.Streaming.WebRtc;

/// <summary>
/// The peer's tracks: one per media section it sends on, in the order the exchanges added them; the SSRCs bound to
/// them (signalled, or learned from the first packet); BUNDLE demultiplexing of an incoming RTP packet to its track
/// (RFC 9143 section 9.2); the end of a track and of all of them; the PLIs waiting to be sent. Its events
/// (<see cref="RemoteTrackAdded"/>, <see cref="RemoteTrackEnded"/>) go to the connection's queue. The RTP session's
/// receive statistics are the caller's: a bound media SSRC is reported (<c>learnedSsrc</c>, or the SSRC passed to
/// <see cref="Add"/>) for it to register.
/// </summary>
internal sealed class RemoteTrackSet(Queue<PeerConnectionEvent> events)
{
    private readonly List<RemoteTrack> _tracks = new();
    private readonly Dictionary<uint, RemoteTrack> _bySsrc = new();
    private readonly Dictionary<uint, RemoteTrack> _byRtxSsrc = new();

    /// <summary>The tracks in the order they were added (the list itself: a foreach over it allocates nothing).</summary>
    public List<RemoteTrack> Tracks => _tracks;

    public int Count => _tracks.Count;

    /// <summary>Whether a track of section <paramref name="mid"/> exists (a later exchange adds none for it).</summary>
    public bool HasMid(string mid)
    {
        foreach (var t in _tracks)
            if (t.Mid == mid) return true;
        return false;
    }

    /// <summary>
    /// Adds the track of a section the peer sends on, with the SSRCs its description signalled (a=ssrc-group:FID, else
    /// the first a=ssrc; RFC 5576, RFC 4588), and queues <see cref="RemoteTrackAdded"/>.
    /// </summary>
    public void Add(RemoteTrack track, uint? ssrc, uint? rtxSsrc, TimeSpan now)
    {
        _tracks.Add(track);
        if (ssrc is { } s) BindSsrc(track, s);
        if (rtxSsrc is { } r) BindRtxSsrc(track, r);
        events.Enqueue(new RemoteTrackAdded(now, track));
    }

    /// <summary>The track whose media SSRC is <paramref name="ssrc"/>.</summary>
    public bool TryGetBySsrc(uint ssrc, [MaybeNullWhen(false)] out RemoteTrack track) => _bySsrc.TryGetValue(ssrc, out track);

    /// <summary>
    /// BUNDLE demultiplexing (RFC 9143 section 9.2): by the SSRCs bound already, else by the mid header extension (the
    /// SSRC is then learned, as RTX when the payload type is an RTX one), else by a payload type only one section uses.
    /// Null when no track claims the packet, or it is ambiguous, or it would bind a second SSRC to a track.
    /// <paramref name="learnedSsrc"/>: the packet bound a new media SSRC to the track.
    /// </summary>
    public RemoteTrack? Find(in RtpPacket rtp, out bool isRtx, out bool learnedSsrc)
    {
        isRtx = false;
        learnedSsrc = false;
        if (_bySsrc.TryGetValue(rtp.Ssrc, out var track)) return track;
        if (_byRtxSsrc.TryGetValue(rtp.Ssrc, out track)) { isRtx = true; return track; }
        RemoteTrack? match = null;
        foreach (var t in _tracks)
        {
            if (t.MidExtensionId is { } id && rtp.TryGetExtension(id, out var value) && value.SequenceEqual(t.MidBytes)) { match = t; break; }
        }
        if (match is null)
        {
            foreach (var t in _tracks)
            {
                if (t.Ssrc != 0 && t.RtxSsrc is not null) continue;
                foreach (var c in t.Codecs)
                {
                    if (c.PayloadType != rtp.PayloadType && c.RtxPayloadType != rtp.PayloadType) continue;
                    if (match is not null && match != t) return null; // ambiguous
                    match = t;
                }
            }
        }
        if (match is null) return null;
        if (AssociatedPayloadType(match, rtp.PayloadType) is not null)
        {
            if (match.RtxSsrc is not null) return null;
            BindRtxSsrc(match, rtp.Ssrc);
            isRtx = true;
            return match;
        }
        if (match.Ssrc != 0) return null;
        BindSsrc(match, rtp.Ssrc);
        learnedSsrc = true;
        return match;
    }

    /// <summary>The payload type an RTX payload type of <paramref name="track"/> stands for (RFC 4588 apt), or null when it is none.</summary>
    public static int? AssociatedPayloadType(RemoteTrack track, int rtxPayloadType)
    {
        foreach (var c in track.Codecs)
            if (c.RtxPayloadType == rtxPayloadType) return c.PayloadType;
        return null;
    }

    /// <summary>Ends <paramref name="track"/> (its readers complete) and queues <see cref="RemoteTrackEnded"/>, once.</summary>
    public void End(RemoteTrack track, string reason, TimeSpan now)
    {
        if (track.IsEnded) return;
        track.End(reason);
        events.Enqueue(new RemoteTrackEnded(now, track, reason));
    }

    /// <summary>Ends every track not ended yet (the connection closed or failed).</summary>
    public void EndAll(string reason, TimeSpan now)
    {
        foreach (var t in _tracks) End(t, reason, now);
    }

    /// <summary>Whether every track ended (true when there is none).</summary>
    public bool AllEnded
    {
        get
        {
            foreach (var t in _tracks)
                if (!t.IsEnded) return false;
            return true;
        }
    }

    /// <summary>Whether a PLI waits to be sent for some track.</summary>
    public bool AnyPliPending
    {
        get
        {
            foreach (var t in _tracks)
                if (t.PliPending) return true;
            return false;
        }
    }

    /// <summary>The first track whose PLI waits, its request taken (the caller sends it, or gives it up); null when none.</summary>
    public RemoteTrack? TakePendingPli()
    {
        foreach (var t in _tracks)
        {
            if (!t.PliPending) continue;
            t.PliPending = false;
            return t;
        }
        return null;
    }

    private void BindSsrc(RemoteTrack track, uint ssrc)
    {
        track.Ssrc = ssrc;
        _bySsrc[ssrc] = track;
    }

    private void BindRtxSsrc(RemoteTrack track, uint ssrc)
    {
        track.RtxSsrc = ssrc;
        _byRtxSsrc[ssrc] = track;
    }
}
