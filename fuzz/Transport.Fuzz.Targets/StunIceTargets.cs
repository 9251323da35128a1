using System.Buffers;
using System.Net;
using Transport.Ice;
using Transport.Ice.Stun;
using Transport.Ice.Turn;
using Transport.TestKit;

namespace Transport.Fuzz;

/// <summary>STUN, the ICE agent (fresh and connected), TURN ChannelData and the TURN-over-TCP framing.</summary>
public static class StunIceTargets
{
    internal static readonly IceCredentials LocalCredentials = new("fuzzLoca", "fuzzLocalPasswordFuzzLoc");
    internal static readonly IceCredentials RemoteCredentials = new("fuzzRemo", "fuzzRemotePasswordFuzzRe");
    internal static readonly IPEndPoint LocalEnd = new(IPAddress.Parse("10.0.0.2"), 2000);
    internal static readonly IPEndPoint RemoteEnd = new(IPAddress.Parse("10.0.0.1"), 1000);
    private static readonly IPEndPoint OtherEnd = new(IPAddress.Parse("10.0.0.3"), 3000);
    private static readonly StunKey ShortTerm = StunKey.ShortTerm("VOkJxbRl1RmTxUk/WvJxBt");
    private static readonly StunKey LongTerm = StunKey.LongTerm("\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9", "example.org", "TheMatrIX");

    /// <summary>The targets.</summary>
    public static IEnumerable<FuzzTarget> All =>
    [
        new("stun", Stun, "StunMessage.TryRead, every attribute getter, FINGERPRINT and MESSAGE-INTEGRITY(-SHA256) checks"),
        new("ice-fresh", IceFresh, "a new controlled IceAgent with remote credentials receives datagrams (byte 0 bit 0: re-sign STUN with the right key)"),
        new("ice-connected", IceConnected, "two connected IceAgents; one receives the datagrams; then data must still flow both ways"),
        new("turn-channeldata", TurnChannelData, "ChannelData.TryRead and a TurnClient receiving the datagram from its server"),
        new("turn-tcp", TurnTcp, "TurnStreamFraming over a span and over a segmented sequence, frame after frame"),
    ];

    /// <summary>Parses and reads every attribute, as the agent and the TURN client do.</summary>
    public static void Stun(ReadOnlySpan<byte> data)
    {
        if (!StunMessage.TryRead(data, out var m)) return;
        Exercise(m);
    }

    internal static void Exercise(in StunMessage m)
    {
        _ = m.Type; _ = m.Method; _ = m.Class;
        m.CheckFingerprint();
        m.CheckIntegrity(ShortTerm);
        m.CheckMessageIntegrity(ShortTerm);
        m.CheckMessageIntegritySha256(ShortTerm);
        m.CheckIntegrity(LongTerm);
        m.TryGetUsername(out _); m.TryGetUserHash(out _); m.TryGetRealm(out _); m.TryGetNonce(out _); m.TryGetSoftware(out _);
        m.TryGetXorMappedAddress(out _); m.TryGetMappedAddress(out _); m.TryGetAlternateServer(out _); m.TryGetAlternateDomain(out _);
        m.TryGetErrorCode(out _, out _);
        m.GetUnknownAttributes(stackalloc ushort[8]);
        m.GetPasswordAlgorithms(stackalloc StunPasswordAlgorithm[8]);
        m.TryGetPasswordAlgorithm(out _, out _);
        m.GetUnknownComprehensionRequired(stackalloc ushort[8]);
        m.TryGetPriority(out _); _ = m.HasUseCandidate; m.TryGetIceControlling(out _); m.TryGetIceControlled(out _);
        m.TryGetChannelNumber(out _); m.TryGetLifetime(out _); m.TryGetXorPeerAddress(out _); m.TryGetData(out _);
        m.GetXorPeerAddresses(stackalloc StunAddress[4]);
        m.TryGetXorRelayedAddress(out _); m.GetXorRelayedAddresses(stackalloc StunAddress[4]);
        m.TryGetRequestedAddressFamily(out _); m.TryGetEvenPort(out _);
        m.TryGetIcmp(out _, out _, out _);
        m.TryGetAddressErrorCode(out _, out _, out _);
        foreach (var a in m.Attributes) _ = a.Value.Length;
    }

