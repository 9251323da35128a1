using System.Buffers.Binary;
using Transport.Sctp.Wire;

namespace Transport.Sctp.Tests;

/// <summary>
/// Stream reconfiguration on its own (<see cref="StreamResetHandler"/>, RFC 6525): our outgoing SSN reset requests
/// (section 5.1.2), the peer's outgoing and incoming requests (sections 5.2.2 and 5.2.3), the responses and the request
/// sequence numbers (sections 5.1.1 and 5.2.1), read back from the RE-CONFIG chunks the handler writes.
/// </summary>
public sealed class StreamResetHandlerTests
{
    private const uint Local = 70_000, Peer = 900_000;
    private static readonly TimeSpan Rto = TimeSpan.FromSeconds(1);

    private sealed class Host : IStreamResetHost
    {
        public readonly HashSet<ushort> Unsent = new();
        public readonly List<ushort> Incoming = new();
        public int IncomingAll;
        public readonly List<(ushort Stream, bool Performed)> Outgoing = new();
        public bool HasUnsentData(ushort stream) => Unsent.Contains(stream);
        public void OnIncomingReset(ushort stream) => Incoming.Add(stream);
        public void OnIncomingResetAll() => IncomingAll++;
        public void OnOutgoingReset(ushort stream, bool performed) => Outgoing.Add((stream, performed));
    }

    /// <summary>One parameter as written: type, first field (request or response sequence number), second field, last TSN, streams.</summary>
    private sealed record Param(ushort Type, uint Seq, uint Second, uint LastTsn, ushort[] Streams);

    private static (StreamResetHandler Handler, Host Host, SctpCounters Counters) Started(uint local = Local, uint peer = Peer)
    {
        var host = new Host();
        var counters = new SctpCounters();
        var h = new StreamResetHandler(host, counters);
        h.Start(local, peer);
        return (h, host, counters);
    }

    /// <summary>Writes what is due into <paramref name="room"/> bytes and reads the chunk's parameters back.</summary>
    private static List<Param> Written(StreamResetHandler h, int room = 1200)
    {
        var d = new byte[room];
        var n = h.WriteChunk(d);
        var found = new List<Param>();
        if (n == 0) return found;
        ReadOnlySpan<byte> span = d.AsSpan(0, n);
        Assert.True(ChunkHeader.TryReadNext(ref span, out var chunk));
        Assert.Equal(ChunkType.ReConfig, chunk.Type);
        var rest = chunk.Value;
        while (rest.Length >= 8)
        {
            var type = BinaryPrimitives.ReadUInt16BigEndian(rest);
            int len = BinaryPrimitives.ReadUInt16BigEndian(rest[2..]);
            var seq = BinaryPrimitives.ReadUInt32BigEndian(rest[4..]);
            var second = len >= 12 ? BinaryPrimitives.ReadUInt32BigEndian(rest[8..]) : 0;
            var outgoing = type == ReConfigChunk.OutgoingResetRequest;
            var lastTsn = outgoing ? BinaryPrimitives.ReadUInt32BigEndian(rest[12..]) : 0;
            var streamsAt = outgoing ? 16 : type == ReConfigChunk.IncomingResetRequest ? 8 : len;
            var streams = new List<ushort>();
            for (var i = streamsAt; i + 1 < len; i += 2) streams.Add(BinaryPrimitives.ReadUInt16BigEndian(rest[i..]));
            found.Add(new Param(type, seq, second, lastTsn, streams.ToArray()));
            var padded = ChunkHeader.Padded(len);
            rest = padded >= rest.Length ? default : rest[padded..];
        }
        return found;
    }

    private static Param Request(List<Param> written) => Assert.Single(written, p => p.Type == ReConfigChunk.OutgoingResetRequest);

    private static (uint Seq, uint Result)[] Responses(List<Param> written) =>
        written.Where(p => p.Type == ReConfigChunk.Response).Select(p => (p.Seq, p.Second)).ToArray();

    private static byte[] OutgoingRequest(uint seq, uint responseSeq, uint lastTsn, params ushort[] streams)
    {
        var b = new byte[16 + 2 * streams.Length + 3];
        return b[..ReConfigChunk.WriteOutgoingRequest(b, seq, responseSeq, lastTsn, streams)];
    }

    private static byte[] IncomingRequest(uint seq, params ushort[] streams)
    {
        var b = new byte[8 + 2 * streams.Length + 3];
        return b[..ReConfigChunk.WriteIncomingRequest(b, seq, streams)];
    }

