using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Transport.TestKit;
using Transport.Ice.Stun;

namespace Transport.Ice.Tests.Interop;

/// <summary>Our STUN messages and client transaction against coturn over real UDP on 127.0.0.1.</summary>
public sealed class CoturnInteropTests : IDisposable
{
    private readonly CoturnServer _server = CoturnServer.Start();
    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);

    public CoturnInteropTests()
    {
        _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
    }

    public void Dispose()
    {
        _socket.Dispose();
        _server.Dispose();
    }

    private IPEndPoint Local => (IPEndPoint)_socket.LocalEndPoint!;

    /// <summary>Runs one transaction over the socket in real time (test code may read the clock); returns the response bytes.</summary>
    private byte[] Exchange(ReadOnlySpan<byte> request)
    {
        var transaction = new StunClientTransaction(request,
            new StunRetransmissionOptions { InitialRto = TimeSpan.FromMilliseconds(250), MaxRequests = 5, LastRequestWaitMultiplier = 8 });
        var clock = Stopwatch.StartNew();
        var buffer = new byte[2048];
        transaction.Start(clock.Elapsed);
        while (true)
        {
            while (transaction.TryPollTransmit(buffer, out var n)) _socket.SendTo(buffer.AsSpan(0, n), SocketFlags.None, _server.EndPoint);
            if (transaction.PollTimeout() is not { } due)
                throw new Xunit.Sdk.XunitException($"Transaction ended {transaction.State} without a response.\ncoturn output:\n{_server.Output}");
            var wait = due - clock.Elapsed;
            if (wait > TimeSpan.Zero && _socket.Poll((int)Math.Ceiling(wait.TotalMicroseconds), SelectMode.SelectRead))
            {
                var n = _socket.Receive(buffer);
                if (StunMessage.TryRead(buffer.AsSpan(0, n), out var message)
                    && transaction.HandleResponse(message, clock.Elapsed) == StunResponseMatch.Completed)
                    return buffer.AsSpan(0, n).ToArray();
                continue;
            }
            transaction.HandleTimeout(clock.Elapsed);
        }
    }

    private static Span<byte> NewTransactionId(Span<byte> tid)
    {
        StunTransactionId.NewRandom().WriteTo(tid);
        return tid;
    }

    [Fact]
    public void BindingRequestGetsOurAddressInXorMappedAddress()
    {
        var buffer = new byte[256];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, NewTransactionId(stackalloc byte[12]));
        w.AddString(StunAttributeType.Software, "Transport.Ice tests");
        w.AddFingerprint();
        var response = Exchange(buffer.AsSpan(0, w.Length));

        Assert.True(StunMessage.TryRead(response, out var m, out var error), error.ToString());
        Assert.Equal(StunMessageType.BindingSuccess, m.Type);
        Assert.True(m.TryGetXorMappedAddress(out var mapped));
        Assert.Equal(Local, mapped.ToEndPoint());
        Assert.True(m.HasFingerprint, "coturn runs with --fingerprint");
        Assert.True(m.CheckFingerprint());
    }

    [Fact]
    public void AllocateWithLongTermCredentialsGetsARelayedAddressAndDeallocates()
    {
        // 1. Unauthenticated Allocate: 401 with REALM and NONCE (RFC 8656 section 7.2, RFC 8489 section 9.2.4).
        var buffer = new byte[512];
        var w = new StunMessageWriter(buffer, new StunMessageType(StunMethod.Allocate, StunClass.Request), NewTransactionId(stackalloc byte[12]));
        w.AddRequestedTransport(17);
        w.AddFingerprint();
        var challenge = Exchange(buffer.AsSpan(0, w.Length));
        Assert.True(StunMessage.TryRead(challenge, out var c));
        Assert.Equal(StunClass.ErrorResponse, c.Class);
        Assert.True(c.TryGetErrorCode(out var code, out _));
        Assert.Equal(StunErrorCode.Unauthenticated, code);
        Assert.True(c.TryGetRealm(out var realmBytes));
        Assert.Equal(CoturnServer.Realm, Encoding.UTF8.GetString(realmBytes));
        Assert.True(c.TryGetNonce(out var nonceBytes));
        var nonce = nonceBytes.ToArray();
        Assert.NotEmpty(nonce);

        // 2. Authenticated retry: success with XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS and LIFETIME, integrity checked.
        using var key = StunKey.LongTerm(CoturnServer.User, CoturnServer.Realm, CoturnServer.Password);
        w = new StunMessageWriter(buffer, new StunMessageType(StunMethod.Allocate, StunClass.Request), NewTransactionId(stackalloc byte[12]));
        w.AddRequestedTransport(17);
        w.AddString(StunAttributeType.Username, CoturnServer.User);
        w.AddString(StunAttributeType.Realm, CoturnServer.Realm);
        w.Add(StunAttributeType.Nonce, nonce);
        w.AddMessageIntegrity(key);
        w.AddFingerprint();
        var success = Exchange(buffer.AsSpan(0, w.Length));
        Assert.True(StunMessage.TryRead(success, out var s));
        Assert.True(s.Class == StunClass.SuccessResponse, $"Allocate failed: {Describe(s)}\n{_server.Output}");
        Assert.True(s.CheckMessageIntegrity(key), "coturn's response must carry our long-term integrity");
        Assert.True(s.CheckFingerprint());
        Assert.True(s.TryGetXorRelayedAddress(out var relayed));
        Assert.Equal(IPAddress.Loopback, relayed.ToIPAddress());
        Assert.InRange(relayed.Port, _server.MinRelayPort, _server.MaxRelayPort);
        Assert.True(s.TryGetXorMappedAddress(out var mapped));
        Assert.Equal(Local, mapped.ToEndPoint());
        Assert.True(s.TryGetLifetime(out var lifetime));
        Assert.True(lifetime > 0);

        // 3. Refresh with LIFETIME 0 deletes the allocation (RFC 8656 section 7.3).
        w = new StunMessageWriter(buffer, new StunMessageType(StunMethod.Refresh, StunClass.Request), NewTransactionId(stackalloc byte[12]));
        w.AddLifetime(0);
        w.AddString(StunAttributeType.Username, CoturnServer.User);
        w.AddString(StunAttributeType.Realm, CoturnServer.Realm);
        w.Add(StunAttributeType.Nonce, nonce);
        w.AddMessageIntegrity(key);
        w.AddFingerprint();
        var refreshed = Exchange(buffer.AsSpan(0, w.Length));
        Assert.True(StunMessage.TryRead(refreshed, out var r));
        Assert.True(r.Class == StunClass.SuccessResponse, $"Refresh failed: {Describe(r)}");
        Assert.True(r.CheckMessageIntegrity(key));
        Assert.True(r.TryGetLifetime(out var remaining));
        Assert.Equal(0u, remaining);
    }

    [Fact]
    public void AllocateWithTheWrongPasswordIsRefused()
    {
        var buffer = new byte[512];
        var w = new StunMessageWriter(buffer, new StunMessageType(StunMethod.Allocate, StunClass.Request), NewTransactionId(stackalloc byte[12]));
        w.AddRequestedTransport(17);
        var challenge = Exchange(buffer.AsSpan(0, w.Length));
        Assert.True(StunMessage.TryRead(challenge, out var c));
        Assert.True(c.TryGetNonce(out var nonceBytes));
        var nonce = nonceBytes.ToArray();

        using var wrong = StunKey.LongTerm(CoturnServer.User, CoturnServer.Realm, "not-the-password");
        w = new StunMessageWriter(buffer, new StunMessageType(StunMethod.Allocate, StunClass.Request), NewTransactionId(stackalloc byte[12]));
        w.AddRequestedTransport(17);
        w.AddString(StunAttributeType.Username, CoturnServer.User);
        w.AddString(StunAttributeType.Realm, CoturnServer.Realm);
        w.Add(StunAttributeType.Nonce, nonce);
        w.AddMessageIntegrity(wrong);
        var refused = Exchange(buffer.AsSpan(0, w.Length));
        Assert.True(StunMessage.TryRead(refused, out var m));
        Assert.Equal(StunClass.ErrorResponse, m.Class);
        Assert.True(m.TryGetErrorCode(out var code, out _));
        Assert.Equal(StunErrorCode.Unauthenticated, code);
    }

    private static string Describe(in StunMessage m) =>
        m.TryGetErrorCode(out var code, out var reason) ? $"{m.Type} {code} {Encoding.UTF8.GetString(reason)}" : m.Type.ToString();
}
