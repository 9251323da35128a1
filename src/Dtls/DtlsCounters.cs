namespace Transport.Dtls;

/// <summary>Counters of one connection, for tests and health reporting.</summary>
public sealed class DtlsCounters
{
    private readonly long[] _dropped = new long[Enum.GetValues<DtlsDropReason>().Length];

    /// <summary>Records (or whole datagrams when unparseable) dropped, all reasons.</summary>
    public long Dropped { get; private set; }

    /// <summary>Records dropped for one reason.</summary>
    public long DroppedFor(DtlsDropReason reason) => _dropped[(int)reason];

    /// <summary>Records accepted (authenticated where protected).</summary>
    public long RecordsReceived { get; internal set; }

    /// <summary>Datagrams handed out by TryPollTransmit.</summary>
    public long DatagramsSent { get; internal set; }

    /// <summary>Flight retransmissions (timer or peer-triggered).</summary>
    public long Retransmissions { get; internal set; }

    /// <summary>Of <see cref="Retransmissions"/>, those made at once on <see cref="DtlsConnection.HandlePeerReady"/>.</summary>
    public long PeerReadyRetransmissions { get; internal set; }

    /// <summary>HelloVerifyRequests sent by the server side of this connection.</summary>
    public long HelloVerifyRequestsSent { get; internal set; }

    internal void Drop(DtlsDropReason reason)
    {
        Dropped++;
        _dropped[(int)reason]++;
    }
}