    private static byte[] Response(uint seq, uint result)
    {
        var b = new byte[12];
        return b[..ReConfigChunk.WriteResponse(b, seq, result)];
    }

    private static TimeSpan At(int seconds) => TimeSpan.FromSeconds(seconds);

    [Fact]
    public void AResetWaitsWhileItsStreamHasDataWithoutATsnAndGoesOnceItHasTheirTsns()
    {
        var (h, host, _) = Started();
        host.Unsent.Add(1);   // stream 1 still has a queued message
        h.Queue(1);
        h.Queue(2);
        h.Queue(2);           // asked twice, reset once
        Assert.Equal(new ushort[] { 1, 2 }, h.Pending);

        Assert.True(h.TryStart(lastAssignedTsn: 5000, At(1)));
        Assert.Equal(new ushort[] { 1 }, h.Pending);   // section 5.1.2: stream 1 waits for its data's TSNs
        var first = Request(Written(h));
        Assert.Equal(Local, first.Seq);             // section 5.1.1: the first request carries our initial TSN
        Assert.Equal(Peer - 1, first.Second);       // no request of the peer processed yet
        Assert.Equal(5000u, first.LastTsn);
        Assert.Equal(new ushort[] { 2 }, first.Streams);
        Assert.Equal(At(1), h.Deadline);

        // One request at a time: stream 1's data got its TSNs, but it waits for the answer.
        host.Unsent.Clear();
        Assert.False(h.TryStart(5001, At(2)));
        Assert.Empty(Written(h));

        Assert.True(h.HandleChunk(Response(Local, ReConfigChunk.ResultPerformed), 0, At(3)));
        Assert.Equal(new[] { ((ushort)2, true) }, host.Outgoing);
        Assert.False(h.InFlight);
        Assert.Null(h.Deadline);

        Assert.True(h.TryStart(5003, At(4)));
        var second = Request(Written(h));
        Assert.Equal(Local + 1, second.Seq);
        Assert.Equal(5003u, second.LastTsn);
        Assert.Equal(new ushort[] { 1 }, second.Streams);
        Assert.Empty(h.Pending);
    }

    [Fact]
    public void APeerRequestIsInProgressUntilItsLastTsnHasArrivedThenPerformed()
    {
        var (h, host, _) = Started();
        var request = OutgoingRequest(Peer, Local - 1, lastTsn: 700, 3, 4);
        Assert.False(h.HandleChunk(request, cumulativeTsn: 698, At(1)));
        Assert.Equal(new[] { (Peer, ReConfigChunk.ResultInProgress) }, Responses(Written(h)));
        Assert.Empty(host.Incoming);                      // section 5.2.2: not before TSN 700 arrived
        Assert.Equal(Peer, h.ExpectedPeerSequence);       // the peer asks again with the same number

        h.HandleChunk(request, cumulativeTsn: 699, At(2));
        Assert.Equal(new[] { (Peer, ReConfigChunk.ResultInProgress) }, Responses(Written(h)));
        h.HandleChunk(request, cumulativeTsn: 700, At(3));
        Assert.Equal(new[] { (Peer, ReConfigChunk.ResultPerformed) }, Responses(Written(h)));
        Assert.Equal(new ushort[] { 3, 4 }, host.Incoming);
        Assert.Equal(Peer + 1, h.ExpectedPeerSequence);
    }

    [Fact]
    public void ARetransmittedRequestIsAnsweredWithTheSameResultAndNotPerformedAgain()
    {
        var (h, host, _) = Started();
        var outgoing = OutgoingRequest(Peer, Local - 1, lastTsn: 10, 3);
        h.HandleChunk(outgoing, cumulativeTsn: 10, At(1));
        Assert.Equal(new[] { (Peer, ReConfigChunk.ResultPerformed) }, Responses(Written(h)));
        h.HandleChunk(outgoing, cumulativeTsn: 10, At(2));   // our response was lost: the peer sends it again
        Assert.Equal(new[] { (Peer, ReConfigChunk.ResultPerformed) }, Responses(Written(h)));
        Assert.Equal(new ushort[] { 3 }, host.Incoming);      // reset once

        // The peer's incoming request (section 5.2.3) is answered "in progress" and queues our own reset, once.
        var incoming = IncomingRequest(Peer + 1, 7);
        h.HandleChunk(incoming, cumulativeTsn: 10, At(3));
        h.HandleChunk(incoming, cumulativeTsn: 10, At(4));
        Assert.Equal(new[] { (Peer + 1, ReConfigChunk.ResultInProgress), (Peer + 1, ReConfigChunk.ResultInProgress) }, Responses(Written(h)));
        Assert.Equal(new ushort[] { 7 }, h.Pending);
        Assert.Equal(Peer + 2, h.ExpectedPeerSequence);

        // Our request for stream 7 names the incoming request as the one it answers (section 4.1).
        Assert.True(h.TryStart(20, At(5)));
        var ours = Request(Written(h));
        Assert.Equal(Peer + 1, ours.Second);
        Assert.Equal(new ushort[] { 7 }, ours.Streams);
    }

