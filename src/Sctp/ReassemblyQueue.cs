using System.Runtime.InteropServices;
using Transport.Sctp.Wire;

namespace Transport.Sctp;

/// <summary>
/// Reassembly and ordering of received DATA per inbound stream (RFC 9260 sections 6.5, 6.6 and 6.9): fragments kept
/// sorted by TSN until their message is complete, ordered messages held until their SSN is next, unordered ones
/// delivered at once, messages over the maximum size refused (RFC 8831 section 6.6), and on FORWARD TSN the partial
/// messages that can no longer complete dropped and skipped SSNs passed over (RFC 3758 section 3.6). It takes DATA that
/// <see cref="DataTracker"/> accepted as new; what it holds counts in <see cref="HeldBytes"/>, and a complete message
/// leaves it (and that count) through the deliver callback, with the pooled buffer it was assembled in.
/// </summary>
internal sealed class ReassemblyQueue
{
    /// <summary>A complete message: stream, PPID, a pooled buffer (now the callee's) and the message's length in it.</summary>
    public delegate void DeliverHandler(ushort streamId, uint ppid, byte[] buffer, int length);

    private readonly BufferPool _pool;
    private readonly SctpCounters _counters;
    private readonly int _maxMessageSize;
    private readonly DeliverHandler _deliver;
    private readonly Action<ushort> _onOversize;
    private InboundStream?[] _streams = [];
    private readonly List<InboundStream> _active = new();
    private int _streamCount;

    /// <param name="pool">Where fragment and message buffers are rented and returned.</param>
    /// <param name="counters">OversizeMessage and InvalidStream are counted here.</param>
    /// <param name="maxMessageSize">A message longer than this is refused.</param>
    /// <param name="deliver">Receives every complete message in delivery order.</param>
    /// <param name="onOversize">Told the stream of a refused message (its channel is closed).</param>
    public ReassemblyQueue(BufferPool pool, SctpCounters counters, int maxMessageSize, DeliverHandler deliver, Action<ushort> onOversize)
    {
        _pool = pool;
        _counters = counters;
        _maxMessageSize = maxMessageSize;
        _deliver = deliver;
        _onOversize = onOversize;
    }

    /// <summary>Bytes held: fragments of incomplete messages and complete ordered messages waiting for their turn.</summary>
    public int HeldBytes { get; private set; }

    /// <summary>Fragments and waiting messages held (for tests and diagnostics).</summary>
    public int HeldCount
    {
        get
        {
            var n = 0;
            foreach (var s in _active) n += s.Fragments.Count + s.Pending.Count;
            return n;
        }
    }

    /// <summary>Inbound streams that received anything.</summary>
    public int ActiveStreamCount => _active.Count;
    /// <summary>The id of the <paramref name="i"/>th stream that received anything.</summary>
    public ushort ActiveStreamId(int i) => _active[i].Id;

    /// <summary>Starts with <paramref name="inboundStreams"/> negotiated inbound streams; DATA on others is counted and dropped.</summary>
    public void Start(ushort inboundStreams)
    {
        _streamCount = inboundStreams;
        _streams = new InboundStream?[Math.Min((int)inboundStreams, 16)];
    }

