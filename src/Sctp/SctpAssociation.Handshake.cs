using System.Buffers.Binary;
using System.Security.Cryptography;
using Transport.Sctp.Wire;

namespace Transport.Sctp;

// Association set-up, RFC 9260 section 5: INIT / INIT ACK / COOKIE ECHO / COOKIE ACK with a signed state
// cookie, so that the answering side keeps no state before a valid COOKIE ECHO (section 5.1.3).
public sealed partial class SctpAssociation
{
    private const int CookieBodyLength = 40;
    private const int CookieMacLength = 32;
    private const int CookieLength = CookieBodyLength + CookieMacLength;

    private readonly byte[] _cookieSecret;
    private TimeSpan? _t1Deadline;
    private TimeSpan _t1Rto;
    private int _initRetransmits;
    private bool _sendInit, _sendCookieEcho, _sendCookieAck;
    private byte[]? _peerCookie;

    // One INIT ACK waiting to go out (stateless: it is rebuilt from these fields).
    private bool _sendInitAck;
    private uint _initAckPeerTag;
    private ushort _initAckPeerPort;
    private readonly byte[] _initAckCookie = new byte[CookieLength];
    private uint _initAckMyTag, _initAckMyTsn;

    private void HandleInit(ChunkHeader chunk, uint packetTag)
    {
        if (!InitChunk.TryRead(chunk.Value, out var init)) { Counters.Malformed++; return; }
        uint myTag, myTsn;
        switch (State)
        {
            case SctpState.Closed:
                // Stateless: fresh tag and TSN live only in the cookie.
                myTag = RandomNonZero();
                myTsn = RandomUInt();
                break;
            case SctpState.CookieWait or SctpState.CookieEchoed:
                // RFC 9260 section 5.2.1: INIT collision; answer with the tag of our own INIT.
                myTag = _myTag;
                myTsn = _myInitialTsn;
                break;
            default:
                // A restart (section 5.2.2) is not supported over DTLS where the peer cannot restart silently.
                Counters.UnexpectedChunk++;
                return;
        }
        WriteCookie(_initAckCookie, myTag, myTsn, init);
        _initAckPeerTag = init.InitiateTag;
        _initAckPeerPort = _packetSourcePort;
        _initAckMyTag = myTag;
        _initAckMyTsn = myTsn;
        _sendInitAck = true;
    }

    // Cookie body: my tag, peer tag, my TSN, peer TSN, peer a_rwnd, peer OS, peer MIS, flags, pad, time (ticks);
    // then HMAC-SHA-256 over the body (RFC 9260 section 5.1.3).
    private void WriteCookie(Span<byte> cookie, uint myTag, uint myTsn, in InitChunk init)
    {
        BinaryPrimitives.WriteUInt32BigEndian(cookie, myTag);
        BinaryPrimitives.WriteUInt32BigEndian(cookie[4..], init.InitiateTag);
        BinaryPrimitives.WriteUInt32BigEndian(cookie[8..], myTsn);
        BinaryPrimitives.WriteUInt32BigEndian(cookie[12..], init.InitialTsn);
        BinaryPrimitives.WriteUInt32BigEndian(cookie[16..], init.AdvertisedWindow);
        BinaryPrimitives.WriteUInt16BigEndian(cookie[20..], init.OutboundStreams);
        BinaryPrimitives.WriteUInt16BigEndian(cookie[22..], init.InboundStreams);
        cookie[24] = (byte)((init.ForwardTsn ? 1 : 0) | (init.ReConfig ? 2 : 0) | (init.ZeroChecksum ? 4 : 0));
        cookie[25] = cookie[26] = cookie[27] = 0;
        BinaryPrimitives.WriteInt64BigEndian(cookie[28..], _now.Ticks);
        BinaryPrimitives.WriteUInt32BigEndian(cookie[36..], 0);
        HMACSHA256.HashData(_cookieSecret, cookie[..CookieBodyLength], cookie[CookieBodyLength..CookieLength]);
    }

