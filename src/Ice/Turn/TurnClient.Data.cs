using Transport.Ice.Stun;

namespace Transport.Ice.Turn;

/// <summary>The data path: Send indications and ChannelData out, Data indications and ChannelData in (RFC 8656 sections 11 and 12).</summary>
public sealed partial class TurnClient
{
    /// <summary>
    /// Size of the largest message <see cref="WrapSend"/> writes for <paramref name="payloadLength"/> bytes (a Send indication to an IPv6 peer).
    /// </summary>
    public static int GetMaxWrappedSize(int payloadLength) => StunHeader.Size + 4 + 20 + 4 + ((payloadLength + 3) & ~3) + 8;

    /// <summary>
    /// Wraps <paramref name="payload"/> for <paramref name="peer"/> into <paramref name="destination"/> and returns
    /// the length to send to <see cref="ServerAddress"/>: ChannelData when a channel is bound (padded over TCP),
    /// else a Send indication. Allocates nothing. Throws <see cref="InvalidOperationException"/> without an
    /// allocation, or when no permission was asked for the peer's IP (the server would drop the data).
    /// </summary>
    public int WrapSend(StunAddress peer, ReadOnlySpan<byte> payload, Span<byte> destination)
    {
        if (State != TurnClientState.Allocated) throw new InvalidOperationException($"The TURN client is {State}: relaying needs an allocation.");
        if (_channelsByPeer.TryGetValue(peer, out var channel) && channel.Bound)
            return ChannelData.Write(destination, channel.Number, payload, padded: _options.Transport == TurnTransport.Tcp);
        if (!_permissions.ContainsKey(IpOnly(peer))) throw new InvalidOperationException($"No permission for {peer}: call CreatePermission first.");
        Span<byte> id = stackalloc byte[StunHeader.TransactionIdSize];
        SecureRandomBytes.Fill(id);
        var writer = new StunMessageWriter(destination, new StunMessageType(StunMethod.Send, StunClass.Indication), id);
        writer.AddXorAddress(StunAttributeType.XorPeerAddress, peer);
        writer.Add(StunAttributeType.Data, payload);
        if (_options.UseFingerprint) writer.AddFingerprint();
        return writer.Length;
    }

    /// <summary>
    /// Offers a message from <paramref name="from"/> (STUN or ChannelData; over TCP one whole frame). Control
    /// messages are processed; relayed data is queued as <see cref="TurnPeerData"/> (a copy). Bad input is
    /// dropped and counted in <see cref="Dropped"/>.
    /// </summary>
    public void HandleDatagram(ReadOnlySpan<byte> datagram, StunAddress from, TimeSpan now)
    {
        if (TryReceive(datagram, from, now, out var peer, out var payload, out var channel))
            _events.Enqueue(new TurnPeerData(peer, payload.ToArray(), channel));
    }

    /// <summary>
    /// The copy-free form of <see cref="HandleDatagram"/>: when the message is data relayed from a peer, returns
    /// true with the peer and a slice of <paramref name="datagram"/> holding the payload (valid during the call)
    /// and queues no event; otherwise processes it as a control message (or drops it) and returns false.
    /// </summary>
    public bool TryReceive(ReadOnlySpan<byte> datagram, StunAddress from, TimeSpan now, out StunAddress peer, out ReadOnlySpan<byte> payload,
        out ushort channelNumber)
    {
        Advance(now);
        peer = default;
        payload = default;
        channelNumber = 0;
        if (from != ServerAddress) { Dropped.NotFromServer++; return false; }
        if (ChannelData.LooksLikeChannelData(datagram))
        {
            if (!ChannelData.TryRead(datagram, out var channelData)) { Dropped.Malformed++; return false; }
            if (!_channelsByNumber.TryGetValue(channelData.Channel, out var channel) || !channel.Bound) { Dropped.UnknownChannel++; return false; }
            peer = channel.Peer;
            payload = channelData.Data;
            channelNumber = channel.Number;
            return true;
        }
        if (!StunMessage.TryRead(datagram, out var message)) { Dropped.Malformed++; return false; }
        if (message.HasFingerprint && !message.CheckFingerprint()) { Dropped.BadFingerprint++; return false; }
        switch (message.Class)
        {
            case StunClass.SuccessResponse or StunClass.ErrorResponse:
                HandleResponse(message);
                return false;
            case StunClass.Indication when message.Method == StunMethod.Data && State is TurnClientState.Allocated or TurnClientState.Closing
                                           && message.TryGetXorPeerAddress(out peer) && message.TryGetData(out payload):
                // RFC 8656 section 11.4: the client SHOULD discard data from an IP it holds no permission for.
                if (_permissions.ContainsKey(IpOnly(peer))) return true;
                peer = default;
                payload = default;
                Dropped.NoPermission++;
                return false;
            default:
                peer = default;
                payload = default;
                Dropped.Unexpected++;
                return false;
        }
    }
}