    [Fact]
    public void ARequestOutOfSequenceIsAnsweredBadSequenceAndNotPerformed()
    {
        var (h, host, _) = Started();
        h.HandleChunk(OutgoingRequest(Peer + 1, Local - 1, 10, 3), cumulativeTsn: 10, At(1));   // one ahead
        h.HandleChunk(OutgoingRequest(Peer - 5, Local - 1, 10, 3), cumulativeTsn: 10, At(1));   // long past
        h.HandleChunk(IncomingRequest(Peer + 9, 4), cumulativeTsn: 10, At(1));
        Assert.Equal(new[] { (Peer + 1, ReConfigChunk.ResultBadSequence), (Peer - 5, ReConfigChunk.ResultBadSequence),
            (Peer + 9, ReConfigChunk.ResultBadSequence) }, Responses(Written(h)));
        Assert.Empty(host.Incoming);
        Assert.Empty(h.Pending);
        Assert.Equal(Peer, h.ExpectedPeerSequence);
    }

    [Fact]
    public void OurRequestAnsweredInProgressStaysOutstandingAndGoesAgainWithTheSameSequenceNumber()
    {
        var (h, host, _) = Started();
        h.Queue(1);
        Assert.True(h.TryStart(100, At(1)));
        var sent = Request(Written(h));

        Assert.True(h.HandleChunk(Response(Local, ReConfigChunk.ResultInProgress), 0, retryDeadline: At(5)));
        Assert.True(h.InFlight);
        Assert.Equal(At(5), h.Deadline);
        Assert.Empty(Written(h));          // nothing until the timer
        Assert.Empty(host.Outgoing);

        Assert.True(h.OnTimerExpired());
        Assert.Null(h.Deadline);
        h.Retransmit(At(7));
        Assert.Equal(At(7), h.Deadline);
        var again = Request(Written(h));
        Assert.Equal((sent.Seq, sent.Second, sent.LastTsn), (again.Seq, again.Second, again.LastTsn));
        Assert.Equal(sent.Streams, again.Streams);
        Assert.Empty(Written(h));          // once

        Assert.True(h.HandleChunk(Response(Local, ReConfigChunk.ResultPerformed), 0, At(8)));
        Assert.Equal(new[] { ((ushort)1, true) }, host.Outgoing);
        Assert.False(h.InFlight);
        Assert.False(h.OnTimerExpired());  // a late expiry finds nothing to send
        Assert.Equal(Local + 1, h.NextRequestSequence);
    }

    [Fact]
    public void ADeniedRequestEndsWithoutRestartingTheStreamAndOtherAnswersAreIgnored()
    {
        var (h, host, _) = Started();
        h.Queue(4);
        h.Queue(5);
        Assert.True(h.TryStart(100, At(1)));
        Written(h);
        // An answer to another sequence number is not ours.
        Assert.False(h.HandleChunk(Response(Local + 1, ReConfigChunk.ResultPerformed), 0, At(2)));
        Assert.True(h.InFlight);
        Assert.Empty(host.Outgoing);

        // The timer expired and the request is due again when the denial arrives: it is not sent after it.
        Assert.True(h.OnTimerExpired());
        h.Retransmit(At(3));
        Assert.True(h.HandleChunk(Response(Local, ReConfigChunk.ResultDenied), 0, At(4)));
        Assert.Equal(new[] { ((ushort)4, false), ((ushort)5, false) }, host.Outgoing);
        Assert.False(h.InFlight);
        Assert.False(h.RequestDue);
        Assert.Null(h.Deadline);
        Assert.Empty(Written(h));
        // A late duplicate of the answer finds nothing outstanding.
        Assert.False(h.HandleChunk(Response(Local, ReConfigChunk.ResultDenied), 0, At(5)));
        Assert.Equal(2, host.Outgoing.Count);
    }

