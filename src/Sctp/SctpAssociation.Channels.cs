using System.Buffers;
using System.Text;

namespace Transport.Sctp;

// WebRTC data channels over the association: DCEP (RFC 8832), stream ids by DTLS role, PPIDs (RFC 8831
// section 8), closing by stream reset (RFC 8831 section 6.7).
public sealed partial class SctpAssociation
{
    private readonly Dictionary<ushort, DataChannel> _channels = new();
    private readonly List<DataChannel> _channelsAwaitingAssociation = new();
    private static readonly byte[] DcepAck = [Dcep.MessageAckByte];
    /// <summary>Resets waiting for their RE-CONFIG beyond which a refused OPEN is only counted (keeps each refusal O(1)).</summary>
    private const int MaxQueuedResets = 1024;

    /// <summary>The open or opening data channels by stream id.</summary>
    public IReadOnlyDictionary<ushort, DataChannel> Channels => _channels;

    /// <summary>
    /// Creates a data channel. Without <see cref="DataChannelOptions.Negotiated"/> a DATA_CHANNEL_OPEN is sent
    /// (RFC 8832) once the association is up, on an even stream id for the DTLS client and odd for the server.
    /// </summary>
    public DataChannel CreateDataChannel(string label, DataChannelOptions? options = null, TimeSpan now = default)
    {
        ArgumentNullException.ThrowIfNull(label);
        Clock(now);
        options ??= new DataChannelOptions();
        if (State is SctpState.Terminated or SctpState.Failed or SctpState.ShutdownPending or SctpState.ShutdownSent
            or SctpState.ShutdownReceived or SctpState.ShutdownAckSent)
            throw new InvalidOperationException($"Cannot create a data channel: the association is {State}.");
        if (options.MaxRetransmits is not null && options.MaxPacketLifetime is not null)
            throw new ArgumentException("MaxRetransmits and MaxPacketLifetime are exclusive.", nameof(options));
        ValidateChannelId(options);
        var id = options.Id ?? NextStreamId();
        var type = options switch
        {
            { MaxRetransmits: not null } => options.Ordered ? DataChannelType.PartialReliableRexmit : DataChannelType.PartialReliableRexmitUnordered,
            { MaxPacketLifetime: not null } => options.Ordered ? DataChannelType.PartialReliableTimed : DataChannelType.PartialReliableTimedUnordered,
            _ => options.Ordered ? DataChannelType.Reliable : DataChannelType.ReliableUnordered,
        };
        var reliability = options.MaxRetransmits is { } r ? (uint)r
            : options.MaxPacketLifetime is { } l ? (uint)l.TotalMilliseconds : 0u;
        var ch = new DataChannel(this, id, label, options.Protocol, type, reliability, options.Priority, options.Negotiated);
        _channels[id] = ch;
        if (State == SctpState.Established) OpenLocal(ch);
        else _channelsAwaitingAssociation.Add(ch);
        return ch;
    }

