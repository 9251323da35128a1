using System.Text;
using Transport.Ice.Stun;
using Transport.Ice.Turn;

namespace Transport.Ice.Tests.Turn;

/// <summary>
/// A minimal TURN server for unit tests, written with our STUN writer: long-term credentials (401 then MD5 or
/// SHA-256 key), configurable lifetime, stale nonces, redirects and error injection. It records each request
/// (method and virtual time) so that tests can assert the client's timers exactly.
/// </summary>
internal sealed class FakeTurnServer
{
    public const string Realm = "example.test";
    public const string User = "alice";
    public const string Pass = "secret";

    public static readonly StunAddress Address = StunAddress.FromEndPoint(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("192.0.2.1"), 3478));
    public static readonly StunAddress Relayed = StunAddress.FromEndPoint(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("192.0.2.1"), 50000));
    public static readonly StunAddress RelayedV6 = StunAddress.FromEndPoint(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("2001:db8::1"), 50002));
    public static readonly StunAddress Mapped = StunAddress.FromEndPoint(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("198.51.100.7"), 40000));

    private string _nonce = "nonce-1";

    public StunAddress Self { get; init; } = Address;
    public uint GrantedLifetime { get; set; } = 600;
    public StunPasswordAlgorithm[]? OfferAlgorithms { get; set; }
    /// <summary>False to leave PASSWORD-ALGORITHMS out of 438 answers (RFC 8489 does not require it there).</summary>
    public bool AlgorithmsIn438 { get; set; } = true;
    private bool _answering438;
    /// <summary>Answer the next N authenticated requests with 438 and a fresh nonce.</summary>
    public int StaleNonceCount { get; set; }
    /// <summary>When set, every Allocate is answered 300 with this ALTERNATE-SERVER.</summary>
    public StunAddress? RedirectTo { get; set; }
    /// <summary>When set, requests of this method are answered with this error.</summary>
    public (ushort Method, int Code)? FailMethod { get; set; }
    /// <summary>False to swallow requests (to test timeouts).</summary>
    public bool Answer { get; set; } = true;
    public bool Dual { get; set; }
    public bool AllocationExists { get; private set; }

    public List<(ushort Method, TimeSpan At, bool Authenticated, uint? Lifetime)> Requests { get; } = new();
    public List<(StunAddress Peer, byte[] Data, bool ChannelData)> Sent { get; } = new();
    public Dictionary<ushort, StunAddress> Channels { get; } = new();
    public StunPasswordAlgorithm? AlgorithmUsed { get; private set; }

    /// <summary>Handles one message from the client; returns the answer (or null).</summary>
    public byte[]? Handle(ReadOnlySpan<byte> datagram, TimeSpan now)
    {
        if (ChannelData.TryRead(datagram, out var cd))
        {
            Sent.Add((Channels[cd.Channel], cd.Data.ToArray(), true));
            return null;
        }
        if (!StunMessage.TryRead(datagram, out var m)) throw new InvalidOperationException("The client sent a malformed message.");
        if (m.HasFingerprint) Assert.True(m.CheckFingerprint());
        if (m.Class == StunClass.Indication)
        {
            Assert.Equal(StunMethod.Send, m.Method);
            Assert.True(m.TryGetXorPeerAddress(out var peer));
            Assert.True(m.TryGetData(out var data));
            Sent.Add((peer, data.ToArray(), false));
            return null;
        }
        Assert.Equal(StunClass.Request, m.Class);
        var authenticated = m.HasMessageIntegrity || m.HasMessageIntegritySha256;
        Requests.Add((m.Method, now, authenticated, m.TryGetLifetime(out var l) ? l : null));
        if (!Answer) return null;
        var buffer = new byte[1024];
        if (m.Method == StunMethod.Allocate && RedirectTo is { } alternate)
            return Error(buffer, m, StunErrorCode.TryAlternate, "Try Alternate",
                (ref StunMessageWriter w) => w.AddAddress(StunAttributeType.AlternateServer, alternate));
        if (!authenticated)
            return Error(buffer, m, StunErrorCode.Unauthenticated, "Unauthorized", Challenge);
        Assert.True(m.TryGetUsername(out var user));
        Assert.True(m.TryGetRealm(out var realm));
        Assert.Equal(Realm, Encoding.UTF8.GetString(realm));
        var algorithm = StunPasswordAlgorithm.Md5;
        if (OfferAlgorithms is not null)
        {
            Assert.True(m.TryGetPasswordAlgorithm(out algorithm, out _));
            Span<StunPasswordAlgorithm> echoed = stackalloc StunPasswordAlgorithm[4];
            Assert.Equal(OfferAlgorithms.Length, m.GetPasswordAlgorithms(echoed));
        }
        AlgorithmUsed = algorithm;
        using var key = StunKey.LongTerm(Encoding.UTF8.GetString(user), Realm, Pass, algorithm);
        if (!m.CheckIntegrity(key))
            return Error(buffer, m, StunErrorCode.Unauthenticated, "Unauthorized", Challenge);
        Assert.True(m.TryGetNonce(out var nonce));
        if (StaleNonceCount > 0 || Encoding.UTF8.GetString(nonce) != _nonce)
        {
            if (StaleNonceCount > 0) StaleNonceCount--;
            _nonce = "nonce-" + (Requests.Count + 1);
            _answering438 = true;
            try { return Error(buffer, m, StunErrorCode.StaleNonce, "Stale Nonce", Challenge); }
            finally { _answering438 = false; }
        }
        if (FailMethod is { } f && f.Method == m.Method)
            return Error(buffer, m, f.Code, "Injected", (ref StunMessageWriter _) => { }, key);

        var w = new StunMessageWriter(buffer, new StunMessageType(m.Method, StunClass.SuccessResponse), m.TransactionId);
        switch (m.Method)
        {
            case StunMethod.Allocate:
                AllocationExists = true;
                w.AddXorAddress(StunAttributeType.XorRelayedAddress, m.TryGetRequestedAddressFamily(out var family) && family == 2 ? RelayedV6 : Relayed);
                if (Dual) w.AddXorAddress(StunAttributeType.XorRelayedAddress, RelayedV6);
                w.AddXorAddress(StunAttributeType.XorMappedAddress, Mapped);
                w.AddLifetime(Math.Min(GrantedLifetime, l == 0 ? GrantedLifetime : l));
                break;
            case StunMethod.Refresh:
                if (!AllocationExists) return Error(buffer, m, StunErrorCode.AllocationMismatch, "Allocation Mismatch", (ref StunMessageWriter _) => { }, key);
                if (l == 0) AllocationExists = false;
                w.AddLifetime(l == 0 ? 0 : Math.Min(GrantedLifetime, l));
                break;
            case StunMethod.ChannelBind:
                Assert.True(m.TryGetChannelNumber(out var channel));
                Assert.True(m.TryGetXorPeerAddress(out var peer));
                Channels[channel] = peer;
                break;
        }
        if (algorithm == StunPasswordAlgorithm.Sha256) w.AddMessageIntegritySha256(key); else w.AddMessageIntegrity(key);
        w.AddFingerprint();
        return buffer.AsSpan(0, w.Length).ToArray();
    }

    private void Challenge(ref StunMessageWriter w)
    {
        w.AddString(StunAttributeType.Realm, Realm);
        w.AddString(StunAttributeType.Nonce, _nonce);
        if (OfferAlgorithms is not null && (AlgorithmsIn438 || !_answering438)) w.AddPasswordAlgorithms(OfferAlgorithms);
    }

    private delegate void Extra(ref StunMessageWriter w);

    private static byte[] Error(byte[] buffer, in StunMessage request, int code, string reason, Extra extra, StunKey? key = null)
    {
        var w = new StunMessageWriter(buffer, new StunMessageType(request.Method, StunClass.ErrorResponse), request.TransactionId);
        w.AddErrorCode(code, reason);
        extra(ref w);
        if (key is not null) w.AddMessageIntegrity(key);
        w.AddFingerprint();
        return buffer.AsSpan(0, w.Length).ToArray();
    }

    /// <summary>A Data indication from <paramref name="peer"/> as the server would relay it.</summary>
    public static byte[] DataIndication(StunAddress peer, ReadOnlySpan<byte> data)
    {
        var buffer = new byte[1500];
        var w = new StunMessageWriter(buffer, new StunMessageType(StunMethod.Data, StunClass.Indication), new byte[12]);
        w.AddXorAddress(StunAttributeType.XorPeerAddress, peer);
        w.Add(StunAttributeType.Data, data);
        w.AddFingerprint();
        return buffer.AsSpan(0, w.Length).ToArray();
    }
}