    private void HandleInitAck(ChunkHeader chunk)
    {
        if (State != SctpState.CookieWait) { Counters.UnexpectedChunk++; return; }
        if (!InitChunk.TryRead(chunk.Value, out var ack) || ack.Cookie.IsEmpty) { Counters.Malformed++; return; }
        _peerTag = ack.InitiateTag;
        _peerInitialTsn = ack.InitialTsn;
        ApplyPeerInit(ack.AdvertisedWindow, ack.OutboundStreams, ack.InboundStreams, ack.ForwardTsn, ack.ReConfig, ack.ZeroChecksum);
        _peerCookie = ack.Cookie.ToArray();
        _sendInit = false;
        _sendCookieEcho = true;
        _initRetransmits = 0;
        _t1Deadline = _now + _t1Rto;
        Transition(SctpState.CookieEchoed, SctpStateReason.InitAckReceived, "INIT ACK received, COOKIE ECHO sent");
    }

    private void HandleCookieEcho(ChunkHeader chunk, uint packetTag)
    {
        var cookie = chunk.Value;
        if (cookie.Length != CookieLength) { Counters.BadCookie++; return; }
        Span<byte> mac = stackalloc byte[CookieMacLength];
        HMACSHA256.HashData(_cookieSecret, cookie[..CookieBodyLength], mac);
        if (!CryptographicOperations.FixedTimeEquals(mac, cookie[CookieBodyLength..])) { Counters.BadCookie++; return; }
        var myTag = BinaryPrimitives.ReadUInt32BigEndian(cookie);
        var peerTag = BinaryPrimitives.ReadUInt32BigEndian(cookie[4..]);
        if (packetTag != myTag) { Counters.BadVerificationTag++; return; }
        var created = TimeSpan.FromTicks(BinaryPrimitives.ReadInt64BigEndian(cookie[28..]));
        if (_now - created > _o.CookieLifetime) { Counters.BadCookie++; return; }
        switch (State)
        {
            case SctpState.Closed:
                break;
            case SctpState.CookieWait or SctpState.CookieEchoed when myTag == _myTag:
                // Collision (RFC 9260 section 5.2.4): the peer answered our INIT tag; take its tag from the cookie.
                break;
            case SctpState.Established when myTag == _myTag && peerTag == _peerTag:
                _sendCookieAck = true; // our COOKIE ACK was lost
                return;
            default:
                Counters.UnexpectedChunk++;
                return;
        }
        _myTag = myTag;
        _peerTag = peerTag;
        _remotePort = _packetSourcePort;
        _myInitialTsn = BinaryPrimitives.ReadUInt32BigEndian(cookie[8..]);
        _peerInitialTsn = BinaryPrimitives.ReadUInt32BigEndian(cookie[12..]);
        var flags = cookie[24];
        ApplyPeerInit(BinaryPrimitives.ReadUInt32BigEndian(cookie[16..]), BinaryPrimitives.ReadUInt16BigEndian(cookie[20..]),
            BinaryPrimitives.ReadUInt16BigEndian(cookie[22..]), (flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0);
        _sendCookieAck = true;
        _sendInit = _sendCookieEcho = false;
        _t1Deadline = null;
        Establish("COOKIE ECHO accepted");
    }

    /// <summary>
    /// SNAP (draft-hancke-tsvwg-snap): starts the association from the two INITs the offer and answer carried
    /// (<c>a=sctp-init</c>) instead of the four-way handshake, and is ESTABLISHED at once: call it when DTLS is up.
    /// <paramref name="local"/> is the INIT we signalled (made by <see cref="SctpInitParameters.CreateLocal"/> with these
    /// options), <paramref name="peer"/> the peer's. We then send with the peer's Initiate Tag, number our DATA from our
    /// Initial TSN, expect the peer's DATA from its Initial TSN, and take its window, streams and extensions, as if the
    /// two INITs had crossed on the wire (RFC 9260 section 5.1, whose cookie exchange protects against blind attackers
    /// that DTLS already keeps out).
    /// </summary>
    /// <exception cref="InvalidOperationException">The association is not Closed, or Options.RemotePort is 0.</exception>
    /// <exception cref="ArgumentException">The local INIT does not match our options (streams, zero checksum).</exception>
    public void StartWithPeerInit(SctpInitParameters local, SctpInitParameters peer, TimeSpan now)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(peer);
        Clock(now);
        if (State != SctpState.Closed) throw new InvalidOperationException($"StartWithPeerInit needs the Closed state; the association is {State}.");
        if (_remotePort == 0) throw new InvalidOperationException("StartWithPeerInit needs Options.RemotePort.");
        if (local.OutboundStreams != _o.Streams || local.InboundStreams != _o.Streams || local.ZeroChecksum != _o.OfferZeroChecksum || local.InitiateTag == 0)
            throw new ArgumentException("The local INIT was not made from these options " +
                "(SctpInitParameters.CreateLocal with the same SctpOptions).", nameof(local));
        if (peer.InitiateTag == 0 || peer.OutboundStreams == 0 || peer.InboundStreams == 0)
            throw new ArgumentException("The peer's INIT has a zero Initiate Tag or stream count (read it with " +
                "SctpInitParameters.TryParseBase64).", nameof(peer));
        _myTag = local.InitiateTag;
        _myInitialTsn = local.InitialTsn;
        _peerTag = peer.InitiateTag;
        _peerInitialTsn = peer.InitialTsn;
        ApplyPeerInit(peer.AdvertisedWindow, peer.OutboundStreams, peer.InboundStreams, peer.ForwardTsn, peer.ReConfig, peer.ZeroChecksum);
        _sendInit = _sendCookieEcho = false;
        _t1Deadline = null;
        StartedFromPeerInit = true;
        Establish("SNAP: INIT parameters exchanged in SDP");
    }

