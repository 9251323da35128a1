using System.Buffers.Binary;
using Transport.Sctp.Wire;

namespace Transport.Sctp;

/// <summary>What <see cref="StreamResetHandler"/> needs from its association: the send queue and the streams it resets.</summary>
internal interface IStreamResetHost
{
    /// <summary>Whether <paramref name="stream"/> has data that has no TSN yet (queued, or a message partly fragmented).</summary>
    bool HasUnsentData(ushort stream);

    /// <summary>The peer reset its outgoing <paramref name="stream"/> (our inbound one): its SSNs restart at zero.</summary>
    void OnIncomingReset(ushort stream);

    /// <summary>The peer reset all its outgoing streams (a request that names none, RFC 6525 section 4.1).</summary>
    void OnIncomingResetAll();

    /// <summary>
    /// Our request to reset <paramref name="stream"/> was answered: <paramref name="performed"/> when the peer reset it
    /// (or had nothing to do), so its SSNs restart at zero; false when the peer refused it (denied, bad sequence).
    /// </summary>
    void OnOutgoingReset(ushort stream, bool performed);
}

/// <summary>
/// Stream reconfiguration (RFC 6525), as dcsctp's StreamResetHandler: our outgoing SSN reset requests (section 5.1.2)
/// and their retransmission, the peer's outgoing (section 5.2.2) and incoming (section 5.2.3) requests and our
/// responses, and the request sequence numbers of both sides (section 5.1.1: they start at each side's initial TSN and
/// wrap). One request of ours is outstanding at a time; streams asked for meanwhile, or whose data has no TSN yet (the
/// request names the last TSN assigned, so all of a stream's data must have one first), wait in <see cref="Pending"/>.
/// The association decides when a request may start (established, the peer supports RE-CONFIG), counts unanswered
/// retransmissions against Association.Max.Retrans, and owns the timer's duration (the RTO); this type owns the rest.
/// Data channels close by resetting their streams (RFC 8831 section 6.7).
/// </summary>
internal sealed class StreamResetHandler
{
    /// <summary>Streams one request names at most; the others wait for the next request.</summary>
    public const int MaxStreamsPerRequest = 64;
    /// <summary>Responses waiting to be sent at most; a request answered beyond that is answered when it comes again.</summary>
    public const int MaxQueuedResponses = 8;

    private readonly IStreamResetHost _host;
    private readonly SctpCounters _counters;
    private readonly List<ushort> _pending = new();
    // Made at the first request or response: an association that never resets a stream holds neither.
    private ushort[]? _requestStreams;
    private (uint Seq, uint Result)[]? _responses;
    private int _requestStreamCount, _responseCount;
    private uint _requestSeq, _requestLastTsn;
    private uint _nextRequestSeq, _expectedPeerSeq, _lastPeerResult;

    /// <param name="host">The association: its send queue and the streams reset.</param>
    /// <param name="counters">Malformed parameters and unknown parameter types are counted here.</param>
    public StreamResetHandler(IStreamResetHost host, SctpCounters counters)
    {
        _host = host;
        _counters = counters;
    }

    /// <summary>Streams waiting for a request of ours (in the order asked).</summary>
    public IReadOnlyList<ushort> Pending => _pending;
    /// <summary>True while a request of ours is unanswered, or answered "in progress".</summary>
    public bool InFlight { get; private set; }
    /// <summary>True when the outstanding request is to be sent (new, or its timer expired).</summary>
    public bool RequestDue { get; private set; }
    /// <summary>Responses to the peer's requests waiting to be sent.</summary>
    public int ResponseCount => _responseCount;
    /// <summary>When the outstanding request is sent again, or null.</summary>
    public TimeSpan? Deadline { get; private set; }
    /// <summary>The sequence number our next request will carry.</summary>
    public uint NextRequestSequence => _nextRequestSeq;
    /// <summary>The sequence number the peer's next new request must carry.</summary>
    public uint ExpectedPeerSequence => _expectedPeerSeq;
    /// <summary>The streams of the outstanding request.</summary>
    public ReadOnlySpan<ushort> RequestStreams => _requestStreams.AsSpan(0, _requestStreamCount);

    /// <summary>Starts the sequence numbers at the initial TSNs (RFC 6525 section 5.1.1).</summary>
    public void Start(uint localInitialTsn, uint peerInitialTsn)
    {
        _nextRequestSeq = localInitialTsn;
        _expectedPeerSeq = peerInitialTsn;
    }