    [Fact]
    public void SequenceNumbersWrapAroundTwoToThe32()
    {
        var (h, host, _) = Started(local: uint.MaxValue, peer: uint.MaxValue);
        h.Queue(1);
        Assert.True(h.TryStart(uint.MaxValue - 1, At(1)));
        var first = Request(Written(h));
        Assert.Equal(uint.MaxValue, first.Seq);
        Assert.Equal(uint.MaxValue - 1, first.Second);
        h.HandleChunk(Response(uint.MaxValue, ReConfigChunk.ResultPerformed), 0, At(2));
        Assert.Equal(0u, h.NextRequestSequence);
        h.Queue(2);
        Assert.True(h.TryStart(3, At(3)));
        Assert.Equal(0u, Request(Written(h)).Seq);

        // The peer's last TSN 1 is after our cumulative TSN 2^32 - 2 (serial arithmetic): in progress.
        var last = OutgoingRequest(uint.MaxValue, 0, lastTsn: 1, 9);
        h.HandleChunk(last, cumulativeTsn: uint.MaxValue - 1, At(4));
        Assert.Equal(new[] { (uint.MaxValue, ReConfigChunk.ResultInProgress) }, Responses(Written(h)));
        h.HandleChunk(last, cumulativeTsn: 1, At(5));
        Assert.Equal(new ushort[] { 9 }, host.Incoming);
        Assert.Equal(0u, h.ExpectedPeerSequence);
        // 2^32 - 1 is now the last request processed: a retransmission gets its result again, 0 is the next.
        h.HandleChunk(last, cumulativeTsn: 1, At(6));
        h.HandleChunk(OutgoingRequest(0, 0, lastTsn: 1, 10), cumulativeTsn: 1, At(6));
        Assert.Equal(new[] { (uint.MaxValue, ReConfigChunk.ResultPerformed), (uint.MaxValue, ReConfigChunk.ResultPerformed),
            (0u, ReConfigChunk.ResultPerformed) }, Responses(Written(h)));
        Assert.Equal(new ushort[] { 9, 10 }, host.Incoming);
        Assert.Equal(1u, h.ExpectedPeerSequence);
    }

    [Fact]
    public void ARequestNamingNoStreamResetsEveryInboundStream()
    {
        var (h, host, _) = Started();
        h.HandleChunk(OutgoingRequest(Peer, Local - 1, lastTsn: 5), cumulativeTsn: 5, At(1));
        Assert.Equal(1, host.IncomingAll);
        Assert.Empty(host.Incoming);
    }

    [Fact]
    public void ResponsesAreBoundedAndThoseThatDoNotFitWaitForTheNextPacket()
    {
        var (h, _, _) = Started();
        var burst = Enumerable.Range(1, 20).SelectMany(i => IncomingRequest(Peer + 100 + (uint)i)).ToArray();
        h.HandleChunk(burst, cumulativeTsn: 0, At(1));
        Assert.Equal(StreamResetHandler.MaxQueuedResponses, h.ResponseCount);
        Assert.Equal(3, Responses(Written(h, room: 4 + 3 * 12 + 11)).Length);
        Assert.Equal(5, h.ResponseCount);
        var rest = Responses(Written(h));
        Assert.Equal(Enumerable.Range(4, 5).Select(i => Peer + 100 + (uint)i), rest.Select(r => r.Seq));
        Assert.Equal(0, h.ResponseCount);
    }

    [Fact]
    public void MalformedParametersAreCountedAndUnknownOnesSkipped()
    {
        var (h, host, counters) = Started();
        var unknown = new byte[8];
        BinaryPrimitives.WriteUInt16BigEndian(unknown, 99);
        BinaryPrimitives.WriteUInt16BigEndian(unknown.AsSpan(2), 8);
        var chunk = unknown.Concat(OutgoingRequest(Peer, Local - 1, 1, 2)).ToArray();
        h.HandleChunk(chunk, cumulativeTsn: 1, At(1));
        Assert.Equal(1, counters.UnexpectedChunk);
        Assert.Equal(new ushort[] { 2 }, host.Incoming);

        var tooLong = OutgoingRequest(Peer + 1, Local - 1, 1, 3);
        BinaryPrimitives.WriteUInt16BigEndian(tooLong.AsSpan(2), 200);   // beyond the chunk
        h.HandleChunk(tooLong, cumulativeTsn: 1, At(2));
        var tooShort = Response(Local, ReConfigChunk.ResultPerformed);
        BinaryPrimitives.WriteUInt16BigEndian(tooShort.AsSpan(2), 6);
        h.HandleChunk(tooShort, cumulativeTsn: 1, At(3));
        Assert.Equal(2, counters.Malformed);
        Assert.Equal(new ushort[] { 2 }, host.Incoming);
        Assert.Equal(Peer + 1, h.ExpectedPeerSequence);
    }
}
