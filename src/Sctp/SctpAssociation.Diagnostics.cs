namespace Transport.Sctp;

/// <summary>
/// One DATA chunk of the retransmission ring not yet acknowledged cumulatively, as a diagnostic snapshot (Offset: the TSN
/// less the cumulative TSN acked, 1 for the oldest outstanding; the message's fields are null for an empty slot).
/// </summary>
internal readonly record struct OutstandingChunk(uint Tsn, uint Offset, ChunkState State, int Transmits, ushort? Stream, byte Flags,
    int? MaxRetransmits, bool? Abandoned);

// Diagnostics for tests and tools, not behaviour: a trace hook and a snapshot of the retransmission ring. The chaos
// suite (tests/Streaming.Tests) writes the trace to files with CHAOS_SCTP_TRACE and formats the snapshot itself when a
// drain fails.
public sealed partial class SctpAssociation
{
    /// <summary>One line per protocol event (DATA in, SACK, retransmission, abandon, T3, FORWARD TSN). Null: nothing is formatted.</summary>
    internal Action<string>? DebugTrace;

    /// <summary>The chunks sent and not yet acknowledged cumulatively, oldest first.</summary>
    internal OutstandingChunk[] OutstandingChunks()
    {
        var list = new OutstandingChunk[_out.NextTsn - _out.CumulativeAck - 1];
        var i = 0;
        for (var tsn = _out.CumulativeAck + 1; tsn != _out.NextTsn; tsn++)
        {
            ref var c = ref _out.At(tsn);
            list[i++] = new OutstandingChunk(tsn, tsn - _out.CumulativeAck, c.State, c.Transmits, c.Message?.Stream, c.Flags, c.Message?.MaxRetransmits,
                c.Message?.Abandoned);
        }
        return list;
    }
}

public sealed partial class SctpAssociation
{
    /// <summary>
    /// The sender's and receiver's flow state, read without synchronization from another thread by diagnostics (the
    /// peer-connection bench samples it during a transfer to tell a congestion-window, receive-window or
    /// application limit apart): bytes in flight, cwnd, the peer's window as last computed, bytes queued and not yet
    /// sent, bytes held for our application and bytes it has not released.
    /// </summary>
    internal (int Flight, int Cwnd, int PeerWindow, long Queued, int ReceiveHeld, int Unread) FlowSnapshot =>
        (_out.FlightSize, _cc.Cwnd, _peerRwnd, _outboundBuffered, ReceiveBuffered, _unread);
}