    /// <summary>Asks for <paramref name="stream"/> to be reset by a request of ours (once, however often asked).</summary>
    public void Queue(ushort stream)
    {
        if (!_pending.Contains(stream)) _pending.Add(stream);
    }

    /// <summary>
    /// Starts a request for the pending streams whose data all has TSNs (at most <see cref="MaxStreamsPerRequest"/>),
    /// naming <paramref name="lastAssignedTsn"/> as the sender's last assigned TSN; its timer expires at
    /// <paramref name="deadline"/>. Does nothing while a request is outstanding or no pending stream can go.
    /// </summary>
    public bool TryStart(uint lastAssignedTsn, TimeSpan deadline)
    {
        if (InFlight || _pending.Count == 0) return false;
        _requestStreams ??= new ushort[MaxStreamsPerRequest];
        _requestStreamCount = 0;
        for (var i = 0; i < _pending.Count && _requestStreamCount < MaxStreamsPerRequest;)
        {
            var s = _pending[i];
            // Section 5.1.2: all data of the stream must have its TSN before the reset request names the last TSN.
            if (_host.HasUnsentData(s)) { i++; continue; }
            _requestStreams[_requestStreamCount++] = s;
            _pending.RemoveAt(i);
        }
        if (_requestStreamCount == 0) return false;
        InFlight = true;
        _requestSeq = _nextRequestSeq++;
        _requestLastTsn = lastAssignedTsn;
        RequestDue = true;
        Deadline = deadline;
        return true;
    }

    /// <summary>
    /// The timer expired: stops it; true when a request is outstanding, which the association then either gives up on
    /// (too many unanswered) or sends again with <see cref="Retransmit"/>.
    /// </summary>
    public bool OnTimerExpired()
    {
        Deadline = null;
        return InFlight;
    }

    /// <summary>Sends the outstanding request again (same sequence number, streams and last TSN); the timer runs to <paramref name="deadline"/>.</summary>
    public void Retransmit(TimeSpan deadline)
    {
        if (!InFlight) return;
        RequestDue = true;
        Deadline = deadline;
    }

    /// <summary>Stops the timer (the association ended).</summary>
    public void StopTimer() => Deadline = null;

    /// <summary>
    /// Processes the parameters of a RE-CONFIG chunk (its value). <paramref name="cumulativeTsn"/> is our receiver's
    /// cumulative TSN (the peer's outgoing request waits for it to reach its last TSN); an "in progress" answer to our
    /// request restarts the timer to <paramref name="retryDeadline"/>. Returns true when the peer answered our request
    /// (it is reachable). Malformed parameters are counted and end the chunk; unknown ones are counted and skipped.
    /// </summary>
    public bool HandleChunk(ReadOnlySpan<byte> parameters, uint cumulativeTsn, TimeSpan retryDeadline)
    {
        var answered = false;
        var rest = parameters;
        while (rest.Length >= 8)
        {
            var type = BinaryPrimitives.ReadUInt16BigEndian(rest);
            int len = BinaryPrimitives.ReadUInt16BigEndian(rest[2..]);
            if (len < 8 || len > rest.Length) { _counters.Malformed++; return answered; }
            var param = rest[..len];
            switch (type)
            {
                case ReConfigChunk.OutgoingResetRequest when len >= 16:
                    OnPeerOutgoingRequest(param, cumulativeTsn);
                    break;
                case ReConfigChunk.IncomingResetRequest:
                    OnPeerIncomingRequest(param);
                    break;
                case ReConfigChunk.Response when len >= 12:
                    answered |= OnResponse(BinaryPrimitives.ReadUInt32BigEndian(param[4..]), BinaryPrimitives.ReadUInt32BigEndian(param[8..]), retryDeadline);
                    break;
                default:
                    _counters.UnexpectedChunk++;
                    break;
            }
            var padded = ChunkHeader.Padded(len);
            rest = padded >= rest.Length ? default : rest[padded..];
        }
        return answered;
    }

