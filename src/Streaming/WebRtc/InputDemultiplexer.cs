using System.Net;
using System.Runtime.CompilerServices;
using Transport.Ice;
using Transport.Streaming.Io;

namespace Transport.Streaming.WebRtc;

/// <summary>Where an input of the 5-tuple goes once ICE has seen it (<see cref="InputDemultiplexer.Route"/>).</summary>
internal enum InputRoute
{
    /// <summary>ICE consumed it (STUN) or refused it (counted by ICE): nothing more to do.</summary>
    Ice,
    /// <summary>DTLS records (20-63) for the DTLS connection; the server starts it first when it has not yet.</summary>
    Dtls,
    /// <summary>SRTP or SRTCP (128-191), with keys to unprotect it.</summary>
    Media,
    /// <summary>
    /// A DTLS datagram before DTLS started (ICE could not vouch for its sender yet, or we have no answer yet): the caller
    /// keeps the input as it came with <see cref="InputDemultiplexer.KeepEarlyDtls"/>, for a replay through ICE.
    /// </summary>
    EarlyDtls,
    /// <summary>SRTP or SRTCP before DTLS exported the keys: dropped and counted here (the media counters count it too).</summary>
    MediaBeforeKeys,
    /// <summary>
    /// Fits no layer (STUN, ZRTP, TURN ChannelData or an unknown first byte as application data, DTLS after close):
    /// dropped and counted here.
    /// </summary>
    Dropped,
}

/// <summary>What the peer connection's layers can take now, read by <see cref="InputDemultiplexer.Route"/>.</summary>
/// <param name="DtlsStarted">The DTLS connection exists.</param>
/// <param name="DtlsCanStart">It does not, but we are the DTLS server with the peer's description: the peer's first flight starts it.</param>
/// <param name="Closing">The connection closed or failed: nothing new starts.</param>
/// <param name="HasSrtpKeys">DTLS exported SRTP keys (use_srtp).</param>
internal readonly record struct InputLayers(bool DtlsStarted, bool DtlsCanStart, bool Closing, bool HasSrtpKeys);

/// <summary>
/// The input side of the peer connection's one 5-tuple (BUNDLE, rtcp-mux): RFC 7983 section 7 (as updated by RFC 9443)
/// tells the layers apart by the first byte (STUN 0-3, DTLS 20-63, TURN ChannelData 64-79, RTP/RTCP 128-191). ICE
/// sees every input first (STUN is its own; anything else must come from a valid pair); what it passes on as
/// application data goes to DTLS or to SRTP by its class, the rest is dropped and counted by class. Its state: the
/// drops by class and reason, SRTP before the keys (dropped: nothing could unprotect it), the answerer's first DTLS
/// flight that comes before its answer (kept, at most <see cref="MaxEarlyDtls"/>, to go through ICE again when DTLS
/// starts), and how many first bytes it read itself. The class is read once per datagram: by the driver, which passes
/// it down, or here when an input comes without it (<see cref="Classify"/>, counted). It calls no layer: the peer
/// connection hands the input to ICE and to the layer <see cref="Route"/> names.
/// </summary>
internal sealed class InputDemultiplexer
{
    /// <summary>
    /// The answerer's DTLS datagrams kept before its answer: its first flight (a ClientHello, or the server's flight
    /// in a few datagrams); without them the peer would wait a whole retransmission timeout (1 s by default).
    /// </summary>
    public const int MaxEarlyDtls = 4;

    private readonly List<EarlyDtlsDatagram> _earlyDtls = new();
    private KindCounts _dropped;

    /// <summary>Inputs routed (every datagram or frame ICE saw).</summary>
    public long Inputs { get; private set; }

    /// <summary>First bytes read here: inputs that came without their class, and the payloads a TURN server relayed.</summary>
    public long Classified { get; private set; }

    /// <summary>SRTP or SRTCP that came before DTLS exported the keys.</summary>
    public long MediaBeforeKeys { get; private set; }

    /// <summary>DTLS datagrams refused because <see cref="MaxEarlyDtls"/> waited already.</summary>
    public long EarlyDtlsRefused { get; private set; }

    /// <summary>Kept DTLS datagrams that ICE refused again when they were replayed.</summary>
    public long EarlyDtlsReplayRefused { get; private set; }

    /// <summary>DTLS datagrams after the connection closed, with no DTLS connection to take them.</summary>
    public long DtlsAfterClose { get; private set; }

