namespace Transport.Ice.Stun;

/// <summary>
/// Retransmission settings of a client transaction (RFC 8489 section 6.2.1). Defaults give sends at 0, 0.5,
/// 1.5, 3.5, 7.5, 15.5 and 31.5 s and a timeout at 39.5 s.
/// </summary>
public sealed record StunRetransmissionOptions
{
    /// <summary>Initial RTO (RFC 8489: 500 ms by default; "SHOULD be configurable").</summary>
    public TimeSpan InitialRto { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Rc: the total number of requests sent over UDP (default 7).</summary>
    public int MaxRequests { get; init; } = 7;

    /// <summary>Rm: after the last request, wait Rm times the initial RTO for a response (default 16).</summary>
    public int LastRequestWaitMultiplier { get; init; } = 16;

    /// <summary>Upper bound of the doubled RTO; null for none (RFC 8489 sets no cap).</summary>
    public TimeSpan? MaxRto { get; init; }

    /// <summary>True over a reliable transport (TCP, TLS): one send and timeout <see cref="ReliableTimeout"/>.</summary>
    public bool Reliable { get; init; }

    /// <summary>Ti: the transaction timeout over a reliable transport (default 39.5 s).</summary>
    public TimeSpan ReliableTimeout { get; init; } = TimeSpan.FromMilliseconds(39_500);

    /// <summary>The defaults of RFC 8489.</summary>
    public static StunRetransmissionOptions Default { get; } = new();

    internal void Validate()
    {
        if (InitialRto <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(InitialRto), "The RTO must be positive.");
        if (MaxRequests < 1) throw new ArgumentOutOfRangeException(nameof(MaxRequests), "At least one request is sent.");
        if (LastRequestWaitMultiplier < 1) throw new ArgumentOutOfRangeException(nameof(LastRequestWaitMultiplier));
        if (MaxRto is { } m && m < InitialRto) throw new ArgumentOutOfRangeException(nameof(MaxRto), "The cap must not be below the initial RTO.");
        if (Reliable && ReliableTimeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(ReliableTimeout));
    }
}

/// <summary>Where a client transaction stands.</summary>
public enum StunTransactionState
{
    /// <summary>Created, not started.</summary>
    Created,
    /// <summary>Waiting for a response; retransmitting.</summary>
    Pending,
    /// <summary>A success response arrived.</summary>
    Succeeded,
    /// <summary>An error response arrived (its ERROR-CODE says why).</summary>
    ErrorResponse,
    /// <summary>A response arrived with comprehension-required attributes we do not understand (RFC 8489 section 6.3.1): failed.</summary>
    UnknownAttributes,
    /// <summary>No response within the retransmission schedule.</summary>
    TimedOut,
    /// <summary>Abandoned by the owner.</summary>
    Cancelled,
}

/// <summary>What <see cref="StunClientTransaction.HandleResponse"/> did with a message.</summary>
public enum StunResponseMatch
{
    /// <summary>Not a response to this transaction (other transaction ID, method, or not a response): ignored.</summary>
    NotMine,
    /// <summary>The response completed the transaction.</summary>
    Completed,
    /// <summary>A response for this transaction after it completed (a duplicate or late copy): ignored.</summary>
    Duplicate,
}

/// <summary>
/// A STUN client transaction as a sans-IO state machine (RFC 8489 section 6.2.1 and 6.3): it owns a copy of the
/// request, says when to send it, retransmits with an RTO that doubles after each send, gives up Rm x RTO after
/// the last of Rc requests, and completes on the first response with its transaction ID. Later copies of the
/// response and messages of other transactions are ignored. Time is passed in; nothing here reads a clock.
/// </summary>
public sealed class StunClientTransaction
{
    private readonly byte[] _request;
    private readonly StunRetransmissionOptions _options;
    private TimeSpan _rto;
    private TimeSpan? _deadline;
    private bool _transmitDue;

    /// <summary>Creates a transaction for <paramref name="request"/> (copied), a complete STUN request.</summary>
    public StunClientTransaction(ReadOnlySpan<byte> request, StunRetransmissionOptions? options = null)
    {
        if (!StunMessage.TryRead(request, out var message, out var error))
            throw new ArgumentException($"Not a STUN message ({error}).", nameof(request));
        if (message.Class != StunClass.Request) throw new ArgumentException("Not a STUN request.", nameof(request));
        _options = options ?? StunRetransmissionOptions.Default;
        _options.Validate();
        _request = request.ToArray();
        Method = message.Method;
        Id = StunTransactionId.FromBytes(message.TransactionId);
        _rto = _options.InitialRto;
    }

    /// <summary>The transaction ID.</summary>
    public StunTransactionId Id { get; }

    /// <summary>The request method.</summary>
    public ushort Method { get; }

    /// <summary>The request bytes.</summary>
    public ReadOnlySpan<byte> Request => _request;

    /// <summary>Current state.</summary>
    public StunTransactionState State { get; private set; }

    /// <summary>True once the transaction ended (response, timeout or cancel).</summary>
    public bool IsCompleted => State is not (StunTransactionState.Created or StunTransactionState.Pending);

    /// <summary>Requests handed out so far.</summary>
    public int RequestsSent { get; private set; }