    private InboundStream Stream(ushort id)
    {
        if (id >= _streams.Length)
        {
            // Grown on demand: an association with 65535 negotiated streams usually uses a handful.
            var size = Math.Min(_streamCount, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)id + 1));
            Array.Resize(ref _streams, size);
        }
        var s = _streams[id];
        if (s is null)
        {
            s = new InboundStream(id);
            _streams[id] = s;
            _active.Add(s);
        }
        return s;
    }

    /// <summary>
    /// One new DATA chunk (<paramref name="flags"/> as on the wire: B, E, U). The payload is copied into a pooled buffer;
    /// a message it completes is delivered, with the ordered messages it unblocks.
    /// </summary>
    public void Add(uint tsn, ushort streamId, byte flags, ushort ssn, uint ppid, ReadOnlySpan<byte> payload)
    {
        if (streamId >= _streamCount) { _counters.InvalidStream++; return; }
        var begin = (flags & DataChunk.FlagBegin) != 0;
        var end = (flags & DataChunk.FlagEnd) != 0;
        var stream = Stream(streamId);
        if (stream.Discarding)
        {
            if (tsn == stream.DiscardLastTsn + 1 && !begin)
            {
                stream.DiscardLastTsn = tsn;
                if (end) stream.Discarding = false;
                _counters.OversizeMessage++;
                return;
            }
            if (begin) stream.Discarding = false;
        }
        var len = payload.Length;
        if (begin && end)
        {
            var buffer = _pool.Rent(len);
            payload.CopyTo(buffer);
            HeldBytes += len;
            OnMessageComplete(stream, (flags & DataChunk.FlagUnordered) != 0, ssn, ppid, buffer, len);
            return;
        }
        var frag = new Fragment { Tsn = tsn, Flags = flags, Ssn = ssn, Ppid = ppid, Buffer = _pool.Rent(len), Length = len };
        payload.CopyTo(frag.Buffer);
        HeldBytes += len;
        InsertFragment(stream, frag);
    }

    private void InsertFragment(InboundStream s, Fragment f)
    {
        var list = s.Fragments;
        var i = list.Count;
        while (i > 0 && Serial.Gt(list[i - 1].Tsn, f.Tsn)) i--;
        list.Insert(i, f);
        var unordered = (f.Flags & DataChunk.FlagUnordered) != 0;
        var frags = CollectionsMarshal.AsSpan(list);
        int first, last;
        long total;
        if (s.RunValid && i == frags.Length - 1 && i > 0 && frags[i - 1].Tsn == s.RunEndTsn && SameMessage(frags[i - 1], frags[i], unordered))
        {
            // In-order fast path: the fragment extends the run of the message being reassembled at the end.
            first = i - (int)(f.Tsn - s.RunStartTsn);
            last = i;
            total = s.RunBytes + f.Length;
        }
        else
        {
            // Find the run of consecutive TSNs of one message around the new fragment.
            first = i;
            while ((frags[first].Flags & DataChunk.FlagBegin) == 0 && first > 0 && SameMessage(frags[first - 1], frags[first], unordered)) first--;
            last = i;
            while ((frags[last].Flags & DataChunk.FlagEnd) == 0 && last + 1 < frags.Length && SameMessage(frags[last], frags[last + 1], unordered)) last++;
            total = 0;
            for (var k = first; k <= last; k++) total += frags[k].Length;
        }
        var complete = (frags[first].Flags & DataChunk.FlagBegin) != 0 && (frags[last].Flags & DataChunk.FlagEnd) != 0;
        s.RunValid = false;
        if (total > _maxMessageSize)
        {
            // RFC 8831 section 6.6: a message beyond max-message-size is refused; the data channel is closed.
            _counters.OversizeMessage++;
            var endSeen = (frags[last].Flags & DataChunk.FlagEnd) != 0;
            var lastTsn = frags[last].Tsn;
            RemoveFragments(s, first, last - first + 1);
            if (!endSeen) { s.Discarding = true; s.DiscardLastTsn = lastTsn; }
            _onOversize(s.Id);
            return;
        }
        if (!complete)
        {
            if (last == frags.Length - 1 && (frags[first].Flags & DataChunk.FlagBegin) != 0)
            {
                s.RunValid = true;
                s.RunStartTsn = frags[first].Tsn;
                s.RunEndTsn = frags[last].Tsn;
                s.RunBytes = total;
            }
            return;
        }
        var buffer = _pool.Rent((int)Math.Max(1, total));
        var p = 0;
        for (var k = first; k <= last; k++)
        {
            ref var fr = ref frags[k];
            fr.Buffer.AsSpan(0, fr.Length).CopyTo(buffer.AsSpan(p));
            p += fr.Length;
            _pool.Return(fr.Buffer);
        }
        var ssn = frags[first].Ssn;
        var ppid = frags[first].Ppid;
        list.RemoveRange(first, last - first + 1);
        OnMessageComplete(s, unordered, ssn, ppid, buffer, p);
    }

    private static bool SameMessage(in Fragment a, in Fragment b, bool unordered) =>
        b.Tsn == a.Tsn + 1
        && ((a.Flags & DataChunk.FlagUnordered) != 0) == unordered
        && ((b.Flags & DataChunk.FlagUnordered) != 0) == unordered
        && (unordered || a.Ssn == b.Ssn)
        && (a.Flags & DataChunk.FlagEnd) == 0
        && (b.Flags & DataChunk.FlagBegin) == 0;

    private void RemoveFragments(InboundStream s, int index, int count)
    {
        s.RunValid = false;
        for (var k = index; k < index + count; k++)
        {
            HeldBytes -= s.Fragments[k].Length;
            _pool.Return(s.Fragments[k].Buffer);
        }
        s.Fragments.RemoveRange(index, count);
    }

    private void OnMessageComplete(InboundStream s, bool unordered, ushort ssn, uint ppid, byte[] buffer, int length)
    {
        if (unordered) { Deliver(s.Id, ppid, buffer, length); return; }
        if (ssn == s.NextSsn)
        {
            s.NextSsn++;
            Deliver(s.Id, ppid, buffer, length);
            DrainPending(s);
            return;
        }
        if (Serial.Lt16(ssn, s.NextSsn))
        {
            // Already delivered or skipped by FORWARD TSN.
            HeldBytes -= length;
            _pool.Return(buffer);
            return;
        }
        var i = s.Pending.Count;
        while (i > 0 && Serial.Lt16(ssn, s.Pending[i - 1].Ssn)) i--;
        s.Pending.Insert(i, new ReadyMessage { Ssn = ssn, Ppid = ppid, Buffer = buffer, Length = length });
    }

    private void Deliver(ushort id, uint ppid, byte[] buffer, int length)
    {
        HeldBytes -= length;
        _deliver(id, ppid, buffer, length);
    }

    private void DrainPending(InboundStream s)
    {
        while (s.Pending.Count > 0 && s.Pending[0].Ssn == s.NextSsn)
        {
            var m = s.Pending[0];
            s.Pending.RemoveAt(0);
            s.NextSsn++;
            Deliver(s.Id, m.Ppid, m.Buffer, m.Length);
        }
    }

    /// <summary>
    /// FORWARD TSN moved the cumulative TSN: to <paramref name="newCumulative"/> as the peer asked, then on to
    /// <paramref name="cumulative"/> over TSNs already received. A partly reassembled message goes when it misses a TSN
    /// at or below <paramref name="newCumulative"/> (its earlier fragments were abandoned), or when the TSN that would
    /// continue it is already behind <paramref name="cumulative"/> and not part of it (the sender abandoned the rest
    /// before sending it). A message whose fragments so far all arrived and whose next fragment is still to come stays:
    /// the peer's advanced ack point moves over acknowledged TSNs as well as abandoned ones, so it may be a reliable
    /// message in the middle of its transmission (removing it lost a reliable message for good; found by the chaos suite).
    /// </summary>
    public void DropAbandonedFragments(uint newCumulative, uint cumulative)
    {
        foreach (var s in _active)
        {
            var i = 0;
            while (i < s.Fragments.Count)
            {
                var frags = CollectionsMarshal.AsSpan(s.Fragments);
                var unordered = (frags[i].Flags & DataChunk.FlagUnordered) != 0;
                var j = i;
                while (j + 1 < frags.Length && SameMessage(frags[j], frags[j + 1], unordered)) j++;
                var missesEarlier = (frags[i].Flags & DataChunk.FlagBegin) == 0 && Serial.Le(frags[i].Tsn - 1, newCumulative);
                var cutShort = (frags[j].Flags & DataChunk.FlagEnd) == 0 && Serial.Le(frags[j].Tsn + 1, cumulative);
                if (missesEarlier || cutShort) RemoveFragments(s, i, j - i + 1);
                else i = j + 1;
            }
        }
    }

    /// <summary>
    /// FORWARD TSN's stream entry (RFC 3758 section 3.6): ordered messages of <paramref name="streamId"/> up to
    /// <paramref name="ssn"/> were abandoned; waiting messages at or below it are dropped and delivery goes on after it.
    /// </summary>
    public void SkipTo(ushort streamId, ushort ssn)
    {
        if (streamId >= _streamCount) return;
        var s = Stream(streamId);
        if (Serial.Le16(s.NextSsn, ssn))
        {
            s.NextSsn = (ushort)(ssn + 1);
            while (s.Pending.Count > 0 && Serial.Lt16(s.Pending[0].Ssn, s.NextSsn))
            {
                HeldBytes -= s.Pending[0].Length;
                _pool.Return(s.Pending[0].Buffer);
                s.Pending.RemoveAt(0);
            }
        }
        DrainPending(s);
    }

    /// <summary>The peer reset its outgoing stream (RFC 6525 section 5.2.2): SSNs restart at zero, waiting messages go.</summary>
    public void ResetStream(ushort streamId)
    {
        if (streamId < _streams.Length && _streams[streamId] is { } s)
        {
            s.NextSsn = 0;
            foreach (var m in s.Pending) { HeldBytes -= m.Length; _pool.Return(m.Buffer); }
            s.Pending.Clear();
        }
    }

    /// <summary>The association ended: every held buffer goes back to the pool.</summary>
    public void Clear()
    {
        foreach (var s in _active)
        {
            foreach (var f in s.Fragments) { HeldBytes -= f.Length; _pool.Return(f.Buffer); }
            foreach (var m in s.Pending) { HeldBytes -= m.Length; _pool.Return(m.Buffer); }
            s.Fragments.Clear();
            s.Pending.Clear();
        }
        _active.Clear();
    }
}