    /// <summary>Every drop counted here but <see cref="MediaBeforeKeys"/> (which the media counters count).</summary>
    public long Dropped => _dropped.Sum() - MediaBeforeKeys;

    /// <summary>DTLS datagrams waiting for DTLS to start.</summary>
    public IReadOnlyList<EarlyDtlsDatagram> EarlyDtls => _earlyDtls;

    /// <summary>The drops of one class (the class of the payload ICE passed on).</summary>
    public long DroppedOf(DatagramKind kind) => _dropped[(int)kind];

    /// <summary>The class of an input that came without one (RFC 7983 section 7), counted in <see cref="Classified"/>.</summary>
    public DatagramKind Classify(ReadOnlySpan<byte> input)
    {
        Classified++;
        return DatagramClassifier.Classify(input);
    }

    /// <summary>
    /// Where an input goes after ICE answered <paramref name="ice"/>. <paramref name="kind"/> is the input's class;
    /// <paramref name="payload"/> what ICE passed on: the input itself (<paramref name="payloadIsInput"/>, the class is
    /// known) or what a TURN server relayed inside it (a datagram of its own, classified here).
    /// </summary>
    public InputRoute Route(IceReceiveResult ice, DatagramKind kind, ReadOnlySpan<byte> payload, bool payloadIsInput, in InputLayers layers)
    {
        Inputs++;
        // The peer's first flight may come before ICE can vouch for the pair (our answer is not there yet).
        if (ice == IceReceiveResult.Dropped)
            return kind == DatagramKind.Dtls && !layers.DtlsStarted && !layers.Closing ? InputRoute.EarlyDtls : InputRoute.Ice;
        if (ice != IceReceiveResult.ApplicationData) return InputRoute.Ice;
        var payloadKind = payloadIsInput ? kind : Classify(payload);
        switch (payloadKind)
        {
            case DatagramKind.Dtls:
                if (layers.DtlsStarted || layers.DtlsCanStart) return InputRoute.Dtls;
                if (!layers.Closing) return InputRoute.EarlyDtls;
                DtlsAfterClose++;
                return Drop(DatagramKind.Dtls);
            case DatagramKind.Rtp:
                if (layers.HasSrtpKeys) return InputRoute.Media;
                MediaBeforeKeys++;
                _dropped[(int)DatagramKind.Rtp]++;
                return InputRoute.MediaBeforeKeys;
            default:
                return Drop(payloadKind);
        }
    }

    /// <summary>
    /// Keeps a DTLS input as it came (its path, to go through ICE again); false, counted, when <see cref="MaxEarlyDtls"/>
    /// wait already.
    /// </summary>
    public bool KeepEarlyDtls(ReadOnlySpan<byte> input, IPEndPoint local, IPEndPoint remote, TransmitKind path)
    {
        if (_earlyDtls.Count >= MaxEarlyDtls)
        {
            EarlyDtlsRefused++;
            Drop(DatagramKind.Dtls);
            return false;
        }
        _earlyDtls.Add(new EarlyDtlsDatagram(input.ToArray(), local, remote, path));
        return true;
    }

    /// <summary>A kept datagram that ICE refused on its replay: counted.</summary>
    public void OnEarlyDtlsReplayRefused()
    {
        EarlyDtlsReplayRefused++;
        Drop(DatagramKind.Dtls);
    }

    /// <summary>The kept datagrams were replayed (in their order, <see cref="EarlyDtls"/>): forgotten.</summary>
    public void ClearEarlyDtls() => _earlyDtls.Clear();

    private InputRoute Drop(DatagramKind kind)
    {
        _dropped[(int)kind]++;
        return InputRoute.Dropped;
    }

    // One counter per DatagramKind, inside the object (no array of its own).
    [InlineArray(6)]
    private struct KindCounts
    {
        private long _element;

        public readonly long Sum()
        {
            long sum = 0;
            for (var i = 0; i < 6; i++) sum += this[i];
            return sum;
        }
    }
}

/// <summary>A DTLS input kept by <see cref="InputDemultiplexer.KeepEarlyDtls"/>: its bytes as they came, and the path they came on.</summary>
internal readonly record struct EarlyDtlsDatagram(byte[] Data, IPEndPoint Local, IPEndPoint Remote, TransmitKind Path);