    /// <summary>
    /// Rewrites a STUN message with a valid MESSAGE-INTEGRITY (the key an ICE agent expects for its class) and
    /// FINGERPRINT, so that the fuzzer reaches the code behind the integrity check. Other input is returned as is.
    /// </summary>
    internal static ReadOnlySpan<byte> Resign(ReadOnlySpan<byte> datagram, Span<byte> buffer, string requestPassword, string responsePassword)
    {
        if (!StunMessage.TryRead(datagram, out var m)) return datagram;
        if (datagram.Length + 32 > buffer.Length) return datagram;
        var w = new StunMessageWriter(buffer, m.Type, m.TransactionId);
        foreach (var a in m.Attributes)
        {
            if (a.Type is StunAttributeType.MessageIntegrity or StunAttributeType.MessageIntegritySha256 or StunAttributeType.Fingerprint) continue;
            w.Add(a.Type, a.Value);
        }
        using var key = StunKey.ShortTerm(m.Class is StunClass.Request or StunClass.Indication ? requestPassword : responsePassword);
        w.AddMessageIntegrity(key);
        w.AddFingerprint();
        return w.Written;
    }

    private static IceAgent NewAgent(IceRole role, IceCredentials local) =>
        new(new IceAgentOptions { Role = role, LocalCredentials = local, TieBreaker = role == IceRole.Controlling ? 2UL : 1UL, Random = new Random(1) });

    /// <summary>A fresh controlled agent with one host candidate and the remote credentials set.</summary>
    public static void IceFresh(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        var flags = data[0];
        using var agent = NewAgent(IceRole.Controlled, LocalCredentials);
        agent.AddHostCandidate(LocalEnd);
        var now = TimeSpan.Zero;
        agent.SetRemoteCredentials(RemoteCredentials, now);
        if ((flags & 2) != 0 && IceCandidate.TryParse($"candidate:1 1 udp 2130706431 {RemoteEnd.Address} {RemoteEnd.Port} typ host", out var c))
            agent.AddRemoteCandidate(c, now);
        var transmit = new byte[2048];
        var signed = new byte[4096];
        var body = data[1..];
        foreach (var (offset, length) in FuzzRecords.Split(body))
        {
            var d = body.Slice(offset, length);
            if ((flags & 1) != 0) d = Resign(d, signed, LocalCredentials.Password, RemoteCredentials.Password);
            var from = (flags & 4) != 0 && (length & 1) != 0 ? OtherEnd : RemoteEnd;
            agent.HandleDatagram(d, LocalEnd, from, now, out _);
            Pump(agent, transmit, now);
            now += TimeSpan.FromMilliseconds(20);
            if (agent.PollTimeout() is { } t && t <= now) { agent.HandleTimeout(now); Pump(agent, transmit, now); }
        }
        agent.HandleTimeout(now + TimeSpan.FromSeconds(30));
        Pump(agent, transmit, now);
    }

    private static void Pump(IceAgent agent, byte[] buffer, TimeSpan now)
    {
        for (var i = 0; i < 1000 && agent.TryPollTransmit(buffer, out _, out _); i++) { }
        for (var i = 0; i < 1000 && agent.TryPollEvent(out _); i++) { }
        if (agent.TryPollTransmit(buffer, out _, out _)) throw new FuzzPropertyException("the agent produced more than 1000 datagrams for one input");
    }

