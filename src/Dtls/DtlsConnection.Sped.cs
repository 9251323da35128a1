using System.Buffers;

namespace Transport.Dtls;

// SPED (draft-hancke-webrtc-sped): the layer below carries our flights in the ICE checks and their pacing resends
// them, so our own retransmission timer waits meanwhile; it resumes when the checks stop carrying the handshake.
public sealed partial class DtlsConnection
{
    /// <summary>True while <see cref="PauseRetransmission"/> holds the retransmission timer (the handshake deadline still runs).</summary>
    public bool RetransmissionPaused { get; private set; }

    /// <summary>
    /// Holds the flight retransmission timer: <see cref="PollTimeout()"/> gives only the handshake deadline and
    /// <see cref="HandleTimeout"/> resends nothing until <see cref="ResumeRetransmission"/>. For a layer below that
    /// resends our flight itself (SPED carries it in every ICE check and answer).
    /// </summary>
    public void PauseRetransmission() => RetransmissionPaused = true;

    /// <summary>
    /// Ends <see cref="PauseRetransmission"/>: a flight waiting for its reply is retransmitted after a first timeout
    /// again, RTT-based when <paramref name="roundTripTime"/> is given (as <see cref="DtlsOptions.RoundTripTime"/>).
    /// </summary>
    public void ResumeRetransmission(TimeSpan now, TimeSpan? roundTripTime = null)
    {
        Advance(now);
        if (!RetransmissionPaused) return;
        RetransmissionPaused = false;
        if (_retransmitAt is null) return;
        _currentRto = roundTripTime is { } rtt ? (_options with { RoundTripTime = rtt }).FirstRetransmitTimeout : _options.FirstRetransmitTimeout;
        _retransmitAt = _now + _currentRto;
    }

    /// <summary>
    /// Takes every queued datagram (the records of the flight the last input made, for a layer that carries them
    /// elsewhere, such as SPED); returns how many were added to <paramref name="into"/>.
    /// </summary>
    public int TakeTransmits(List<byte[]> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        var n = 0;
        while (_transmits.TryDequeue(out var t))
        {
            into.Add(t.Buffer.AsSpan(0, t.Length).ToArray());
            ArrayPool<byte>.Shared.Return(t.Buffer);
            Counters.DatagramsSent++;
            n++;
        }
        return n;
    }

    /// <summary>True when datagrams wait in the transmit queue.</summary>
    public bool HasTransmits => _transmits.Count > 0;
}