    /// <summary>
    /// The checks of an explicit stream id (W3C createDataChannel, RFC 8832 section 6): a negotiated channel needs one;
    /// 65535 is reserved; the id must be under the streams we asked for (and, once established, those agreed); an id
    /// already in use is a collision; and an in-band (DCEP) channel with an explicit id must use our parity (even for the
    /// DTLS client, odd for the server), or it could collide with one the peer opens at the same moment. A negotiated
    /// channel may use either parity: both sides agreed on it out of band.
    /// </summary>
    /// <exception cref="ArgumentException">Names the id and what is wrong with it.</exception>
    public void ValidateChannelId(DataChannelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Negotiated && options.Id is null)
            throw new ArgumentException("A negotiated data channel needs an Id that both sides use (RFC 8832 section 6).", nameof(options));
        if (options.Id is not { } id) return;
        if (id == ushort.MaxValue)
            throw new ArgumentException("Stream id 65535 is reserved (W3C createDataChannel: ids run from 0 to 65534).", nameof(options));
        var limit = State == SctpState.Established ? _outboundStreams : _o.Streams;
        if (id >= limit)
            throw new ArgumentException($"Stream id {id} is beyond the {limit} outbound streams " +
                $"{(State == SctpState.Established ? "agreed with the peer" : "we ask for")}.", nameof(options));
        if (_channels.ContainsKey(id)) throw new ArgumentException($"Stream id {id} already carries data channel '{_channels[id].Label}'.", nameof(options));
        if (!options.Negotiated && (id % 2 == 0) != _o.IsDtlsClient)
            throw new ArgumentException($"Stream id {id} is {(id % 2 == 0 ? "even" : "odd")}; as the DTLS {(_o.IsDtlsClient ? "client" : "server")} we open " +
                $"in-band channels on {(_o.IsDtlsClient ? "even" : "odd")} ids (RFC 8832 section 6). Leave Id unset, or use Negotiated " +
                "with an id agreed with the peer.", nameof(options));
    }

    private ushort NextStreamId()
    {
        // RFC 8832 section 6: the DTLS client uses even stream ids, the server odd ones.
        var limit = State == SctpState.Established ? _outboundStreams : _o.Streams;
        for (int id = _o.IsDtlsClient ? 0 : 1; id < limit; id += 2)
            if (!_channels.ContainsKey((ushort)id)) return (ushort)id;
        throw new InvalidOperationException("No free stream id for a new data channel.");
    }

    private void OpenLocal(DataChannel ch)
    {
        if (!ch.Negotiated)
        {
            var open = DcepOpen.Write(ch.Type, ch.Priority, ch.ReliabilityParameter, ch.Label, ch.Protocol);
            Enqueue(ch.Id, Ppid.Dcep, open, false, -1, null, null);
        }
        ch.State = DataChannelState.Open;
        _events.Enqueue(new SctpEvent(SctpEventKind.ChannelOpen, ch, StreamId: ch.Id));
    }

    private void OnEstablishedChannels()
    {
        foreach (var ch in _channelsAwaitingAssociation)
            if (ch.State == DataChannelState.Connecting) OpenLocal(ch);
        _channelsAwaitingAssociation.Clear();
    }

    internal void QueueEvent(SctpEvent e) => _events.Enqueue(e);

    internal void CloseChannel(DataChannel ch, TimeSpan now)
    {
        Clock(now);
        if (ch.State is DataChannelState.Closing or DataChannelState.Closed) return;
        if (!IsEstablishedLike || !_peerReConfig)
        {
            FinishClose(ch);
            return;
        }
        ch.State = DataChannelState.Closing;
        QueueReset(ch.Id);
    }

    private void OnOutgoingStreamReset(ushort id)
    {
        if (!_channels.TryGetValue(id, out var ch)) return;
        ch.OutgoingReset = true;
        if (ch.IncomingReset) FinishClose(ch);
    }

    private void OnIncomingStreamReset(ushort id)
    {
        if (!_channels.TryGetValue(id, out var ch))
        {
            _events.Enqueue(new SctpEvent(SctpEventKind.StreamReset, StreamId: id));
            return;
        }
        ch.IncomingReset = true;
        if (ch.State is DataChannelState.Open or DataChannelState.Connecting)
        {
            // RFC 8831 section 6.7: the peer closed; reset our side of the stream too.
            ch.State = DataChannelState.Closing;
            QueueReset(id);
        }
        else if (ch.OutgoingReset) FinishClose(ch);
    }

    private void FinishClose(DataChannel ch)
    {
        if (ch.State == DataChannelState.Closed) return;
        ch.State = DataChannelState.Closed;
        _channels.Remove(ch.Id);
        _events.Enqueue(new SctpEvent(SctpEventKind.ChannelClosed, ch, StreamId: ch.Id));
    }

    private void CloseAllChannels()
    {
        foreach (var ch in _channels.Values)
        {
            if (ch.State == DataChannelState.Closed) continue;
            ch.State = DataChannelState.Closed;
            _events.Enqueue(new SctpEvent(SctpEventKind.ChannelClosed, ch, StreamId: ch.Id));
        }
        _channels.Clear();
        _channelsAwaitingAssociation.Clear();
    }

    private void OnOversizeMessage(ushort id)
    {
        // RFC 8831 section 6.6: a message larger than we announced is refused; the channel is closed.
        if (_channels.TryGetValue(id, out var ch) && ch.State == DataChannelState.Open) { ch.State = DataChannelState.Closing; QueueReset(id); }
    }

    private void Deliver(ushort streamId, uint ppid, byte[] buffer, int length)
    {
        Counters.MessagesDelivered++;
        DebugTrace?.Invoke($"{_now.TotalMilliseconds:0} deliver s{streamId} len {length} seq " +
            $"{(length >= 4 ? System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(buffer) : -1)}");
        if (ppid == Ppid.Dcep)
        {
            HandleDcep(streamId, buffer.AsSpan(0, length));
            _pool.Return(buffer);
            return;
        }
        if (_channels.TryGetValue(streamId, out var ch))
        {
            if (ch.State == DataChannelState.Closed)
            {
                _pool.Return(buffer);
                return;
            }
            _deliveredHeld += length; // until the event is polled past or its buffer taken
            var empty = ppid is Ppid.StringEmpty or Ppid.BinaryEmpty;
            var binary = ppid is not (Ppid.String or Ppid.StringEmpty);
            _events.Enqueue(new SctpEvent(SctpEventKind.ChannelMessage, ch, new ReadOnlyMemory<byte>(buffer, 0, empty ? 0 : length),
                binary, streamId, ppid)
            { Accounted = length });
            return;
        }
        _deliveredHeld += length;
        _events.Enqueue(new SctpEvent(SctpEventKind.StreamMessage, null, new ReadOnlyMemory<byte>(buffer, 0, length), true, streamId, ppid)
        { Accounted = length });
    }

    private void HandleDcep(ushort streamId, ReadOnlySpan<byte> message)
    {
        if (message.IsEmpty) { Counters.Malformed++; return; }
        if (message[0] == Dcep.MessageAckByte)
        {
            if (_channels.TryGetValue(streamId, out var acked)) acked.AcknowledgedByPeer = true;
            return;
        }
        if (!DcepOpen.TryRead(message, out var open)) { Counters.Malformed++; return; }
        if (_channels.ContainsKey(streamId)) { Counters.UnexpectedChunk++; return; }
        // RFC 9260 section 9.2: after a SHUTDOWN (ours or the peer's) nothing new is sent, so the channel could not be
        // acknowledged (RFC 8832 section 6); it is not created.
        if (State != SctpState.Established) { Counters.RefusedChannels++; return; }
        var limits = _o.Limits;
        if (_channels.Count >= limits.MaxChannels || open.Label.Length > limits.MaxLabelLength || open.Protocol.Length > limits.MaxProtocolLength)
        {
            Counters.RefusedChannels++;
            // Closing the stream (RFC 8831 section 6.7) tells the peer; the queue of resets is bounded too, so a flood of
            // refused OPENs costs only the counter.
            if (_resets.Pending.Count < MaxQueuedResets) QueueReset(streamId);
            return;
        }
        var ch = new DataChannel(this, streamId, Encoding.UTF8.GetString(open.Label), Encoding.UTF8.GetString(open.Protocol),
            open.ChannelType, open.Reliability, open.Priority, negotiated: false)
        {
            AcknowledgedByPeer = true,
            State = DataChannelState.Open,
        };
        _channels[streamId] = ch;
        // RFC 8832 section 6: answer with DATA_CHANNEL_ACK on the same stream, ordered and reliable.
        Enqueue(streamId, Ppid.Dcep, DcepAck, false, -1, null, null);
        _events.Enqueue(new SctpEvent(SctpEventKind.ChannelOpen, ch, StreamId: streamId));
    }
}

internal static class Dcep
{
    public const byte MessageAckByte = DcepOpen.MessageAck;
}
