using System.Buffers;
using System.Text;

namespace Transport.Sctp;

/// <summary>States of a data channel (W3C RTCDataChannelState).</summary>
public enum DataChannelState
{
    /// <summary>Waiting for the association.</summary>
    Connecting,
    /// <summary>Messages can be sent.</summary>
    Open,
    /// <summary>The stream is being reset (RFC 8831 section 6.7).</summary>
    Closing,
    /// <summary>Both directions of the stream are reset, or the association ended.</summary>
    Closed,
}

/// <summary>How to create a data channel (the fields of RTCDataChannelInit).</summary>
public sealed record DataChannelOptions
{
    /// <summary>Ordered delivery (default).</summary>
    public bool Ordered { get; init; } = true;
    /// <summary>Partial reliability by retransmissions (RFC 3758); exclusive with <see cref="MaxPacketLifetime"/>.</summary>
    public int? MaxRetransmits { get; init; }
    /// <summary>Partial reliability by lifetime; exclusive with <see cref="MaxRetransmits"/>.</summary>
    public TimeSpan? MaxPacketLifetime { get; init; }
    /// <summary>The sub-protocol name.</summary>
    public string Protocol { get; init; } = "";
    /// <summary>DCEP priority (RFC 8832 section 5.1; W3C "normal" is 256).</summary>
    public ushort Priority { get; init; } = 256;
    /// <summary>Negotiated out of band: no DCEP; <see cref="Id"/> must be given and used by both sides.</summary>
    public bool Negotiated { get; init; }
    /// <summary>The stream id; required when <see cref="Negotiated"/>, otherwise chosen by the DTLS role.</summary>
    public ushort? Id { get; init; }
}

/// <summary>Thrown when sending on a data channel that is not open; <see cref="State"/> says which state it is in.</summary>
public sealed class DataChannelNotOpenException(string label, ushort id, DataChannelState state)
    : InvalidOperationException($"Data channel '{label}' (stream {id}) is {state}, not Open: the message was not sent.")
{
    /// <summary>The state the channel was in.</summary>
    public DataChannelState State { get; } = state;
}

/// <summary>
/// A WebRTC data channel (RFC 8831) on one SCTP stream of an <see cref="SctpAssociation"/>. Its events (open,
/// message, closed, buffered amount low) come out of the association's <see cref="SctpAssociation.TryPollEvent"/>.
/// </summary>
public sealed class DataChannel
{
    private readonly SctpAssociation _association;
    private long _bufferedAmount;

    internal DataChannel(SctpAssociation association, ushort id, string label, string protocol, DataChannelType type,
        uint reliability, ushort priority, bool negotiated)
    {
        _association = association;
        Id = id;
        Label = label;
        Protocol = protocol;
        Type = type;
        ReliabilityParameter = reliability;
        Priority = priority;
        Negotiated = negotiated;
        AcknowledgedByPeer = negotiated;
    }

    /// <summary>The SCTP stream id.</summary>
    public ushort Id { get; }
    /// <summary>The label.</summary>
    public string Label { get; }
    /// <summary>The sub-protocol.</summary>
    public string Protocol { get; }
    /// <summary>The DCEP channel type.</summary>
    public DataChannelType Type { get; }
    /// <summary>Max retransmissions or lifetime in milliseconds, by <see cref="Type"/>.</summary>
    public uint ReliabilityParameter { get; }
    /// <summary>The DCEP priority.</summary>
    public ushort Priority { get; }
    /// <summary>True when negotiated out of band.</summary>
    public bool Negotiated { get; }
    /// <summary>True when delivery is ordered.</summary>
    public bool Ordered => ((byte)Type & 0x80) == 0;
    /// <summary>The current state.</summary>
    public DataChannelState State { get; internal set; } = DataChannelState.Connecting;
    /// <summary>True once the peer's DATA_CHANNEL_ACK arrived (or for negotiated channels).</summary>
    public bool AcknowledgedByPeer { get; internal set; }
    /// <summary>Bytes queued by <see cref="Send(ReadOnlySpan{byte}, bool)"/> and not yet handed to the network.</summary>
    public long BufferedAmount => _bufferedAmount;
    /// <summary>When <see cref="BufferedAmount"/> falls to or below this, a BufferedAmountLow event is queued.</summary>
    public long BufferedAmountLowThreshold { get; set; }

    internal bool OutgoingReset;
    internal bool IncomingReset;

    /// <summary>Sends a binary (default) or UTF-8 string message. Throws <see cref="DataChannelNotOpenException"/>
    /// when not open and <see cref="ArgumentException"/> when larger than the maximum message size.</summary>
    public void Send(ReadOnlySpan<byte> data, bool binary = true) => Send(data, binary, null);