    /// <summary>True when the association was started by <see cref="StartWithPeerInit"/> (SNAP), not by a handshake.</summary>
    public bool StartedFromPeerInit { get; private set; }

    private void HandleCookieAck()
    {
        if (State != SctpState.CookieEchoed) return;
        _sendCookieEcho = false;
        _t1Deadline = null;
        Establish("COOKIE ACK received");
    }

    private uint _peerInitialWindow;

    private void ApplyPeerInit(uint arwnd, ushort peerOs, ushort peerMis, bool fwd, bool reconfig, bool zero)
    {
        _peerInitialWindow = arwnd;
        _peerForwardTsn = fwd;
        _peerReConfig = reconfig;
        _peerAcceptsZeroChecksum = zero;
        // RFC 9260 section 5.1.1: each side uses the smaller of its OS and the other's MIS.
        _outboundStreams = Math.Min(_o.Streams, peerMis);
        _inboundStreams = Math.Min(_o.Streams, peerOs);
    }

    private void Establish(string reason)
    {
        InitSendState(_myInitialTsn, _peerInitialWindow);
        StartReceive(_peerInitialTsn);
        _resets.Start(_myInitialTsn, _peerInitialTsn);
        Transition(SctpState.Established, SctpStateReason.HandshakeComplete, reason);
    }

    private void OnT1Expired()
    {
        // RFC 9260 section 5.1 (C): resend INIT or COOKIE ECHO with a doubled timer, up to Max.Init.Retransmits.
        if (++_initRetransmits > _o.MaxInitRetransmits)
        {
            Fail($"handshake failed: no answer after {_o.MaxInitRetransmits} retransmissions of {(State == SctpState.CookieWait ? "INIT" : "COOKIE ECHO")}");
            return;
        }
        _t1Rto = RetransmissionTimeout.Doubled(_t1Rto, _o.RtoMax);
        _t1Deadline = _now + _t1Rto;
        if (State == SctpState.CookieWait) _sendInit = true;
        else if (State == SctpState.CookieEchoed) _sendCookieEcho = true;
        else _t1Deadline = null;
    }

    private int WriteInit(Span<byte> d) =>
        InitChunk.Write(d, ChunkType.Init, _myTag, (uint)_o.ReceiveBufferSize, _o.Streams, _o.Streams, _myInitialTsn,
            _o.OfferZeroChecksum, default);

    private int WriteInitAck(Span<byte> d) =>
        InitChunk.Write(d, ChunkType.InitAck, _initAckMyTag, (uint)AdvertisedWindow, _o.Streams, _o.Streams, _initAckMyTsn,
            _o.OfferZeroChecksum, _initAckCookie);
}