    // Section 5.2.2: the peer resets its outgoing streams (our inbound ones) once every TSN up to its last assigned one
    // has arrived; until then the answer is "in progress" and the peer asks again with the same sequence number.
    private void OnPeerOutgoingRequest(ReadOnlySpan<byte> param, uint cumulativeTsn)
    {
        var seq = BinaryPrimitives.ReadUInt32BigEndian(param[4..]);
        var lastTsn = BinaryPrimitives.ReadUInt32BigEndian(param[12..]);
        if (!IsNewPeerRequest(seq)) return;
        if (Serial.Gt(lastTsn, cumulativeTsn)) { Respond(seq, ReConfigChunk.ResultInProgress); return; }
        _expectedPeerSeq++;
        _lastPeerResult = ReConfigChunk.ResultPerformed;
        Respond(seq, ReConfigChunk.ResultPerformed);
        var streams = param[16..];
        if (streams.Length < 2) { _host.OnIncomingResetAll(); return; }
        for (var i = 0; i + 1 < streams.Length; i += 2) _host.OnIncomingReset(BinaryPrimitives.ReadUInt16BigEndian(streams[i..]));
    }

    // Section 5.2.3: the peer asks us to reset our outgoing streams; we do so with a request of our own (queued here; the
    // association starts it), and answer "in progress".
    private void OnPeerIncomingRequest(ReadOnlySpan<byte> param)
    {
        var seq = BinaryPrimitives.ReadUInt32BigEndian(param[4..]);
        if (!IsNewPeerRequest(seq)) return;
        _expectedPeerSeq++;
        _lastPeerResult = ReConfigChunk.ResultInProgress;
        Respond(seq, ReConfigChunk.ResultInProgress);
        var streams = param[8..];
        for (var i = 0; i + 1 < streams.Length; i += 2) Queue(BinaryPrimitives.ReadUInt16BigEndian(streams[i..]));
    }

    // Section 5.2.1: a retransmission of the last request processed gets the same answer again (and is not performed
    // twice); any other sequence number than the next expected one is answered "bad sequence number".
    private bool IsNewPeerRequest(uint seq)
    {
        if (seq == _expectedPeerSeq - 1) { Respond(seq, _lastPeerResult); return false; }
        if (seq != _expectedPeerSeq) { Respond(seq, ReConfigChunk.ResultBadSequence); return false; }
        return true;
    }

    private bool OnResponse(uint seq, uint result, TimeSpan retryDeadline)
    {
        if (!InFlight || seq != _requestSeq) return false;
        if (result == ReConfigChunk.ResultInProgress)
        {
            // The request stays outstanding with its sequence number; the timer sends it again.
            Deadline = retryDeadline;
            return true;
        }
        InFlight = false;
        RequestDue = false;
        Deadline = null;
        // Section 5.1.2 / 5.2.2: after the reset both sides restart the stream's SSN at zero. The streams are copied
        // first: the host's callbacks may queue and start the next request, which reuses the array.
        var performed = result is ReConfigChunk.ResultPerformed or ReConfigChunk.ResultNothingToDo;
        Span<ushort> done = stackalloc ushort[MaxStreamsPerRequest];
        var count = _requestStreamCount;
        _requestStreams.AsSpan(0, count).CopyTo(done);
        _requestStreamCount = 0;
        for (var i = 0; i < count; i++) _host.OnOutgoingReset(done[i], performed);
        return true;
    }

    private void Respond(uint seq, uint result)
    {
        _responses ??= new (uint, uint)[MaxQueuedResponses];
        if (_responseCount < _responses.Length) _responses[_responseCount++] = (seq, result);
    }

    /// <summary>
    /// Writes one RE-CONFIG chunk into <paramref name="d"/> (header included): the queued responses that fit, then the
    /// due request if it fits. Returns its length, or 0 when nothing fitted or nothing was due.
    /// </summary>
    public int WriteChunk(Span<byte> d)
    {
        var p = 4;
        var i = 0;
        if (_responses is { } responses)
        {
            for (; i < _responseCount && p + 12 <= d.Length; i++) p += ReConfigChunk.WriteResponse(d[p..], responses[i].Seq, responses[i].Result);
            // Responses that did not fit go in the next packet.
            Array.Copy(responses, i, responses, 0, _responseCount - i);
            _responseCount -= i;
        }
        if (RequestDue && p + 16 + 2 * _requestStreamCount <= d.Length)
        {
            RequestDue = false;
            // Section 4.1: the response sequence number is the peer's last request we processed (the next expected - 1).
            p += ReConfigChunk.WriteOutgoingRequest(d[p..], _requestSeq, _expectedPeerSeq - 1, _requestLastTsn, RequestStreams);
        }
        if (p == 4) return 0;
        ChunkHeader.Write(d, ChunkType.ReConfig, 0, p);
        return p;
    }
}