    /// <summary>An agent on the virtual link (also the corpus builder's).</summary>
    internal sealed class AgentPeer(IceAgent agent, IPEndPoint local, IPEndPoint remote) : IVirtualPeer
    {
        public IceAgent Agent { get; } = agent;
        public List<byte[]> Received { get; } = new();
        public void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now)
        {
            if (Agent.HandleDatagram(datagram, local, remote, now, out var app) == IceReceiveResult.ApplicationData) Received.Add(app.ToArray());
            while (Agent.TryPollEvent(out _)) { }
        }
        public void HandleTimeout(TimeSpan now) { Agent.HandleTimeout(now); while (Agent.TryPollEvent(out _)) { } }
        public bool TryPollTransmit(Span<byte> destination, out int written)
        {
            while (Agent.TryPollTransmit(destination, out written, out var t))
            {
                if (!t.Local.Equals(local) || !t.Remote.Equals(remote)) continue;
                return true;
            }
            written = 0;
            return false;
        }
        public TimeSpan? PollTimeout() => Agent.PollTimeout();
    }

    /// <summary>
    /// Two agents connected on a virtual link; the controlled one receives the datagrams (from the real remote address,
    /// STUN re-signed with the right key when byte 0 bit 0 is set). Then data must still flow both ways and the
    /// agents stay connected: garbage from the network never takes down a working pair.
    /// </summary>
    public static void IceConnected(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return;
        var body = data[1..];
        var datagrams = new List<byte[]>();
        foreach (var (offset, length) in FuzzRecords.Split(body)) datagrams.Add(body.Slice(offset, length).ToArray());
        IceConnectedWith(data[0], datagrams, stepEvery: 1);
    }

    /// <summary>
    /// The connected target over any number of datagrams (the soak test sends 100,000); time advances 5 ms every <paramref name="stepEvery"/>.
    /// </summary>
    public static void IceConnectedWith(byte flags, IEnumerable<byte[]> datagrams, int stepEvery)
    {
        using var a = NewAgent(IceRole.Controlling, RemoteCredentials);
        using var b = NewAgent(IceRole.Controlled, LocalCredentials);
        var pa = new AgentPeer(a, RemoteEnd, LocalEnd);
        var pb = new AgentPeer(b, LocalEnd, RemoteEnd);
        a.AddHostCandidate(RemoteEnd);
        b.AddHostCandidate(LocalEnd);
        var driver = new TwoPeerDriver(pa, pb);
        a.SetRemoteCredentials(LocalCredentials, driver.Now);
        b.SetRemoteCredentials(RemoteCredentials, driver.Now);
        IceCandidate.TryParse($"candidate:1 1 udp 2130706431 {LocalEnd.Address} {LocalEnd.Port} typ host", out var cb);
        IceCandidate.TryParse($"candidate:1 1 udp 2130706431 {RemoteEnd.Address} {RemoteEnd.Port} typ host", out var ca);
        a.AddRemoteCandidate(cb, driver.Now);
        b.AddRemoteCandidate(ca, driver.Now);
        if (!driver.RunUntil(() => a.State == IceConnectionState.Connected && b.State == IceConnectionState.Connected && a.SelectedLocal is not null
            && b.SelectedLocal is not null, TimeSpan.FromSeconds(10)))
            throw new FuzzPropertyException("the pair did not connect before the input");
        var signed = new byte[4096];
        var n = 0;
        foreach (var datagram in datagrams)
        {
            ReadOnlySpan<byte> d = datagram;
            if ((flags & 1) != 0) d = Resign(d, signed, LocalCredentials.Password, RemoteCredentials.Password);
            pb.HandleDatagram(d, driver.Now);
            if (++n % stepEvery == 0) driver.RunFor(TimeSpan.FromMilliseconds(5));
        }
        driver.RunFor(TimeSpan.FromSeconds(1));
        // Data both ways after the garbage.
        var buffer = new byte[256];
        pa.Received.Clear();
        pb.Received.Clear();
        Send(a, "from a"u8, buffer, driver, LinkEnd.A, driver.Now);
        Send(b, "from b"u8, buffer, driver, LinkEnd.B, driver.Now);
        driver.RunFor(TimeSpan.FromMilliseconds(100));
        if (!pb.Received.Any(r => r.AsSpan().SequenceEqual("from a"u8)) || !pa.Received.Any(r => r.AsSpan().SequenceEqual("from b"u8)))
            throw new FuzzPropertyException($"data no longer flows after the input: A {a.State}, B {b.State}");
    }

    private static void Send(IceAgent agent, ReadOnlySpan<byte> payload, byte[] buffer, TwoPeerDriver driver, LinkEnd end, TimeSpan now)
    {
        if (!agent.TrySend(payload, buffer, now, out var sent, out var t).CanSend)
            throw new FuzzPropertyException($"agent cannot send after the input: {agent.State}");
        driver.Link.Send(end, buffer.AsSpan(0, sent), now);
    }

    private static readonly TurnServerConfig TurnServer = TurnServerConfig.Parse("turn:10.0.0.9:3478", "user", "pass");

    /// <summary>ChannelData parsing and a TurnClient (just started: allocating) receiving the datagram from its server.</summary>
    public static void TurnChannelData(ReadOnlySpan<byte> data)
    {
        if (ChannelData.TryRead(data, out var cd)) { _ = cd.Channel; _ = cd.Data.Length; }
        using var client = new TurnClient(TurnClientOptions.FromConfig(TurnServer));
        var now = TimeSpan.Zero;
        client.Start(now);
        var buffer = new byte[2048];
        while (client.TryPollTransmit(buffer, out _, out _)) { }
        var server = StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Parse("10.0.0.9"), 3478));
        client.TryReceive(data, server, now, out _, out _, out _);
        client.HandleDatagram(data, server, now);
        for (var i = 0; i < 100 && client.TryPollTransmit(buffer, out _, out _); i++) { }
        for (var i = 0; i < 100 && client.TryPollEvent(out _); i++) { }
    }

    /// <summary>Frames a TCP byte stream (RFC 8656 section 12.5 / RFC 6544) as one span and as a sequence cut into segments.</summary>
    public static void TurnTcp(ReadOnlySpan<byte> data)
    {
        // As one buffer.
        var rest = data;
        for (var i = 0; i < 10_000 && !rest.IsEmpty; i++)
        {
            var status = TurnStreamFraming.TryReadFrame(rest, out var n);
            if (status != TurnFrameStatus.Complete) break;
            if (n <= 0 || n > rest.Length) throw new FuzzPropertyException($"frame length {n} of {rest.Length} bytes");
            if (StunMessage.TryRead(rest[..n], out var m)) Exercise(m);
            else ChannelData.TryRead(rest[..n], out _);
            rest = rest[n..];
        }
        // As a sequence of segments of 1..7 bytes (a TCP stream read in pieces).
        var seq = Segmented(data);
        for (var i = 0; i < 10_000; i++)
        {
            var status = TurnStreamFraming.TryReadFrame(ref seq, out var frame);
            if (status != TurnFrameStatus.Complete) break;
            if (frame.Length == 0) throw new FuzzPropertyException("empty frame");
        }
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public void Set(ReadOnlyMemory<byte> memory, long runningIndex, Segment? next) { Memory = memory; RunningIndex = runningIndex; Next = next; }
    }

    // The segments and the copy of the input are kept per thread and reused: cut into 1-byte segments, a 64 KiB input
    // took 3 MiB of segment objects (48 B each), which hid what the framing itself allocates (AllocationGrowth).
    [ThreadStatic] private static List<Segment>? t_segments;
    [ThreadStatic] private static byte[]? t_bytes;

    private static ReadOnlySequence<byte> Segmented(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) return ReadOnlySequence<byte>.Empty;
        var bytes = t_bytes is { } kept && kept.Length >= data.Length ? kept : t_bytes = new byte[Math.Max(data.Length, 4096)];
        data.CopyTo(bytes);
        var size = 1 + data[0] % 7;
        var count = (data.Length + size - 1) / size;
        var segments = t_segments ??= new();
        while (segments.Count < count) segments.Add(new Segment());
        for (var i = count - 1; i >= 0; i--)
        {
            var o = i * size;
            segments[i].Set(bytes.AsMemory(o, Math.Min(size, data.Length - o)), o, i + 1 < count ? segments[i + 1] : null);
        }
        var last = segments[count - 1];
        return new ReadOnlySequence<byte>(segments[0], 0, last, last.Memory.Length);
    }
}