    /// <summary>When the first request was due.</summary>
    public TimeSpan? StartedAt { get; private set; }

    /// <summary>When the last request was due.</summary>
    public TimeSpan? LastSentAt { get; private set; }

    /// <summary>When the transaction ended.</summary>
    public TimeSpan? CompletedAt { get; private set; }

    /// <summary>
    /// Round-trip time of a transaction answered after a single request (Karn's rule: with retransmissions the
    /// response cannot be attributed to one send, RFC 8489 section 6.2.1), else null.
    /// </summary>
    public TimeSpan? RoundTripTime =>
        State is StunTransactionState.Succeeded or StunTransactionState.ErrorResponse && RequestsSent == 1 && CompletedAt is { } c && StartedAt is { } s
            ? c - s : null;

    /// <summary>Starts: the first request is due now.</summary>
    public void Start(TimeSpan now)
    {
        if (State != StunTransactionState.Created) throw new InvalidOperationException($"The transaction is {State}, not Created.");
        State = StunTransactionState.Pending;
        StartedAt = now;
        QueueSend(now);
    }

    private void QueueSend(TimeSpan now)
    {
        _transmitDue = true;
        RequestsSent++;
        LastSentAt = now;
        if (_options.Reliable) { _deadline = now + _options.ReliableTimeout; return; }
        if (RequestsSent >= _options.MaxRequests)
        {
            // RFC 8489 section 6.2.1: after the last request wait Rm times the RTO (the initial one, as in its example: 16 x 500 ms = 8 s).
            _deadline = now + _options.InitialRto * _options.LastRequestWaitMultiplier;
            return;
        }
        _deadline = now + _rto;
        _rto += _rto;
        if (_options.MaxRto is { } max && _rto > max) _rto = max;
    }

    /// <summary>Copies the request into <paramref name="destination"/> when a send is due.</summary>
    public bool TryPollTransmit(Span<byte> destination, out int written)
    {
        if (!_transmitDue || State != StunTransactionState.Pending) { written = 0; return false; }
        if (destination.Length < _request.Length) throw new ArgumentException("The destination cannot hold the request.", nameof(destination));
        _request.CopyTo(destination);
        _transmitDue = false;
        written = _request.Length;
        return true;
    }

    /// <summary>The next deadline (retransmission or timeout), or null when completed.</summary>
    public TimeSpan? PollTimeout() => State == StunTransactionState.Pending ? _deadline : null;

    /// <summary>Acts on the deadline if it passed: retransmits or times out.</summary>
    public void HandleTimeout(TimeSpan now)
    {
        if (State != StunTransactionState.Pending || _deadline is not { } deadline || now < deadline) return;
        if (RetransmissionStopped)
        {
            Complete(StunTransactionState.Cancelled, now);
            return;
        }
        if (_options.Reliable || RequestsSent >= _options.MaxRequests)
        {
            Complete(StunTransactionState.TimedOut, now);
            return;
        }
        QueueSend(now);
    }

    /// <summary>
    /// Offers a received message. A success or error response of this method with this transaction ID
    /// completes a pending transaction; anything else is ignored (and reported as such).
    /// </summary>
    public StunResponseMatch HandleResponse(in StunMessage response, TimeSpan now)
    {
        if (response.Class is not (StunClass.SuccessResponse or StunClass.ErrorResponse) || response.Method != Method || !Id.Matches(response.TransactionId))
            return StunResponseMatch.NotMine;
        if (State != StunTransactionState.Pending) return StunResponseMatch.Duplicate;
        Span<ushort> unknown = stackalloc ushort[1];
        var state = response.GetUnknownComprehensionRequired(unknown) > 0 ? StunTransactionState.UnknownAttributes
            : response.Class == StunClass.SuccessResponse ? StunTransactionState.Succeeded
            : StunTransactionState.ErrorResponse;
        Complete(state, now);
        return StunResponseMatch.Completed;
    }

    /// <summary>
    /// Stops retransmitting but still takes a response until the wait after a last request (Rm x the initial RTO, or
    /// the reliable timeout) has passed, then ends <see cref="StunTransactionState.Cancelled"/>, never
    /// <see cref="StunTransactionState.TimedOut"/>: RFC 8445 section 7.3.1.4's cancellation of a check in progress
    /// ("will not retransmit ... will not treat the lack of response to be a failure, but will wait the duration of the
    /// transaction timeout for a response").
    /// </summary>
    public void StopRetransmitting(TimeSpan now)
    {
        if (State != StunTransactionState.Pending || RetransmissionStopped) return;
        RetransmissionStopped = true;
        _transmitDue = false;
        _deadline = now + (_options.Reliable ? _options.ReliableTimeout : _options.InitialRto * _options.LastRequestWaitMultiplier);
    }

    /// <summary>True after <see cref="StopRetransmitting"/>: no more sends; the transaction only waits for a response.</summary>
    public bool RetransmissionStopped { get; private set; }

    /// <summary>Abandons the transaction: no more sends, no timeout.</summary>
    public void Cancel(TimeSpan now)
    {
        if (!IsCompleted) Complete(StunTransactionState.Cancelled, now);
    }

    private void Complete(StunTransactionState state, TimeSpan now)
    {
        State = state;
        CompletedAt = now;
        _transmitDue = false;
        _deadline = null;
    }
}