    /// <summary>
    /// As <see cref="Send(ReadOnlySpan{byte}, bool)"/>, at time <paramref name="now"/>: a lifetime-limited channel
    /// counts the message's lifetime from then (without it, from the latest time the association saw).
    /// </summary>
    public void Send(ReadOnlySpan<byte> data, bool binary, TimeSpan? now)
    {
        if (State != DataChannelState.Open) throw new DataChannelNotOpenException(Label, Id, State);
        var max = _association.Options.MaxMessageSize;
        if (data.Length > max)
            throw new ArgumentException($"The message is {data.Length} bytes; the maximum message size is {max} bytes.", nameof(data));
        uint ppid;
        ReadOnlySpan<byte> payload = data;
        if (data.IsEmpty)
        {
            // RFC 8831 section 6.6: an empty message is one zero byte with the "empty" PPID.
            ppid = binary ? Ppid.BinaryEmpty : Ppid.StringEmpty;
            payload = [0];
        }
        else ppid = binary ? Ppid.Binary : Ppid.String;
        var maxRtx = Type is DataChannelType.PartialReliableRexmit or DataChannelType.PartialReliableRexmitUnordered ? (int)ReliabilityParameter : -1;
        TimeSpan? lifetime = Type is DataChannelType.PartialReliableTimed or DataChannelType.PartialReliableTimedUnordered
            ? TimeSpan.FromMilliseconds(ReliabilityParameter) : null;
        // RFC 8832 section 6: until the ACK arrives, messages go ordered so they cannot overtake the OPEN.
        var unordered = !Ordered && AcknowledgedByPeer;
        _association.Enqueue(Id, ppid, payload, unordered, maxRtx, lifetime, this, now);
        _bufferedAmount += payload.Length;
    }

    /// <summary>
    /// Sends <paramref name="data"/> without copying it: the association keeps the caller's memory until no chunk of the
    /// message can be sent again (the peer acknowledged it, partial reliability abandoned it, or the association ended)
    /// and then disposes <paramref name="owner"/>. Until then the memory must not change. An empty message is sent as the
    /// "empty" PPID's one byte (the owner is disposed at once). When this throws (not open, too large) nothing was queued
    /// and the owner stays the caller's.
    /// </summary>
    public void Send(ReadOnlyMemory<byte> data, IDisposable owner, bool binary, TimeSpan? now)
    {
        ArgumentNullException.ThrowIfNull(owner);
        if (data.IsEmpty)
        {
            Send(ReadOnlySpan<byte>.Empty, binary, now);
            owner.Dispose();
            return;
        }
        if (State != DataChannelState.Open) throw new DataChannelNotOpenException(Label, Id, State);
        var max = _association.Options.MaxMessageSize;
        if (data.Length > max)
            throw new ArgumentException($"The message is {data.Length} bytes; the maximum message size is {max} bytes.", nameof(data));
        var (ppid, unordered, maxRtx, lifetime) = Framing(binary);
        _association.Enqueue(Id, ppid, data, owner, unordered, maxRtx, lifetime, this, now);
        _bufferedAmount += data.Length;
    }

    private (uint Ppid, bool Unordered, int MaxRetransmits, TimeSpan? Lifetime) Framing(bool binary)
    {
        var maxRtx = Type is DataChannelType.PartialReliableRexmit or DataChannelType.PartialReliableRexmitUnordered ? (int)ReliabilityParameter : -1;
        TimeSpan? lifetime = Type is DataChannelType.PartialReliableTimed or DataChannelType.PartialReliableTimedUnordered
            ? TimeSpan.FromMilliseconds(ReliabilityParameter) : null;
        // RFC 8832 section 6: until the ACK arrives, messages go ordered so they cannot overtake the OPEN.
        return (binary ? Ppid.Binary : Ppid.String, !Ordered && AcknowledgedByPeer, maxRtx, lifetime);
    }

    /// <summary>Sends a string message (PPID 51, or 56 when empty).</summary>
    public void Send(string text) => Send(text, null);

    /// <summary>Sends a string message at time <paramref name="now"/>.</summary>
    public void Send(string text, TimeSpan? now)
    {
        ArgumentNullException.ThrowIfNull(text);
        var n = Encoding.UTF8.GetByteCount(text);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, n));
        try
        {
            Encoding.UTF8.GetBytes(text, buffer);
            Send(buffer.AsSpan(0, n), false, now);
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    /// <summary>Closes the channel by resetting its stream (RFC 8831 section 6.7).</summary>
    public void Close(TimeSpan now) => _association.CloseChannel(this, now);

    internal void OnBytesSent(int count)
    {
        var before = _bufferedAmount;
        _bufferedAmount -= count;
        if (before > BufferedAmountLowThreshold && _bufferedAmount <= BufferedAmountLowThreshold)
            _association.QueueEvent(new SctpEvent(SctpEventKind.BufferedAmountLow, this));
    }

    /// <inheritdoc />
    public override string ToString() => $"DataChannel '{Label}' stream {Id} {State}";
}
